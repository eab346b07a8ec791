"""The verdicts of ``check --listen``, pure: wire and delivered records in,
verdicts, exit code and report out.  No sockets."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vrrpfw.errors import EnvironmentProblem, InputError
from vrrpfw.listen.counters import counter_growth, legacy_drop_counters, nft_drop_counters
from vrrpfw.listen.listener import listen
from vrrpfw.listen.packet import Advert
from vrrpfw.listen.report import (
    DELIVERED,
    DROPPED,
    EXIT_NOTHING_HEARD,
    TTL_NOT_255,
    VRID_CONFLICT,
    WRONG_GROUP,
    CounterGrowth,
    Counters,
    Heard,
)
from vrrpfw.listen.verdicts import aggregate

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def adv(src="192.0.2.2", dst="224.0.0.18", vrid=51, ttl=255, addrs=("192.0.2.100",), digest="d1",
        family="ipv4", checksum_ok=True, priority=100) -> Advert:
    return Advert(family, src, dst, ttl, 112, 2, vrid, priority, 0, "none", 1.0, tuple(addrs), checksum_ok,
                  digest)


def wire(a: Advert, n: int, iface="eth1", outgoing=False):
    return [Heard(iface, a, outgoing)] * n


def test_all_delivered_is_exit_0():
    a = adv()
    r = aggregate(["eth1"], wire(a, 5), wire(a, 5))
    (s,) = r.sources
    assert (s.verdict, s.wire, s.delivered, s.ttl) == (DELIVERED, 5, 5, 255)
    assert r.exit_code == 0 and r.nothing_heard == []


def test_identical_adverts_match_as_a_multiset():
    a = adv()
    r = aggregate(["eth1"], wire(a, 5), wire(a, 3))
    (s,) = r.sources
    assert (s.verdict, s.delivered, s.wire) == (DELIVERED, 3, 5)
    assert "2 dropped here" in s.detail
    assert r.exit_code == 1  # partly dropped still fails


def test_more_delivered_than_wire_is_capped():
    # a packet at the window's edge (raw socket opened first) or our own looped-back advert
    a = adv()
    r = aggregate(["eth1"], wire(a, 2), wire(a, 4))
    assert (r.sources[0].delivered, r.exit_code) == (2, 0)


def test_none_delivered_is_dropped_here_with_counters_of_its_family():
    a = adv()
    grown = [CounterGrowth("nftables", "inet", "t", "c", "input", "handle 2", "drop", 5),
             CounterGrowth("ip6tables-legacy", "ip6", "filter", "INPUT", "input", "rule 1", "DROP", 3),
             CounterGrowth("iptables-legacy", "ip", "filter", "INPUT", "input", "policy", "DROP", 5)]
    r = aggregate(["eth1"], wire(a, 5), [], counters=Counters(grown))
    (s,) = r.sources
    assert (s.verdict, s.delivered) == (DROPPED, 0)
    assert [c.layer for c in s.counters] == ["nftables", "iptables-legacy"]
    assert r.exit_code == 1
    assert any("counter grew: nftables inet t c handle 2 drop +5" in line for line in r.lines())


def test_delivered_elsewhere_does_not_count():
    a = adv()
    r = aggregate(["eth1", "eth2"], wire(a, 3, "eth1"), wire(a, 3, "eth2"))
    assert r.sources[0].verdict == DROPPED
    assert r.nothing_heard == ["eth2"]


def test_ttl_not_255_wins_over_delivered():
    a, b = adv(ttl=1, digest="x"), adv()
    r = aggregate(["eth1"], wire(a, 1) + wire(b, 3), wire(a, 1) + wire(b, 3))
    (s,) = r.sources
    assert (s.verdict, s.ttl) == (TTL_NOT_255, 1)
    assert r.exit_code == 1


def test_hop_limit_not_255_ipv6():
    a = adv(src="fe80::2", dst="ff02::12", family="ipv6", ttl=64, addrs=("fd00::1",))
    r = aggregate(["eth1"], wire(a, 2), wire(a, 2))
    assert r.sources[0].verdict == TTL_NOT_255


def test_wrong_group_and_unicast():
    bad = adv(dst="224.0.0.19")
    uni = adv(src="192.0.2.3", dst="192.0.2.1", vrid=52)
    r = aggregate(["eth1"], wire(bad, 2) + wire(uni, 2), wire(uni, 2))
    verdicts = {s.vrid: (s.verdict, s.delivered) for s in r.sources}
    assert verdicts == {51: (WRONG_GROUP, 0), 52: (DELIVERED, 2)}
    r6 = aggregate(["eth1"], wire(adv(dst="ff02::12", family="ipv6"), 1), [], expect_group6="ff02::13")
    assert r6.sources[0].verdict == WRONG_GROUP
    assert aggregate(["eth1"], wire(bad, 1), wire(bad, 1), expect_group4="224.0.0.19").exit_code == 0


def test_vrid_conflict_needs_two_sources_and_two_address_sets():
    a = adv(src="192.0.2.2", addrs=("192.0.2.100",), digest="a")
    b = adv(src="192.0.2.3", addrs=("192.0.2.200",), digest="b")
    r = aggregate(["eth1"], wire(a, 2) + wire(b, 2), wire(a, 2) + wire(b, 2))
    assert [s.verdict for s in r.sources] == [VRID_CONFLICT, VRID_CONFLICT]
    assert "192.0.2.200" in r.sources[0].detail
    # two sources with the same addresses (a failover, split brain): no conflict
    c = adv(src="192.0.2.3", digest="c")
    same = aggregate(["eth1"], wire(a, 2) + wire(c, 2), wire(a, 2) + wire(c, 2))
    assert {s.verdict for s in same.sources} == {DELIVERED}
    # the same VRID on another link or family is another router
    d = adv(src="192.0.2.3", addrs=("192.0.2.200",), digest="d")
    r2 = aggregate(["eth1", "eth2"], wire(a, 1) + wire(d, 1, "eth2"), wire(a, 1) + wire(d, 1, "eth2"))
    assert {s.verdict for s in r2.sources} == {DELIVERED}


def test_nothing_heard_anywhere_is_exit_5_and_our_own_adverts_are_not_judged():
    mine = adv(src="192.0.2.1")
    r = aggregate(["eth1"], wire(mine, 4, outgoing=True), wire(mine, 4))
    assert r.sources == [] and r.nothing_heard == ["eth1"]
    assert r.exit_code == EXIT_NOTHING_HEARD == 5
    assert [(x.src, x.count) for x in r.sent] == [("192.0.2.1", 4)]
    assert any("as master it hears nothing" in line for line in r.lines())


def test_silent_interface_beside_a_good_one_is_exit_1():
    a = adv()
    r = aggregate(["eth1", "eth2"], wire(a, 1), wire(a, 1))
    assert r.nothing_heard == ["eth2"] and r.exit_code == 1


def test_bad_checksum_fails_the_exit_code():
    a = adv(checksum_ok=False)
    r = aggregate(["eth1"], wire(a, 2), wire(a, 2))
    assert r.sources[0].checksum_bad == 2 and "bad checksum" in r.sources[0].detail
    assert r.exit_code == 1


def test_json_keys_are_stable_and_serialisable():
    a = adv()
    r = aggregate(["eth1"], wire(a, 1), wire(a, 1), seconds=2.0, counters=Counters(not_read=["nft: x"]))
    doc = json.loads(json.dumps(r.to_json()))
    assert set(doc) == {"interfaces", "seconds", "exit_code", "sources", "sent_by_this_host", "nothing_heard",
                        "counters", "undecodable", "capture_overflow", "untracked"}
    assert set(doc["sources"][0]) == {
        "interface", "family", "src", "dst", "vrid", "priority", "version", "auth", "ttl", "interval",
        "virtual_addresses", "wire", "delivered", "checksum_bad", "verdict", "detail", "counters", "vlan"}
    assert doc["counters"] == {"grown": [], "not_read": ["nft: x"]}
    assert "counters not read: nft: x" in r.lines()


NFT = {"nftables": [
    {"metainfo": {}},
    {"chain": {"family": "inet", "table": "t", "name": "in", "hook": "input", "type": "filter"}},
    {"chain": {"family": "inet", "table": "t", "name": "out", "hook": "output", "type": "filter"}},
    {"chain": {"family": "inet", "table": "t", "name": "user"}},
    {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 4,
              "expr": [{"match": {}}, {"counter": {"packets": 7, "bytes": 400}}, {"drop": None}]}},
    {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 5,
              "expr": [{"counter": {"packets": 9, "bytes": 400}}, {"accept": None}]}},
    {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 6, "expr": [{"reject": {}}]}},
    {"rule": {"family": "inet", "table": "t", "chain": "out", "handle": 7,
              "expr": [{"counter": {"packets": 9, "bytes": 400}}, {"drop": None}]}},
    {"rule": {"family": "inet", "table": "t", "chain": "user", "handle": 8,
              "expr": [{"counter": {"packets": 9, "bytes": 400}}, {"drop": None}]}},
    {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 9,
              "expr": [{"counter": "named"}, {"reject": {"type": "icmpx"}}]}},
]}


def test_nft_counters_only_drop_and_reject_rules_with_a_counter_on_receive_hooks():
    got = nft_drop_counters(NFT)
    assert got == {("nftables", "inet", "t", "in", "handle 4"): (7, "input", "drop")}
    assert nft_drop_counters({}) == {} and nft_drop_counters({"nftables": [1, "x", None]}) == {}


LEGACY = """Chain INPUT (policy DROP 12 packets, 720 bytes)
num      pkts      bytes target     prot opt in     out     source               destination
1          20     1200 DROP       112  --  eth1   *       0.0.0.0/0            224.0.0.18
2           3      180 ACCEPT     all  --  *      *       0.0.0.0/0            0.0.0.0/0
3           4      240 REJECT     all  --  *      *       0.0.0.0/0            0.0.0.0/0  reject-with icmp

Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
num      pkts      bytes target     prot opt in     out     source               destination

