"""The orchestration in vrrpfw/api.py (run, retry, report, persist), driven
through the public open/check/close with fake backends and stores: real
subclasses of the abstract Backend and Persister, returned by a patched
registry.select_layers.  No root, no subprocess, no firewall."""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Set

import pytest

import vrrpfw
from vrrpfw import api, run
from vrrpfw.backends import registry
from vrrpfw.backends.base import Availability, Backend, Change, Options, RuntimeStatus
from vrrpfw.cli import render
from vrrpfw.errors import (
    EXIT_ENVIRONMENT,
    EXIT_NOT_ALLOWED,
    EXIT_OK,
    BackendError,
    ConcurrentChange,
    InputError,
    MayHaveChanged,
    PersistFileError,
    VrrpfwError,
)
from vrrpfw.judge.path_model import BaseChain, ChainId, ChainState, ChainVerdict, Hook, PathVerdict
from vrrpfw.model import VrrpRule
from vrrpfw.persist import files as persist_files
from vrrpfw.persist.store import Persister, PersistPlan
from vrrpfw.results import Action, LayerReport, Persisted, Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

G = "224.0.0.18"
IN0 = ("in", "eth0", G)
OUT0 = ("out", "eth0", G)
IN1 = ("in", "eth1", G)
OUT1 = ("out", "eth1", G)


class FakeStore(Persister):
    """A saved store that applies its plan on commit (like firewalld's
    permanent configuration): a set of keys."""

    def __init__(self, path: str = "/fake/store.conf", keys: Sequence[Any] = ()) -> None:
        self.path = path
        self.keys: Set[Any] = set(keys)
        self.restorer = "fake-restore.service"
        self.note: Optional[str] = "a note about the store"
        self.loads = 0
        self.plans: List[Any] = []
        self.commits: List[PersistPlan] = []
        self.commit_error: Optional[VrrpfwError] = None
        self.plan_error: Optional[VrrpfwError] = None
        self.load_error: Optional[VrrpfwError] = None
        self.refuse: Set[Any] = set()  # keys the store cannot hold (plan leaves them out)
        self.log: Optional[List[str]] = None

    def lock_paths(self) -> List[str]:
        return [self.path]

    def load(self) -> None:
        self.loads += 1
        if self.log is not None:
            self.log.append("load")
        if self.load_error is not None:
            raise self.load_error

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Any]:
        return {r.key for r in rules if r.key in self.keys}

    def discover(self) -> List[VrrpRule]:
        return [VrrpRule.from_key(k) for k in sorted(self.keys)]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        self.plans.append((op, sorted(r.key for r in rules)))
        if self.plan_error is not None:
            raise self.plan_error
        wanted = {r.key for r in rules}
        if op == "open":
            todo = wanted - self.keys - self.refuse
        else:
            todo = wanted & self.keys
        if not todo:
            return PersistPlan(False)
        return PersistPlan(True, f"{op} {sorted(todo)}\n", (op, todo), set(todo))

    def commit(self, plan: PersistPlan) -> None:
        if self.log is not None:
            self.log.append("commit")
        if self.commit_error is not None:
            raise self.commit_error
        self.commits.append(plan)
        op, todo = plan.payload
        if op == "open":
            self.keys |= todo
        else:
            self.keys -= todo


class FileStore(Persister):
    """A saved file shared through the run's FileSet (stages, written once
    by the run): one key per line."""

    stages = True

    def __init__(self, backend: Backend, path: str, missing_restorer: Optional[str] = None) -> None:
        self.path = path
        self.saved = backend.saved_files().get(path)
        if missing_restorer:
            self.saved.want(None, missing_restorer)
        self.on_commit: Optional[Any] = None

    def lock_paths(self) -> List[str]:
        return [self.path]

    def load(self) -> None:
        self.saved.load(validate=True)

    def _keys(self) -> Set[Any]:
        return {tuple(line.split()) for line in self.saved.current.splitlines() if line.strip()}

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Any]:
        return {r.key for r in rules} & self._keys()

    def discover(self) -> List[VrrpRule]:
        return [VrrpRule.from_key(k) for k in sorted(self._keys())]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        old = self.saved.current
        lines = old.splitlines(keepends=True)
        if op == "open":
            for r in rules:
                line = " ".join(r.key) + "\n"
                if line not in lines:
                    lines.append(line)
        else:
            drop = {" ".join(r.key) + "\n" for r in rules}
            lines = [line for line in lines if line not in drop]
        new = "".join(lines)
        return PersistPlan(new != old, "diff\n" if new != old else "", new)

    def commit(self, plan: PersistPlan) -> None:
        self.saved.stage(plan.payload)
        if self.on_commit is not None:
            self.on_commit()


class FakeBackend(Backend):
    """A firewall layer: vrrpfw's rules present at runtime are ``present``;
    ``other`` are keys someone else's rule or a policy lets through."""

    name = "fakea"
    summary = "a fake layer"

    def __init__(self, options: Options, present: Sequence[Any] = (), store: Optional[Persister] = None,
                 locks: Sequence[str] = ()) -> None:
        super().__init__(options)
        self.present: Set[Any] = set(present)
        self.other: Dict[Any, Runtime] = {}
        self.store = store
        self.locks = list(locks)
        self.conflicts = 0  # apply raises ConcurrentChange this many times
        self.apply_error: Optional[VrrpfwError] = None
        self.status_error: Optional[VrrpfwError] = None
        self.noop_apply = False  # apply "succeeds" and changes nothing
        self.lands_before_error = 0  # with apply_error: how many changes land before it is raised
        self.status_error_after_apply: Optional[VrrpfwError] = None
        self.readback_error: Optional[VrrpfwError] = None  # raised by the read-back after a commit
        self.applied: List[List[Change]] = []
        self.apply_calls = 0
        self.sessions: List[bool] = []
        self.status_calls = 0
        self.blocking: List[str] = []
        self.extra_warnings: List[str] = []
        self.verdicts: Dict[Any, PathVerdict] = {}
        self.depends_on: Optional[FakeBackend] = None  # allowed only once that layer has our keys
        self.persister_calls = 0
        self.log: Optional[List[str]] = None

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True, "fake")

    @contextlib.contextmanager
    def session(self, write: bool = False):  # type: ignore[override]
        self.sessions.append(write)
        yield

    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        self.status_calls += 1
        if self.status_error is not None:
            raise self.status_error
        out = []
        for r in rules:
            k = r.key
            if k in self.other:
                out.append(RuntimeStatus(r, self.other[k], "someone else's rule"))
            elif k in self.present:
                state = Runtime.ALLOWED
                if self.depends_on is not None and k not in self.depends_on.present:
                    state = Runtime.MISSING
                out.append(RuntimeStatus(r, state, f"{self.name}: ours", ours=[("INPUT", k)],
                                         verdict=self.verdicts.get(k)))
            else:
                out.append(RuntimeStatus(r, Runtime.MISSING, f"{self.name}: dropped", needs=["INPUT"],
                                         verdict=self.verdicts.get(k)))
        return out

    def discover(self) -> List[VrrpRule]:
        return [VrrpRule.from_key(k) for k in sorted(self.present)]

    def apply(self, changes: Sequence[Change]) -> None:
        self.apply_calls += 1
        if self.log is not None:
            self.log.append("apply")
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrentChange("the table changed")
        if self.apply_error is not None:
            for c in changes[:self.lands_before_error]:
                self.present.add(c.rule.key)
            if self.status_error_after_apply is not None:
                self.status_error = self.status_error_after_apply
            raise self.apply_error
        self.applied.append(list(changes))
        if self.readback_error is not None:
            self.status_error = self.readback_error
        if self.noop_apply:
            return
        for c in changes:
            if c.action is Action.DELETE:
                self.present.discard(c.rule.key)
            else:
                self.present.add(c.rule.key)

    def describe(self, change: Change) -> str:
        return f"{self.name} {change.action.value} {' '.join(change.rule.key)}"

    def rule_text(self, rule: VrrpRule) -> str:
        return f"{self.name}-rule {' '.join(rule.key)}"

    def persister(self) -> Optional[Persister]:
        self.persister_calls += 1
        return self.store

    def lock_paths(self) -> List[str]:
        return list(self.locks)

    def blockers(self) -> List[str]:
        if self.depends_on is not None and not self.depends_on.present:
            return [f"{self.depends_on.name} drops VRRP"]
        return list(self.blocking)

    def warnings(self) -> List[str]:
        return list(self.extra_warnings)


