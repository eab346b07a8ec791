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

import errno
import fcntl
import functools
import os
import signal
import stat
import struct
import time
from typing import Callable, List, Optional, Tuple

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


# FS_IOC_GETFLAGS (_IOR('f', 1, long)) and the flags that forbid replacing a
# file (rename over it, or unlink it) or creating one in a directory.
FS_IOC_GETFLAGS = (2 << 30) | (struct.calcsize("l") << 16) | (ord("f") << 8) | 1
FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20


def inode_flags(path: str) -> int:
    """The file's or directory's inode flags (``lsattr``); 0 where the
    filesystem has none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return 0  # not readable by us: the write itself will say why
    try:
        buf = fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("l", 0))
    except OSError:
        return 0  # ENOTTY / EOPNOTSUPP: the filesystem keeps no such flags
    finally:
        os.close(fd)
    return int(struct.unpack("i", buf[:4])[0])


def _flag_reason(path: str, what: str) -> Optional[str]:
    flags = inode_flags(path)
    if flags & FS_IMMUTABLE_FL:
        return f"{what} is immutable (chattr +i)"
    if flags & FS_APPEND_FL:
        return f"{what} is append-only (chattr +a)"
    return None


def _existing_dir(directory: str) -> str:
    """``directory``, or the nearest parent that exists (where a missing
    default location would be created)."""
    while not os.path.isdir(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    return directory


def check_writable(real: str, size: int) -> None:
    """Refuse, before anything changes, a saved file vrrpfw could not
    replace: its directory is on a read-only filesystem (also a read-only
    bind mount) or has no room (space or a free inode) for a new copy, or
    the file or its directory is immutable or append-only (which forbids
    renaming over the file, or creating the copy).  (A failure at the very
    end would leave the runtime changed and the file not: a partial
    outcome that can be avoided.)"""
    directory = _existing_dir(os.path.dirname(real))
    try:
        fs = os.statvfs(directory)
    except OSError as e:
        raise PersistFileError(f"{real}: cannot inspect {directory}: {e.strerror}") from None
    if fs.f_flag & os.ST_RDONLY:
        raise PersistFileError(f"{real}: {directory} is on a read-only filesystem; nothing was changed "
                               "(use --no-persist, or remount it read-write)")
    root = os.geteuid() == 0  # root may use reserved blocks and inodes
    free = (fs.f_bfree if root else fs.f_bavail) * fs.f_frsize
    if free < size + SPARE_BYTES:
        raise PersistFileError(f"{real}: no space left in {directory} for a new copy of the file "
                               f"({free} bytes free); nothing was changed")
    # f_files 0: the filesystem has no inode limit (btrfs, tmpfs without nr_inodes)
    if fs.f_files and (fs.f_ffree if root else fs.f_favail) == 0:
        raise PersistFileError(f"{real}: no free inodes in {directory} for a new copy of the file; "
                               "nothing was changed (use --no-persist, or free some)")
    for path, what in ((real, "the file"), (directory, f"its directory {directory}")):
        reason = _flag_reason(path, what) if os.path.lexists(path) else None
        if reason:
            raise PersistFileError(f"{real}: {reason}, so vrrpfw cannot replace it; nothing was changed "
                                   "(use --no-persist, or clear the flag with chattr)")


def _temp_prefix(real: str) -> str:
    return f".{os.path.basename(real)}.vrrpfw-"


def remove_stale_temps(path: str) -> None:
    """Temporary files a killed run left beside ``path``.  Only call with
    the store's lock held: then no other vrrpfw is writing one."""
    import glob

    real = os.path.realpath(path)
    pattern = os.path.join(glob.escape(os.path.dirname(real)), glob.escape(_temp_prefix(real)) + "*")
    for stale in glob.glob(pattern):
        try:
            os.unlink(stale)
        except OSError:
            pass


def mkstemp(prefix: str, directory: str) -> Tuple[int, str]:
    """``tempfile.mkstemp``, imported by the first write: tempfile (with
    shutil, bz2, lzma and random) costs 2.7 ms (Python 3.11) to 4.3 ms
    (3.13) of every start, and ``check`` writes no file.  (tests/faultkit.py
    wraps this function.)"""
    import tempfile

    return tempfile.mkstemp(prefix=prefix, dir=directory)


def write_temp(real: str, text: str) -> str:
    """``text`` in a new fsynced file beside ``real``; returns its path."""
    directory = os.path.dirname(real)
    try:
        fd, tmp = mkstemp(_temp_prefix(real), directory)
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


def _appeared(path: str) -> PersistFileError:
    return PersistFileError(f"{path} appeared while vrrpfw ran (created by a program that does not take "
                            "vrrpfw's lock?); not overwritten: run vrrpfw again")


