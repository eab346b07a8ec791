"""The environment variables vrrpfw reads, validated before anything else.

Each documented variable (``vrrpfw --help`` lists them) is checked by
:func:`check` when a run starts, before any firewall is looked at: a value
vrrpfw cannot use is bad input, one line and exit 2, never an internal
error, a libdbus abort or a silent fallback.  An empty value means the
default for the paths (as iptables treats an empty ``XTABLES_LOCKFILE``);
for the timeout it is refused, being neither a number nor unset.
"""

from __future__ import annotations

import math
import os
from typing import Optional

from .errors import InputError

DBUS_TIMEOUT_VAR = "VRRPFW_DBUS_TIMEOUT"
LOCK_DIR_VAR = "VRRPFW_LOCK_DIR"
XTABLES_LOCK_VAR = "XTABLES_LOCKFILE"
# Seconds to wait for each firewalld D-Bus call; a hung firewalld becomes exit 3.
DEFAULT_DBUS_TIMEOUT = 15.0
# dbus-python hands libdbus whole milliseconds: below one a call would time
# out at once; an hour is longer than any firewalld call can take.
MIN_DBUS_TIMEOUT = 0.001
MAX_DBUS_TIMEOUT = 3600.0


def dbus_timeout() -> float:
    """``VRRPFW_DBUS_TIMEOUT`` in seconds (default 15): finite, at least a
    millisecond, at most an hour.  libdbus aborts the process on nan and
    takes a negative value for its own default (25 s)."""
    raw = os.environ.get(DBUS_TIMEOUT_VAR)
    if raw is None:
        return DEFAULT_DBUS_TIMEOUT
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not MIN_DBUS_TIMEOUT <= value <= MAX_DBUS_TIMEOUT:
        raise InputError(f"{DBUS_TIMEOUT_VAR} must be a number of seconds, at least {MIN_DBUS_TIMEOUT:g} "
                         f"and at most {MAX_DBUS_TIMEOUT:g}, not {raw[:40]!r}")
    return value


def _absolute(var: str) -> Optional[str]:
    """The variable's path, None when unset or empty (the default); a
    relative path is refused: it would name a different file in every
    directory vrrpfw is started from."""
    raw = os.environ.get(var)
    if not raw:
        return None
    if "\0" in raw or not os.path.isabs(raw):
        raise InputError(f"{var} must be an absolute path, not {raw[:80]!r}")
    return raw


def lock_dir() -> Optional[str]:
    """``VRRPFW_LOCK_DIR`` as given (absolute), or None for the default."""
    return _absolute(LOCK_DIR_VAR)


def xtables_lockfile() -> Optional[str]:
    """``XTABLES_LOCKFILE`` as given (absolute), or None for the default."""
    return _absolute(XTABLES_LOCK_VAR)


def check() -> None:
    """Every documented variable: InputError (exit 2) for the first bad one."""
    dbus_timeout()
    lock_dir()
    xtables_lockfile()
