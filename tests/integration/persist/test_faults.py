"""Faults with real processes (issue 9): a run killed with SIGKILL at every
step of a saved-file commit, or while it holds the store's lock; a saved
file on a full and on a read-only filesystem; 20 runs racing on one file.

Every firewall change happens in a namespace the test creates; every file
lives in the test's temporary directory; the small filesystems are tmpfs
mounts made inside a private mount namespace (``unshare --mount``), which
vanish with it (and are unmounted on the way out regardless).  The fault
injection itself is :mod:`faultkit`, loaded into the killed child only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest
from lockdirs import private_lock_dir
from netns import namespace

from vrrpfw.prove.netns import release

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAULTKIT = os.path.join(os.path.dirname(HERE), "faultkit.py")
OURS = "--comment vrrpfw"
MODE, UID, GID = 0o640, 4321, 4322  # not what a new file would get (0600, root)
RACERS = 20


def env(tmp_path):
    """A private xtables lock and a private directory for vrrpfw's store locks."""
    return {"XTABLES_LOCKFILE": str(tmp_path / "xtables.lock"), "VRRPFW_LOCK_DIR": private_lock_dir(tmp_path)}


def drop_policies(ns):
    """An admin's host: INPUT/OUTPUT drop everything but loopback; returns
    the ruleset as iptables-legacy-save prints it (the saved file)."""
    ns.ipt("-P", "INPUT", "DROP")
    ns.ipt("-P", "OUTPUT", "DROP")
    ns.ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    return ns.run("iptables-legacy-save").stdout


def put(path, content):
    """The saved file as the admin left it: content, mode and owner."""
    path.write_bytes(content)
    os.chmod(path, MODE)
    os.chown(path, UID, GID)


def temps(directory, name="rules.v4"):
    return sorted(f for f in os.listdir(directory) if f.startswith(f".{name}.vrrpfw-"))


def ours_at_runtime(ns):
    return [line for line in ns.run("iptables-legacy-save").stdout.splitlines() if OURS in line]


def faulty(ns, spec, *args, env=None):
    """vrrpfw in the namespace, with :mod:`faultkit`'s faults in that process only."""
    return ns.run(sys.executable, FAULTKIT, json.dumps(spec), *args, check=False, env=env, timeout=60)


def iptables_args(iface, path, *extra):
    return ("--iface", iface, "--backend", "iptables", "--persist-file", str(path), *extra)


# -- kill -9 at every step of a commit ----------------------------------------------------------


@pytest.mark.parametrize("command", ["open", "close"])
def test_kill_9_at_every_step_of_a_commit_leaves_old_or_new_file_and_next_run_recovers(tmp_path, command):
    """A trace run lists the steps the commit takes (the candidate checked by
    iptables-legacy-restore, then the real temporary file: mkstemp, each half
    of the write, fsync, chmod, chown, rename, directory fsync).  Then, for
    every step N, a run is SIGKILLed just before step N: the saved file is
    exactly the old one before the rename and exactly the new one after it,
    never a mix, with the admin's mode and owner; a half-written temporary
    file may be left, and the next ordinary run removes it and ends with
    vrrpfw's lines in the file exactly once (open) or not at all (close)."""
    path = tmp_path / "rules.v4"
    e = env(tmp_path)
    with namespace("vrfk") as ns:
        baseline = drop_policies(ns)
        bare = baseline.encode()
        put(path, bare)
        # The state before the killed run, and the file it should write.
        opened_rc, opened_out = ns.vrrpfw_json("open", *iptables_args("eth0", path), env=e)
        assert opened_rc == 0, opened_out
        opened = path.read_bytes()
        assert opened.count(OURS.encode()) == 2
        old, new = (bare, opened) if command == "open" else (opened, bare)

        def reset():
            ns.run("iptables-legacy-restore", stdin=old.decode())  # the runtime that goes with it
            put(path, old)

        reset()
        trace = tmp_path / "trace"
        proc = faulty(ns, {"trace": str(trace)}, command, *iptables_args("eth0", path), env=e)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert path.read_bytes() == new
        steps = trace.read_text().splitlines()
        for expected in ("mkstemp", "write second half", "fsync", "chmod", "chown", "replace",
                         "open directory"):
            assert expected in steps, steps
        renamed_at = steps.index("replace") + 1  # 1-based, as kill_at counts
        half_written = 0

        for n in range(1, len(steps) + 1):
            reset()
            killed_trace = tmp_path / f"trace-{n}"
            proc = faulty(ns, {"kill_at": n, "trace": str(killed_trace)}, command,
                          *iptables_args("eth0", path), env=e)
            where = f"killed before step {n} ({steps[n - 1]})"
            assert proc.returncode == -signal.SIGKILL, f"{where}: {proc.returncode} {proc.stderr}"
            assert killed_trace.read_text().splitlines() == steps[:n], where
            assert path.read_bytes() == (new if n > renamed_at else old), where
            st = path.stat()
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (MODE, UID, GID), where
            left = temps(tmp_path)
            if steps[n - 1] == "write second half":
                assert len(left) == 1, (where, left)
                partial = (tmp_path / left[0]).read_bytes()
                assert 0 < len(partial) < len(new) and new.startswith(partial), where
                half_written += 1

            rc, out = ns.vrrpfw_json(command, *iptables_args("eth0", path), env=e)
            assert rc == 0, (where, out)
            assert temps(tmp_path) == [], where
            assert path.read_bytes() == new, where
            st = path.stat()
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (MODE, UID, GID), where
            assert len(ours_at_runtime(ns)) == (2 if command == "open" else 0), where
            if command == "open":
                assert [r["persisted"] for r in out["rules"]] == ["present", "present"], (where, out)
            else:  # after the rename there is nothing left for close to find
                assert all(r["persisted"] == "absent" for r in out["rules"]), (where, out)
        assert half_written == 2  # the checked candidate and the real temporary file


