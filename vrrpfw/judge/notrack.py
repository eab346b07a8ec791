"""May the advert be exempt from conntrack?  A notrack (iptables ``-j
NOTRACK``/``-j CT --notrack``, nft ``notrack``) that the advert may reach
before conntrack runs (raw table, prerouting/output below priority -200)
leaves it ``untracked`` instead of ``new``: :func:`untracked_before_conntrack`
walks the chains before conntrack to say so.

Split from :mod:`.netpath`, which asks this once per advert (in
:func:`~vrrpfw.judge.netpath.packet_for`) before judging the path.
"""

from __future__ import annotations

from typing import Sequence

from vrrpfw.record import replace

from ..model import VrrpRule
from .matches import match_rule
from .path_model import (
    CONNTRACK_PRIORITY,
    BaseChain,
    Hook,
    PathModel,
    Stop,
    Vantage,
    _seen_at,
    reachable_rules,
)
from .rules import (
    ACCEPTING,
    DROPPING,
    NON_TERMINATING,
    FwRule,
    Packet,
    Tri,
)


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