class FakeB(FakeBackend):
    name = "fakeb"


class FakeC(FakeBackend):
    name = "fakec"


class Host:
    """The layers select_layers returns, made on first use with the run's options."""

    def __init__(self) -> None:
        self.layers: List[FakeBackend] = []
        self.selected: List[Any] = []
        self.locks: List[Any] = []
        self.sleeps: List[float] = []
        self.log: List[str] = []

    def add(self, cls: type = FakeBackend, present: Sequence[Any] = (), store: Optional[Persister] = None,
            locks: Sequence[str] = ()) -> FakeBackend:
        b = cls(Options(), present, store, locks)
        b.log = self.log
        if isinstance(store, FakeStore):
            store.log = self.log
        self.layers.append(b)
        return b


@pytest.fixture
def host(monkeypatch):
    h = Host()

    def select_layers(name, options, scan=None):
        h.selected.append((name, options))
        options.layers = tuple(b.name for b in h.layers)
        for b in h.layers:
            b.options = options
        return list(h.layers), "fake host"

    @contextlib.contextmanager
    def store_locks(paths, timeout):
        h.locks.append((list(paths), timeout))
        h.log.append("lock")
        yield
        h.log.append("unlock")

    class FakeTime:
        @staticmethod
        def sleep(seconds):
            h.sleeps.append(seconds)

    monkeypatch.setattr(registry, "select_layers", select_layers)
    monkeypatch.setattr(run, "store_locks", store_locks)
    monkeypatch.setattr(run, "time", FakeTime)
    return h


def by_key(result):
    return {r.key: r for r in result.rules}


# -- open: plan, apply, read back ---------------------------------------------


def test_open_plans_applies_reads_back_and_persists(host):
    store = FakeStore()
    b = host.add(store=store)
    r = vrrpfw.open(["eth0"], lock_timeout=2.5)
    assert r.command == "open" and r.backend == "fakea" and r.dry_run is False
    assert r.changed is True and r.ok is True and r.exit_code == EXIT_OK
    assert b.present == {IN0, OUT0} and store.keys == {IN0, OUT0}
    assert b.sessions == [True]
    assert b.status_calls == 2  # planned on one read, proved on a second read after the commit
    assert [[(c.action, c.rule.key, c.handle) for c in cs] for cs in b.applied] == [
        [(Action.INSERT, IN0, "INPUT"), (Action.INSERT, OUT0, "INPUT")]]
    assert r.planned == ["fakea insert in eth0 224.0.0.18", "fakea insert out eth0 224.0.0.18"]
    rules = by_key(r)
    assert list(rules) == [IN0, OUT0]
    for key, rep in rules.items():
        assert rep.runtime is Runtime.ALLOWED
        assert rep.persisted is Persisted.PRESENT
        assert rep.action is Action.INSERT and rep.persist_action is Action.INSERT
        assert rep.backend == "fakea" and rep.detail == "fakea: ours"
        assert rep.rule == "fakea-rule " + " ".join(key)
        assert rep.chain == ("INPUT" if key[0] == "in" else "OUTPUT")
    assert len(r.persist) == 1
    p = r.persist[0]
    assert (p.path, p.changed, p.error, p.boot_restore, p.note) == (
        "/fake/store.conf", True, None, "fake-restore.service", "a note about the store")
    assert r.diff == "open [('in', 'eth0', '224.0.0.18'), ('out', 'eth0', '224.0.0.18')]\n"
    assert r.layers == [LayerReport("fakea", runtime="changed", saved="changed", error=None)]
    assert store.loads == 1 and len(store.commits) == 1
    assert host.selected[0][0] == "auto"


def test_the_result_is_read_back_not_assumed(host):
    """An apply that reports success but changes nothing: the rules are
    reported as the firewall has them after the commit (missing), not as planned."""
    b = host.add(store=FakeStore())
    b.noop_apply = True
    r = vrrpfw.open(["eth0"])
    assert b.apply_calls == 1 and b.status_calls == 2
    assert [rep.runtime for rep in r.rules] == [Runtime.MISSING, Runtime.MISSING]
    assert r.changed is True and r.ok is False and r.exit_code == EXIT_NOT_ALLOWED


def test_second_open_changes_nothing(host):
    store = FakeStore()
    b = host.add(store=store)
    first = vrrpfw.open(["eth0"])
    second = vrrpfw.open(["eth0"])
    assert first.changed is True
    assert second.changed is False and second.ok is True and second.exit_code == EXIT_OK
    assert b.apply_calls == 1 and len(store.commits) == 1
    assert second.planned == [] and second.diff == ""
    assert second.layers == [LayerReport("fakea", "unchanged", "unchanged")]
    for rep in second.rules:
        assert (rep.runtime, rep.persisted, rep.action, rep.persist_action) == (
            Runtime.ALLOWED, Persisted.PRESENT, Action.NONE, Action.NONE)
    assert second.persist[0].changed is False and second.persist[0].error is None


def test_changed_when_only_the_store_changed(host):
    store = FakeStore()
    b = host.add(present=[IN0, OUT0], store=store)
    r = vrrpfw.open(["eth0"])
    assert b.apply_calls == 0 and b.status_calls == 1
    assert r.changed is True and r.exit_code == EXIT_OK
    assert r.layers == [LayerReport("fakea", "unchanged", "changed")]
    assert [(rep.action, rep.persist_action) for rep in r.rules] == [(Action.NONE, Action.INSERT)] * 2


def test_changed_when_only_the_runtime_changed(host):
    store = FakeStore(keys=[IN0, OUT0])
    b = host.add(store=store)
    r = vrrpfw.open(["eth0"])
    assert b.apply_calls == 1 and store.commits == []
    assert r.changed is True and r.exit_code == EXIT_OK
    assert r.layers == [LayerReport("fakea", "changed", "unchanged")]
    assert [(rep.action, rep.persist_action, rep.persisted) for rep in r.rules] == [
        (Action.INSERT, Action.NONE, Persisted.PRESENT)] * 2
    assert r.persist[0].changed is False


