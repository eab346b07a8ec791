"""Where a dispatch chain may hand an advert whose source is not known.

firewalld's ``filter_INPUT_ZONES`` sends each packet to the zone that judges
it: one ``goto`` per bound source (an address, a prefix, an ipset), in
firewalld's order, then the interface's zone and the default zone.  Without
the peer's address (``--from``), an advert comes from somewhere on the
interface's subnets (VRRP peers share the link), so every zone whose bound
sources overlap those subnets may judge it, and the first zone whose
binding certainly matches (the interface's, the default, or a source that
covers the whole subnet) judges the rest.  Pure: from the chain's rules and
the packets, one per subnet.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence

from vrrpfw.record import record

from .matches import match_rule
from .rules import ACCEPTING, DROPPING, ChainLookup, FwRule, Packet, Tri


@record(frozen=True)
class Hand:
    """``rule`` may hand an advert from ``subnet`` to chain ``chain``;
    ``certain``: every advert from the subnet that reaches ``rule`` does."""

    chain: str
    rule: FwRule
    certain: bool
    subnet: Optional[str]

    @property
    def binding(self) -> str:
        """The dispatching rule's conditions, e.g. ``ip saddr @peers``."""
        text = re.sub(r"\s*\(handle \d+\)$", "", self.rule.text or "")
        return re.sub(r"\s*\b(goto|jump)\s+\S+$", "", text).strip() or text


def handed_to(rules: Sequence[FwRule], packets: Sequence[Packet], lookup: ChainLookup) -> List[Hand]:
    """Each chain the dispatch ``rules`` may hand one of ``packets`` to, in
    order, once: a rule that may match and jumps or goes to a chain; the
    walk of one packet stops at a rule that certainly matches and ends it
    (a goto, an accept, a drop, a return)."""
    out: List[Hand] = []
    seen = set()
    for pkt in packets:
        for rule in rules:
            hit = match_rule(rule, pkt)
            if hit is Tri.NO:
                continue
            target = rule.target
            if lookup(target) is not None:
                if target not in seen:
                    seen.add(target)
                    out.append(Hand(target, rule, hit is Tri.YES, pkt.src_net))
                if hit is Tri.YES and rule.goto:
                    break
                continue
            if hit is Tri.YES and (target in ACCEPTING or target in DROPPING or target == "RETURN"):
                break
    return out


def source_bound(hands: Sequence[Hand]) -> List[Hand]:
    """The hands that only part of the subnet takes: bindings of sources
    that overlap it without covering it (where the peer is, decides)."""
    return [h for h in hands if not h.certain]
