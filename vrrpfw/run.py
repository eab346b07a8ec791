"""The run: one command (open, check, close) over the selected layers.

Order matters for an admin's safety: pick and probe the backends, load
(and so validate) every saved file, and only then touch the live firewall:
each layer's runtime plan, apply and read-back (retried when another
writer changed the table), then its persist plan staged on the shared
saved files, each file written once.  A failure before the first change
changes nothing (it is raised); after it, the result names exactly what
each layer did (exit 1).  A dry run predicts instead of applying.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Set

from vrrpfw.record import field, record

from . import recorder
from .backends import registry
from .backends.base import Backend, Change, Options, RuntimeStatus
from .errors import ConcurrentChange, MayHaveChanged, VrrpfwError
from .judge.netpath import responsible
from .model import Key, VrrpRule
from .persist.lock import store_locks
from .persist.saved import FileSet
from .results import Action, LayerReport, Persisted, PersistReport, Result, RuleReport, Runtime, merge

if TYPE_CHECKING:  # the store contract is imported where a layer persists
    from .persist.store import Persister, PersistPlan

# Let through by someone else's rule or by chain policies: nothing of ours to persist.
UNMANAGED = (Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY)
GOOD = (Runtime.ALLOWED,) + UNMANAGED
# A commit refused because the table changed is re-read, re-planned and retried.
COMMIT_ATTEMPTS = 10


def _keep(rule: VrrpRule, ifaces: Optional[Sequence[str]], group: Optional[str],
          family: Optional[str]) -> bool:
    """close/check without rules: vrrpfw's rules of these interfaces, of
    this group (or unicast peer) and family, where given."""
    return ((ifaces is None or rule.interface in ifaces) and (group is None or rule.group == group)
            and (family is None or rule.family.value == family))


def _discover(b: Backend, p: Optional[Persister], ifaces: Optional[Sequence[str]],
              group: Optional[str], family: Optional[str] = None) -> List[VrrpRule]:
    found = list(b.discover())
    for rule in p.discover() if p is not None else []:
        if rule not in found:
            found.append(rule)
    return [r for r in found if _keep(r, ifaces, group, family)]


def _exists(interface: str) -> bool:
    """Asked of the kernel, not of /sys/class/net: sysfs shows the namespace
    it was mounted in, not the one --netns entered."""
    import _socket  # socket.py's C module: no enum conversion at import

    try:
        _socket.if_nametoindex(interface)
    except OSError:
        return False
    return True


def _interface_warnings(rules: Sequence[VrrpRule]) -> List[str]:
    missing = sorted({r.interface for r in rules if not _exists(r.interface)})
    return [f"interface {name} does not exist here (yet); its rules apply once it appears"
            for name in missing]


@record
class _Step:
    """One layer of the run while it runs: its backend and store, the
    report being built, and what the persist phase measured and planned."""

    b: Backend
    p: Optional[Persister]
    result: Result
    layer: LayerReport
    statuses: List[RuntimeStatus] = field(default_factory=list)
    changes: List[Change] = field(default_factory=list)
    before: Set[Key] = field(default_factory=set)
    plan: Optional[PersistPlan] = None
    report: Optional[PersistReport] = None


def run(command: str, rules: Optional[List[VrrpRule]], ifaces: Optional[Sequence[str]],
         group: Optional[str], backend_name: str, options: Options) -> Result:
    """Select the layers, lock and load every store (so a bad saved file is
    refused before anything changes), run each layer (runtime, then its
    persist plan staged on the shared files), write each changed file once,
    then report.  An error once something changed is a partial result
    (exit 1) naming what each layer did; before that it is raised."""
    backends, reason = registry.select_layers(backend_name, options)
    if not backends:
        return Result(command, "none", dry_run=options.dry_run, nothing_filters=True,
                      warnings=[f"nothing blocks VRRP here ({reason}); nothing to change"])
    files = FileSet()
    steps: List[_Step] = []
    for b in backends:
        b.files = files
        p = b.persister() if options.persist else None
        result = Result(command, b.name, dry_run=options.dry_run)
        layer = LayerReport(b.name, saved="skipped" if p is None else "unchanged")
        result.layers.append(layer)
        steps.append(_Step(b, p, result, layer))
    paths = [path for st in steps for path in st.b.lock_paths() + (st.p.lock_paths() if st.p else [])]
    with store_locks(paths, options.lock_timeout) if options.locked else contextlib.nullcontext():
        for st in steps:
            if st.p is not None:
                st.p.load()
        failed = _run_layers(command, steps, rules, ifaces, group, options)
        before = recorder.saved_before(files)
        _flush(steps, files, options)
    recorder.trace_saved(files, before)
    for st in steps:
        if st.p is not None and st.plan is not None:
            _persist_report(st, command, options.dry_run)
        if command == "check":
            st.result.warnings.extend(
                f"{rep.direction} {rep.interface}: persisted but not active at runtime "
                "(vrrpfw never reloads the firewall; `vrrpfw open` adds it at runtime)"
                for rep in st.result.rules
                if rep.persisted is Persisted.PRESENT and rep.runtime is Runtime.MISSING)
    results = [st.result for st in steps]
    results[0].warnings.extend(n for n in files.notes() if n not in results[0].warnings)
    if len(results) > 1 and command != "check" and not options.dry_run and failed is None \
            and any(r.changed for r in results[1:]):
        # A later layer changed the path the earlier layers judged: judge again.
        for st in steps[:-1]:
            _rejudge(st.b, st.result)
    if options.dry_run and command != "check":
        for st in steps:
            _predict(st, command)
    return merge(results) if len(results) > 1 else results[0]


def _run_layers(command: str, steps: List[_Step], rules: Optional[List[VrrpRule]],
                ifaces: Optional[Sequence[str]], group: Optional[str], options: Options) -> Optional[str]:
    """Each layer in turn; stops at the first error, which is raised if
    nothing changed yet, else recorded (returns the failing layer's name)."""
    for i, st in enumerate(steps):
        try:
            _run_one(command, st, rules, ifaces, group, options)
            if st.p is not None:
                _persist_stage(st, command, options.dry_run)
        except VrrpfwError as e:
            if not any(s.result.changed or (s.plan is not None and s.plan.changed and not options.dry_run)
                       for s in steps[:i + 1]):
                raise
            st.layer.error = f"{st.b.name}: {e}"
            st.layer.runtime = "failed" if st.layer.runtime == "unchanged" else st.layer.runtime
            if st.layer.saved == "unchanged" and st.p is not None:
                st.layer.saved = "not run"
            for later in steps[i + 1:]:
                later.layer.runtime = "not run"
                later.layer.saved = "not run" if later.p is not None else "skipped"
                later.layer.error = f"{later.b.name}: not run ({st.b.name} failed first)"
            return st.b.name
    return None


def _rejudge(b: Backend, result: Result) -> None:
    """Refresh the runtime verdicts of a layer's report (no change made);
    changes are made by now, so a failure is a warning, never an error."""
    try:
        with b.session(write=False):
            statuses = b.runtime_status([VrrpRule.from_key(r.key) for r in result.rules])
    except VrrpfwError as e:
        result.warnings.append(f"{b.name}: could not judge the path again after the other layers "
                               f"changed ({e}); run `vrrpfw check`")
        return
    for rep, st in zip(result.rules, statuses):
        if rep.runtime is not Runtime.ABSENT:
            rep.runtime, rep.detail = st.state, st.detail
    result.blockers = b.blockers()


def _run_one(command: str, step: _Step, rules: Optional[List[VrrpRule]],
             ifaces: Optional[Sequence[str]], group: Optional[str], options: Options) -> None:
    b, persister, result = step.b, step.p, step.result
    write = command != "check" and not options.dry_run
    wanted = rules
    statuses: List[RuntimeStatus] = []
    changes: List[Change] = []
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        applying = False
        if write and b.scan is not None:
            # The scan listed nft's chains before this run waited for the
            # stores' locks and the session's: a chain added meanwhile is on
            # the path, so what open/close judge (and skip as "nothing to
            # change") is listed under the locks, not taken from the scan.
            b.scan.outdated()
        try:
            with b.session(write=write):
                rules = wanted if wanted is not None else _discover(b, persister, ifaces, group,
                                                                         options.only_family)
                statuses = b.runtime_status(rules)
                changes = b.plan(statuses, command) if command != "check" else []
                result.planned = [b.describe(c) for c in changes]
                if changes and b.files is not None:
                    b.files.check_writable()  # a saved file it cannot replace: refused before any change
                if write and changes:
                    applying = True
                    if b.scan is not None:  # every later read lists the changed kernel
                        b.scan.outdated()
                    b.apply(changes)
                    applying = False
                    result.changed = True
                    step.layer.runtime = "changed"
                    statuses = b.runtime_status(rules)  # proof, read back after the commit
            break
        except ConcurrentChange:
            if attempt == COMMIT_ATTEMPTS:
                raise
            import random  # only a retried commit waits at random

            time.sleep(random.uniform(0.01, 0.05) * attempt)  # let the other writer pass
        except VrrpfwError as e:
            landed = _landed(b, rules, statuses) if applying and rules is not None else False
            if landed is not False:
                result.changed = True  # so the error becomes a partial result, not exit 3
                # Unknown (the firewall cannot be read back, or firewalld left a
                # call unanswered): "may have changed", never a plain "changed".
                unknown = landed is None or isinstance(e, MayHaveChanged)
                step.layer.runtime = "may have changed" if unknown else "partly changed"
            raise
    if options.dry_run and changes:
        step.layer.runtime = "would change"
        result.changed = True
    step.statuses, step.changes = statuses, changes
    result.rules = [_report(b, st, changes, command) for st in statuses]
    if persister is None:
        for rep in result.rules:
            rep.persisted = Persisted.SKIPPED
    if command != "close":
        result.blockers = b.blockers()
        result.warnings.extend(_interface_warnings([st.rule for st in statuses]))
    result.warnings.extend(b.warnings())
    if command == "check" and not statuses:
        result.warnings.append("no vrrpfw rules found at runtime or in the persisted file")


def _landed(b: Backend, rules: Sequence[VrrpRule], before: Sequence[RuntimeStatus]) -> Optional[bool]:
    """After a failed apply: did any of it land?  Not every firewall applies
    a batch atomically (firewalld takes one D-Bus call per allowance), and
    exit 3 promises that nothing changed.  None: unknown (the firewall could
    not be read back), which the caller treats as maybe landed."""
    try:
        with b.session(write=False):
            after = b.runtime_status(rules)
    except Exception:  # the firewall may be gone (a stopped firewalld): say "maybe"
        return None
    return [(st.state, len(st.ours)) for st in after] != [(st.state, len(st.ours)) for st in before]


def _report(b: Backend, st: RuntimeStatus, changes: Sequence[Change], command: str) -> RuleReport:
    mine = [c.action for c in changes if c.rule == st.rule]
    action = Action.NONE
    for candidate in (Action.MOVE, Action.INSERT, Action.DELETE):
        if candidate in mine:
            action = candidate
            break
    state = st.state
    if command == "close" and not st.ours:
        state = Runtime.ABSENT
    rep = RuleReport.for_rule(st.rule, b.rule_text(st.rule), state, Persisted.MISSING)
    rep.backend = b.name
    rep.action = action
    rep.detail = st.detail
    return rep


def _measure(p: Persister, command: str) -> Callable[[Sequence[VrrpRule]], Set[Key]]:
    return p.owned if command == "close" else p.persisted


def _persist_stage(step: _Step, command: str, dry_run: bool) -> None:
    """Plan this layer's saved changes on the text earlier layers staged;
    stage them (saved files) or apply them (firewalld's permanent
    configuration, not in a dry run)."""
    from .persist.store import PersistPlan

    p = step.p
    assert p is not None
    rules = [st.rule for st in step.statuses]
    step.before = _measure(p, command)(rules)
    if command == "open" and step.b.held():
        plan = PersistPlan(False)  # another program's chain keeps VRRP out: open changes nothing
    elif command == "open":
        # An allowance someone else made is theirs to persist; we add nothing.
        wanted = [st.rule for st in step.statuses if st.state not in UNMANAGED or st.ours or st.needs]
        plan = p.plan("open", wanted)
    elif command == "close":
        plan = p.plan("close", rules)
    else:
        plan = PersistPlan(False)
    step.plan = plan
    step.report = PersistReport(p.path, boot_restore=p.restorer, note=p.note)
    step.result.persist.append(step.report)
    if not plan.changed:
        return
    step.result.diff = plan.diff
    if dry_run:
        step.layer.saved = "would change"
        step.result.changed = True
        if p.stages:
            p.commit(plan)  # staged in memory only: never flushed in a dry run
        return
    try:
        p.commit(plan)
    except VrrpfwError as e:
        step.report.error = f"persisting failed: {e}"
        step.layer.saved = "failed"
        return
    if not p.stages:
        step.report.changed = True
        step.result.changed = True
        step.layer.saved = "changed"


def _flush(steps: Sequence[_Step], files: FileSet, options: Options) -> None:
    """Write each changed saved file once (a dry run only asks the
    restorers); a failure is reported on every layer that staged into that
    file."""
    changed = {f.real for f in files.all() if f.changed}
    errors = files.flush(dry_run=options.dry_run)
    for st in steps:
        if st.p is None or st.report is None or not st.p.stages or st.plan is None or not st.plan.changed:
            continue
        mine = {os.path.realpath(path) for path in st.p.lock_paths()}
        failures = [errors[real] for real in sorted(mine) if real in errors]
        if failures:
            st.report.error = ("persisting would fail: " if options.dry_run else "persisting failed: ") \
                + "; ".join(failures)
            st.layer.saved = "failed"
        elif mine & changed and not options.dry_run:
            st.report.changed = True
            st.result.changed = True
            st.layer.saved = "changed"


def _persist_report(step: _Step, command: str, dry_run: bool) -> None:
    """Per rule: persisted or not, measured on the store as written (or,
    in a dry run, as it would be written)."""
    p, plan, report = step.p, step.plan, step.report
    assert p is not None and plan is not None and report is not None
    rules = [st.rule for st in step.statuses]
    after: Set[Key] = _measure(p, command)(rules)
    if dry_run and plan.changed and not p.stages:
        keys = plan.keys or {r.key for r in rules}
        after = (after | keys) if command == "open" else (after - keys)
    report.note = p.note
    runtime_only = p.runtime_only(rules) if command != "close" else set()
    unsure = p.uncertain(rules) if command != "close" else set()
    for st, rep in zip(step.statuses, step.result.rules):
        key = st.rule.key
        if command == "close":
            rep.persisted = Persisted.PRESENT if key in after else Persisted.ABSENT
            if key in step.before and key not in after:
                rep.persist_action = Action.DELETE
        elif st.state in UNMANAGED and not st.ours and key not in after and key not in runtime_only:
            rep.persisted = Persisted.NOT_MANAGED
        else:
            rep.persisted = Persisted.PRESENT if key in after else Persisted.MISSING
            if key not in step.before and key in after and command == "open":
                rep.persist_action = Action.INSERT
        if command != "close" and key in unsure:
            rep.persisted = Persisted.UNCERTAIN
    if command != "close":
        from .persist.nextboot import judge_next_boot  # saved files' next boot: not on every path

        judge_next_boot(p, step.statuses, step.result, step.b.options.peers)


def _predict(step: _Step, command: str) -> None:
    """Dry run: each rule's runtime state as the real run would leave it.
    open puts vrrpfw's rule at the top of every chain of the run's layers
    that does not let the advert through, so a rule ends allowed unless a
    chain of a layer outside the run still blocks it (a blocker, which
    already makes the result not ok); close removes every rule of ours."""
    layers = step.b.options.layers
    planned = {c.rule.key for c in step.changes}
    for st, rep in zip(step.statuses, step.result.rules):
        if command == "close":
            if st.ours and st.rule.key in planned:
                rep.runtime = Runtime.ABSENT
            continue
        pinned = rep.runtime in UNMANAGED and st.rule.key in planned  # ends vrrpfw's: allowed
        if (rep.runtime in GOOD and not pinned) or step.b.held():
            continue
        if st.verdict is None:
            if st.rule.key in planned:
                rep.runtime = Runtime.ALLOWED
            continue
        if all(cv.state.passes or responsible(cv.chain) in layers for cv in st.verdict.chains):
            rep.runtime = Runtime.ALLOWED
