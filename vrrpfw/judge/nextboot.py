"""The next boot: what a saved ruleset, restored the way the distribution's
boot unit restores it, does to an advert that passes now.  Pure.

An admin's runtime-only allowance (``iptables -I INPUT -p 112 -j ACCEPT``
that never reached rules.v4, a ``policy accept`` typed at runtime over a
saved ``policy drop``) lets VRRP through today and drops it after the next
reboot.  The saved file is judged with the same path model as the runtime
(:mod:`vrrpfw.judge.read.saved` builds it); where it drops what runtime
passes, the rule's persisted state is "missing" with a "not persisted"
note that says what the next boot would do.  Where the file cannot be
judged, the persisted state claims nothing ("uncertain").
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from vrrpfw.record import record

from ..model import Family, VrrpRule
from ..results import Persisted, Runtime
from .netpath import DROPPED, PASSING, RANK, judge_peers
from .path_model import PathModel


@record
class BootModel:
    """One saved ruleset as its boot unit restores it.  ``model`` None: it
    could not be judged (``problem`` says why); ``absent``: the next boot
    restores nothing of this layer from it (the file does not exist, or,
    as ``problem`` says, nothing restores it at boot)."""

    label: str  # e.g. "/etc/iptables/rules.v4 (restored by netfilter-persistent)"
    families: Tuple[Family, ...]
    model: Optional[PathModel] = None
    problem: str = ""
    absent: bool = False


@record
class BootVerdict:
    """What the next boot does to one advert.  ``state`` None: not judged
    (no saved file: ``absent``; or a file that could not be judged)."""

    state: Optional[Runtime]
    text: str
    absent: bool = False


def judge_boot(boots: Sequence[BootModel], rule: VrrpRule, peers: Sequence[str] = (),
               local: Optional[Tuple[str, str]] = None) -> Optional[BootVerdict]:
    """The next boot's verdict for ``rule`` over the saved rulesets that
    cover its family (every one of them is on the path: the worst counts).
    None where no saved ruleset of this layer covers the family."""
    mine = [b for b in boots if rule.family in b.families]
    if not mine:
        return None
    absent = [b for b in mine if b.absent]
    present = [b for b in mine if not b.absent]
    if not present:
        return BootVerdict(None, "; ".join(b.problem or f"{b.label} does not exist" for b in absent),
                           absent=True)
    unknown = [b for b in present if b.model is None]
    judged: List[Tuple[BootModel, Runtime, str]] = []
    for b in present:
        if b.model is not None:
            v = judge_peers(b.model, rule, peers, local)
            judged.append((b, v.state, v.detail))
    dropping = [j for j in judged if j[1] in DROPPED]
    if dropping:
        worst = min(dropping, key=lambda j: RANK.get(j[1], 0))
        return BootVerdict(worst[1], f"{worst[0].label}: {worst[2]}")
    if unknown:
        return BootVerdict(None, "; ".join(f"{b.label} cannot be judged ({b.problem})" for b in unknown))
    doubtful = [j for j in judged if j[1] not in PASSING]
    if doubtful:
        return BootVerdict(Runtime.UNCERTAIN, "; ".join(f"{b.label}: {d}" for b, _, d in doubtful))
    worst = min(judged, key=lambda j: RANK.get(j[1], 0))
    return BootVerdict(worst[1], f"{worst[0].label}: {worst[2]}")


def outcome(runtime: Runtime, persisted: Persisted, boot: Optional[BootVerdict],
            where: str) -> Tuple[Persisted, Optional[str]]:
    """The rule's persisted state once the next boot is judged, and the
    note that says why (None: nothing to say).  Only an advert that passes
    now is judged: one that is dropped now is missing either way.  ``where``
    names the advert (e.g. "VRRP in on eth0 to 224.0.0.18")."""
    if boot is None or runtime not in PASSING or persisted in (Persisted.SKIPPED, Persisted.ABSENT):
        return persisted, None
    if boot.absent:
        return persisted, f"next boot not judged: {boot.text} (this layer's rules live at runtime only)"
    if boot.state in DROPPED:
        return Persisted.MISSING, (f"not persisted: {where} passes now ({runtime.value}), but the next "
                                   f"boot drops it: {boot.text} (persist the allowance there)")
    if boot.state is None or boot.state not in PASSING:
        state = Persisted.UNCERTAIN if persisted in (Persisted.PRESENT, Persisted.NOT_MANAGED) else persisted
        return state, f"the next boot cannot be judged for {where}: {boot.text}"
    return persisted, None
