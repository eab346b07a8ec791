"""vrrpfw: open a Linux host's firewall for VRRP, idempotently, and prove it.

The public API mirrors the CLI::

    import vrrpfw
    result = vrrpfw.open(["enp0s8"])      # Result: .changed, .ok, .rules, ...
    vrrpfw.check(["enp0s8"]).ok
    vrrpfw.close(["enp0s8"])

Errors are typed (:class:`VrrpfwError` and subclasses) and carry the CLI's
exit code.  Importing vrrpfw imports no firewall library; a backend's is
loaded when that backend is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import backends, check, close, open  # noqa: E402,A004
from .errors import (  # noqa: E402
    BackendError,
    BackendUnavailable,
    ConcurrentChange,
    EnvironmentProblem,
    InputError,
    LockTimeout,
    PersistFileError,
    VrrpfwError,
)
from .model import DEFAULT_GROUP4, VrrpRule, VrrpSpec  # noqa: E402
from .results import Action, Persisted, PersistReport, Result, RuleReport, Runtime  # noqa: E402

__all__ = [
    "open", "check", "close", "backends", "Result", "RuleReport", "PersistReport", "Runtime",
    "Persisted", "Action", "VrrpfwError", "InputError", "EnvironmentProblem",
    "BackendUnavailable", "ConcurrentChange", "LockTimeout", "PersistFileError", "BackendError",
    "VrrpSpec", "VrrpRule", "DEFAULT_GROUP4", "__version__",
]
