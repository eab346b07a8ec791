"""The environment variables vrrpfw reads (vrrpfw.environment) and the lock
files and directories it opens (vrrpfw.persist.lock,
vrrpfw.backends.xtables_lock, ufw's lock): a value vrrpfw cannot use is
one line and exit 2 before any firewall is looked at; a lock directory
below a directory others can write to, a symlinked one, or a lock file that
is a symlink, a FIFO or another user's is refused (exit 3) and nothing is
created through it."""

from __future__ import annotations

import os
import pathlib
import threading

import pytest
from lockdirs import private_lock_dir

from vrrpfw import api, environment
from vrrpfw.backends import registry
from vrrpfw.backends.ufw import ufw_lock
from vrrpfw.backends.xtables_lock import xtables_lock
from vrrpfw.cli import entry as cli
from vrrpfw.errors import EnvironmentProblem, InputError
from vrrpfw.persist import lock

OTHER_UID = 4321  # no user of this host: "another user"


def one_line(capsys, code, argv):
    assert cli.main(argv) == code, argv
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------- VRRPFW_DBUS_TIMEOUT

BAD_TIMEOUTS = ["abc", "", " ", "nan", "-nan", "inf", "-inf", "-1", "0", "-0", "1e9", "3600.5", "1e-9",
                "15s", "0x10", "1e999"]


@pytest.mark.parametrize("value", BAD_TIMEOUTS)
@pytest.mark.parametrize("command", ["open", "check", "close"])
def test_a_bad_dbus_timeout_is_exit_2_before_any_firewall(capsys, monkeypatch, no_backends, value, command):
    monkeypatch.setenv("VRRPFW_DBUS_TIMEOUT", value)
    line = one_line(capsys, 2, [command, "--iface", "eth0", "--backend", "firewalld"])
    assert "VRRPFW_DBUS_TIMEOUT" in line and "at most 3600" in line


@pytest.mark.parametrize("value", ["abc", "nan", "-1", "1e9"])
def test_a_bad_dbus_timeout_is_an_input_error_through_the_api(monkeypatch, no_backends, value):
    monkeypatch.setenv("VRRPFW_DBUS_TIMEOUT", value)
    for call in (lambda: api.open(["eth0"]), api.check, api.close,
                 lambda: api.listen(["eth0"], 1), api.backends):
        with pytest.raises(InputError, match="VRRPFW_DBUS_TIMEOUT") as e:
            call()
        assert e.value.exit_code == 2


@pytest.mark.parametrize("value", ["abc", "nan", "1e9"])
def test_prove_refuses_a_bad_dbus_timeout_before_reading_the_host(capsys, monkeypatch, value):
    from vrrpfw.prove import proof as prove

    def refuse(*_a, **_k):
        raise AssertionError("prove read the host with a bad environment")

    monkeypatch.setattr(prove, "capture_rules", refuse)
    monkeypatch.setenv("VRRPFW_DBUS_TIMEOUT", value)
    line = one_line(capsys, 2, ["prove", "--iface", "eth0"])
    assert "VRRPFW_DBUS_TIMEOUT" in line


@pytest.mark.parametrize("value, seconds", [(None, 15.0), ("2", 2.0), (" 2.5 ", 2.5), ("3600", 3600.0),
                                            ("0.001", 0.001)])
def test_good_dbus_timeouts_are_taken(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("VRRPFW_DBUS_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("VRRPFW_DBUS_TIMEOUT", value)
    assert environment.dbus_timeout() == seconds
    environment.check()


# ---------------------------------------------------------------- lock paths must be absolute

@pytest.mark.parametrize("var", ["VRRPFW_LOCK_DIR", "XTABLES_LOCKFILE"])
@pytest.mark.parametrize("value", ["locks", "./x", "../run/x", "~/x"])
def test_a_relative_lock_path_is_exit_2_before_any_firewall(capsys, monkeypatch, no_backends, var, value):
    monkeypatch.setenv(var, value)
    line = one_line(capsys, 2, ["open", "--iface", "eth0"])
    assert f"{var} must be an absolute path" in line


def test_an_empty_lock_path_means_the_default(monkeypatch):
    monkeypatch.setenv("VRRPFW_LOCK_DIR", "")
    monkeypatch.setenv("XTABLES_LOCKFILE", "")
    assert lock.lock_dir() == lock.DEFAULT_LOCK_DIR
    from vrrpfw.backends import xtables_lock as xl

    assert xl.lock_path() == xl.DEFAULT_LOCKFILE


# ---------------------------------------------------------------- the lock directory and its parents

@pytest.fixture
def base(tmp_path):
    """A directory of ours below directories only root can write to."""
    d = pathlib.Path(private_lock_dir(tmp_path))
    d.mkdir(mode=0o700)
    yield d
    for root, dirs, _files in os.walk(d):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)


def parent_cases(base: pathlib.Path, case: str) -> pathlib.Path:
    """The lock directory to use, below a parent made unsafe as ``case``."""
    parent = base / "parent"
    if case == "symlink":
        real = base / "real"
        real.mkdir(mode=0o755)
        parent.symlink_to(real)
        return parent / "locks"
    parent.mkdir(mode=0o755)
    if case == "sticky":
        os.chmod(parent, 0o1777)
    elif case == "world":
        os.chmod(parent, 0o757)
    elif case == "group":
        os.chmod(parent, 0o775)
    elif case == "other-user":
        os.chown(parent, OTHER_UID, OTHER_UID)
    elif case == "grandparent":
        os.chmod(parent, 0o1777)
        (parent / "mid").mkdir(mode=0o755)
        return parent / "mid" / "locks"
    return parent / "locks"


UNSAFE_PARENTS = ["sticky", "world", "group", "other-user", "symlink", "grandparent"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user)")
@pytest.mark.parametrize("case", UNSAFE_PARENTS)
def test_a_lock_directory_below_an_unsafe_parent_is_refused_before_any_firewall(
        capsys, monkeypatch, no_backends, base, case):
    locks = parent_cases(base, case)
    monkeypatch.setenv("VRRPFW_LOCK_DIR", str(locks))
    line = one_line(capsys, 3, ["open", "--iface", "eth0"])
    assert str(locks) in line and "refusing" in line
    assert not os.path.lexists(locks)
    with pytest.raises(EnvironmentProblem, match="refusing"):
        with lock.store_locks([str(base / "rules.v4")], 0):
            pass
    assert not os.path.lexists(locks)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user)")
