"""``vrrpfw.listen`` against real adverts between two namespaces: what it
calls delivered, dropped here, ttl not 255 and nothing heard must be what
the kernel did.  Every packet stays between namespaces these tests create."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from netns import Netns, Pair, pair

from vrrpfw.prove import netns as _netns

pytestmark = [pytest.mark.integration, pytest.mark.needs("nft"), pytest.mark.one_end]

LISTENER = """
import json, sys
from vrrpfw.listen.listener import listen
ifaces, secs, fams = sys.argv[1].split(","), float(sys.argv[2]), tuple(sys.argv[3].split(","))
r = listen(ifaces, secs, families=fams, ready=lambda: print("ready", flush=True))
print(json.dumps(r.to_json()))
print(json.dumps(r.lines()))
"""

SENDER = """
import socket, struct, sys, time
from vrrpfw.listen.packet import encode_ah, encode_vrrp
fam, iface, group, ttl, count, vrid, addrs, src, proto = sys.argv[1:10]
ttl, count, vrid, proto = int(ttl), int(count), int(vrid), int(proto)
addrs = [a for a in addrs.split(",") if a]
ifindex = socket.if_nametoindex(iface)
if fam == "ipv4":  # keepalived's header: TOS 0xc0 (CS6), DF clear
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xC0)
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10), 0)  # IP_PMTUDISC_DONT
    mreqn = socket.inet_aton("0.0.0.0") * 2 + struct.pack("@i", ifindex)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    msg, dest = encode_vrrp(2, vrid, 100, addrs, 1, auth_type=2 if proto == 51 else 0), (group, 0)
    msg = encode_ah(msg) if proto == 51 else msg
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
    s.setsockopt(socket.IPPROTO_IPV6, getattr(socket, "IPV6_TCLASS", 67), 0xC0)  # keepalived's traffic class
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    s.setsockopt(socket.IPPROTO_IPV6, getattr(socket, "IPV6_CHECKSUM", 7), 6)  # the kernel fills it
    if src:
        s.bind((src, 0, 0, ifindex))
    msg, dest = encode_vrrp(3, vrid, 100, addrs, 1.0, "ipv6"), (group, 0, 0, ifindex)
for _ in range(count):
    s.sendto(msg, dest)
    time.sleep(0.01)
