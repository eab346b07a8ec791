"""Bridges on the judged path, against real bridges and real adverts.

keepalived on br0 (a veth port of it here): nft ``bridge`` family chains see
the advert on the port, and with br_netfilter on, ip-family rules see the
port through ``-m physdev``.  ``check`` must say what the packets do (or
``uncertain``), never ok while they are dropped; ``open`` must make them
arrive or exit 1 naming what it cannot open.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import Iterator, List

import pytest
from netns import Netns, adverts, namespace, unique

from vrrpfw.prove import netns as _netns

pytestmark = pytest.mark.integration

BRNF = "/proc/sys/net/bridge/bridge-nf-call-iptables"
needs_brnf = pytest.mark.skipif(not os.path.exists(BRNF),
                                reason="br_netfilter is not loaded in this kernel (no /proc/sys/net/bridge)")


@dataclass
class Bridged:
    """``host`` has br0 (192.0.2.1/24) with ``ports``; behind each port a
    peer namespace (192.0.2.2, .3, ...) on ``peer_if``."""

    host: Netns
    ports: List[str]
    peers: List[Netns]
    peer_if: str = "vp0"

    def inbound(self, i: int = 0, count: int = 10) -> int:
        return adverts(self.peers[i], self.peer_if, self.host, "br0", count)["delivered"]

    def outbound(self, i: int = 0, count: int = 10) -> int:
        return adverts(self.host, "br0", self.peers[i], self.peer_if, count)["delivered"]

    def brnf(self, on: bool) -> None:
        self.host.run("sysctl", "-q", "-w", f"net.bridge.bridge-nf-call-iptables={int(on)}")

    def check(self) -> tuple:
        return self.host.vrrpfw_json("check", "--iface", "br0", "--no-persist")


@contextlib.contextmanager
def bridged(nports: int = 1) -> Iterator[Bridged]:
    with contextlib.ExitStack() as stack:
        host = stack.enter_context(namespace("vrbh"))
        peers = [stack.enter_context(namespace("vrbp")) for _ in range(nports)]
        br = Bridged(host, [], peers)
        if os.path.exists(BRNF):  # a new namespace starts with the kernel's default (1): say it
            br.brnf(False)
            host.run("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-ip6tables=0")
        # No multicast snooping: which ports an IPv6 group reaches must not
        # hang on MLD reports racing the first adverts (224.0.0.x is flooded anyway).
        host.run("ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        for i, peer in enumerate(peers):
            port = unique("vb")
            _netns.veth(host.ns, port, peer.ns, br.peer_if)
            host.run("ip", "link", "set", port, "master", "br0")
            _netns.add_addresses(peer.ns, br.peer_if, [f"192.0.2.{i + 2}/24"])
            _netns.link_up(host.ns, port)
            _netns.link_up(peer.ns, br.peer_if)
            br.ports.append(port)
        _netns.add_addresses(host.ns, "br0", ["192.0.2.1/24"])
        _netns.link_up(host.ns, "br0")
        for peer in peers:
            _netns.wait_operstate_up(peer.ns, br.peer_if)
        _netns.wait_operstate_up(host.ns, "br0")
        yield br


def states(out: dict) -> dict:
    return {(r["direction"], r["interface"]): r["runtime"] for r in out["rules"]}


def detail(out: dict, direction: str = "in") -> str:
    return " ".join(r["detail"] for r in out["rules"] if r["direction"] == direction)


def test_a_bridge_without_filtering_is_ok():
    with bridged() as b:
        assert (b.inbound(), b.outbound()) == (10, 10)
        rc, out = b.check()
        assert rc == 0, out


@pytest.mark.parametrize("drop", ["ip protocol 112 drop", "meta l4proto vrrp drop"])
def test_bridge_family_drop_on_input_is_missing_and_open_says_why(drop):
    with bridged() as b:
        b.host.run("nft", "add", "table", "bridge", "f")
        b.host.run("nft", "add", "chain", "bridge", "f", "in", "{ type filter hook input priority 0; }")
        b.host.run("nft", "add", "rule", "bridge", "f", "in", *drop.split())
        assert b.inbound() == 0 and b.outbound() == 10
        rc, out = b.check()
        assert rc == 1 and states(out)[("in", "br0")] == "missing", out
        assert f"nft bridge f in (port {b.ports[0]}): dropped by" in detail(out)
        rc, out = b.host.vrrpfw_json("open", "--iface", "br0", "--no-persist")
        assert rc == 1, out  # it cannot open a bridge chain: never a claimed success
        (blocker,) = [x for x in out["blockers"] if "bridge f in" in x]
        assert "vrrpfw does not write nft bridge-family tables" in blocker
        assert b.inbound() == 0
        # The rule the line names makes them arrive (the hint is right).
        hint = re.search(r"`nft (insert rule bridge f in [^`]+)`", blocker)
        assert hint, blocker
        b.host.run("nft", *hint.group(1).split())
        assert b.inbound() == 10
        rc, out = b.check()
        assert rc == 0, out


def test_bridge_family_drop_on_output_is_missing():
    with bridged() as b:
        b.host.run("nft", "-f", "-", stdin="table bridge f {\n chain out {\n"
                   "  type filter hook output priority 0;\n  ip protocol vrrp drop\n }\n}\n")
        assert b.inbound() == 10 and b.outbound() == 0
        rc, out = b.check()
        assert rc == 1 and states(out) == {("in", "br0"): "allowed-by-policy", ("out", "br0"): "missing"}, out
        assert f"nft bridge f out (port {b.ports[0]}): dropped by" in detail(out, "out")


def test_bridge_family_accepts_are_judged():
    """policy drop in bridge input, VRRP accepted by ether daddr (the
    group's MAC), by ether type + protocol, or by the port's name."""
    with bridged() as b:
        for accept in ("ether daddr 01:00:5e:00:00:12 accept", "ether type ip ip protocol vrrp accept",
                       f'iifname "{b.ports[0]}" accept'):
            b.host.run("nft", "-f", "-", stdin="flush ruleset\ntable bridge f {\n chain in {\n"
                       f"  type filter hook input priority 0; policy drop;\n  {accept}\n }}\n}}\n")
            assert b.inbound() == 10, accept
            rc, out = b.check()
            assert rc == 0 and states(out)[("in", "br0")] == "allowed-by-other", (accept, out)
        b.host.run("nft", "-f", "-", stdin="flush ruleset\ntable bridge f {\n chain in {\n"
                   "  type filter hook input priority 0; policy drop;\n  iifname \"br0\" accept\n }\n}\n")
        assert b.inbound() == 0  # the bridge chain sees the port, not br0
        rc, out = b.check()
        assert rc == 1 and states(out)[("in", "br0")] == "missing", out


def test_a_port_specific_drop_with_two_ports_is_uncertain():
    with bridged(2) as b:
        b.host.run("nft", "-f", "-", stdin="table bridge f {\n chain in {\n"
                   f"  type filter hook input priority 0;\n  iifname \"{b.ports[0]}\" ip protocol vrrp drop\n"
                   " }\n}\n")
        assert (b.inbound(0), b.inbound(1)) == (0, 10)
        rc, out = b.check()
        assert rc == 1 and states(out)[("in", "br0")] == "uncertain", out


@needs_brnf
@pytest.mark.parametrize("tool", ["iptables-nft", "iptables-legacy"])
def test_br_netfilter_physdev_drop(tool):
    with bridged() as b:
        b.host.run(tool, "-w", "-A", "INPUT", "-m", "physdev", "--physdev-in", b.ports[0], "-p", "112",
                   "-j", "DROP")
        # Off: the ip hooks see no bridge port, the rule never matches.
        assert b.inbound() == 10
        rc, out = b.check()
        assert rc == 0, out
        b.brnf(True)
        assert b.inbound() == 0
        rc, out = b.check()
        assert rc == 1 and states(out)[("in", "br0")] == "missing", out
        assert "physdev-in" in detail(out)
        rc, out = b.host.vrrpfw_json("open", "--iface", "br0", "--no-persist")
        assert rc == 0, out
        assert b.inbound() == 10
        assert b.host.vrrpfw("close", "--iface", "br0", "--no-persist").returncode == 0
        assert b.inbound() == 0


@needs_brnf
def test_br_netfilter_physdev_on_two_ports_is_uncertain_and_negations_judged():
    with bridged(2) as b:
        b.brnf(True)
        b.host.run("iptables-nft", "-A", "INPUT", "-m", "physdev", "--physdev-in", b.ports[1], "-p", "112",
                   "-j", "DROP")
        assert (b.inbound(0), b.inbound(1)) == (10, 0)
        rc, out = b.check()
        assert rc == 1 and states(out)[("in", "br0")] == "uncertain", out
        # Bridged (forwarded) only: an advert to this host is never "bridged".
        b.host.run("iptables-nft", "-F", "INPUT")
        b.host.run("iptables-nft", "-A", "INPUT", "-m", "physdev", "--physdev-is-bridged", "-p", "112",
                   "-j", "DROP")
        b.host.run("iptables-nft", "-A", "OUTPUT", "-m", "physdev", "!", "--physdev-is-bridged", "-p", "112",
                   "-j", "DROP")
        assert (b.inbound(0), b.inbound(1), b.outbound(0)) == (10, 10, 0)
        rc, out = b.check()
        assert rc == 1 and states(out) == {("in", "br0"): "allowed-by-policy", ("out", "br0"): "missing"}, out


def add_ipv6(b: Bridged) -> None:
    """Fixed addresses without duplicate address detection (usable at once)."""
    for ns, ifname, n in [(b.host, "br0", 1)] + [(p, b.peer_if, i + 2) for i, p in enumerate(b.peers)]:
        ns.run("sysctl", "-q", "-w", f"net.ipv6.conf.{ifname}.accept_dad=0")
        _netns.add_addresses(ns.ns, ifname, [f"fe80::{n}/64 nodad", f"fd00::{n}/64 nodad"])


@needs_brnf
def test_ipv6_bridge_drop_and_physdev_follow_call_ip6tables():
    with bridged() as b:
        add_ipv6(b)
        b.host.run("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-ip6tables=0")
        b.host.run("ip6tables-nft", "-A", "INPUT", "-m", "physdev", "--physdev-in", b.ports[0], "-p", "112",
                   "-j", "DROP")

        def v6():
            return adverts(b.peers[0], b.peer_if, b.host, "br0", 10, group="ff02::12")["delivered"]

        def check6():
            rc, out = b.host.vrrpfw_json("check", "--iface", "br0", "--family", "ipv6", "--no-persist")
            return rc, states(out)[("in", "br0")], out

        assert v6() == 10
        rc, state, out = check6()
        assert rc == 0 and state == "allowed-by-policy", out
        b.host.run("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-ip6tables=1")
        assert v6() == 0
        rc, state, out = check6()
        assert rc == 1 and state == "missing", out
        b.host.run("ip6tables-nft", "-F", "INPUT")
        b.host.run("nft", "-f", "-", stdin="table bridge f {\n chain in {\n"
                   "  type filter hook input priority 0;\n  meta l4proto vrrp drop\n }\n}\n")
        assert v6() == 0
        rc, state, out = check6()
        assert rc == 1 and state == "missing" and "nft bridge f in" in detail(out), out


def test_a_bridge_port_as_the_interface():
    """Adverts to a port never reach a socket there (the bridge takes them:
    0/10 with no firewall); ours sent straight out of a port bypass the
    bridge hooks (10/10 past a bridge output drop)."""
    with bridged() as b:
        port = b.ports[0]
        b.host.run("nft", "-f", "-", stdin="table bridge f {\n chain out {\n"
                   "  type filter hook output priority 0;\n  ip protocol vrrp drop\n }\n}\n")
        assert adverts(b.peers[0], b.peer_if, b.host, port, 10)["delivered"] == 0
        assert adverts(b.host, port, b.peers[0], b.peer_if, 10)["delivered"] == 10
        rc, out = b.host.vrrpfw_json("check", "--iface", port, "--no-persist")
        assert rc == 1 and states(out) == {("in", port): "uncertain", ("out", port): "allowed-by-policy"}, out
        assert f"{port} is a port of bridge br0" in detail(out)


@pytest.mark.needs("ebtables-nft")
def test_ebtables_nft_drop_is_read_from_its_listing():
    """ebtables-nft's --ip-proto is a compat match nft's JSON hides: read
    from ``ebtables-nft -L``, it is a certain drop, not a maybe."""
    with bridged() as b:
        b.host.run("ebtables-nft", "-A", "INPUT", "-p", "IPv4", "--ip-proto", "112", "-j", "DROP")
        assert b.inbound() == 0
        rc, out = b.check()
        assert rc == 1 and states(out)[("in", "br0")] == "missing", out
        assert "nft bridge filter INPUT" in detail(out) and "--ip-proto" in detail(out)
        rc, out = b.host.vrrpfw_json("open", "--iface", "br0", "--no-persist")
        assert rc == 1, out
        (blocker,) = [x for x in out["blockers"] if "bridge filter INPUT" in x]
        hint = re.search(r"`(ebtables-nft -t filter -I INPUT [^`]+)`", blocker)
        assert hint, blocker  # ebtables-nft's own command: its table stays listable
        b.host.run(*hint.group(1).split())
        assert b.inbound() == 10
        rc, out = b.check()
        assert rc == 0, out
