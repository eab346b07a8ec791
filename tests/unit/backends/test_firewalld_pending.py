"""A firewalld call whose answer never came: the pending record in
state.json and how it is settled.

Pure (no D-Bus): a fake firewalld whose change call raises the error an
unanswered D-Bus call raises (OutcomeUnknown), having carried the change
out or not, and whose reads may fail too.  The record must be on disk
before the call, say what firewalld really holds after it, and be settled
by the next run where this run could not read firewalld again."""

from __future__ import annotations

import json
from typing import Optional, Set, Tuple

import pytest

from vrrpfw.backends.base import Change
from vrrpfw.backends.firewalld.bus import MayHaveChanged, OutcomeUnknown
from vrrpfw.backends.firewalld.layer import _Layer
from vrrpfw.errors import (
    EXIT_ENVIRONMENT,
    EXIT_NOT_ALLOWED,
    BackendError,
    EnvironmentProblem,
    PersistFileError,
)
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.persist.state import StateFile
from vrrpfw.results import Action

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

RICH = 'rule priority="-32768" family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
RULE = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
Key = Tuple[str, str, str, str]


def fresh(tmp_path, text=None) -> StateFile:
    path = tmp_path / "state.json"
    if text is not None:
        path.write_text(text)
    st = StateFile(str(path))
    st.load()
    return st


def on_disk(tmp_path) -> dict:
    return json.loads((tmp_path / "state.json").read_text())


class SlowFw:
    """firewalld's zone calls.  ``change`` gets no answer (OutcomeUnknown)
    when ``unanswered``; it is carried out anyway when ``completes``.
    Reads fail after the unanswered call when ``mute``.  ``seen`` is
    state.json as it was on disk when the change call was made."""

    def __init__(self, path: str, unanswered: bool = True, completes: bool = True, mute: bool = False,
                 refuse: bool = False) -> None:
        self.path, self.unanswered, self.completes, self.mute, self.refuse = \
            path, unanswered, completes, mute, refuse
        self.have: Set[Key] = set()
        self.silent = False
        self.seen: Optional[dict] = None

    def has(self, layer, zone, kind, value):
        if self.silent:
            raise OutcomeUnknown("firewalld stopped answering while querying zone public: no reply")
        return (layer, zone, kind, value) in self.have

    def change(self, layer, add, zone, kind, value):
        with open(self.path) as f:
            self.seen = json.load(f)
        if self.refuse:
            raise BackendError("firewalld failed adding: INVALID_RULE")
        if self.completes or not self.unanswered:
            (self.have.add if add else self.have.discard)((layer, zone, kind, value))
        if self.unanswered:
            self.silent = self.mute
            raise OutcomeUnknown("firewalld stopped answering while adding: Did not receive a reply")


@pytest.mark.parametrize("layer", ["runtime", "permanent"])
def test_the_add_is_on_disk_as_pending_before_the_call(tmp_path, layer):
    st = fresh(tmp_path)
    fw = SlowFw(str(tmp_path / "state.json"), unanswered=False)
    _Layer(fw, st, "zone", layer, None).apply([Change(Action.INSERT, RULE, "public")])  # type: ignore[arg-type]
    assert fw.seen is not None
    assert [(e["layer"], e["pending"]) for e in fw.seen["firewalld"]] == [(layer, True)]
    st.save()
    assert on_disk(tmp_path)["firewalld"] == [
        {"layer": layer, "zone": "public", "kind": "rich", "value": RICH, "interfaces": ["eth0"],
         "generation": None}]  # answered: an ordinary entry, no pending key


@pytest.mark.parametrize("layer", ["runtime", "permanent"])
def test_timed_out_but_completed_is_vrrpfws_with_a_note(tmp_path, layer):
    st = fresh(tmp_path)
    fw = SlowFw(str(tmp_path / "state.json"), completes=True)
    lay = _Layer(fw, st, "zone", layer, None)  # type: ignore[arg-type]
    done = lay.apply([Change(Action.INSERT, RULE, "public")])
    assert done == [f"{layer}: zone public: add rich rule {RICH}"]
    entry = st.find(layer, "public", "rich", RICH)
    assert entry is not None and not entry.pending and entry.interfaces == ["eth0"]
    assert len(lay.notes) == 1 and "did not answer vrrpfw's call in time but carried it out" in lay.notes[0]
    assert "recorded as vrrpfw's" in lay.notes[0]


