"""The netfilter path model of a VRRP advert: hooks, base chains (legacy
iptables tables at their fixed priorities, nf_tables chains of the ip,
inet, netdev and bridge families), bridges and their ports as vantages,
the stops an advert makes (:class:`PathModel`), the chains a chain can
reach, the conntrack state each chain sees, and the verdict types
(:class:`ChainState`, :class:`ChainVerdict`, :class:`PathVerdict`).

Split from :mod:`.netpath` so that readers (``vrrpfw.judge.read``) and
backends build a :class:`PathModel` without the judging, and the judging
(:mod:`.netpath`) and the notrack analysis (:mod:`.notrack`) share it.

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
on is not known, so the path is judged once per port (a :class:`Vantage`).
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from vrrpfw.record import field, record, replace

from ..model import Direction, Family, VrrpRule
from ..results import Runtime
from .matches import match_rule
from .rules import (
    ACCEPTING,
    DROPPING,
    ChainLookup,
    Decision,
    FwRule,
    Packet,
    Tri,
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


@record(frozen=True)
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


@record
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


@record(frozen=True)
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


@record(frozen=True)
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


@record
class Stop:
    """A chain on one vantage's path, and the interface it sees the advert
    on (the port for bridge chains and netdev chains bound to the port)."""

    chain: BaseChain
    interface: Optional[str]
    where: str  # "iface", "bridge" or "port"


@record
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


@record
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


@record
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