def test_a_rule_of_ours_below_a_drop_moves(host):
    b = host.add(present=[IN0, OUT0], store=FakeStore(keys=[IN0, OUT0]))
    real_status = b.runtime_status

    def shadowed(rules):
        out = real_status(rules)
        if b.status_calls == 1:  # before the commit: ours is present but below a drop
            for st in out:
                st.state, st.needs = Runtime.SHADOWED, ["INPUT"]
        return out

    b.runtime_status = shadowed  # type: ignore[method-assign]
    r = vrrpfw.open(["eth0"])
    assert [[c.action for c in cs] for cs in b.applied] == [
        [Action.DELETE, Action.MOVE, Action.DELETE, Action.MOVE]]
    assert [rep.action for rep in r.rules] == [Action.MOVE, Action.MOVE]
    assert [rep.runtime for rep in r.rules] == [Runtime.ALLOWED, Runtime.ALLOWED]
    assert r.changed is True and r.exit_code == EXIT_OK


# -- retries -------------------------------------------------------------------


def test_a_concurrent_change_is_retried_and_counted(host):
    b = host.add(store=FakeStore())
    b.conflicts = 2
    r = vrrpfw.open(["eth0"])
    assert b.apply_calls == 3  # two refused commits, then one that landed
    assert b.sessions == [True, True, True]
    assert b.status_calls == 4  # re-read and re-planned on every attempt, then read back
    assert len(host.sleeps) == 2
    assert 0.01 <= host.sleeps[0] <= 0.05 and 0.02 <= host.sleeps[1] <= 0.1  # backs off per attempt
    assert r.changed is True and r.ok is True and b.present == {IN0, OUT0}


def test_retries_give_up_after_commit_attempts_and_raise_when_nothing_changed(host):
    store = FakeStore()
    b = host.add(store=store)
    b.conflicts = 1000
    with pytest.raises(ConcurrentChange) as e:
        vrrpfw.open(["eth0"])
    assert e.value.exit_code == EXIT_ENVIRONMENT
    assert run.COMMIT_ATTEMPTS == 10
    assert b.apply_calls == run.COMMIT_ATTEMPTS
    assert len(host.sleeps) == run.COMMIT_ATTEMPTS - 1
    assert b.present == set() and store.keys == set() and store.commits == []


def test_the_last_attempt_may_succeed(host):
    b = host.add(store=FakeStore())
    b.conflicts = run.COMMIT_ATTEMPTS - 1
    r = vrrpfw.open(["eth0"])
    assert b.apply_calls == run.COMMIT_ATTEMPTS and r.ok is True


def test_other_errors_are_not_retried(host):
    b = host.add(store=FakeStore())
    b.apply_error = BackendError("refused")
    with pytest.raises(BackendError):
        vrrpfw.open(["eth0"])
    assert b.apply_calls == 1 and host.sleeps == []


def test_a_failed_apply_that_landed_in_part_is_a_partial_result(host):
    """Not every firewall applies a batch atomically: when the re-read
    differs after a failed apply, something changed, so exit 1, not 3."""
    store = FakeStore()
    b = host.add(store=store)
    b.apply_error = BackendError("D-Bus call 2 failed")
    b.lands_before_error = 1
    r = vrrpfw.open(["eth0"])
    assert b.present == {IN0} and store.commits == []
    assert b.status_calls == 2 and b.sessions == [True, False]  # re-read outside the write session
    assert r.changed is True and r.ok is False and r.exit_code == EXIT_NOT_ALLOWED
    assert r.layers == [LayerReport("fakea", "partly changed", "not run", "fakea: D-Bus call 2 failed")]


def test_a_failed_apply_that_landed_nothing_raises(host):
    b = host.add(store=FakeStore())
    b.apply_error = BackendError("refused")
    with pytest.raises(BackendError):
        vrrpfw.open(["eth0"])
    assert b.status_calls == 2 and b.sessions == [True, False]


def test_a_failed_apply_on_a_firewall_that_is_gone_counts_as_landed(host):
    """Unknown is never "nothing changed" (exit 3), nor a plain "changed":
    the layer and the headline say it may have changed."""
    b = host.add(store=FakeStore())
    b.apply_error = BackendError("firewalld stopped")
    b.status_error_after_apply = BackendError("no reply on the bus")
    r = vrrpfw.open(["eth0"])
    assert r.exit_code == EXIT_NOT_ALLOWED
    assert r.layers == [LayerReport("fakea", "may have changed", "not run", "fakea: firewalld stopped")]
    assert render.headline(r) == "vrrpfw open: NOT OK, may have changed (backend fakea)"
    want = "layer fakea: runtime may have changed, saved not run (fakea: firewalld stopped)"
    assert want in render.plain(r)


def test_an_unanswered_change_that_firewalld_cannot_confirm_may_have_changed(host):
    """firewalld's MayHaveChanged (a call unanswered, the read-back too): the
    read-back here differs, yet the backend itself said it cannot tell."""
    b = host.add(store=FakeStore())
    b.apply_error = MayHaveChanged("firewalld stopped answering; firewalld may have been changed")
    b.lands_before_error = 1
    r = vrrpfw.open(["eth0"])
    assert r.exit_code == EXIT_NOT_ALLOWED and r.changed is True
    assert r.layers[0].runtime == "may have changed"
    assert render.headline(r) == "vrrpfw open: NOT OK, may have changed (backend fakea)"


def test_a_failed_read_back_after_a_commit_is_a_partial_result(host):
    b = host.add(store=FakeStore())
    b.readback_error = BackendError("cannot list")
    r = vrrpfw.open(["eth0"])
    assert b.apply_calls == 1 and b.present == {IN0, OUT0}
    assert r.exit_code == EXIT_NOT_ALLOWED
    assert r.layers == [LayerReport("fakea", "changed", "not run", "fakea: cannot list")]


# -- persisted state per rule ----------------------------------------------------


def test_persisted_missing_where_the_store_cannot_hold_the_rule(host):
    store = FakeStore()
    store.refuse = {OUT0}
    host.add(store=store)
    r = vrrpfw.open(["eth0"])
    rules = by_key(r)
    assert rules[IN0].persisted is Persisted.PRESENT and rules[IN0].persist_action is Action.INSERT
    assert rules[OUT0].persisted is Persisted.MISSING and rules[OUT0].persist_action is Action.NONE
    assert r.ok is False and r.exit_code == EXIT_NOT_ALLOWED


def test_someone_elses_allowance_is_not_managed_and_not_persisted(host):
    store = FakeStore()
    b = host.add(store=store)
    b.other = {IN0: Runtime.ALLOWED_BY_OTHER, OUT0: Runtime.ALLOWED_BY_POLICY}
    r = vrrpfw.open(["eth0"])
    assert store.plans == [("open", [])]
    assert b.apply_calls == 0 and r.changed is False
    for rep in r.rules:
        assert rep.persisted is Persisted.NOT_MANAGED and rep.persist_action is Action.NONE
    assert [rep.runtime for rep in r.rules] == [Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY]
    assert r.ok is True and r.exit_code == EXIT_OK


def test_someone_elses_allowance_that_the_store_keeps_is_present(host):
    store = FakeStore(keys=[IN0])
    b = host.add(store=store)
    b.other = {IN0: Runtime.ALLOWED_BY_OTHER}
    r = vrrpfw.open(["eth0"])
    assert store.plans == [("open", [OUT0])]
    assert by_key(r)[IN0].persisted is Persisted.PRESENT
    assert by_key(r)[OUT0].persisted is Persisted.PRESENT


