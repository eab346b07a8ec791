"""The iptables ipset match (``-m set --match-set``) judged from the
kernel's current members, against real ipsets and real adverts in
namespaces: ``check``'s verdict must be what the packets do, and ``open``
must put VRRP's rule above fail2ban's REJECT, on legacy iptables and on
iptables-nft."""

from __future__ import annotations

import shutil

import pytest
from netns import adverts, pair

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("ipset") is None, reason="ipset is not installed")]

PEER, HOST = "192.0.2.2", "192.0.2.1"
TOOLS = ("iptables-legacy", "iptables-nft")
UNICAST = ("--peer", PEER, "--src", HOST)


def unicast_in(p, count=10):
    """Unicast adverts from the peer to the host's address."""
    return adverts(p.peer, p.peer_if, p.host, p.host_if, count, group=HOST)


def multicast_in(p, count=10):
    return adverts(p.peer, p.peer_if, p.host, p.host_if, count)


def inbound_rule(out):
    rules = [r for r in out["rules"] if r["direction"] == "in"]
    assert len(rules) == 1, out["rules"]
    return rules[0]


def fail2ban(p, tool):
    """fail2ban's iptables-ipset action: the peer banned."""
    p.host.run("ipset", "create", "f2b-sshd", "hash:ip", "timeout", "600")
    p.host.run("ipset", "add", "f2b-sshd", PEER, "timeout", "600")
    p.host.run(tool, "-w", "-I", "INPUT", "-p", "all", "-m", "set", "--match-set", "f2b-sshd", "src",
               "-j", "REJECT", "--reject-with", "icmp-port-unreachable")


@pytest.mark.parametrize("tool", TOOLS)
def test_fail2ban_ipset_is_no_lie_and_open_goes_above_it(tool):
    with pair("dyf") as p:
        fail2ban(p, tool)
        got = unicast_in(p)
        assert got["wire"] == 10 and got["delivered"] == 0, got
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
        rule = inbound_rule(out)
        assert rc == 1 and rule["runtime"] == "missing", out
        assert "depends on ipset f2b-sshd" in rule["detail"], rule
        # The peer unknown (multicast): somewhere on the /24, one member banned: never ok.
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 1 and inbound_rule(out)["runtime"] == "uncertain", out
        assert multicast_in(p)["delivered"] == 0

        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist")
        assert rc == 0, out
        got = multicast_in(p)
        assert got == {**got, "wire": 10, "delivered": 10}, got
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 0 and inbound_rule(out)["runtime"] == "allowed", out
        assert "depends on" not in inbound_rule(out)["detail"], out  # VRRP's rule decides first

        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--no-persist")
        assert rc == 0, out
        got = multicast_in(p)
        assert got["wire"] == 10 and got["delivered"] == 0, got


