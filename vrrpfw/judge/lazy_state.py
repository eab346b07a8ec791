"""The dynamic state as the judge sees it before reading any: the lazy
state (:class:`LazyState`) and the names rules give the state they test.
Split from :mod:`vrrpfw.judge.dynamic` (which re-exports them) so that a
path whose rules test no dynamic state never imports that module's
parsers and record classes: the judge asks :meth:`LazyState.names` of every
rule it reaches, and only a rule that tests state reads it.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from vrrpfw.record import replace

from .rules import FwRule, Match, Packet, Tri

# The state read is a judge.dynamic.DynState (typed Any, as Packet.state and
# PathModel.dynamic are): judge/dynamic imports this module, and no import,
# not even for types, goes back (tests/unit/test_architecture.py).


class LazyState:
    """The dynamic state, read the first time a rule the advert reaches
    tests any.  Reading it walks every rule on every chain the path can
    jump to (to find what tests and what fills state), which on a host whose
    INPUT jumps to a chain of 50,000 rules costs more than judging the
    advert, and most verdicts never test dynamic state.  It answers what
    the evaluator asks of a packet's state (see :class:`DynState`) as the
    state read eagerly would, and where that read finds nothing to read
    (None) as no state at all would: a maybe, no names."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load: Optional[Callable[[], Any]] = load
        self._value: Any = None

    def now(self) -> Any:
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
        state = self.now()  # DynState.unread is judge.dynamic.unread_reason, which says this of None
        return "not read" if state is None else state.unread(name)


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
