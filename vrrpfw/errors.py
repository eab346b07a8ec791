"""Typed errors, each carrying the exit code the CLI documents.

Callers that import vrrpfw catch these by class; the CLI turns them into one
line on stderr and ``exit_code``.  Nothing here imports a backend library.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NOT_ALLOWED = 1  # something missing, shadowed, partial or ineffective
EXIT_USAGE = 2  # bad usage or input; nothing was changed
EXIT_ENVIRONMENT = 3  # backend unavailable, not root, lock timeout, bad file; nothing changed
EXIT_INTERNAL = 4  # an unexpected error (a vrrpfw bug): state unknown, run `vrrpfw check`
EXIT_NOTHING_HEARD = 5  # check --listen: no advert reached any listened interface (listener's own code)
TRACEBACK_ENV = "VRRPFW_TRACEBACK"  # set to 1 to see the traceback of an unexpected error


class VrrpfwError(Exception):
    """Base of every error vrrpfw raises on purpose."""

    exit_code = EXIT_ENVIRONMENT


class InputError(VrrpfwError, ValueError):
    """The caller asked for something invalid; raised before any backend runs."""

    exit_code = EXIT_USAGE


class EnvironmentProblem(VrrpfwError):
    """The host cannot do what was asked (not root, tool missing, ...)."""

    exit_code = EXIT_ENVIRONMENT


class BackendUnavailable(EnvironmentProblem):
    """No backend (or not the requested one) can work on this host."""


class LockTimeout(EnvironmentProblem):
    """Another process held the xtables lock for longer than we wait."""


class PersistFileError(EnvironmentProblem):
    """The saved-ruleset file cannot be read, parsed or written."""


class BackendError(EnvironmentProblem):
    """The firewall refused or failed an operation we expected to work."""


class ConcurrentChange(BackendError):
    """The table changed between our snapshot and our commit (someone wrote
    without taking the lock); nothing of ours was committed, so we retry."""


class OutcomeUnknown(EnvironmentProblem):
    """A call that a firewall did not answer (a timeout, a broken connection):
    it may still have been carried out, or be carried out later.  Callers
    that change firewalld read it again before they say what happened."""


class MayHaveChanged(OutcomeUnknown):
    """A change call went unanswered and firewalld could not be read again
    either: vrrpfw cannot promise that nothing changed (exit 3), so it says
    firewalld may have been changed (exit 1); state.json keeps the pending
    allowance for the next run to settle."""

    exit_code = EXIT_NOT_ALLOWED
