"""This namespace's bridges, their ports and br_netfilter's switches.

Asked of the kernel through ``ip -j -d link show`` (netlink: right in
whatever namespace the calling thread has joined, where /sys/class/net
shows the namespace sysfs was mounted in) and /proc/sys/net/bridge (per
network namespace; absent where br_netfilter is not loaded, and then
nothing hands bridged frames to the ip-family hooks).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from ...host.run import Started
from ...host.which import which
from ..path_model import Bridge

SYSCTLS = "/proc/sys/net/bridge"


def _calls(loaded: Optional[bool], sysctl: Optional[bool], own: Any) -> Optional[bool]:
    """br_netfilter hands a bridge's frames of one family to the ip hooks
    when it is loaded and the namespace's sysctl or the bridge's own
    ``nf_call_ip*tables`` option is on."""
    if loaded is False:
        return False
    if sysctl is True or own == 1:
        return None if loaded is None else True
    if sysctl is None or own is None or loaded is None:
        return None
    return False


def bridges_from_links(links: List[Any], loaded: Optional[bool], call_iptables: Optional[bool],
                       call_ip6tables: Optional[bool]) -> Dict[str, Bridge]:
    """Pure: bridges from ``ip -j -d link show`` output.  ``loaded``: is
    br_netfilter loaded in this kernel (/proc/sys/net/bridge exists);
    ``call_*``: the namespace's ``bridge-nf-call-ip(6)tables``; None where
    not known."""
    out: Dict[str, Bridge] = {}
    for link in links:
        info = link.get("linkinfo") or {}
        if info.get("info_kind") != "bridge":
            continue
        name = str(link.get("ifname"))
        data = info.get("info_data") or {}
        ports = tuple(str(li.get("ifname")) for li in links if li.get("master") == name)
        out[name] = Bridge(name, ports, _calls(loaded, call_iptables, data.get("nf_call_iptables")),
                           _calls(loaded, call_ip6tables, data.get("nf_call_ip6tables")))
    return out


def _sysctl(name: str) -> Optional[bool]:
    try:
        with open(os.path.join(SYSCTLS, name), encoding="ascii") as f:
            return f.read().strip() == "1"
    except OSError:
        return None


def _netns() -> Optional[int]:
    """The calling thread's network namespace (None where it cannot be told)."""
    try:
        return os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        return None


def _start(*flags: str) -> Optional[Started]:
    ip = which("ip")
    return None if ip is None else Started([ip, "-j", *flags, "link", "show"], timeout=30)


def _parsed(started: Optional[Started]) -> Optional[List[Any]]:
    if started is None:
        return None
    try:
        ran = started.result()
        links = json.loads(ran.out or "[]") if ran.ok else None
    except ValueError:  # output that is not UTF-8, or not JSON
        return None
    return links if isinstance(links, list) else None


def _links(*flags: str) -> Optional[List[Any]]:
    """``ip -j FLAGS link show``, parsed; None where it cannot be read (no
    ``ip`` command, it failed, or its output is not a JSON list)."""
    return _parsed(_start(*flags))


# links_shown()'s listing started early (see start_links): (namespace, listing), at most one
_early: List[Tuple[Optional[int], Started]] = []


def start_links() -> None:
    """Start the listing :func:`links_shown` will read next, so that it runs
    while the caller waits for something else; :func:`drop_links` kills and
    reaps it where it was not read."""
    drop_links()
    started = _start("-d", "-N")
    if started is not None:
        _early.append((_netns(), started))


def drop_links() -> None:
    """Kill and reap the listing :func:`start_links` started, where unread."""
    while _early:
        _early.pop()[1].close()


def links_shown() -> Optional[List[Any]]:
    """One ``ip -j -d -N link show`` for both readers of the path model:
    what :func:`read` reads of ``-d`` (each link's name, master and
    linkinfo) ``-N`` leaves as it is, and the group ``-N`` makes a number
    ``-d`` leaves as it is (tests/integration/judge/test_links_shown.py
    compares the three listings).  None where it cannot be read: then each
    reader runs its own listing, as before.  The listing start_links()
    started is used once, in the namespace it was started in."""
    early = _early.pop() if _early else None
    if early is not None and early[0] is not None and early[0] == _netns():
        return _parsed(early[1])
    if early is not None:
        early[1].close()
    return _links("-d", "-N")


def read(links: Optional[List[Any]] = None) -> Optional[Dict[str, Bridge]]:
    """The bridges of the current network namespace, from ``links`` (see
    :func:`links_shown`) or else ``ip -j -d link show``; None where they
    cannot be read (no ``ip`` command, or it failed)."""
    if links is None:
        links = _links("-d")
    if links is None:
        return None
    loaded = os.path.isdir(SYSCTLS)
    return bridges_from_links(links, loaded, _sysctl("bridge-nf-call-iptables") if loaded else False,
                              _sysctl("bridge-nf-call-ip6tables") if loaded else False)
