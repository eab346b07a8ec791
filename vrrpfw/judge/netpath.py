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

Bridges.  Where the interface is a bridge (br0), or a port of one, the
frame also crosses the ``bridge`` family's hooks, on the port: an advert
received on br0 through port eth0 meets netdev ingress on eth0, bridge
prerouting and bridge input (``iifname`` eth0, ``meta ibrname`` br0), then
netdev ingress on br0 and the ip/inet hooks (``iifname`` br0).  One we send
out of br0 meets ip/inet output and postrouting (``oifname`` br0), egress on
br0, then, flooded to every port, bridge output and postrouting and egress
on each port (``oifname`` the port).  The bridge forward hook sees only
frames bridged between ports, never an advert to or from this host.  With
br_netfilter on for the bridge and the advert's family, an advert to this
host crosses the ip-family prerouting hook once (during bridge prerouting,
``iifname`` br0) and input once, carrying physdev info (its port); one this
host sends carries none.  All of this was measured with real packets (see
tests/integration/judge/test_bridge_path.py).  Which port a peer's adverts come in
on is not known, so the path is judged once per port (a :class:`Vantage`):
where the ports disagree, the verdict is ``uncertain``.

Pure: readers (``vrrpfw.judge.read``) build a :class:`PathModel` from the
kernel, backends write, and this module only judges.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..model import Direction, Family, VrrpRule
from ..results import Runtime
from .chaineval import (
    ACCEPTING,
    CT_MARKING,
    DROPPING,
    MARKING,
    NON_TERMINATING,
    TOS_SETTING,
    TTL_SETTING,
    UNTRACKING,
    ChainLookup,
    Decision,
    FwRule,
    Outcome,
    Packet,
    Tri,
    addr_in,
    evaluate,
    match_rule,
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
    kind: str = "filter"  # an nf_tables base chain's type (filter, nat, route)

    def sees(self, direction: Direction, interface: str, family: Family = Family.IPV4) -> bool:
        """On the path of an advert on ``interface`` (bridge chains aside:
        see :meth:`PathModel.stops`)."""
        if self.hook not in PATH[direction] or self.id.family not in FAMILIES[family]:
            return False
        return self.devices is None or interface in self.devices


@dataclass(frozen=True)
class Bridge:
    """A bridge of this namespace: its ports, and whether br_netfilter hands
    its IPv4 / IPv6 frames to the ip-family hooks (``bridge-nf-call-iptables``
    or the bridge's own ``nf_call_iptables``; None: not known)."""

    name: str
    ports: Tuple[str, ...] = ()
    call_iptables: Optional[bool] = False
    call_ip6tables: Optional[bool] = False

    def calls(self, family: Family) -> Optional[bool]:
        return self.call_iptables if family is Family.IPV4 else self.call_ip6tables


@dataclass(frozen=True)
class Vantage:
    """One way an advert can cross the path: ``bridge`` the bridge whose
    port it crosses ("" none, None: not known whether it crosses one),
    ``port`` that port (None: not known), ``brnf`` whether br_netfilter's
    physdev info is on it (None: not known)."""

    bridge: Optional[str] = ""
    port: Optional[str] = None
    brnf: Optional[bool] = False


BRIDGE_HOOKS = {Direction.IN: (Hook.PREROUTING, Hook.INPUT), Direction.OUT: (Hook.OUTPUT, Hook.POSTROUTING)}
# The order of the stops on the path: (where, hook).  "port" is the bridge
# port, "bridge" the bridge family's hooks, "iface" the interface itself.
STAGES = {
    Direction.IN: (("port", Hook.INGRESS), ("bridge", Hook.PREROUTING), ("bridge", Hook.INPUT),
                   ("iface", Hook.INGRESS), ("iface", Hook.PREROUTING), ("iface", Hook.INPUT)),
    Direction.OUT: (("iface", Hook.OUTPUT), ("iface", Hook.POSTROUTING), ("iface", Hook.EGRESS),
                    ("bridge", Hook.OUTPUT), ("bridge", Hook.POSTROUTING), ("port", Hook.EGRESS)),
}


@dataclass
class Stop:
    """A chain on one vantage's path, and the interface it sees the advert
    on (the port for bridge chains and netdev chains bound to the port)."""

    chain: BaseChain
    interface: Optional[str]
    where: str  # "iface", "bridge" or "port"


@dataclass
class PathModel:
    """Every base chain this host has on the hooks VRRP crosses."""

    chains: List[BaseChain] = field(default_factory=list)
    # Layers that could not be read: what they do is unknown.
    unread: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    # Each interface's group (nft's iifgroup/oifgroup), where read.
    iface_groups: Dict[str, int] = field(default_factory=dict)
    # This namespace's bridges by name; None where they were not read (a
    # saved text): then an interface may be a bridge or not.
    bridges: Optional[Dict[str, Bridge]] = None
    # The kernel's dynamic state the rules test (judge.dynamic.DynState), as read now.
    dynamic: Any = None

    def on_path(self, direction: Direction, interface: str,
                family: Family = Family.IPV4) -> List[BaseChain]:
        """The chains an advert on ``interface`` crosses, bridge chains aside."""
        order = {h: i for i, h in enumerate(PATH[direction])}
        seen = [c for c in self.chains if c.sees(direction, interface, family)]
        return sorted(seen, key=lambda c: (order[c.hook], c.priority, c.id.label))

    def master_of(self, interface: str) -> Optional[Bridge]:
        for br in (self.bridges or {}).values():
            if interface in br.ports:
                return br
        return None

    def vantages(self, rule: VrrpRule) -> List[Vantage]:
        """Every way ``rule``'s advert may cross the path: one per port of a
        bridge (a peer may be behind any of them; ours are flooded to all)."""
        inbound = rule.direction is Direction.IN
        if self.bridges is None:  # not read: physdev unknown, maybe a bridge
            out = [Vantage("", None, None)]
            if any(c.id.family == "bridge" for c in self.chains):
                out.append(Vantage(None, None, None))
            return out
        br = self.bridges.get(rule.interface)
        if br is not None:
            brnf = br.calls(rule.family) if inbound else False
            out = [Vantage(br.name, p, brnf) for p in (br.ports or (None,))]
            if not self._port_sensitive(br, brnf):
                return out[:1]  # every port gives the same answer: judge once (a host with 50 taps)
            return out
        master = self.master_of(rule.interface)
        if master is not None and inbound:
            # It crosses the bridge hooks on its way to the bridge (see port_note).
            return [Vantage(master.name, rule.interface, master.calls(rule.family))]
        # Sent straight out of a port, a frame bypasses the bridge (measured).
        return [Vantage("", None, False)]

    def _port_sensitive(self, br: Bridge, brnf: Optional[bool]) -> bool:
        """Can the port make a difference?  Only where something sees it:
        a bridge-family chain, a netdev chain bound to a port, or physdev
        matches (br_netfilter on, or not known)."""
        if brnf is not False:
            return True
        return any(c.id.family == "bridge" or (c.devices is not None and set(c.devices) & set(br.ports))
                   for c in self.chains)

    def port_note(self, rule: VrrpRule) -> Optional[str]:
        """Adverts to this host never reach it on a bridge port: the bridge
        takes the frame, and the IP stack receives it on the bridge (0/10
        delivered to a socket on the port, with no firewall at all)."""
        master = self.master_of(rule.interface) if rule.direction is Direction.IN else None
        if master is None:
            return None
        return (f"{rule.interface} is a port of bridge {master.name}: adverts arriving on it are received "
                f"on {master.name}, never on {rule.interface} (keepalived must use {master.name})")

    def stops(self, rule: VrrpRule, vantage: Vantage) -> List[Stop]:
        """The chains on ``rule``'s path seen from ``vantage``, in order."""
        direction, iface = rule.direction, rule.interface
        out: List[Stop] = []
        for c in self.chains:
            if c.id.family == "bridge":
                if vantage.bridge != "" and c.hook in BRIDGE_HOOKS[direction]:
                    out.append(Stop(c, vantage.port, "bridge"))
                continue
            if c.sees(direction, iface, rule.family):
                out.append(Stop(c, iface, "iface"))
            port = vantage.port
            if (port and port != iface and c.devices is not None and port in c.devices
                    and c.hook in PATH[direction] and c.id.family in FAMILIES[rule.family]):
                out.append(Stop(c, port, "port"))
        order = {stage: i for i, stage in enumerate(STAGES[direction])}
        return sorted(out, key=lambda s: (order.get((s.where, s.chain.hook), 9), s.chain.priority,
                                          s.chain.id.label))


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
    via: str = ""  # the bridge port this verdict is for, where that matters

    @property
    def text(self) -> str:
        d = self.decision
        label = self.chain.id.label + (f" (port {self.via})" if self.via else "")
        if self.state is ChainState.POLICY:
            return f"{label}: allowed by policy ACCEPT"
        if self.state is ChainState.OURS:
            return f"{label}: allowed by vrrpfw's rule"
        shown = d.rule if d.rule is not None else d.hinge
        decider = (shown.text or "a rule") if shown is not None else f"policy {d.policy}"
        if shown is not None and shown.chain != self.chain.id.name:
            decider = f"{shown.chain}: {decider}"
        if self.state is ChainState.OTHER:
            return f"{label}: accepted by {decider}"
        if self.state is ChainState.DROP:
            return f"{label}: dropped by {decider}"
        return f"{label}: uncertain ({d.reason or 'not judged'}: {decider})"


@dataclass
class PathVerdict:
    rule: VrrpRule
    state: Runtime
    chains: List[ChainVerdict]
    unread: List[str]
    notes: List[str] = field(default_factory=list)  # what else decides, beyond the chains

    @property
    def detail(self) -> str:
        parts = [cv.text for cv in self.chains if cv.state is not ChainState.POLICY]
        if not parts and self.state is Runtime.ALLOWED_BY_POLICY:
            parts = ["no chain on the path drops VRRP; no rule pins it (a policy change would block it)"]
        parts += [f"not read: {u}" for u in self.unread]
        read = [d for d in self.depends if "[not read: " not in d]
        if read:
            parts.append(f"depends on {', '.join(read)} (current contents)")
        parts += [d.replace(" [not read: ", " not read (").replace("]", ")")
                  for d in self.depends if "[not read: " in d]
        return "; ".join(self.notes + parts)

    @property
    def depends(self) -> List[str]:
        """The dynamic state (ipsets, recent lists, nft sets filled by
        packets) the verdict was judged from, as it is now."""
        return list(dict.fromkeys(n for cv in self.chains for n in cv.decision.depends))


# Targets after which the rest of the chain is not reached.
ENDING = ACCEPTING | DROPPING | {"RETURN"}


def reachable_rules(chain: BaseChain, limit: int = 64, pkt: Optional[Packet] = None) -> Iterator[FwRule]:
    """The chain's rules and those of every user chain it can jump to; with
    ``pkt``, only those that may apply to it: a rule that certainly does not
    match is left out, and so is a chain reached only through such rules
    (kube-proxy's KUBE-MARK-DROP, jumped to for TCP node ports only, never
    marks an advert), and so are the rules after one that certainly ends
    the chain.  Judged with the packet's facts before any rule changed
    them: the first rule that changes one is reached with them, so where
    none is, none ever changes."""
    todo, seen = [(chain.rules, 0)], set()
    while todo:
        rules, depth = todo.pop()
        for r in rules:
            hit = match_rule(r, pkt) if pkt is not None else Tri.MAYBE
            if hit is Tri.NO:
                continue
            yield r
            target = r.target
            if target and target not in seen and depth < limit:
                sub = chain.lookup(target)
                if sub is not None:
                    seen.add(target)
                    todo.append((sub, depth + 1))
            if hit is Tri.YES and (target in ENDING or r.goto):
                break  # the rest of this list is never reached


def packet_for(model: PathModel, rule: VrrpRule, src: Optional[str] = None,
               src_net: Optional[str] = None) -> Packet:
    """The advert as the path sees it.  Its conntrack state is ``new`` and
    its mark 0, unless a rule on the path that may apply to it could change
    that (a notrack or a mark-setting rule), in which case the answer is
    left unknown; a notrack that certainly runs before conntrack makes it
    ``untracked`` (see :func:`untracked_before_conntrack`).  Unknown makes
    more rules "may apply", so this repeats until nothing changes (each fact
    only turns unknown; the state may go new, untracked, unknown).
    :func:`judge` then follows the mark chain by chain, where it is known.
    Every vantage's stops count (each port of a bridge, the bridge chains)."""
    pkt = Packet(rule.direction, rule.interface, rule.dst, src, "new", 0, src_net,
                 rule.family.value, rule.proto, ttl=_hops(rule, src, src_net),
                 iface_group=model.iface_groups.get(rule.interface), state=model.dynamic)
    stops = [(v, stop) for v in model.vantages(rule) for stop in model.stops(rule, v)]
    while True:
        facts = (pkt.ct_state, pkt.mark, pkt.ctmark, pkt.tos, pkt.ttl)
        ct_state, mark, ctmark, tos, ttl = facts
        untracking = False
        for v, stop in stops:
            seen_as = _seen_at(pkt, stop, v)
            for r in reachable_rules(stop.chain, pkt=seen_as):
                effects = set(r.effects) | {r.target}
                if effects & UNTRACKING:
                    untracking = True
                if effects & MARKING:
                    mark = None
                if effects & CT_MARKING:
                    ctmark = None
                if effects & TOS_SETTING:
                    tos = None  # a DSCP / TOS rewrite: what later rules read is not known
                if effects & TTL_SETTING:
                    ttl = None
        if untracking and ct_state is not None:
            ct_state = "untracked" if untracked_before_conntrack(model, rule, pkt) else None
        if (ct_state, mark, ctmark, tos, ttl) == facts:
            return pkt
        pkt = replace(pkt, ct_state=ct_state, mark=mark, ctmark=ctmark, tos=tos, ttl=ttl)


def untracked_before_conntrack(model: PathModel, rule: VrrpRule, pkt: Packet) -> bool:
    """Does a notrack certainly run on the advert before conntrack does, from
    every vantage?  Then conntrack leaves it alone (``nf_conntrack_in`` skips
    an untracked skb) and every chain after sees it ``untracked``.  Certainly:
    a rule of a prerouting / output chain below priority -200 (the raw
    table) with ``notrack`` / ``-j NOTRACK`` / ``-j CT --notrack`` that
    certainly matches, reached for certain (no rule before it that may end
    the chain).  A conntrack template a rule may attach first (``-j CT
    --zone``, nft ``ct zone set`` / ``ct timeout set``) makes a later notrack
    do nothing (xt_CT and nft_notrack skip a packet that has one): never
    certain then.  ``pkt``'s facts (mark, TOS...) are those the path settled."""
    for v in model.vantages(rule):
        walk = _NotrackWalk(replace(pkt, ct_state="new"))
        for stop in model.stops(rule, v):
            if walk.templates(stop, v):
                return False
        if not walk.untracks(model.stops(rule, v), v):
            return False
    return True


UNTRACKED, THROUGH, ENDED, UNKNOWN = "untracked", "through", "ended", "unknown"


def _is_template(r: FwRule) -> bool:
    """A rule that attaches a conntrack template (zone, timeout, helper)."""
    return "CT" in r.effects or (r.target == "CT" and "NOTRACK" not in r.effects)


def _is_notrack(r: FwRule) -> bool:
    return not _is_template(r) and (r.target == "NOTRACK" or "NOTRACK" in r.effects)


def before_conntrack(stop: Stop) -> bool:
    """A chain that sees the advert before conntrack's own hook (-200) has:
    prerouting and output below -200 (not at it: the order is not defined)."""
    c = stop.chain
    return (stop.where == "iface" and c.id.family != "bridge" and c.hook in (Hook.PREROUTING, Hook.OUTPUT)
            and c.priority < CONNTRACK_PRIORITY)


class _NotrackWalk:
    """Netfilter's walk of the chains before conntrack, for one fact: is a
    notrack certainly reached and matched?  ``touched``: a notrack may have
    run already (then the rules after may see the advert untracked: its
    state is not known to them)."""

    BUDGET = 20000  # rules visited at most (jumps into one chain from many rules revisit it)

    def __init__(self, pkt: Packet) -> None:
        self.pkt = pkt
        self.touched = False
        self.visited = 0

    def templates(self, stop: Stop, v: Vantage) -> bool:
        """May a rule of ``stop``'s chain attach a conntrack template?"""
        seen_as = replace(_seen_at(self.pkt, stop, v), ct_state=None)
        return any(_is_template(r) for r in reachable_rules(stop.chain, pkt=seen_as))

    def untracks(self, stops: Sequence[Stop], v: Vantage) -> bool:
        for stop in stops:  # in path order: netdev ingress and bridge chains come first
            if stop.where == "iface" and stop.chain.hook is not Hook.INGRESS and not before_conntrack(stop):
                return False  # conntrack has run
            got = self.chain(stop.chain, stop.chain.rules, _seen_at(self.pkt, stop, v), 0)
            if got == UNTRACKED and before_conntrack(stop):
                return True
            if got == UNTRACKED:
                self.touched = True  # a netdev or bridge chain's notrack: not judged as certain
        return False

    def chain(self, base: BaseChain, rules: Sequence[FwRule], pkt: Packet, depth: int) -> str:
        """UNTRACKED: a notrack is certainly reached; THROUGH: the list
        certainly falls through (or returns) without one; ENDED: it
        certainly ends the base chain without one; UNKNOWN: not known."""
        for r in rules:
            self.visited += 1
            if self.visited > self.BUDGET:
                return UNKNOWN
            hit = match_rule(r, replace(pkt, ct_state=None) if self.touched else pkt)
            if hit is Tri.NO:
                continue
            if _is_notrack(r):
                if hit is Tri.YES:
                    return UNTRACKED
                self.touched = True
            target = r.target
            sub = base.lookup(target) if target else None
            if sub is not None:
                got = self.chain(base, sub, pkt, depth + 1) if depth < 64 else UNKNOWN
                if got == UNTRACKED and hit is Tri.YES:
                    return UNTRACKED
                if got == UNTRACKED:
                    self.touched = True  # entered: untracked; not: the walk goes on
                    continue
                if got == THROUGH:
                    if r.goto and hit is Tri.YES:
                        return THROUGH  # the chain gone to returns to this one's caller
                    if r.goto:
                        return UNKNOWN
                    continue
                if got == ENDED and hit is Tri.YES:
                    return ENDED
                return UNKNOWN
            if target in NON_TERMINATING:
                continue
            if hit is Tri.MAYBE:
                return UNKNOWN  # the rest of the list may not be reached
            if target == "RETURN":
                return THROUGH
            return ENDED if target in ACCEPTING | DROPPING else UNKNOWN
        return THROUGH


def _hops(rule: VrrpRule, src: Optional[str], src_net: Optional[str]) -> Optional[int]:
    """The advert's TTL / hop limit (see Packet.ttl): 255, but over IPv6
    unicast the sender's default (not known), and a unicast peer's adverts
    that may have crossed a router (the peer not on the interface's subnet;
    keepalived checks the TTL of multicast adverts only) not known either."""
    if not rule.unicast:
        return 255
    if rule.family is Family.IPV6:
        return None
    if rule.direction is Direction.OUT:
        return 255
    on_link = src is not None and src_net is not None and addr_in(src_net, src) is Tri.YES
    return 255 if on_link else None


def _seen_at(pkt: Packet, stop: Stop, v: Vantage, mark: Optional[int] = -1) -> Packet:
    """The advert as ``stop``'s chain sees it from vantage ``v``: on the
    port in bridge chains (and netdev chains bound to it), with the bridge
    name there, br_netfilter's physdev info everywhere; ``mark`` where it
    is followed (-1: as in ``pkt``)."""
    return replace(pkt, interface=stop.interface, ct_state=ct_state_at(stop.chain, pkt.ct_state),
                   port=v.port, brnf=v.brnf, bridge=v.bridge if stop.where == "bridge" else None,
                   iface_group=pkt.iface_group if stop.where == "iface" else None,
                   mark=pkt.mark if mark == -1 else mark)


# nf_conntrack's own hooks on prerouting and output (NF_IP_PRI_CONNTRACK).
CONNTRACK_PRIORITY = -200


def ct_state_at(chain: BaseChain, state: Optional[str]) -> Optional[str]:
    """The conntrack state a chain sees.  Before conntrack has run (netdev
    ingress, and prerouting/output chains below priority -200, such as the
    raw table) the packet has no entry: netfilter reports it ``invalid``,
    or ``untracked`` once a notrack ran: where the advert is (or may be)
    untracked, a chain there may see it before or after the notrack:
    unknown.  At -200 itself the order is not defined: unknown.  On egress
    the entry made at output (or the untracked mark) is still attached."""
    if chain.id.family == "bridge":
        return None  # bridge conntrack (nf_conntrack_bridge, br_netfilter): not modelled
    early = chain.hook is Hook.INGRESS or (
        chain.hook in (Hook.PREROUTING, Hook.OUTPUT) and chain.priority < CONNTRACK_PRIORITY)
    if early:
        return None if state in (None, "untracked") else "invalid"
    if chain.hook in (Hook.PREROUTING, Hook.OUTPUT):
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
          src_net: Optional[str] = None, ttl: Optional[int] = None) -> PathVerdict:
    """What every chain on ``rule``'s path does to the advert, and the sum.
    ``src``: the peer's address inbound (our own outbound) where known;
    ``src_net``: where it is not, the network it lies in; ``ttl``: another
    TTL / hop limit than keepalived's (None: keepalived's, see Packet.ttl)."""
    pkt = packet_for(model, rule, src, src_net)
    if ttl is not None:
        pkt = replace(pkt, ttl=ttl)
    out = _judge_vantages(model, rule, pkt)
    if rule.unicast and pkt.ct_state == "new":
        # Between two unicast peers, this host's own adverts to the peer make
        # the peer's replies in conntrack's eyes: after a role switch they are
        # "established" for as long as the entry lives (600 s by default).
        # Dropped while new is what to fix (the first advert of a flow is
        # new); let through while new but not once established is not sure.
        other = _judge_vantages(model, rule, replace(pkt, ct_state="established"))
        if out.state in PASSING and other.state not in PASSING:
            out.notes.append(f"depends on conntrack: {out.state.value} while the peer's adverts are new, "
                             f"{other.state.value} once established (this host sent to the peer in "
                             "the last 600 s)")
            out.state = Runtime.UNCERTAIN
    note = model.port_note(rule)
    if note is not None:
        out.notes.append(note)
        if out.state in PASSING:
            out.state = Runtime.UNCERTAIN  # the firewall lets it through; the stack does not take it here
    return out


