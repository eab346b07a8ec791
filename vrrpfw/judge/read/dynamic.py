"""The kernel's dynamic state the rules on VRRP's path refer to, read now
in this network namespace: ipsets (``ipset save``), ``recent`` lists
(``/proc/net/xt_recent/NAME``, with the kernel's jiffies from
``/proc/timer_list``), and which rules fill them from packets.  Only what
some rule refers to is read, so a host without such rules runs nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterator, Optional, Sequence, Set, Tuple

from ...host.run import run
from ..lazy_state import LazyState
from ..path_model import BaseChain, PathModel, reachable_rules
from ..rules import FwRule

# The state's parsers and model (judge.dynamic) are imported where the state
# is read: most paths test none, and the lazy state never reads it then.
if TYPE_CHECKING:
    from ..dynamic import DynState, IpSet

RECENT_DIR = "/proc/net/xt_recent"


def _rules(chains: Sequence[BaseChain]) -> Iterator[FwRule]:
    for chain in chains:
        yield from reachable_rules(chain)


def lazy_state(model: PathModel) -> LazyState:
    """:func:`read_state` of ``model``'s chains as they are now, run when
    the judge first needs it (see :class:`vrrpfw.judge.dynamic.LazyState`).
    The rules of chains it reads are the session's snapshot, so it must be
    judged within the backend's session, as every model is."""
    chains = list(model.chains)
    return LazyState(lambda: read_state(chains))


def read_state(chains: Sequence[BaseChain]) -> Optional[DynState]:
    """The state the rules of ``chains`` (and of the chains they jump to)
    test; None where they test none."""
    from ..dynamic import DynState, fillers_of, parse_xt_recent

    ipsets: Set[str] = set()
    recent: Set[str] = set()
    timed = nft_sets = False
    state = DynState()
    for rule in _rules(chains):
        for m in rule.matches:
            if m.name == "set" and m.param("match-set") is not None:
                ipsets.add("*")
            elif m.name == "recent":
                recent.add((m.param("name") or ("DEFAULT",))[-1])
                timed = timed or m.param("seconds") is not None
            elif m.name == "set" and m.param("dynamic"):
                nft_sets = True  # elements came with nft's listing; only fillers are needed
    state.fillers = fillers_of(_rules(chains))
    if not ipsets and not recent and not nft_sets and not state.fillers:
        return None
    if ipsets:
        state.ipsets, state.ipset_unread = _ipsets()
    for name in sorted(recent):
        text = _read(f"{RECENT_DIR}/{name}")
        if text is not None:
            state.recent[name] = parse_xt_recent(text)
    if timed:
        state.jiffies = _jiffies()
    return state


def _ipsets() -> Tuple[Optional[Dict[str, IpSet]], str]:
    from ..dynamic import parse_ipset_save

    ran = run(["ipset", "save"], timeout=60)
    if ran.missing:
        return None, "ipset is not installed (apt-get install ipset)"
    if ran.code != 0:
        return None, f"ipset save failed: {(ran.err or '').strip()[:200] or f'exit {ran.code}'}"
    return parse_ipset_save(ran.out), ""


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _jiffies() -> Optional[int]:
    """The kernel's jiffies now (``/proc/timer_list`` needs root)."""
    text = _read("/proc/timer_list")
    for line in (text or "").splitlines():
        if line.startswith("jiffies:"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None