def test_no_persist_skips_the_store(host):
    store = FakeStore()
    b = host.add(store=store)
    r = vrrpfw.open(["eth0"], persist=False)
    assert b.persister_calls == 0 and store.loads == 0 and store.commits == []
    assert [rep.persisted for rep in r.rules] == [Persisted.SKIPPED] * 2
    assert r.persist == [] and r.layers == [LayerReport("fakea", "changed", "skipped")]
    assert r.ok is True and r.exit_code == EXIT_OK
    assert host.locks == [([], 10.0)]


def test_a_backend_without_a_store_skips(host):
    host.add(store=None)
    r = vrrpfw.open(["eth0"])
    assert [rep.persisted for rep in r.rules] == [Persisted.SKIPPED] * 2
    assert r.layers[0].saved == "skipped" and r.ok is True


def test_a_failed_persist_commit_is_a_partial_result(host):
    store = FakeStore()
    store.commit_error = PersistFileError("disk full")
    b = host.add(store=store)
    r = vrrpfw.open(["eth0"])
    assert b.present == {IN0, OUT0}
    assert r.persist[0].error == "persisting failed: disk full" and r.persist[0].changed is False
    assert r.layers == [LayerReport("fakea", "changed", "failed")]
    assert r.changed is True and r.ok is False and r.exit_code == EXIT_NOT_ALLOWED
    assert [rep.persisted for rep in r.rules] == [Persisted.MISSING] * 2
    assert [rep.persist_action for rep in r.rules] == [Action.NONE] * 2


def test_a_failed_persist_commit_with_nothing_else_changed(host):
    store = FakeStore()
    store.commit_error = PersistFileError("read-only file system")
    host.add(present=[IN0, OUT0], store=store)
    r = vrrpfw.open(["eth0"])
    assert r.changed is False and r.exit_code == EXIT_NOT_ALLOWED
    assert r.layers == [LayerReport("fakea", "unchanged", "failed")]


def test_a_bad_store_is_refused_before_anything_changes(host):
    store = FakeStore()
    store.load_error = PersistFileError("rules.v4:3: unexpected line")
    b = host.add(store=store)
    with pytest.raises(PersistFileError):
        vrrpfw.open(["eth0"])
    assert b.sessions == [] and b.apply_calls == 0


def test_close_deletes_runtime_and_saved(host):
    store = FakeStore(keys=[IN0, OUT0, IN1])
    b = host.add(present=[IN0, OUT0, OUT1], store=store)
    r = vrrpfw.close(["eth0"])
    assert b.present == {OUT1} and store.keys == {IN1}
    assert r.changed is True and r.ok is True and r.exit_code == EXIT_OK
    for rep in r.rules:
        assert (rep.runtime, rep.persisted, rep.action, rep.persist_action) == (
            Runtime.ABSENT, Persisted.ABSENT, Action.DELETE, Action.DELETE)
    assert [rep.key for rep in r.rules] == [IN0, OUT0]
    assert store.plans == [("close", [IN0, OUT0])]
    assert r.layers == [LayerReport("fakea", "changed", "changed")]


def test_close_without_interfaces_finds_runtime_and_saved_rules(host):
    store = FakeStore(keys=[IN0, IN1])
    b = host.add(present=[OUT0, IN0], store=store)
    r = vrrpfw.close()
    assert [rep.key for rep in r.rules] == [IN0, OUT0, IN1]
    assert b.present == set() and store.keys == set()
    rules = by_key(r)
    assert rules[IN1].action is Action.NONE and rules[IN1].persist_action is Action.DELETE
    assert rules[IN1].runtime is Runtime.ABSENT  # not ours at runtime: nothing there
    assert rules[OUT0].persist_action is Action.NONE and rules[OUT0].persisted is Persisted.ABSENT


def test_close_filters_by_group(host):
    other = ("in", "eth0", "224.0.0.19")
    store = FakeStore(keys=[other])
    b = host.add(present=[IN0, other], store=store)
    r = vrrpfw.close(group="224.0.0.19")
    assert [rep.key for rep in r.rules] == [other]
    assert b.present == {IN0} and store.keys == set()


def test_close_with_nothing_of_ours_is_unchanged(host):
    b = host.add(store=FakeStore())
    r = vrrpfw.close(["eth0"])
    assert b.apply_calls == 0 and r.changed is False
    assert r.rules == [] and r.ok is True and r.exit_code == EXIT_OK  # close reports what it found


def test_close_reports_a_saved_line_it_could_not_remove(host):
    store = FakeStore(keys=[IN0, OUT0])
    store.commit_error = PersistFileError("read-only")
    host.add(store=store)
    r = vrrpfw.close(["eth0"])
    assert [rep.persisted for rep in r.rules] == [Persisted.PRESENT] * 2
    assert [rep.persist_action for rep in r.rules] == [Action.NONE] * 2
    assert r.layers[0].saved == "failed" and r.exit_code == EXIT_NOT_ALLOWED


# -- check -----------------------------------------------------------------------


def test_check_reads_only(host):
    store = FakeStore(keys=[IN0])
    b = host.add(present=[IN0, OUT0], store=store)
    r = vrrpfw.check(["eth0"])
    assert b.sessions == [False] and b.apply_calls == 0 and store.commits == []
    assert store.plans == [] and r.changed is False and r.planned == []
    assert host.locks == []
    rules = by_key(r)
    assert rules[IN0].persisted is Persisted.PRESENT and rules[OUT0].persisted is Persisted.MISSING
    assert r.exit_code == EXIT_NOT_ALLOWED
    assert r.layers == [LayerReport("fakea", "unchanged", "unchanged")]


def test_check_warns_about_a_saved_rule_not_active_at_runtime(host):
    host.add(present=[OUT0], store=FakeStore(keys=[IN0, OUT0]))
    r = vrrpfw.check(["eth0"])
    assert by_key(r)[IN0].runtime is Runtime.MISSING
    assert ("in eth0: persisted but not active at runtime (vrrpfw never reloads the firewall; "
            "`vrrpfw open` adds it at runtime)") in r.warnings
    assert not any("out eth0" in w for w in r.warnings)


def test_check_without_interfaces_and_nothing_found(host):
    host.add(store=FakeStore())
    r = vrrpfw.check()
    assert r.rules == [] and r.ok is False and r.exit_code == EXIT_NOT_ALLOWED
    assert "no vrrpfw rules found at runtime or in the persisted file" in r.warnings


def test_check_without_interfaces_unions_runtime_and_store(host):
    host.add(present=[OUT1, IN0], store=FakeStore(keys=[IN0, OUT0]))
    r = vrrpfw.check()
    assert [rep.key for rep in r.rules] == [IN0, OUT1, OUT0]
    assert "no vrrpfw rules found at runtime or in the persisted file" not in r.warnings


def test_check_with_a_group_filter(host):
    other = ("out", "eth2", "224.0.0.19")
    host.add(present=[IN0, other], store=FakeStore())
    assert [rep.key for rep in vrrpfw.check(group="224.0.0.19").rules] == [other]
    assert [rep.key for rep in vrrpfw.check().rules] == [IN0, other]


def test_blockers_and_warnings_reach_the_result(host):
    b = host.add(store=FakeStore())
    b.blocking = ["nft inet filter input drops VRRP"]
    b.extra_warnings = ["w1"]
    r = vrrpfw.open(["eth0"])
    assert r.blockers == ["nft inet filter input drops VRRP"] and "w1" in r.warnings
    assert r.ok is False and r.exit_code == EXIT_NOT_ALLOWED