def _judge_vantages(model: PathModel, rule: VrrpRule, pkt: Packet) -> PathVerdict:
    seen = [_judge_vantage(model, rule, pkt, v) for v in model.vantages(rule)]
    if len(seen) == 1:
        return PathVerdict(rule, seen[0][2], seen[0][1], list(model.unread))
    return PathVerdict(rule, _across(seen), _merged(seen), list(model.unread))


def _judge_vantage(model: PathModel, rule: VrrpRule, pkt: Packet, v: Vantage
                   ) -> Tuple[Vantage, List[ChainVerdict], Runtime]:
    stops = model.stops(rule, v)
    verdicts: List[ChainVerdict] = []
    # The mark travels: each chain sees what the chains before it set.  It
    # starts at 0 (``packet_for`` may already know it stays 0 everywhere).
    mark: Optional[int] = 0
    for group in _same_place(stops):
        seen = [_judge_stop(s, rule, _seen_at(pkt, s, v, mark), v) for s in group]
        after = {cv.decision.mark_after for cv in seen}
        if len(group) > 1 and after != {mark}:
            # Chains on one hook at one priority run in an order netfilter
            # does not define: each may see the others' marks or not.
            seen = [_judge_stop(s, rule, _seen_at(pkt, s, v, None), v) for s in group]
            mark = None
        else:
            mark = after.pop() if len(after) == 1 else None
        verdicts += seen
    return v, verdicts, combine(verdicts, model.unread)


