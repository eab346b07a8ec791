"""The netfilter path of a VRRP advert, and one verdict over all of it.

An advert received on an interface crosses the netdev ingress hook, then
prerouting and input; one we send crosses output, postrouting and the
interface's egress hook.  On every hook, every base chain votes, whatever
wrote it: legacy iptables tables (raw, mangle, filter, security, each a
"base chain" at its fixed priority), nf_tables chains of the ip, inet and
netdev families, firewalld's own table.  An ACCEPT ends only its own chain;
a DROP anywhere ends the packet.  So the advert gets through exactly when
every chain on its path lets it through, and the verdict for the path is
the conjunction of the chains' verdicts, in three-valued logic: a chain
vrrpfw cannot judge makes the path ``uncertain`` unless another chain
certainly drops.

Pure: readers (``vrrpfw.judge.read``) build a :class:`PathModel` from the
kernel, backends write, and this module only judges.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Iterator, List, Optional, Sequence, Tuple

from ..model import Direction, Family, VrrpRule
from ..results import Runtime
from .chaineval import (
    ACCEPTING,
    MARKING,
    NON_TERMINATING,
    UNTRACKING,
    ChainLookup,
    Decision,
    FwRule,
    Outcome,
    Packet,
    evaluate,
    vrrpfw_key,
)


class Hook(str, enum.Enum):
    INGRESS = "ingress"
    PREROUTING = "prerouting"
    INPUT = "input"
    OUTPUT = "output"
    POSTROUTING = "postrouting"
    EGRESS = "egress"


PATH = {
    Direction.IN: (Hook.INGRESS, Hook.PREROUTING, Hook.INPUT),
    Direction.OUT: (Hook.OUTPUT, Hook.POSTROUTING, Hook.EGRESS),
}
# Legacy tables that can drop, and their fixed priorities (NF_IP_PRI_*).
# nat is left out: iptables refuses DROP there and NAT targets never drop.
LEGACY_TABLES = {"raw": -300, "mangle": -150, "filter": 0, "security": 50}
# The chain families an advert of each family crosses (legacy ip6tables
# chains have family "ip6", like nf_tables' ip6 tables).
FAMILIES = {Family.IPV4: ("ip", "inet", "netdev"), Family.IPV6: ("ip6", "inet", "netdev")}
LEGACY_HOOKS = {"PREROUTING": Hook.PREROUTING, "INPUT": Hook.INPUT, "OUTPUT": Hook.OUTPUT,
                "POSTROUTING": Hook.POSTROUTING}


@dataclass(frozen=True)
class ChainId:
    """Where a chain lives: ``layer`` is "legacy" or "nft"; legacy chains
    have family "ip"."""

    layer: str
    family: str
    table: str
    name: str

    @property
    def label(self) -> str:
        if self.layer == "legacy":
            return f"legacy {self.table} {self.name}"
        return f"nft {self.family} {self.table} {self.name}"


@dataclass
class BaseChain:
    """A chain attached to a hook, with what evaluation needs."""

    id: ChainId
    hook: Hook
    priority: int
    policy: str  # "ACCEPT" or "DROP"
    rules: Sequence[FwRule]
    lookup: ChainLookup = field(default=lambda name: None, repr=False)
    devices: Optional[Tuple[str, ...]] = None  # netdev chains: the devices they are bound to
    owner: str = ""  # "firewalld" for firewalld's table: only firewalld may change it

    def sees(self, direction: Direction, interface: str, family: Family = Family.IPV4) -> bool:
        if self.hook not in PATH[direction] or self.id.family not in FAMILIES[family]:
            return False
        return self.devices is None or interface in self.devices


@dataclass
class PathModel:
    """Every base chain this host has on the hooks VRRP crosses."""

    chains: List[BaseChain] = field(default_factory=list)
    # Layers that could not be read: what they do is unknown.
    unread: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def on_path(self, direction: Direction, interface: str,
                family: Family = Family.IPV4) -> List[BaseChain]:
        order = {h: i for i, h in enumerate(PATH[direction])}
        seen = [c for c in self.chains if c.sees(direction, interface, family)]
        return sorted(seen, key=lambda c: (order[c.hook], c.priority, c.id.label))


class ChainState(str, enum.Enum):
    OURS = "allowed"  # vrrpfw's rule accepts it here
    OTHER = "allowed-by-other"  # another rule accepts it
    POLICY = "allowed-by-policy"  # no rule decides; the chain's ACCEPT policy lets it through
    DROP = "drop"
    UNCERTAIN = "uncertain"

    @property
    def passes(self) -> bool:
        return self in (ChainState.OURS, ChainState.OTHER, ChainState.POLICY)


@dataclass
class ChainVerdict:
    chain: BaseChain
    state: ChainState
    decision: Decision
    ours: List[FwRule]  # vrrpfw's rules for this VRRP rule, directly in this chain

    @property
    def text(self) -> str:
        d = self.decision
        if self.state is ChainState.POLICY:
            return f"{self.chain.id.label}: allowed by policy ACCEPT"
        if self.state is ChainState.OURS:
            return f"{self.chain.id.label}: allowed by vrrpfw's rule"
        decider = (d.rule.text or "a rule") if d.rule is not None else f"policy {d.policy}"
        if d.rule is not None and d.rule.chain != self.chain.id.name:
            decider = f"{d.rule.chain}: {decider}"
        if self.state is ChainState.OTHER:
            return f"{self.chain.id.label}: accepted by {decider}"
        if self.state is ChainState.DROP:
            return f"{self.chain.id.label}: dropped by {decider}"
        return f"{self.chain.id.label}: uncertain ({d.reason or 'not judged'}: {decider})"


@dataclass
class PathVerdict:
    rule: VrrpRule
    state: Runtime
    chains: List[ChainVerdict]
    unread: List[str]

    @property
    def detail(self) -> str:
        parts = [cv.text for cv in self.chains if cv.state is not ChainState.POLICY]
        if not parts and self.state is Runtime.ALLOWED_BY_POLICY:
            parts = ["no chain on the path drops VRRP; no rule pins it (a policy change would block it)"]
        parts += [f"not read: {u}" for u in self.unread]
        return "; ".join(parts)


def reachable_rules(chain: BaseChain, limit: int = 64) -> Iterator[FwRule]:
    """The chain's rules and those of every user chain it can jump to."""
    todo, seen = [(chain.rules, 0)], set()
    while todo:
        rules, depth = todo.pop()
        for r in rules:
            yield r
            target = r.target
            if target and target not in seen and depth < limit:
                sub = chain.lookup(target)
                if sub is not None:
                    seen.add(target)
                    todo.append((sub, depth + 1))


