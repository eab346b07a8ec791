"""``vrrpfw check`` (and ``open``, ``close``) without typer: argv that
holds only options this module understands fully runs the command's body
(:mod:`.actions`) directly; anything else is left to typer.

Importing typer and building its click command costs 20 ms (Debian's typer
0.7) to 30 ms (typer 0.29) per run, before any work: more than the firewall
read ``check`` exists for (issue 20's targets: ``check`` within 3x one
``iptables -C``).  Provisioning runs ``check`` and ``open`` in loops.

:func:`parse` accepts the command's name followed only by its own long
options (``--opt value`` and ``--opt=value``), ``-i value`` (the one short
alias), flags, repeated repeatable options, a choice's exact value and a
plain decimal number where a float goes; it builds exactly the arguments
typer passes the body (up to an unset list: typer 0.7 passes ``[]``, 0.29
``None``; the bodies read both as "not given").  It declines everything
else, and typer then runs as before: ``--help`` or ``--version`` anywhere,
``--``, a completion request, an unknown option, a positional argument, a
value that does not convert or that starts with ``-``, a missing value, an
option given twice that is not repeatable (a flag included), an option
before the command, every other command.  So help, usage errors and
completion stay typer's, word for word.

The table (:func:`options`) must say what typer's declaration in
:mod:`.commands` says: tests/fastgrid.py (run by tests/unit/cli/test_fast.py
on both library ends and the typer/click pairs) compares them option by
option (names, flag or value, repeatable, choices, default, type) and runs
a grid of argv through both.  :data:`ENABLED` is the tests' switch (in-process, not an
environment variable): False sends every argv to typer.
"""

from __future__ import annotations

import gc
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .completion import COMPLETE_VAR

ENABLED = True

FLAG, STR, FLOAT, CHOICE = "flag", "str", "float", "choice"

# (parameter, option names, kind, repeatable, default, the name of its choices() or "")
Row = Tuple[str, Tuple[str, ...], str, bool, Any, str]


def choices(name: str) -> Tuple[str, ...]:
    """The values of a choice (``backend``, ``family``, ``mode``), read only
    when the option is given: :mod:`.help_text` (``ast``, the registry's
    source) costs 2 to 4 ms a run."""
    from . import help_text as cli_help

    if name == "backend":
        return tuple(cli_help.backend_names())
    return tuple({"family": cli_help.FAMILIES, "mode": cli_help.MODES}[name])


def _rows(names: Sequence[str]) -> List[Row]:
    every: Dict[str, Row] = {r[0]: r for r in (
        ("iface", ("--iface", "-i"), STR, True, None, ""),
        ("keepalived_conf", ("--keepalived-conf",), STR, False, None, ""),
        ("group", ("--group",), STR, False, None, ""),
        ("family", ("--family",), CHOICE, False, None, "family"),
        ("peer", ("--peer",), STR, True, None, ""),
        ("from_", ("--from",), STR, True, None, ""),
        ("src", ("--src",), STR, False, None, ""),
        ("ah", ("--ah",), FLAG, False, False, ""),
        ("strict", ("--strict",), FLAG, False, False, ""),
        ("netns", ("--netns",), STR, False, None, ""),
        ("listen", ("--listen",), FLOAT, False, None, ""),
        ("backend", ("--backend",), CHOICE, False, "auto", "backend"),
        ("dry_run", ("--dry-run",), FLAG, False, False, ""),
        ("as_json", ("--json",), FLAG, False, False, ""),
        ("no_persist", ("--no-persist",), FLAG, False, False, ""),
        ("persist_file", ("--persist-file",), STR, False, None, ""),
        ("lock_timeout", ("--lock-timeout",), FLOAT, False, 10.0, ""),
        ("zone", ("--zone",), STR, False, None, ""),
        ("mode", ("--mode",), CHOICE, False, "auto", "mode"),
        ("state_file", ("--state-file",), STR, False, None, ""),
        ("force", ("--force",), FLAG, False, False, ""),
        ("remove_seed_rules", ("--remove-seed-rules",), FLAG, False, False, ""),
        ("prove_", ("--prove",), FLAG, False, False, ""),
    )}
    return [every[n] for n in names]


# Each command's parameters, in the order commands.py declares them.
PARAMS: Dict[str, Tuple[str, ...]] = {
    "check": ("iface", "keepalived_conf", "group", "family", "peer", "from_", "src", "ah", "strict",
              "netns", "listen", "backend", "as_json", "no_persist", "persist_file", "zone", "mode",
              "state_file", "prove_"),
    "open": ("iface", "keepalived_conf", "group", "family", "peer", "from_", "src", "ah", "strict",
             "netns", "backend", "dry_run", "as_json", "no_persist", "persist_file", "lock_timeout", "zone",
             "mode", "state_file", "force", "prove_"),
    "close": ("iface", "keepalived_conf", "group", "family", "netns", "backend", "dry_run", "as_json",
              "no_persist", "persist_file", "lock_timeout", "zone", "mode", "state_file",
              "remove_seed_rules"),
}
COMMANDS = tuple(PARAMS)


