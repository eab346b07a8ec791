"""vrrpfw/cli/fast.py: the typer-free path of ``check``, ``open`` and
``close`` says what typer's declaration says (option by option), and for a
pinned grid of argv it either declines or makes the same call as typer,
with the same bytes out and the same exit code (the checks: tests/fastgrid.py).
These build typer's command, so they carry no one-end mark (run them with both library ends;
test_cli_pairs.py runs the same checks under typer 0.7 + the newest click and
typer 0.15 + click 8.2)."""

from __future__ import annotations

import os
import subprocess
import sys

import fastgrid
import pytest

import vrrpfw
from vrrpfw.cli import entry, fast

REPO = os.path.dirname(os.path.dirname(vrrpfw.__file__))


@pytest.mark.parametrize("command", fast.COMMANDS)
def test_option_table_is_typers_declaration(command):
    """Names and aliases, flag or value, repeatable, choices, default and
    type of every option, against the click command typer builds."""
    fastgrid.check_table(command)


def test_the_group_keeps_every_command_the_table_does_not_know():
    group = entry.build_command()
    assert set(fast.COMMANDS) < set(group.commands)
    assert [p.name for p in group.params if p.name != "help"] == ["version"]


@pytest.mark.parametrize("command", fast.COMMANDS)
def test_fast_path_declines_or_makes_typers_call(command):
    accepted, differ = fastgrid.grid_differences(command)
    assert differ == []
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


# -- the cyclic garbage collector during a short run ---------------------------------

@pytest.fixture
def body_sees_gc(monkeypatch):
    """Every command's body replaced: it records whether the collector ran
    (and raises CliExit(3) when asked to)."""
    import gc

    from vrrpfw.cli import actions

    seen = []

    def body(**kw):
        seen.append(gc.isenabled())
        if kw.get("group") == "raise":
            raise actions.CliExit(3)

    for command in fast.COMMANDS:
        monkeypatch.setattr(actions, f"run_{command}", body)
    return seen


@pytest.mark.parametrize("argv, paused", [
    (["check", "-i", "eth0"], True), (["open", "-i", "eth0", "--json"], True),
    (["close", "--no-persist"], True),
    (["check", "-i", "eth0", "--group", "raise"], True),
    (["check", "-i", "eth0", "--listen", "2"], False), (["check", "-i", "eth0", "--listen", "0"], False),
    (["check", "-i", "eth0", "--prove"], False), (["open", "-i", "eth0", "--prove"], False),
])
def test_a_short_run_pauses_the_collector_and_restores_it(body_sees_gc, argv, paused):
    """check/open/close run with the collector paused, unless they listen
    or prove; after the run (also one that ends in CliExit) it is enabled
    as before, with nothing of the caller's left frozen."""
    import gc

    assert gc.isenabled() and gc.get_freeze_count() == 0
    threshold = gc.get_threshold()
    code = fast.run(argv)
    assert code == (3 if "raise" in argv else 0)
    assert body_sees_gc == [not paused]
    assert gc.isenabled() and gc.get_freeze_count() == 0 and gc.get_threshold() == threshold


def test_a_collector_the_caller_disabled_or_froze_stays_so(body_sees_gc):
    import gc

    gc.disable()
    try:
        assert fast.run(["check", "-i", "eth0"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    kept = [object() for _ in range(3)]  # noqa: F841 - something to freeze
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert fast.run(["check", "-i", "eth0"]) == 0
        assert gc.isenabled() and gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    assert body_sees_gc == [False, False]


def test_a_short_run_leaves_no_collection_for_the_end(body_sees_gc, monkeypatch):
    """What the paused run allocated and kept does not make the collector
    examine it all as soon as it is enabled again (the cost saved, paid at
    the end): the run's objects leave the youngest generation."""
    import gc

    from vrrpfw.cli import actions

    kept = []
    monkeypatch.setattr(actions, "run_check", lambda **kw: kept.extend([[i] for i in range(50_000)]))
    assert fast.run(["check", "-i", "eth0"]) == 0
    assert gc.get_count()[0] < gc.get_threshold()[0], gc.get_count()


FREEZE_CHILD = """
import gc, sys
import vrrpfw.cli.actions as actions
actions.run_check = lambda **kw: None
from vrrpfw.cli import main
sys.argv = ["vrrpfw", *{argv!r}]
code = main({arg})
print(code, gc.isenabled(), gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize("argv", [["check", "-i", "eth0"], ["check", "-i", "eth0", "--listen", "1"],
                                  ["--version"]])
@pytest.mark.parametrize("arg, frozen", [("", True), ("sys.argv[1:]", False)])
def test_the_process_command_freezes_what_it_leaves_for_the_exit(argv, arg, frozen):
    """main() as the process's command (no argv: the console script,
    python -m vrrpfw) freezes the heap as it returns, whatever the command,
    so the interpreter's exit collections skip it; main(argv), called
    in-process, leaves nothing frozen."""
    proc = subprocess.run([sys.executable, "-c", FREEZE_CHILD.format(argv=argv, arg=arg)],
                          capture_output=True, text=True, env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"0 True {frozen}"