def test_interfaces_that_do_not_exist_are_named(host):
    host.add(store=FakeStore())
    r = vrrpfw.open(["nosuch0"])
    assert "interface nosuch0 does not exist here (yet); its rules apply once it appears" in r.warnings
    if os.path.exists("/sys/class/net/lo"):
        assert not any("does not exist" in w for w in vrrpfw.open(["lo"]).warnings)


def test_nothing_filters_vrrp(host):
    r = vrrpfw.open(["eth0"])
    assert r.backend == "none" and r.nothing_filters is True and r.changed is False
    assert r.ok is True and r.exit_code == EXIT_OK
    assert r.warnings == ["nothing blocks VRRP here (fake host); nothing to change"]
    assert host.locks == []
    d = vrrpfw.open(["eth0"], dry_run=True)
    assert d.dry_run is True and d.nothing_filters is True


# -- several layers, partial outcomes -------------------------------------------------


def test_two_layers_both_change(host):
    a = host.add(store=FakeStore("/a.conf"))
    b = host.add(FakeB, store=FakeStore("/b.conf"))
    r = vrrpfw.open(["eth0"])
    assert r.backend == "fakea+fakeb" and r.changed is True and r.exit_code == EXIT_OK
    assert a.present == b.present == {IN0, OUT0}
    assert r.layers == [LayerReport("fakea", "changed", "changed"),
                        LayerReport("fakeb", "changed", "changed")]
    assert [rep.backend for rep in r.rules] == ["fakea", "fakea", "fakeb", "fakeb"]
    assert [p.path for p in r.persist] == ["/a.conf", "/b.conf"]
    assert host.selected[0][1].layers == ("fakea", "fakeb")


def test_a_failing_second_layer_after_a_change_is_a_partial_result(host):
    a = host.add(store=FakeStore("/a.conf"))
    b = host.add(FakeB, store=FakeStore("/b.conf"))
    c = host.add(FakeC, store=None)
    b.status_error = BackendError("nft said no")
    r = vrrpfw.open(["eth0"])
    assert a.present == {IN0, OUT0} and b.present == set()
    assert c.sessions == []  # never started
    assert r.changed is True and r.ok is False and r.exit_code == EXIT_NOT_ALLOWED
    assert r.layers == [
        LayerReport("fakea", "changed", "changed", None),
        LayerReport("fakeb", "failed", "not run", "fakeb: nft said no"),
        LayerReport("fakec", "not run", "skipped", "fakec: not run (fakeb failed first)"),
    ]


def test_a_later_layer_not_run_with_a_store(host):
    host.add(store=FakeStore("/a.conf"))
    b = host.add(FakeB, store=None)
    host.add(FakeC, store=FakeStore("/c.conf"))
    b.apply_error = BackendError("commit refused")
    r = vrrpfw.open(["eth0"])
    assert r.layers[1] == LayerReport("fakeb", "failed", "skipped", "fakeb: commit refused")
    assert r.layers[2] == LayerReport("fakec", "not run", "not run", "fakec: not run (fakeb failed first)")
    assert r.exit_code == EXIT_NOT_ALLOWED


def test_a_failing_second_layer_after_only_a_saved_change(host):
    host.add(present=[IN0, OUT0], store=FakeStore("/a.conf"))
    b = host.add(FakeB, store=FakeStore("/b.conf"))
    b.status_error = BackendError("boom")
    r = vrrpfw.open(["eth0"])
    assert r.layers[0] == LayerReport("fakea", "unchanged", "changed")
    assert r.layers[1].runtime == "failed" and r.exit_code == EXIT_NOT_ALLOWED


def test_a_failing_second_layer_before_any_change_raises(host):
    host.add(present=[IN0, OUT0], store=FakeStore("/a.conf", keys=[IN0, OUT0]))
    b = host.add(FakeB, store=FakeStore("/b.conf"))
    b.status_error = BackendError("nft said no")
    with pytest.raises(BackendError) as e:
        vrrpfw.open(["eth0"])
    assert e.value.exit_code == EXIT_ENVIRONMENT and str(e.value) == "nft said no"


def test_the_first_layer_failing_raises(host):
    a = host.add(store=FakeStore("/a.conf"))
    b = host.add(FakeB, store=FakeStore("/b.conf"))
    a.apply_error = BackendError("refused")
    with pytest.raises(BackendError):
        vrrpfw.open(["eth0"])
    assert b.sessions == []


def test_a_layer_that_fails_after_its_own_runtime_change(host):
    store = FakeStore()
    store.plan_error = PersistFileError("cannot plan")
    host.add(store=store)
    r = vrrpfw.open(["eth0"])
    assert r.layers == [LayerReport("fakea", "changed", "not run", "fakea: cannot plan")]
    assert r.changed is True and r.exit_code == EXIT_NOT_ALLOWED


def test_exhausted_retries_in_a_second_layer_are_a_partial_result(host):
    host.add(store=FakeStore("/a.conf"))
    b = host.add(FakeB, store=FakeStore("/b.conf"))
    b.conflicts = 1000
    r = vrrpfw.open(["eth0"])
    assert b.apply_calls == run.COMMIT_ATTEMPTS
    assert r.layers[1] == LayerReport("fakeb", "failed", "not run", "fakeb: the table changed")
    assert r.exit_code == EXIT_NOT_ALLOWED


def test_an_earlier_layer_is_judged_again_after_a_later_one_changed(host):
    a = host.add(present=[IN0, OUT0], store=FakeStore("/a.conf", keys=[IN0, OUT0]))
    b = host.add(FakeB, store=FakeStore("/b.conf"))
    a.depends_on = b  # a's rules decide only once b's layer lets the advert through
    r = vrrpfw.open(["eth0"])
    assert a.status_calls == 2 and a.sessions == [True, False]
    assert [rep.runtime for rep in r.rules] == [Runtime.ALLOWED] * 4
    assert r.blockers == [] and r.ok is True


def test_no_rejudging_when_the_later_layer_changed_nothing(host):
    a = host.add(present=[IN0, OUT0], store=FakeStore("/a.conf", keys=[IN0, OUT0]))
    b = host.add(FakeB, present=[IN0, OUT0], store=FakeStore("/b.conf", keys=[IN0, OUT0]))
    r = vrrpfw.open(["eth0"])
    assert a.status_calls == 1 and b.status_calls == 1 and r.changed is False


def test_close_keeps_absent_rules_absent_when_rejudged(host):
    a = host.add(store=FakeStore("/a.conf", keys=[IN0, OUT0]))  # saved only: absent at runtime
    host.add(FakeB, present=[IN0, OUT0], store=FakeStore("/b.conf"))
    r = vrrpfw.close(["eth0"])
    assert a.status_calls == 2  # judged again after b changed
    assert [rep.runtime for rep in r.rules] == [Runtime.ABSENT] * 4
    assert r.ok is True


