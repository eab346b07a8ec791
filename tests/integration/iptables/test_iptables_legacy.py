"""The iptables backend against real iptables-legacy, in namespaces, with
real VRRP packets.  Nothing here touches the root namespace's firewall or
/etc: every vrrpfw call names a temporary persist file or --no-persist."""

from __future__ import annotations

import json
import os
import sys

import pytest
from netns import adverts, blocked_inbound, blocked_outbound, namespace, pair

import vrrpfw.api as vrrpfw_api

pytestmark = pytest.mark.integration

OURS = "--comment vrrpfw"


def lock_env(tmp_path):
    """A private xtables lock, so tests never contend with the host's iptables."""
    return {"XTABLES_LOCKFILE": str(tmp_path / "xtables.lock")}


def vrrpfw_rules(ns, chain):
    return [line for line in ns.ipt("-S", chain).splitlines() if OURS in line]


def drop_everything(ns, save_to=None):
    """INPUT/OUTPUT drop all but loopback; with ``save_to``, saved there as
    netfilter-persistent would (vrrpfw only edits a file that already
    restores the filter table)."""
    ns.ipt("-P", "INPUT", "DROP")
    ns.ipt("-P", "OUTPUT", "DROP")
    ns.ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    if save_to is not None:
        with open(save_to, "w") as f:
            f.write(ns.run("iptables-legacy-save").stdout)


def test_adverts_blocked_then_delivered_then_blocked_again(tmp_path):
    rules = str(tmp_path / "rules.v4")
    with pair() as p:
        drop_everything(p.host, rules)
        inbound = adverts(p.peer, p.peer_if, p.host, p.host_if)
        outbound = adverts(p.host, p.host_if, p.peer, p.peer_if)
        assert inbound["wire"] == 20 and inbound["delivered"] == 0, inbound
        assert outbound["delivered"] == 0, outbound

        proc = p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", rules)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        assert adverts(p.host, p.host_if, p.peer, p.peer_if)["delivered"] == 20
        check = p.host.vrrpfw("check", "--iface", p.host_if, "--persist-file", rules)
        assert check.returncode == 0, check.stdout

        proc = p.host.vrrpfw("close", "--iface", p.host_if, "--persist-file", rules)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 0
        assert adverts(p.host, p.host_if, p.peer, p.peer_if)["delivered"] == 0
        assert vrrpfw_rules(p.host, "INPUT") == vrrpfw_rules(p.host, "OUTPUT") == []
        check = p.host.vrrpfw("check", "--iface", p.host_if, "--persist-file", rules)
        assert check.returncode == 1


def test_drop_outside_filter_is_opened_and_persisted_where_it_is(tmp_path):
    """A raw PREROUTING drop decides before filter INPUT is reached: check
    says missing (not "allowed"), open opens both chains, and the saved
    file restores both into a fresh host."""
    rules = tmp_path / "rules.v4"
    with pair() as p:
        drop_everything(p.host)
        p.host.ipt("-t", "raw", "-A", "PREROUTING", "-p", "112", "-j", "DROP")
        rules.write_text(p.host.legacy_save() + "\n")  # the admin saved this ruleset
        assert blocked_inbound(p)
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--persist-file", str(rules))
        assert rc == 1 and out["rules"][0]["runtime"] == "missing"
        assert "legacy raw PREROUTING: dropped by" in out["rules"][0]["detail"]
        assert p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(rules)).returncode == 0
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        assert p.host.run("iptables-legacy", "-t", "raw", "-S", "PREROUTING").stdout.count("vrrpfw") == 1
        saved = rules.read_text()
        assert "*raw" in saved and saved.count("--comment vrrpfw") == 3  # raw, INPUT, OUTPUT
    assert "-A PREROUTING -p vrrp -j DROP" in saved
    with pair() as fresh:  # boot: the saved file is all there is
        ours = [line for line in saved.splitlines(True) if OURS in line]
        fresh.host.run("iptables-legacy-restore", stdin="".join(
            line for line in saved.splitlines(True) if line not in ours))
        assert blocked_inbound(fresh)  # the file without vrrpfw's lines keeps VRRP out
        fresh.host.run("iptables-legacy-restore", stdin=saved.replace(p.host_if, fresh.host_if))
        assert "-A PREROUTING -p vrrp -j DROP" in fresh.host.legacy_save()
        assert adverts(fresh.peer, fresh.peer_if, fresh.host, fresh.host_if)["delivered"] == 20


