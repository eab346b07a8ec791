"""Would a VRRP packet get through this chain?  Pure, three-valued logic.

A rule that is merely *present* proves nothing: a DROP above it, or a jump
into a user chain that drops, decides first.  We walk the chain the way
netfilter does for one synthetic packet (protocol 112, the group, the
interface) and report the first rule that *certainly* decides.  Matches we
cannot judge without the packet's history or the kernel's state (conntrack,
sets, marks, rates, the unknown source address) make a rule *maybe* match;
a maybe-match that could drop makes the outcome uncertain, which we report
instead of guessing.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

from .model import COMMENT, VRRP_PROTO, Direction


class Tri(enum.Enum):
    NO = 0
    MAYBE = 1
    YES = 2


ACCEPTING = {"ACCEPT"}
DROPPING = {"DROP", "REJECT"}
# Targets that let the packet continue to the next rule.
NON_TERMINATING = {
    "LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "TRACE", "AUDIT", "CLASSIFY",
    "DSCP", "TOS", "TCPMSS", "SET", "CHECKSUM", "TEE", "CONNSECMARK",
    "SECMARK", "IDLETIMER", "LED", "TTL", "HL", "",
}
# Matches that only apply to other protocols: a VRRP packet never matches.
OTHER_PROTOCOL_MATCHES = {
    "tcp", "udp", "icmp", "icmp6", "sctp", "dccp", "udplite", "multiport",
    "tcpmss", "ah", "esp", "gre",
}
PROTO_NAMES = {"vrrp": VRRP_PROTO, "112": VRRP_PROTO}


@dataclass(frozen=True)
class Match:
    """An ``-m NAME`` match: ``params`` maps option name to its words
    (a leading ``"!"`` word means the option is negated)."""

    name: str
    params: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()

    def param(self, key: str) -> Optional[Tuple[str, ...]]:
        for k, v in self.params:
            if k == key:
                return v
        return None


@dataclass(frozen=True)
class FwRule:
    """An iptables rule as far as evaluation cares; fields use iptables'
    own spelling, ``"!"`` prefixed where negated, None where unset."""

    chain: str
    protocol: Optional[str] = None
    src: Optional[str] = None
    dst: Optional[str] = None
    in_iface: Optional[str] = None
    out_iface: Optional[str] = None
    matches: Tuple[Match, ...] = ()
    target: str = ""
    goto: bool = False
    text: str = ""

    @property
    def comment(self) -> Optional[str]:
        for m in self.matches:
            if m.name == "comment":
                words = m.param("comment")
                if words:
                    return " ".join(words)
        return None

    @property
    def is_vrrpfw(self) -> bool:
        return self.comment == COMMENT


@dataclass(frozen=True)
class Packet:
    """The synthetic VRRP advert evaluated against a chain."""

    direction: Direction
    interface: str
    group: str


class Outcome(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    RETURN = "return"  # fell off a user chain: continue in the caller
    POLICY = "policy"  # fell off a base chain: its policy decides
    UNCERTAIN = "uncertain"


@dataclass
class Decision:
    """Result of evaluating one base chain for one packet."""

    outcome: Outcome
    rule: Optional[FwRule] = None  # the rule that decided (None: policy)
    policy: Optional[str] = None
    reason: str = ""
    # Rules that might have dropped before the decision (uncertainty).
    doubts: List[FwRule] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        if self.outcome is Outcome.POLICY:
            return self.policy == "ACCEPT"
        return self.outcome is Outcome.ACCEPT


def _split_neg(value: Optional[str]) -> Tuple[bool, Optional[str]]:
    if value is None:
        return False, None
    value = value.strip()
    if value.startswith("!"):
        return True, value[1:].strip()
    return False, value


def _flip(t: Tri, negated: bool) -> Tri:
    if not negated or t is Tri.MAYBE:
        return t
    return Tri.NO if t is Tri.YES else Tri.YES


def match_protocol(value: Optional[str]) -> Tri:
    neg, proto = _split_neg(value)
    if proto is None or proto.lower() in ("", "all", "0", "ip"):
        return Tri.YES if not neg else Tri.NO
    hit = PROTO_NAMES.get(proto.lower()) == VRRP_PROTO
    return _flip(Tri.YES if hit else Tri.NO, neg)


def match_address(value: Optional[str], addr: Optional[str]) -> Tri:
    """``addr`` None means we do not know it (the peer's source address)."""
    neg, net = _split_neg(value)
    if net is None:
        return Tri.YES
    try:
        network = ipaddress.IPv4Network(net, strict=False)
    except ValueError:
        return Tri.MAYBE
    if network.prefixlen == 0:
        return _flip(Tri.YES, neg)
    if addr is None:
        return Tri.MAYBE
    return _flip(Tri.YES if ipaddress.IPv4Address(addr) in network else Tri.NO, neg)


def match_iface(pattern: Optional[str], iface: Optional[str]) -> Tri:
    """iptables semantics: ``eth+`` is a prefix match, ``!`` negates."""
    neg, pat = _split_neg(pattern)
    if pat is None or pat in ("", "+"):
        return Tri.YES if not neg else Tri.NO
    if iface is None:
        return Tri.MAYBE
    hit = iface.startswith(pat[:-1]) if pat.endswith("+") else iface == pat
    return _flip(Tri.YES if hit else Tri.NO, neg)


def _negated(words: Optional[Tuple[str, ...]]) -> Tuple[bool, List[str]]:
    if not words:
        return False, []
    neg = words[0] == "!"
    rest = list(words[1:] if neg else words)
    values = [v for w in rest for v in w.replace(",", " ").split()]
    return neg, values


def match_extension(m: Match, pkt: Packet) -> Tri:
    """Judge the matches whose answer is fixed for every VRRP advert."""
    name = m.name
    if name in ("comment", "always"):
        return Tri.YES
    if name == "never":  # e.g. an nft rule for IPv6 only
        return Tri.NO
    if name in OTHER_PROTOCOL_MATCHES:
        return Tri.NO
    if name == "pkttype":
        neg, vals = _negated(m.param("pkt-type") or m.param("pkt_type"))
        if not vals:
            return Tri.MAYBE
        return _flip(Tri.YES if vals[0].lower() == "multicast" else Tri.NO, neg)
    if name == "addrtype":
        if m.param("src-type") or m.param("src_type"):
            return Tri.MAYBE
        neg, vals = _negated(m.param("dst-type") or m.param("dst_type"))
        if not vals:
            return Tri.MAYBE
        hit = "MULTICAST" in (v.upper() for v in vals)
        return _flip(Tri.YES if hit else Tri.NO, neg)
    return Tri.MAYBE


def match_rule(rule: FwRule, pkt: Packet) -> Tri:
    """All of a rule's conditions: NO wins, then MAYBE, else YES."""
    inbound = pkt.direction is Direction.IN
    results = [
        match_protocol(rule.protocol),
        match_address(rule.dst, pkt.group),
        match_address(rule.src, None),
        match_iface(rule.in_iface, pkt.interface if inbound else None),
        match_iface(rule.out_iface, None if inbound else pkt.interface),
    ]
    # An -i match in OUTPUT (or -o in INPUT) never matches anything.
    if (not inbound and rule.in_iface) or (inbound and rule.out_iface):
        return Tri.NO
    results.extend(match_extension(m, pkt) for m in rule.matches)
    if Tri.NO in results:
        return Tri.NO
    if Tri.MAYBE in results:
        return Tri.MAYBE
    return Tri.YES


ChainLookup = Callable[[str], Optional[Sequence[FwRule]]]
MAX_DEPTH = 32


def evaluate(
    rules: Sequence[FwRule],
    policy: str,
    pkt: Packet,
    lookup: ChainLookup,
) -> Decision:
    """Walk a base chain; ``lookup`` returns a user chain's rules or None."""
    doubts: List[FwRule] = []
    outcome, rule, reason = _walk(rules, pkt, lookup, doubts, 0, set())
    if outcome is Outcome.RETURN:
        outcome = Outcome.POLICY
    if outcome is Outcome.POLICY:
        if doubts and policy != "ACCEPT":
            # A maybe-accept above a dropping policy: can't say.
            return Decision(Outcome.UNCERTAIN, None, policy, reason or "policy", doubts)
        return Decision(Outcome.POLICY, None, policy, f"chain policy {policy}", doubts)
    return Decision(outcome, rule, policy, reason, doubts)


def _walk(
    rules: Sequence[FwRule],
    pkt: Packet,
    lookup: ChainLookup,
    doubts: List[FwRule],
    depth: int,
    stack: set,
) -> Tuple[Outcome, Optional[FwRule], str]:
    for rule in rules:
        verdict = match_rule(rule, pkt)
        if verdict is Tri.NO:
            continue
        target = rule.target
        certain = verdict is Tri.YES
        if target in NON_TERMINATING:
            continue
        if target in ACCEPTING:
            if certain and not _could_drop(doubts):
                return Outcome.ACCEPT, rule, "accepted"
            if certain:
                return Outcome.UNCERTAIN, rule, "an earlier rule may drop it"
            doubts.append(rule)  # maybe-accept: cannot count on it
            continue
        if target in DROPPING:
            if certain and not doubts:
                return Outcome.DROP, rule, "dropped"
            if certain:
                return Outcome.UNCERTAIN, rule, "dropped unless an earlier rule accepted it"
            doubts.append(rule)
            return Outcome.UNCERTAIN, rule, "a rule that may match drops it"
        if target == "RETURN":
            if certain:
                return Outcome.RETURN, rule, ""
            doubts.append(rule)
            continue
        sub = lookup(target)
        if sub is None:  # QUEUE, NFQUEUE or a target we do not know
            if certain:
                return Outcome.UNCERTAIN, rule, f"target {target} is not judged by vrrpfw"
            doubts.append(rule)
            continue
        if depth >= MAX_DEPTH or target in stack:
            return Outcome.UNCERTAIN, rule, f"chain {target} nests too deep or loops"
        if not certain:
            # The jump may not happen; what the chain would do is a doubt.
            sub_doubts: List[FwRule] = []
            o, r, why = _walk(sub, pkt, lookup, sub_doubts, depth + 1, stack | {target})
            if o in (Outcome.DROP, Outcome.UNCERTAIN) or sub_doubts:
                doubts.append(rule)
                return Outcome.UNCERTAIN, r or rule, f"jump to {target} may drop it"
            if o is Outcome.ACCEPT:
                doubts.append(rule)
            continue
        o, r, why = _walk(sub, pkt, lookup, doubts, depth + 1, stack | {target})
        if o is Outcome.RETURN:
            if rule.goto:
                return Outcome.RETURN, r, why
            continue
        return o, r, why
    return Outcome.RETURN, None, ""


def _could_drop(doubts: List[FwRule]) -> bool:
    return any(d.target not in ACCEPTING for d in doubts)

