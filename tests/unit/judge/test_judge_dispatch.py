"""Which zones firewalld's zone dispatch (filter_INPUT_ZONES) may hand an
advert to when the peer's address is known only to lie on the interface's
subnets (vrrpfw.judge.dispatch), and the maybe-goto into a chain that
accepts (vrrpfw.judge.chaineval).  Pure: the table is what ``nft -j list
table`` printed for a firewalld-shaped ruleset (an ipset bound to
internal, a prefix to work, an IPv6 address to drop, the interface and the
default zone to public).  test_firewalld_source_zones.py holds the same
shapes against real firewalld with real adverts."""

from __future__ import annotations

import pytest

from vrrpfw.judge.chaineval import evaluate
from vrrpfw.judge.dispatch import handed_to, source_bound
from vrrpfw.judge.nft import convert_table
from vrrpfw.judge.rules import FwRule, Outcome, Packet
from vrrpfw.model import Direction
from vrrpfw.record import replace

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

T = {"family": "inet", "table": "fw"}


def saddr(proto, right):
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "saddr"}}, "right": right}}


def goto(target):
    return {"goto": {"target": target}}


REJECT = {"reject": {"type": "icmpx", "expr": "port-unreachable"}}
ACCEPT = {"accept": None}
IIF_ETH0 = {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}


def table(internal=(REJECT,), public=(REJECT,), peers=({"prefix": {"addr": "192.0.2.0", "len": 28}},)):
    items = [
        {"table": {"family": "inet", "name": "fw"}},
        {"set": {**T, "name": "peers", "type": "ipv4_addr", "flags": ["interval"], "elem": list(peers)}},
    ]
    chains = {
        "filter_INPUT_ZONES": [
            [saddr("ip", "@peers"), goto("filter_IN_internal")],
            [saddr("ip", {"prefix": {"addr": "198.51.100.0", "len": 24}}), goto("filter_IN_work")],
            [saddr("ip6", "fe80::2"), goto("filter_IN_drop")],
            [IIF_ETH0, goto("filter_IN_public")],
            [goto("filter_IN_public")],
        ],
        "filter_IN_internal": [list(internal)],
        "filter_IN_work": [[REJECT]],
        "filter_IN_drop": [[{"drop": None}]],
        "filter_IN_public": [list(public)],
    }
    handle = 10
    for name, rules in chains.items():
        items.append({"chain": {**T, "name": name}})
        for expr in rules:
            handle += 1
            items.append({"rule": {**T, "chain": name, "handle": handle, "expr": expr}})
    return convert_table("inet", "fw", items)


def packet(src_net, src=None, family="ipv4"):
    group = "224.0.0.18" if family == "ipv4" else "ff02::12"
    return Packet(Direction.IN, "eth0", group, src, src_net=src_net, family=family)


def zones(t, *nets, family="ipv4"):
    hands = handed_to(t.chains["filter_INPUT_ZONES"], [packet(n, family=family) for n in nets],
                      t.chains.get)
    return [(h.chain, h.certain) for h in hands]


def test_a_bound_ipset_overlapping_the_subnet_may_judge_the_advert():
    assert zones(table(), "192.0.2.0/24") == [("filter_IN_internal", False), ("filter_IN_public", True)]


def test_a_bound_ipset_covering_the_subnet_judges_every_advert():
    t = table(peers=({"prefix": {"addr": "192.0.0.0", "len": 16}},))
    assert zones(t, "192.0.2.0/24") == [("filter_IN_internal", True)]


def test_a_bound_source_off_the_subnet_judges_none():
    t = table(peers=({"prefix": {"addr": "203.0.113.0", "len": 28}},))
    assert zones(t, "192.0.2.0/24") == [("filter_IN_public", True)]
    dispatch = t.chains["filter_INPUT_ZONES"]
    assert source_bound(handed_to(dispatch, [packet("192.0.2.0/24")], t.chains.get)) == []