Chain mine (1 references)
num      pkts      bytes target     prot opt in     out     source               destination
1           5      300 DROP       all  --  *      *       0.0.0.0/0            0.0.0.0/0
"""


def test_legacy_counters_rules_and_policies():
    got = legacy_drop_counters(LEGACY, "iptables-legacy", "filter")
    assert got == {
        ("iptables-legacy", "ip", "filter", "INPUT", "policy"): (12, "input", "DROP"),
        ("iptables-legacy", "ip", "filter", "INPUT", "rule 1"): (20, "input", "DROP"),
        ("iptables-legacy", "ip", "filter", "INPUT", "rule 3"): (4, "input", "REJECT"),
        ("iptables-legacy", "ip", "filter", "mine", "rule 1"): (5, "chain mine", "DROP"),
    }


def test_counter_growth_only_for_counters_seen_before_and_grown():
    def k(rule):
        return ("l", "ip", "t", "c", rule)

    before = {k("r1"): (5, "input", "DROP"), k("r2"): (5, "input", "DROP")}
    after = {k("r1"): (9, "input", "DROP"), k("r2"): (5, "input", "DROP"),
             k("r3"): (50, "input", "DROP")}  # a new rule: its growth is unknown
    assert [(g.rule, g.packets) for g in counter_growth(before, after)] == [("r1", 4)]


@pytest.mark.parametrize("args", [
    ("eth1", 1.0), ([], 1.0), (["eth1"], 0), (["eth1"], float("nan")), (["eth1"], float("inf")),
    (["eth1"], True), (["eth1"], "1"), (["eth+"], 1.0),
])
def test_bad_arguments_are_input_errors(args):
    with pytest.raises(InputError):
        listen(*args)


def test_bad_families_and_groups_are_input_errors():
    with pytest.raises(InputError):
        listen(["eth1"], 1.0, families=("ipv5",))
    with pytest.raises(InputError):
        listen(["eth1"], 1.0, expect_group4="192.0.2.1")
    with pytest.raises(InputError):
        listen(["eth1"], 1.0, expect_group6="not-an-address")


def test_not_root_is_an_environment_problem(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(EnvironmentProblem, match="needs root"):
        listen(["eth1"], 1.0)


def test_advert_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        adv().vrid = 3  # type: ignore[misc]
