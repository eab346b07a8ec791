"""The lock every iptables command takes, so neither side loses rules.

libiptc works on a snapshot: read the whole table, edit it in memory, write
it back.  Two writers without a lock overwrite each other's rules.  iptables
(legacy and nft variants alike) serialises on ``flock`` of
``/run/xtables.lock`` (``XTABLES_LOCKFILE`` overrides it); we take the same
lock around our read-modify-commit.

The lock file is opened without following a symlink and without blocking
(a FIFO would), and must be a regular file owned by this user (root): its
directory may be one others can write to (iptables accepts any
``XTABLES_LOCKFILE``), where another user could put a symlink (root would
create a file wherever it points), a FIFO, or a file of their own (which
they could hold locked forever) in its place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from typing import Any, Callable, Iterator

from .. import environment
from ..errors import EnvironmentProblem, LockTimeout

DEFAULT_LOCKFILE = "/run/xtables.lock"
POLL_SECONDS = 0.05


def lock_path() -> str:
    return environment.xtables_lockfile() or DEFAULT_LOCKFILE


def wait_for_lock(fd: int, lock: Callable[[int, int], Any], path: str, timeout: float, held: str) -> None:
    """Take ``lock`` (``fcntl.flock`` or ``fcntl.lockf``: the kind the lock's
    other users take) exclusively on ``fd``, polling for up to ``timeout``
    seconds; LockTimeout(``held``) then.  Polling rather than blocking, so a
    stuck holder costs a clear message, never a hang."""
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        try:
            lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):  # lockf says EACCES
                raise EnvironmentProblem(f"cannot lock {path}: {e.strerror}") from None
        if time.monotonic() >= deadline:
            raise LockTimeout(held)
        time.sleep(POLL_SECONDS)


def open_lock(path: str, what: str, mode: int = 0o600, hint: str = "remove it") -> int:
    """Open (creating it) the lock file ``path``, never through a symlink
    and never blocking; refuse anything but a regular file owned by this
    user (root).  ``what`` names the lock in messages."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, mode)
    except OSError as e:
        raise EnvironmentProblem(f"cannot open {what} {path}: {e.strerror}"
                                 + (" (a symlink: never followed)" if os.path.islink(path) else "")) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise EnvironmentProblem(f"{what} {path} is not a regular file owned by this user; "
                                 f"refusing it ({hint})")
    return fd


@contextlib.contextmanager
def xtables_lock(timeout: float) -> Iterator[None]:
    path = lock_path()
    fd = open_lock(path, "the xtables lock", hint="remove it, or set XTABLES_LOCKFILE")
    try:
        wait_for_lock(fd, fcntl.flock, path, timeout,
                      f"another process held the xtables lock {path} for more than "
                      f"{timeout:g}s; nothing was changed (raise --lock-timeout to wait longer)")
        yield
    finally:
        os.close(fd)  # closing releases the flock