def test_each_subnet_of_the_interface_counts():
    """A secondary address's subnet (198.51.100.0/24) reaches work too."""
    t = table(peers=({"prefix": {"addr": "203.0.113.0", "len": 28}},))
    assert zones(t, "192.0.2.0/24", "198.51.100.0/25") == [
        ("filter_IN_public", True), ("filter_IN_work", True)]


def test_ipv6_sources_bind_ipv6_adverts_only():
    assert zones(table(), "fe80::/64", family="ipv6") == [
        ("filter_IN_drop", False), ("filter_IN_public", True)]
    assert ("filter_IN_drop", False) not in zones(table(), "192.0.2.0/24")


def test_a_known_source_goes_to_one_zone():
    t = table()
    dispatch = t.chains["filter_INPUT_ZONES"]
    hands = handed_to(dispatch, [packet("192.0.2.0/24", src="192.0.2.2")], t.chains.get)
    assert [(h.chain, h.certain) for h in hands] == [("filter_IN_internal", True)]
    hands = handed_to(dispatch, [packet("192.0.2.0/24", src="192.0.2.200")], t.chains.get)
    assert [(h.chain, h.certain) for h in hands] == [("filter_IN_public", True)]


def test_the_binding_names_the_rule_without_its_goto():
    t = table()
    hands = handed_to(t.chains["filter_INPUT_ZONES"], [packet("192.0.2.0/24")], t.chains.get)
    assert hands[0].binding == "ip saddr @peers"
    assert hands[0].subnet == "192.0.2.0/24"


def test_a_certain_accept_or_drop_ends_the_dispatch():
    rules = [FwRule("d", src="192.0.2.0/24", target="ACCEPT"), FwRule("d", target="z", goto=True)]
    assert handed_to(rules, [packet("192.0.2.0/24")], {"z": [FwRule("z", target="DROP")]}.get) == []


def test_a_maybe_jump_does_not_end_the_dispatch():
    rules = [FwRule("d", src="192.0.2.2", target="a"), FwRule("d", src="192.0.2.3", target="b", goto=True),
             FwRule("d", target="c", goto=True)]
    lookup = {"a": [], "b": [], "c": []}.get
    assert [(h.chain, h.certain) for h in handed_to(rules, [packet("192.0.2.0/24")], lookup)] == [
        ("a", False), ("b", False), ("c", True)]


@pytest.mark.parametrize("internal, public, outcome", [
    ((REJECT,), (REJECT,), Outcome.UNCERTAIN),   # the bound zone may drop it
    ((ACCEPT,), (REJECT,), Outcome.UNCERTAIN),   # let in from the bound source only
    ((ACCEPT,), (ACCEPT,), Outcome.ACCEPT),      # every zone that may judge it lets it in
    ((REJECT,), (ACCEPT,), Outcome.UNCERTAIN),
])
def test_the_dispatch_accepts_only_where_every_zone_that_may_judge_it_does(internal, public, outcome):
    """Before, a maybe-goto into a zone that accepts was a doubt that
    'may drop' the advert, so opening every zone still left 'uncertain'."""
    t = table(internal=internal, public=public)
    d = evaluate(t.chains["filter_INPUT_ZONES"], "ACCEPT", packet("192.0.2.0/24"), t.chains.get)
    assert d.outcome is outcome, d


def test_a_maybe_goto_that_falls_off_its_chain_is_still_a_doubt():
    """A goto whose chain returns ends the calling chain too: no accept."""
    t = table(internal=({"counter": {"packets": 0, "bytes": 0}},), public=(ACCEPT,))
    d = evaluate(t.chains["filter_INPUT_ZONES"], "ACCEPT", packet("192.0.2.0/24"), t.chains.get)
    assert d.outcome is Outcome.UNCERTAIN, d


def test_the_accepting_maybe_goto_keeps_its_rule_text_for_the_detail():
    t = table(internal=(ACCEPT,), public=(REJECT,))
    d = evaluate(t.chains["filter_INPUT_ZONES"], "ACCEPT", packet("192.0.2.0/24"), t.chains.get)
    assert any("@peers" in r.text for r in d.doubts), d
    assert replace(d.doubts[0], handle=None).target == "ACCEPT"
