"""Fault injection for one real vrrpfw process (the fault tests' child).

Run as ``python tests/faultkit.py SPEC vrrpfw-arguments...`` (inside a test
namespace): SPEC is JSON, and the rest is handed to vrrpfw's CLI in this
process, after the patches below are installed.  Only this child process
is patched; the product code is not changed.

Every call that changes a file on disk in :mod:`vrrpfw.persist.files` (and
the removal of the candidate checked by :mod:`vrrpfw.persist.restorers`) is
a *step*: ``mkstemp`` (tempfile's), each half of a write to the temporary file,
``os.fsync``, ``os.chmod``, ``os.chown``, ``os.replace``, ``os.unlink``,
``os.makedirs``, ``os.open`` and ``os.close`` of the directory.

SPEC keys:

- ``trace``: a file; each step's name is appended to it (and flushed)
  before the step runs.
- ``kill_at``: N (1-based): the process SIGKILLs itself just before step N,
  as ``kill -9`` would at that moment (a write is cut in two steps, so the
  temporary file can be left half-written).
- ``pause_in``: the name of a function of :mod:`vrrpfw.run` (``_run_layers``:
  the runtime phase, ``_flush``: after it); the process writes its pid to
  the file ``pause_file`` on entering it and then sleeps until killed,
  holding whatever locks the run holds there.
- ``ready`` and ``go``: files; once vrrpfw is imported the process creates
  ``ready`` and waits for ``go`` to exist, so that many runs start their
  real work at the same moment.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import types
from typing import Any, Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The steps of one commit, in the words the tests use.
STEP_CALLS = ("mkstemp", "write", "fsync", "chmod", "chown", "replace", "unlink", "makedirs", "open", "close")


class Steps:
    def __init__(self, spec: Dict[str, Any]) -> None:
        self.trace = spec.get("trace")
        self.kill_at = spec.get("kill_at")
        self.count = 0

    def step(self, name: str) -> None:
        self.count += 1
        if self.trace:
            with open(self.trace, "a") as f:
                f.write(name + "\n")
        if self.kill_at == self.count:
            os.kill(os.getpid(), signal.SIGKILL)


class _File:
    """A file object from ``os.fdopen`` whose writes are two steps each."""

    def __init__(self, f: Any, steps: Steps) -> None:
        self._f, self._steps = f, steps

    def write(self, data: bytes) -> int:
        half = len(data) // 2
        self._steps.step("write first half")
        self._f.write(data[:half])
        self._f.flush()  # in the file (the kernel's page cache), as a real partial write would be
        self._steps.step("write second half")
        self._f.write(data[half:])
        return len(data)

    def __enter__(self) -> _File:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _proxy(module: types.ModuleType, wrapped: Dict[str, Callable[..., Any]]) -> types.ModuleType:
    """A stand-in for ``module`` with some functions wrapped, for one
    importer's global name only (``files.os``), so nothing else changes."""
    proxy = types.ModuleType(module.__name__)
    proxy.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    proxy.__dict__.update(wrapped)
    return proxy


def install(steps: Steps) -> None:
    from vrrpfw.persist import files, restorers

    def stepped(name: str, fn: Callable[..., Any],
                label: Callable[..., str] = lambda *a: "") -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            steps.step(name + label(*args))
            return fn(*args, **kwargs)
        return call

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        return _File(os.fdopen(fd, *args, **kwargs), steps)

    def base(path: Any) -> str:
        return f" {os.path.basename(path)}" if isinstance(path, str) else ""

    def os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        steps.step("open directory" if os.path.isdir(path) else f"open{base(path)}")
        return os.open(path, *args, **kwargs)

    wrapped = {
        "fdopen": fdopen,
        "fsync": stepped("fsync", os.fsync),
        "chmod": stepped("chmod", os.chmod),
        "chown": stepped("chown", os.chown),
        "replace": stepped("replace", os.replace),
        "unlink": stepped("unlink", os.unlink, base),
        "makedirs": stepped("makedirs", os.makedirs),
        "open": os_open,
        "close": stepped("close", os.close),
    }
    files.os = _proxy(os, wrapped)  # type: ignore[attr-defined]
    files.mkstemp = stepped("mkstemp", files.mkstemp)  # type: ignore[method-assign]
    restorers.os = _proxy(os, {"unlink": stepped("unlink candidate", os.unlink)})  # type: ignore[attr-defined]


def pause(function: str, pause_file: str) -> None:
    from vrrpfw import run

    def paused(*args: Any, **kwargs: Any) -> Any:
        with open(pause_file + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(pause_file + ".tmp", pause_file)
        while True:
            time.sleep(60)

    setattr(run, function, paused)


def main(argv: List[str]) -> int:
    spec = json.loads(argv[0])
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from vrrpfw.cli import main as vrrpfw_main

    install(Steps(spec))
    if spec.get("pause_in"):
        pause(spec["pause_in"], spec["pause_file"])
    if spec.get("ready"):
        open(spec["ready"], "w").close()
        while not os.path.exists(spec["go"]):
            time.sleep(0.002)
    return vrrpfw_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
