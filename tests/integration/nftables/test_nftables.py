"""The nftables backend against real nf_tables in namespaces, real packets."""

from __future__ import annotations

import json
import sys

import pytest
from netns import adverts, blocked_inbound, named_protocols, namespace, pair

pytestmark = pytest.mark.integration

RULESET = """table inet filter {
  chain input { type filter hook input priority 0; policy drop; iifname "lo" accept; }
  chain output { type filter hook output priority 0; policy drop; }
}
table ip other {
  chain in {
    type filter hook input priority 10; policy accept;
    ip protocol vrrp drop
  }
}
"""


def nft_vrrpfw_rules(ns):
    return [line for line in ns.run("nft", "list", "ruleset").stdout.splitlines() if '"vrrpfw"' in line]


def both_ways(p):
    return (adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"],
            adverts(p.host, p.host_if, p.peer, p.peer_if)["delivered"])


def test_pure_nft_two_tables_blocked_open_idempotent_close():
    with pair() as p:
        p.host.run("nft", "-f", "-", stdin=RULESET)
        assert both_ways(p) == (0, 0)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["backend"] == "nftables" and out["changed"] is True, out
        assert both_ways(p) == (20, 20)
        assert len(nft_vrrpfw_rules(p.host)) == 3  # inet filter input, ip other in, inet filter output
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["changed"] is False
        assert len(nft_vrrpfw_rules(p.host)) == 3
        rc, out = p.host.vrrpfw_json("check", "--no-persist")
        assert rc == 0 and "ip other in: allowed by vrrpfw's rule" in out["rules"][0]["detail"]
        assert p.host.vrrpfw("close", "--iface", p.host_if, "--no-persist").returncode == 0
        assert nft_vrrpfw_rules(p.host) == []
        assert both_ways(p) == (0, 0)


def test_nft_shadowing_is_reported_and_fixed():
    with pair() as p:
        p.host.run("nft", "-f", "-", stdin=RULESET)
        assert p.host.vrrpfw("open", "--iface", p.host_if, "--no-persist").returncode == 0
        p.host.run("nft", "insert", "rule", "inet", "filter", "input", "iifname", p.host_if, "drop")
        assert blocked_inbound(p)
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 1 and out["rules"][0]["runtime"] == "shadowed"
        assert f'inet filter input: dropped by meta iifname "{p.host_if}" drop' in out["rules"][0]["detail"]
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["rules"][0]["action"] == "move"
        assert len(nft_vrrpfw_rules(p.host)) == 3
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20


@pytest.mark.needs("iptables-nft")
def test_iptables_nft_chains_stay_readable_by_iptables_nft():
    with pair() as p:
        p.host.run("iptables-nft", "-P", "INPUT", "DROP")
        p.host.run("iptables-nft", "-P", "OUTPUT", "DROP")
        assert both_ways(p) == (0, 0)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["backend"] == "nftables", out
        assert both_ways(p) == (20, 20)
        listing = p.host.run("iptables-nft", "-S")
        rules = named_protocols(listing.stdout)
        assert f"-A INPUT -d 224.0.0.18/32 -i {p.host_if} -p vrrp -m comment --comment vrrpfw -j ACCEPT" \
            in rules
        assert f"-A OUTPUT -d 224.0.0.18/32 -o {p.host_if} -p vrrp" in rules
        assert listing.stderr == ""  # no "incompatible" or other warning
        assert p.host.vrrpfw("close", "--no-persist").returncode == 0
        assert "vrrpfw" not in p.host.run("iptables-nft", "-S").stdout