def _judge_stop(stop: Stop, rule: VrrpRule, p: Packet, v: Vantage) -> ChainVerdict:
    cv = judge_chain(stop.chain, rule, p)
    if stop.where != "iface" and v.port:
        cv.via = v.port
    return cv


PASSING = {Runtime.ALLOWED, Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY}
DROPPED = {Runtime.MISSING, Runtime.SHADOWED}


def _across(seen: Sequence[Tuple[Vantage, List[ChainVerdict], Runtime]]) -> Runtime:
    """One state for every vantage (port): the worst where all pass or all
    drop; ``uncertain`` where the answer depends on the port."""
    states = [state for _, _, state in seen]
    if all(s in PASSING for s in states) or all(s in DROPPED for s in states):
        return min(states, key=lambda s: RANK.get(s, 0))
    return Runtime.UNCERTAIN


WORST = {ChainState.DROP: 0, ChainState.UNCERTAIN: 1, ChainState.POLICY: 2, ChainState.OTHER: 3,
         ChainState.OURS: 4}


def _merged(seen: Sequence[Tuple[Vantage, List[ChainVerdict], Runtime]]) -> List[ChainVerdict]:
    """Each chain once, with its worst verdict over the vantages (a chain
    that drops the adverts of one port only is named with that port)."""
    out: List[ChainVerdict] = []
    for _, verdicts, _ in seen:
        for cv in verdicts:
            same = [i for i, o in enumerate(out) if o.chain is cv.chain]
            if not same:
                out.append(cv)
            elif WORST[cv.state] < WORST[out[same[0]].state]:
                out[same[0]] = cv
    return out