@pytest.mark.parametrize("backend,name", [("iptables", "rules.v4"), ("nftables", "nftables.conf")])
def test_the_next_run_removes_a_temporary_file_a_killed_run_left(tmp_path, backend, name):
    """What a run killed mid-commit leaves (a half-written `.NAME.vrrpfw-*`
    beside the file) is removed by the next open or close, which holds the
    store's lock; the file itself is edited as usual."""
    path = tmp_path / name
    e = env(tmp_path)
    with namespace("vrft") as ns:
        if backend == "iptables":
            put(path, drop_policies(ns).encode())
        else:
            put(path, NFTABLES_CONF.encode())
            ns.run("nft", "-f", str(path))
        for command in ("open", "close"):
            stale = tmp_path / f".{name}.vrrpfw-k1ll3d"
            stale.write_text("*filter\n-A INPUT -i eth0 -p 112 -m comm")  # cut mid-line
            rc, out = ns.vrrpfw_json(command, "--iface", "eth0", "--backend", backend,
                                     "--persist-file", str(path), env=e)
            assert rc == 0, out
            assert out["changed"] is True
            assert temps(tmp_path, name) == [], (command, os.listdir(tmp_path))


@pytest.mark.parametrize("pause_in", ["_run_layers", "_flush"])
def test_kill_9_while_holding_the_store_lock_does_not_block_the_next_run(tmp_path, pause_in):
    """A run paused with the store's lock held (in the runtime phase, or
    after it, before writing the file) blocks another run (exit 3, nothing
    changed) until it is SIGKILLed; the kernel drops the flock with the
    process, so the next run goes through at once and finishes the job."""
    path = tmp_path / "rules.v4"
    e = env(tmp_path)
    with namespace("vrfl") as ns:
        original = drop_policies(ns).encode()
        put(path, original)
        pause_file = tmp_path / "paused"
        stuck = ns.popen(sys.executable, FAULTKIT,
                         json.dumps({"pause_in": pause_in, "pause_file": str(pause_file)}),
                         "open", *iptables_args("eth0", path), env=e)
        try:
            deadline = time.monotonic() + 30
            while not pause_file.exists():
                assert stuck.poll() is None, stuck.communicate()
                assert time.monotonic() < deadline, "the paused run never got there"
                time.sleep(0.02)
            pid = int(pause_file.read_text())
            assert pid == stuck.pid  # ip netns exec execs: the pid is vrrpfw's own

            waited = ns.vrrpfw("open", *iptables_args("eth1", path, "--lock-timeout", "0.5"), env=e)
            assert waited.returncode == 3, waited.stdout + waited.stderr
            assert "lock" in waited.stderr and "nothing was changed" in waited.stderr, waited.stderr
            assert [line for line in ours_at_runtime(ns) if "eth1" in line] == []
            assert path.read_bytes() == original

            os.kill(pid, signal.SIGKILL)
            assert stuck.wait(timeout=10) == -signal.SIGKILL
        finally:
            release(stuck)
        assert path.read_bytes() == original
        assert len(ours_at_runtime(ns)) == (2 if pause_in == "_flush" else 0)

        started = time.monotonic()
        rc, out = ns.vrrpfw_json("open", *iptables_args("eth0", path, "--lock-timeout", "5"), env=e)
        assert rc == 0, out
        assert time.monotonic() - started < 4  # not the lock timeout: nothing waited on a dead holder
        assert out["changed"] is True
        assert {r["persisted"] for r in out["rules"]} == {"present"}
        assert len(ours_at_runtime(ns)) == 2
        assert path.read_text().count(OURS) == 2
        assert temps(tmp_path) == []