def packet_for(model: PathModel, rule: VrrpRule, src: Optional[str] = None,
               src_net: Optional[str] = None) -> Packet:
    """The advert as the path sees it.  Its conntrack state is ``new`` and
    its mark 0, unless a chain on the path could change that (a notrack or a
    mark-setting rule), in which case the answer is left unknown."""
    ct_state: Optional[str] = "new"
    mark: Optional[int] = 0
    for chain in model.on_path(rule.direction, rule.interface, rule.family):
        for r in reachable_rules(chain):
            effects = set(r.effects) | {r.target}
            if effects & UNTRACKING:
                ct_state = None
            if effects & MARKING:
                mark = None
    return Packet(rule.direction, rule.interface, rule.dst, src, ct_state, mark, src_net,
                  rule.family.value, rule.proto)


# nf_conntrack's own hooks on prerouting and output (NF_IP_PRI_CONNTRACK).
CONNTRACK_PRIORITY = -200


def ct_state_at(chain: BaseChain, state: Optional[str]) -> Optional[str]:
    """The conntrack state a chain sees.  Before conntrack has run (netdev
    ingress, and prerouting/output chains below priority -200, such as the
    raw table) the packet has no entry: netfilter reports it ``invalid``.
    At -200 itself the order is not defined: unknown.  On egress the entry
    made at output is still attached."""
    if chain.hook is Hook.INGRESS:
        return "invalid"
    if chain.hook in (Hook.PREROUTING, Hook.OUTPUT):
        if chain.priority < CONNTRACK_PRIORITY:
            return "invalid"
        if chain.priority == CONNTRACK_PRIORITY:
            return None
    return state


def cannot_drop(chain: BaseChain) -> bool:
    """No packet can be dropped here: the policy accepts and no rule the
    chain reaches ends in anything but an accept, a NAT (a nat chain's
    SNAT, DNAT, MASQUERADE), a return, a jump into a chain it has, or a
    target that lets the packet continue.  What such a chain does to an
    advert is known whatever its matches do (an uncertain mark test before
    a MASQUERADE, say): it lets it through."""
    if chain.policy != "ACCEPT":
        return False
    todo, seen = [chain.rules], set()
    while todo:
        for r in todo.pop():
            target = r.target
            if target in ACCEPTING or target in NON_TERMINATING or target == "RETURN":
                continue
            sub = chain.lookup(target)
            if sub is None:
                return False  # DROP, REJECT, a queue, an unread verdict map, a target not known
            if target not in seen:
                seen.add(target)
                todo.append(sub)
    return True


