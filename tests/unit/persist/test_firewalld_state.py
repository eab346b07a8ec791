"""state.json: the record that proves what vrrpfw added to firewalld.

Pure (no D-Bus): the record is refused when someone rewrote it since it was
read, entries that no longer prove ownership are forgotten with a note, a
runtime entry from an older firewalld runtime generation is vrrpfw's only
where vrrpfw's own permanent allowance brought it back, and a change that
fails part-way leaves every allowance already made recorded."""

from __future__ import annotations

import json
from typing import List, Set, Tuple

import pytest

from vrrpfw.backends.base import Change, Options
from vrrpfw.backends.firewalld.backend import FirewalldBackend
from vrrpfw.backends.firewalld.layer import _Layer
from vrrpfw.errors import BackendUnavailable, PersistFileError
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.persist.state import Entry, StateFile
from vrrpfw.results import Action

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

RICH = 'rule priority="-32768" family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'


def fresh(tmp_path, text=None) -> StateFile:
    path = tmp_path / "state.json"
    if text is not None:
        path.write_text(text)
    st = StateFile(str(path))
    st.load()
    return st


def test_save_refuses_a_file_changed_since_it_was_read(tmp_path):
    st = fresh(tmp_path)
    other = fresh(tmp_path)
    other.add("permanent", "public", "rich", RICH, "eth1")
    other.save()  # another run, without the lock, wrote in between
    st.add("permanent", "public", "rich", RICH, "eth0")
    with pytest.raises(PersistFileError, match="changed by someone else since vrrpfw read it"):
        st.save()
    doc = json.loads((tmp_path / "state.json").read_text())
    assert [e["interfaces"] for e in doc["firewalld"]] == [["eth1"]]  # the other run's entry is kept


def test_save_after_own_save_and_unchanged_save_do_not_refuse(tmp_path):
    st = fresh(tmp_path)
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.save()
    st.add("runtime", "public", "rich", RICH, "eth1")
    st.save()
    st.save()  # nothing changed: no write, no refusal
    assert fresh(tmp_path).find("runtime", "public", "rich", RICH).interfaces == ["eth0", "eth1"]


def test_absent_file_with_nothing_to_record_stays_absent(tmp_path):
    st = fresh(tmp_path)
    st.save()  # what check does on a firewalld host where vrrpfw never opened anything
    assert not (tmp_path / "state.json").exists()
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.release("runtime", "public", "rich", RICH, "eth0")
    st.save()  # added and taken back within one run: still nothing to record
    assert not (tmp_path / "state.json").exists()
    st.ask("eth0", "224.0.0.18")
    st.save()
    assert json.loads((tmp_path / "state.json").read_text())["interfaces"] == [
        {"interface": "eth0", "group": "224.0.0.18"}]


def test_version_1_file_is_read_and_unknown_newer_refused(tmp_path):
    v1 = {"version": 1, "firewalld": [{"layer": "permanent", "zone": "public", "kind": "rich",
                                       "value": RICH, "interfaces": ["eth0"]}]}
    st = fresh(tmp_path, json.dumps(v1))
    assert st.entries == [Entry("permanent", "public", "rich", RICH, ["eth0"], None)] and st.asked == []
    with pytest.raises(PersistFileError, match="not a vrrpfw state file"):
        fresh(tmp_path, json.dumps({"version": 99, "firewalld": []}))
    with pytest.raises(PersistFileError, match="not a vrrpfw state file"):
        fresh(tmp_path, json.dumps([1, 2]))


def test_asked_interfaces_round_trip(tmp_path):
    st = fresh(tmp_path)
    st.ask("eth0", "224.0.0.18")
    st.ask("eth0", "224.0.0.18")
    st.ask("eth1", "224.0.0.19")
    st.forget("eth1", "224.0.0.19")
    st.forget("eth9", "224.0.0.18")
    st.save()
    assert fresh(tmp_path).asked == [("eth0", "224.0.0.18")]


def test_new_runtime_entries_carry_the_generation(tmp_path):
    st = fresh(tmp_path)
    st.generation = "boot:ns:nftables:7"
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.add("permanent", "public", "rich", RICH, "eth0")
    assert st.find("runtime", "public", "rich", RICH).generation == "boot:ns:nftables:7"
    assert st.find("permanent", "public", "rich", RICH).generation is None