# ipset commands (";"-separated; PEER, HOST, IFACE filled in), the
# --match-set arguments, and whether the peer's unicast adverts are dropped.
SHAPES = {
    "hash-ip-peer": ("create s hash:ip; add s PEER", "s src", True),
    "hash-ip-other": ("create s hash:ip; add s 192.0.2.99", "s src", False),
    "hash-ip-dst-host": ("create s hash:ip; add s HOST", "s dst", True),
    "hash-ip-netmask": ("create s hash:ip netmask 24; add s 192.0.2.77", "s src", True),
    "negated-other": ("create s hash:ip; add s 192.0.2.99", "! s src", True),
    "net-nomatch": ("create s hash:net; add s 192.0.2.0/24; add s PEER nomatch", "s src", False),
    "net-nomatch-return-nomatch": ("create s hash:net; add s 192.0.2.0/24; add s PEER nomatch",
                                   "s src --return-nomatch", True),
    "ip-port-tcp": ("create s hash:ip,port; add s PEER,tcp:22", "s src,dst", False),
    "ip-port-vrrp": ("create s hash:ip,port; add s PEER,vrrp:0", "s src,dst", True),
    "ip-port-one-flag": ("create s hash:ip,port; add s PEER,vrrp:0", "s src", False),
    "bitmap": ("create s bitmap:ip range 192.0.2.0/24; add s PEER", "s src", True),
    # bitmap:port tests tcp and udp ports only: not even port 0 matches an advert.
    "bitmap-port-zero": ("create s bitmap:port range 0-1024; add s 0", "s src", False),
    "bitmap-port-ssh": ("create s bitmap:port range 0-1024; add s 22", "s src", False),
    "list-set": ("create m hash:ip; add m PEER; create s list:set; add s m", "s src", True),
    "net-iface": ("create s hash:net,iface; add s 192.0.2.0/24,IFACE", "s src,src", True),
    "timeout-entry": ("create s hash:ip timeout 300; add s PEER", "s src", True),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_ipset_verdict_is_what_adverts_do(shape):
    """check --peer's verdict against 10 unicast adverts from the peer."""
    commands, match, dropped = SHAPES[shape]
    with pair("dys") as p:
        for c in commands.replace("PEER", PEER).replace("HOST", HOST).replace("IFACE", p.host_if).split(";"):
            p.host.run("ipset", *c.split())
        words = match.split()
        neg = words[:1] if words[0] == "!" else []
        words = words[len(neg):]
        p.host.run("iptables-legacy", "-w", "-A", "INPUT", "-m", "set", *neg, "--match-set", *words[:2],
                   *words[2:], "-j", "DROP")
        got = unicast_in(p)
        assert got["wire"] == 10 and got["delivered"] == (0 if dropped else 10), got
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
        rule = inbound_rule(out)
        assert rule["runtime"] == ("missing" if dropped else "allowed-by-policy"), rule
        assert rc == (1 if dropped else 0), out


def test_ipset_filled_by_a_rule_that_matches_adverts_is_uncertain():
    """-j SET --add-set from every packet: the set may hold the peer by
    the next advert, whatever it holds now."""
    with pair("dyt") as p:
        p.host.run("ipset", "create", "s", "hash:ip")
        p.host.run("iptables-legacy", "-w", "-A", "INPUT", "-m", "set", "--match-set", "s", "src",
                   "-j", "DROP")
        p.host.run("iptables-legacy", "-w", "-A", "INPUT", "-j", "SET", "--add-set", "s", "src")
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
        assert rc == 1 and inbound_rule(out)["runtime"] == "uncertain", out
        got = unicast_in(p)  # the first advert fills the set, the rest are dropped
        assert got["wire"] == 10 and got["delivered"] < 10, got


@pytest.mark.parametrize("tool", TOOLS)
def test_open_goes_above_a_ban_list_that_does_not_hold_the_peer_yet(tool):
    """Today's verdict is ok by the set's current members; open still puts
    VRRP's rule above the REJECT, so banning the peer later drops nothing."""
    with pair("dyb") as p:
        p.host.run("ipset", "create", "f2b-sshd", "hash:ip")
        p.host.run("ipset", "add", "f2b-sshd", "192.0.2.99")
        p.host.run(tool, "-w", "-I", "INPUT", "-m", "set", "--match-set", "f2b-sshd", "src", "-j", "REJECT")
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
        rule = inbound_rule(out)
        assert rc == 0 and rule["runtime"] == "allowed-by-policy", out
        assert "depends on ipset f2b-sshd" in rule["detail"], rule

        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, *UNICAST, "--no-persist")
        assert rc == 0 and inbound_rule(out)["runtime"] == "allowed", out
        p.host.run("ipset", "add", "f2b-sshd", PEER)  # fail2ban bans the peer
        got = unicast_in(p)
        assert got["wire"] == 10 and got["delivered"] == 10, got
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
        assert rc == 0 and "depends on" not in inbound_rule(out)["detail"], out

        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--no-persist")
        assert rc == 0, out
        got = unicast_in(p)
        assert got["wire"] == 10 and got["delivered"] == 0, got
