"""host/run.py's Started: a tool started through spawn() and collected later
answers exactly as run() would (exit code, output, a missing tool, a
time-out and its message), and close() kills and reaps it: no zombie, no
child left behind.  Its time-out counts the tool's own time: a tool that
printed more than a pipe holds is not killed because vrrpfw collected it
late, a tool that hangs or writes forever is.  Real processes (sh, sleep,
yes); nothing touches a firewall."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time

import pytest
from netns import namespace

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


def ended(pid: int, within: float) -> bool:
    """Has child ``pid`` exited (a zombie, not yet reaped) within ``within`` seconds?"""
    end = time.monotonic() + within
    while time.monotonic() < end:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        time.sleep(0.01)
    return False


BIG = "head -c 200000 /dev/zero | tr '\\0' x; head -c 100000 /dev/zero | tr '\\0' y >&2"  # > 64 KiB each


@pytest.mark.parametrize("memfd", [True, False], ids=["memfd", "pipes"])
@pytest.mark.parametrize("argv", [
    ["sh", "-c", "echo out; echo err >&2; exit 3"],
    ["sh", "-c", "printf 'x%.0s' $(seq 1 70000)"],  # more than a pipe holds
    ["sh", "-c", BIG],
    ["printf", "a\\r\\nb\\rc\\n\\303\\251"],  # newlines and UTF-8 decoded as subprocess does
    ["vrrpfw-no-such-tool-here"],
    ["/proc/self/status"],  # not executable
])
def test_started_answers_as_run(argv, memfd, monkeypatch) -> None:
    if not memfd:  # where the system has none: pipes, as run() reads them
        monkeypatch.delattr(os, "memfd_create")
    started = Started(argv, timeout=20)
    if started.proc is not None:
        assert started._piped is not memfd
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


def test_big_output_collected_after_its_time_out_is_whole() -> None:
    """The tool printed more than a pipe holds and ended before its time-out;
    vrrpfw, busy elsewhere, collects it later: its whole output, not a
    time-out.  (Through a pipe it would still wait, unread, to write.)"""
    argv = ["sh", "-c", BIG]
    t = time.monotonic()
    started = Started(argv, timeout=0.2)
    try:
        assert started.proc is not None
        assert ended(started.proc.pid, within=10), "the tool waited for vrrpfw to read its output"
        time.sleep(max(0.0, t + 0.3 - time.monotonic()))  # past its time-out
        ran = started.result()
    finally:
        started.close()
    assert (ran.code, ran.timed_out, ran.exc) == (0, False, None)
    assert (ran.out, ran.err) == ("x" * 200000, "y" * 100000)
    assert children() == []


@pytest.mark.parametrize("argv", [
    ["sleep", "30"],  # hangs
    ["sh", "-c", "head -c 200000 /dev/zero; exec sleep 30"],  # printed more than a pipe holds, then hangs
    ["sh", "-c", "while echo x; do :; done"],  # writes forever
], ids=["hangs", "prints-then-hangs", "writes-forever"])
def test_a_tool_still_running_at_its_time_out_is_killed_then(argv) -> None:
    """Collected before its time-out: killed at it, not later (no second
    wait after the deadline)."""
    t = time.monotonic()
    started = Started(argv, timeout=1.0)
    ran = started.result()
    took = time.monotonic() - t
    assert ran.timed_out and ran.code == 124 and ran.out == ""
    assert str(ran.exc) == f"Command '{argv}' timed out after 1.0 seconds"
    assert 1.0 <= took < 1.8
    assert children() == []


@pytest.mark.parametrize("argv", [
    ["sh", "-c", "head -c 200000 /dev/zero; exec sleep 30"],
    ["sh", "-c", "while echo x; do :; done"],
], ids=["prints-then-hangs", "writes-forever"])
def test_a_tool_still_running_when_collected_late_is_killed_at_once(argv) -> None:
    started = Started(argv, timeout=0.3)
    time.sleep(0.5)
    t = time.monotonic()
    ran = started.result()
    assert time.monotonic() - t < 0.5
    assert ran.timed_out and ran.code == 124
    assert children() == []


def test_output_beyond_the_bound_stops_the_tool() -> None:
    """A runaway writer is stopped at ``most`` bytes (SIGXFSZ) well before
    its time-out, and answers as a failure with none of its cut output."""
    t = time.monotonic()
    started = Started(["yes"], timeout=20, most=1 << 20)
    ran = started.result()
    assert time.monotonic() - t < 10
    assert (ran.code, ran.out, ran.timed_out, ran.exc) == (-25, "", False, None)
    assert ran.err == f"yes: output reached {1 << 20} bytes, the most read: stopped"
    assert not ran.ok
    assert children() == []


NFT_LATE = textwrap.dedent("""
    import json, sys, time
    from vrrpfw.host.run import Started, run
    argv = ["nft", "-j", "list", "table", "inet", "big"]
    t = time.monotonic()
    started = Started(argv, timeout=0.5)
    end = t + 10
    while time.monotonic() < end:  # nft has ended (a zombie), not yet collected
        with open(f"/proc/{started.proc.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    time.sleep(max(0.0, t + 0.6 - time.monotonic()))  # vrrpfw busy past nft's time-out
    ran = started.result()
    alone = run(argv)
    print(json.dumps({"code": ran.code, "timed_out": ran.timed_out, "size": len(ran.out),
                      "same": ran.ok and alone.ok and json.loads(ran.out) == json.loads(alone.out)}))
""")


def test_a_large_nft_listing_collected_late_is_whole() -> None:
    """The real tool: ``nft -j list table`` of 2,000 rules (well over a
    pipe's 64 KiB), started early and collected after its time-out, parses
    to the very listing nft gives when run alone."""
    rules = "".join(f"add rule inet big input ip saddr 192.0.2.{i % 250 + 1} udp dport {1000 + i} accept\n"
                    for i in range(2000))
    with namespace("vrgr") as ns:
        ns.run("nft", "-f", "-", stdin="add table inet big\n"
               "add chain inet big input { type filter hook input priority 0; policy accept; }\n" + rules)
        got = json.loads(ns.run(sys.executable, "-c", NFT_LATE).stdout)
    assert got == {"code": 0, "timed_out": False, "size": got["size"], "same": True}
    assert got["size"] > 4 * 65536


LIMITED = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[2])))
    from vrrpfw.host.run import Started
    ran = Started(["head", "-c", "3000000", "/dev/zero"], timeout=20).result()
    print(json.dumps([ran.code, ran.ok, len(ran.out), ran.err]))
""")


def limited(soft: int, hard: int) -> list:
    """Started in a Python whose file-size limit is (soft, hard), as under
    ``ulimit -f`` or systemd's LimitFSIZE=: [code, ok, len(out), err]."""
    import subprocess

    import vrrpfw

    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(vrrpfw.__file__)))
    proc = subprocess.run([sys.executable, "-c", LIMITED, str(soft), str(hard)], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def test_a_soft_file_size_limit_vrrpfw_inherited_does_not_cut_the_output() -> None:
    """An admin's soft RLIMIT_FSIZE (``ulimit -S -f``, LimitFSIZE=) bounded the
    files a tool writes, never what it prints (a pipe before): a 3 MB
    listing under a 1 MiB soft limit answers whole, as run() answers."""
    assert limited(1 << 20, -1) == [0, True, 3000000, ""]


def test_a_hard_file_size_limit_below_the_bound_does_not_cut_the_output() -> None:
    """``ulimit -f`` sets the hard limit too, which vrrpfw does not raise:
    the output goes to pipes (the limit never cut them), whole, as run()'s."""
    assert limited(1 << 20, 1 << 20) == [0, True, 3000000, ""]


@pytest.mark.parametrize("refused", [False, True], ids=["limited", "prlimit-refused"])
def test_output_at_the_bound_is_never_an_answer(refused, monkeypatch) -> None:
    """A tool that ignores SIGXFSZ and exits 0 after its writes failed, or one
    nothing could limit (prlimit refused: a container's seccomp): output at
    the bound is a failure, not the cut output with exit 0."""
    if refused:
        import resource

        def prlimit(*args):
            raise PermissionError(1, "Operation not permitted")
        monkeypatch.setattr(resource, "prlimit", prlimit)
    argv = ["sh", "-c", "trap '' XFSZ; head -c 2000000 /dev/zero; exit 0"]
    ran = Started(argv, timeout=20, most=1 << 20).result()
    assert (ran.code, ran.ok, ran.out, ran.timed_out) == (-25, False, "", False)
    assert ran.err == f"sh: output reached {1 << 20} bytes, the most read: stopped"
    assert children() == []


def test_without_pidfd_it_answers_and_times_out_alike(monkeypatch) -> None:
    """Before Linux 5.3 (no pidfd_open) the wait falls back to Popen.wait:
    the same answers, the same time-out."""
    monkeypatch.delattr(os, "pidfd_open")
    argv = ["sh", "-c", BIG + "; exit 3"]
    same(Started(argv, timeout=20).result(), run(argv, timeout=20))
    t = time.monotonic()
    ran = Started(["sleep", "30"], timeout=0.5).result()
    assert ran.timed_out and ran.code == 124 and 0.5 <= time.monotonic() - t < 1.3
    assert children() == []


def test_no_descriptor_is_left_open_on_any_path() -> None:
    """Each spool (and pidfd) is closed whether the tool answered, timed
    out, reached its bound, could not start, printed what does not decode,
    or was closed unread."""
    before = sorted(os.listdir("/proc/self/fd"))
    kept = [Started(argv, **kw) for argv, kw in [
        (["echo", "hi"], {}), (["sleep", "30"], {"timeout": 0.1}), (["yes"], {"most": 1 << 16}),
        (["vrrpfw-no-such-tool-here"], {}), (["/proc/self/status"], {})]]  # alive: GC closes nothing
    for started in kept:
        started.result()
    unread, done, bad = Started(["sleep", "30"]), Started(["echo", "x"]), Started(["printf", "\\377"])
    unread.close()
    done.result()
    done.close()
    with pytest.raises(UnicodeDecodeError):
        bad.result()
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert children() == []
