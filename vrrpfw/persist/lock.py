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
So the directory must belong to us and be writable by nobody else, and so
must every directory above it (one writable by another user lets that user
rename ours away and put their own in its place); none of them may be a
symlink, and lock files are opened without following symlinks and must be
regular files of ours.  A world-writable sticky directory (/tmp) is refused
too: no other user can then remove what we made, but anyone can take the
name first, and tmpfiles cleaners delete old entries there, and a lock file
deleted while held splits one lock in two.  Locks of one run are
taken in a fixed order (sorted by lock file), so two runs that need the
same two stores cannot deadlock; the xtables lock is always taken after
them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from typing import Iterable, Iterator, List

from .. import environment
from ..errors import EnvironmentProblem, LockTimeout

DEFAULT_LOCK_DIR = "/run/vrrpfw"
POLL_SECONDS = 0.02


def lock_dir() -> str:
    """VRRPFW_LOCK_DIR (absolute, else exit 2), or /run/vrrpfw."""
    return environment.lock_dir() or DEFAULT_LOCK_DIR


def lock_file(store_path: str) -> str:
    """The lock file of a store: its basename (for humans) and a hash of
    its real path (for uniqueness)."""
    import hashlib  # here: loading OpenSSL costs 2-3 ms, and check locks nothing

    real = os.path.realpath(store_path)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    base = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.path.basename(real))[:40]
    return os.path.join(lock_dir(), f"{base}-{digest}.lock")


def _refusal(message: str) -> EnvironmentProblem:
    """An unsafe lock directory or lock file: exit 3, nothing was changed
    (a VRRPFW_LOCK_DIR that is no absolute path is exit 2, before this)."""
    return EnvironmentProblem(message)


def _safe_parents(directory: str) -> None:
    """Every directory above ``directory``: a real directory (no symlink),
    owned by root (or by this user) and writable by nobody else."""
    path = os.path.normpath(directory)
    parents = []
    parent = os.path.dirname(path)
    while True:
        parents.append(parent)
        if parent == os.path.dirname(parent):
            break
        parent = os.path.dirname(parent)
    for parent in reversed(parents):
        try:
            st = os.lstat(parent)
        except OSError as e:
            raise _refusal(f"cannot use the lock directory {directory}: {parent}: {e.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise _refusal(f"the lock directory {directory} lies below the symlink {parent}; refusing it "
                           f"(name its real path, {os.path.realpath(directory)})")
        if not stat.S_ISDIR(st.st_mode):
            raise _refusal(f"the lock directory {directory} lies below {parent}, which is not a directory")
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise _refusal(f"the lock directory {directory} lies below {parent}, which "
                           + ("another user owns" if st.st_uid not in (0, os.geteuid()) else
                              "others can write to" + (" (sticky, like /tmp: anyone can take a name "
                                                       "there first)" if st.st_mode & stat.S_ISVTX else ""))
                           + "; refusing it (every directory above the lock directory must belong "
                           "to root and be writable by nobody else)")


def check_dir() -> None:
    """The lock directory and every directory above it, before anything is
    read (so a bad VRRPFW_LOCK_DIR is exit 2 before any firewall is looked
    at); :func:`store_locks` checks again as it opens the locks."""
    directory = lock_dir()
    _safe_parents(directory)
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return  # made (0700) when first locked
    except OSError as e:
        raise _refusal(f"cannot use the lock directory {directory}: {e.strerror}") from None
    _safe_last(directory, st)


def _safe_last(directory: str, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise _refusal(f"lock directory {directory} is not a directory owned by this user and "
                       "writable by it alone; refusing to use it (remove it, or set "
                       "VRRPFW_LOCK_DIR)")


def _safe_dir(directory: str) -> None:
    """Create the lock directory (0700; its parent must exist) or accept an
    existing one only if it is a real directory of ours that nobody else can
    write to, below directories nobody else can write to either."""
    _safe_parents(directory)
    try:
        os.mkdir(directory, mode=0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise _refusal(f"cannot create the lock directory {directory}: {e.strerror} "
                       "(set VRRPFW_LOCK_DIR to a directory of yours)") from None
    try:
        st = os.lstat(directory)
    except OSError as e:
        raise _refusal(f"cannot use the lock directory {directory}: {e.strerror}") from None
    _safe_last(directory, st)


def _acquire(path: str, store: str, timeout: float) -> int:
    _safe_dir(os.path.dirname(path))
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as e:
        raise EnvironmentProblem(f"cannot open the lock {path} for {store}: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise _refusal(f"the lock {path} for {store} is not a regular file owned by this user; "
                       "refusing it (remove it)")
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
