"""Does one rule match the advert?  :func:`match_rule` and the per-match
tests behind it (protocol, addresses, interfaces, extensions such as
conntrack state, TOS/DSCP, owner, rpfilter, physdev, TTL), each answering
yes, no or maybe (:class:`~vrrpfw.judge.rules.Tri`).

Matches we cannot judge (rates, sockets, dynamic sets, the unknown source
address, a mark some rule on the path may set) make a rule *maybe* match;
:mod:`.chaineval` turns a maybe that could drop into an uncertain outcome.
Split from :mod:`.chaineval`, which walks chains and uses these.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..model import AH_PROTO, VRRP_PROTO, Direction
from .packet_values import _flip, addr_in, match_set, member, packet_value
from .rules import (
    IPV6_EXTENSION_HEADER_MATCHES,
    OTHER_PROTOCOL_MATCHES,
    FwRule,
    Match,
    Packet,
    Tri,
    _number,
)

RECENT_MODES = ("set", "rcheck", "update", "remove")


def match_recent(m: Match, pkt: Packet) -> Tri:
    """``-m recent [!] --set|--rcheck|--update|--remove --name N
    [--seconds S] [--hitcount H] [--rttl] [--rsource|--rdest] [--mask M]``:
    ``--set`` adds the source and matches; the other modes test the list,
    judged by the packet's dynamic state (:class:`vrrpfw.judge.dynamic.DynState`),
    a maybe where it was not read."""
    mode, neg = None, False
    for key in RECENT_MODES:
        words = m.param(key)
        if words is not None:
            mode, neg = key, bool(words) and words[0] == "!"
    if mode is None:
        return Tri.MAYBE
    if mode == "set":
        return Tri.NO if neg else Tri.YES  # adds the source and matches
    if pkt.state is None:
        return Tri.MAYBE
    return pkt.state.recent_match(m, mode, neg, pkt)


def _split_neg(value: Optional[str]) -> Tuple[bool, Optional[str]]:
    if value is None:
        return False, None
    value = value.strip()
    if value.startswith("!"):
        return True, value[1:].strip()
    return False, value


def match_protocol(value: Optional[str], proto_number: int = VRRP_PROTO) -> Tri:
    """iptables' ``-p``: does the packet's protocol (112, or 51 for AH)
    match ``value``?"""
    neg, proto = _split_neg(value)
    if proto is None or proto.lower() in ("", "all", "0", "ip"):
        return Tri.YES if not neg else Tri.NO
    want = _number(proto)
    if want is None:
        return Tri.MAYBE
    return _flip(Tri.YES if want == proto_number else Tri.NO, neg)


def match_address(value: Optional[str], addr: Optional[str], within: Optional[str] = None) -> Tri:
    """``addr`` None means we do not know it (the peer's source address);
    ``within`` is what we know of it then (the interface's subnet)."""
    neg, net = _split_neg(value)
    if net is None:
        return Tri.YES
    return _flip(addr_in(net, addr, within), neg)


def match_iface(pattern: Optional[str], iface: Optional[str]) -> Tri:
    """iptables semantics: ``eth+`` is a prefix match, ``!`` negates;
    ``iface`` "" means the packet has no interface on that side."""
    neg, pat = _split_neg(pattern)
    if pat is None or pat in ("", "+"):
        return Tri.YES if not neg else Tri.NO
    if iface is None:
        return Tri.MAYBE
    if iface == "":  # no interface on this side of the path
        return _flip(Tri.NO, neg)
    hit = iface.startswith(pat[:-1]) if pat.endswith("+") else iface == pat
    return _flip(Tri.YES if hit else Tri.NO, neg)


def _negated(words: Optional[Tuple[str, ...]]) -> Tuple[bool, List[str]]:
    if not words:
        return False, []
    neg = words[0] == "!"
    rest = list(words[1:] if neg else words)
    values = [v for w in rest for v in w.replace(",", " ").split()]
    return neg, values


def _state_words(m: Match) -> Tuple[bool, List[str]]:
    return _negated(m.param("ctstate") or m.param("state"))


def match_extension(m: Match, pkt: Packet) -> Tri:
    """Judge the matches whose answer is fixed for every VRRP advert."""
    name = m.name
    if name in ("comment", "always"):
        return Tri.YES
    if name == "never":  # e.g. an nft rule for IPv6 only
        return Tri.NO
    if name in OTHER_PROTOCOL_MATCHES or name in IPV6_EXTENSION_HEADER_MATCHES:
        return Tri.NO
    if name == "ah":  # --ahspi: an AH-wrapped advert's SPI is not known here
        return Tri.NO if pkt.proto != AH_PROTO else Tri.MAYBE
    if name in ("ttl", "hl"):
        return _match_ttl(m, pkt.ttl)
    if name == "set" and m.param("match-set") is not None:  # iptables' ipset match: the packet's state
        return Tri.MAYBE if pkt.state is None else pkt.state.ipset_match(m, pkt)
    if name == "set":  # nft-style membership (judge.nft)
        return match_set(m, pkt)
    if name == "recent":
        return match_recent(m, pkt)
    if name == "pkttype":
        neg, vals = _negated(m.param("pkt-type") or m.param("pkt_type"))
        if not vals:
            return Tri.MAYBE
        return _flip(member("pkttype", vals[0], packet_value(pkt, "pkttype")), neg)
    if name == "addrtype":
        if m.param("src-type") or m.param("src_type"):
            return Tri.MAYBE
        neg, vals = _negated(m.param("dst-type") or m.param("dst_type"))
        if not vals:
            return Tri.MAYBE
        hit = (packet_value(pkt, "addrtype_dst") or "").upper() in (v.upper() for v in vals)
        return _flip(Tri.YES if hit else Tri.NO, neg)
    if name in ("conntrack", "state"):
        neg, vals = _state_words(m)
        if not vals or len(m.params) != 1:
            return Tri.MAYBE  # --ctstatus, --ctorigsrc ...: not judged
        if pkt.ct_state is None:
            return Tri.MAYBE
        hit = pkt.ct_state.upper() in (v.upper() for v in vals)
        return _flip(Tri.YES if hit else Tri.NO, neg)
    if name in ("tos", "dscp") and pkt.tos is None:
        return Tri.MAYBE
    if name == "tos":
        return _match_tos(m, pkt.tos or 0)
    if name == "dscp":
        return _match_dscp(m, (pkt.tos or 0) >> 2)
    if name == "owner":
        return _match_owner(m, pkt)
    if name == "rpfilter":
        return _match_rpfilter(m, pkt)
    if name == "physdev":
        return match_physdev(m, pkt)
    if name in ("mark", "connmark"):
        neg, vals = _negated(m.param("mark"))
        have = pkt.mark
        if name == "connmark":
            if pkt.ct_state in ("invalid", "untracked"):
                return Tri.NO  # no connection: xt_connmark fails, inverted or not
            have = None if pkt.ct_state is None else pkt.ctmark
        if len(vals) != 1 or have is None:
            return Tri.MAYBE
        value, _, mask = vals[0].partition("/")
        try:
            want, bits = int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF
        except ValueError:
            return Tri.MAYBE
        return _flip(Tri.YES if (have & bits) == want else Tri.NO, neg)
    return Tri.MAYBE


# iptables' symbolic TOS values (libxt_tos), compared under mask 0x3f.
TOS_NAMES = {"minimize-delay": 0x10, "maximize-throughput": 0x08, "maximize-reliability": 0x04,
             "minimize-cost": 0x02, "normal-service": 0x00}


def _match_tos(m: Match, tos: int) -> Tri:
    """``-m tos --tos VALUE[/MASK]`` or a symbolic name."""
    neg, vals = _negated(m.param("tos"))
    if len(vals) != 1 or len(m.params) != 1:
        return Tri.MAYBE
    value, _, mask = vals[0].partition("/")
    if value.lower() in TOS_NAMES:
        want, bits = TOS_NAMES[value.lower()], 0x3F
    else:
        v, b = _number(value), (_number(mask) if mask else 0xFF)
        if v is None or b is None:
            return Tri.MAYBE
        want, bits = v, b
    return _flip(Tri.YES if (tos & bits) == want else Tri.NO, neg)  # xt_tos: value not masked


def _match_dscp(m: Match, dscp: int) -> Tri:
    """``-m dscp --dscp N`` or ``--dscp-class NAME``."""
    neg, vals = _negated(m.param("dscp") or m.param("dscp-class"))
    if len(vals) != 1 or len(m.params) != 1:
        return Tri.MAYBE
    want = _number(vals[0])
    if want is None:
        return Tri.MAYBE
    return _flip(Tri.YES if want == dscp else Tri.NO, neg)


def _id_range(text: str) -> Optional[Tuple[int, int]]:
    lo, _, hi = text.partition("-")
    a, b = _number(lo), _number(hi) if hi else _number(lo)
    return None if a is None or b is None else (a, b)


def _match_owner(m: Match, pkt: Packet) -> Tri:
    """``-m owner``: only locally sent packets have a socket, keepalived's,
    which runs as root (uid and gid 0)."""
    if pkt.direction is Direction.IN:
        return Tri.NO
    for key, words in m.params:
        neg = bool(words) and words[0] == "!"
        rest = [w for w in words if w != "!"]
        if key == "socket-exists":
            hit = Tri.YES
        elif key in ("uid-owner", "gid-owner") and len(rest) == 1:
            span = _id_range(rest[0])
            if span is None:
                return Tri.MAYBE
            hit = Tri.YES if span[0] <= 0 <= span[1] else Tri.NO
        else:
            return Tri.MAYBE  # --suppl-groups and the like: not judged
        one = _flip(hit, neg)
        if one is Tri.NO:
            return Tri.NO
    return Tri.YES


def _match_rpfilter(m: Match, pkt: Packet) -> Tri:
    """``-m rpfilter [--loose] [--validmark] [--accept-local] [--invert]``:
    the reverse-path lookup, as nft's ``fib saddr . iif oif``."""
    opts = {k for k, _ in m.params}
    if opts - {"loose", "validmark", "accept-local", "invert"} or "loose" in opts:
        return Tri.MAYBE  # --loose: any route back, through any interface; not judged
    key = "fib_rpf_mark" if "validmark" in opts else "fib_rpf"
    found = packet_value(pkt, key)
    if found is None:
        return Tri.MAYBE
    return _flip(Tri.YES if found == "present" else Tri.NO, "invert" in opts)


PHYSDEV_FLAGS = ("physdev-is-in", "physdev-is-out", "physdev-is-bridged")


def match_physdev(m: Match, pkt: Packet) -> Tri:
    """``-m physdev`` as xt_physdev decides it.  Without br_netfilter's info
    on the packet (no bridge, br_netfilter off for its family, or a packet
    this host sends), every option not negated fails and a rule of negated
    options only matches.  With it, for an advert to this host: the port it
    came in on is ``--physdev-in``, it is "in" and not bridged, and it has no
    output port, so any ``--physdev-out`` (negated or not) fails.  All
    measured with real packets (tests/integration/judge/test_bridge_path.py)."""
    if pkt.brnf is None or not m.params:
        return Tri.MAYBE
    opts = []
    for key, words in m.params:
        neg = bool(words) and words[0] == "!"
        value = words[-1] if words and words[-1] != "!" else None
        opts.append((key, neg, value))
    if not pkt.brnf:
        return Tri.NO if any(not neg for _, neg, _ in opts) else Tri.YES
    if pkt.direction is not Direction.IN:
        return Tri.MAYBE  # physdev info on a packet this host sends: not an advert's path
    result = Tri.YES
    for key, neg, value in opts:
        if key == "physdev-out":
            return Tri.NO  # no output port: xt_physdev fails whatever the negation
        if key == "physdev-is-in":
            hit = Tri.YES
        elif key in ("physdev-is-out", "physdev-is-bridged"):
            hit = Tri.NO
        elif key == "physdev-in" and value is not None:
            hit = match_iface(value, pkt.port)
        else:
            return Tri.MAYBE
        one = _flip(hit, neg)
        if one is Tri.NO:
            return Tri.NO
        if one is Tri.MAYBE:
            result = Tri.MAYBE
    return result


TTL_TESTS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
             "lt": lambda a, b: a < b, "gt": lambda a, b: a > b}


def _match_ttl(m: Match, ttl: Optional[int]) -> Tri:
    """``-m ttl --ttl-eq N`` / ``-m hl --hl-eq N`` (and ne, lt, gt)."""
    if ttl is None:
        return Tri.MAYBE
    for key, words in m.params:
        test = TTL_TESTS.get(key.rsplit("-", 1)[-1])
        if test is None or not words:
            return Tri.MAYBE
        neg = words[0] == "!"
        value = _number(words[-1])
        if value is None:
            return Tri.MAYBE
        hit = test(ttl, value)
        if hit == neg:
            return Tri.NO
    return Tri.YES if m.params else Tri.MAYBE


def match_rule(rule: FwRule, pkt: Packet) -> Tri:
    """All of a rule's conditions: NO wins, then MAYBE, else YES."""
    inbound = pkt.direction is Direction.IN
    # Inbound there is no output interface, outbound no input interface:
    # "-i eth0" never matches in OUTPUT, nft's 'iifname != "eth0"' always does.
    results = [
        match_protocol(rule.protocol, pkt.proto),
        match_address(rule.dst, pkt.group),
        match_address(rule.src, pkt.src, pkt.src_net),
        match_iface(rule.in_iface, pkt.interface if inbound else ""),
        match_iface(rule.out_iface, "" if inbound else pkt.interface),
    ]
    results.extend(match_extension(m, pkt) for m in rule.matches)
    if Tri.NO in results:
        return Tri.NO
    if Tri.MAYBE in results:
        return Tri.MAYBE
    return Tri.YES
