"""Dynamic state (recent lists, ipsets) tested on the advert's path and
filled by a rule the advert itself never reaches first: behind OUTPUT's
user chain, or in a chain reached only through a goto and a nested jump.
``check`` reads that state only when a rule the advert reaches tests it,
and then it must still see every filler on the host's paths: the verdict
must be what real packets do, never a false "ok"."""

from __future__ import annotations

import shutil

import pytest
from netns import adverts, pair

pytestmark = pytest.mark.integration

PEER, HOST = "192.0.2.2", "192.0.2.1"
UNICAST = ("--peer", PEER, "--src", HOST)


def rules(p, *lines: str) -> None:
    for line in lines:
        p.host.run("iptables-legacy", "-w", *line.split())


def inbound_verdict(p):
    rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
    rule = [r for r in out["rules"] if r["direction"] == "in"][0]
    return rc, rule


def peer_to_host(p, count=10):
    return adverts(p.peer, p.peer_if, p.host, p.host_if, count, group=HOST)


def host_to_peer(p):
    got = adverts(p.host, p.host_if, p.peer, p.peer_if, 1, group=PEER)
    assert got["wire"] == 1, got


def test_recent_list_filled_behind_outputs_user_chain():
    """The host's own adverts to the peer list it (OUTPUT -> FILL, --rdest):
    empty now, yet once the host has sent, the peer's adverts are dropped."""
    with pair("dfo") as p:
        rules(p, "-N FILL", "-A FILL -p 112 -m recent --set --name L --rdest", "-A OUTPUT -j FILL",
              "-A INPUT -p 112 -m recent --rcheck --name L -j DROP")
        rc, rule = inbound_verdict(p)
        assert rc == 1 and rule["runtime"] == "uncertain", rule
        assert "depends on recent list L" in rule["detail"], rule
        assert peer_to_host(p)["delivered"] == 10  # nothing sent yet: the list is empty
        host_to_peer(p)
        got = peer_to_host(p)
        assert got["wire"] == 10 and got["delivered"] == 0, got  # the filler decided


def test_recent_list_filled_through_a_goto_and_a_nested_jump():
    """INPUT -> A (a RETURN that does not apply, then -g B) -> B -j C, where
    C lists every advert: the third within a minute is dropped."""
    with pair("dfg") as p:
        rules(p, "-N A", "-N B", "-N C", "-A C -m recent --set --name L", "-A B -p 112 -j C",
              "-A A -s 198.51.100.0/24 -j RETURN", "-A A -g B", "-A INPUT -j A",
              "-A INPUT -m recent --rcheck --name L --seconds 60 --hitcount 3 -j DROP")
        rc, rule = inbound_verdict(p)
        assert rc == 1 and rule["runtime"] == "uncertain", rule
        got = peer_to_host(p)
        assert got["wire"] == 10 and 0 < got["delivered"] < 10, got


@pytest.mark.skipif(shutil.which("ipset") is None, reason="ipset is not installed")
def test_ipset_filled_by_a_set_target_behind_outputs_user_chain():
    """OUTPUT -> FILL -j SET --add-set s dst: the host's advert to the peer
    puts the peer in the set INPUT drops."""
    with pair("dfs") as p:
        p.host.run("ipset", "create", "s", "hash:ip")
        rules(p, "-N FILL", "-A FILL -p 112 -j SET --add-set s dst", "-A OUTPUT -j FILL",
              "-A INPUT -m set --match-set s src -j DROP")
        rc, rule = inbound_verdict(p)
        assert rc == 1 and rule["runtime"] == "uncertain", rule
        assert peer_to_host(p)["delivered"] == 10
        host_to_peer(p)
        got = peer_to_host(p)
        assert got["wire"] == 10 and got["delivered"] == 0, got


def test_state_behind_vrrpfws_rule_is_not_what_decides():
    """vrrpfw's rule on top of INPUT accepts the adverts before the jump to
    a chain that tests a list the host fills: ok, and every advert arrives
    however full the list is."""
    with pair("dfv") as p:
        rules(p, "-P INPUT DROP", "-N BIG", "-N FILL", "-A FILL -p 112 -m recent --set --name L --rdest",
              "-A OUTPUT -j FILL", "-A BIG -p 112 -m recent --rcheck --name L -j DROP", "-A INPUT -j BIG")
        rc, rule = inbound_verdict(p)
        assert rc == 1 and rule["runtime"] == "missing", rule
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, *UNICAST, "--no-persist")
        assert rc == 0, out
        host_to_peer(p)
        rc, rule = inbound_verdict(p)
        assert rc == 0 and rule["runtime"] == "allowed", rule
        got = peer_to_host(p)
        assert got["wire"] == 10 and got["delivered"] == 10, got
