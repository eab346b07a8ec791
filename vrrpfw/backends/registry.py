"""Backend names, lazy loading, and what ``auto`` chooses.

Backends are named by module path and imported only when chosen, so the
CLI starts without python-iptables or dbus.  ``auto`` decides from a host
scan (pure :func:`choose_auto`), and when it cannot, the error says what it
looked for and what it found, like keyring's "no recommended backend".
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Type

from ..errors import BackendUnavailable, EnvironmentProblem, InputError
from .base import Backend, Options

if TYPE_CHECKING:  # hostscan pulls in subprocess and json; keep --help fast
    from ..host.hostscan import HostScan

UFW_CONF = "/etc/ufw/ufw.conf"  # as hostscan names it

PERMISSION = "reading nf_tables needs root or CAP_NET_ADMIN"  # as hostscan words it

# name -> (module, class, one-line description)
BACKENDS: Dict[str, Tuple[str, str, str]] = {
    "iptables": ("vrrpfw.backends.iptables", "IptablesBackend",
                 "legacy iptables tables, via python-iptables (libiptc)"),
    "nftables": ("vrrpfw.backends.nftables", "NftablesBackend",
                 "nf_tables chains (native and iptables-nft), via libnftables JSON"),
    "firewalld": ("vrrpfw.backends.firewalld.backend", "FirewalldBackend",
                  "firewalld over D-Bus: direct rules or a zone allowance, runtime and permanent"),
    "ufw": ("vrrpfw.backends.ufw", "UfwBackend",
            "ufw: vrrpfw's lines in ufw-before-input/-output, at runtime and in /etc/ufw/before*.rules"),
}
NAMES = ("auto",) + tuple(BACKENDS)


def load(name: str) -> Type[Backend]:
    module, cls, _ = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def describe_scan(scan: HostScan) -> str:
    legacy = ", ".join(scan.legacy_tables) or "none"
    nft = ", ".join(c.label for c in scan.nft_filtering) or "none"
    if not scan.nft_rules_read:
        nft = "not listed (firewalld answers on the system bus)"
    if scan.nft_error:
        nft = f"unknown ({scan.nft_error})"
    variant = scan.iptables_variant or "not installed"
    ufw = scan.ufw.found if scan.ufw is not None else "not installed"
    return (f"legacy iptables tables: {legacy}; nf_tables chains that may drop on VRRP's path: {nft}; "
            f"`iptables` command: {variant}; ufw: {ufw}")


def choose_auto(scan: HostScan) -> Tuple[List[str], str]:
    """(backend names, reason): firewalld alone where it answers, ufw alone
    where it is active (it owns the filter table and restores it from its
    own files, so rules written past it are lost at its next reload), else
    every layer that filters; an empty list when nothing filters VRRP."""
    seen = describe_scan(scan)
    unread = []
    if scan.legacy_unreadable:
        unread.append("the legacy iptables tables (/proc/net/ip_tables_names)")
    if scan.nft_error and PERMISSION in scan.nft_error:
        unread.append("nf_tables")
    if unread:
        raise EnvironmentProblem(f"cannot read {' and '.join(unread)}: vrrpfw cannot tell what blocks "
                                 "VRRP (run it as root)")
    if not scan.nft_available and scan.nft_error and scan.iptables_variant == "nf_tables":
        raise EnvironmentProblem(f"{scan.nft_error}, but this host's iptables is iptables-nft, whose chains "
                                 "vrrpfw reads through nft: install nftables (its `nft` command)")
    if scan.firewalld_bus:
        return ["firewalld"], "firewalld answers on the system bus and manages this host"
    if scan.firewalld_tables:
        raise BackendUnavailable(
            f"firewalld's nf_tables table ({', '.join(scan.firewalld_tables)}) exists but firewalld "
            "does not answer on the system bus (not running? DBUS_SYSTEM_BUS_ADDRESS?); "
            f"found {seen}")
    ufw = scan.ufw
    if ufw is not None and ufw.active:
        variant = "iptables-nft" if ufw.layer == "nft" else "iptables-legacy"
        return ["ufw"], (f"ufw is active ({UFW_CONF} ENABLED=yes, its chains loaded in {variant}'s filter "
                         "table): vrrpfw's lines go into ufw-before-input/-output and /etc/ufw/before.rules "
                         "(before6.rules), which ufw restores at every start")
    if ufw is not None and ufw.enabled and not scan.other_netns:
        raise BackendUnavailable(
            f"ufw is enabled in {UFW_CONF} but its chains are not loaded (ufw not started?): rules written "
            "now would be lost when it starts; start ufw (`ufw enable`) first, or name a backend; "
            f"found {seen}")
    layers, why = [], []
    if scan.legacy_filter:
        layers.append("iptables")
        why.append("legacy iptables tables are in use: " + ", ".join(scan.legacy_tables))
    if scan.nft_filtering:
        layers.append("nftables")
        why.append("nf_tables chains filter: " + ", ".join(c.label for c in scan.nft_filtering))
    if not layers:
        return [], f"found {seen}"
    return layers, "; ".join(why)


def select_layers(name: str, options: Options, scan: Optional[HostScan] = None
                  ) -> Tuple[List[Backend], str]:
    """The backends to run, in order, and why."""
    if name not in NAMES:
        raise InputError(f"unknown backend {name!r}; choose one of: {', '.join(NAMES)}")
    if scan is None:
        from ..host.hostscan import scan as scan_host

        scan = scan_host(firewalld_first=True)
    if name == "auto":
        names, reason = choose_auto(scan)
    else:
        names, reason = [name], f"--backend {name}"
    options.layers = tuple(names)
    out = []
    for n in names:
        cls = load(n)
        avail = cls.availability()
        if not avail.usable:
            raise BackendUnavailable(f"backend {n} is not usable: {avail.reason}")
        out.append(cls(options, scan))  # type: ignore[call-arg]
    return out, reason


def select(name: str, options: Options, scan: Optional[HostScan] = None) -> Backend:
    """One backend (the first layer ``auto`` would use)."""
    backends, reason = select_layers(name, options, scan)
    if not backends:
        raise BackendUnavailable(f"nothing blocks VRRP here ({reason})")
    return backends[0]
