"""Forget the conntrack entries of the VRRP flows a ``close`` closed.

While vrrpfw's rule was in place, adverts made conntrack entries; for a
unicast pair, our own adverts to the peer make the peer's adverts look like
*replies* (``established``).  Such an entry outlives the rule by the
generic protocol's time-out (600 s by default), so after ``close`` a
ruleset that drops ``ct state new`` would still let the peer's adverts in:
the ruleset is restored but the outcome is not.  Deleting the entries of
those flows (protocol 112 or 51, those addresses) makes the next advert
``new`` again, as before ``open``.  conntrack keys flows by addresses and
protocol, not by interface: every entry of the flow goes, whichever
interface it came through.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, List, Optional, Sequence, Tuple

from vrrpfw.record import record

from ..model import AH_PROTO, VRRP_PROTO
from ..results import Action, RuleReport
from .run import run


@record(frozen=True)
class Flow:
    """Entries to delete: ``proto`` from ``src`` (None: any) to ``dst``."""

    proto: int
    src: Optional[str]
    dst: str

    def argv(self) -> List[str]:
        family = "ipv6" if ":" in self.dst else "ipv4"
        words = ["conntrack", "-D", "-f", family, "-p", str(self.proto)]
        if self.src is not None:
            words += ["-s", self.src]
        return words + ["-d", self.dst]


def flows(selector: str) -> List[Flow]:
    """The flows of one rule, from its selector text (``224.0.0.18``,
    ``ff02::12 ttl 255``, ``peer 192.0.2.2 local 192.0.2.1 ah``): to the
    group from anyone; between the peer and the local address both ways."""
    words = [w.split("%", 1)[0] for w in selector.split()]  # fe80::2%eth1: conntrack keys no scope
    proto = AH_PROTO if "ah" in words else VRRP_PROTO
    try:
        if words[:1] == ["peer"] and len(words) >= 4 and words[2] == "local":
            peer, local = str(ipaddress.ip_address(words[1])), str(ipaddress.ip_address(words[3]))
            return [Flow(proto, peer, local), Flow(proto, local, peer)]
        return [Flow(proto, None, str(ipaddress.ip_address(words[0])))]
    except (ValueError, IndexError):
        return []


def forget(selectors: Iterable[str]) -> Tuple[int, List[str]]:
    """Delete the entries of every flow of ``selectors`` in this network
    namespace: (entries deleted, warnings).  Without the conntrack tool
    nothing is deleted and the warning says what that leaves behind."""
    todo: List[Flow] = []
    for sel in selectors:
        for f in flows(sel):
            if f not in todo:
                todo.append(f)
    deleted, warnings = 0, []
    for f in todo:
        ran = run(f.argv(), timeout=20)
        if ran.missing:
            return deleted, ["conntrack entries of the closed VRRP flows were not deleted (the conntrack "
                             "tool is not installed): until they time out, a ruleset that only admits "
                             "established flows may still let those adverts in"]
        deleted += _count(ran.err)
        if ran.code not in (0, 1) or ran.timed_out:
            why = (ran.err.strip().splitlines() or ["timed out"])[-1]
            warnings.append(f"conntrack {' '.join(f.argv()[1:])} failed: {why}")
    return deleted, warnings


def _count(err: str) -> int:
    """conntrack's ``N flow entries have been deleted.`` (exit 1 when N is 0)."""
    for line in err.splitlines():
        if "flow entries have been deleted" in line:
            head = line.split(":")[-1].split()
            if head and head[0].isdigit():
                return int(head[0])
    return 0


def closed_selectors(reports: Sequence[RuleReport]) -> List[str]:
    """The selectors of the rules a close removed at runtime."""
    return list(dict.fromkeys(r.group for r in reports if r.action is Action.DELETE))
