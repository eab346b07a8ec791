"""The per-file lock (vrrpfw.persist.lock): serialises runs, and never lets
another user redirect or hold it (a review found root following a symlink
planted in a world-writable /run/lock/vrrpfw)."""

import fcntl
import os
import pathlib

import pytest
from lockdirs import private_lock_dir

from vrrpfw.errors import EnvironmentProblem, LockTimeout
from vrrpfw.persist import lock

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


@pytest.fixture
def lockdir(tmp_path, monkeypatch):
    d = pathlib.Path(private_lock_dir(tmp_path))  # not below /tmp, which others can write to
    monkeypatch.setenv("VRRPFW_LOCK_DIR", str(d))
    return d


def test_lock_is_exclusive_and_times_out(tmp_path, lockdir):
    store = str(tmp_path / "rules.v4")
    with lock.store_locks([store], 1):
        assert oct(lockdir.stat().st_mode & 0o777) == "0o700"
        fd = os.open(lock.lock_file(store), os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
        with pytest.raises(LockTimeout, match="rules.v4"):
            with lock.store_locks([store], 0.1):
                pass
    with lock.store_locks([store, store], 0):  # released, and one lock per store
        pass


def test_a_symlink_and_its_target_share_one_lock(tmp_path, lockdir):
    target = tmp_path / "real"
    link = tmp_path / "link"
    link.symlink_to(target)
    assert lock.lock_file(str(link)) == lock.lock_file(str(target))


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o722])
def test_a_lock_directory_others_can_write_is_refused(tmp_path, lockdir, mode):
    lockdir.mkdir()
    os.chmod(lockdir, mode)
    with pytest.raises(EnvironmentProblem, match="writable by it alone"):
        with lock.store_locks([str(tmp_path / "rules.v4")], 0):
            pass


def test_a_symlinked_lock_directory_or_lock_file_is_never_followed(tmp_path, lockdir):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    lockdir.symlink_to(elsewhere)
    with pytest.raises(EnvironmentProblem):
        with lock.store_locks([str(tmp_path / "rules.v4")], 0):
            pass
    lockdir.unlink()
    lockdir.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    os.symlink(victim, lock.lock_file(str(tmp_path / "rules.v4")))
    with pytest.raises(EnvironmentProblem, match="cannot open the lock"):
        with lock.store_locks([str(tmp_path / "rules.v4")], 0):
            pass
    assert not victim.exists()