# -- a full and a read-only filesystem ----------------------------------------------------------

SMALL_FS = r"""
set -u
mnt=$1 src=$2 out=$3 how=$4; shift 4
mount -t tmpfs -o size=64k,mode=0755 vrrpfw-fault-test "$mnt" || exit 90
trap 'umount "$mnt"' EXIT
cp -p "$src" "$mnt/rules.v4" || exit 91
if [ "$how" = full ]; then
    dd if=/dev/zero of="$mnt/filler" bs=4096 count=64 2>/dev/null
    if printf x 2>/dev/null >"$mnt/probe"; then exit 92; fi  # not full
    rm -f "$mnt/probe"
else
    mount -o remount,ro "$mnt" || exit 93
    if touch "$mnt/probe" 2>/dev/null; then exit 94; fi  # not read-only
fi
for run in 1 2 3; do  # 3: a dry run predicts the same refusal
    case $run in 1) "$@" --json;; 2) "$@";; 3) "$@" --dry-run;; esac >"$out/stdout$run" 2>"$out/stderr$run"
    echo $? >"$out/rc$run"
    ls -A "$mnt" >"$out/listing$run"
done
cp "$mnt/rules.v4" "$out/after"
stat -c '%a %u %g' "$mnt/rules.v4" >"$out/stat"
"""


@pytest.mark.parametrize("how,why", [("full", "no space left"),
                                     ("read-only", "read-only filesystem")])
def test_saved_file_on_a_full_or_read_only_filesystem(tmp_path, how, why):
    """The file could not be replaced: vrrpfw sees that when it reads the
    file, before the runtime is touched, and refuses with one line naming
    the path and the reason (exit 3: nothing changed).  The old file is
    byte for byte what it was, with no temporary file left beside it, and
    the runtime has none of vrrpfw's rules.  Running again says the same."""
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    src = tmp_path / "rules.v4"
    e = env(tmp_path)
    with namespace("vrfs") as ns:
        original = drop_policies(ns).encode()
        put(src, original)
        saved = mnt / "rules.v4"
        argv = ["ip", "netns", "exec", ns.name, sys.executable, "-m", "vrrpfw", "open",
                *iptables_args("eth0", saved)]
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", SMALL_FS, "sh",
             str(mnt), str(src), str(out), how, *argv],
            capture_output=True, text=True, timeout=60, env={**os.environ, **e})
        assert proc.returncode == 0, (proc.returncode, proc.stderr)
        assert os.listdir(mnt) == []  # the tmpfs was never visible outside its mount namespace
        assert ours_at_runtime(ns) == []

    assert (out / "after").read_bytes() == original
    assert (out / "stat").read_text().split() == [f"{MODE:o}", str(UID), str(GID)]
    for run in (1, 2, 3):
        listing = (out / f"listing{run}").read_text().split()
        assert listing == (["filler", "rules.v4"] if how == "full" else ["rules.v4"]), listing
        assert (out / f"rc{run}").read_text().strip() == "3", (out / f"stderr{run}").read_text()
        stderr = (out / f"stderr{run}").read_text()
        assert "Traceback" not in stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and str(saved) in lines[0] and why in lines[0], lines
        assert "nothing was changed" in lines[0]
    result = json.loads((out / "stdout1").read_text())
    assert result["exit_code"] == 3 and why in result["error"], result


# -- 20 runs racing on one file -------------------------------------------------------------------


def race(ns, tmp_path, tag, argvs, e):
    """Start every argv at the same moment (each waits, imported, for a
    common start signal); return their CompletedProcess-like results."""
    go = tmp_path / f"go-{tag}"
    readies = [tmp_path / f"ready-{tag}-{i}" for i in range(len(argvs))]
    procs = [ns.popen(sys.executable, FAULTKIT, json.dumps({"ready": str(r), "go": str(go)}), *argv, env=e)
             for r, argv in zip(readies, argvs)]
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in readies):
            dead = [p.communicate() for p in procs if p.poll() is not None]
            assert not dead, dead
            assert time.monotonic() < deadline, "the racers never got ready"
            time.sleep(0.01)
        go.touch()
        return [(p.wait(timeout=120),) + p.communicate(timeout=10) for p in procs]
    finally:
        for p in procs:
            release(p)