# -- dry run -------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_says_what_would_change(host):
    store = FakeStore()
    b = host.add(store=store)
    r = vrrpfw.open(["eth0"], dry_run=True)
    assert b.apply_calls == 0 and store.commits == [] and b.present == set() and store.keys == set()
    assert b.sessions == [False] and host.locks == []
    assert r.dry_run is True and r.changed is True
    assert r.planned == ["fakea insert in eth0 224.0.0.18", "fakea insert out eth0 224.0.0.18"]
    assert r.layers == [LayerReport("fakea", "would change", "would change")]
    for rep in r.rules:
        assert (rep.runtime, rep.persisted, rep.action, rep.persist_action) == (
            Runtime.ALLOWED, Persisted.PRESENT, Action.INSERT, Action.INSERT)
    assert r.persist[0].changed is False and r.diff
    assert r.ok is True and r.exit_code == EXIT_OK
    real = vrrpfw.open(["eth0"])
    assert real.exit_code == r.exit_code and real.changed is True


def test_dry_run_on_an_open_host_is_unchanged(host):
    host.add(present=[IN0, OUT0], store=FakeStore(keys=[IN0, OUT0]))
    r = vrrpfw.open(["eth0"], dry_run=True)
    assert r.changed is False and r.exit_code == EXIT_OK
    assert r.layers == [LayerReport("fakea", "unchanged", "unchanged")]


def test_dry_run_exit_1_where_a_blocker_remains(host):
    b = host.add(store=FakeStore())
    b.blocking = ["legacy filter INPUT drops VRRP"]
    r = vrrpfw.open(["eth0"], dry_run=True)
    assert r.changed is True and r.exit_code == EXIT_NOT_ALLOWED
    assert vrrpfw.open(["eth0"]).exit_code == EXIT_NOT_ALLOWED


def test_dry_run_exit_1_where_persisting_is_impossible(host):
    store = FakeStore()
    store.refuse = {IN0, OUT0}
    host.add(store=store)
    r = vrrpfw.open(["eth0"], dry_run=True)
    assert [rep.persisted for rep in r.rules] == [Persisted.MISSING] * 2
    assert r.changed is True and r.exit_code == EXIT_NOT_ALLOWED
    assert vrrpfw.open(["eth0"]).exit_code == EXIT_NOT_ALLOWED


def test_dry_run_of_a_store_change_only(host):
    store = FakeStore(keys=[IN0])
    host.add(present=[IN0, OUT0], store=store)
    r = vrrpfw.open(["eth0"], dry_run=True)
    assert r.changed is True and store.keys == {IN0}
    assert r.layers == [LayerReport("fakea", "unchanged", "would change")]
    rules = by_key(r)
    assert rules[OUT0].persist_action is Action.INSERT and rules[OUT0].persisted is Persisted.PRESENT
    assert rules[IN0].persist_action is Action.NONE and rules[IN0].persisted is Persisted.PRESENT


def test_dry_run_close(host):
    store = FakeStore(keys=[IN0, OUT0, IN1])
    b = host.add(present=[IN0, OUT0], store=store)
    r = vrrpfw.close(["eth0"], dry_run=True)
    assert b.present == {IN0, OUT0} and store.keys == {IN0, OUT0, IN1} and host.locks == []
    assert r.changed is True and r.exit_code == EXIT_OK
    for rep in r.rules:
        assert (rep.runtime, rep.persisted, rep.action, rep.persist_action) == (
            Runtime.ABSENT, Persisted.ABSENT, Action.DELETE, Action.DELETE)


def test_dry_run_close_of_a_rule_only_saved(host):
    store = FakeStore(keys=[IN0])
    host.add(present=[OUT0], store=store)
    r = vrrpfw.close(["eth0"], dry_run=True)
    rules = by_key(r)
    assert rules[IN0].runtime is Runtime.ABSENT and rules[IN0].persist_action is Action.DELETE
    assert rules[OUT0].action is Action.DELETE and rules[OUT0].persist_action is Action.NONE
    assert r.exit_code == EXIT_OK


def chain(layer: str, table: str) -> BaseChain:
    family = "ip"
    return BaseChain(ChainId(layer, family, table, "INPUT"), Hook.INPUT, 0, "DROP", [])


def verdict(key, *chains_and_states) -> PathVerdict:
    cvs = [ChainVerdict(c, s, None, []) for c, s in chains_and_states]  # type: ignore[arg-type]
    return PathVerdict(VrrpRule.from_key(key), Runtime.MISSING, cvs, [])


def test_dry_run_predicts_from_the_whole_path(host):
    """open puts a rule into every chain of the run's layers that drops the
    advert; a chain of a layer outside the run still drops it."""
    b = host.add(store=FakeStore())
    b.name = "iptables"
    legacy, nft = chain("legacy", "filter"), chain("nft", "t")
    b.verdicts = {
        IN0: verdict(IN0, (legacy, ChainState.DROP), (nft, ChainState.POLICY)),
        OUT0: verdict(OUT0, (legacy, ChainState.DROP), (nft, ChainState.DROP)),
    }
    r = vrrpfw.open(["eth0"], dry_run=True)
    assert by_key(r)[IN0].runtime is Runtime.ALLOWED
    assert by_key(r)[OUT0].runtime is Runtime.MISSING  # the nftables layer is not in this run
    assert r.exit_code == EXIT_NOT_ALLOWED


def test_dry_run_prediction_keeps_good_verdicts_and_unplanned_rules(host):
    b = host.add(present=[IN0], store=FakeStore(keys=[IN0, OUT0]))
    b.other = {IN1: Runtime.ALLOWED_BY_POLICY}
    b.noop_apply = True
    b.verdicts = {OUT0: verdict(OUT0, (chain("nft", "t"), ChainState.DROP))}
    real_status = b.runtime_status

    def status(rules):
        out = real_status(rules)
        for st in out:
            if st.rule.key == OUT1:  # uncertain, and nothing to plan for it
                st.state, st.needs = Runtime.UNCERTAIN, []
        return out

    b.runtime_status = status  # type: ignore[method-assign]
    r = vrrpfw.open(["eth0", "eth1"], dry_run=True)
    rules = by_key(r)
    assert rules[IN0].runtime is Runtime.ALLOWED
    assert rules[IN1].runtime is Runtime.ALLOWED_BY_POLICY
    assert rules[OUT1].runtime is Runtime.UNCERTAIN
    assert rules[OUT0].runtime is Runtime.MISSING


def test_dry_run_with_a_failing_second_layer_mirrors_the_real_run(host):
    host.add(store=FakeStore("/a.conf"))
    b = host.add(FakeB, store=FakeStore("/b.conf"))
    b.status_error = BackendError("boom")
    r = vrrpfw.open(["eth0"], dry_run=True)
    assert r.exit_code == EXIT_NOT_ALLOWED
    assert r.layers[0] == LayerReport("fakea", "would change", "would change")
    assert r.layers[1] == LayerReport("fakeb", "failed", "not run", "fakeb: boom")


# -- saved files shared by the layers (staging stores) -----------------------------------


def file_layers(host, path, keys=(), n=2):
    path.write_text("".join(" ".join(k) + "\n" for k in keys))
    out = []
    for cls in (FakeBackend, FakeB)[:n]:
        b = host.add(cls)
        b.persister = lambda b=b: FileStore(b, str(path))  # type: ignore[method-assign]
        out.append(b)
    return out


