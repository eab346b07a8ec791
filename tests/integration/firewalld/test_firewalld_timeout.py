"""A firewalld call that vrrpfw's D-Bus client gave up on, against real
firewalld in a namespace on a private bus.

The call can time out on vrrpfw's side and still be carried out by
firewalld.  vrrpfw records what it is about to add in state.json (pending)
before the call, reads firewalld again when no answer comes, and reports
what is really there; exit 3 ("nothing was changed") only where firewalld
was read again and found unchanged.  The fault is made real by
tests/dbusfault.py: firewalld is stopped (SIGSTOP) just before vrrpfw's
add call and continued at the moment the test needs (issue 18, "an orphan
rule after a D-Bus timeout")."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest
from fwharness import firewalld_host
from netns import adverts

pytestmark = [pytest.mark.integration, pytest.mark.needs("firewalld")]

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DBUSFAULT = os.path.join(HERE, "dbusfault.py")
REPO = os.path.dirname(HERE)
RICH = 'rule priority="-32768" family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
TIMEOUT = "2"  # seconds per D-Bus call: the faulty call and the read after it time out


def faulty_open(fw, layer, fault, *extra):
    """``vrrpfw open --json`` whose first add in ``layer`` meets ``fault``."""
    spec = {"pid": fw.proc.pid, "layer": layer, "fault": fault, "trace": os.path.join(fw.root, "fault.trace")}
    proc = fw.host.run(sys.executable, DBUSFAULT, json.dumps(spec), "open", "--iface", fw.pair.host_if,
                       "--backend", "firewalld", "--state-file", fw.state_file, "--json", *extra,
                       check=False, env={"VRRPFW_DBUS_TIMEOUT": TIMEOUT, "PYTHONPATH": REPO})
    with open(spec["trace"]) as f:  # the fault really fired, on an add
        assert f.read().startswith(f"{fault}: adding rich"), proc.stderr
    return proc


def entries(fw):
    """The record's entries; none where there is no file (vrrpfw removes a
    state file that holds nothing)."""
    if not os.path.exists(fw.state_file):
        return []
    with open(fw.state_file) as f:
        return [(e["layer"], e["zone"], e["value"], e.get("pending", False))
                for e in json.load(f)["firewalld"]]


def rich(fw, layer):
    return fw.cmd("--list-rich-rules") if layer == "runtime" else fw.cmd("--permanent", "--list-rich-rules")


@pytest.mark.parametrize("layer", ["runtime", "permanent"])
def test_timed_out_but_carried_out_is_reported_recorded_and_closed(tmp_path, layer):
    """Before: open failed (exit 1), the rule stayed in firewalld but not in
    state.json, and close said "ok, unchanged" and left it."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        proc = faulty_open(fw, layer, "late")
        out = json.loads(proc.stdout)
        assert proc.returncode == 0 and out["changed"] is True and out["ok"] is True, \
            proc.stdout + proc.stderr
        notes = out["warnings"] + [p["note"] or "" for p in out["persist"]]
        assert any("did not answer vrrpfw's call in time but carried it out" in n and f"({layer})" in n
                   for n in notes), notes
        assert rich(fw, "runtime") == rich(fw, "permanent") == RICH
        assert ("runtime", "public", RICH, False) in entries(fw) and ("permanent", "public", RICH, False) \
            in entries(fw)
        if layer == "runtime":
            assert adverts(fw.pair.peer, fw.pair.peer_if, fw.host, iface)["delivered"] == 20

        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is True, out
        assert rich(fw, "runtime") == rich(fw, "permanent") == ""
        assert not os.path.exists(fw.state_file)  # holding nothing after close, it is removed


def test_timed_out_and_not_carried_out_is_exit_3_with_nothing_pending(tmp_path):
    """The call never reached firewalld: read again, firewalld is unchanged,
    so exit 3 is true, and state.json holds no pending entry."""
    with firewalld_host(tmp_path, "nftables") as fw:
        proc = faulty_open(fw, "runtime", "lost")
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["exit_code"] == 3
        assert "read again: firewalld did not carry it out" in proc.stdout
        assert "changed nothing" in proc.stdout
        assert rich(fw, "runtime") == rich(fw, "permanent") == ""
        assert entries(fw) == []