def test_timed_out_and_not_done_drops_the_pending_entry_and_says_nothing_changed(tmp_path):
    st = fresh(tmp_path)
    fw = SlowFw(str(tmp_path / "state.json"), completes=False)
    with pytest.raises(EnvironmentProblem) as err:
        _Layer(fw, st, "zone", "runtime", None).apply(  # type: ignore[arg-type]
            [Change(Action.INSERT, RULE, "public")])
    assert not isinstance(err.value, MayHaveChanged) and err.value.exit_code == EXIT_ENVIRONMENT
    assert "did not carry it out" in str(err.value) and "changed nothing" in str(err.value)
    assert st.entries == []
    st.save()
    assert not (tmp_path / "state.json").exists()  # written (pending) before the call, holding nothing now


def test_unreadable_after_the_timeout_keeps_pending_and_says_may_have_changed(tmp_path):
    st = fresh(tmp_path)
    fw = SlowFw(str(tmp_path / "state.json"), completes=True, mute=True)
    with pytest.raises(MayHaveChanged) as err:
        _Layer(fw, st, "zone", "runtime", None).apply(  # type: ignore[arg-type]
            [Change(Action.INSERT, RULE, "public")])
    assert err.value.exit_code == EXIT_NOT_ALLOWED  # never exit 3: "nothing was changed" is not known
    assert "may have been changed" in str(err.value) and "recorded as pending" in str(err.value)
    st.save()
    assert [e.get("pending") for e in on_disk(tmp_path)["firewalld"]] == [True]


def test_an_error_answer_drops_the_pending_entry(tmp_path):
    st = fresh(tmp_path)
    fw = SlowFw(str(tmp_path / "state.json"), refuse=True)
    with pytest.raises(BackendError):
        _Layer(fw, st, "zone", "runtime", None).apply(  # type: ignore[arg-type]
            [Change(Action.INSERT, RULE, "public")])
    assert st.entries == []


def test_nothing_is_called_when_the_pending_record_cannot_be_written(tmp_path):
    st = fresh(tmp_path)
    (tmp_path / "state.json").write_text('{"version": 2, "firewalld": [], "interfaces": []}\n')  # another run
    fw = SlowFw(str(tmp_path / "state.json"), unanswered=False)
    with pytest.raises(PersistFileError):
        _Layer(fw, st, "zone", "runtime", None).apply(  # type: ignore[arg-type]
            [Change(Action.INSERT, RULE, "public")])
    assert fw.seen is None and fw.have == set()


def test_an_existing_entry_is_shared_not_made_pending(tmp_path):
    st = fresh(tmp_path)
    st.add("runtime", "public", "rich", RICH, "eth1")
    assert st.add_pending("runtime", "public", "rich", RICH, "eth0") is None
    entry = st.find("runtime", "public", "rich", RICH)
    assert entry is not None and not entry.pending and entry.interfaces == ["eth1", "eth0"]


def test_unanswered_removal_that_was_done_releases_the_entry(tmp_path):
    st = fresh(tmp_path)
    st.add("runtime", "public", "rich", RICH, "eth0")
    fw = SlowFw(str(tmp_path / "state.json"), completes=True)
    fw.have.add(("runtime", "public", "rich", RICH))
    (tmp_path / "state.json").write_text("{}")
    lay = _Layer(fw, st, "zone", "runtime", None)  # type: ignore[arg-type]
    lay.apply([Change(Action.DELETE, RULE, ("zone", "runtime", "public", "rich", RICH))])
    assert st.entries == [] and "carried it out" in lay.notes[0]


