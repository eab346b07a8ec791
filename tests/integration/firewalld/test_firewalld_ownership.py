"""What vrrpfw owns in firewalld, against real firewalld in a namespace.

Rich rules and services carry no comment, so state.json is vrrpfw's only
proof of ownership.  These tests hold it to that: close removes what open
added wherever the interface has gone since, never an identical allowance
someone added after vrrpfw's vanished, and the reports say what really
happened (issue 9, "firewalld ownership")."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap

import pytest
from fwharness import firewalld_host, inbound
from lockdirs import private_lock_dir

pytestmark = pytest.mark.integration

RICH = 'rule priority="-32768" family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
PLAIN_RICH = 'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'


def state(fw):
    """The record; empty where there is no file (vrrpfw removes a state
    file that holds nothing)."""
    if not os.path.exists(fw.state_file):
        return {"firewalld": [], "interfaces": []}
    with open(fw.state_file) as f:
        return json.load(f)


def entries(fw):
    return sorted((e["layer"], e["zone"], e["kind"], tuple(e["interfaces"])) for e in state(fw)["firewalld"])


def both(fw, *args):
    for layer in ([], ["--permanent"]):
        fw.cmd(*layer, *args)


# (FirewallBackend, extra vrrpfw options, the allowance vrrpfw adds)
ZONE_MODES = [("nftables", [], RICH), ("iptables", ["--mode", "zone"], PLAIN_RICH)]


@pytest.mark.parametrize("backend, opts, rich", ZONE_MODES, ids=["nftables", "iptables-zone-mode"])
def test_close_removes_the_allowance_in_the_zone_recorded_at_open(tmp_path, backend, opts, rich):
    """The interface moved from public to internal after open: close must
    still remove vrrpfw's allowance from public, runtime and permanent."""
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        assert fw.vrrpfw("open", "--iface", iface, *opts).returncode == 0
        assert fw.cmd("--zone=public", "--list-rich-rules") == rich
        assert fw.cmd("--permanent", "--zone=public", "--list-rich-rules") == rich
        both(fw, "--zone=internal", "--change-interface", iface)

        rc, out = fw.vrrpfw_json("close", "--iface", iface, *opts)
        assert rc == 0, out
        assert fw.cmd("--zone=public", "--list-rich-rules") == "", "runtime allowance left in the old zone"
        assert fw.cmd("--permanent", "--zone=public", "--list-rich-rules") == ""
        assert fw.cmd("--zone=internal", "--list-rich-rules") == ""
        assert state(fw)["firewalld"] == []
        rin = [r for r in out["rules"] if r["direction"] == "in"][0]
        assert rin["action"] == "delete" and rin["persist_action"] == "delete", rin


@pytest.mark.parametrize("backend, opts, rich", ZONE_MODES, ids=["nftables", "iptables-zone-mode"])
def test_stale_runtime_entry_never_claims_an_identical_admin_rule(tmp_path, backend, opts, rich):
    """open --no-persist, then a reload drops vrrpfw's runtime allowance, then
    the admin adds the identical rule: it is the admin's, close leaves it."""
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        assert fw.vrrpfw("open", "--iface", iface, "--no-persist", *opts).returncode == 0
        assert entries(fw) == [("runtime", "public", "rich", (iface,))]
        fw.cmd("--reload")
        assert fw.cmd("--list-rich-rules") == ""
        fw.cmd("--add-rich-rule", rich)  # the admin's, runtime only

        rc, out = fw.vrrpfw_json("close", "--iface", iface, "--no-persist", *opts)
        assert fw.cmd("--list-rich-rules") == rich, "close deleted the admin's rule"
        assert rc == 0, out
        assert all(r["action"] == "none" for r in out["rules"]), out["rules"]
        assert any("reloaded or restarted" in w and "not provably vrrpfw's" in w for w in out["warnings"]), \
            out["warnings"]
        assert state(fw)["firewalld"] == []


def test_vanished_allowance_is_forgotten_and_an_identical_one_later_is_not_ours(tmp_path):
    """vrrpfw's allowance removed by the admin (seen by a run), then an
    identical one added: that one is the admin's."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        assert fw.vrrpfw("open", "--iface", iface).returncode == 0
        both(fw, "--remove-rich-rule", RICH)
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1
        assert sum("was removed by someone" in w for w in out["warnings"]) == 2, out["warnings"]
        assert state(fw)["firewalld"] == []  # check forgot them: they are gone
        both(fw, "--add-rich-rule", RICH)
        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is False, out
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == RICH


def test_reload_keeps_ownership_of_what_vrrpfw_persisted(tmp_path):
    """After a reload the runtime allowance comes back from vrrpfw's own
    permanent one: still vrrpfw's, close removes both."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        assert fw.vrrpfw("open", "--iface", iface).returncode == 0
        fw.cmd("--reload")
        fw.restart()
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 0 and out["rules"][0]["runtime"] == "allowed", out
        assert not any("provably" in w for w in out["warnings"]), out["warnings"]
        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is True, out
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == ""
        assert state(fw)["firewalld"] == []