def _identity(real: str) -> Optional[Tuple[int, int]]:
    try:
        st = os.stat(real)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _link_new(tmp: str, real: str, path: str) -> None:
    """Put ``tmp`` in place as ``real``, which must not exist: a hard link
    fails where another program created the file meanwhile (a rename would
    replace it).  Where the filesystem has no hard links, a rename."""
    try:
        os.link(tmp, real)
    except FileExistsError:
        _unlink(tmp)
        raise _appeared(path) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        os.replace(tmp, real)
        return
    _unlink(tmp)


def atomic_write(path: str, text: str, create_dir: bool = False, new_only: bool = False,
                 expect: Optional[Tuple[int, int]] = None) -> None:
    """Replace the file ``path`` points to (through symlinks) with ``text``
    (``new_only``: create it; it must not exist; ``expect``: the (device,
    inode) the file must still be just before the rename)."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    try:
        st: Optional[os.stat_result] = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise PersistFileError(f"{path}: cannot stat: {e.strerror}") from None
    if st is not None and new_only:
        raise _appeared(path)
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
        if new_only:
            _link_new(tmp, real, path)
        else:
            if expect is not None and _identity(real) != expect:
                _unlink(tmp)
                raise PersistFileError(f"{path} was replaced on disk while vrrpfw wrote it (an editor that "
                                       "does not take vrrpfw's lock?); not overwritten: run vrrpfw again")
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


def remove_if_unchanged(path: str, text: Optional[str]) -> bool:
    """Remove the regular file ``path`` if it still holds ``text``; False
    (nothing removed) where ``path`` is a symlink (the link is the
    admin's: the caller rewrites the file instead).  Only call with the
    store's lock held.  PersistFileError where it changed or cannot be
    removed; the directory is fsynced so the removal survives a crash."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise PersistFileError(f"{path}: cannot stat: {e.strerror}") from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        return False
    changed = PersistFileError(f"{path}: changed by someone else since vrrpfw read it (another vrrpfw run "
                               "without the lock?); not removed, so nothing it records is lost; "
                               "run vrrpfw again")
    if st is None:
        if text is None:
            return True
        raise changed
    fd = _open_current(path)
    if fd is None:
        raise changed
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or _read_fd(fd) != text:
            raise changed
    finally:
        os.close(fd)
    try:
        os.unlink(path)
    except OSError as e:
        raise PersistFileError(f"{path}: cannot remove: {e.strerror}") from None
    try:
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return True


# -- replacing a file another program may be appending to ------------------------------------------

# How long a commit waits for programs that still write to the file it
# replaced (opened before the rename) to close it.
WRITERS_WAIT = 2.0
_F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
_F_SETSIG = getattr(fcntl, "F_SETSIG", 10)


def _open_current(real: str) -> Optional[int]:
    """The file as it is now, open for reading (None: absent)."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PersistFileError(f"{real}: cannot read: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PersistFileError(f"{real}: not a regular file, not a saved ruleset")
    return fd


def _read_fd(fd: int) -> str:
    chunks: List[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks).decode(ENCODING)
        chunks.append(chunk)
        offset += len(chunk)


def settled(read: Callable[[], Optional[str]], attempts: int = 5) -> Optional[str]:
    """The file's text, read again (briefly) while its last line has no
    newline and the text still changes: a read can catch another program's
    append half done (an append that crosses a page boundary becomes
    visible in two steps)."""
    text = read()
    for _ in range(attempts):
        if not text or text.endswith("\n"):
            break
        time.sleep(0.001)
        again = read()
        if again == text:
            break
        text = again
    return text


def _appended(base: Optional[str], now: Optional[str], text: str) -> Optional[str]:
    """What another writer appended to ``base`` (whole lines after its
    end), if ``now`` is exactly that: None for any other change."""
    if not base or now is None or not now.startswith(base):
        return None  # an empty file that got content was written, not appended to: no merging that
    if not base.endswith("\n") or (text and not text.endswith("\n")):
        return None  # the writer extended a last line without its newline: not a clean append
    return now[len(base):]


def _writers_gone(fd: int, timeout: float) -> bool:
    """Wait until no process has the file behind ``fd`` open for writing
    (False: one still has after ``timeout``).  The kernel refuses a read
    lease while any process has the file open for writing, so a lease that
    is granted proves there is none; it is dropped at once (a writer that
    opens the file meanwhile waits those microseconds; the lease-break
    signal is SIGURG, ignored by default, not SIGIO, which would kill us).
    Where leases are not available (not root and not the file's owner, NFS,
    leases disabled) this cannot be told: a short pause lets a writer that
    is between open and write finish."""
    deadline = time.monotonic() + timeout
    try:
        fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)
    except OSError:
        time.sleep(0.005)
        return True
    while True:
        try:
            fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
        except OSError as e:
            if e.errno != errno.EAGAIN:
                time.sleep(0.005)
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
            continue
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        return True


def _append(real: str, tail: str) -> None:
    """Add what another writer appended to the replaced file to the end of
    the file now in place, as that writer would have (O_APPEND: atomic
    with respect to its own appends)."""
    try:
        fd = os.open(real, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            data = tail.encode(ENCODING)
            while data:  # not fsynced: the writer did not sync its lines either
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
    except OSError as e:
        raise PersistFileError(f"{real}: cannot add the lines another program appended meanwhile: "
                               f"{e.strerror}") from None


def _keep_beside(real: str, text: str) -> str:
    """Save another program's version of the file beside it (hidden, so no
    include glob loads it; not a temp name, so no run removes it)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    directory, base = os.path.dirname(real), os.path.basename(real)
    tmp = write_temp(real, text)
    for n in range(100):
        kept = os.path.join(directory, f".{base}.conflict-{stamp}" + (f"-{n}" if n else ""))
        try:
            os.link(tmp, kept)
        except FileExistsError:
            continue
        except OSError as e:
            _unlink(tmp)
            raise PersistFileError(f"{real}: another program changed it while vrrpfw replaced it, and "
                                   f"its version could not be kept beside it: {e.strerror}") from None
        _unlink(tmp)
        return kept
    _unlink(tmp)
    raise PersistFileError(f"{real}: another program changed it while vrrpfw replaced it, and its "
                           "version could not be kept beside it (too many conflict files)")