def _decimal(value: str) -> bool:
    """``123`` or ``1.5``, ASCII digits only: what float() (click's
    FloatParamType, typer 0.2x's conversion) reads alike on every end."""
    whole, dot, frac = value.partition(".")
    return value.isascii() and whole.isdigit() and (not dot or frac.isdigit())


def options(command: str) -> List[Row]:
    """The option table of ``command`` (one of :data:`COMMANDS`)."""
    return _rows(PARAMS[command])


def _convert(row: Row, value: str) -> Any:
    """``value`` as typer passes it to the body, or None (decline)."""
    kind = row[2]
    if value.startswith("-"):
        return None
    if kind == STR:
        return value
    if kind == FLOAT:
        return float(value) if _decimal(value) else None
    return value if value in choices(row[5]) else None  # typer's choice is exact (case-sensitive)


def parse(args: Sequence[str]) -> Optional[Tuple[str, Dict[str, Any]]]:
    """``(command, the body's keyword arguments)`` for argv ``args``, or
    None where typer must parse it."""
    if not args or args[0] not in PARAMS:
        return None
    rows = options(args[0])
    by_name = {name: row for row in rows for name in row[1]}
    given: Dict[str, Any] = {}
    rest = list(args[1:])
    while rest:
        token = rest.pop(0)
        if token.startswith("--"):
            name, eq, value = token.partition("=")
        else:
            name, eq, value = token, "", ""
        row = by_name.get(name)
        if row is None:  # a positional, an unknown option, --help, --version, --, -iNAME...
            return None
        param, _, kind, repeatable = row[:4]
        if param in given and not repeatable:
            return None
        if kind == FLAG:
            if eq:
                return None
            given[param] = True
            continue
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        converted = _convert(row, value)
        if converted is None:
            return None
        if repeatable:
            given.setdefault(param, []).append(converted)
        else:
            given[param] = converted
    return args[0], {row[0]: given.get(row[0], row[4]) for row in rows}


def run(args: Sequence[str]) -> Optional[int]:
    """Run ``args`` without typer and return the exit code, or None: typer
    must parse them (:func:`parse` declined, a completion request, or
    :data:`ENABLED` is off).  An interrupt, an end of input or an OSError
    from the body propagates: click has its own words for those, by typer
    release (``entry.as_typer_ends`` asks typer for them)."""
    if not ENABLED or COMPLETE_VAR in os.environ:
        return None
    parsed = parse(args)
    if parsed is None:
        return None
    from . import actions

    command, kwargs = parsed
    body = getattr(actions, f"run_{command}")
    try:
        run_short(body, kwargs)
    except actions.CliExit as e:
        return int(e.code or 0)
    return 0


def run_short(body: Callable[..., Any], kwargs: Dict[str, Any]) -> None:
    """``body(**kwargs)`` with the cyclic garbage collector paused, unless
    it listens (``--listen``) or proves (``--prove``), which run for
    seconds; the collector's state is restored after, whatever the body
    raised (:func:`.entry.main` may be called in-process by a caller that
    keeps running; ``import vrrpfw`` never touches the collector).

    Why: a run of ``check``, ``open`` or ``close`` lasts a fraction of a
    second, and importing the API, backends and path model creates tens of
    thousands of objects that live until the process exits: the collector
    ran 9 to 13 times per ``check`` on Python 3.13 (threshold 2000) and 28
    to 37 times on 3.11 (700), 4 to 9 ms of CPU, to find almost nothing.
    Measured at exit of a ``check`` with the collector paused: 160 to 500
    unreachable objects in cycles (35 to 180 KB; an empty
    nftables ruleset and 50,000 legacy rules alike, so nothing per rule),
    and the same peak RSS (17 / 43 MB).  Reference counting still frees
    everything else at once.

    Re-enabled as it was, the collector would at once examine everything
    the run allocated and kept (its count of new objects is far over the
    threshold): the cost saved, paid at the end.  So what the run kept
    moves to the oldest generation first (``gc.freeze()`` then
    ``gc.unfreeze()``: two list splices, which also reset that count),
    where a later full collection still examines it; skipped where the
    caller has frozen objects of its own, which ``unfreeze`` would thaw.
    (Where the process ends next, :func:`.entry.main` freezes it all.)"""
    paused = gc.isenabled() and kwargs.get("listen") is None and not kwargs.get("prove_")
    if paused:
        gc.disable()
    try:
        body(**kwargs)
    finally:
        if paused:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()
