"""Would a VRRP packet get through this chain?  Pure, three-valued logic.

A rule that is merely *present* proves nothing: a DROP above it, or a jump
into a user chain that drops, decides first.  We walk the chain the way
netfilter does for one synthetic packet (protocol 112, the group, the
interface) and report the first rule that *certainly* decides.  Matches we
cannot judge (rates, sockets, dynamic sets, the unknown source address, a
mark some rule on the path may set) make a rule *maybe* match; a
maybe-match that could drop makes the outcome uncertain, which we report
instead of guessing.

The rule model is :mod:`.rules`; whether one rule matches is
:mod:`.matches`; this module walks chains (jumps, gotos, returns, policies)
and decides.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from vrrpfw.record import record, replace

from .matches import match_rule
from .rules import (
    ACCEPTING,
    CT_MARKING,
    DROPPING,
    NON_TERMINATING,
    ChainLookup,
    Decision,
    FwRule,
    Outcome,
    Packet,
    Tri,
)

MAX_DEPTH = 32


@record
class _Carry:
    """The packet as the walk has changed it so far (its mark)."""

    pkt: Packet

    def marked(self, rule: FwRule, certain: bool) -> None:
        """``rule`` set a mark: known where the rule certainly ran (it
        matches, and no rule above that may have matched could have ended
        the walk first), its operation is known and so was the mark before;
        else unknown.  A CONNMARK (save or restore) makes both marks unknown."""
        if (set(rule.effects) | {rule.target}) & CT_MARKING:
            self.pkt = replace(self.pkt, mark=None, ctmark=None)
            return
        mark = self.pkt.mark
        if certain and rule.mark_op is not None and mark is not None:
            value, mask = rule.mark_op
            mark = ((mark & ~mask) ^ value) & 0xFFFFFFFF
        else:
            mark = None
        if mark != self.pkt.mark:
            self.pkt = replace(self.pkt, mark=mark)


def evaluate(
    rules: Sequence[FwRule],
    policy: str,
    pkt: Packet,
    lookup: ChainLookup,
) -> Decision:
    """Walk a base chain; ``lookup`` returns a user chain's rules or None."""
    deps: List[str] = []
    d = _evaluate(rules, policy, pkt, lookup, deps)
    d.depends = list(dict.fromkeys(deps))
    return d


def _evaluate(rules: Sequence[FwRule], policy: str, pkt: Packet, lookup: ChainLookup,
              deps: List[str]) -> Decision:
    doubts: List[FwRule] = []
    carry = _Carry(pkt)
    outcome, rule, reason = _walk(rules, carry, lookup, doubts, 0, set(), deps)
    # Where the walk stopped unsure, rules after it may still run: their marks are not known.
    mark_after = carry.pkt.mark if outcome is not Outcome.UNCERTAIN else None
    if outcome is Outcome.RETURN:
        outcome = Outcome.POLICY
    if outcome is Outcome.POLICY:
        if doubts and policy != "ACCEPT":
            if _only_drops(doubts):  # dropped by a rule that may match, or else by the policy
                return Decision(Outcome.POLICY, None, policy, f"chain policy {policy}", doubts, None)
            # A maybe-accept above a dropping policy: can't say.  Name the
            # rule the answer hangs on (what an admin looks at, or replaces).
            first = next((d for d in doubts if d.target not in DROPPING), doubts[0])
            return Decision(Outcome.UNCERTAIN, None, policy,
                            f"let through only where this rule applies, else policy {policy}", doubts, None,
                            hinge=first)
        drops = [d for d in doubts if d.target in DROPPING]
        if drops:  # a rule that may drop it, above an accepting policy
            return Decision(Outcome.UNCERTAIN, drops[0], policy, "a rule that may match drops it", doubts,
                            None)
        unjudged = [d for d in doubts if _unjudged(d, lookup)]
        if unjudged:
            # A rule that may hand the packet to a queue (or anything we do
            # not judge) comes before the ACCEPT policy: it may drop it.
            return Decision(Outcome.UNCERTAIN, unjudged[0], policy,
                            f"target {unjudged[0].target} is not judged by vrrpfw", doubts, None)
        return Decision(Outcome.POLICY, None, policy, f"chain policy {policy}", doubts, mark_after)
    return Decision(outcome, rule, policy, reason, doubts, mark_after)