def test_open_three_times_is_idempotent(tmp_path):
    rules = str(tmp_path / "rules.v4")
    with pair() as p:
        drop_everything(p.host, rules)
        changed = []
        for _ in range(3):
            rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", rules)
            assert rc == 0, out
            changed.append(out["changed"])
        assert changed == [True, False, False]
        # Reading rules must not instantiate other legacy tables (nat, raw, ...).
        assert p.host.run("cat", "/proc/net/ip_tables_names").stdout.split() == ["filter"]
        assert len(vrrpfw_rules(p.host, "INPUT")) == 1
        assert len(vrrpfw_rules(p.host, "OUTPUT")) == 1
        with open(rules) as f:
            assert f.read().count(OURS) == 2
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--persist-file", rules)
        assert rc == 0 and out["changed"] is True
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--persist-file", rules)
        assert rc == 0 and out["changed"] is False


def test_equivalent_admin_rule_counts_and_is_never_removed(tmp_path):
    with pair() as p:
        drop_everything(p.host)
        assert blocked_inbound(p)
        p.host.ipt("-A", "INPUT", "-i", p.host_if, "-p", "vrrp", "-j", "ACCEPT")
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0
        inbound = out["rules"][0]
        assert inbound["runtime"] == "allowed-by-other" and inbound["action"] == "none"
        assert "-p vrrp -j ACCEPT" in inbound["detail"]
        assert vrrpfw_rules(p.host, "INPUT") == []
        assert len(vrrpfw_rules(p.host, "OUTPUT")) == 1
        rc, out = p.host.vrrpfw_json("close", "--no-persist")
        assert rc == 0
        assert f"-A INPUT -i {p.host_if} -p vrrp -j ACCEPT" in p.host.ipt("-S", "INPUT")
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20


def test_close_sweeps_every_chain_and_keeps_hand_made_twins(tmp_path):
    """A vrrpfw rule an admin moved into a user chain (at runtime and in the
    saved file) is still vrrpfw's: close removes it; the admin's identical
    rule without the comment stays; a second close changes nothing."""
    path = tmp_path / "rules.v4"
    with pair() as p:
        drop_everything(p.host)
        assert blocked_inbound(p)
        p.host.ipt("-N", "helper")
        p.host.ipt("-A", "INPUT", "-j", "helper")
        spec = ["-d", "224.0.0.18/32", "-i", p.host_if, "-p", "vrrp"]
        p.host.ipt("-A", "helper", *spec, "-m", "comment", "--comment", "vrrpfw", "-j", "ACCEPT")
        p.host.ipt("-A", "helper", *spec, "-j", "ACCEPT")
        saved = p.host.legacy_save() + "\n"
        path.write_text(saved)
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--persist-file", str(path))
        assert out["rules"][0]["runtime"] == "allowed-by-other"  # not where vrrpfw writes
        assert out["rules"][0]["persisted"] == "not-managed"
        rc, out = p.host.vrrpfw_json("close", "--persist-file", str(path), "--dry-run")
        assert rc == 0 and out["planned"] == [
            f"iptables-legacy -t filter -D helper -d 224.0.0.18/32 -i {p.host_if} -p vrrp "
            "-m comment --comment vrrpfw -j ACCEPT"], out
        assert out["rules"][0]["persist_action"] == "delete"
        assert p.host.legacy_save() + "\n" == saved and path.read_text() == saved
        rc, out = p.host.vrrpfw_json("close", "--persist-file", str(path))
        assert rc == 0 and out["changed"] is True, out
        assert vrrpfw_rules(p.host, "helper") == []
        assert p.host.ipt("-S", "helper").splitlines()[1:] == [
            f"-A helper -d 224.0.0.18/32 -i {p.host_if} -p vrrp -j ACCEPT"]
        assert OURS not in path.read_text()
        assert path.read_text() == "".join(line for line in saved.splitlines(True) if OURS not in line)
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20  # the twin still works
        p.host.ipt("-D", "helper", *spec, "-j", "ACCEPT")
        assert blocked_inbound(p)  # and it was the twin that did
        p.host.ipt("-A", "helper", *spec, "-j", "ACCEPT")
        rc, out = p.host.vrrpfw_json("close", "--persist-file", str(path))
        assert rc == 0 and out["changed"] is False, out