def iface(i):
    return f"eth{i}"


def test_twenty_concurrent_opens_share_one_rules_v4_and_keep_every_line(tmp_path):
    """20 runs on 20 interfaces, one rules.v4, started together: all exit 0,
    the file keeps the 40 lines (in and out per interface, once each) and
    the admin's lines byte for byte, the runtime has the 40 rules; then 20
    concurrent closes give back the original file byte for byte."""
    path = tmp_path / "rules.v4"
    e = env(tmp_path)
    with namespace("vrfr") as ns:
        original = drop_policies(ns).encode()
        put(path, original)
        lock = ("--lock-timeout", "60")  # runs are serialised by the store lock: the last one waits
        opened = race(ns, tmp_path, "open", [("open", *iptables_args(iface(i), path, *lock))
                                             for i in range(RACERS)], e)
        for i, (rc, stdout, stderr) in enumerate(opened):
            assert rc == 0, (iface(i), stdout, stderr)
        text = path.read_text()
        ours = [line for line in text.splitlines() if OURS in line]
        assert len(ours) == 2 * RACERS, text
        for i in range(RACERS):
            for flag in ("-i", "-o"):
                assert sum(f" {flag} {iface(i)} " in line for line in ours) == 1, (iface(i), flag, text)
        assert "".join(line for line in text.splitlines(True) if OURS not in line).encode() == original
        ns.run("iptables-legacy-restore", "--test", stdin=text)
        assert sorted(line.replace(" -p vrrp ", " -p 112 ") for line in ours_at_runtime(ns)) == sorted(ours)
        assert temps(tmp_path) == []

        closed = race(ns, tmp_path, "close", [("close", *iptables_args(iface(i), path, *lock))
                                              for i in range(RACERS)], e)
        for i, (rc, stdout, stderr) in enumerate(closed):
            assert rc == 0, (iface(i), stdout, stderr)
        assert path.read_bytes() == original
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (MODE, UID, GID)
        assert ours_at_runtime(ns) == []
        assert temps(tmp_path) == []


NFTABLES_CONF = """#!/usr/sbin/nft -f
flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiifname "lo" accept
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t}
}
"""


def nft_ours_at_runtime(ns):
    return [line.strip() for line in ns.run("nft", "list", "ruleset").stdout.splitlines()
            if 'comment "vrrpfw"' in line]


def test_twenty_concurrent_opens_share_one_nftables_conf_and_keep_every_line(tmp_path):
    """The same race on the nftables backend and an nftables.conf: 40
    `insert rule` lines in vrrpfw's block, 40 rules at runtime, and 20
    concurrent closes give the file back byte for byte."""
    path = tmp_path / "nftables.conf"
    e = env(tmp_path)
    with namespace("vrfn") as ns:
        original = NFTABLES_CONF.encode()
        put(path, original)
        ns.run("nft", "-f", str(path))
        lock = ("--lock-timeout", "60")

        def args(i):
            return ("--iface", iface(i), "--backend", "nftables", "--persist-file", str(path), *lock)

        opened = race(ns, tmp_path, "open", [("open", *args(i)) for i in range(RACERS)], e)
        for i, (rc, stdout, stderr) in enumerate(opened):
            assert rc == 0, (iface(i), stdout, stderr)
        text = path.read_text()
        assert text.startswith(NFTABLES_CONF)
        ours = [line for line in text.splitlines() if line.startswith("insert rule ") and '"vrrpfw"' in line]
        assert len(ours) == 2 * RACERS, text
        for i in range(RACERS):
            for key, chain in (("iifname", "input"), ("oifname", "output")):
                assert sum(bool(re.match(rf'insert rule inet filter {chain} {key} "{iface(i)}" ', line))
                           for line in ours) == 1, (iface(i), chain, text)
        ns.run("nft", "-c", "-f", str(path))
        runtime = nft_ours_at_runtime(ns)
        assert len(runtime) == 2 * RACERS, runtime
        for i in range(RACERS):
            assert sum(f'iifname "{iface(i)}" ' in line for line in runtime) == 1, runtime
            assert sum(f'oifname "{iface(i)}" ' in line for line in runtime) == 1, runtime
        assert temps(tmp_path, "nftables.conf") == []

        closed = race(ns, tmp_path, "close", [("close", *args(i)) for i in range(RACERS)], e)
        for i, (rc, stdout, stderr) in enumerate(closed):
            assert rc == 0, (iface(i), stdout, stderr)
        assert path.read_bytes() == original
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (MODE, UID, GID)
        assert nft_ours_at_runtime(ns) == []
        assert temps(tmp_path, "nftables.conf") == []
