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

Bridges add the ``bridge`` family's hooks on the port (see
:mod:`.path_model`); which port a peer's adverts come in on is not known, so
the path is judged once per port (a Vantage): where the ports disagree, the
verdict is ``uncertain``.

Pure: readers (``vrrpfw.judge.read``) build a PathModel
(:mod:`.path_model`) from the kernel, backends write, and this module only
judges; whether a notrack exempts the advert from conntrack is
:mod:`.notrack`'s.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from vrrpfw.record import replace

from ..model import Direction, Family, VrrpRule
from ..results import Runtime
from .chaineval import evaluate
from .notrack import untracked_before_conntrack
from .packet_values import addr_in
from .path_model import (
    BaseChain,
    ChainState,
    ChainVerdict,
    PathModel,
    PathVerdict,
    Stop,
    Vantage,
    _seen_at,
    reachable_rules,
)
from .rules import (
    ACCEPTING,
    CT_MARKING,
    MARKING,
    NON_TERMINATING,
    TOS_SETTING,
    TTL_SETTING,
    UNTRACKING,
    FwRule,
    Outcome,
    Packet,
    Tri,
    vrrpfw_key,
)


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