def test_shadowed_rule_is_reported_and_fixed(tmp_path):
    with pair() as p:
        drop_everything(p.host)
        assert p.host.vrrpfw("open", "--iface", p.host_if, "--no-persist").returncode == 0
        # Someone later puts a drop above us, and a jump to a chain that drops VRRP.
        p.host.ipt("-I", "INPUT", "1", "-i", p.host_if, "-j", "DROP")
        p.host.ipt("-N", "EGRESS")
        p.host.ipt("-A", "EGRESS", "-p", "112", "-j", "REJECT")
        p.host.ipt("-I", "OUTPUT", "1", "-j", "EGRESS")
        assert blocked_inbound(p) and blocked_outbound(p)

        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 1
        states = {r["chain"]: r for r in out["rules"]}
        assert states["INPUT"]["runtime"] == "shadowed"
        assert f"-A INPUT -i {p.host_if} -j DROP" in states["INPUT"]["detail"]
        assert states["OUTPUT"]["runtime"] == "shadowed"
        assert "-A EGRESS -p vrrp -j REJECT" in states["OUTPUT"]["detail"]

        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["changed"] is True
        assert [r["action"] for r in out["rules"]] == ["move", "move"]
        assert OURS in p.host.ipt("-S", "INPUT").splitlines()[1]  # first rule after -P
        assert len(vrrpfw_rules(p.host, "INPUT")) == 1
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        assert adverts(p.host, p.host_if, p.peer, p.peer_if)["delivered"] == 20


FOREIGN = (
    "# Generated by iptables-save v1.8.9 on Tue Nov 24 10:00:00 2026\n"
    "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth9 -j MASQUERADE\nCOMMIT\n"
    "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    "# the admin's note, kept verbatim\t \n"
    "-A INPUT -i lo -j ACCEPT\n"
    "-A INPUT -s 198.51.100.7/32 -p tcp -m tcp --dport 22 -m comment --comment \"jump host\" -j ACCEPT\n"
    "COMMIT\n# Completed\n"
)


def test_persist_keeps_foreign_lines_and_the_file_loads(tmp_path):
    path = tmp_path / "rules.v4"
    path.write_bytes(FOREIGN.encode())
    os.chmod(path, 0o640)
    with pair() as p:
        drop_everything(p.host)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(path))
        assert rc == 0 and out["persist"][0]["changed"] is True
        assert [r["persisted"] for r in out["rules"]] == ["present", "present"]
        new = path.read_bytes().decode()
        assert "".join(line for line in new.splitlines(True) if OURS not in line) == FOREIGN
        assert oct(path.stat().st_mode & 0o777) == oct(0o640)
        assert sorted(os.listdir(tmp_path)) == ["rules.v4"]  # no temp file left

    # The edited file restores in a fresh namespace and lets VRRP in there.
    with pair() as p2:
        p2.host.run("iptables-legacy-restore", stdin=FOREIGN)
        assert blocked_inbound(p2)  # the admin's file alone keeps VRRP out
        restored = new.replace(f" {p.host_if} ", f" {p2.host_if} ")
        p2.host.run("iptables-legacy-restore", stdin=restored)
        assert OURS in p2.host.ipt("-S", "INPUT")
        assert adverts(p2.peer, p2.peer_if, p2.host, p2.host_if)["delivered"] == 20

    with pair() as p3:
        p3.host.run("iptables-legacy-restore", "--test", stdin=new)
        rc, out = p3.host.vrrpfw_json("close", "--persist-file", str(path))
        assert rc == 0
        assert path.read_bytes() == FOREIGN.encode()  # byte for byte what it was


