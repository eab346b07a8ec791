"""The rule model the judge reasons in: a firewall rule (:class:`FwRule`,
its :class:`Match` es), the synthetic advert (:class:`Packet`), three-valued
truth (:class:`Tri`), a walk's :class:`Decision`, the target classes, the
numbers rules name (protocols, DSCP, ECN), and :func:`vrrpfw_key`, which
recognises a rule vrrpfw wrote.

Split from :mod:`.chaineval` so that the readers (nft, iptables, ebtables,
libiptc) and the backends build rules without importing the evaluator, and
the matches (:mod:`.matches`) and the walk (:mod:`.chaineval`) share one
model below both.

Some of the packet's "history" is known without looking: a VRRP advert goes
to a multicast group that never answers, so conntrack never sees a reply
and every advert is ``new`` (unless a rule may exempt it from tracking);
its mark is 0 unless a rule on its path may set one.  The replay tests hold
these facts against the kernel.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Any, Callable, List, Optional, Sequence, Tuple

from vrrpfw.record import field, record

from ..model import COMMENT, VRRP_PROTO, Direction, Key, VrrpRule


class Tri(enum.Enum):
    NO = 0
    MAYBE = 1
    YES = 2


ACCEPTING = {"ACCEPT", "SNAT", "DNAT", "MASQUERADE", "REDIRECT", "NETMAP"}
DROPPING = {"DROP", "REJECT"}
# Targets that let the packet continue to the next rule.
NON_TERMINATING = {
    "LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "TRACE", "AUDIT", "CLASSIFY",
    "DSCP", "TOS", "TCPMSS", "SET", "CHECKSUM", "TEE", "CONNSECMARK",
    "SECMARK", "IDLETIMER", "LED", "TTL", "HL", "CT", "NOTRACK", "",
}
# Targets that set a mark the rest of the path may match on.
MARKING = {"MARK", "CONNMARK"}
# Targets and effects that change what later matches read: the connection's
# mark, the TOS / DSCP byte, the TTL / hop limit.
CT_MARKING = {"CONNMARK"}
TOS_SETTING = {"DSCP", "TOS"}
TTL_SETTING = {"TTL", "HL"}
# Targets that take conntrack out of the picture for the packet.
UNTRACKING = {"NOTRACK", "CT"}
# NAT targets end the chain like ACCEPT (nat chains never drop by themselves).
NAT_TARGETS = {"SNAT", "DNAT", "MASQUERADE", "REDIRECT", "NETMAP"}
# Matches that only apply to other protocols: a VRRP packet never matches.
OTHER_PROTOCOL_MATCHES = {
    "tcp", "udp", "icmp", "icmp6", "sctp", "dccp", "udplite", "multiport",
    "tcpmss", "esp", "gre",
}
# ip6tables' extension-header matches: each looks for its header
# (ipv6_find_hdr) and fails where the packet has none, whatever its options
# and their inversions; keepalived's IPv6 adverts carry no extension header.
IPV6_EXTENSION_HEADER_MATCHES = {"rt", "frag", "hbh", "dst"}
PROTO_NAMES = {"vrrp": VRRP_PROTO, "112": VRRP_PROTO}
KEEPALIVED_TOS = 0xC0
# What a selector reads where the packet lacks the thing it needs (no input
# device on output, no socket on input): nft's expression breaks and the
# rule does not match, whatever the operator (``iif != "x"`` included).
BREAK = "\x00break"
NO_DEVICE = "\x00none"  # index 0: what nft's iif/oif read where there is no device


@record(frozen=True)
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


@record(frozen=True)
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
    # Side effects that later matches may see: "MARK", "NOTRACK".
    effects: Tuple[str, ...] = ()
    # The backend's own handle (nft rule handle, libiptc rule); not part of identity.
    handle: Any = field(default=None, compare=False, repr=False)
    # A MARK whose result is known: the packet's mark becomes
    # ``(mark & ~mask) ^ value`` for (value, mask), as xt_MARK computes it.
    # None with a marking target or effect: the new mark is not known.
    mark_op: Optional[Tuple[int, int]] = field(default=None, compare=False, repr=False)

    @property
    def marks(self) -> bool:
        """Does this rule set the packet's (or connection's) mark?"""
        return bool((set(self.effects) | {self.target}) & MARKING)

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


@record(frozen=True)
class Packet:
    """The synthetic VRRP advert evaluated against a chain.  ``src`` is the
    peer's address inbound (our own outbound), None where unknown;
    ``ct_state`` None where a rule may exempt it from conntrack; ``mark``
    None where a rule on the path may set one."""

    direction: Direction
    interface: Optional[str]  # None: not known (a bridge chain, the port not known)
    group: str
    src: Optional[str] = None
    ct_state: Optional[str] = "new"
    mark: Optional[int] = 0
    # The interface's subnet: where an unknown peer's address lies (VRRP
    # peers share the link), and what a reverse-path lookup finds.
    src_net: Optional[str] = None
    family: str = "ipv4"
    proto: int = VRRP_PROTO  # 51 for AH-wrapped adverts
    # keepalived sends (and RFC 5798 requires) TTL / hop limit 255, except
    # over IPv6 unicast: it sets only the multicast hop limit, so those carry
    # the sender's default (net.ipv6.conf.*.hop_limit, 64 unless changed):
    # None, not known.
    ttl: Optional[int] = 255
    # keepalived's IP header (captured from keepalived 2.2.7): tos / traffic
    # class 0xc0 (DSCP CS6, not ECN-capable); IPv4 without options (IHL 5)
    # and never fragmented, DF clear: the whole frag-off field is 0.
    tos: Optional[int] = KEEPALIVED_TOS  # None: a rule on the path may rewrite it
    # The connection's mark (``-m connmark``, nft ``ct mark``): 0 for a new
    # connection unless a rule on the path may set it.
    ctmark: Optional[int] = 0
    # The interface's group (``ip link ... group N``), where it was read.
    iface_group: Optional[int] = None
    # Bridges (see vrrpfw.judge.path_model.Vantage): the bridge whose port the
    # frame crosses ("" none, None unknown: what ``meta ibrname`` / ``obrname``
    # read in a bridge chain); br_netfilter's physdev info: ``brnf`` True when
    # it is attached (``port`` the bridge port, None unknown), False when the
    # packet carries none, None when that is not known.
    bridge: Optional[str] = None
    port: Optional[str] = None
    brnf: Optional[bool] = None
    # The kernel's dynamic state (ipsets, recent lists, nft sets filled by
    # packets) as read now: a judge.dynamic.DynState; None where not read.
    state: Any = field(default=None, compare=False, repr=False)

    @property
    def dst(self) -> str:
        """The destination address: the group, or a unicast peer/local address."""
        return self.group

    @property
    def multicast(self) -> bool:
        try:
            return ipaddress.ip_address(self.group).is_multicast
        except ValueError:
            return True


class Outcome(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    RETURN = "return"  # fell off a user chain: continue in the caller
    POLICY = "policy"  # fell off a base chain: its policy decides
    UNCERTAIN = "uncertain"


@record
class Decision:
    """Result of evaluating one base chain for one packet."""

    outcome: Outcome
    rule: Optional[FwRule] = None  # the rule that decided (None: policy)
    policy: Optional[str] = None
    reason: str = ""
    # Rules that might have dropped before the decision (uncertainty).
    doubts: List[FwRule] = field(default_factory=list)
    # The packet's mark when it leaves the chain (None: not known), for the
    # chains after it on the path.
    mark_after: Optional[int] = 0
    # Where no rule decides (rule None), the rule the answer hangs on: named
    # in the detail only (backends place rules by ``rule``).
    hinge: Optional[FwRule] = None
    # Dynamic state the walk met (e.g. "ipset f2b-sshd"): the verdict holds
    # for its current contents.
    depends: List[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        if self.outcome is Outcome.POLICY:
            return self.policy == "ACCEPT"
        return self.outcome is Outcome.ACCEPT


# Protocol names nft and iptables print, as numbers.
PROTO_NUMBERS = {
    "icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "dccp": 33, "gre": 47, "esp": 50, "ah": 51,
    "icmpv6": 58, "ipv6-icmp": 58, "comp": 108, "vrrp": 112, "sctp": 132, "udplite": 136,
    # IPv6 extension headers (an advert carries none: its first next header is 112)
    "hopopt": 0, "ipv6-route": 43, "ipv6-frag": 44, "ipv6-nonxt": 59, "ipv6-opts": 60, "mh": 135,
    "ipv6-mh": 135, "ipip": 4, "ipv6": 41, "ipencap": 4, "ospf": 89, "pim": 103, "l2tp": 115,
}


# DSCP and ECN names nft prints (and iptables' --dscp-class takes); uid and
# gid 0 by name.
DSCP_NAMES = {**{f"cs{n}": 8 * n for n in range(8)},
              **{f"af{c}{d}": 8 * c + 2 * d for c in range(1, 5) for d in range(1, 4)},
              "be": 0, "ef": 46, "va": 44, "le": 1}
ECN_NAMES = {"not-ect": 0, "ect1": 1, "ect0": 2, "ce": 3}
NAMED_NUMBERS = {**DSCP_NAMES, **ECN_NAMES, "root": 0, "default": 0}


def _number(text: str) -> Optional[int]:
    t = text.strip().lower()
    if t in PROTO_NUMBERS:
        return PROTO_NUMBERS[t]
    if t in NAMED_NUMBERS:
        return NAMED_NUMBERS[t]
    try:
        return int(t, 0)
    except ValueError:
        return None


ChainLookup = Callable[[str], Optional[Sequence[FwRule]]]


def _host(value: Optional[str]) -> Optional[str]:
    """``192.0.2.1/32`` or ``fd00::1/128`` -> the address; None otherwise."""
    if not value or value.startswith("!"):
        return None
    addr, _, bits = value.partition("/")
    if bits not in ("32", "128"):
        return None
    try:
        a = ipaddress.ip_address(addr)
    except ValueError:
        return None
    return str(a) if int(bits) == a.max_prefixlen else None


def _strict_ttl(fw: FwRule) -> Tuple[bool, Optional[int]]:
    """(understood, ttl): vrrpfw's strict rules carry one ``ttl``/``hl``
    match testing equality; other TTL tests are not vrrpfw's."""
    ttl: Optional[int] = None
    for m in fw.matches:
        if m.name in ("ttl", "hl"):
            if len(m.params) != 1 or not m.params[0][0].endswith("eq") or ttl is not None:
                return False, None
            words = m.params[0][1]
            value = _number(words[-1]) if words and words[0] != "!" else None
            if value is None:
                return False, None
            ttl = value
        elif m.name != "comment":
            return False, None
    return True, ttl


