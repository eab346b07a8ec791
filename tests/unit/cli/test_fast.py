"""vrrpfw/cli/fast.py: the typer-free path of ``check``, ``open`` and
``close`` says what typer's declaration says (option by option), and for a
pinned grid of argv it either declines or makes the same call as typer,
with the same bytes out and the same exit code.  These build typer's
command: not one_end (run them with both library ends)."""

from __future__ import annotations

import enum
import inspect
import itertools
import json
import os
import random
import subprocess
import sys
from typing import Any, Dict, List, Tuple

import pytest

import vrrpfw
from vrrpfw.cli import actions, entry, fast, typer_coercion
from vrrpfw.cli.options import _plain

REPO = os.path.dirname(os.path.dirname(vrrpfw.__file__))


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


@pytest.mark.parametrize("command", fast.COMMANDS)
def test_option_table_is_typers_declaration(command):
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


def test_the_group_keeps_every_command_the_table_does_not_know():
    group = entry.build_command()
    assert set(fast.COMMANDS) < set(group.commands)
    assert [p.name for p in group.params if p.name != "help"] == ["version"]


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


def _grid(command: str) -> List[List[str]]:
    """Every fragment alone, every ordered pair of a pinned sample, and a
    pinned sample of triples (random.Random with a fixed seed)."""
    frags = _fragments(command)
    rng = random.Random(f"vrrpfw-fast-{command}")
    grid = [[command]] + [[command, *f] for f in frags]
    pairs = list(itertools.product(frags, repeat=2))
    grid += [[command, *a, *b] for a, b in rng.sample(pairs, min(len(pairs), 900))]
    grid += [[command, *a, *b, *c] for a, b, c in (rng.sample(frags, 3) for _ in range(300))]
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


@pytest.mark.parametrize("command", fast.COMMANDS)
def test_fast_path_declines_or_makes_typers_call(command, monkeypatch, capsys):
    """Each argv of the grid through ``entry.main`` with the fast path and
    without it: the same stdout, stderr and exit code; the body (a recorder)
    prints the arguments it got (an unset list, [] or None by typer release,
    and an enum choice, compared as their plain value)."""
    monkeypatch.setattr(actions, f"run_{command}", _recorder(command))
    built: Dict[Any, Any] = {}  # typer's command built once per shape, not per argv (6 ms each on typer 0.29)
    build = entry.build_command
    monkeypatch.setattr(entry, "build_command",
                        lambda *a: built[a] if a in built else built.setdefault(a, build(*a)))
    accepted = 0
    for argv in _grid(command):
        got = []
        for on in (True, False):
            monkeypatch.setattr(fast, "ENABLED", on)
            code = entry.main(list(argv))
            out, err = capsys.readouterr()
            got.append((code, out, err))
        assert got[0] == got[1], argv
        if fast.parse(argv) is not None:
            accepted += 1
            assert got[1][0] == 5 and got[1][2] == "body ran\n", (argv, got[1])
    assert accepted > 300, accepted  # the grid exercises the fast path, not only its refusals


@pytest.mark.parametrize("argv", [
    ["check", "--iface", "eth0", "--help"], ["check", "--help"], ["--version"], ["check", "--version"],
    ["check", "--", "--json"], ["check", "--json", "--json"], ["check", "--group", "a", "--group", "b"],
    ["check", "--group", "-1"], ["check", "--listen", "1e3"], ["check", "--listen", "-1"],
    ["check", "--backend", "IPTABLES"], ["check", "-ieth0"], ["check", "--json=1"], ["check", "eth0"],
    ["--json", "check"], ["prove", "-i", "eth0"], ["backends"], ["check", "--dry-run"], ["check", "--iface"],
])
def test_declined(argv):
    assert fast.parse(argv) is None


def test_accepted_as_typer_passes_it():
    command, kw = fast.parse(["check", "-i", "eth0", "--iface=eth1", "--listen", "2.5", "--backend",
                              "nftables", "--family=ipv6", "--json", "--persist-file", ""])
    assert command == "check"
    assert kw == dict(iface=["eth0", "eth1"], keepalived_conf=None, group=None, family="ipv6", peer=None,
                      from_=None, src=None, ah=False, strict=False, netns=None, listen=2.5,
                      backend="nftables", as_json=True, no_persist=False, persist_file="", zone=None,
                      mode="auto", state_file=None, prove_=False)
    assert fast.parse(["open", "--lock-timeout", "3"])[1]["lock_timeout"] == 3.0
    assert fast.parse(["close"])[1]["lock_timeout"] == 10.0


def test_completion_request_goes_to_typer(monkeypatch):
    monkeypatch.setenv("_VRRPFW_COMPLETE", "bash_complete")
    assert fast.run(["check", "--json"]) is None


CHILD = """
import sys
import vrrpfw.cli.actions as actions
def body(**kw):
    raise actions.CliExit(7)
actions.run_{command} = body
from vrrpfw.cli import main
code = main({argv!r})
print(code, sorted(m for m in sys.modules if m.split(".")[0] in ("typer", "click", "rich", "pydantic")))
"""


@pytest.mark.parametrize("command, argv", [("check", ["check", "-i", "eth0", "--json"]),
                                           ("open", ["open", "-i", "eth0", "--dry-run"]),
                                           ("close", ["close", "--no-persist"])])
def test_fast_path_imports_no_typer_click_or_rich(command, argv):
    proc = subprocess.run([sys.executable, "-c", CHILD.format(command=command, argv=argv)],
                          capture_output=True, text=True, env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "7 []\n"
