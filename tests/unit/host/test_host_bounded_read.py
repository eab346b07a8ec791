"""vrrpfw/host/bounded_read.py: what root reads for a caller is a regular
file, read up to a limit, and nothing else is ever opened for reading."""

from __future__ import annotations

import os

import pytest

from vrrpfw.host import bounded_read
from vrrpfw.host.bounded_read import ReadRefused, read_regular

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def test_a_regular_file_is_read(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert read_regular(str(p), 10) == b"abc"


def test_over_the_limit_is_refused(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * 11)
    with pytest.raises(ReadRefused):
        read_regular(str(p), 10)


def test_a_device_swapped_in_after_the_stat_is_never_opened_for_reading(monkeypatch):
    """The race a local user can win with a symlink (review finding): the
    stat() saw a regular file, then the name points at a device.  Opening
    some devices acts (a watchdog, a tape), so the device must never be
    opened for reading: it is looked at through an O_PATH descriptor only."""
    real_stat, real_open = os.stat, os.open
    regular = real_stat(__file__)
    opened_for_reading = []

    def stat_sees_a_regular_file(path, *a, **k):
        return regular if path == "/dev/null" else real_stat(path, *a, **k)

    def watch_open(path, flags, *a, **k):
        fd = real_open(path, flags, *a, **k)
        if not flags & getattr(os, "O_PATH", 0o10000000) and not os.path.isfile(f"/proc/self/fd/{fd}"):
            opened_for_reading.append(path)
        return fd

    monkeypatch.setattr(bounded_read.os, "stat", stat_sees_a_regular_file)
    monkeypatch.setattr(bounded_read.os, "open", watch_open)
    with pytest.raises(ReadRefused, match="not a regular file"):
        read_regular("/dev/null", 1 << 20)
    assert opened_for_reading == []