def test_layers_sharing_a_file_write_it_once(host, tmp_path, monkeypatch):
    path = tmp_path / "rules.v4"
    file_layers(host, path)
    writes = []
    real_write = persist_files.atomic_write
    monkeypatch.setattr(persist_files, "atomic_write",
                        lambda p, t, **kw: (writes.append(p), real_write(p, t, **kw)))
    r = vrrpfw.open(["eth0"], persist_file=str(path))
    assert writes == [str(path)]
    assert path.read_text() == "in eth0 224.0.0.18\nout eth0 224.0.0.18\n"
    # fakeb planned on the text fakea staged: its lines were there already
    assert r.layers == [LayerReport("fakea", "changed", "changed"),
                        LayerReport("fakeb", "changed", "unchanged")]
    assert [(p.path, p.changed) for p in r.persist] == [(str(path), True)]  # one file, reported once
    assert [rep.persisted for rep in r.rules] == [Persisted.PRESENT] * 4
    assert [rep.persist_action for rep in r.rules] == [Action.INSERT] * 2 + [Action.NONE] * 2
    assert host.locks == [([str(path), str(path)], 10.0)]
    again = vrrpfw.open(["eth0"], persist_file=str(path))
    assert writes == [str(path)] and again.changed is False


def test_a_file_changed_by_someone_else_is_not_overwritten(host, tmp_path):
    path = tmp_path / "rules.v4"
    (a,) = file_layers(host, path, n=1)

    def persister():
        store = FileStore(a, str(path))
        store.on_commit = lambda: path.write_text("# the admin's editor\n")
        return store

    a.persister = persister  # type: ignore[method-assign]
    r = vrrpfw.open(["eth0"], persist_file=str(path))
    assert path.read_text() == "# the admin's editor\n"
    assert r.persist[0].error.startswith("persisting failed: " + str(path) + " changed on disk")
    assert r.persist[0].changed is False
    assert r.layers == [LayerReport("fakea", "changed", "failed")]
    assert [rep.persisted for rep in r.rules] == [Persisted.MISSING] * 2
    assert r.ok is False and r.exit_code == EXIT_NOT_ALLOWED


def test_a_staged_file_is_never_written_in_a_dry_run(host, tmp_path):
    path = tmp_path / "rules.v4"
    file_layers(host, path)
    r = vrrpfw.open(["eth0"], dry_run=True, persist_file=str(path))
    assert path.read_text() == ""
    assert r.changed is True and r.exit_code == EXIT_OK
    assert [rep.persisted for rep in r.rules] == [Persisted.PRESENT] * 4
    assert r.layers == [LayerReport("fakea", "would change", "would change"),
                        LayerReport("fakeb", "would change", "unchanged")]


def test_close_of_a_shared_file(host, tmp_path):
    path = tmp_path / "rules.v4"
    a, b = file_layers(host, path, keys=[IN0, OUT0, IN1])
    a.present = {IN0}
    r = vrrpfw.close(["eth0"], persist_file=str(path))
    assert path.read_text() == "in eth1 224.0.0.18\n"
    assert r.layers == [LayerReport("fakea", "changed", "changed"),
                        LayerReport("fakeb", "unchanged", "unchanged")]
    assert [rep.key for rep in r.rules] == [IN0, OUT0]  # fakeb found nothing left to remove
    assert [rep.persisted for rep in r.rules] == [Persisted.ABSENT] * 2
    assert [rep.persist_action for rep in r.rules] == [Action.DELETE] * 2
    assert r.ok is True


def test_notes_of_the_saved_files_reach_the_result_once(host, tmp_path):
    path = tmp_path / "rules.v4"
    path.write_text("")
    for cls in (FakeBackend, FakeB):
        b = host.add(cls)
        b.persister = lambda b=b: FileStore(b, str(path), "fake-restore")  # type: ignore[method-assign]
    r = vrrpfw.open(["eth0"], persist_file=str(path))
    note = f"{path}: fake-restore is not installed, so only vrrpfw's parser checked this file"
    assert r.warnings.count(note) == 1


# -- locks -------------------------------------------------------------------------------


def test_open_and_close_hold_every_store_lock_around_load_and_commit(host):
    host.add(store=FakeStore("/etc/a.conf"), locks=["/var/lib/state.json"])
    host.add(FakeB, store=FakeStore("/etc/b.conf"))
    vrrpfw.open(["eth0"], lock_timeout=3)
    assert host.locks == [(["/var/lib/state.json", "/etc/a.conf", "/etc/b.conf"], 3.0)]
    assert isinstance(host.locks[0][1], float)
    assert host.log[0] == "lock" and host.log[-1] == "unlock"
    assert host.log[1:3] == ["load", "load"]  # every store loaded under the lock, before any change
    assert "apply" in host.log and "commit" in host.log
    del host.locks[:]
    vrrpfw.close(["eth0"], lock_timeout=0)
    assert host.locks == [(["/var/lib/state.json", "/etc/a.conf", "/etc/b.conf"], 0.0)]


def test_check_and_dry_run_take_no_store_lock(host):
    host.add(store=FakeStore("/etc/a.conf"), locks=["/var/lib/state.json"])
    vrrpfw.check(["eth0"])
    vrrpfw.open(["eth0"], dry_run=True)
    vrrpfw.close(["eth0"], dry_run=True)
    assert host.locks == []


def test_options_reach_the_backend(host, tmp_path):
    host.add(store=FakeStore())
    path = str(tmp_path / "rules.v4")
    vrrpfw.open(["eth0"], persist_file=path, lock_timeout=1, peers=["192.0.2.1"], src="192.0.2.9",
                zone="public", mode="zone", force=True, backend="iptables")
    name, o = host.selected[-1]
    assert name == "iptables"
    assert (o.persist, o.persist_file, o.dry_run, o.lock_timeout, o.zone, o.mode, o.force) == (
        True, path, False, 1.0, "public", "zone", True)
    assert (o.peers, o.sweep, o.validate_saved, o.locked) == (("192.0.2.1",), False, True, True)
    vrrpfw.close(["eth0"], remove_seed_rules=True)
    o = host.selected[-1][1]
    assert (o.sweep, o.remove_seed, o.validate_saved, o.locked) == (True, True, True, True)
    vrrpfw.check(["eth0"])
    o = host.selected[-1][1]
    assert (o.sweep, o.validate_saved, o.locked, o.dry_run) == (False, False, False, False)
    vrrpfw.open(["eth0"], dry_run=True)
    o = host.selected[-1][1]
    assert (o.dry_run, o.validate_saved, o.locked) == (True, True, False)


# -- input checks before anything is read ------------------------------------------------------