def vrrpfw_key(fw: FwRule, anywhere: bool = False) -> Optional[Key]:
    """(direction, interface, selector) when ``fw`` is a rule vrrpfw wrote
    (see :class:`vrrpfw.model.VrrpRule`).  vrrpfw's classic rules sit in
    INPUT and OUTPUT; ``anywhere`` also finds them in other chains (other
    hooks and tables, nft chains in lower case, a rule moved by hand), the
    direction following from the interface match."""
    if not fw.is_vrrpfw or fw.target != "ACCEPT" or fw.protocol is None:
        return None
    proto = _number(fw.protocol)
    dst = _host(fw.dst)
    src = _host(fw.src) if fw.src else None
    if proto is None or dst is None or (fw.src and src is None):
        return None
    ok, ttl = _strict_ttl(fw)
    if not ok:
        return None
    if ((fw.chain == "INPUT" or anywhere) and fw.in_iface and not fw.in_iface.startswith("!")
            and not fw.out_iface):
        direction, iface = Direction.IN, fw.in_iface
    elif ((fw.chain == "OUTPUT" or anywhere) and fw.out_iface and not fw.out_iface.startswith("!")
            and not fw.in_iface):
        direction, iface = Direction.OUT, fw.out_iface
    else:
        return None
    rule = VrrpRule.from_match(direction, iface, proto, src, dst, ttl)
    return rule.key if rule is not None else None