print("sent", count)
"""


def start_listen(ns: Netns, ifaces, seconds, families=("ipv4", "ipv6")) -> subprocess.Popen:
    proc = ns.popen(sys.executable, "-c", LISTENER, ",".join(ifaces), str(seconds), ",".join(families))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        _netns.release(proc)
        raise AssertionError(f"listener did not start: {line}{proc.stderr.read() if proc.stderr else ''}")
    return proc


def finish_listen(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        _netns.release(proc)
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    report = json.loads(lines[0])
    print("\n".join(json.loads(lines[1])))
    return report


def send(ns: Netns, iface: str, family="ipv4", group="224.0.0.18", ttl=255, count=10, vrid=51,
         addrs="192.0.2.100", src="", proto=112) -> None:
    ns.run(sys.executable, "-c", SENDER, family, iface, group, str(ttl), str(count), str(vrid), addrs, src,
           str(proto))


def listen_while(p: Pair, seconds=1.5, families=("ipv4", "ipv6"), **kw) -> dict:
    proc = start_listen(p.host, [p.host_if], seconds, families)
    try:
        if kw.pop("send", True):
            send(p.peer, p.peer_if, **kw)
    except BaseException:
        _netns.release(proc)
        raise
    return finish_listen(proc)


def only_source(report: dict) -> dict:
    assert len(report["sources"]) == 1, report
    return report["sources"][0]


def test_vrrpv2_adverts_are_delivered():
    with pair("vlst") as p:
        started = time.monotonic()
        report = listen_while(p, count=10)
        print(f"listen round trip {time.monotonic() - started:.2f}s")
        s = only_source(report)
        assert (s["verdict"], s["wire"], s["delivered"]) == ("delivered", 10, 10)
        assert (s["src"], s["dst"], s["vrid"]) == ("192.0.2.2", "224.0.0.18", 51)
        assert (s["ttl"], s["version"]) == (255, 2)
        assert s["virtual_addresses"] == ["192.0.2.100"] and s["auth"] == "none"
        assert report["exit_code"] == 0 and report["nothing_heard"] == []


def test_nft_input_drop_is_dropped_here_with_counter_growth():
    with pair("vlst") as p:
        p.host.run("nft", "-f", "-", stdin=(
            "add table inet t\n"
            "add chain inet t c { type filter hook input priority 0; }\n"
            "add rule inet t c ip protocol vrrp counter drop\n"))
        report = listen_while(p, count=10)
        s = only_source(report)
        assert (s["verdict"], s["wire"], s["delivered"]) == ("dropped here", 10, 0)
        grown = [(c["layer"], c["family"], c["table"], c["chain"], c["hook"], c["packets"])
                 for c in s["counters"]]
        assert grown == [("nftables", "inet", "t", "c", "input", 10)]
        assert report["exit_code"] == 1


def test_legacy_iptables_drop_is_dropped_here_with_counter_growth():
    with pair("vlst") as p:
        p.host.ipt("-A", "INPUT", "-p", "112", "-j", "DROP")
        report = listen_while(p, count=10, families=("ipv4",))
        s = only_source(report)
        assert (s["verdict"], s["delivered"]) == ("dropped here", 0)
        assert [(c["layer"], c["table"], c["rule"], c["packets"]) for c in s["counters"]] == [
            ("iptables-legacy", "filter", "rule 1", 10)]


def test_ah_wrapped_adverts_are_delivered_and_a_drop_of_112_does_not_touch_them():
    with pair("vlst") as p:
        # a rule for protocol 112 only: AH-wrapped adverts (protocol 51) pass it
        p.host.ipt("-A", "INPUT", "-p", "112", "-j", "DROP")
        report = listen_while(p, count=6, proto=51, families=("ipv4",))
        s = only_source(report)
        assert (s["verdict"], s["auth"], s["wire"], s["delivered"]) == ("delivered", "ah", 6, 6)
        p.host.ipt("-A", "INPUT", "-p", "ah", "-j", "DROP")
        s = only_source(listen_while(p, count=6, proto=51, families=("ipv4",)))
        assert (s["verdict"], s["delivered"]) == ("dropped here", 0)
        assert [(c["rule"], c["packets"]) for c in s["counters"]] == [("rule 2", 6)]


def test_ttl_1_is_ttl_not_255():
    with pair("vlst") as p:
        report = listen_while(p, count=5, ttl=1)
        s = only_source(report)
        assert (s["verdict"], s["ttl"], s["wire"]) == ("ttl not 255", 1, 5)
        assert report["exit_code"] == 1


def test_wrong_group():
    with pair("vlst") as p:
        report = listen_while(p, count=5, group="224.0.0.19")
        s = only_source(report)
        assert (s["verdict"], s["dst"]) == ("wrong group", "224.0.0.19")
        assert report["exit_code"] == 1


def test_nothing_sent_is_exit_5():
    with pair("vlst") as p:
        report = listen_while(p, seconds=0.5, send=False)
        assert report["sources"] == [] and report["nothing_heard"] == [p.host_if]
        assert report["exit_code"] == 5


def test_ipv6_vrrpv3_to_ff02_12_is_delivered():
    with pair("vlst") as p:
        _netns.add_addresses(p.host.ns, p.host_if, ["fd00::1/64 nodad"])
        _netns.add_addresses(p.peer.ns, p.peer_if, ["fd00::2/64 nodad"])
        report = listen_while(p, count=10, family="ipv6", group="ff02::12", addrs="fd00::100",
                              src="fd00::2")
        s = only_source(report)
        assert (s["family"], s["src"], s["dst"]) == ("ipv6", "fd00::2", "ff02::12")
        assert (s["version"], s["ttl"]) == (3, 255)
        assert (s["verdict"], s["wire"], s["delivered"], s["checksum_bad"]) == ("delivered", 10, 10, 0)
        assert s["virtual_addresses"] == ["fd00::100"]


def test_interface_missing_is_one_line_environment_error():
    with pair("vlst") as p:
        proc = p.host.run(sys.executable, "-c",
                          "from vrrpfw.listen.listener import listen; listen(['nosuch0'], 1)", check=False)
        assert proc.returncode != 0 and "no interface nosuch0 in this network namespace" in proc.stderr


KEEPALIVED = """global_defs {{
  router_id {name}
}}
vrrp_instance A {{
  state BACKUP
  interface {iface}
  virtual_router_id 51
  priority {prio_a}
  advert_int 1
  virtual_ipaddress {{
    192.0.2.100/24
  }}
}}
vrrp_instance B {{
  state BACKUP
  interface {iface}
  virtual_router_id 52
  priority {prio_b}
  advert_int 1
  virtual_ipaddress {{
    192.0.2.101/24
  }}
}}
"""


@pytest.mark.needs("keepalived")
def test_real_keepalived_both_vrids(tmp_path):
    with pair("vlst") as p:
        nodes = []
        try:
            nodes_conf = ((p.host, p.host_if, "a", 200, 100), (p.peer, p.peer_if, "b", 100, 200))
            for ns, iface, name, pa, pb in nodes_conf:
                conf = os.path.join(str(tmp_path), f"{name}.conf")
                with open(conf, "w") as f:
                    f.write(KEEPALIVED.format(name=name, iface=iface, prio_a=pa, prio_b=pb))
                nodes.append(ns.popen("keepalived", "-n", "-l", "-P", "-G", "-f", conf,
                                      "-p", os.path.join(str(tmp_path), f"{name}.pid"),
                                      "-r", os.path.join(str(tmp_path), f"{name}-vrrp.pid")))
            time.sleep(5)  # both start as BACKUP; each becomes master of one VRID within ~3-4 s
            report = finish_listen(start_listen(p.host, [p.host_if], 3.5, ("ipv4",)))
        finally:
            for node in nodes:
                node.terminate()
                try:
                    node.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.kill()
                    node.wait()
                _netns.release(node)
        heard = {(s["vrid"], s["src"], s["verdict"]) for s in report["sources"]}
        assert heard == {(52, "192.0.2.2", "delivered")}, report
        assert {(x["vrid"], x["src"]) for x in report["sent_by_this_host"]} == {(51, "192.0.2.1")}
        assert all(s["ttl"] == 255 and s["wire"] >= 3 for s in report["sources"])
        assert report["exit_code"] == 0
