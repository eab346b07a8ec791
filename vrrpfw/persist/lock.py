"""One lock per saved store, held from the moment vrrpfw reads it until it
has written it back.

Two vrrpfw runs that edit the same rules.v4 (or state.json) from copies read
before either wrote lose one side's lines; a lock around read-edit-replace
serialises them.  The lock is an ``flock`` on a small file named after the
store's real path (so a symlink and its target share one lock), kept in
``/run/vrrpfw`` (``VRRPFW_LOCK_DIR`` overrides it): nothing is created
beside the admin's files, and /run is emptied at boot, when no run can hold
it.  Not /run/lock: any user may create a directory there, and root must
never open a file another user can point elsewhere with a symlink (that
would create files anywhere), nor a lock another user can hold forever.
So the directory must belong to us and be writable by nobody else, and
lock files are opened without following symlinks.  Locks of one run are
taken in a fixed order (sorted by lock file), so two runs that need the
same two stores cannot deadlock; the xtables lock is always taken after
them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import time
from typing import Iterable, Iterator, List

from ..errors import EnvironmentProblem, LockTimeout

DEFAULT_LOCK_DIR = "/run/vrrpfw"
POLL_SECONDS = 0.02


def lock_dir() -> str:
    return os.environ.get("VRRPFW_LOCK_DIR") or DEFAULT_LOCK_DIR


def lock_file(store_path: str) -> str:
    """The lock file of a store: its basename (for humans) and a hash of
    its real path (for uniqueness)."""
    real = os.path.realpath(store_path)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    base = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.path.basename(real))[:40]
    return os.path.join(lock_dir(), f"{base}-{digest}.lock")


def _safe_dir(directory: str) -> None:
    """Create the lock directory (0700) or accept an existing one only if it
    is a real directory of ours that nobody else can write to."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
    except OSError as e:
        raise EnvironmentProblem(f"cannot create the lock directory {directory}: {e.strerror} "
                                 "(set VRRPFW_LOCK_DIR to a directory of yours)") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise EnvironmentProblem(f"lock directory {directory} is not a directory owned by this user and "
                                 "writable by it alone; refusing to use it (remove it, or set "
                                 "VRRPFW_LOCK_DIR)")


def _acquire(path: str, store: str, timeout: float) -> int:
    _safe_dir(os.path.dirname(path))
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise EnvironmentProblem(f"cannot open the lock {path} for {store}: {e.strerror}") from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise EnvironmentProblem(f"cannot lock {path}: {e.strerror}") from None
        if time.monotonic() >= deadline:
            os.close(fd)
            raise LockTimeout(f"another vrrpfw run held the lock on {store} for more than {timeout:g}s; "
                              "nothing was changed (raise --lock-timeout to wait longer)")
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def store_locks(stores: Iterable[str], timeout: float) -> Iterator[None]:
    """Hold the lock of every store in ``stores`` (paths), taken in sorted
    order; released when the block ends, also on error or kill (the kernel
    drops an flock with its process)."""
    wanted = sorted({lock_file(s): s for s in stores}.items())
    held: List[int] = []
    try:
        for path, store in wanted:
            held.append(_acquire(path, store, timeout))
        yield
    finally:
        for fd in held:
            os.close(fd)
