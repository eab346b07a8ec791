"""vrrpfw: open a Linux host's firewall for VRRP, idempotently, and prove it.

The public API mirrors the CLI::

    import vrrpfw
    result = vrrpfw.open(["enp0s8"])      # Result: .changed, .ok, .rules, ...
    vrrpfw.check(["enp0s8"]).ok
    vrrpfw.close(["enp0s8"])

Errors are typed (:class:`VrrpfwError` and subclasses) and carry the CLI's
exit code.  Importing vrrpfw imports no firewall library; a backend's is
loaded when that backend is used.

The names below are loaded on first use (PEP 562): ``import vrrpfw.cli``
(what ``vrrpfw --help`` runs) must not pay for importing the API, its
backends and the path model.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any, Dict, List

from ._version import __version__

if TYPE_CHECKING:  # what mypy and IDEs see; at runtime __getattr__ loads them
    from .api import backends, check, close, open  # noqa: A004
    from .errors import (
        BackendError,
        BackendUnavailable,
        ConcurrentChange,
        EnvironmentProblem,
        InputError,
        LockTimeout,
        PersistFileError,
        VrrpfwError,
    )
    from .model import DEFAULT_GROUP4, VrrpRule, VrrpSpec
    from .results import Action, Persisted, PersistReport, Result, RuleReport, Runtime

# Public name -> the module that defines it.
_LAZY: Dict[str, str] = {
    **dict.fromkeys(("open", "check", "close", "listen", "backends"), "api"),
    **dict.fromkeys(("VrrpfwError", "InputError", "EnvironmentProblem", "BackendUnavailable",
                     "ConcurrentChange", "LockTimeout", "PersistFileError", "BackendError"), "errors"),
    **dict.fromkeys(("VrrpSpec", "VrrpRule", "DEFAULT_GROUP4", "DEFAULT_GROUP6"), "model"),
    **dict.fromkeys(("Result", "RuleReport", "PersistReport", "Runtime", "Persisted", "Action"),
                    "results"),
}

__all__ = [
    "open", "check", "close", "listen", "backends", "Result", "RuleReport", "PersistReport", "Runtime",
    "Persisted", "Action", "VrrpfwError", "InputError", "EnvironmentProblem",
    "BackendUnavailable", "ConcurrentChange", "LockTimeout", "PersistFileError", "BackendError",
    "VrrpSpec", "VrrpRule", "DEFAULT_GROUP4", "DEFAULT_GROUP6", "__version__",
]


def _load(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


if not TYPE_CHECKING:  # hidden from mypy, so that `vrrpfw.opne` stays a type error

    def __getattr__(name: str) -> Any:
        return _load(name)


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The module type of ``vrrpfw``.  ``backends`` names both the API
    function and the subpackage ``vrrpfw.backends`` (``listen`` likewise,
    ``vrrpfw.listen``); importing a subpackage binds it as an attribute of its
    parent, so without these properties ``vrrpfw.backends`` would turn into
    the subpackage as soon as the API is imported.  The function wins, as it
    did when __init__ imported the API."""

    @property
    def backends(self) -> Any:
        return _load("backends")

    @backends.setter
    def backends(self, value: Any) -> None:
        """The import system binding the subpackage: keep the function."""

    @property
    def listen(self) -> Any:
        return _load("listen")

    @listen.setter
    def listen(self, value: Any) -> None:
        """The import system binding the subpackage: keep the function."""


sys.modules[__name__].__class__ = _Package