RUNTIME_ONLY = [
    ("protocol", ["--add-protocol=vrrp"], "protocol vrrp in zone public"),
    ("rich rule", [f"--add-rich-rule={PLAIN_RICH}"], "rich rule"),
]


@pytest.mark.parametrize("what, args, words", RUNTIME_ONLY, ids=[a[0] for a in RUNTIME_ONLY])
def test_admins_runtime_only_allowance_is_not_persisted(tmp_path, what, args, words):
    """Allowed at runtime by the admin, absent from the permanent
    configuration: a reload blocks VRRP, so this is exit 1, not
    "persisted not-managed"."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd(*args)
        for command in ("check", "open"):
            rc, out = fw.vrrpfw_json(command, "--iface", iface)
            rin = [r for r in out["rules"] if r["direction"] == "in"][0]
            assert rc == 1 and out["ok"] is False, (command, out)
            assert rin["runtime"] == "allowed-by-other" and rin["persisted"] == "missing", rin
            notes = [w for w in out["warnings"] if w.startswith("not persisted")]
            assert len(notes) == 1 and words in notes[0] and "absent from the permanent configuration" \
                in notes[0], out["warnings"]
        assert fw.cmd("--permanent", "--list-all").count("vrrp") == 0  # vrrpfw adds nothing of its own
        fw.cmd("--reload")
        assert inbound(fw)["delivered"] == 0  # what the exit code warned of
        fw.cmd("--permanent", *args)
        fw.cmd("--reload")
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 0, out
        assert not any(w.startswith("not persisted") for w in out["warnings"])


def test_no_persist_run_does_not_complain_about_runtime_only(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--add-protocol=vrrp")
        rc, out = fw.vrrpfw_json("check", "--iface", iface, "--no-persist")
        assert rc == 0 and not any(w.startswith("not persisted") for w in out["warnings"]), out


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_check_without_iface_after_open_found_the_admins_allowance(tmp_path, backend):
    """open --iface X found the admin's allowance and added nothing; a later
    plain `check` (every interface vrrpfw manages) still checks X, and says
    it is allowed, by the admin's rule."""
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        both(fw, "--add-protocol=vrrp")
        if backend == "iptables":  # the direct-mode OUTPUT rule is vrrpfw's; make it the admin's too
            recipe = ["ipv4", "filter", "OUTPUT", "0", "-o", iface, "-p", "vrrp", "-j", "ACCEPT"]
            both(fw, "--direct", "--add-rule", *recipe)
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["changed"] is False, out
        rc, out = fw.vrrpfw_json("check")
        assert rc == 0, out
        assert {(r["direction"], r["interface"]) for r in out["rules"]} == {("in", iface), ("out", iface)}
        rin = [r for r in out["rules"] if r["direction"] == "in"][0]
        assert rin["runtime"] == "allowed-by-other" and "protocol" in rin["detail"] + rin["rule"], rin
        # Once the admin's allowance goes, the plain check says so.
        both(fw, "--remove-protocol=vrrp")
        rc, out = fw.vrrpfw_json("check")
        assert rc == 1 and [r["runtime"] for r in out["rules"] if r["direction"] == "in"] == ["missing"]
        # close forgets the interface: nothing of vrrpfw's is left to check.
        both(fw, "--add-protocol=vrrp")
        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is False, out
        assert "vrrp" in fw.cmd("--list-protocols")  # the admin's stays
        assert state(fw)["firewalld"] == [] and state(fw).get("interfaces") == []