def prune(st: StateFile, present: Set[Tuple[str, str]]) -> List[str]:
    return st.prune(lambda e: (e.layer, e.zone) in present)


def test_prune_forgets_what_vanished(tmp_path):
    st = fresh(tmp_path)
    st.generation = "g1"
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.add("permanent", "public", "rich", RICH, "eth0")
    assert prune(st, {("runtime", "public"), ("permanent", "public")}) == []
    notes = prune(st, {("runtime", "public")})
    assert [e.layer for e in st.entries] == ["runtime"]
    assert len(notes) == 1 and "was removed by someone" in notes[0] and "(permanent)" in notes[0]


def test_prune_after_reload_keeps_only_what_vrrpfw_persisted(tmp_path):
    st = fresh(tmp_path)
    st.generation = "g1"
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.add("permanent", "public", "rich", RICH, "eth0")
    st.add("runtime", "internal", "rich", RICH, "eth1")  # --no-persist
    st.add("runtime", "dmz", "rich", RICH, "eth2")  # --no-persist, gone with the reload
    st.generation = "g2"  # firewalld reloaded
    notes = prune(st, {("runtime", "public"), ("permanent", "public"), ("runtime", "internal")})
    assert [(e.layer, e.zone, e.generation) for e in st.entries] == [
        ("runtime", "public", "g2"), ("permanent", "public", None)]
    assert len(notes) == 2
    assert "internal" in notes[0] and "not provably vrrpfw's" in notes[0] and "leaves it in place" in notes[0]
    assert "dmz" in notes[1] and "it is gone" in notes[1]


def test_prune_without_a_generation_judges_by_presence_only(tmp_path):
    st = fresh(tmp_path)
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.generation = None
    assert prune(st, {("runtime", "public")}) == [] and len(st.entries) == 1


class FakeFw:
    """firewalld's zone calls, failing (as a daemon that died) after ``ok`` changes."""

    def __init__(self, ok: int) -> None:
        self.ok, self.have = ok, set()

    def has(self, layer, zone, kind, value):
        return (layer, zone, kind, value) in self.have

    def change(self, layer, add, zone, kind, value):
        if self.ok == 0:
            raise BackendUnavailable("firewalld is not running")
        self.ok -= 1
        (self.have.add if add else self.have.discard)((layer, zone, kind, value))


def test_a_failure_after_n_adds_leaves_n_recorded(tmp_path):
    st = fresh(tmp_path)
    fw = FakeFw(ok=2)
    layer = _Layer(fw, st, "zone", "permanent", None)  # type: ignore[arg-type]
    rule = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
    backend = FirewalldBackend.__new__(FirewalldBackend)
    backend.state, backend._notes = st, []
    changes = [Change(Action.INSERT, rule, t) for t in ("public", "internal", "dmz")]
    with pytest.raises(BackendUnavailable):
        with backend.saving():
            layer.apply(changes)
    saved = fresh(tmp_path)
    assert [e.zone for e in saved.entries] == ["public", "internal"]


def test_delete_forgets_only_after_the_removal_succeeded(tmp_path):
    st = fresh(tmp_path)
    fw = FakeFw(ok=0)
    fw.have.add(("runtime", "public", "rich", RICH))
    st.add("runtime", "public", "rich", RICH, "eth0")
    layer = _Layer(fw, st, "zone", "runtime", None)  # type: ignore[arg-type]
    rule = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
    with pytest.raises(BackendUnavailable):
        layer.apply([Change(Action.DELETE, rule, ("zone", "runtime", "public", "rich", RICH))])
    assert st.find("runtime", "public", "rich", RICH).interfaces == ["eth0"]


def test_lock_paths_names_the_state_file(tmp_path):
    b = FirewalldBackend.__new__(FirewalldBackend)
    b.options, b.state = Options(state_file=str(tmp_path / "s.json")), StateFile(str(tmp_path / "s.json"))
    assert b.lock_paths() == [str(tmp_path / "s.json")]