def test_a_lock_directory_below_safe_parents_is_made_and_used(monkeypatch, base):
    (base / "a").mkdir(mode=0o755)
    locks = base / "a" / "locks"
    monkeypatch.setenv("VRRPFW_LOCK_DIR", str(locks))
    lock.check_dir()
    with lock.store_locks([str(base / "rules.v4")], 0):
        assert oct(locks.stat().st_mode & 0o7777) == "0o700"


def test_only_the_last_lock_directory_is_made(monkeypatch, base):
    """A missing parent is not made (makedirs would make it with the umask's mode)."""
    monkeypatch.setenv("VRRPFW_LOCK_DIR", str(base / "missing" / "locks"))
    with pytest.raises(EnvironmentProblem, match="No such file"):
        with lock.store_locks([str(base / "rules.v4")], 0):
            pass
    assert not (base / "missing").exists()


def test_dry_runs_and_checks_take_no_lock_so_need_no_lock_directory(monkeypatch, base):
    """Only a run that writes checks the lock directory early."""
    bad = parent_cases(base, "world")
    monkeypatch.setenv("VRRPFW_LOCK_DIR", str(bad))
    chosen = []

    def pick(*_a, **_k):
        chosen.append(True)
        return [], "nothing here"

    monkeypatch.setattr(registry, "select_layers", pick)
    assert api.check(["eth0"]).exit_code == 0 and api.open(["eth0"], dry_run=True).exit_code == 0
    assert len(chosen) == 2


# ---------------------------------------------------------------- the lock files

@pytest.fixture
def locks(monkeypatch, base):
    d = base / "locks"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("VRRPFW_LOCK_DIR", str(d))
    return d


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user)")
@pytest.mark.parametrize("kind", ["other-user", "fifo", "directory"])
def test_a_store_lock_file_that_is_not_our_regular_file_is_refused(base, locks, kind):
    store = str(base / "rules.v4")
    path = lock.lock_file(store)
    if kind == "other-user":
        pathlib.Path(path).touch(mode=0o666)
        os.chown(path, OTHER_UID, OTHER_UID)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        os.mkdir(path, 0o700)
    with pytest.raises(EnvironmentProblem, match="refusing|cannot open the lock") as e:
        with lock.store_locks([store], 0):
            pass
    assert "\n" not in str(e.value)


def run_briefly(fn):
    """``fn()`` in a thread: the test fails (not hangs) if it blocks."""
    failure = []

    def body():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            failure.append(e)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "opening the lock blocked"
    return failure[0] if failure else None


def take_xtables(timeout=0):
    with xtables_lock(timeout):
        pass


def test_a_symlinked_xtables_lock_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    link = tmp_path / "xtables.lock"
    link.symlink_to(victim)
    monkeypatch.setenv("XTABLES_LOCKFILE", str(link))
    with pytest.raises(EnvironmentProblem, match="symlink: never followed"):
        take_xtables()
    assert not victim.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user)")
@pytest.mark.parametrize("kind", ["other-user", "fifo", "directory"])
def test_an_xtables_lock_that_is_not_our_regular_file_is_refused(tmp_path, monkeypatch, kind):
    path = tmp_path / "xtables.lock"
    if kind == "other-user":  # pre-created in a directory others can write to (/tmp)
        path.touch(mode=0o666)
        os.chown(path, OTHER_UID, OTHER_UID)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.mkdir()
    monkeypatch.setenv("XTABLES_LOCKFILE", str(path))
    error = run_briefly(take_xtables)
    assert isinstance(error, EnvironmentProblem), error
    assert str(path) in str(error)


def test_our_own_xtables_lock_is_taken_and_created_0600(tmp_path, monkeypatch):
    path = tmp_path / "xtables.lock"
    monkeypatch.setenv("XTABLES_LOCKFILE", str(path))
    take_xtables()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    take_xtables()  # and again, now that it exists


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user)")
@pytest.mark.parametrize("kind", ["symlink", "other-user", "fifo"])
def test_ufws_lock_that_is_not_our_regular_file_is_refused(tmp_path, kind):
    path = tmp_path / "ufw.lock"
    victim = tmp_path / "victim"
    if kind == "symlink":
        path.symlink_to(victim)
    elif kind == "other-user":
        path.touch(mode=0o666)
        os.chown(path, OTHER_UID, OTHER_UID)
    else:
        os.mkfifo(path, 0o600)

    def take():
        with ufw_lock(0, str(path)):
            pass

    error = run_briefly(take)
    assert isinstance(error, EnvironmentProblem), error
    assert not victim.exists()