def test_unreadable_then_carried_out_is_kept_pending_and_closed(tmp_path):
    """firewalld did not answer the add nor the read after it, then carried
    the add out: open says firewalld may have been changed (exit 1, never 3),
    state.json keeps the add as pending; check takes it for vrrpfw's (not the
    admin's), and close removes it."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        proc = faulty_open(fw, "runtime", "later")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "may have been changed" in proc.stdout and "recorded as pending" in proc.stdout
        # never a plain "changed": vrrpfw cannot tell
        assert [la["runtime"] for la in json.loads(proc.stdout)["layers"]] == ["may have changed"]
        assert rich(fw, "runtime") == RICH  # carried out after vrrpfw gave up reading
        assert entries(fw) == [("runtime", "public", RICH, True)]

        with open(fw.state_file) as f:
            pending = f.read()
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        inbound = [r for r in out["rules"] if r["direction"] == "in"]
        assert [r["runtime"] for r in inbound] == ["allowed"], out  # vrrpfw's, not "allowed-by-other"
        assert any("that call completed; it is vrrpfw's" in w for w in out["warnings"]), out["warnings"]
        assert entries(fw) == [("runtime", "public", RICH, False)]  # check settled the record

        with open(fw.state_file, "w") as f:  # close meets the pending record itself
            f.write(pending)
        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is True, out
        assert any("that call completed; it is vrrpfw's" in w for w in out["warnings"]), out["warnings"]
        assert rich(fw, "runtime") == ""
        assert entries(fw) == []


def test_unreadable_and_never_carried_out_is_pending_until_the_next_run(tmp_path):
    """firewalld stays stopped while vrrpfw runs (and refuses the queued call
    once continued, its caller gone): open cannot say nothing changed (exit
    1, pending kept); the next close finds nothing and clears the record."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        try:
            proc = faulty_open(fw, "runtime", "hung")
        finally:
            os.kill(fw.proc.pid, signal.SIGCONT)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "may have been changed" in proc.stdout
        assert entries(fw) == [("runtime", "public", RICH, True)]

        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is False, out
        assert any("that call did not complete; vrrpfw forgets it" in w for w in out["warnings"]), out
        assert rich(fw, "runtime") == rich(fw, "permanent") == ""
        assert entries(fw) == []


STALL_AFTER_BACKEND = """
import os, signal, sys
from vrrpfw.backends.firewalld import bus
pid = int(sys.argv[1])
real_backend, real_map = bus.Firewalld.backend, bus.Firewalld._map
def backend(self):
    out = real_backend(self)
    os.kill(pid, signal.SIGSTOP)  # firewalld stops answering from here on
    return out
def _map(self, e, doing):
    print("timed out:", doing, e.get_dbus_name(), file=sys.stderr)
    return real_map(self, e, doing)
bus.Firewalld.backend, bus.Firewalld._map = backend, _map
from vrrpfw.cli import main
try:
    code = main(sys.argv[2:])
finally:
    os.kill(pid, signal.SIGCONT)
sys.exit(code)
"""


def test_firewalld_stopping_mid_check_costs_one_timeout(tmp_path):
    """firewalld stops answering once the run has read its backend: the
    check ends at the first read it waits for in vain (exit 3, one line),
    after one timeout.  The reads sent ahead must not wait in vain first
    and then be asked again (each wait a whole VRRPFW_DBUS_TIMEOUT)."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        rc, out = fw.vrrpfw_json("open", "--iface", iface)  # runtime and permanent records
        assert rc == 0, out
        try:
            proc = fw.host.run(sys.executable, "-c", STALL_AFTER_BACKEND, str(fw.proc.pid), "check",
                               "--iface", iface, "--backend", "firewalld", "--state-file", fw.state_file,
                               check=False, env={"VRRPFW_DBUS_TIMEOUT": TIMEOUT, "PYTHONPATH": REPO})
        finally:
            os.kill(fw.proc.pid, signal.SIGCONT)
        waits = [line for line in proc.stderr.splitlines() if line.startswith("timed out:")]
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert len(waits) == 1 and waits[0].endswith("org.freedesktop.DBus.Error.NoReply"), proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("vrrpfw: ")]
        assert len(errors) == 1, proc.stderr
        assert errors[0].startswith("vrrpfw: error: firewalld stopped answering while "), proc.stderr
