"""Reading and atomically replacing a saved-ruleset file.

A half-written firewall file restored at boot can lock an admin out, so the
new content goes to a temporary file in the same directory, is fsynced, gets
the old file's mode and owner, and is renamed over the old one; the
directory is fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from typing import Optional

from ..errors import PersistFileError
from .iptables_save import ENCODING

NEW_FILE_MODE = 0o600


def read_text(path: str) -> Optional[str]:
    """The file's text, or None if it does not exist yet."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(ENCODING)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise PersistFileError(f"{path}: is a directory, not a saved ruleset") from None
    except OSError as e:
        raise PersistFileError(f"{path}: cannot read: {e.strerror}") from None


def atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st: Optional[os.stat_result] = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise PersistFileError(f"{path}: cannot stat: {e.strerror}") from None
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".vrrpfw-", dir=directory)
    except OSError as e:
        raise PersistFileError(f"{path}: cannot write in {directory}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode(ENCODING))
            f.flush()
            os.fsync(f.fileno())
        if st is not None:
            os.chmod(tmp, st.st_mode & 0o7777)
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                pass  # not root: the file stays ours, mode is kept
        else:
            os.chmod(tmp, NEW_FILE_MODE)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PersistFileError(f"{path}: cannot write: {e.strerror}") from None
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # the data is in place; only crash-durability of the rename is at stake


def unified_diff(path: str, old: Optional[str], new: str) -> str:
    return "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=path if old is not None else "/dev/null",
            tofile=path,
        )
    )