def test_unanswered_removal_not_done_keeps_the_entry(tmp_path):
    st = fresh(tmp_path)
    st.add("runtime", "public", "rich", RICH, "eth0")
    fw = SlowFw(str(tmp_path / "state.json"), completes=False)
    fw.have.add(("runtime", "public", "rich", RICH))
    (tmp_path / "state.json").write_text("{}")
    with pytest.raises(EnvironmentProblem, match="changed nothing"):
        _Layer(fw, st, "zone", "runtime", None).apply(  # type: ignore[arg-type]
            [Change(Action.DELETE, RULE, ("zone", "runtime", "public", "rich", RICH))])
    assert st.find("runtime", "public", "rich", RICH) is not None


# -- state.json: the pending field -----------------------------------------------
OLD = json.dumps({"version": 2, "firewalld": [
    {"layer": "runtime", "zone": "public", "kind": "rich", "value": RICH, "interfaces": ["eth0"],
     "generation": "g1"}], "interfaces": [{"interface": "eth0", "group": "224.0.0.18"}]}, indent=2,
    sort_keys=True) + "\n"


def test_an_older_file_reads_and_is_rewritten_byte_for_byte(tmp_path):
    st = fresh(tmp_path, OLD)
    assert [e.pending for e in st.entries] == [False]
    assert st.text() == OLD


def test_pending_round_trips_and_is_written_only_while_true(tmp_path):
    st = fresh(tmp_path)
    entry = st.add_pending("permanent", "public", "rich", RICH, "eth0")
    assert entry is not None and entry.pending
    st.save()
    assert on_disk(tmp_path)["firewalld"][0]["pending"] is True
    again = fresh(tmp_path)
    assert again.pending() == again.entries and again.entries[0].pending
    StateFile.confirm(again.entries[0])
    assert "pending" not in again.text()


@pytest.mark.parametrize("bad", ['"yes"', "1", "null"])
def test_a_pending_that_is_not_a_boolean_is_refused(tmp_path, bad):
    text = OLD.replace('"generation": "g1"', f'"generation": "g1", "pending": {bad}')
    with pytest.raises(PersistFileError, match="not a vrrpfw state file"):
        fresh(tmp_path, text)


@pytest.mark.parametrize("there", [True, False])
def test_prune_settles_a_pending_entry_left_by_an_earlier_run(tmp_path, there):
    st = fresh(tmp_path)
    st.generation = "g1"
    st.add_pending("runtime", "public", "rich", RICH, "eth0")
    notes = st.prune(lambda e: there)
    assert "could not learn whether firewalld added" in notes[0]
    if there:
        assert [e.pending for e in st.entries] == [False] and "it is vrrpfw's" in notes[0]
    else:
        assert st.entries == [] and "did not complete" in notes[0]


def test_prune_of_a_pending_entry_after_a_reload_keeps_only_the_reload_note(tmp_path):
    st = fresh(tmp_path)
    st.generation = "g1"
    st.add_pending("runtime", "public", "rich", RICH, "eth0")
    st.generation = "g2"  # firewalld reloaded since: what is there now is not provably vrrpfw's
    notes = st.prune(lambda e: True)
    assert st.entries == [] and len(notes) == 1 and "reloaded or restarted" in notes[0]


class SlowDirect:
    """firewalld's direct-rule calls: the add goes unanswered, carried out
    or not (direct rules carry vrrpfw's comment: no record is needed)."""

    def __init__(self, completes: bool) -> None:
        self.completes, self.rules = completes, []

    def direct_rules(self, layer):
        return list(self.rules)

    def direct_change(self, layer, add, chain, prio, args, ipv="ipv4"):
        if self.completes:
            self.rules.append((ipv, "filter", chain, prio, list(args)))
        raise OutcomeUnknown("firewalld stopped answering while adding a direct rule: no reply")


@pytest.mark.parametrize("completes", [True, False])
def test_an_unanswered_direct_rule_is_read_back(tmp_path, completes):
    st = fresh(tmp_path)
    fw = SlowDirect(completes)
    lay = _Layer(fw, st, "direct", "runtime", None)  # type: ignore[arg-type]
    change = Change(Action.INSERT, RULE)
    if completes:
        assert lay.apply([change]) and "carried it out" in lay.notes[0]
    else:
        with pytest.raises(EnvironmentProblem, match="changed nothing"):
            lay.apply([change])
    assert st.entries == []
