"""What the advert carries under each match key (:func:`packet_value`:
addresses, interfaces, marks, lengths, ... as nft and iptables name them)
and whether a value, a range, a prefix or a set holds it (:func:`member`,
:func:`addr_in`, :func:`match_set`).

Split from :mod:`.chaineval`: the per-match tests (:mod:`.matches`) and
nft's generic ``key op value`` matches both stand on these lookups.
"""

from __future__ import annotations

import ipaddress
from typing import Optional, Tuple

from vrrpfw.record import replace

from ..model import Direction
from .rules import (
    BREAK,
    NO_DEVICE,
    Match,
    Packet,
    Tri,
    _number,
)


def _flip(t: Tri, negated: bool) -> Tri:
    if not negated or t is Tri.MAYBE:
        return t
    return Tri.NO if t is Tri.YES else Tri.YES


def addr_in(value: str, addr: Optional[str], within: Optional[str] = None) -> Tri:
    """Is ``addr`` in ``value`` (an address, prefix or ``a-b`` range)?  With
    ``addr`` unknown but known to lie ``within`` a network (the peer is on the
    interface's subnet), the answer is certain when the subnet falls wholly
    inside or wholly outside ``value``."""
    try:
        if "-" in value and not value.startswith("-"):
            first, last = (ipaddress.ip_address(v.strip()) for v in value.split("-", 1))
            if addr is not None:
                a = ipaddress.ip_address(addr)
                if a.version != first.version:
                    return Tri.NO
                return Tri.YES if first <= a <= last else Tri.NO  # type: ignore[operator]
            if within is None:
                return Tri.MAYBE
            sub = ipaddress.ip_network(within, strict=False)
            if sub.version != first.version:
                return Tri.NO
            if first <= sub.network_address and sub.broadcast_address <= last:  # type: ignore[operator]
                return Tri.YES
            if sub.broadcast_address < first or last < sub.network_address:  # type: ignore[operator]
                return Tri.NO
            return Tri.MAYBE
        network = ipaddress.ip_network(value, strict=False)
        if addr is not None:
            a = ipaddress.ip_address(addr)
            if a.version != network.version:
                return Tri.NO  # an IPv4 address never matches an IPv6 prefix
            return Tri.YES if a in network else Tri.NO
        if within is None:
            return Tri.YES if network.prefixlen == 0 else Tri.MAYBE
        sub = ipaddress.ip_network(within, strict=False)
        if sub.version != network.version:
            return Tri.NO
        if network.prefixlen == 0 or sub.subnet_of(network):  # type: ignore[arg-type]
            return Tri.YES
        return Tri.NO if not network.overlaps(sub) else Tri.MAYBE
    except ValueError:
        return Tri.MAYBE