def _same_place(stops: Sequence[Stop]) -> List[List[Stop]]:
    """``stops`` (in path order) grouped by place (the port, the bridge
    hooks, the interface), hook and priority."""
    groups: List[List[Stop]] = []
    for s in stops:
        last = groups[-1][0] if groups else None
        if last is not None and (last.where, last.chain.hook, last.chain.priority) == (
                s.where, s.chain.hook, s.chain.priority):
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


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
    """The vrrpfw backend that can open ``chain`` ("bridge": none can, see
    :func:`bridge_hint`)."""
    if chain.id.layer == "legacy":
        return "iptables"
    if chain.id.family == "bridge":
        return "bridge"
    return "firewalld" if chain.owner == "firewalld" else "nftables"


def bridge_hint(cv: ChainVerdict, rule: VrrpRule) -> str:
    """Why ``open`` leaves a bridge-family chain that blocks VRRP alone, and
    what the admin can write there instead."""
    c = cv.chain.id
    fam = "ip" if rule.family is Family.IPV4 else "ip6"
    proto = "vrrp" if rule.proto == 112 else "ah"
    proto_match = f"ip protocol {proto}" if fam == "ip" else f"meta l4proto {proto}"
    if c.table in EBTABLES_TABLES and c.name in EBTABLES_CHAINS:
        # ebtables-nft's own table: its rule keeps the table listable by
        # ebtables-nft (a native nft rule there makes -L fail).
        ebt = "IPv4 --ip" if fam == "ip" else "IPv6 --ip6"
        how = (f"`ebtables-nft -t {c.table} -I {c.name} -p {ebt}-dst {rule.dst} {ebt.split()[1]}-proto "
               f"{proto} -j ACCEPT`")
    else:
        how = f"`nft insert rule bridge {c.table} {c.name} {fam} daddr {rule.dst} {proto_match} accept`"
    return (f"{cv.text}; vrrpfw does not write nft bridge-family tables (their chains see the bridge "
            f"port, not {rule.interface}): accept VRRP there yourself, e.g. {how}")


EBTABLES_TABLES = ("filter", "nat", "broute")
EBTABLES_CHAINS = ("INPUT", "OUTPUT", "PREROUTING", "POSTROUTING", "BROUTING")
