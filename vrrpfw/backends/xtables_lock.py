"""The lock every iptables command takes, so neither side loses rules.

libiptc works on a snapshot: read the whole table, edit it in memory, write
it back.  Two writers without a lock overwrite each other's rules.  iptables
(legacy and nft variants alike) serialises on ``flock`` of
``/run/xtables.lock`` (``XTABLES_LOCKFILE`` overrides it); we take the same
lock around our read-modify-commit.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from typing import Any, Callable, Iterator

from ..errors import EnvironmentProblem, LockTimeout

DEFAULT_LOCKFILE = "/run/xtables.lock"
POLL_SECONDS = 0.05


def lock_path() -> str:
    return os.environ.get("XTABLES_LOCKFILE") or DEFAULT_LOCKFILE


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


@contextlib.contextmanager
def xtables_lock(timeout: float) -> Iterator[None]:
    path = lock_path()
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise EnvironmentProblem(f"cannot open the xtables lock {path}: {e.strerror}") from None
    try:
        wait_for_lock(fd, fcntl.flock, path, timeout,
                      f"another process held the xtables lock {path} for more than "
                      f"{timeout:g}s; nothing was changed (raise --lock-timeout to wait longer)")
        yield
    finally:
        os.close(fd)  # closing releases the flock
