"""nft sets and maps with the dynamic or timeout flag (vrrpfw.judge.nft and
.dynamic): judged from the elements ``nft -j`` lists now, with the rules
that can add to them.  Pure; test_nft_dynamic_sets_path.py holds the same
shapes against the kernel with real adverts."""

from __future__ import annotations

import pytest

from vrrpfw.judge.chaineval import evaluate
from vrrpfw.judge.dynamic import DynState, dynamic_names, fillers_of
from vrrpfw.judge.nft import convert_table
from vrrpfw.judge.rules import Outcome, Packet
from vrrpfw.model import Direction

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}


def tcp_dport(port):
    return {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": port}}


def table(blk=(), dm=(), rules=()):
    items = [
        {"table": {"family": "inet", "name": "t"}},
        {"set": {"family": "inet", "name": "blk", "table": "t", "type": "ipv4_addr", "flags": ["timeout"],
                 "timeout": 600, "elem": [{"elem": {"val": a, "expires": 599}} for a in blk]}},
        {"map": {"family": "inet", "name": "dm", "table": "t", "type": "ipv4_addr", "map": "verdict",
                 "flags": ["timeout"],
                 "elem": [[{"elem": {"val": a, "timeout": 300, "expires": 299}}, {v: None}] for a, v in dm]}},
        {"chain": {"family": "inet", "table": "t", "name": "input", "type": "filter", "hook": "input",
                   "prio": 0, "policy": "accept"}},
    ]
    items += [{"rule": {"family": "inet", "table": "t", "chain": "input", "handle": i + 2, "expr": expr}}
              for i, expr in enumerate(rules)]
    return convert_table("inet", "t", items)


DROP_LISTED = [{"match": {"op": "==", "left": SADDR, "right": "@blk"}}, {"drop": None}]
SSH_ADDS = [tcp_dport(22), {"set": {"op": "add", "elem": SADDR, "set": "@blk"}}]
EVERY_UPDATES = [{"set": {"op": "update", "elem": SADDR, "set": "@blk"}}]
VMAP = [{"vmap": {"key": SADDR, "data": "@dm"}}]


def verdict(t, src="192.0.2.2", state=True):
    rules = t.chains["input"]
    st = DynState(fillers=fillers_of(rules)) if state else None
    pkt = Packet(Direction.IN, "eth0", "224.0.0.18", src, src_net="192.0.2.0/24", state=st)
    return evaluate(rules, "ACCEPT", pkt, lambda name: None)


def test_filled_by_ssh_only_the_current_elements_decide():
    assert verdict(table((), rules=[SSH_ADDS, DROP_LISTED])).outcome is Outcome.POLICY
    d = verdict(table(("192.0.2.2",), rules=[SSH_ADDS, DROP_LISTED]))
    assert d.outcome is Outcome.DROP and d.depends == ["nft set inet t @blk"]
    assert verdict(table(("192.0.2.9",), rules=[SSH_ADDS, DROP_LISTED])).outcome is Outcome.POLICY
    # The peer unknown: anywhere on the /24, one listed.
    one = table(("192.0.2.9",), rules=[SSH_ADDS, DROP_LISTED])
    assert verdict(one, src=None).outcome is Outcome.UNCERTAIN
    assert verdict(table((), rules=[SSH_ADDS, DROP_LISTED]), src=None).outcome is Outcome.POLICY


def test_one_element_stays_a_set_test_not_a_fixed_address():
    t = table(("192.0.2.2",), rules=[DROP_LISTED])
    rule = t.chains["input"][0]
    assert rule.src is None and dynamic_names(rule) == ["nft set inet t @blk"]


def test_filled_by_every_packet_is_uncertain():
    assert verdict(table((), rules=[EVERY_UPDATES, DROP_LISTED])).outcome is Outcome.UNCERTAIN
    assert verdict(table(("192.0.2.2",), rules=[EVERY_UPDATES, DROP_LISTED])).outcome is Outcome.DROP


def test_state_not_read_is_uncertain():
    assert verdict(table((), rules=[SSH_ADDS, DROP_LISTED]), state=False).outcome is Outcome.UNCERTAIN


def test_timeout_verdict_map_from_its_current_elements():
    d = verdict(table(dm=[("192.0.2.2", "drop")], rules=[VMAP]))
    assert d.outcome is Outcome.DROP and d.depends == ["nft set inet t @dm"]
    assert verdict(table(dm=[("192.0.2.9", "drop")], rules=[VMAP])).outcome is Outcome.POLICY
    assert verdict(table(dm=[], rules=[VMAP])).outcome is Outcome.POLICY
    # A map some rule fills from every packet: an element may appear, its verdict unknown.
    fills = [{"map": {"op": "add", "elem": SADDR, "data": {"drop": None}, "map": "@dm"}}]
    assert verdict(table(dm=[], rules=[fills, VMAP])).outcome is Outcome.UNCERTAIN
