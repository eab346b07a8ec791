"""Addresses for a replica's two ends: the host's own (or stand-ins where it
has none) and, per peer, one on the same subnet, per family
(:func:`plan_peers` -> :class:`PeerPlan`).  Pure: plans, never touches an
interface.

Split from :mod:`.replica` (which builds the namespaces with these
addresses) so that planning is read and tested on its own.
"""

from __future__ import annotations

import ipaddress
from typing import Any, List, Sequence, Set, Tuple

from vrrpfw.record import field, record

from ..errors import InputError

# An address for an interface that has none (TEST-NET-1, RFC 5737).
STANDIN_ADDR = "192.0.2.1/24"
# IPv6 stand-ins (link-local for multicast, as keepalived sends from it; ULA for unicast).
STANDIN_ADDRS6 = ("fe80::1/64", "fd00::1/64")


@record
class PeerPlan:
    host_cidrs: List[str]
    peer_cidrs: List[str]
    sources: List[str]  # the addresses adverts come from, in order
    limits: List[str] = field(default_factory=list)
    # IPv6: the same, plus the limits that matter only when IPv6 is measured.
    host_cidrs6: List[str] = field(default_factory=list)
    peer_cidrs6: List[str] = field(default_factory=list)
    sources6: List[str] = field(default_factory=list)
    limits6: List[str] = field(default_factory=list)
    given6: bool = False  # IPv6 peers were given (else the peer is made up)

    def local(self, family: str) -> str:
        """The host's unicast address of ``family`` (keepalived's
        unicast_src_ip default): IPv4's first; IPv6's first global one, else
        its link-local one."""
        if family == "ipv4":
            return self.host_cidrs[0].split("/")[0]
        addrs = [c.split("/")[0] for c in self.host_cidrs6]
        return next((a for a in addrs if not a.lower().startswith("fe80")), addrs[0])


def plan_peers(iface: str, addrs: Sequence[str], peers: Sequence[str],
               addrs6: Sequence[str] = ()) -> PeerPlan:
    """Addresses for both ends: the host's own, and per peer one on the same
    subnet (given ones, else host address + 1 or the next free one), per
    family: IPv6 peers are planned against ``addrs6``."""
    v6 = [p for p in peers if ":" in p]
    plan = _plan4(iface, addrs, [p for p in peers if ":" not in p])
    plan.host_cidrs6, plan.peer_cidrs6, plan.sources6, plan.limits6 = _plan6(iface, addrs6, v6)
    plan.given6 = bool(v6)
    if v6:  # IPv6 was asked for: what the replica made up for it is a limit of the answer
        plan.limits.extend(plan.limits6)
    return plan


def _plan4(iface: str, addrs: Sequence[str], peers: Sequence[str]) -> PeerPlan:
    limits: List[str] = []
    host_cidrs = list(addrs)
    if not host_cidrs:
        host_cidrs = [STANDIN_ADDR]
        limits.append(f"{iface} has no IPv4 address: the replica gives it {STANDIN_ADDR}")
    ifaces = [ipaddress.IPv4Interface(c) for c in host_cidrs]
    used = {i.ip for i in ifaces}
    peer_cidrs: List[str] = []
    sources: List[str] = []
    for p in peers:
        _place_peer(p, ipaddress.IPv4Address, iface, ifaces, used, peer_cidrs, sources, limits,
                    "subnets; without the host's routes rp_filter may judge it differently here")
    if not peers:
        first = ifaces[0]
        ip = _free_neighbour(first, used)
        prefix = first.network.prefixlen if ip in first.network and first.network.prefixlen < 32 else 32
        peer_cidrs.append(f"{ip}/{prefix}")
        sources.append(str(ip))
    return PeerPlan(host_cidrs, peer_cidrs, sources, limits)