def packet_value(pkt: Packet, key: str) -> Optional[str]:
    """What the advert carries for an nft/iptables selector; None if unknown.
    An empty string is a known "nothing" (no input interface on output)."""
    inbound = pkt.direction is Direction.IN
    if key == "iifname":
        return pkt.interface if inbound else ""
    if key == "oifname":
        return "" if inbound else pkt.interface
    if key in ("l4proto", "protocol", "nexthdr"):
        return str(pkt.proto)
    if key == "daddr":
        return pkt.group
    if key == "saddr":
        return pkt.src
    if key == "pkttype":
        # On output the skb is not yet classified: not judged.  A unicast
        # advert to this host's own address is "host".
        if not inbound:
            return None
        return "multicast" if pkt.multicast else "host"
    if key == "nfproto":
        return pkt.family
    if key in ("ibrname", "obrname"):
        # Only bridge chains have it (the bridge of the port the frame crosses).
        return pkt.bridge if (key == "ibrname") == inbound else ("" if pkt.bridge is not None else None)
    if key == "ether_daddr":
        return multicast_mac(pkt.group) if pkt.multicast else None  # a unicast peer's MAC: unknown
    if key == "ethertype":
        return "ip" if pkt.family == "ipv4" else "ip6"
    if key == "ct_state":
        return pkt.ct_state
    if key == "mark":
        return None if pkt.mark is None else str(pkt.mark)
    if key in ("fib_daddr_type", "addrtype_dst"):
        # The route type of the destination: the group, this host's own
        # address (a unicast advert received), or the peer's (one sent).
        if pkt.multicast:
            return "multicast"
        return "local" if inbound else "unicast"
    if key in ("ttl", "hoplimit"):
        return None if pkt.ttl is None else str(pkt.ttl)
    # By index: nft lists an existing device by its name.  A missing device
    # reads as index 0 (kernel 5.5 on; groups, types and sockets break):
    # no name equals it, so ``iif != "lo"`` on output matches (measured).
    if key == "iif":
        return pkt.interface if inbound else NO_DEVICE
    if key == "oif":
        return NO_DEVICE if inbound else pkt.interface
    if key in ("iifgroup", "oifgroup"):
        if (key == "iifgroup") != inbound:
            return BREAK
        return None if pkt.iface_group is None else str(pkt.iface_group)
    if key in ("skuid", "skgid"):
        # Only locally sent packets have a socket: keepalived's, which runs as root.
        return BREAK if inbound else "0"
    if key == "dscp":
        return None if pkt.tos is None else str(pkt.tos >> 2)
    if key == "ecn":
        return None if pkt.tos is None else str(pkt.tos & 3)
    if key == "version":
        return "4" if pkt.family == "ipv4" else "6"
    if key == "hdrlength":
        return "5" if pkt.family == "ipv4" else None
    if key == "frag_off":
        return "0" if pkt.family == "ipv4" else None
    if key == "ct_status":
        if pkt.ct_state in ("invalid", "untracked"):
            return BREAK  # no connection: nft's ct expression breaks
        return None if pkt.ct_state is None else ""
    if key == "fib_rpf_mark":
        # Keyed by the mark as well: judged like fib_rpf only where the mark
        # is known to be 0 (no rule on the path sets one); policy routing by
        # fwmark 0 is not modelled, as no route table is for fib_rpf.
        if pkt.mark is None:
            return None
        key = "fib_rpf"
    if key == "fib_rpf":
        # A peer on the interface's own subnet has a route back through it.
        if not inbound or pkt.src_net is None:
            return None
        if pkt.src is None or addr_in(pkt.src_net, pkt.src) is Tri.YES:
            return "present"
        return None
    return None


def multicast_mac(group: str) -> Optional[str]:
    """The ethernet address a multicast group is sent to: 01:00:5e and the
    group's low 23 bits (224.0.0.18: 01:00:5e:00:00:12); 33:33 and the low
    32 bits for IPv6 (ff02::12: 33:33:00:00:00:12)."""
    try:
        a = ipaddress.ip_address(group)
    except ValueError:
        return None
    if not a.is_multicast:
        return None
    if a.version == 4:
        low = int(a) & 0x7FFFFF
        raw = bytes([0x01, 0x00, 0x5E, low >> 16, (low >> 8) & 0xFF, low & 0xFF])
    else:
        raw = b"\x33\x33" + a.packed[-4:]
    return ":".join(f"{b:02x}" for b in raw)


NUMERIC_KEYS = {"l4proto", "protocol", "nexthdr", "mark", "ttl", "hoplimit", "frag_off", "skuid", "skgid",
                "dscp", "ecn", "version", "hdrlength", "iifgroup", "oifgroup"}
# iptables' pkttype names that nft spells otherwise (libxt_pkttype: unicast = PACKET_HOST).
PKTTYPE_ALIASES = {"unicast": "host"}