def test_close_sweeps_every_chain_and_keeps_hand_made_twins():
    """A vrrpfw rule left in a regular chain (a reloaded or hand-edited
    ruleset) is still vrrpfw's: close finds it; the admin's identical rule
    without the comment stays."""
    with pair() as p:
        p.host.run("nft", "-f", "-", stdin=RULESET)
        # One in a base chain on a hook vrrpfw never inserts into, while the
        # ruleset has no regular chain at all ...
        p.host.run("nft", "add", "chain", "inet", "filter", "passing",
                   "{ type filter hook forward priority 0; }")
        p.host.run("nft", "add", "rule", "inet", "filter", "passing", "iifname", p.host_if,
                   "ip", "daddr", "224.0.0.18", "ip", "protocol", "vrrp", "accept", "comment", '"vrrpfw"')
        rc, out = p.host.vrrpfw_json("close", "--dry-run", "--no-persist")
        assert rc == 0 and len(out["planned"]) == 1, out
        assert "inet filter passing handle" in out["planned"][0]
        # ... and one in a regular chain, beside the admin's uncommented twin.
        p.host.run("nft", "add", "chain", "inet", "filter", "helper")
        for comment in (["comment", '"vrrpfw"'], []):
            p.host.run("nft", "add", "rule", "inet", "filter", "helper", "iifname", p.host_if,
                       "ip", "daddr", "224.0.0.18", "ip", "protocol", "vrrp", "accept", *comment)
        assert len(nft_vrrpfw_rules(p.host)) == 2
        rc, out = p.host.vrrpfw_json("close", "--dry-run", "--no-persist")
        assert rc == 0 and len(out["planned"]) == 2, out
        assert any("inet filter helper handle" in line for line in out["planned"])
        assert any("inet filter passing handle" in line for line in out["planned"])
        assert len(nft_vrrpfw_rules(p.host)) == 2
        rc, out = p.host.vrrpfw_json("close", "--no-persist")
        assert rc == 0 and out["changed"] is True, out
        assert nft_vrrpfw_rules(p.host) == []
        helper = p.host.run("nft", "list", "chain", "inet", "filter", "helper").stdout
        assert f'iifname "{p.host_if}" ip daddr 224.0.0.18 ip protocol vrrp accept' in helper
        rc, out = p.host.vrrpfw_json("close", "--no-persist")
        assert rc == 0 and out["changed"] is False


CONF = """#!/usr/sbin/nft -f
# A realistic /etc/nftables.conf: flush, comments, an include.
flush ruleset

define ADMIN = 198.51.100.7

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept # stateful
\t\tiifname "lo" accept
\t\tip saddr $ADMIN tcp dport 22 accept comment "ssh from the jump host"
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t}
}
include "INCLUDE"
"""
EXTRA = """table ip other {
\tchain in {
\t\ttype filter hook input priority 10; policy accept;
\t\tip protocol vrrp drop
\t}
}
"""


def test_nftables_conf_persistence_loads_keeps_lines_and_restores(tmp_path):
    extra = tmp_path / "extra.nft"
    extra.write_text(EXTRA)
    conf = tmp_path / "nftables.conf"
    original = CONF.replace("INCLUDE", str(extra))
    conf.write_text(original)
    with pair() as p:
        p.host.run("nft", "-f", str(conf))
        assert both_ways(p) == (0, 0)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(conf))
        assert rc == 0 and out["persist"][0]["changed"] is True, out
        new = conf.read_text()
        assert new.startswith(original)  # every foreign line kept, byte for byte
        assert new.count('comment "vrrpfw"') == 3
        p.host.run("nft", "-c", "-f", str(conf))
        p.host.run("nft", "-f", str(conf))  # reloading the file keeps VRRP open
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--persist-file", str(conf))
        assert rc == 0, out
        assert both_ways(p) == (20, 20)
    with pair() as fresh:  # the saved file alone opens VRRP in a new namespace
        fresh.host.run("nft", "-f", "-", stdin=original)
        assert both_ways(fresh) == (0, 0)  # the admin's file alone keeps VRRP out
        fresh_conf = tmp_path / "fresh.conf"
        fresh_conf.write_text(new.replace(f'"{p.host_if}"', f'"{fresh.host_if}"'))
        fresh.host.run("nft", "-f", str(fresh_conf))
        assert both_ways(fresh) == (20, 20)
        rc, _ = fresh.host.vrrpfw_json("close", "--persist-file", str(conf))
        assert rc == 0
        assert conf.read_text() == original


def test_persisted_file_that_does_not_load_is_refused_untouched(tmp_path):
    conf = tmp_path / "nftables.conf"
    broken = ("flush ruleset\ntable inet filter {\n"
              "  chain input { type filter hook input priority 0; policy drop;\n")
    conf.write_text(broken)
    with pair() as p:
        p.host.run("nft", "-f", "-", stdin=RULESET)
        before = p.host.run("nft", "list", "ruleset").stdout
        proc = p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(conf))
        assert proc.returncode == 3
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "does not load with nft -c -f" in lines[0]
        assert "line 4" in lines[0] or f"{conf}:4" in lines[0], lines[0]  # where nft stumbled
        assert conf.read_text() == broken
        assert p.host.run("nft", "list", "ruleset").stdout == before


def test_nft_missing_and_no_privilege_are_exit_3(tmp_path):
    with namespace() as ns:
        ns.run("nft", "-f", "-", stdin=RULESET)
        nonft = ns.vrrpfw("check", "--iface", "eth0", "--backend", "nftables", "--no-persist",
                          env={"PATH": "/usr/bin:/bin"})
        assert nonft.returncode == 3 and "nft is not installed" in nonft.stderr
        capless = ns.run("setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-m", "vrrpfw",
                         "open", "--iface", "eth0", "--backend", "nftables", "--no-persist", check=False)
        assert capless.returncode == 3, capless.stdout + capless.stderr
        lines = capless.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot read nf_tables" in lines[0] and "root" in lines[0]


