"""--netns and --keepalived-conf end to end: vrrpfw runs in one namespace
("outer", standing in for the host) and acts in another named by the
option or by keepalived's net_namespace; real unicast adverts prove the
rules, and `check --listen` (also through --netns) hears them.

vrrpfw itself runs inside a throw-away namespace too, so that if entering
the target failed, only that namespace's (empty) firewall could change;
the test asserts that it did not."""

from __future__ import annotations

import json
import os
import sys

import pytest
from netns import namespace, pair

pytestmark = [pytest.mark.integration, pytest.mark.needs("nft")]

CONF = """net_namespace {ns}
vrrp_instance VI_1 {{
  interface {iface}
  virtual_router_id 51
  priority 100
  unicast_src_ip 192.0.2.1
  unicast_peer {{
    192.0.2.2
  }}
  virtual_ipaddress {{
    192.0.2.100/24
  }}
}}
"""

SENDER = """
import socket, sys, time
from vrrpfw.listen.packet import encode_vrrp
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xC0)  # keepalived's header: TOS 0xc0, DF clear
s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10), 0)
msg = encode_vrrp(2, 51, 200, ["192.0.2.100"])
for _ in range(int(sys.argv[1])):
    s.sendto(msg, ("192.0.2.1", 0))
    time.sleep(0.1)
"""


def drop_policy(ns):
    ns.run("nft", "-f", "-", stdin="table inet site {\n chain input {\n"
                                   "  type filter hook input priority 0; policy drop;\n }\n}\n")


def cli(outer, *args):
    return outer.run(sys.executable, "-m", "vrrpfw", *args, check=False, timeout=120)


def send_unicast(peer, count):
    return peer.popen(sys.executable, "-c", SENDER, str(count))


def listen_json(outer, host, iface, seconds=2.5):
    return cli(outer, "check", "--listen", str(seconds), "--netns", host.name, "--iface", iface, "--json")


def test_keepalived_conf_with_net_namespace_opens_inside_that_namespace(tmp_path):
    with pair("vrns") as p, namespace("vrout") as outer:
        drop_policy(p.host)
        conf = tmp_path / "keepalived.conf"
        conf.write_text(CONF.format(ns=p.host.name, iface=p.host_if))
        before_outer = outer.run("nft", "list", "ruleset").stdout

        # Closed: the peer's unicast adverts are on the wire, not delivered.
        sender = send_unicast(p.peer, 30)
        try:
            proc = listen_json(outer, p.host, p.host_if)
        finally:
            sender.wait(timeout=30)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        (src,) = [s for s in json.loads(proc.stdout)["sources"] if s["src"] == "192.0.2.2"]
        assert src["verdict"] == "dropped here" and src["wire"] > 0 and src["delivered"] == 0

        proc = cli(outer, "open", "--keepalived-conf", str(conf), "--backend", "nftables", "--no-persist",
                   "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        doc = json.loads(proc.stdout)
        assert any("vrrp_instance VI_1" in line for line in doc["derivation"])
        assert {(r["direction"], r["group"]) for r in doc["rules"]} == {
            ("in", "peer 192.0.2.2 local 192.0.2.1"), ("out", "peer 192.0.2.2 local 192.0.2.1")}
        ruleset = p.host.run("nft", "list", "ruleset").stdout
        assert 'ip saddr 192.0.2.2 ip daddr 192.0.2.1' in ruleset and "vrrpfw" in ruleset
        assert outer.run("nft", "list", "ruleset").stdout == before_outer

        # Open: delivered, heard by --listen through --netns.
        sender = send_unicast(p.peer, 30)
        try:
            proc = listen_json(outer, p.host, p.host_if)
        finally:
            sender.wait(timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (src,) = [s for s in json.loads(proc.stdout)["sources"] if s["src"] == "192.0.2.2"]
        assert src["verdict"] == "delivered" and src["delivered"] == src["wire"] > 0

        # Idempotent, and close through the configuration removes exactly ours.
        again = cli(outer, "open", "--keepalived-conf", str(conf), "--backend", "nftables", "--no-persist",
                    "--json")
        assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False
        proc = cli(outer, "close", "--keepalived-conf", str(conf), "--backend", "nftables", "--no-persist")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "vrrpfw" not in p.host.run("nft", "list", "ruleset").stdout
        assert "policy drop" in p.host.run("nft", "list", "ruleset").stdout


def test_netns_option_and_its_errors(tmp_path):
    with pair("vrns") as p, namespace("vrout") as outer:
        drop_policy(p.host)
        before_outer = outer.run("nft", "list", "ruleset").stdout
        proc = cli(outer, "open", "--netns", p.host.name, "--iface", p.host_if, "--family", "ipv6",
                   "--backend", "nftables", "--no-persist", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "ip6 daddr ff02::12" in p.host.run("nft", "list", "ruleset").stdout
        assert outer.run("nft", "list", "ruleset").stdout == before_outer

        missing = cli(outer, "open", "--netns", "vrrpfw-absent-ns", "--iface", "x0", "--no-persist")
        assert missing.returncode == 3 and "does not exist" in missing.stderr
        assert len(missing.stderr.strip().splitlines()) == 1

        conf = tmp_path / "k.conf"
        conf.write_text(CONF.format(ns=p.host.name, iface=p.host_if))
        clash = cli(outer, "open", "--keepalived-conf", str(conf), "--netns", outer.name, "--no-persist")
        assert clash.returncode == 2 and "contradicts" in clash.stderr
        assert outer.run("nft", "list", "ruleset").stdout == before_outer


def test_unreadable_conf_is_one_line_with_no_change(tmp_path):
    with namespace("vrout") as outer:
        conf = tmp_path / "k.conf"
        conf.write_text("vrrp_instance X {\n  interface eth0\n  virtual_router_id 300\n}\n")
        proc = cli(outer, "open", "--keepalived-conf", str(conf), "--no-persist")
        assert proc.returncode == 2
        line, = proc.stderr.strip().splitlines()
        assert line.startswith(f"vrrpfw: error: {conf}:3") and "Traceback" not in proc.stderr
        os.chmod(conf, 0)
        if os.geteuid() == 0:
            # root reads any file; an unreadable one is simulated by a directory
            conf.unlink()
            conf.mkdir()
        proc = cli(outer, "open", "--keepalived-conf", str(conf), "--no-persist")
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
        assert outer.run("nft", "list", "ruleset").stdout == ""