def member(key: str, value: str, actual: Optional[str]) -> Tri:
    """Does the packet's ``actual`` value fall under one set element?"""
    if actual is None:
        return Tri.MAYBE
    if key in ("iifname", "oifname", "ibrname", "obrname"):
        if value.endswith("*") and not value.endswith("\\*"):
            return Tri.YES if actual.startswith(value[:-1]) and actual else Tri.NO
        return Tri.YES if value.replace("\\*", "*") == actual else Tri.NO
    if key in ("saddr", "daddr"):
        return addr_in(value, actual)
    if key == "ether_daddr":
        return Tri.YES if value.lower() == actual.lower() else Tri.NO
    if key in ("iif", "oif"):
        # A number is an index nft could not name: no such device here.
        return Tri.YES if value == actual else Tri.NO
    if key in NUMERIC_KEYS:
        have = _number(actual)
        if "-" in value and _number(value) is None:  # a range, not a name like ipv6-icmp
            lo_s, hi_s = value.split("-", 1)
            lo, hi = _number(lo_s), _number(hi_s)
            if lo is None or hi is None or have is None:
                return Tri.MAYBE
            return Tri.YES if lo <= have <= hi else Tri.NO
        want = _number(value)
        if want is None or have is None:
            return Tri.MAYBE
        return Tri.YES if want == have else Tri.NO
    if key == "pkttype":  # iptables says "unicast" where nft says "host" (PACKET_HOST)
        return Tri.YES if PKTTYPE_ALIASES.get(value.lower(), value.lower()) == actual else Tri.NO
    if key == "ct_state":
        return Tri.YES if value.lower() == actual.lower() else Tri.NO
    if key == "ct_status":
        return Tri.YES if actual and value.lower() in actual.split(",") else Tri.NO
    return Tri.YES if value.lower() == actual.lower() else Tri.NO


def match_set(m: Match, pkt: Packet) -> Tri:
    """An nft-style membership test: ``key`` (one selector, or several
    joined by `` . `` for a concatenation) in ``values``; any element that
    matches makes the whole test match.  ``unknown`` marks a set whose
    elements vrrpfw could not read (dynamic, or not listed)."""
    keys = (m.param("key") or ("",))
    neg = bool(m.param("neg"))
    if m.param("unknown"):
        return Tri.MAYBE
    if any(packet_value(pkt, key) == BREAK for key in keys[0].split(" . ")):
        return Tri.NO  # the expression breaks: the rule does not match, negated or not
    dynamic = m.param("dynamic")
    if dynamic:
        # A set that packets or timeouts change: its current elements
        # decide, unless a rule can add the advert's key to it.
        state = None if pkt.state is None else pkt.state.now()  # a lazy state is read here
        if state is None:
            return Tri.MAYBE
        found = _elements_match(m, replace(pkt, state=None), keys)
        if found is not Tri.YES and any(state.fillable(k, pkt) for k in dynamic):
            found = Tri.MAYBE
        return _flip(found, neg)
    return _flip(_elements_match(m, pkt, keys), neg)


def _elements_match(m: Match, pkt: Packet, keys: Tuple[str, ...]) -> Tri:
    parts = keys[0].split(" . ")
    mask_words = m.param("mask")
    best = Tri.NO
    for element in m.param("values") or ():
        pieces = element.split(" . ")
        if len(pieces) != len(parts):
            best = Tri.MAYBE
            continue
        tri = Tri.YES
        for key, piece in zip(parts, pieces):
            actual = packet_value(pkt, key)
            if key == "saddr" and actual is None:
                one = addr_in(piece, None, pkt.src_net)
                tri = Tri.NO if one is Tri.NO or tri is Tri.NO else (Tri.MAYBE if one is Tri.MAYBE else tri)
                if tri is Tri.NO:
                    break
                continue
            if mask_words and actual is not None:
                masked = _number(actual)
                bits = _number(mask_words[0])
                actual = None if masked is None or bits is None else str(masked & bits)
            one = member(key, piece, actual)
            if one is Tri.NO:
                tri = Tri.NO
                break
            if one is Tri.MAYBE:
                tri = Tri.MAYBE
        if tri is Tri.YES:
            best = Tri.YES
            break
        if tri is Tri.MAYBE:
            best = Tri.MAYBE
    return best
