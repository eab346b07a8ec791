"""Type and range checks for what a script passes to the API.

The CLI's parser hands the API strings and numbers of the right type; a
script may hand it anything.  ``vrrpfw.open("eth0")`` iterated the string
and opened interfaces ``e``, ``t``, ``h`` and ``0``; ``persist_file=123``
was opened as file descriptor 123.  Every argument is checked here, before
anything is read, and a wrong one is an :class:`InputError` (exit 2).
"""

from __future__ import annotations

import math
import os
from typing import Any, List, Optional, Tuple

from .errors import InputError


def names(value: Any, what: str) -> List[str]:
    """A list (or other iterable) of strings; a lone string is refused,
    because iterating it would give its characters."""
    if isinstance(value, (str, bytes)):
        raise InputError(f"{what} must be a list of names, not the string {value!r} "
                         f"(write [{value!r}])")
    if value is None:
        raise InputError(f"{what}: none given")
    try:
        items = list(value)
    except TypeError:
        raise InputError(f"{what} must be a list of names, not {type(value).__name__}") from None
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"{what}: {item!r} is not a string")
    return items


def optional_names(value: Any, what: str) -> Optional[List[str]]:
    return None if value is None else names(value, what)


def addresses(value: Any, what: str) -> Tuple[str, ...]:
    return tuple(names(value, what)) if value is not None else ()


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{what} must be True or False, not {value!r}")
    return value


def text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, not {type(value).__name__}")
    return value


def optional_text(value: Any, what: str) -> Optional[str]:
    return None if value is None else text(value, what)


def seconds(value: Any, what: str = "lock_timeout") -> float:
    """A finite number of seconds, zero or more (nan would wait forever)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{what} must be a number of seconds, not {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise InputError(f"{what} {value!r} is too large") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{what} must be a finite number of seconds >= 0, not {value!r}")
    return value


def optional_path(value: Any, what: str) -> Optional[str]:
    """A file path as str or os.PathLike (never an int: that would be a
    file descriptor), non-empty."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InputError(f"{what} must be a path, not {type(value).__name__}")
    if not value:
        raise InputError(f"{what} is empty")
    if "\0" in value:
        raise InputError(f"{what} {value!r} contains a NUL byte")
    return value


def directory(value: Any, what: str) -> str:
    """An existing directory, by absolute path (``root``: where host files
    are looked up; a missing one would make every host file look absent)."""
    path = optional_path(value, what)
    if path is None:
        raise InputError(f"{what} must be a path, not None")
    if not os.path.isabs(path):
        raise InputError(f"{what} {path!r} is not an absolute path")
    if not os.path.isdir(path):
        raise InputError(f"{what} {path!r} is not a directory")
    return path
