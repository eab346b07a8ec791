"""The checks of vrrpfw/cli/fast.py against typer, shared by
tests/unit/cli/test_fast.py (in the test's interpreter) and its pair rows
(run here as ``python -m fastgrid`` in the typer/click venvs, which hold no
pytest): the option table beside the click command typer builds, and a
pinned grid of argv through ``entry.main`` with and without the fast path."""

from __future__ import annotations

import enum
import inspect
import io
import itertools
import json
import random
import sys
from typing import Any, Dict, List, Tuple

from vrrpfw.cli import actions, entry, fast, typer_coercion
from vrrpfw.cli.actions import _plain


def _typer_params(command: str) -> Dict[str, Any]:
    group = entry.build_command(only=command)
    sub = group.commands[command]
    return {p.name: p for p in sub.params if p.name != "help"}


def _kind(p: Any) -> Tuple[str, Tuple[str, ...]]:
    """What an option converts its value to, as the table says it: click's
    type (typer < 0.26), or the annotation typer 0.2x converts by (through
    vrrpfw's plain_coercion, which the table's conversions mirror)."""
    if hasattr(p, "type"):
        kinds = {"boolean": fast.FLAG, "text": fast.STR, "float": fast.FLOAT, "choice": fast.CHOICE}
        kind = kinds[p.type.name]
        if kind != fast.CHOICE:
            return kind, ()
        assert getattr(p.type, "case_sensitive", True) is True
        return kind, tuple(_plain(c) for c in p.type.choices)
    base = typer_coercion._base(p.type_descriptor.annotation)
    assert getattr(p.type_descriptor.parameter_info, "case_sensitive", True) is True
    assert p._runtime_param.convert is base  # plain_coercion's converter, not pydantic's
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return fast.CHOICE, tuple(m.value for m in base)
    return {bool: fast.FLAG, str: fast.STR, float: fast.FLOAT}[base], ()


def check_table(command: str) -> None:
    """Names and aliases, flag or value, repeatable, choices, default and
    type of every option, against the click command typer builds."""
    params = _typer_params(command)
    rows = {r[0]: r for r in fast.options(command)}
    assert sorted(rows) == sorted(params)
    assert list(rows) == list(params)  # the order commands.py declares them in
    body = inspect.signature(getattr(actions, f"run_{command}")).parameters
    assert sorted(body) == sorted(rows)
    for name, p in params.items():
        _, names, kind, repeatable, default, choice = rows[name]
        choices = fast.choices(choice) if choice else ()
        assert [*p.opts, *p.secondary_opts] == list(names), name
        assert bool(p.is_flag) == (kind == fast.FLAG), name
        assert bool(p.multiple) == repeatable, name
        assert p.nargs == 1 and not p.count and not p.required and not p.is_eager, name
        assert p.callback is None and not p.envvar, name  # nothing else shapes the value
        assert _kind(p) == (kind, choices), name
        if repeatable:
            assert default is None and p.default in (None, (), []), name
        else:
            assert _plain(p.default) == default and type(_plain(p.default)) is type(default), name


def _fragments(command: str) -> List[Tuple[str, ...]]:
    """Pieces of argv: every option in each spelling, good and bad values,
    and what the fast path must leave to typer."""
    out: List[Tuple[str, ...]] = []
    for _, names, kind, _, _, choice in fast.options(command):
        long = names[0]
        if kind == fast.FLAG:
            out += [(long,), (f"{long}=1",), (f"{long}=",)]
            continue
        if kind == fast.STR:
            values = ["eth0", "", "224.0.0.18", "-x", "=a", "a b"]
        elif kind == fast.FLOAT:
            values = ["1.5", "2", "0", "007", "1e3", "inf", "nan", ".5", "5.", "-1", "x", "", " 1", "١"]
        else:
            choices = fast.choices(choice)
            values = [*choices[:3], choices[-1], choices[0].upper(), "nope", "", choices[0][:-1]]
        for v in values:
            out += [(long, v), (f"{long}={v}",)]
        for short in names[1:]:
            out += [(short, "eth1"), (f"{short}eth1",), (f"{short}=eth1",), (short, "-i")]
        out += [(long,)]  # its value missing at the end
    out += [("--help",), ("--version",), ("--",), ("-h",), ("extra",), ("-",), ("--nope",), ("-x",),
            ("--count", "3"), ("--lock-timeout", "2"), ("--dry-run",), ("--iface",), ("--json", "--")]
    return out


def _grid(command: str, pairs: int = 900, triples: int = 300) -> List[List[str]]:
    """Every fragment alone, every ordered pair of a pinned sample, and a
    pinned sample of triples (random.Random with a fixed seed)."""
    frags = _fragments(command)
    rng = random.Random(f"vrrpfw-fast-{command}")
    grid = [[command]] + [[command, *f] for f in frags]
    every_pair = list(itertools.product(frags, repeat=2))
    grid += [[command, *a, *b] for a, b in rng.sample(every_pair, min(len(every_pair), pairs))]
    grid += [[command, *a, *b, *c] for a, b, c in (rng.sample(frags, 3) for _ in range(triples))]
    grid += [["--json", command, "--json"], ["--version", command], [f"{command}s", "--json"]]
    return grid


def _recorder(command: str):
    def record(**kwargs: Any) -> None:
        seen = {k: (list(v) if v else None) if isinstance(v, (list, tuple)) else _plain(v)
                for k, v in kwargs.items()}
        sys.stdout.write(json.dumps([command, seen], sort_keys=True) + "\n")
        sys.stderr.write("body ran\n")
        raise actions.CliExit(5)
    return record


def grid_differences(command: str, pairs: int = 900, triples: int = 300) -> Tuple[int, List[Any]]:
    """Each argv of the grid through ``entry.main`` with the fast path and
    without it, the body replaced by a recorder that prints the arguments it
    got (an unset list, [] or None by typer release, and an enum choice,
    compared as their plain value): (how many argv the fast path took, the
    argv whose stdout, stderr or exit code differ, or whose accepted run did
    not reach the body)."""
    body, build, enabled = getattr(actions, f"run_{command}"), entry.build_command, fast.ENABLED
    built: Dict[Any, Any] = {}  # typer's command built once per shape, not per argv (6 ms each on typer 0.29)
    setattr(actions, f"run_{command}", _recorder(command))
    entry.build_command = lambda *a: built[a] if a in built else built.setdefault(a, build(*a))  # type: ignore
    accepted, differ = 0, []
    try:
        for argv in _grid(command, pairs, triples):
            got = []
            for on in (True, False):
                fast.ENABLED = on
                got.append(_captured(argv))
            took = fast.parse(argv) is not None
            accepted += took
            if got[0] != got[1] or (took and (got[1][0], got[1][2]) != (5, "body ran\n")):
                differ.append([argv, got])
    finally:
        setattr(actions, f"run_{command}", body)
        entry.build_command = build  # type: ignore
        fast.ENABLED = enabled
    return accepted, differ


def _captured(argv: List[str]) -> Tuple[Any, str, str]:
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    try:
        code = entry.main(list(argv))
        return code, sys.stdout.getvalue(), sys.stderr.getvalue()
    finally:
        sys.stdout, sys.stderr = saved


def main() -> None:
    """Every check, for every command: one JSON line per command; argv:
    the grid's sample sizes (pairs, triples)."""
    pairs, triples = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (900, 300)
    for command in fast.COMMANDS:
        check_table(command)
        accepted, differ = grid_differences(command, pairs, triples)
        print(json.dumps({"command": command, "accepted": accepted, "differ": differ[:5]}))


if __name__ == "__main__":
    main()
