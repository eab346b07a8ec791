"""The guard of the ``one_end`` marker: a test marked one_end runs with one
library end only (Debian's, tests/run.sh), so it must never reach the
libraries whose versions differ between the ends: typer (and click, its
parser), rich, python-iptables (``iptc``) and dbus-python (``dbus``).

With ``VRRPFW_ONE_END_GUARD=1`` (tests/run.sh sets it for the one_end pass,
which runs in a pytest invocation of its own) every process of the session
blocks them:

* in pytest's own processes (the controller and each xdist worker), a
  finder at the head of ``sys.meta_path`` refuses every import of them
  (``ModuleNotFoundError``), after they are purged from ``sys.modules``
  (with any module that holds one of them);
* in every Python child a test starts (``python -m vrrpfw``, ``python -c``,
  a daemon, another venv's python), a directory of stub packages on
  ``PYTHONPATH`` does the same.  An audit hook (PEP 578) sees every process
  started (subprocess, os.exec*, os.posix_spawn, os.system) before it starts
  and puts the stubs first on the PYTHONPATH it gets, even where the test
  gives it an environment of its own (``env=dict(os.environ,
  PYTHONPATH=REPO)``); vrrpfw.netns puts the checkout before them.

Each attempt is written down (the child's into a log file of its worker,
``VRRPFW_ONE_END_GUARD_LOG``), and the test (or the collection of its
module) during which it happened fails, naming what it tried and from
where, even where the code catches the ImportError (vrrpfw's optional
python-iptables fallback, a ``find_spec`` probe).  A test that is not marked
one_end fails too: the guarded pass runs one_end tests only
(``VRRPFW_ONE_END_GUARD=survey`` lifts that, to find the tests that could
be marked: run any set with it and see which pass).

What the child half cannot see, it fails: a Python child started with
``-I`` or ``-E`` (it would ignore PYTHONPATH), itself or through a program
that keeps the environment (``ip netns exec NAME python -I ...``, setpriv,
env), unless ``-S`` too (no site: none of those libraries can be reached,
as prove's advert sender and receiver run).  What it cannot see at all: a
grandchild whose parent, not Python, scrubs its environment (``env -i``,
sudo).  tests/unit/test_one_end_guard.py proves the guard.
"""

from __future__ import annotations

import importlib.abc
import os
import re
import sys
import tempfile
import traceback
from collections.abc import MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Generator, List, Optional, Sequence, Union

import pytest

GUARD_ENV = "VRRPFW_ONE_END_GUARD"
STUBS_ENV = "VRRPFW_ONE_END_GUARD_STUBS"
LOG_ENV = "VRRPFW_ONE_END_GUARD_LOG"
# Top-level modules whose versions differ between the library ends: typer
# and click (Debian: typer 0.7, click 8.1; newest: typer's own click),
# rich, python-iptables, dbus-python (and its C parts).
BLOCKED = ("typer", "click", "rich", "iptc", "dbus", "_dbus_bindings", "_dbus_glib_bindings")

STUB = '''\
"""one_end guard (tests/one_end_guard.py): {name} is blocked in this test's processes."""
import os as _os
import sys as _sys

_line = "%s imported in pid %d: %s\\n" % ({name!r}, _os.getpid(), " ".join(_sys.argv)[:300])
try:
    with open(_os.environ["{log_env}"], "a") as _f:
        _f.write(_line)
except (KeyError, OSError):
    _sys.stderr.write("one_end guard: " + _line)
raise ModuleNotFoundError("one_end guard: {name} is blocked (the test is marked one_end)", name={name!r})
'''


def blocked(name: str) -> bool:
    return name.partition(".")[0] in BLOCKED


def _caller() -> str:
    """Where the import came from: the innermost frames outside importlib."""
    frames = [f for f in traceback.extract_stack()[:-3]
              if "importlib" not in f.filename and f.filename != __file__]
    names = [os.path.relpath(f.filename) if not os.path.relpath(f.filename).startswith("..") else f.filename
             for f in frames[-3:]]
    return " <- ".join(f"{n}:{f.lineno}" for n, f in zip(reversed(names), reversed(frames[-3:])))