def test_corrupt_persist_file_is_refused_and_nothing_changes(tmp_path):
    path = tmp_path / "rules.v4"
    corrupt = b"*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n"  # no COMMIT
    path.write_bytes(corrupt)
    mtime = path.stat().st_mtime_ns
    with pair() as p:
        drop_everything(p.host)
        before = p.host.legacy_save()
        proc = p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(path))
        assert proc.returncode == 3
        assert proc.stderr.strip().splitlines() == [
            f"vrrpfw: error: {path}: table *filter has no COMMIT line"]
        assert "Traceback" not in proc.stderr
        assert p.host.legacy_save() == before
        assert path.read_bytes() == corrupt and path.stat().st_mtime_ns == mtime
        # A directory where the file should be: a usage error, nothing read.
        proc = p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(tmp_path))
        assert proc.returncode == 2 and "is a directory" in proc.stderr
        assert p.host.legacy_save() == before


def test_a_missing_saved_file_is_reported_not_created(tmp_path):
    """No file, no *filter to edit: the runtime change lands, the rules are
    reported not persisted (exit 1) and the file is not created (a new
    *filter would flush the admin's filter table at the next restore).
    A write that fails is covered by test_saved_files and test_faults."""
    path = tmp_path / "rules.v4"
    with pair() as p:
        drop_everything(p.host)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(path))
        assert rc == 1
        assert out["changed"] is True and out["ok"] is False
        assert [r["runtime"] for r in out["rules"]] == ["allowed", "allowed"]
        assert [r["persisted"] for r in out["rules"]] == ["missing", "missing"]
        assert "does not exist" in out["persist"][0]["note"] and out["persist"][0]["error"] is None
        assert not path.exists()
        plain = p.host.vrrpfw("check", "--iface", p.host_if, "--persist-file", str(path))
        assert plain.returncode == 1 and "persisted missing" in plain.stdout


def test_dry_run_prints_exact_rules_and_changes_nothing(tmp_path):
    path = tmp_path / "rules.v4"
    with pair() as p:
        drop_everything(p.host, path)
        original = path.read_text()
        before = p.host.legacy_save()
        proc = p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(path), "--dry-run")
        assert proc.returncode == 0
        assert (f"iptables-legacy -t filter -I INPUT 1 -d 224.0.0.18/32 -i {p.host_if} -p 112 "
                "-m comment --comment vrrpfw -j ACCEPT") in proc.stdout
        assert f"+-A OUTPUT -d 224.0.0.18/32 -o {p.host_if} -p 112" in proc.stdout  # the file diff
        assert p.host.legacy_save() == before
        assert path.read_text() == original
        assert p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(path)).returncode == 0
        opened, saved = p.host.legacy_save(), path.read_text()
        rc, out = p.host.vrrpfw_json("close", "--persist-file", str(path), "--dry-run")
        assert rc == 0 and len(out["planned"]) == 2, out
        assert [r["persist_action"] for r in out["rules"]] == ["delete", "delete"]
        # what the real close would leave (dry run predicts the real run)
        assert [r["persisted"] for r in out["rules"]] == ["absent", "absent"]
        assert [r["runtime"] for r in out["rules"]] == ["absent", "absent"]
        assert f"--A INPUT -d 224.0.0.18/32 -i {p.host_if} -p 112" in out["diff"]
        assert p.host.legacy_save() == opened and path.read_text() == saved


