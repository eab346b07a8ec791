"""An exception vrrpfw did not expect (a bug, a tool printing something new)
is one line on stderr ending in how to get the traceback, and exit 4
(errors.EXIT_INTERNAL), never Python's traceback and exit 1, which scripts
read as "not allowed".  VRRPFW_TRACEBACK=1 adds the traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import vrrpfw
from vrrpfw.cli import entry as cli
from vrrpfw.errors import EXIT_INTERNAL, TRACEBACK_ENV, EnvironmentProblem

HINT = "(set VRRPFW_TRACEBACK=1 for the traceback)"


def boom(exc):
    def raiser(*args, **kwargs):
        raise exc
    return raiser


@pytest.fixture(autouse=True)
def no_traceback_env(monkeypatch):
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)


@pytest.mark.parametrize("target, argv", [
    ("vrrpfw.api.open", ["open", "--iface", "eth0", "--no-persist"]),
    ("vrrpfw.api.check", ["check", "--no-persist"]),
    ("vrrpfw.api.close", ["close", "--no-persist"]),
    ("vrrpfw.api.backends", ["backends"]),
    ("vrrpfw.prove.proof.prove", ["prove", "--iface", "eth0"]),
    ("vrrpfw.cli.render.plain", ["check", "--no-persist"]),
])
def test_one_line_and_exit_4(target, argv, monkeypatch, capsys):
    if target == "vrrpfw.cli.render.plain":
        from vrrpfw.results import Result
        monkeypatch.setattr("vrrpfw.api.check", lambda **kw: Result("check", "none", nothing_filters=True))
    monkeypatch.setattr(target, boom(ValueError("Expecting value: line 1 column 1\n(char 0)")))
    assert cli.main(argv) == EXIT_INTERNAL == 4
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("vrrpfw: internal error: ValueError: Expecting value: line 1 column 1 (char 0) "
                   f"{HINT}\n")


def test_json_object_too(monkeypatch, capsys):
    monkeypatch.setattr("vrrpfw.api.check", boom(KeyError("nftables")))
    assert cli.main(["check", "--no-persist", "--json"]) == 4
    out, err = capsys.readouterr()
    assert json.loads(out) == {"error": f"internal error: KeyError: 'nftables' {HINT}", "exit_code": 4}
    assert err == f"vrrpfw: internal error: KeyError: 'nftables' {HINT}\n"


def test_empty_message_still_says_what(monkeypatch, capsys):
    monkeypatch.setattr("vrrpfw.api.check", boom(RuntimeError()))
    assert cli.main(["check", "--no-persist"]) == 4
    assert capsys.readouterr().err == f"vrrpfw: internal error: RuntimeError: RuntimeError() {HINT}\n"


def test_traceback_on_request(monkeypatch, capsys):
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    monkeypatch.setattr("vrrpfw.api.check", boom(ZeroDivisionError("division by zero")))
    assert cli.main(["check", "--no-persist"]) == 4
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero\n" in err
    assert err.splitlines()[-1] == f"vrrpfw: internal error: ZeroDivisionError: division by zero {HINT}"


def test_expected_errors_keep_their_code(monkeypatch, capsys):
    """A VrrpfwError keeps its own exit code and plain one line, wherever it is raised."""
    monkeypatch.setattr("vrrpfw.api.backends", boom(EnvironmentProblem("no nft")))
    assert cli.main(["backends"]) == 3
    assert capsys.readouterr().err == "vrrpfw: error: no nft\n"
    monkeypatch.setattr("vrrpfw.cli.entry._given_twice", boom(EnvironmentProblem("odd")))
    assert cli.main(["backends", "--json"]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out) == {"error": "odd", "exit_code": 3} and err == "vrrpfw: error: odd\n"


def test_broken_typer_is_internal_too(monkeypatch, capsys):
    monkeypatch.setattr("vrrpfw.cli.entry._sound_command",
                        boom(TypeError("Parameter.make_metavar() missing 1")))
    assert cli.main(["--help"]) == 4
    assert "internal error: TypeError: Parameter.make_metavar() missing 1" in capsys.readouterr().err


CHILD = """
import sys
import vrrpfw.api
def boom(**kwargs):
    raise ValueError("unexpected nft JSON")
vrrpfw.api.check = boom
from vrrpfw.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("traceback", [False, True])
def test_real_process(traceback):
    env = {k: v for k, v in os.environ.items() if k != TRACEBACK_ENV}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(vrrpfw.__file__))
    if traceback:
        env[TRACEBACK_ENV] = "1"
    proc = subprocess.run([sys.executable, "-c", CHILD, "check", "--no-persist", "--json"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 4
    line = f"vrrpfw: internal error: ValueError: unexpected nft JSON {HINT}"
    assert json.loads(proc.stdout) == {"error": line[len("vrrpfw: "):], "exit_code": 4}
    if traceback:
        assert proc.stderr.startswith("Traceback (most recent call last):")
        assert proc.stderr.splitlines()[-1] == line
    else:
        assert proc.stderr == line + "\n"
