"""Act inside a named network namespace (``ip netns`` names), for
keepalived's ``net_namespace``.

A script that imports vrrpfw cannot be re-executed under ``ip netns exec``,
so the calling thread itself joins the namespace with ``setns(2)`` for the
run and returns to its own afterwards.  libiptc, libnftables (``nft``
subprocesses inherit the thread's namespace), raw sockets and the
interface-address ioctls then all act inside it.  Two things do not follow
a namespace and are handled where they are used: sysfs keeps showing the
namespace it was mounted in (so interfaces are looked up with
``if_nametoindex``, never under ``/sys/class/net``), and D-Bus is a
filesystem socket (firewalld inside the namespace is reached as usual).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

from ..errors import EnvironmentProblem, InputError

NETNS_DIR = "/run/netns"  # where `ip netns add` pins named namespaces
CLONE_NEWNET = 0x40000000
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def validate_name(name: str) -> str:
    """An ``ip netns`` name: a file name under /run/netns (no ``/``, not
    ``.`` or ``..``); vrrpfw accepts the same safe characters as for
    interfaces, at most 64 bytes."""
    if not isinstance(name, str) or not name:
        raise InputError("network namespace name is empty")
    if name in (".", "..") or len(name.encode()) > 64 or any(c not in _NAME_OK for c in name) \
            or name.startswith("-"):
        raise InputError(f"network namespace name {name!r} is not valid (ASCII letters, digits, "
                         "'.', '_' and '-' not first, at most 64 bytes)")
    return name


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, CLONE_NEWNET)
        return
    import ctypes  # Python < 3.12 only: no ctypes import on the newer ones
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def entered(name: Optional[str]) -> Iterator[None]:
    """Run the body inside network namespace ``name`` (None: where we are)."""
    if name is None:
        yield
        return
    path = os.path.join(NETNS_DIR, validate_name(name))
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise EnvironmentProblem(f"network namespace {name!r} does not exist ({path} is missing; "
                                 "`ip netns list` shows the named ones)") from None
    except OSError as e:
        raise EnvironmentProblem(f"cannot open network namespace {name!r}: {e.strerror}") from None
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _setns(target)
        except OSError as e:
            raise EnvironmentProblem(f"cannot enter network namespace {name!r}: {e.strerror} "
                                     "(vrrpfw needs root)") from None
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