# Runs the vrrpfw CLI with python-iptables' Table.commit wrapped: every
# libiptc commit vrrpfw makes is counted (one JSON line per commit in LOG:
# {"ok": bool}), and with RACE=first or RACE=every a foreign writer on its own
# xtables lock file adds a rule to filter INPUT just before the commit, so the
# kernel sees the table changed under vrrpfw's snapshot (EAGAIN) for real.
# NO_RETRY=1 sets vrrpfw.run.COMMIT_ATTEMPTS to 1: retries disabled.
COUNTING_VRRPFW = r"""
import json, os, subprocess, sys
from vrrpfw.judge.read.iptc_loader import load_iptc
iptc = load_iptc()
log, race, their_lock = os.environ["LOG"], os.environ.get("RACE", "never"), os.environ.get("THEIR_LOCK", "")
real = iptc.Table.commit
seen = []
def commit(self):
    seen.append(1)
    if race == "every" or (race == "first" and len(seen) == 1):
        n = len(seen)
        subprocess.run(["iptables-legacy", "-w", "-A", "INPUT", "-s", f"198.51.100.{n}/32", "-p", "tcp",
                        "--dport", str(20000 + n), "-j", "ACCEPT"],
                       check=True, env=dict(os.environ, XTABLES_LOCKFILE=their_lock))
    ok = False
    try:
        result = real(self)
        ok = True
        return result
    finally:
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "ok": ok}) + "\n")
iptc.Table.commit = commit
if os.environ.get("NO_RETRY") == "1":
    import vrrpfw.run
    if not hasattr(vrrpfw.run, "COMMIT_ATTEMPTS"):
        sys.exit("test wrapper: vrrpfw.run.COMMIT_ATTEMPTS is gone; update the retry test")
    vrrpfw.run.COMMIT_ATTEMPTS = 1
from vrrpfw.cli import main
sys.argv[0] = "vrrpfw"
sys.exit(main())
"""


def commits(log):
    """The outcome of each libiptc commit COUNTING_VRRPFW logged, in order."""
    if not log.exists():
        return []
    return [json.loads(line)["ok"] for line in log.read_text().splitlines()]


def commits_by_process(log):
    """{pid: [outcome of each commit that process made, in order]}."""
    by_pid = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        entry = json.loads(line)
        by_pid.setdefault(entry["pid"], []).append(entry["ok"])
    return by_pid


def race_with_writer(tmp_path, writer_env, our_env, add_rule):
    """200 foreign rules added by ``add_rule`` (a shell command using $i) in one
    process, while two loops alternate vrrpfw open and close; at the end every
    foreign rule must be there once and vrrpfw's rules exactly once per chain.
    Returns how many vrrpfw calls each loop made while the writer ran, and the
    outcome of every libiptc commit those calls made (see COUNTING_VRRPFW)."""
    done = tmp_path / "writer-done"
    log = tmp_path / "commits.log"
    writer_script = f"for i in $(seq 1 200); do {add_rule}; sleep 0.005; done; touch {done}"
    loop_script = (
        f"n=0; while [ ! -e {done} ]; do for c in open close; do "
        f'{sys.executable} -c "$COUNTING_VRRPFW" $c --iface IFACE --no-persist >/dev/null || exit 1; '
        "n=$((n+1)); done; done; echo $n")
    loop_env = dict(our_env, COUNTING_VRRPFW=COUNTING_VRRPFW, LOG=str(log))
    with pair() as p:
        p.host.ipt("-P", "INPUT", "DROP")
        loops = [p.host.popen("bash", "-c", loop_script.replace("IFACE", p.host_if), env=loop_env)
                 for _ in range(2)]
        writer = p.host.popen("bash", "-c", writer_script, env=writer_env)
        assert writer.wait(timeout=300) == 0, writer.stderr.read() if writer.stderr else ""
        calls = []
        for loop in loops:
            out, err = loop.communicate(timeout=120)
            assert loop.returncode == 0, err
            calls.append(int(out.strip()))
        assert p.host.vrrpfw("open", "--iface", p.host_if, "--no-persist", env=our_env).returncode == 0
        ports = [line for line in p.host.ipt("-S", "INPUT").splitlines() if "--dport" in line]
        assert len(ports) == 200 and len(set(ports)) == 200
        assert len(vrrpfw_rules(p.host, "INPUT")) == 1
        # OUTPUT's policy ACCEPT lets adverts out, but open pins its rule there too, once.
        assert len(vrrpfw_rules(p.host, "OUTPUT")) == 1
    return calls, commits_by_process(log)