BAD_CALLS = [
    ("open a string", lambda: vrrpfw.open("eth0")),
    ("open bytes", lambda: vrrpfw.open(b"eth0")),
    ("open None", lambda: vrrpfw.open(None)),
    ("open a number", lambda: vrrpfw.open(5)),
    ("open a non-string name", lambda: vrrpfw.open([1])),
    ("open an empty name", lambda: vrrpfw.open([""])),
    ("lock_timeout text", lambda: vrrpfw.open(["eth0"], lock_timeout="abc")),
    ("lock_timeout nan", lambda: vrrpfw.open(["eth0"], lock_timeout=math.nan)),
    ("lock_timeout -1", lambda: vrrpfw.open(["eth0"], lock_timeout=-1)),
    ("lock_timeout inf", lambda: vrrpfw.open(["eth0"], lock_timeout=math.inf)),
    ("lock_timeout bool", lambda: vrrpfw.open(["eth0"], lock_timeout=True)),
    ("lock_timeout None", lambda: vrrpfw.close(["eth0"], lock_timeout=None)),
    ("persist_file int", lambda: vrrpfw.open(["eth0"], persist_file=123)),
    ("persist_file empty", lambda: vrrpfw.open(["eth0"], persist_file="")),
    ("persist_file blank", lambda: vrrpfw.close(["eth0"], persist_file="  ")),
    ("persist_file directory", lambda: vrrpfw.open(["eth0"], persist_file="/")),
    ("no persist and a file", lambda: vrrpfw.open(["eth0"], persist=False, persist_file="/tmp/x")),
    ("persist text", lambda: vrrpfw.open(["eth0"], persist="no")),
    ("dry_run text", lambda: vrrpfw.open(["eth0"], dry_run="yes")),
    ("dry_run int", lambda: vrrpfw.close(["eth0"], dry_run=1)),
    ("peers a string", lambda: vrrpfw.open(["eth0"], peers="192.0.2.1")),
    ("peers not addresses", lambda: vrrpfw.open(["eth0"], peers=["peer"])),
    ("group not text", lambda: vrrpfw.open(["eth0"], group=18)),
    ("group not multicast", lambda: vrrpfw.open(["eth0"], group="10.0.0.1")),
    ("backend not text", lambda: vrrpfw.open(["eth0"], backend=None)),
    ("backend unknown", lambda: vrrpfw.open(["eth0"], backend="pf")),
    ("check backend unknown", lambda: vrrpfw.check(backend="")),
    ("root not text", lambda: vrrpfw.open(["eth0"], root=1)),
    ("zone not text", lambda: vrrpfw.open(["eth0"], zone=1)),
    ("zone bad", lambda: vrrpfw.open(["eth0"], zone="pub lic")),
    ("zone empty", lambda: vrrpfw.open(["eth0"], zone="")),
    ("zone long", lambda: vrrpfw.open(["eth0"], zone="z" * 65)),
    ("mode unknown", lambda: vrrpfw.open(["eth0"], mode="rich")),
    ("force text", lambda: vrrpfw.open(["eth0"], force="yes")),
    ("state_file int", lambda: vrrpfw.open(["eth0"], state_file=1)),
    ("state_file empty", lambda: vrrpfw.close(["eth0"], state_file="")),
    ("check a string", lambda: vrrpfw.check("eth0")),
    ("check group not text", lambda: vrrpfw.check(group=18)),
    ("check bad group without interfaces", lambda: vrrpfw.check(group="1.2.3.4")),
    ("check persist text", lambda: vrrpfw.check(["eth0"], persist="yes")),
    ("close a string", lambda: vrrpfw.close("eth0")),
    ("close a bad name", lambda: vrrpfw.close(["a/b"])),
    ("close group not text", lambda: vrrpfw.close(group=224)),
    ("close remove_seed_rules text", lambda: vrrpfw.close(remove_seed_rules="yes")),
]


@pytest.mark.parametrize("call", [c for _, c in BAD_CALLS], ids=[n for n, _ in BAD_CALLS])
def test_bad_input_is_refused_before_any_layer_is_selected(host, call):
    host.add(store=FakeStore())
    with pytest.raises(InputError) as e:
        call()
    assert e.value.exit_code == 2
    assert host.selected == [] and host.locks == []


def test_good_edge_values_are_accepted(host):
    host.add(store=FakeStore())
    vrrpfw.open(("eth0",), lock_timeout=0)
    vrrpfw.open(iter(["eth0"]), peers=("192.0.2.1",), src="192.0.2.9", zone="my_zone-1")
    vrrpfw.close(None, group="224.0.0.18")
    vrrpfw.check(["eth0"], group="224.0.0.18")
    assert len(host.selected) == 4


def test_a_valid_non_default_check_group_filters(host):
    host.add(present=[IN0], store=FakeStore())
    assert vrrpfw.check(group="224.0.0.18").rules[0].key == IN0


# -- backends() ------------------------------------------------------------------------------


def test_backends_reports_each_firewall_and_what_auto_uses(monkeypatch):
    from types import SimpleNamespace

    from vrrpfw.host import hostscan

    chains = [SimpleNamespace(label="inet filter input", filters=True),
              SimpleNamespace(label="ip t output", filters=False)]
    scan = SimpleNamespace(legacy_tables=["filter", "raw"], legacy_filter=True, nft_available=True,
                           nft_filtering=chains[:1], nft_error=None, nft_chains=chains, firewalld_bus=False,
                           firewalld_tables=["firewalld"], iptables_variant="legacy", ufw=None,
                           ufw_active=False)
    monkeypatch.setattr(hostscan, "scan", lambda: scan)
    monkeypatch.setattr(registry, "choose_auto", lambda s: (["iptables", "nftables"], "both filter"))
    d = api.backends()
    assert d["iptables_command"] == "legacy"
    assert d["auto"] == {"backends": ["iptables", "nftables"], "reason": "both filter"}
    fw = {f["firewall"]: f for f in d["firewalls"]}
    assert fw["legacy iptables"] == {"firewall": "legacy iptables", "present": True, "filters": True,
                                     "detail": "tables: filter, raw"}
    assert fw["nf_tables"]["filters"] is True
    assert fw["nf_tables"]["detail"] == "inet filter input: filters; ip t output: does not drop"
    assert fw["firewalld"] == {"firewall": "firewalld", "present": True, "filters": True,
                               "detail": "tables present, not answering on the bus"}
    assert fw["ufw"] == {"firewall": "ufw", "present": False, "filters": False, "detail": "not installed"}

    def refuse(s):
        raise BackendError("cannot tell")

    scan.legacy_tables, scan.nft_chains, scan.nft_filtering, scan.firewalld_tables = [], [], [], []
    scan.nft_error = None
    monkeypatch.setattr(registry, "choose_auto", refuse)
    d = api.backends()
    assert d["auto"] == {"backends": [], "reason": "cannot tell", "error": True}
    fw = {f["firewall"]: f for f in d["firewalls"]}
    assert fw["legacy iptables"]["detail"] == "tables: none" and fw["legacy iptables"]["present"] is False
    assert fw["nf_tables"]["detail"] == "no input/output filter chains"
    assert fw["firewalld"]["detail"] == "not running" and fw["firewalld"]["filters"] is False
    scan.firewalld_bus, scan.nft_error = True, "nft: permission denied"
    fw = {f["firewall"]: f for f in api.backends()["firewalls"]}
    assert fw["firewalld"]["detail"] == "answers on the system bus"
    assert fw["nf_tables"]["detail"] == "nft: permission denied"
    scan.ufw, scan.ufw_active = hostscan.UfwState(enabled=True, layer="nft", families=["ip"]), True
    fw = {f["firewall"]: f for f in api.backends()["firewalls"]}
    assert fw["ufw"] == {"firewall": "ufw", "present": True, "filters": True,
                         "detail": "ufw installed, /etc/ufw/ufw.conf ENABLED=yes, its chains are loaded in "
                                   "iptables-nft's filter table"}


def test_the_package_exports_the_backends_function():
    """``vrrpfw.backends`` is the API function even once the
    ``vrrpfw.backends`` subpackage is imported (as every run imports it)."""
    import vrrpfw.backends.registry  # noqa: F401

    assert callable(vrrpfw.backends)
    assert vrrpfw.backends is api.backends
    assert vrrpfw.open is api.open and vrrpfw.check is api.check and vrrpfw.close is api.close