def test_backends_command_explains_the_choice():
    with pair() as p:
        p.host.run("nft", "-f", "-", stdin=RULESET)
        p.host.ipt("-P", "INPUT", "DROP")
        proc = p.host.run(sys.executable, "-m", "vrrpfw", "backends", "--json")
        report = json.loads(proc.stdout)
        assert report["auto"]["backends"] == ["iptables", "nftables"]
        kinds = {f["firewall"]: f for f in report["firewalls"]}
        assert kinds["legacy iptables"]["filters"] is True
        assert "ip other in (hook input, policy accept): filters" in kinds["nf_tables"]["detail"]
        plain = p.host.run(sys.executable, "-m", "vrrpfw", "backends").stdout
        assert "auto would use: iptables+nftables" in plain


LAYERED = """
import json, sys, vrrpfw
print(json.dumps(vrrpfw.open([sys.argv[1]], root=sys.argv[2], backend="nftables").to_dict()))
"""


@pytest.mark.needs("iptables-nft")
def test_iptables_nft_and_native_chains_persist_to_their_own_files(tmp_path):
    """Distribution defaults (under a temporary root): iptables-nft's chains
    go to /etc/iptables/rules.v4, native ones to /etc/nftables.conf."""
    root = tmp_path / "root"
    (root / "etc" / "iptables").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    conf = root / "etc" / "nftables.conf"
    original = ("flush ruleset\ntable inet native {\n  chain in {\n"
                "    type filter hook input priority 5; policy drop;\n  }\n}\n")
    conf.write_text(original)
    with pair() as p:
        p.host.run("nft", "-f", str(conf))
        p.host.run("iptables-nft", "-P", "INPUT", "DROP")
        assert blocked_inbound(p)
        # The admin saved the iptables-nft ruleset (vrrpfw never creates the file).
        (root / "etc" / "iptables" / "rules.v4").write_text(p.host.run("iptables-nft-save").stdout)
        out = json.loads(p.host.run(sys.executable, "-c", LAYERED, p.host_if, str(root)).stdout)
        assert out["exit_code"] == 0, out
        assert out["rules"][0]["persisted"] == "present"
        saved = (root / "etc" / "iptables" / "rules.v4").read_text()
        assert f"-A INPUT -d 224.0.0.18/32 -i {p.host_if} -p 112 -m comment --comment vrrpfw" in saved
        assert "insert rule inet native in" in conf.read_text()
        assert "ip filter" not in conf.read_text()
    with pair() as fresh:  # both files restored: VRRP gets in
        fresh.host.run("nft", "-f", "-", stdin=original)  # the files as they were: VRRP kept out
        fresh.host.run("iptables-nft", "-P", "INPUT", "DROP")
        assert blocked_inbound(fresh)
        fresh.host.run("nft", "flush", "ruleset")
        fresh.host.run("nft", "-f", "-", stdin=conf.read_text().replace(p.host_if, fresh.host_if))
        fresh.host.run("iptables-nft-restore", stdin=saved.replace(p.host_if, fresh.host_if))
        assert adverts(fresh.peer, fresh.peer_if, fresh.host, fresh.host_if)["delivered"] == 20


@pytest.mark.needs("iptables-nft")
def test_own_rule_recognised_after_iptables_nft_save_and_restore():
    """What every boot does on an iptables-nft host: save, then restore.
    vrrpfw's rule comes back with its comment as an xt compat match that
    nft's JSON shows by name only; vrrpfw must still call it its own, and
    close must remove it (not say ok while VRRP still passes)."""
    with pair() as p:
        p.host.run("iptables-nft", "-P", "INPUT", "DROP")
        assert blocked_inbound(p)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0, out
        saved = p.host.run("iptables-nft-save").stdout
        assert "--comment vrrpfw" in saved
        p.host.run("iptables-nft-restore", stdin=saved)
        listing = p.host.run("nft", "-j", "list", "chain", "ip", "filter", "INPUT").stdout
        assert '"xt"' in listing and '"comment"' in listing  # the representation this test is about
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["rules"][0]["runtime"] == "allowed", out["rules"]
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and out["changed"] is True, out
        assert "vrrpfw" not in p.host.run("iptables-nft-save").stdout
        assert blocked_inbound(p)
