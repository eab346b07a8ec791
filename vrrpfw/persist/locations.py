"""Where each distribution keeps its saved iptables ruleset, and whether
anything restores it at boot.

Writing rules to a file nobody loads is a silent failure, so besides the
path we report the service that restores it, or say plainly that none does.
``root`` lets tests point all of this at a temporary directory.
"""

from __future__ import annotations

import glob
import os
from typing import List, Optional, Tuple

from vrrpfw.record import record

from ..errors import PersistFileError
from ..host.bounded_read import MiB, ReadRefused, read_regular


@record(frozen=True)
class PersistTarget:
    path: str
    family: str  # debian | rhel | alpine | custom
    restorer: Optional[str]  # what restores the file at boot, if found
    note: Optional[str]  # plain warning when nothing will


# family -> (file, [(restorer description, marker paths, service names)])
_FAMILIES = {
    "debian": (
        "/etc/iptables/rules.v4",
        [("netfilter-persistent (iptables-persistent)",
          ["/usr/share/netfilter-persistent/plugins.d/15-ip4tables"],
          ["netfilter-persistent"])],
    ),
    "rhel": (
        "/etc/sysconfig/iptables",
        [("iptables.service (iptables-services)",
          ["/usr/libexec/iptables/iptables.init", "/usr/lib/systemd/system/iptables.service"],
          ["iptables"])],
    ),
    "alpine": (
        "/etc/iptables/rules-save",
        [("OpenRC iptables service", ["/etc/init.d/iptables"], ["iptables"])],
    ),
}
# The IPv6 twins (ip6tables-save files): family -> (file, restorers)
_FAMILIES6 = {
    "debian": (
        "/etc/iptables/rules.v6",
        [("netfilter-persistent (iptables-persistent)",
          ["/usr/share/netfilter-persistent/plugins.d/25-ip6tables"],
          ["netfilter-persistent"])],
    ),
    "rhel": (
        "/etc/sysconfig/ip6tables",
        [("ip6tables.service (iptables-services)",
          ["/usr/libexec/iptables/ip6tables.init", "/usr/lib/systemd/system/ip6tables.service"],
          ["ip6tables"])],
    ),
    "alpine": (
        "/etc/iptables/rules6-save",
        [("OpenRC ip6tables service", ["/etc/init.d/ip6tables"], ["ip6tables"])],
    ),
}
# The same for nftables rulesets: family -> (file, restorers)
_NFT_FAMILIES = {
    "debian": ("/etc/nftables.conf",
               [("nftables.service", ["/lib/systemd/system/nftables.service",
                                      "/usr/lib/systemd/system/nftables.service"], ["nftables"])]),
    "rhel": ("/etc/sysconfig/nftables.conf",
             [("nftables.service", ["/usr/lib/systemd/system/nftables.service"], ["nftables"])]),
    "alpine": ("/etc/nftables.nft",
               [("OpenRC nftables service", ["/etc/init.d/nftables"], ["nftables"])]),
}
_ID_TO_FAMILY = {
    "debian": "debian", "ubuntu": "debian", "raspbian": "debian", "linuxmint": "debian",
    "rhel": "rhel", "fedora": "rhel", "centos": "rhel", "rocky": "rhel",
    "almalinux": "rhel", "ol": "rhel", "amzn": "rhel",
    "alpine": "alpine",
}


# kind -> its table: "iptables" (IPv4 iptables-save), "ip6tables", "nftables"
_KINDS = {"iptables": _FAMILIES, "ip6tables": _FAMILIES6, "nftables": _NFT_FAMILIES}


def _in_root(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def os_release_ids(root: str = "/") -> List[str]:
    """ID then ID_LIKE words from os-release, lower-cased."""
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = read_regular(_in_root(root, candidate), MiB).decode("utf-8", errors="replace")
        except (OSError, ReadRefused):  # absent, a FIFO (would block), over 1 MiB
            continue
        values = {}
        for line in text.splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip().strip("\"'")
        return [w.lower() for w in (values.get("ID", "") + " " + values.get("ID_LIKE", "")).split()]
    return []


def detect_family(root: str = "/") -> Optional[str]:
    for ident in os_release_ids(root):
        if ident in _ID_TO_FAMILY:
            return _ID_TO_FAMILY[ident]
    return None


def _enabled(root: str, services: List[str]) -> Optional[bool]:
    """True/False when an init system tells; None when we cannot see one."""
    systemd_links = []
    openrc_links = []
    for name in services:
        systemd_links += glob.glob(_in_root(root, f"/etc/systemd/system/*.wants/{name}.service"))
        openrc_links += glob.glob(_in_root(root, f"/etc/runlevels/*/{name}"))
    if systemd_links or openrc_links:
        return True
    if any(os.path.isdir(_in_root(root, d)) for d in ("/etc/systemd/system", "/etc/runlevels")):
        return False
    return None


def restorer_for(family: str, root: str = "/", kind: str = "iptables"
                 ) -> Tuple[Optional[str], Optional[str]]:
    _, restorers = _KINDS[kind][family]
    for desc, markers, services in restorers:
        if any(os.path.exists(_in_root(root, m)) for m in markers):
            enabled = _enabled(root, services)
            if enabled is False:
                return desc, f"{desc} is installed but not enabled: the file is not restored at boot"
            return desc, None
    ufw = ufw_note(root) if kind in ("iptables", "ip6tables") else None
    if ufw is not None:
        return None, ufw
    names = ", ".join(d for d, _, _ in restorers)
    return None, f"nothing on this host restores it at boot (install {names})"


def ufw_note(root: str = "/") -> Optional[str]:
    """On a host with ufw installed: why nothing restores a saved iptables
    ruleset and what to do instead; None without ufw.  Never advice to
    install netfilter-persistent there: Debian's ufw package breaks it, and
    ufw rebuilds its chains from its own files at every start and reload."""
    from ..host.hostscan import ufw_config

    state = ufw_config(root)
    if state is None:
        return None
    if state.enabled:
        return ("nothing on this host restores it at boot: ufw manages this host's firewall "
                "(ENABLED=yes in /etc/ufw/ufw.conf) and netfilter-persistent conflicts with it; use "
                "--backend ufw (or auto), which keeps vrrpfw's lines in /etc/ufw/before.rules")
    return ("nothing on this host restores it at boot; ufw is installed (disabled), and Debian's "
            "netfilter-persistent cannot be installed beside it: enable ufw and use --backend ufw, "
            "or persist the rules yourself")


def choose(persist_file: Optional[str], root: str = "/", kind: str = "iptables") -> PersistTarget:
    """The explicit file wins; otherwise the distribution's own saved
    ruleset of that ``kind`` (iptables, ip6tables or nftables)."""
    if persist_file:
        return PersistTarget(
            persist_file, "custom", None,
            "custom persist file: restoring it at boot is up to you",
        )
    family = detect_family(root)
    if family is None:
        raise PersistFileError(
            f"cannot tell where this distribution keeps saved {kind} rules "
            "(unknown /etc/os-release); use --persist-file PATH or --no-persist"
        )
    table = _KINDS[kind]
    path = _in_root(root, table[family][0])
    restorer, note = restorer_for(family, root, kind)
    return PersistTarget(path, family, restorer, note)