def _dynamic_deps(rule: FwRule, pkt: Packet, deps: List[str]) -> None:
    """Note the dynamic state (ipset, recent list, nft set filled by
    packets) a rule the advert reaches tests, unless its other conditions
    already rule the advert out."""
    if pkt.state is None:
        return
    names = pkt.state.names(rule)
    if names and match_rule(rule, replace(pkt, state=None)) is not Tri.NO:
        for name in names:
            why = pkt.state.unread(name)
            deps.append(name if why is None else f"{name} [not read: {why}]")


def _walk(
    rules: Sequence[FwRule],
    carry: _Carry,
    lookup: ChainLookup,
    doubts: List[FwRule],
    depth: int,
    stack: set,
    deps: Optional[List[str]] = None,
) -> Tuple[Outcome, Optional[FwRule], str]:
    for rule in rules:
        verdict = match_rule(rule, carry.pkt)
        if deps is not None:
            _dynamic_deps(rule, carry.pkt, deps)
        if verdict is Tri.NO:
            continue
        target = rule.target
        certain = verdict is Tri.YES
        if rule.marks:
            carry.marked(rule, certain and _only_drops(doubts))
        if target in NON_TERMINATING:
            continue
        if target in ACCEPTING:
            if certain and not _could_drop(doubts, lookup):
                return Outcome.ACCEPT, rule, "accepted"
            if certain:
                drops = [d for d in doubts if d.target in DROPPING]
                if drops:  # name the rule that may drop it: the one to look at
                    return Outcome.UNCERTAIN, drops[0], "a rule that may match drops it"
                return Outcome.UNCERTAIN, rule, "an earlier rule may drop it"
            doubts.append(rule)  # maybe-accept: cannot count on it
            continue
        if target in DROPPING:
            if certain and _only_drops(doubts):
                # Dropped here, or already by a rule above that may have matched.
                return Outcome.DROP, rule, "dropped"
            if certain:
                return Outcome.UNCERTAIN, rule, "dropped unless an earlier rule accepted it"
            # A rule that may drop it: where it does not, what follows decides
            # (a certain drop below makes the drop certain either way).
            doubts.append(rule)
            continue
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
            # The jump may not happen; what the chain would do is a doubt,
            # and so is any mark it would set.
            sub_doubts: List[FwRule] = []
            maybe = _Carry(carry.pkt)
            o, r, why = _walk(sub, maybe, lookup, sub_doubts, depth + 1, stack | {target}, deps)
            if maybe.pkt.mark != carry.pkt.mark or o is Outcome.UNCERTAIN:
                carry.pkt = replace(carry.pkt, mark=None)
            if o in (Outcome.DROP, Outcome.UNCERTAIN) or sub_doubts:
                doubts.append(rule)
                return Outcome.UNCERTAIN, r or rule, f"jump to {target} may drop it"
            if o is Outcome.ACCEPT and rule.goto:
                # A maybe-goto into a chain that certainly accepts: accepted
                # where it applies, else the walk goes on (firewalld's zone
                # dispatch: a zone bound to part of the subnet that lets VRRP in).
                doubts.append(replace(rule, target="ACCEPT", goto=False))
            elif o is Outcome.ACCEPT or rule.goto:
                doubts.append(rule)  # a maybe-goto that returns may end this chain too
            continue
        o, r, why = _walk(sub, carry, lookup, doubts, depth + 1, stack | {target}, deps)
        if o is Outcome.RETURN:
            if rule.goto:
                return Outcome.RETURN, r, why
            continue
        return o, r, why
    return Outcome.RETURN, None, ""


def _only_drops(doubts: List[FwRule]) -> bool:
    """Could the rules that may have applied only have dropped the packet
    (no maybe-accept, return, goto or unjudged target among them)?"""
    return all(d.target in DROPPING for d in doubts)


def _unjudged(rule: FwRule, lookup: ChainLookup) -> bool:
    """A target vrrpfw does not judge (NFQUEUE, an unreadable verdict map,
    an unknown extension): where it may apply, anything may happen."""
    return (rule.target not in ACCEPTING and rule.target not in DROPPING and rule.target != "RETURN"
            and lookup(rule.target) is None)


def _could_drop(doubts: List[FwRule], lookup: ChainLookup) -> bool:
    """Could one of the rules that may have applied before have kept the
    packet from a later ACCEPT?  A maybe-accept could not; a maybe-jump (not
    goto) is only kept as a doubt when its chain certainly accepts, so it
    could not either; a return, a goto or an unjudged target could."""
    for d in doubts:
        if d.target in ACCEPTING:
            continue
        if not d.goto and d.target not in DROPPING and d.target != "RETURN" and lookup(d.target) is not None:
            continue
        return True
    return False
