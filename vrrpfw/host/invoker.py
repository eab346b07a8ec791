"""Who asked for this run, and may a message show them a file's bytes?

vrrpfw usually runs as root (through sudo, an Ansible ``become``, a
systemd unit), so it can read files its invoker cannot.  A parse error that
quoted a line of such a file would hand that line to the invoker:
``--persist-file /etc/shadow`` must not print a password hash.  So every
message that would quote a file's content asks :func:`quote` first; for a
file the invoking user could not read it gives a fixed placeholder, and
the message keeps only ``file:line`` and the reason.

The invoking user is the real uid, or, when that is root and ``SUDO_UID``
holds a valid uid, the sudo caller (with ``SUDO_GID`` and that user's
groups).  Readability is decided from the permission bits of the file and
the search bits of every directory above it, as the kernel's DAC check
does for that uid, gid and groups (ACLs and capabilities other than root's
are not considered: where a bit says no, the answer is no).  Any doubt (a
stat that fails, an unknown user) means "do not quote".

Pure apart from stat() and the user database; no process is run.
"""

from __future__ import annotations

import os
import stat
from typing import Callable, FrozenSet, Optional

from vrrpfw.record import record

NOT_SHOWN = "(line not shown: the invoking user cannot read the file)"


@record(frozen=True)
class User:
    uid: int
    gid: int
    groups: FrozenSet[int]


def _groups_of(uid: int, gid: int) -> FrozenSet[int]:
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
        return frozenset(os.getgrouplist(name, gid))
    except (KeyError, OSError, ImportError):
        return frozenset({gid})


def invoking_user() -> User:
    """The real user, or the sudo caller when root runs vrrpfw via sudo."""
    uid = os.getuid()
    if uid == 0:
        sudo_uid = _valid_id(os.environ.get("SUDO_UID"))
        if sudo_uid is not None and sudo_uid != 0:
            sudo_gid = _valid_id(os.environ.get("SUDO_GID"))
            if sudo_gid is None:
                try:
                    import pwd

                    sudo_gid = pwd.getpwuid(sudo_uid).pw_gid
                except (KeyError, ImportError):
                    sudo_gid = 65534  # unknown user: the least privileged guess
            return User(sudo_uid, sudo_gid, _groups_of(sudo_uid, sudo_gid))
    return User(uid, os.getgid(), frozenset(os.getgroups()) | {os.getgid()})


def _valid_id(text: Optional[str]) -> Optional[int]:
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value < 2**32 - 1 else None


# The audience of vrrpfw's messages.  The Ansible module sets it to
# "anyone" (None): its output lands in logs on the controller.
_audience: Callable[[], Optional[User]] = invoking_user


def set_audience(audience: Callable[[], Optional[User]]) -> None:
    """Whose eyes messages are for: a function giving a User, or None for
    "anyone" (only world-readable files are quoted)."""
    global _audience  # noqa: PLW0603 - one setting for the process, set once by the front end
    _audience = audience


def anyone() -> Optional[User]:
    return None


def _allowed(st: os.stat_result, user: Optional[User], want: int) -> bool:
    """``want`` is 4 (read) or 1 (search), the kernel's DAC rule."""
    if user is None:
        return bool(st.st_mode & want)
    if user.uid == 0:
        return True
    if st.st_uid == user.uid:
        return bool(st.st_mode & (want << 6))
    if st.st_gid in user.groups:
        return bool(st.st_mode & (want << 3))
    return bool(st.st_mode & want)


def may_read(path: str, user: Optional[User]) -> bool:
    """Could ``user`` (None: anyone, i.e. world permissions) read ``path``:
    every directory above it (as written and after resolving symlinks)
    searchable and the file itself readable?  False when unsure."""
    if user is not None and user.uid == 0:
        return True
    try:
        full = os.path.abspath(path)
        real = os.path.realpath(full)
        for p in {full, real}:
            parts = p.split("/")
            for i in range(1, len(parts)):
                st = os.stat("/".join(parts[:i]) or "/")
                if not stat.S_ISDIR(st.st_mode) or not _allowed(st, user, 1):
                    return False
        return _allowed(os.stat(real), user, 4)
    except (OSError, ValueError):
        return False


def is_pseudo(path: str) -> bool:
    """A name like ``<text>`` that stands for text the caller handed in."""
    return path.startswith("<") and path.endswith(">")


def may_quote(path: str) -> bool:
    """May a message show bytes of ``path``?  Text the caller handed in
    (``<text>``) is theirs; a file only if the audience could read it."""
    if is_pseudo(path):
        return True
    return may_read(path, _audience())


def show(path: str, text: str) -> str:
    """``text`` as it is where the audience may see ``path``'s bytes (a
    name in running text), else a fixed placeholder."""
    return text if may_quote(path) else NOT_SHOWN


def quote(path: str, text: str) -> str:
    """``repr(text)`` where the audience may see ``path``'s bytes, else a
    fixed placeholder."""
    return repr(text) if may_quote(path) else NOT_SHOWN