class Blocker(importlib.abc.MetaPathFinder):
    """Refuses every import of a BLOCKED module and writes the attempt down."""

    def __init__(self) -> None:
        self.attempts: List[str] = []

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Any:
        if blocked(fullname):
            self.attempts.append(f"{fullname} imported in the test process, from {_caller()}")
            raise ModuleNotFoundError(f"one_end guard: {fullname} is blocked (the test is marked one_end)",
                                      name=fullname)


def _holds_blocked(module: Any) -> bool:
    try:
        values = list(vars(module).values())
    except TypeError:
        return False
    return any(isinstance(v, ModuleType) and blocked(v.__name__) for v in values)


def purge() -> None:
    """The blocked modules out of ``sys.modules``, and every module that holds
    one, so that the next import of either goes through the Blocker."""
    for name, module in list(sys.modules.items()):
        if blocked(name) or (module is not None and _holds_blocked(module)):
            del sys.modules[name]


def make_stubs(directory: str) -> None:
    for name in BLOCKED:
        package = os.path.join(directory, name)
        os.makedirs(package, mode=0o755, exist_ok=True)
        with open(os.path.join(package, "__init__.py"), "w") as f:
            f.write(STUB.format(name=name, log_env=LOG_ENV))
        os.chmod(os.path.join(package, "__init__.py"), 0o644)