def _place_peer(text: str, parse: Any, iface: str, ifaces: Sequence[Any], used: Set[Any],
                peer_cidrs: List[str], sources: List[str], limits: List[str], outside: str) -> None:
    """One given peer of either family: refused if it is not a unicast
    address or is the host's own; placed in the host's subnet holding it,
    else a host route (and a limit saying so)."""
    try:
        ip = parse(text.strip())
    except ValueError:
        raise InputError(f"peer {text!r} is not an IPv4 or IPv6 address") from None
    if ip in used:
        raise InputError(f"peer {ip} is an address of {iface} itself")
    if ip.is_multicast or ip.is_loopback or ip.is_unspecified:
        raise InputError(f"peer {ip} is not a unicast address")
    net = next((i.network for i in ifaces if ip in i.network and i.network.prefixlen < ip.max_prefixlen),
               None)
    if net is None:
        limits.append(f"peer {ip} is outside {iface}'s {outside}")
    peer_cidrs.append(f"{ip}/{net.prefixlen if net is not None else ip.max_prefixlen}")
    sources.append(str(ip))
    used.add(ip)


def _plan6(iface: str, addrs6: Sequence[str], peers: Sequence[str]
           ) -> Tuple[List[str], List[str], List[str], List[str]]:
    """(host CIDRs, peer CIDRs, sources, limits) for IPv6.  Each end gets a
    link-local address (multicast adverts leave from it); a peer without a
    given address is the host's link-local + 1 (and global + 1 where the
    host has a global address), so unicast has somewhere to go."""
    limits: List[str] = []
    host = [ipaddress.IPv6Interface(c) for c in addrs6]
    if not any(i.ip.is_link_local for i in host):
        host.insert(0, ipaddress.IPv6Interface(STANDIN_ADDRS6[0]))
        limits.append(f"{iface} has no IPv6 link-local address: the replica gives it {STANDIN_ADDRS6[0]}")
    if not any(not i.ip.is_link_local for i in host):
        host.append(ipaddress.IPv6Interface(STANDIN_ADDRS6[1]))
        limits.append(f"{iface} has no global IPv6 address: the replica gives it {STANDIN_ADDRS6[1]} "
                      "for unicast")
    used = {i.ip for i in host}
    peer_cidrs: List[str] = []
    sources: List[str] = []
    for p in peers:
        _place_peer(p, ipaddress.IPv6Address, iface, host, used, peer_cidrs, sources, limits,
                    "IPv6 prefixes; without the host's routes the replica reaches it by a host route")
    # The peer always has a link-local address (IPv6 needs one) and, where the
    # host has global prefixes, an address in the first one.
    own = [i for i in host if i.ip.is_link_local][:1] + [i for i in host if not i.ip.is_link_local][:1]
    for i in own:
        if any(ipaddress.IPv6Address(c.split("/")[0]) in i.network for c in peer_cidrs):
            continue
        ip = i.ip + 1
        while ip in used:
            ip += 1
        used.add(ip)
        peer_cidrs.append(f"{ip}/{i.network.prefixlen}")
        if not peers and i.ip.is_link_local:
            sources.append(str(ip))  # keepalived multicasts from its link-local address
    return [str(i) for i in host], peer_cidrs, sources, limits


def _free_neighbour(iface: ipaddress.IPv4Interface, used: Set[ipaddress.IPv4Address]
                    ) -> ipaddress.IPv4Address:
    net = iface.network
    if net.prefixlen >= 31:
        for ip in net:
            if ip not in used:
                return ip
        return iface.ip + 1
    candidate = iface.ip + 1
    if candidate in net and candidate != net.broadcast_address and candidate not in used:
        return candidate
    for ip in net.hosts():
        if ip not in used:
            return ip
    raise InputError(f"no free address for a peer in {net}")


def neighbour_in(cidrs: Sequence[str], address: str) -> str:
    """The address of ``cidrs`` on the same prefix as ``address`` (else the first)."""
    ip = ipaddress.ip_address(address)
    for c in cidrs:
        if ip in ipaddress.ip_interface(c).network:
            return c.split("/")[0]
    return cidrs[0].split("/")[0]
