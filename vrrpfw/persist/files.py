"""Reading, checking and atomically replacing a saved file.

A half-written firewall file restored at boot can lock an admin out, so the
new content goes to a temporary file in the same directory as the real file
(a symlink is followed, and stays a symlink), is fsynced, gets the old
file's mode and owner, and is renamed over the old one; the directory is
fsynced so the rename itself survives a crash.  A kill at any step leaves
the old file or the new one, never a mix; the temporary file it may leave
behind is removed by the next run (which holds the store's lock, so no
other vrrpfw can be writing it).
"""

from __future__ import annotations

import difflib
import glob
import os
import stat
import tempfile
from typing import Optional

from ..errors import InputError, PersistFileError
from ..host.bounded_read import MiB, ReadRefused, read_regular
from ..host.invoker import may_quote

ENCODING = "latin-1"  # every byte survives a read-edit-write round trip
NEW_FILE_MODE = 0o600

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def check_path(path: object, what: str = "--persist-file", may_create_dir: bool = False) -> str:
    """Refuse, before anything is read or changed, a path vrrpfw must not
    write: empty, not a string, not a regular file (a device, FIFO, socket
    or directory: checked with stat, never opened, so a FIFO cannot hang
    the run), or in a directory that does not exist (a typo; only the
    distribution's own default locations, ``may_create_dir``, are
    created).  Returns the path."""
    if not isinstance(path, str):
        raise InputError(f"{what} must be a path (a string), not {type(path).__name__}")
    if not path.strip():
        raise InputError(f"{what} is empty; give a file path")
    if "\0" in path:
        raise InputError(f"{what} {path!r} contains a NUL byte")
    if path.endswith("/"):
        raise InputError(f"{what} {path} ends in '/': give a file, not a directory")
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise InputError(f"{what} {path}: cannot stat: {e.strerror}") from None
    if st is not None:
        for test, kind in _KINDS:
            if test(st.st_mode):
                raise InputError(f"{what} {path} is {kind}, not a saved ruleset file; left untouched")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} {path} is not a regular file; left untouched")
    elif not may_create_dir and not os.path.isdir(os.path.dirname(real)):
        raise InputError(f"{what} {path}: directory {os.path.dirname(real)} does not exist")
    return path


MAX_READ_BYTES = 64 * MiB  # a saved ruleset or state file; larger is not one


def read_text(path: str) -> Optional[str]:
    """The file's text, or None if it does not exist yet.  Only a regular
    file of at most 64 MiB is read (opened non-blocking and checked again
    on the open descriptor, so a FIFO swapped in cannot hang the run)."""
    try:
        return read_regular(path, MAX_READ_BYTES).decode(ENCODING)
    except FileNotFoundError:
        return None
    except ReadRefused as e:
        raise PersistFileError(f"{path}: {e}, not a saved ruleset") from None
    except OSError as e:
        raise PersistFileError(f"{path}: cannot read: {e.strerror}") from None


SPARE_BYTES = 64 * 1024  # room for vrrpfw's lines and the filesystem's own rounding


def check_writable(real: str, size: int) -> None:
    """Refuse, before anything changes, a saved file vrrpfw could not
    replace: its directory is on a read-only filesystem or has no room
    for a new copy.  (A failure at the very end would leave the runtime
    changed and the file not: a partial outcome that can be avoided.)"""
    directory = os.path.dirname(real)
    try:
        fs = os.statvfs(directory)
    except FileNotFoundError:
        return  # created later (the distribution's own default location)
    except OSError as e:
        raise PersistFileError(f"{real}: cannot inspect {directory}: {e.strerror}") from None
    if fs.f_flag & os.ST_RDONLY:
        raise PersistFileError(f"{real}: {directory} is on a read-only filesystem; nothing was changed "
                               "(use --no-persist, or remount it read-write)")
    free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize  # root may use reserved blocks
    if free < size + SPARE_BYTES:
        raise PersistFileError(f"{real}: no space left in {directory} for a new copy of the file "
                               f"({free} bytes free); nothing was changed")


def _temp_prefix(real: str) -> str:
    return f".{os.path.basename(real)}.vrrpfw-"


def remove_stale_temps(path: str) -> None:
    """Temporary files a killed run left beside ``path``.  Only call with
    the store's lock held: then no other vrrpfw is writing one."""
    real = os.path.realpath(path)
    pattern = os.path.join(glob.escape(os.path.dirname(real)), glob.escape(_temp_prefix(real)) + "*")
    for stale in glob.glob(pattern):
        try:
            os.unlink(stale)
        except OSError:
            pass


def write_temp(real: str, text: str) -> str:
    """``text`` in a new fsynced file beside ``real``; returns its path."""
    directory = os.path.dirname(real)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(real), dir=directory)
    except OSError as e:
        raise PersistFileError(f"{real}: cannot write in {directory}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode(ENCODING))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        _unlink(tmp)
        raise PersistFileError(f"{real}: cannot write: {e.strerror}") from None
    return tmp


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write(path: str, text: str, create_dir: bool = False) -> None:
    """Replace the file ``path`` points to (through symlinks) with ``text``."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    try:
        st: Optional[os.stat_result] = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise PersistFileError(f"{path}: cannot stat: {e.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise PersistFileError(f"{path}: not a regular file; left untouched")
    if create_dir and not os.path.isdir(directory):
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        except OSError as e:
            raise PersistFileError(f"{path}: cannot create {directory}: {e.strerror}") from None
    tmp = write_temp(real, text)
    try:
        if st is not None:
            os.chmod(tmp, st.st_mode & 0o7777)
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                pass  # not root: the file stays ours, mode is kept
        else:
            os.chmod(tmp, NEW_FILE_MODE)
        os.replace(tmp, real)
    except OSError as e:
        _unlink(tmp)
        raise PersistFileError(f"{path}: cannot write: {e.strerror}") from None
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # the data is in place; only crash-durability of the rename is at stake


def unified_diff(path: str, old: Optional[str], new: Optional[str]) -> str:
    """The change as a unified diff; without context lines (only the lines
    vrrpfw adds or removes, and their line numbers) where the invoking user
    could not read the file."""
    return "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=path if old is not None else "/dev/null",
            tofile=path if new is not None else "/dev/null",
            n=3 if may_quote(path) else 0,
        )
    )