ADD_RULE = ("iptables-legacy -w -A INPUT -s 198.51.100.$((i % 250))/32 "
            "-p tcp --dport $((10000 + i)) -j ACCEPT")


def test_concurrent_iptables_writer_loses_nothing(tmp_path):
    env = lock_env(tmp_path)
    calls, by_pid = race_with_writer(tmp_path, env, env, ADD_RULE + " || exit 1")
    assert sum(calls) >= 6, f"too little overlap to prove anything: {calls}"
    # The writer takes the same lock, so no commit of vrrpfw's was ever refused
    # (a retry here would mean vrrpfw wrote without holding the lock).
    outcomes = [ok for per_call in by_pid.values() for ok in per_call]
    assert outcomes and all(outcomes), by_pid


def test_writer_ignoring_the_lock_is_survived_by_retrying(tmp_path):
    """A writer on another lock file races us for real: libiptc commits that
    find the table changed fail (EAGAIN/EINVAL), and vrrpfw re-reads and retries.
    The race is timing-dependent (6 to 10 refused commits per run here); the
    test fails if none was refused, since then it tested no retry at all.
    test_commit_refused_by_a_concurrent_change_is_retried makes the refusal
    happen for certain and counts the retries."""
    theirs = {"XTABLES_LOCKFILE": str(tmp_path / "their.lock")}
    retrying = f"until {ADD_RULE} 2>/dev/null; do sleep 0.01; done; sleep 0.015"
    calls, by_pid = race_with_writer(tmp_path, theirs, lock_env(tmp_path), retrying)
    assert sum(calls) >= 6, f"too little overlap to prove anything: {calls}"
    # Calls whose commit the kernel refused, and which still exited 0 (the loops
    # stop at the first failed call): they re-read and retried.  A refused
    # commit can stand alone ([False]): its replace landed and only the counter
    # update failed (EINVAL), so the re-read finds nothing left to do.
    retried = [per_call for per_call in by_pid.values() if False in per_call]
    assert retried, f"no commit was ever refused, so no retry was tested ({calls} calls, {by_pid})"


def test_commit_refused_by_a_concurrent_change_is_retried(tmp_path):
    """A writer that ignores vrrpfw's lock changes filter INPUT between
    vrrpfw's read and its commit, every time: the kernel refuses the commit
    (the table is not the one vrrpfw read).  vrrpfw must re-read and commit
    again, keep the foreign rule, and give up (exit 3, nothing of its own
    half-done) only when the writer never stops."""
    their_lock = str(tmp_path / "their.lock")
    with pair() as p:
        drop_everything(p.host)

        def run(race, *extra_env):
            log = tmp_path / f"commits-{race}-{len(list(tmp_path.iterdir()))}.log"
            env = dict(lock_env(tmp_path), LOG=str(log), RACE=race, THEIR_LOCK=their_lock)
            env.update(extra_env)
            proc = p.host.run(sys.executable, "-c", COUNTING_VRRPFW, "open", "--iface", p.host_if,
                              "--no-persist", env=env, check=False)
            return proc, commits(log)

        def foreign():
            return [line for line in p.host.ipt("-S", "INPUT").splitlines() if "-p tcp" in line]

        # Retries disabled: the same race makes the run fail.  So the race is
        # real, and the run below can only pass by retrying.
        proc, outcomes = run("first", ("NO_RETRY", "1"))
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert outcomes == [False], outcomes
        assert vrrpfw_rules(p.host, "INPUT") == vrrpfw_rules(p.host, "OUTPUT") == []
        assert len(foreign()) == 1
        assert blocked_inbound(p)

        # Raced once: refused, re-read, committed again.
        proc, outcomes = run("first")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert outcomes == [False, True], outcomes
        assert len(vrrpfw_rules(p.host, "INPUT")) == len(vrrpfw_rules(p.host, "OUTPUT")) == 1
        assert len(foreign()) == 2  # theirs, from both runs, kept
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        assert p.host.vrrpfw("close", "--no-persist", env=lock_env(tmp_path)).returncode == 0

        # Raced on every commit: a bounded number of attempts, then exit 3.
        proc, outcomes = run("every")
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert len(outcomes) > 1 and not any(outcomes), outcomes
        assert len(outcomes) == getattr(vrrpfw_api, "COMMIT_ATTEMPTS", len(outcomes))
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "kept changing" in lines[0], lines
        assert vrrpfw_rules(p.host, "INPUT") == vrrpfw_rules(p.host, "OUTPUT") == []
        assert len(foreign()) == 2 + len(outcomes)


