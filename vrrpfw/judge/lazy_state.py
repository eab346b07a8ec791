"""The dynamic state as the judge sees it before reading any: the lazy
state (:class:`LazyState`) and the names rules give the state they test.
Split from :mod:`vrrpfw.judge.dynamic` (which re-exports them) so that a
path whose rules test no dynamic state never imports that module's
parsers and dataclasses: the judge asks :meth:`LazyState.names` of every
rule it reaches, and only a rule that tests state reads it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable, List, Optional

from .rules import FwRule, Match, Packet, Tri

if TYPE_CHECKING:
    from .dynamic import DynState


class LazyState:
    """The dynamic state, read the first time a rule the advert reaches
    tests any.  Reading it walks every rule on every chain the path can
    jump to (to find what tests and what fills state), which on a host whose
    INPUT jumps to a chain of 50,000 rules costs more than judging the
    advert, and most verdicts never test dynamic state.  It answers what
    the evaluator asks of a packet's state (see :class:`DynState`) as the
    state read eagerly would, and where that read finds nothing to read
    (None) as no state at all would: a maybe, no names."""

    def __init__(self, load: Callable[[], Optional[DynState]]) -> None:
        self._load: Optional[Callable[[], Optional[DynState]]] = load
        self._value: Optional[DynState] = None

    def now(self) -> Optional[DynState]:
        """The state, read on the first call."""
        if self._load is not None:
            self._value, self._load = self._load(), None
        return self._value

    def ipset_match(self, m: Match, pkt: Packet) -> Tri:
        state = self.now()
        return Tri.MAYBE if state is None else state.ipset_match(m, replace(pkt, state=state))

    def recent_match(self, m: Match, mode: str, neg: bool, pkt: Packet) -> Tri:
        state = self.now()
        return Tri.MAYBE if state is None else state.recent_match(m, mode, neg, replace(pkt, state=state))

    def names(self, rule: FwRule) -> List[str]:
        if not dynamic_names(rule):
            return []  # known from the rule alone: no read
        state = self.now()
        return [] if state is None else state.names(rule)

    def unread(self, name: str) -> Optional[str]:
        from .dynamic import unread_reason

        return unread_reason(self.now(), name)


def ipset_key(name: str) -> str:
    return f"ipset {name}"


def recent_key(name: str) -> str:
    return f"recent list {name}"


def nft_set_key(family: str, table: str, name: str) -> str:
    return f"nft set {family} {table} @{name}"


def dynamic_names(rule: FwRule) -> List[str]:
    """The dynamic state a rule's matches read (for the verdict's words)."""
    out = []
    for m in rule.matches:
        if m.name == "set" and m.param("match-set"):
            words = [w for w in m.param("match-set") or () if w != "!"]
            if words:
                out.append(ipset_key(words[0]))
        elif m.name == "recent" and m.param("set") is None:
            out.append(recent_key((m.param("name") or ("DEFAULT",))[-1]))
        elif m.name == "set" and m.param("dynamic"):
            out.extend(m.param("dynamic") or ())
    return out
