"""auto must see layers that filter only IPv6: an ip6 nft chain or a
legacy ip6tables table can drop VRRPv3 adverts on their own."""

import pytest

from vrrpfw.host.hostscan import HostScan, parse_nft_ruleset

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def test_an_ip6_filter_chain_counts():
    doc = {"nftables": [
        {"chain": {"family": "ip6", "table": "t", "name": "in", "hook": "input", "policy": "drop"}},
        {"chain": {"family": "bridge", "table": "b", "name": "in", "hook": "input", "policy": "drop"}},
    ]}
    chains, _ = parse_nft_ruleset(doc)
    # A bridge-family chain is on the path of a bridge and its ports (it
    # dropped every advert on br0 while auto said "nothing blocks VRRP").
    assert [(c.family, c.filters) for c in chains] == [("ip6", True), ("bridge", True)]


def test_a_legacy_ip6_filter_table_counts():
    assert HostScan(legacy_tables=["ip6 filter"]).legacy_filter
    assert not HostScan(legacy_tables=["ip6 nat", "nat"]).legacy_filter


def test_firewalld_ipv6_rpfilter_is_judged_where_the_mark_is_known():
    from vrrpfw.judge.matches import match_rule
    from vrrpfw.judge.nft import convert_rule
    from vrrpfw.judge.rules import Packet, Tri
    from vrrpfw.model import Direction

    rule = {"family": "inet", "table": "t", "chain": "pre", "handle": 3, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}},
        {"match": {"op": "==", "left": {"fib": {"result": "oif", "flags": ["saddr", "mark", "iif"]}},
                   "right": False}},
        {"drop": None}]}
    (fw,) = convert_rule("pre", rule, {})
    pkt = Packet(Direction.IN, "eth0", "ff02::12", None, "new", 0, "fe80::/64", "ipv6")
    assert match_rule(fw, pkt) is Tri.NO  # a route back exists: not dropped
    assert match_rule(fw, Packet(Direction.IN, "eth0", "ff02::12", None, "new", None, "fe80::/64",
                                 "ipv6")) is Tri.MAYBE  # a rule may set the mark: not judged
    v4 = Packet(Direction.IN, "eth0", "224.0.0.18", None, "new", 0, "192.0.2.0/24")
    assert match_rule(fw, v4) is Tri.NO