def test_lock_held_too_long_is_exit_3_and_no_change(tmp_path):
    env = lock_env(tmp_path)
    holder_code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); "
                   "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)")
    with pair() as p:
        drop_everything(p.host)
        holder = p.host.popen(sys.executable, "-c", holder_code, env["XTABLES_LOCKFILE"])
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            before = p.host.legacy_save()
            proc = p.host.vrrpfw("open", "--iface", p.host_if, "--no-persist",
                                 "--lock-timeout", "0.5", env=env)
            assert proc.returncode == 3
            assert "held the xtables lock" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
            assert p.host.legacy_save() == before
            # Reading needs no lock: check still answers.
            assert p.host.vrrpfw("check", "--iface", p.host_if, "--no-persist", env=env).returncode == 1
        finally:
            holder.kill()
            holder.wait()


BAD_INPUTS = [
    (["open"], "give --iface"),
    (["open", "--iface", ""], "empty"),
    (["open", "--iface", "eth/0"], "'/'"),
    (["open", "--iface", "eth0:1"], "':'"),
    (["open", "--iface", "a b"], "' '"),
    (["open", "--iface", "x" * 16], "at most 15"),
    (["open", "--iface", ".."], "not allowed"),
    (["open", "--iface", "eth+"], "wildcard"),
    (["open", "--iface", "eth0", "--group", "192.0.2.1"], "not a multicast address"),
    (["open", "--iface", "eth0", "--group", "224.0.0.300"], "not an IPv4 or IPv6 address"),
    (["open", "--iface", "eth0", "--backend", "ipfw"], "'ipfw' is not one of 'auto', 'iptables'"),
    (["open", "--iface", "eth0", "--lock-timeout", "x"], "lock-timeout"),
    (["close", "--iface", "a/b"], "'/'"),
    (["check", "--group", "10.1.1.1", "--iface", "eth0"], "multicast"),
]


@pytest.mark.parametrize("args, words", BAD_INPUTS, ids=[" ".join(a) or "empty" for a, _ in BAD_INPUTS])
def test_bad_input_exit_2_clear_line_no_change(tmp_path, args, words):
    with namespace() as ns:
        drop_everything(ns)
        before = ns.legacy_save()
        proc = ns.vrrpfw(*args, "--persist-file", str(tmp_path / "rules.v4"))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vrrpfw: error:") and words in lines[0], lines
        assert proc.stdout == ""
        assert ns.legacy_save() == before
        assert not (tmp_path / "rules.v4").exists()


def test_without_net_admin_is_exit_3(tmp_path):
    """Root without CAP_NET_ADMIN (a confined container): libiptc is refused."""
    with namespace() as ns:
        drop_everything(ns)
        proc = ns.run("setpriv", "--inh-caps=-all", "--bounding-set=-all",
                      sys.executable, "-m", "vrrpfw", "check", "--iface", "eth0",
                      "--backend", "iptables", "--no-persist", check=False)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: cannot read the legacy filter table")
        assert "Traceback" not in proc.stderr


