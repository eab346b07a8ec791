"""host/run.py's Started: a tool started through spawn() and collected later
answers exactly as run() would (exit code, output, a missing tool, a
time-out and its message), and close() kills and reaps it: no zombie, no
child left behind.  Real processes (sh, sleep); nothing touches a firewall."""

from __future__ import annotations

import os
import time

import pytest

from vrrpfw.host.run import Started, run

pytestmark = pytest.mark.integration


def children() -> list:
    """This process's children (zombies included), from /proc."""
    out = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            out += f.read().split()
    return out


def same(a, b) -> None:
    assert (a.code, a.out, a.err, a.missing, a.timed_out) == (b.code, b.out, b.err, b.missing, b.timed_out)
    assert type(a.exc) is type(b.exc) and str(a.exc) == str(b.exc)


@pytest.mark.parametrize("argv", [
    ["sh", "-c", "echo out; echo err >&2; exit 3"],
    ["sh", "-c", "printf 'x%.0s' $(seq 1 70000)"],  # more than a pipe holds
    ["vrrpfw-no-such-tool-here"],
    ["/proc/self/status"],  # not executable
])
def test_started_answers_as_run(argv) -> None:
    started = Started(argv, timeout=20)
    time.sleep(0.05)  # collected later than it ended
    same(started.result(), run(argv, timeout=20))
    assert started.result() is started.result()
    assert children() == []


def test_time_out_counts_from_the_start() -> None:
    argv = ["sleep", "30"]
    started = Started(argv, timeout=0.3)
    time.sleep(0.5)  # past its time-out before anyone waits: killed at once
    t = time.monotonic()
    ran = started.result()
    assert time.monotonic() - t < 5
    same(ran, run(argv, timeout=0.3))
    assert ran.timed_out and ran.code == 124
    assert children() == []


def test_close_kills_and_reaps_what_was_never_read() -> None:
    started = [Started(["sleep", "30"]) for _ in range(3)] + [Started(["true"])]
    pids = [str(s.proc.pid) for s in started if s.proc is not None]
    assert set(pids) <= set(children())
    for s in started:
        s.close()
        s.close()  # twice is harmless
    assert not set(pids) & set(children())
    assert all(s.proc is not None and s.proc.returncode is not None for s in started)
