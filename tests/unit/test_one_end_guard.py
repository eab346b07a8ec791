"""The one_end guard (tests/one_end_guard.py) fails every test marked one_end
that reaches typer, rich, python-iptables or dbus-python, in the test's
process or in a child, even where the code catches the ImportError; and it
changes nothing for a test that reaches none of them.

A pytest session of its own runs deliberately mis-marked tests, with the
guard on (VRRPFW_ONE_END_GUARD=1, two xdist workers, as tests/run.sh runs
the one_end pass) and without it: every bad test must fail with the guard
only, naming what it reached; the clean one must pass both times.  Each of
three mutants of the guard (no audit hook, no import finder, attempts not
collected) made this test fail.

Not marked one_end: the sessions it starts import typer (without the guard).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Tuple

import pytest
from one_end_guard import GUARD_ENV, LOG_ENV, STUBS_ENV

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS)

CONFTEST = f"""
import sys
sys.path.insert(0, {TESTS!r})
import one_end_guard

def pytest_configure(config):
    config.addinivalue_line("markers", "one_end: see tests/one_end_guard.py")
    one_end_guard.configure(config)
"""

HEADER = """
import importlib.util, os, subprocess, sys
import pytest
pytestmark = pytest.mark.one_end
REPO = {repo!r}
"""

# name -> (test module text, what the guard's message must say; "" = must pass)
CASES: Dict[str, Tuple[str, str]] = {
    "clean": ("""
        def test_judge_and_a_python_child():
            from vrrpfw import model
            from vrrpfw.judge import chaineval
            assert chaineval and model
            code = "import json, vrrpfw.model; print(1)"
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 env=dict(os.environ, PYTHONPATH=REPO))
            assert out.stdout == "1\\n"
        """, ""),
    "cli_in_process": ("""
        def test_runs_the_cli():
            from vrrpfw.cli import main  # the command's entry point (pyproject's [project.scripts])
            assert main(["--version"]) == 0  # through typer (check, open, close may not be)
        """, "typer imported in the test process"),
    "caught_iptc": ("""
        def test_optional_python_iptables_fallback():
            from vrrpfw.judge.read.iptc_loader import load_iptc
            try:  # as IptablesBackend.availability: no python-iptables, no iptables backend
                load_iptc()
            except ImportError:
                pass
        """, "iptc imported in the test process"),
    "probe_dbus": ("""
        def test_probes_for_dbus():
            try:
                importlib.util.find_spec("dbus")
            except ImportError:
                pass
        """, "dbus imported in the test process"),
    "rich_at_collection": ("""
        try:
            import rich
        except ImportError:
            rich = None

        def test_nothing():
            pass
        """, "rich imported in the test process"),
    "cli_child_own_env": ("""
        def test_runs_the_cli_in_a_child_with_an_environment_of_its_own():
            # the test ignores the outcome: only the guard can fail it
            subprocess.run([sys.executable, "-m", "vrrpfw", "--version"], capture_output=True,
                           env={"PATH": os.environ["PATH"], "PYTHONPATH": REPO}, cwd=REPO)
        """, "typer imported in pid"),
    "grandchild_inherits": ("""
        def test_a_shell_runs_python_that_imports_click():
            subprocess.run(f"{sys.executable} -c 'import click' || true", shell=True, capture_output=True)
        """, "click imported in pid"),
    "isolated_child": ("""
        def test_a_python_child_that_ignores_pythonpath():
            subprocess.run([sys.executable, "-E", "-c", "pass"], check=True)
        """, "started with -E"),
    "not_marked": ("""
        pytestmark = []

        def test_not_marked():
            pass
        """, "is not marked one_end"),
}


def session(tmp_path: Path, guard: bool) -> Dict[str, Tuple[str, str]]:
    """Runs every case in one pytest session; per case module: (outcome, text)."""
    root = tmp_path / ("guarded" if guard else "plain")
    root.mkdir()
    (root / "conftest.py").write_text(CONFTEST)
    for name, (body, _) in CASES.items():
        (root / f"test_case_{name}.py").write_text(HEADER.format(repo=REPO) + textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items()
           if k not in (GUARD_ENV, STUBS_ENV, LOG_ENV, "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")
           and not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = REPO
    if guard:
        env[GUARD_ENV] = "1"
    junit = root / "junit.xml"
    # with the guard: two xdist workers, as tests/run.sh runs the one_end pass
    workers = ["-n", "2"] if guard else ["-p", "no:xdist"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers,
                           f"--junitxml={junit}", "--rootdir", str(root), str(root)],
                          capture_output=True, text=True, cwd=str(root), env=env, timeout=300)
    assert junit.exists(), proc.stdout + proc.stderr
    results: Dict[str, Tuple[str, str]] = {}
    for case in ET.parse(junit).iter("testcase"):
        module = (case.get("classname") or case.get("name") or "").split(".")[-1]
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        outcome = "passed" if bad is None else "failed"
        text = "" if bad is None else (bad.get("message") or "") + (bad.text or "")
        if module in results and results[module][0] == "failed":
            continue
        results[module] = (outcome, text)
    assert set(results) == {f"test_case_{name}" for name in CASES}, (sorted(results), proc.stdout)
    return results


def test_the_guard_fails_each_mis_marked_test_and_only_with_the_guard(tmp_path: Path) -> None:
    plain = session(tmp_path, guard=False)
    assert {m: r[0] for m, r in plain.items()} == {f"test_case_{name}": "passed" for name in CASES}, plain
    guarded = session(tmp_path, guard=True)
    for name, (_, needle) in CASES.items():
        outcome, text = guarded[f"test_case_{name}"]
        if needle:
            assert outcome == "failed" and needle in text and "one_end guard" in text, (name, outcome, text)
        else:
            assert outcome == "passed", (name, text)


@pytest.mark.parametrize("argv", [["python3", "-I", "-c", "pass"], ["python3", "-Es", "x.py"]])
def test_isolating_flags_are_seen(argv: list) -> None:
    from one_end_guard import Guard

    guard = Guard.__new__(Guard)
    guard.active, guard.stubs, guard.log = True, "/nonexistent-stubs", "/nonexistent-log"
    guard.blocker = type("B", (), {"attempts": []})()
    env = {"PYTHONPATH": "/x"}
    guard.audit("subprocess.Popen", (argv[0], argv, None, env))
    assert env == {"PYTHONPATH": "/nonexistent-stubs:/x", LOG_ENV: "/nonexistent-log"}
    assert len(guard.blocker.attempts) == 1 and "ignores PYTHONPATH" in guard.blocker.attempts[0]


@pytest.mark.parametrize("argv", [
    # how integration tests start children: through ip netns exec (Namespace.run/popen)
    ["ip", "netns", "exec", "vrfw123-4", "/venv/bin/python3", "-I", "-c", "import typer"],
    ["setpriv", "--reuid=65534", "--clear-groups", "python3.11", "-E", "-m", "vrrpfw"],
    ["env", "LANG=C", "python3", "-Es", "x.py"],
])
def test_isolating_flags_are_seen_behind_a_wrapper(argv: list) -> None:
    """A Python child started through another program (``ip netns exec``,
    setpriv, env: they keep the environment) ignores PYTHONPATH with -I or
    -E just the same: the guard must see it as it sees a direct one."""
    from one_end_guard import Guard

    guard = Guard.__new__(Guard)
    guard.active, guard.stubs, guard.log = True, "/nonexistent-stubs", "/nonexistent-log"
    guard.blocker = type("B", (), {"attempts": []})()
    guard.audit("subprocess.Popen", (argv[0], argv, None, {"PYTHONPATH": "/x"}))
    assert len(guard.blocker.attempts) == 1 and "ignores PYTHONPATH" in guard.blocker.attempts[0]


@pytest.mark.parametrize("argv", [
    # no site: no site-packages, so none of the blocked libraries (prove's advert sender and receiver)
    ["ip", "netns", "exec", "vrfw123-4", "/venv/bin/python3", "-I", "-S", "/src/vrrpfw/prove/traffic.py"],
    ["python3", "-IS", "-c", "pass"],
    # a tool's own flags, not Python's
    ["ip", "netns", "exec", "vrfw123-4", "iptables-legacy", "-w", "-I", "INPUT", "-j", "ACCEPT"],
    ["python3", "-c", "pass", "-I"],
])
def test_a_child_that_cannot_reach_site_packages_or_is_no_python_is_not_an_attempt(argv: list) -> None:
    from one_end_guard import Guard

    guard = Guard.__new__(Guard)
    guard.active, guard.stubs, guard.log = True, "/nonexistent-stubs", "/nonexistent-log"
    guard.blocker = type("B", (), {"attempts": []})()
    guard.audit("subprocess.Popen", (argv[0], argv, None, {"PYTHONPATH": "/x"}))
    assert guard.blocker.attempts == []