def test_hybrid_legacy_and_nft_auto_opens_both_layers(tmp_path):
    """Legacy INPUT DROP and an nft input chain with policy drop at once:
    each layer alone provably keeps VRRP out; auto opens both."""
    with pair() as p:
        drop_everything(p.host)
        p.host.run("nft", "add table inet guard")
        p.host.run("nft", "add chain inet guard in { type filter hook input priority 0; policy drop; }")
        p.host.run("nft", "add chain inet guard out { type filter hook output priority 0; policy drop; }")
        assert blocked_inbound(p) and blocked_outbound(p)

        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist", "--backend", "iptables")
        assert rc == 1 and out["changed"] is True
        assert any("inet guard in" in b and "--backend auto" in b for b in out["blockers"])
        assert len(vrrpfw_rules(p.host, "INPUT")) == 1
        assert blocked_inbound(p)  # legacy alone: not enough
        assert p.host.vrrpfw("close", "--no-persist", "--backend", "iptables").returncode == 0

        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist", "--backend", "nftables")
        assert rc == 1 and any("legacy filter INPUT" in b and "--backend auto" in b for b in out["blockers"])
        assert blocked_inbound(p)  # nft alone: not enough
        assert p.host.vrrpfw("close", "--no-persist", "--backend", "nftables").returncode == 0

        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["backend"] == "iptables+nftables", out
        assert {r["backend"] for r in out["rules"]} == {"iptables", "nftables"}
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        assert adverts(p.host, p.host_if, p.peer, p.peer_if)["delivered"] == 20
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["changed"] is False
        assert p.host.vrrpfw("close", "--no-persist").returncode == 0
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 0
        assert "vrrpfw" not in p.host.run("nft", "list", "ruleset").stdout


def test_nothing_filtering_means_nothing_changes(tmp_path):
    with pair() as p:
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["changed"] is False and out["backend"] == "none"
        assert any("nothing blocks VRRP here" in w for w in out["warnings"])
        assert p.host.run("cat", "/proc/net/ip_tables_names").stdout == ""
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20


LIBRARY = """
import json, sys, vrrpfw
iface, root = sys.argv[1], sys.argv[2]
out = {}
out["open"] = vrrpfw.open([iface], root=root).to_dict()
out["again"] = vrrpfw.open([iface], root=root).changed
out["check"] = vrrpfw.check(root=root).ok
try:
    vrrpfw.open(["bad/name"], root=root)
except vrrpfw.InputError as e:
    out["error"] = [type(e).__name__, e.exit_code]
out["close"] = vrrpfw.close([iface], root=root).changed
print(json.dumps(out))
"""


def test_library_api_with_distribution_default_path(tmp_path):
    root = tmp_path / "root"
    (root / "etc" / "iptables").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    with pair() as p:
        drop_everything(p.host, root / "etc" / "iptables" / "rules.v4")
        proc = p.host.run(sys.executable, "-c", LIBRARY, p.host_if, str(root))
        out = json.loads(proc.stdout)
        assert out["open"]["changed"] is True and out["open"]["ok"] is True
        assert out["open"]["persist"][0]["path"] == f"{root}/etc/iptables/rules.v4"
        assert "nothing on this host restores it at boot" in out["open"]["persist"][0]["note"]
        assert out["again"] is False and out["check"] is True
        assert out["error"] == ["InputError", 2]
        assert out["close"] is True
        assert OURS not in (root / "etc/iptables/rules.v4").read_text()


@pytest.mark.needs("/usr/bin/python3")  # Debian's own, readable by nobody
def test_non_root_never_gets_a_false_ok():
    """As an unprivileged user vrrpfw cannot read the firewall: it must not
    say "nothing blocks VRRP" (exit 0) on a host whose INPUT policy is DROP,
    but exit 3 naming what it could not read."""
    with pair() as p:
        drop_everything(p.host)
        for backend in ("auto", "iptables", "nftables"):
            # Debian's own python3 (with its typer and rich): a pyenv interpreter under /root
            # is not readable by the unprivileged user.
            proc = p.host.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              "--inh-caps=-all", "/usr/bin/python3", "-m", "vrrpfw", "check",
                              "--iface", p.host_if, "--no-persist", "--backend", backend, check=False)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 3, (backend, proc.stdout, proc.stderr)
            assert len(lines) == 1 and "root" in lines[0], (backend, lines)
            assert "nothing blocks" not in proc.stdout + proc.stderr
