"""The firewalld backend against real firewalld (both FirewallBackend values)
in a namespace on a private D-Bus bus, with real VRRP packets."""

from __future__ import annotations

import json
import os
import signal

import pytest
from fwharness import firewalld_host, inbound
from netns import adverts

from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

BACKENDS = ["nftables", "iptables"]
# vrrpfw's allowance: the lowest priority wins over deny rules.
RICH = 'rule priority="-32768" family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocked_open_idempotent_close(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        before = inbound(fw)
        assert before["wire"] == 20 and before["delivered"] == 0, before

        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["backend"] == "firewalld" and out["changed"] is True, out
        assert inbound(fw)["delivered"] == 20
        if backend == "nftables":
            assert fw.cmd("--list-rich-rules") == RICH
            assert fw.cmd("--permanent", "--list-rich-rules") == RICH
            assert fw.cmd("--direct", "--get-all-rules") == ""
        else:
            direct = fw.cmd("--direct", "--get-all-rules")
            ours = f"ipv4 filter INPUT 0 -i {iface} -d 224.0.0.18 -p 112 -m comment --comment vrrpfw"
            assert ours in direct
            assert f"ipv4 filter OUTPUT 0 -o {iface}" in direct
            assert fw.cmd("--permanent", "--direct", "--get-all-rules") == direct
            assert fw.cmd("--list-rich-rules") == ""

        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["changed"] is False
        rc, out = fw.vrrpfw_json("check")  # every interface open was asked for, both directions
        assert rc == 0 and {(r["direction"], r["interface"]) for r in out["rules"]} == {
            ("in", iface), ("out", iface)}, out["rules"]
        assert {r["runtime"] for r in out["rules"]} <= {"allowed", "allowed-by-other", "allowed-by-policy"}

        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is True
        assert inbound(fw)["delivered"] == 0
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == ""
        assert fw.cmd("--direct", "--get-all-rules") == ""
        assert fw.cmd("--permanent", "--direct", "--get-all-rules") == ""
        assert not os.path.exists(fw.state_file)  # open created it, close left it holding nothing
        assert fw.vrrpfw("check", "--iface", iface).returncode == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_permanent_survives_reload_and_restart(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        assert fw.vrrpfw("open", "--iface", iface).returncode == 0
        fw.cmd("--reload")
        assert fw.vrrpfw("check", "--iface", iface).returncode == 0
        assert inbound(fw)["delivered"] == 20
        fw.restart()
        check = fw.vrrpfw("check", "--iface", iface)
        assert check.returncode == 0, check.stdout
        assert inbound(fw)["delivered"] == 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_dry_run_changes_nothing(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        proc = fw.vrrpfw("open", "--iface", iface, "--dry-run")
        assert proc.returncode == 0
        assert "planned:" in proc.stdout and "permanent:" in proc.stdout
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == ""
        assert fw.cmd("--direct", "--get-all-rules") == ""
        assert not os.path.exists(fw.state_file)
        assert inbound(fw)["delivered"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_interface_in_a_non_default_zone(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        fw.cmd("--zone=internal", "--add-interface", iface)
        fw.cmd("--permanent", "--zone=internal", "--add-interface", iface)
        assert inbound(fw)["delivered"] == 0
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0
        if backend == "nftables":
            assert "zone internal" in out["rules"][0]["rule"]
            assert any("zone internal covers: " + iface in w for w in out["warnings"])
            assert fw.cmd("--zone=internal", "--list-rich-rules") == RICH
            assert fw.cmd("--permanent", "--zone=internal", "--list-rich-rules") == RICH
            assert fw.cmd("--zone=public", "--list-rich-rules") == ""
        else:  # direct rules do not depend on zones
            assert "vrrpfw" in fw.cmd("--direct", "--get-all-rules")
        assert inbound(fw)["delivered"] == 20


def test_permanent_not_loaded_at_runtime_is_called_out(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        assert fw.vrrpfw("open", "--iface", iface).returncode == 0
        fw.cmd("--remove-rich-rule", RICH)  # runtime only, as a stray tool might
        assert inbound(fw)["delivered"] == 0
        check = fw.vrrpfw("check", "--iface", iface)
        assert check.returncode == 1
        assert "runtime missing, persisted present" in check.stdout
        assert "persisted but not active at runtime" in check.stdout
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["changed"] is True and out["persist"][0]["changed"] is False
        assert inbound(fw)["delivered"] == 20


def test_lockdown_refusal_is_reported(tmp_path):
    """Lockdown refuses vrrpfw's D-Bus changes.  firewalld 1.3 (Debian 12)
    lets root change the runtime zone and refuses the permanent change;
    newer releases may refuse both; the message text is firewalld's own.
    Either way: the refusal is reported (vrrpfw names lockdown), the exit
    code says not done, nothing is persisted, and state.json records
    exactly what was added at runtime."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--lockdown-on")
        proc = fw.vrrpfw("open", "--iface", iface, "--json")
        assert "Traceback" not in proc.stderr
        assert fw.cmd("--permanent", "--list-rich-rules") == ""
        runtime = fw.cmd("--list-rich-rules")
        if proc.returncode == 3:  # refused before anything changed: one line, nothing added
            assert runtime == "" and "lockdown" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
            assert not os.path.exists(fw.state_file) or json.load(open(fw.state_file))["firewalld"] == []
            return
        out = json.loads(proc.stdout)
        assert proc.returncode == 1 and out["ok"] is False, out
        errors = [p["error"] for p in out["persist"] if p["error"]] + [la["error"] for la in out.get(
            "layers", []) if la["error"]]
        assert errors and all("lockdown" in e for e in errors), errors
        assert out["rules"][0]["persisted"] == "missing"
        assert any("lockdown is enabled" in w for w in out["warnings"])
        with open(fw.state_file) as f:
            recorded = [(e["layer"], e["value"]) for e in json.load(f)["firewalld"]]
        assert recorded == ([("runtime", RICH)] if runtime == RICH else []), (recorded, runtime)
        assert out["rules"][0]["runtime"] == ("allowed" if runtime == RICH else "missing")


def test_top_priority_rich_rule_even_where_firewalld_knows_a_vrrp_service(tmp_path):
    """The vrrp service sits in the zone's allow chain, after deny rules; the
    lowest-priority rich rule comes before them, so vrrpfw uses it."""
    with firewalld_host(tmp_path, "nftables", vrrp_service=True) as fw:
        iface = fw.pair.host_if
        fw.cmd("--add-rich-rule", 'rule priority="-100" protocol value="vrrp" drop')
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and RICH in out["rules"][0]["rule"]
        assert "vrrp" not in fw.cmd("--list-services").split()
        assert RICH in fw.cmd("--list-rich-rules").splitlines()
        assert fw.cmd("--permanent", "--list-rich-rules") == RICH
        assert inbound(fw)["delivered"] == 20
        assert fw.vrrpfw("close").returncode == 0
        assert RICH not in fw.cmd("--list-rich-rules").splitlines()
        assert fw.cmd("--permanent", "--list-rich-rules") == ""
        assert inbound(fw)["delivered"] == 0


ALREADY = [
    ("service", ["--add-service=vrrp"], "zone public (filter_IN_public_allow)"),
    ("protocol", ["--add-protocol=vrrp"], "zone public (filter_IN_public_allow)"),
    ("rich rule", [f"--add-rich-rule={RICH}"], "zone public (filter_IN_public_pre)"),
]


@pytest.mark.parametrize("what, args, words", ALREADY, ids=[a[0] for a in ALREADY])
def test_already_allowed_is_reported_and_left_alone(tmp_path, what, args, words):
    with firewalld_host(tmp_path, "nftables", vrrp_service=True) as fw:
        iface = fw.pair.host_if
        fw.cmd(*args)
        fw.cmd("--permanent", *args)
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["changed"] is False, out
        assert out["rules"][0]["runtime"] == "allowed-by-other"
        assert words in out["rules"][0]["detail"]
        assert inbound(fw)["delivered"] == 20
        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is False
        assert inbound(fw)["delivered"] == 20  # the admin's allowance stays


def test_accept_target_counts_as_allowed(tmp_path):
    """check: allowed by the zone's target; open pins its allowance there
    (tests/integration/firewalld/test_open_pins_firewalld.py follows it through)."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--zone=trusted", "--add-interface", iface)
        fw.cmd("--permanent", "--zone=trusted", "--add-interface", iface)
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 0 and out["rules"][0]["runtime"] == "allowed-by-other"
        assert "zone trusted (filter_IN_trusted)" in out["rules"][0]["detail"]
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["changed"] is True and out["rules"][0]["runtime"] == "allowed"


def test_seed_direct_recipe_is_ineffective_on_nftables(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        recipe = ["ipv4", "filter", "INPUT", "0", "--in-interface", iface, "--destination",
                  "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"]
        fw.cmd("--direct", "--add-rule", *recipe)
        fw.cmd("--permanent", "--direct", "--add-rule", *recipe)
        assert inbound(fw)["delivered"] == 0  # the classic recipe changes nothing here

        check = fw.vrrpfw("check", "--iface", iface)
        assert check.returncode == 1 and "present but ineffective" in check.stdout
        refused = fw.vrrpfw("open", "--iface", iface, "--mode", "direct")
        assert refused.returncode == 2 and "ineffective" in refused.stderr
        assert fw.vrrpfw("open", "--iface", iface).returncode == 0
        assert inbound(fw)["delivered"] == 20

        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert "--protocol vrrp" in fw.cmd("--direct", "--get-all-rules")  # not ours: kept
        assert fw.vrrpfw("close", "--remove-seed-rules").returncode == 0
        assert fw.cmd("--direct", "--get-all-rules") == ""
        assert fw.cmd("--permanent", "--direct", "--get-all-rules") == ""


def test_two_interfaces_share_one_zone_allowance(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.host.run("ip", "link", "add", "vrfx0", "type", "veth", "peer", "name", "vrfx1")
        assert fw.vrrpfw("open", "--iface", iface, "--iface", "vrfx0").returncode == 0
        assert fw.cmd("--list-rich-rules") == RICH
        assert fw.vrrpfw("close", "--iface", "vrfx0").returncode == 0
        assert fw.cmd("--list-rich-rules") == RICH  # still needed by the first interface
        assert inbound(fw)["delivered"] == 20
        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert fw.cmd("--list-rich-rules") == ""


def test_dbus_error_paths(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        bad = fw.vrrpfw("open", "--iface", iface, "--zone", "nosuchzone")
        assert bad.returncode == 2 and bad.stderr.strip().startswith("vrrpfw: error: firewalld has no zone")
        assert fw.cmd("--list-rich-rules") == ""

        # Hung firewalld: the call times out instead of hanging the caller.
        assert fw.proc is not None
        os.kill(fw.proc.pid, signal.SIGSTOP)
        try:
            hung = fw.host.vrrpfw("open", "--iface", iface, "--backend", "firewalld", "--state-file",
                                  fw.state_file, env={"VRRPFW_DBUS_TIMEOUT": "2"})
            assert hung.returncode == 3, hung.stdout + hung.stderr
            assert "Traceback" not in hung.stderr and len(hung.stderr.strip().splitlines()) == 1
        finally:
            os.kill(fw.proc.pid, signal.SIGCONT)

        fw.stop()
        gone = fw.vrrpfw("open", "--iface", iface, "--backend", "firewalld")
        assert gone.returncode == 3
        assert "firewalld does not answer on the system bus" in gone.stderr
        assert "Traceback" not in gone.stderr


def outbound(fw):
    p = fw.pair
    return adverts(p.host, p.host_if, p.peer, p.peer_if)


DENIES = [
    ("priority deny", 'rule priority="-100" protocol value="vrrp" drop'),
    ("plain reject", 'rule protocol value="vrrp" reject'),
]


@pytest.mark.parametrize("what, deny", DENIES, ids=[d[0] for d in DENIES])
def test_deny_rich_rule_is_seen_and_beaten(tmp_path, what, deny):
    """firewalld runs deny rich rules before allowances: a vrrp protocol
    entry does not help, check must not say allowed, and vrrpfw's
    priority -32768 rich rule wins; permanent too, so a reload keeps it."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        for layer in ([], ["--permanent"]):
            fw.cmd(*layer, "--add-protocol=vrrp")
            fw.cmd(*layer, "--add-rich-rule", deny)
        assert inbound(fw)["delivered"] == 0
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and out["rules"][0]["runtime"] == "missing", out["rules"]
        assert "zone public" in out["rules"][0]["detail"]
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0, out
        assert inbound(fw)["delivered"] == 20
        fw.cmd("--reload")
        assert inbound(fw)["delivered"] == 20
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 0 and out["rules"][0]["runtime"] == "allowed", out["rules"]
        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert inbound(fw)["delivered"] == 0
        assert deny in fw.cmd("--list-rich-rules").splitlines()  # the admin's rule stays


def add_policy(fw, name, ingress, egress):
    fw.cmd("--permanent", f"--new-policy={name}")
    fw.cmd("--permanent", f"--policy={name}", f"--add-ingress-zone={ingress}")
    fw.cmd("--permanent", f"--policy={name}", f"--add-egress-zone={egress}")
    fw.cmd("--permanent", f"--policy={name}", "--set-target=DROP")
    fw.cmd("--reload")


def test_policies_that_drop_to_and_from_host_are_opened(tmp_path):
    """A policy ANY->HOST with target DROP blocks inbound adverts, one
    HOST->ANY blocks outbound ones (every send fails): neither is "allowed",
    and open adds its allowance in each policy, runtime and permanent."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--permanent", "--add-protocol=vrrp")
        add_policy(fw, "lockin", "ANY", "HOST")
        add_policy(fw, "lockout", "HOST", "ANY")
        assert inbound(fw)["delivered"] == 0 and outbound(fw)["wire"] == 0
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        states = {r["direction"]: r["runtime"] for r in out["rules"]}
        assert rc == 1 and states == {"in": "missing", "out": "missing"}, out["rules"]
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0, out
        assert inbound(fw)["delivered"] == 20 and outbound(fw)["wire"] == 20
        for policy in ("lockin", "lockout"):
            assert RICH in fw.cmd(f"--policy={policy}", "--list-rich-rules").splitlines()
            assert RICH in fw.cmd("--permanent", f"--policy={policy}", "--list-rich-rules").splitlines()
        fw.cmd("--reload")
        assert inbound(fw)["delivered"] == 20 and outbound(fw)["wire"] == 20
        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert inbound(fw)["delivered"] == 0 and outbound(fw)["wire"] == 0
        for policy in ("lockin", "lockout"):
            assert fw.cmd("--permanent", f"--policy={policy}", "--list-rich-rules") == ""


def test_zone_bound_to_the_peer_source(tmp_path):
    """The peer's address bound to zone drop: that zone, not the
    interface's, judges its adverts.  Without --from vrrpfw cannot know
    which zone judges the peer (check: uncertain, exit 1, naming zone drop);
    open then opens every zone bound to a source on the subnet, zone drop
    here (public lets VRRP in already), and the adverts arrive.  (Before
    issue 19 open exited 1 advising --peer, which opens unicast only.)
    With --peer (since issue 10: unicast adverts from the peer to this
    host's address) open allows them in the source's zone."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface, peer = fw.pair.host_if, "192.0.2.2"
        for layer in ([], ["--permanent"]):
            fw.cmd(*layer, "--add-protocol=vrrp")
            fw.cmd(*layer, "--zone=drop", f"--add-source={peer}")
        assert inbound(fw)["delivered"] == 0
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and out["rules"][0]["runtime"] == "uncertain", out["rules"]
        assert any(w.startswith("zone drop: its bound source") for w in out["warnings"]), out
        assert not any("--peer" in w for w in out["warnings"]), out
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["rules"][0]["runtime"] == "allowed", out
        assert fw.cmd("--zone=drop", "--list-rich-rules") == RICH
        assert fw.cmd("--zone=public", "--list-rich-rules") == ""
        assert inbound(fw)["delivered"] == 20
        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert fw.cmd("--zone=drop", "--list-rich-rules") == ""
        assert inbound(fw)["delivered"] == 0
        rc, out = fw.vrrpfw_json("check", "--iface", iface, "--peer", peer)
        assert rc == 1 and out["rules"][0]["runtime"] == "missing"
        assert "zone drop" in out["rules"][0]["detail"]
        rc, out = fw.vrrpfw_json("open", "--iface", iface, "--peer", peer)
        assert rc == 0, out
        unicast = (f'rule priority="-32768" family="ipv4" source address="{peer}" '
                   'destination address="192.0.2.1" protocol value="vrrp" accept')
        assert fw.cmd("--zone=drop", "--list-rich-rules").splitlines() == [unicast]
        p = fw.pair
        assert exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 20, "192.0.2.1").delivered == 20
        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert fw.cmd("--zone=drop", "--list-rich-rules") == ""
        assert exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 20, "192.0.2.1").delivered == 0
