"""The CLI through typer/click pairs that pip resolves side by side, each in
the small venv packaging/setup.sh builds for it:

- ``.venv-typer07-clicknew``: Debian 12's typer 0.7 beside the newest click.
  With click >= 8.3 every option typer 0.7 built was a flag: ``--version``
  printed the version and exited 0 on every command, ``--iface eth0`` took
  no value.  With click >= 8.2 subcommand ``--help`` crashed.
- ``.venv-typer015-click82``: typer 0.15 beside click 8.2 (``--help`` crashed).

The environment under test itself (Debian's or the newest libraries) runs
the same checks in-process in test_cli_options.py.  A missing venv skips,
except under VRRPFW_REQUIRE_INTEGRATION=1 (tests/run.sh as root), where it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import List, Tuple

import pytest
from venvs import built_here, python_of

from vrrpfw.cli import fast

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
REQUIRE = os.environ.get("VRRPFW_REQUIRE_INTEGRATION") == "1"

# venv -> (typer version prefix, the click versions it must hold)
PAIRS = {
    ".venv-typer07-clicknew": ("0.7.", (8, 3)),
    ".venv-typer015-click82": ("0.15.", (8, 2)),
}

VERSIONS = ("import sys, warnings, typer, click\n"
            "warnings.simplefilter('ignore')\n"
            "print(typer.__version__, click.__version__)")


def run(python: str, *args: str) -> Tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = REPO  # this checkout, whatever the venv's editable install points at
    proc = subprocess.run([python, "-m", "vrrpfw", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def one_error_line(err: str) -> List[str]:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: "), err
    assert "Traceback" not in err
    return lines


@pytest.fixture(params=sorted(built_here(PAIRS)), scope="module")
def pair(request) -> str:
    venv = request.param
    python = python_of(venv)
    typer_v, click_v = subprocess.run([python, "-c", VERSIONS], capture_output=True, text=True,
                                      check=True).stdout.split()
    want_typer, min_click = PAIRS[venv]
    assert typer_v.startswith(want_typer), f"{venv} holds typer {typer_v}"
    assert tuple(int(x) for x in click_v.split(".")[:2]) >= min_click, f"{venv} holds click {click_v}"
    return python


def test_version(pair):
    rc, out, err = run(pair, "--version")
    assert (rc, err) == (0, "") and out.startswith("vrrpfw 0."), (rc, out, err)


@pytest.mark.parametrize("command", ["open", "check", "close", "prove", "backends"])
def test_help(pair, command):
    rc, out, err = run(pair, command, "--help")
    assert rc == 0 and err == "", err
    assert out.startswith(f"Usage: vrrpfw {command} [OPTIONS]")
    assert "--json" in out and "vrrpfw 0." not in out
    if command in ("open", "close"):
        assert "--lock-timeout SECONDS" in out and "[default: 10.0]" in " ".join(out.split())
        assert "--backend auto|iptables|nftables|firewalld" in out and "--family ipv4|ipv6|both" in out


def test_top_help(pair):
    rc, out, err = run(pair, "--help")
    assert rc == 0 and "Commands:" in out and "open" in out and err == ""


@pytest.mark.parametrize("args, words", [
    (["open", "--iface", "a/b", "--no-persist", "--dry-run"], "contains '/'"),
    (["open", "--iface", "eth0", "--dry-run", "--no-persist", "--group", "10.0.0.1"],
     "not a multicast address"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "nan"], "--lock-timeout"),
    (["open", "--iface", "eth0", "--no-persist", "--group", "224.0.0.18", "--group", "224.0.0.19"],
     "given 2 times"),
    (["prove", "--iface", "eth0", "--count", "x"], "count"),
    (["open", "--dry-run"], "--iface"),
])
def test_bad_input_is_exit_2(pair, args, words):
    """Values reach their options (an option that swallowed no value, or a
    flag that fired, would give another answer than these)."""
    rc, out, err = run(pair, *args)
    assert rc == 2 and out == "", (rc, out, err)
    assert words in one_error_line(err)[0]


def test_flags_are_flags(pair):
    """--dry-run and --json are off unless given: the --json error object
    appears only with --json."""
    rc, out, err = run(pair, "open", "--iface", "a/b", "--no-persist", "--json")
    assert rc == 2 and out.startswith('{"error": "interface name'), out
    rc, out, err = run(pair, "open", "--iface", "a/b", "--no-persist")
    assert rc == 2 and out == ""


def test_fast_path_declines_or_makes_typers_call_under_the_pair(pair):
    """vrrpfw/cli/fast.py's checks (tests/fastgrid.py, as test_fast.py runs
    them in-process) under the pair, on a smaller sample of the grid (every
    fragment alone, 300 pairs, 100 triples)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([REPO, os.path.join(REPO, "tests")])
    proc = subprocess.run([pair, "-m", "fastgrid", "300", "100"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["command"] for r in rows] == list(fast.COMMANDS)
    for r in rows:
        assert r["differ"] == [] and r["accepted"] > 100, r