def test_the_default_state_file_s_directory_is_created_on_first_use(tmp_path, monkeypatch):
    """/var/lib/vrrpfw does not exist on a fresh host; an explicit
    --state-file in a missing directory is a usage error instead (api)."""
    from vrrpfw.persist import state as state_mod

    default = tmp_path / "var" / "lib" / "vrrpfw" / "state.json"
    monkeypatch.setattr(state_mod, "DEFAULT_STATE_FILE", str(default))
    sf = state_mod.StateFile(None)
    sf.load()
    sf.add("runtime", "public", "rich", "rule", "eth0")
    sf.save()
    assert default.exists() and "public" in default.read_text()


def test_a_state_file_nested_beyond_json_recursion_is_not_a_state_file(tmp_path):
    """'[' * 200000 made json.loads raise RecursionError: exit 4 (an internal
    error) where a file that does not parse is exit 3 (review finding)."""
    with pytest.raises(PersistFileError, match="not a vrrpfw state file"):
        fresh(tmp_path, "[" * 200000).load()


def test_a_file_emptied_by_this_run_is_removed(tmp_path):
    """open then close: the file open created holds nothing once close has
    released everything, and is removed (before: an empty state.json
    stayed behind)."""
    st = fresh(tmp_path)
    st.ask("eth0", "224.0.0.18")
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.save()
    assert (tmp_path / "state.json").exists()
    st = fresh(tmp_path)
    st.forget("eth0", "224.0.0.18")
    assert st.release("runtime", "public", "rich", RICH, "eth0")
    st.save()
    assert not (tmp_path / "state.json").exists()
    st.save()  # nothing more to do
    assert not (tmp_path / "state.json").exists()


def test_a_pending_entry_keeps_the_file(tmp_path):
    st = fresh(tmp_path)
    st.add_pending("runtime", "public", "rich", RICH, "eth0")
    st.save()
    assert fresh(tmp_path).pending()[0].value == RICH


def test_a_file_with_entries_of_its_own_keeps_them_in_its_form(tmp_path):
    """Another interface's entry was there before: close of eth0 leaves it,
    written as the version its content needs (2: IPv4 groups only)."""
    st = fresh(tmp_path)
    st.ask("eth1", "224.0.0.18")
    st.add("permanent", "public", "rich", RICH, "eth1")
    st.save()
    before = (tmp_path / "state.json").read_text()
    st = fresh(tmp_path)
    st.ask("eth0", "ff02::12")
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.save()
    assert json.loads((tmp_path / "state.json").read_text())["version"] == 3
    st = fresh(tmp_path)
    st.forget("eth0", "ff02::12")
    st.release("runtime", "public", "rich", RICH, "eth0")
    st.save()
    assert (tmp_path / "state.json").read_text() == before


@pytest.mark.parametrize("text", ["", "\n", '{"firewalld": [], "interfaces": [], "version": 2}\n'])
def test_a_file_that_held_nothing_already_is_left_as_it_is(tmp_path, text):
    st = fresh(tmp_path, text)
    st.save()
    assert (tmp_path / "state.json").read_text() == text


def test_removal_refuses_a_file_changed_since_it_was_read(tmp_path):
    st = fresh(tmp_path)
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.save()
    st = fresh(tmp_path)
    other = fresh(tmp_path)
    other.add("runtime", "public", "rich", RICH, "eth1")
    other.save()  # another run, without the lock, wrote in between
    st.release("runtime", "public", "rich", RICH, "eth0")
    with pytest.raises(PersistFileError, match="changed by someone else"):
        st.save()
    assert fresh(tmp_path).find("runtime", "public", "rich", RICH).interfaces == ["eth0", "eth1"]


def test_a_symlinked_state_file_is_emptied_not_removed(tmp_path):
    real = tmp_path / "real.json"
    link = tmp_path / "state.json"
    st = StateFile(str(real))
    st.load()
    st.add("runtime", "public", "rich", RICH, "eth0")
    st.save()
    link.symlink_to(real)
    st = StateFile(str(link))
    st.load()
    st.release("runtime", "public", "rich", RICH, "eth0")
    st.save()
    assert link.is_symlink() and json.loads(real.read_text())["firewalld"] == []