class Guard:
    """The pytest plugin of a guarded session (one per process)."""

    def __init__(self, survey: bool = False) -> None:
        self.survey = survey
        self.blocker = Blocker()
        self.owned: Optional[str] = None
        stubs = os.environ.get(STUBS_ENV)
        if not stubs:
            # The first process of the session (the controller, or pytest
            # without xdist) makes the stubs; its workers inherit them.
            stubs = self.owned = tempfile.mkdtemp(prefix="vrrpfw-one-end-guard-")
            os.chmod(stubs, 0o755)
            make_stubs(stubs)
            os.environ[STUBS_ENV] = stubs
            old = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = stubs + (os.pathsep + old if old else "")
        # This process's own log: its tests run one after another, so what is
        # in it after a test is that test's children's.  Anyone may append
        # (tests run vrrpfw as other users too).
        self.log = os.path.join(stubs, f"log-{os.getpid()}")
        with open(self.log, "w"):
            pass
        os.chmod(self.log, 0o666)
        os.environ[LOG_ENV] = self.log
        self.offset = 0
        self.stubs = stubs
        self.active = True
        purge()
        sys.meta_path.insert(0, self.blocker)
        sys.addaudithook(self.audit)

    def _guarded(self, env: Any) -> None:
        """The stubs first on ``env``'s PYTHONPATH, and this process's log in
        it (os.environ where the child inherits it)."""
        if env is None:
            env = os.environ
        path = env.get("PYTHONPATH") or ""
        if path.split(os.pathsep)[0] != self.stubs:
            env["PYTHONPATH"] = self.stubs + (os.pathsep + path if path else "")
        env[LOG_ENV] = self.log

    def audit(self, event: str, args: Any) -> None:
        """PEP 578 hook: every process about to start gets the stubs."""
        if not self.active or event not in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
                                            "os.system"):
            return
        env = None if event == "os.system" else args[-1]
        if env is not None and not isinstance(env, MutableMapping):
            self.blocker.attempts.append(f"a process started with an environment the guard cannot reach: "
                                         f"{args}")
            return
        self._guarded(env)
        argv = [] if event == "os.system" else args[2] if event == "os.spawn" else args[1]
        argv = [argv] if isinstance(argv, (str, bytes, os.PathLike)) else list(argv or [])
        words = [os.fsdecode(a) if isinstance(a, (str, bytes, os.PathLike)) else str(a) for a in argv]
        # The Python started: the program itself, or one a wrapper that keeps
        # the environment starts (ip netns exec NAME python ..., setpriv, env).
        at = next((i for i, w in enumerate(words)
                   if (os.path.basename(w).startswith("python") if i == 0
                       else re.fullmatch(r"python[0-9.]*", os.path.basename(w)))), None)
        flags = ""
        for arg in words[at + 1:] if at is not None else []:
            if not arg.startswith("-") or arg.startswith("--") or arg in ("-c", "-m"):
                break
            flags += arg[1:]
        # -S: no site, so no site-packages and none of the blocked libraries
        if set(flags) & {"I", "E"} and "S" not in flags:
            self.blocker.attempts.append(f"a Python child started with -{flags} (it ignores PYTHONPATH, "
                                         f"so the guard cannot see its imports): {argv}")

    def take(self) -> List[str]:
        """The attempts since the last call: this process's, then its children's."""
        found, self.blocker.attempts = self.blocker.attempts, []
        with open(self.log) as f:
            f.seek(self.offset)
            children = f.read()
            self.offset = f.tell()
        found += [f"{line} (a child process)" for line in children.splitlines()]
        return found

    def message(self, found: List[str]) -> str:
        what = ("this test reached" if self.survey else
                "this test is marked one_end (it runs with one library end only) but reached")
        return (f"one_end guard: {what} typer/click, rich, python-iptables or dbus-python:\n  " +
                "\n  ".join(found) +
                "\nA test that imports or runs any of them runs on both ends: it must not be marked one_end.")

    def pytest_ignore_collect(self, collection_path: Path) -> Optional[bool]:
        """Collecting a module imports it: the guarded pass imports only the
        test modules that mark a test one_end (their text says so, which
        :func:`check_visible` makes sure of), so a module that imports typer
        at the top and has no one_end test is not a failure of the pass."""
        if self.survey or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
            return None
        return True if not marks_one_end(collection_path) else None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, None]:
        outcome = yield
        found = self.take()
        if found:
            report = outcome.get_result()
            report.outcome = "failed"
            report.longrepr = self.message(found) + (f"\n\n{report.longrepr}" if report.longrepr else "")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result()
        found = self.take()
        problem = self.message(found) if found else ""
        if call.when == "setup" and item.get_closest_marker("one_end") is None and not self.survey:
            problem = (f"one_end guard: {item.nodeid} is not marked one_end, and the guarded pass "
                       f"({GUARD_ENV}=1) runs one_end tests only\n" + problem)
        if problem:
            report.outcome = "failed"
            report.longrepr = problem + (f"\n\n{report.longrepr}" if report.longrepr else "")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.active = False  # an audit hook stays for the process's life
        if self.blocker in sys.meta_path:
            sys.meta_path.remove(self.blocker)
        if self.owned:
            import shutil

            shutil.rmtree(self.owned, ignore_errors=True)


_MARKS: Dict[str, bool] = {}


def marks_one_end(path: Union[str, os.PathLike[str]]) -> bool:
    """Whether the test module's text says ``one_end`` at all."""
    key = os.fspath(path)
    if key not in _MARKS:
        with open(key, "rb") as f:
            _MARKS[key] = b"one_end" in f.read()
    return _MARKS[key]


def check_visible(items: Sequence[pytest.Item]) -> None:
    """Every test marked one_end is in a module whose text says one_end
    (a mark put on from elsewhere, a conftest or a helper's list, would hide
    the test from the guarded pass, and from the others too: it would run
    nowhere).  Called by conftest.py's pytest_collection_modifyitems."""
    hidden = [item.nodeid for item in items
              if item.get_closest_marker("one_end") is not None and not marks_one_end(item.path)]
    if hidden:
        raise pytest.UsageError("marked one_end without the word one_end in their module (mark them in "
                                "the test file itself, tests/one_end_guard.py): " + ", ".join(hidden[:5]))


def configure(config: pytest.Config) -> None:
    """Called by conftest.py's pytest_configure: the guard, where asked for."""
    mode = os.environ.get(GUARD_ENV)
    if mode in ("1", "survey") and not config.pluginmanager.has_plugin("one_end_guard"):
        config.pluginmanager.register(Guard(survey=mode == "survey"), "one_end_guard")
