"""Read a file the caller named, without hanging and without running out
of memory.

Only a regular file is read: a device (``/dev/zero`` never ends), a FIFO
(blocks until a writer comes) or a socket is refused.  The type is checked
with stat() before opening, the file is opened with O_NONBLOCK (a FIFO
swapped in between the two cannot block the open) and checked again with
fstat() on the open descriptor; then at most ``limit`` + 1 bytes are read,
so a file that grows meanwhile is refused too.
"""

from __future__ import annotations

import os
import stat

MiB = 1024 * 1024

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


class ReadRefused(Exception):
    """Not read: the reason (``is a FIFO, not a regular file``, ``is larger
    than ...``), without the path; the caller adds where.  ``too_large``
    tells a size over the limit from a file of the wrong type."""

    def __init__(self, reason: str, too_large: bool = False) -> None:
        super().__init__(reason)
        self.too_large = too_large


def kind_of(mode: int) -> str:
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def _check(st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ReadRefused(f"is {kind_of(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise ReadRefused(f"is larger than {limit} bytes ({st.st_size})", too_large=True)


def read_regular(path: str, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most
    ``limit`` of them.  ReadRefused for anything else; OSError (e.g.
    FileNotFoundError, PermissionError) as open() raises it."""
    _check(os.stat(path), limit)
    # Opened for reading only once it is known to be a regular file: an
    # O_PATH descriptor opens nothing (a device swapped in behind a symlink
    # after the stat above is never opened: opening /dev/watchdog or a tape
    # does something), then the file it names is reopened through /proc.
    pfd = os.open(path, getattr(os, "O_PATH", 0o10000000) | os.O_CLOEXEC)
    try:
        _check(os.fstat(pfd), limit)
        fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    finally:
        os.close(pfd)
    try:
        _check(os.fstat(fd), limit)
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise ReadRefused(f"is larger than {limit} bytes", too_large=True)
    return data