def test_closing_one_of_two_interfaces_in_a_zone_says_what_happened(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.host.run("ip", "link", "add", "vrfx0", "type", "veth", "peer", "name", "vrfx1")
        assert fw.vrrpfw("open", "--iface", iface, "--iface", "vrfx0").returncode == 0

        rc, out = fw.vrrpfw_json("close", "--iface", "vrfx0")
        assert rc == 0, out
        for r in out["rules"]:
            assert r["interface"] == "vrfx0"
            assert r["action"] == "none" and r["persist_action"] == "none", r
        rin = [r for r in out["rules"] if r["direction"] == "in"][0]
        assert f"still needed by {iface}" in rin["detail"], rin
        assert not any("remove" in p for p in out["planned"]), out["planned"]
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == RICH
        assert entries(fw) == [("permanent", "public", "rich", (iface,)),
                               ("runtime", "public", "rich", (iface,))]
        assert inbound(fw)["delivered"] == 20

        proc = fw.vrrpfw("close", "--iface", iface)
        assert proc.returncode == 0
        assert "delete" in proc.stdout
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == ""
        assert state(fw)["firewalld"] == []


def test_state_file_is_locked_by_the_run(tmp_path):
    """The API locks what ``lock_paths()`` names; for firewalld that is
    state.json.  Two concurrent opens serialise on it: both interfaces kept."""
    from vrrpfw.backends.base import Options
    from vrrpfw.backends.firewalld.backend import FirewalldBackend
    from vrrpfw.persist.state import StateFile

    path = str(tmp_path / "s.json")
    b = FirewalldBackend.__new__(FirewalldBackend)  # no D-Bus needed to name the files
    b.options, b.state = Options(state_file=path), StateFile(path)
    assert b.lock_paths() == [path]

    with firewalld_host(tmp_path, "nftables") as fw:
        fw.host.run("ip", "link", "add", "vrfx0", "type", "veth", "peer", "name", "vrfx1")
        driver = textwrap.dedent("""
            import json, os, sys
            import vrrpfw
            r = vrrpfw.open([sys.argv[1]], backend="firewalld", state_file=os.environ["STATE"],
                            lock_timeout=60)
            print(json.dumps(r.to_dict()))
        """)
        env = {"STATE": fw.state_file, "VRRPFW_LOCK_DIR": private_lock_dir(tmp_path)}
        procs = [fw.host.popen(sys.executable, "-c", driver, name, env=env)
                 for name in (fw.pair.host_if, "vrfx0")]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            assert json.loads(out)["ok"] is True
        both_ifaces = tuple(sorted((fw.pair.host_if, "vrfx0")))
        assert sorted((e["layer"], tuple(sorted(e["interfaces"]))) for e in state(fw)["firewalld"]) == [
            ("permanent", both_ifaces), ("runtime", both_ifaces)]


# -- a firewalld that stops mid-run ---------------------------------------------

KILL_DRIVER = textwrap.dedent("""
    import json, os, signal, sys, time
    import vrrpfw
    from vrrpfw.backends.firewalld import bus as firewalld_dbus
    from vrrpfw.errors import VrrpfwError

    point, pid = sys.argv[1], int(os.environ["FWPID"])
    real = firewalld_dbus.Firewalld.change
    calls = {"permanent": 0}

    def kill():
        os.kill(pid, signal.SIGKILL)
        for _ in range(500):  # dead (a zombie until the test reaps it): its bus name is gone
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        time.sleep(0.2)

    def change(self, layer, add, zone, kind, value):
        if layer == "permanent":
            calls["permanent"] += 1
            if point == "before-permanent" and calls["permanent"] == 1:
                kill()
        real(self, layer, add, zone, kind, value)
        if layer == "permanent" and point == "after-first-permanent" and calls["permanent"] == 1:
            kill()

    firewalld_dbus.Firewalld.change = change
    try:
        r = vrrpfw.open(sys.argv[2:], backend="firewalld", state_file=os.environ["STATE"])
        print(json.dumps(r.to_dict()))
    except VrrpfwError as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e)}))
""")


@pytest.mark.parametrize("point", ["before-permanent", "after-first-permanent"])
def test_firewalld_killed_mid_run(tmp_path, point):
    """Two allowances needed (the interface's zone public, a second
    interface's zone internal).  firewalld is SIGKILLed after the runtime
    changes, before or between the permanent ones: the run reports each
    layer, state.json records every allowance that was made, and the next
    run (firewalld started again) recovers: VRRP allowed and persisted,
    close removes everything."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface, other = fw.pair.host_if, "vrfx0"
        fw.host.run("ip", "link", "add", other, "type", "veth", "peer", "name", "vrfx1")
        both(fw, "--zone=internal", "--add-interface", other)
        assert inbound(fw)["delivered"] == 0
        assert fw.proc is not None
        env = {"STATE": fw.state_file, "FWPID": str(fw.proc.pid)}
        proc = fw.host.run(sys.executable, "-c", KILL_DRIVER, point, iface, other, env=env, check=False)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert fw.proc.wait(timeout=10) == -signal.SIGKILL
        fw.proc = None

        assert "error" not in out, out  # a partial outcome is a result, not an exception
        assert out["ok"] is False and out["exit_code"] == 1
        for r in out["rules"]:
            if r["direction"] == "in":
                assert r["runtime"] == "allowed" and r["persisted"] == "missing", r
        assert out["persist"][0]["error"] and "firewalld" in out["persist"][0]["error"], out["persist"]
        want = [("runtime", "internal", "rich", (other,)), ("runtime", "public", "rich", (iface,))]
        if point == "after-first-permanent":
            want.insert(0, ("permanent", "public", "rich", (iface,)))
        assert entries(fw) == want

        fw.start()  # firewalld rebuilds its runtime from the permanent configuration
        rc, out = fw.vrrpfw_json("open", "--iface", iface, "--iface", other)
        assert rc == 0, out
        assert inbound(fw)["delivered"] == 20
        assert entries(fw) == [
            ("permanent", "internal", "rich", (other,)), ("permanent", "public", "rich", (iface,)),
            ("runtime", "internal", "rich", (other,)), ("runtime", "public", "rich", (iface,))]
        fw.cmd("--reload")
        assert inbound(fw)["delivered"] == 20
        assert fw.vrrpfw("close").returncode == 0
        for zone in ("public", "internal"):
            assert fw.cmd(f"--zone={zone}", "--list-rich-rules") == ""
            assert fw.cmd("--permanent", f"--zone={zone}", "--list-rich-rules") == ""
        assert state(fw)["firewalld"] == []
        assert inbound(fw)["delivered"] == 0
