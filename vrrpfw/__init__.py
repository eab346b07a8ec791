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
    **dict.fromkeys(("open", "check", "close", "backends"), "api"),
    **dict.fromkeys(("VrrpfwError", "InputError", "EnvironmentProblem", "BackendUnavailable",
                     "ConcurrentChange", "LockTimeout", "PersistFileError", "BackendError"), "errors"),
    **dict.fromkeys(("VrrpSpec", "VrrpRule", "DEFAULT_GROUP4"), "model"),
    **dict.fromkeys(("Result", "RuleReport", "PersistReport", "Runtime", "Persisted", "Action"),
                    "results"),
}

__all__ = [
    "open", "check", "close", "backends", "Result", "RuleReport", "PersistReport", "Runtime",
    "Persisted", "Action", "VrrpfwError", "InputError", "EnvironmentProblem",
    "BackendUnavailable", "ConcurrentChange", "LockTimeout", "PersistFileError", "BackendError",
    "VrrpSpec", "VrrpRule", "DEFAULT_GROUP4", "__version__",
]


if not TYPE_CHECKING:  # hidden from mypy, so that `vrrpfw.opne` stays a type error

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