def _ours_in(chain: BaseChain, rule: VrrpRule) -> List[FwRule]:
    return [r for r in chain.rules if vrrpfw_key(r, anywhere=True) == rule.key]


def judge_chain(chain: BaseChain, rule: VrrpRule, pkt: Packet) -> ChainVerdict:
    d = evaluate(chain.rules, chain.policy, pkt, chain.lookup)
    ours = _ours_in(chain, rule)
    if d.outcome is Outcome.ACCEPT:
        assert d.rule is not None
        # Ours where vrrpfw put it, at the chain's own level; a vrrpfw rule
        # someone moved into a user chain decides as "another rule".
        placed = any(d.rule is r for r in ours)
        state = ChainState.OURS if placed else ChainState.OTHER
    elif d.outcome is Outcome.POLICY:
        state = ChainState.POLICY if d.accepted else ChainState.DROP
    elif d.outcome is Outcome.DROP:
        state = ChainState.DROP
    elif cannot_drop(chain):
        state = ChainState.POLICY  # uncertain which rule decides, but none drops
    else:
        state = ChainState.UNCERTAIN
    return ChainVerdict(chain, state, d, ours)


def combine(verdicts: Sequence[ChainVerdict], unread: Sequence[str]) -> Runtime:
    """The path's state from its chains' (three-valued AND).  A certain drop
    anywhere decides; then any doubt (a chain not judged, a layer not read);
    then who let it through: vrrpfw's rule, another rule, or only policy."""
    dropping = [v for v in verdicts if v.state is ChainState.DROP]
    if dropping:
        return Runtime.SHADOWED if any(v.ours for v in dropping) else Runtime.MISSING
    if unread or any(v.state is ChainState.UNCERTAIN for v in verdicts):
        return Runtime.UNCERTAIN
    if any(v.state is ChainState.OURS for v in verdicts):
        return Runtime.ALLOWED
    if any(v.state is ChainState.OTHER for v in verdicts):
        return Runtime.ALLOWED_BY_OTHER
    return Runtime.ALLOWED_BY_POLICY


def judge(model: PathModel, rule: VrrpRule, src: Optional[str] = None,
          src_net: Optional[str] = None) -> PathVerdict:
    """What every chain on ``rule``'s path does to the advert, and the sum.
    ``src``: the peer's address inbound (our own outbound) where known;
    ``src_net``: where it is not, the network it lies in."""
    pkt = packet_for(model, rule, src, src_net)
    chains = model.on_path(rule.direction, rule.interface, rule.family)
    verdicts = [judge_chain(c, rule, replace(pkt, ct_state=ct_state_at(c, pkt.ct_state))) for c in chains]
    return PathVerdict(rule, combine(verdicts, model.unread), verdicts, list(model.unread))


RANK = {Runtime.MISSING: 0, Runtime.SHADOWED: 1, Runtime.UNCERTAIN: 2, Runtime.ALLOWED_BY_POLICY: 3,
        Runtime.ALLOWED_BY_OTHER: 4, Runtime.ALLOWED: 5}


def judge_peers(model: PathModel, rule: VrrpRule, peers: Sequence[str],
                local: Optional[Tuple[str, str]] = None) -> PathVerdict:
    """``local``: the interface's (address, subnet).  Outbound adverts leave
    from that address.  Inbound, each peer's adverts must get through, so
    the worst peer's verdict stands (one verdict per peer would hide the
    blocked one); with no peer given, the peer is somewhere on the subnet."""
    if local is not None and Family.of(local[0]) is not rule.family:
        local = None
    if rule.unicast:
        inbound = rule.direction is Direction.IN
        return judge(model, rule, rule.src, src_net=local[1] if local and inbound else None)
    if rule.direction is Direction.OUT:
        return judge(model, rule, local[0] if local else None)
    if not peers:
        return judge(model, rule, None, src_net=local[1] if local else None)
    mine = [p for p in peers if Family.of(p) is rule.family]
    if not mine:
        return judge(model, rule, None, src_net=local[1] if local else None)
    verdicts = [judge(model, rule, p, src_net=local[1] if local else None) for p in mine]
    return min(verdicts, key=lambda v: RANK.get(v.state, 0))


def responsible(chain: BaseChain) -> str:
    """The vrrpfw backend that can open ``chain``."""
    if chain.id.layer == "legacy":
        return "iptables"
    return "firewalld" if chain.owner == "firewalld" else "nftables"