class Conflict(PersistFileError):
    """The file was replaced with vrrpfw's text, but another program changed
    the old file meanwhile in a way vrrpfw cannot carry over (not an
    append): its version is kept beside."""


def commit(path: str, base: Optional[str], text: str, create_dir: bool = False,
           accept: Optional[Callable[[str], None]] = None) -> Tuple[str, List[str]]:
    """Replace the file ``path`` points to with ``text``, which was made
    from ``base`` (the file as read, None: absent), losing nothing another
    program appended meanwhile.  Returns the text now in the file and notes.

    The old file stays open across the rename.  Before it: lines appended
    since ``base`` are carried over (the result is shown to ``accept``
    first, which raises to refuse it), any other change refuses the commit
    (nothing written).  After it: once no process has the old file open
    for writing any more, lines appended to it since (by a program that
    opened it before the rename) are appended to the new file; any other
    change raises :class:`Conflict` with the other version kept beside."""
    real = os.path.realpath(path)
    fd = _open_current(real)
    notes: List[str] = []
    try:
        now = None if fd is None else settled(functools.partial(_read_fd, fd))
        if now != base:
            tail = _appended(base, now, text)
            if tail is None:
                raise PersistFileError(f"{path} changed on disk while vrrpfw ran (a writer that does not "
                                       "take vrrpfw's lock?); not overwritten: run vrrpfw again")
            text, base = text + tail, now
            if accept is not None:
                accept(text)
        expect = None if fd is None else (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
        atomic_write(path, text, create_dir=create_dir, new_only=fd is None, expect=expect)
        if fd is None:
            return text, notes
        held = not _writers_gone(fd, WRITERS_WAIT)
        late = _read_fd(fd)
    finally:
        if fd is not None:
            os.close(fd)
    if late != base:
        tail = _appended(base, late, text)
        if tail is None:
            kept = _keep_beside(real, late)
            raise Conflict(f"{path}: another program rewrote the file while vrrpfw replaced it; vrrpfw's "
                           f"version is in place and the other is kept as {kept}: merge them by hand")
        _append(real, tail)
        text += tail
    if held:
        # What that program writes from now on goes to the old, unlinked
        # file: lost unless someone looks.  Not a note under exit 0.
        kept = _keep_beside(real, late)
        raise Conflict(f"{path}: another program still holds the file vrrpfw replaced open for writing "
                       f"(after {WRITERS_WAIT:g} s); vrrpfw's version, with every line written so far, is in "
                       f"place and the old file as it was is kept as {kept}; what that program writes from "
                       "now on does not reach the file: restart it, and compare")
    return text, notes


def unified_diff(path: str, old: Optional[str], new: Optional[str]) -> str:
    """The change as a unified diff; without context lines (only the lines
    vrrpfw adds or removes, and their line numbers) where the invoking user
    could not read the file."""
    import difflib

    return "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=path if old is not None else "/dev/null",
            tofile=path if new is not None else "/dev/null",
            n=3 if may_quote(path) else 0,
        )
    )
