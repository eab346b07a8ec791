"""vrrpfw.api.saved_texts(): what Ansible's diff mode shows of the saved
files, each file's whole text before and after a run (or, in a dry run, as
the real run would write it), taken around the run's single flush.  Real
files in a temporary directory; no firewall involved."""

from __future__ import annotations

import pytest

from vrrpfw import api, recorder
from vrrpfw.persist.saved import FileSet

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

BEFORE = "*filter\n:INPUT DROP [0:0]\nCOMMIT\n"
AFTER = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p 112 -m comment --comment vrrpfw -j ACCEPT\nCOMMIT\n"


def staged(tmp_path, name="rules.v4", text=AFTER):
    path = tmp_path / name
    path.write_text(BEFORE)
    files = FileSet()
    f = files.get(str(path))
    f.load()
    f.stage(text)
    return files, path


def test_a_written_file_is_recorded_as_it_was_and_as_it_is(tmp_path):
    files, path = staged(tmp_path)
    with api.saved_texts() as seen:
        before = recorder.saved_before(files)
        files.flush()
        recorder.trace_saved(files, before)
    assert path.read_text() == AFTER
    assert seen == [api.SavedText(str(path), BEFORE, AFTER)] and seen[0].changed


def test_a_dry_run_records_what_the_real_run_would_write(tmp_path):
    files, path = staged(tmp_path)
    with api.saved_texts() as seen:
        before = recorder.saved_before(files)
        files.flush(dry_run=True)
        recorder.trace_saved(files, before)
    assert path.read_text() == BEFORE
    assert seen == [api.SavedText(str(path), BEFORE, AFTER)]


def test_an_unchanged_file_is_recorded_unchanged_and_an_unread_one_not_at_all(tmp_path):
    files, path = staged(tmp_path, text=BEFORE)
    files.get(str(tmp_path / "never-read"))
    with api.saved_texts() as seen:
        before = recorder.saved_before(files)
        files.flush()
        recorder.trace_saved(files, before)
    assert seen == [api.SavedText(str(path), BEFORE, BEFORE)] and not seen[0].changed


def test_outside_a_block_nothing_is_taken_and_nested_blocks_both_record(tmp_path):
    files, path = staged(tmp_path)
    assert recorder.saved_before(files) == {}
    recorder.trace_saved(files, {})  # no recorder: nothing to do, no error
    with api.saved_texts() as outer:
        with api.saved_texts() as inner:
            before = recorder.saved_before(files)
            files.flush()
            recorder.trace_saved(files, before)
        assert inner == outer == [api.SavedText(str(path), BEFORE, AFTER)]
    with api.saved_texts() as later:
        pass
    assert later == []
