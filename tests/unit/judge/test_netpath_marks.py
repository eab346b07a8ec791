"""Marks and conntrack exemptions, path-sensitively (vrrpfw.judge.netpath.
packet_for): an advert's mark stays 0 unless a rule that can apply to it on
its path sets one; a rule that certainly does not match, one after a rule
that certainly ends the chain, and a chain reached only through such rules
change nothing."""

from __future__ import annotations

import pytest

from vrrpfw.judge.iptables import parse_rule
from vrrpfw.judge.netpath import Runtime, judge, packet_for
from vrrpfw.judge.nft import convert_rule
from vrrpfw.judge.read.saved import model_from_texts
from vrrpfw.model import Direction, VrrpRule

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth1", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth1", "224.0.0.18")

KUBE_FIREWALL = """*filter
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP
COMMIT
"""


def mangle(*lines: str) -> str:
    return ("*mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":KUBE-MARK-DROP - [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
            "-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000\n" + "".join(f"{x}\n" for x in lines)
            + "COMMIT\n")


def verdict(text: str, rule: VrrpRule = IN) -> Runtime:
    return judge(model_from_texts(legacy=text), rule, None, src_net="192.0.2.0/24").state


def test_mark_set_only_for_tcp_node_ports_leaves_adverts_unmarked():
    text = mangle("-A PREROUTING -p tcp -m tcp --dport 30080 -j KUBE-MARK-DROP") + KUBE_FIREWALL
    assert packet_for(model_from_texts(legacy=text), IN).mark == 0
    assert verdict(text) is Runtime.ALLOWED_BY_POLICY


def test_mark_set_for_vrrp_is_followed_to_the_drop():
    text = mangle("-A PREROUTING -i eth1 -p vrrp -j KUBE-MARK-DROP") + KUBE_FIREWALL
    assert packet_for(model_from_texts(legacy=text), IN).mark is None  # may change: followed by judge
    assert verdict(text) is Runtime.MISSING


def test_a_maybe_mark_makes_the_mark_unknown():
    text = mangle("-A PREROUTING -i eth1 -p vrrp -m limit --limit 1/s -j KUBE-MARK-DROP") + KUBE_FIREWALL
    assert verdict(text) is Runtime.UNCERTAIN


@pytest.mark.parametrize("target,after,dropped", [
    ("--set-xmark 0x8000/0x8000", 0x8000, True),
    ("--set-mark 0x8000", 0x8000, True),
    ("--set-mark 0x4000/0x4000", 0x4000, False),
    ("--or-mark 0x8001", 0x8001, True),
    ("--and-mark 0x8000", 0, False),
    ("--xor-mark 0x8000", 0x8000, True),
])
def test_mark_operations_as_xt_mark_computes_them(target, after, dropped):
    rule = parse_rule(f"-A PREROUTING -p vrrp -j MARK {target}")
    assert rule is not None and rule.mark_op is not None
    value, mask = rule.mark_op
    assert (0 & ~mask) ^ value == after
    text = mangle(f"-A PREROUTING -p vrrp -j MARK {target}") + KUBE_FIREWALL
    assert verdict(text) is (Runtime.MISSING if dropped else Runtime.ALLOWED_BY_POLICY)


def test_the_mark_is_what_the_earlier_chain_left():
    # mangle marks, a later mangle rule clears it again: filter sees 0.
    text = mangle("-A PREROUTING -p vrrp -j MARK --set-xmark 0x8000/0x8000",
                  "-A PREROUTING -p vrrp -j MARK --and-mark 0x7fff") + KUBE_FIREWALL
    assert verdict(text) is Runtime.ALLOWED_BY_POLICY


def test_marks_after_an_accept_are_not_applied():
    text = mangle("-A PREROUTING -p vrrp -j ACCEPT",
                  "-A PREROUTING -p vrrp -j MARK --set-xmark 0x8000/0x8000") + KUBE_FIREWALL
    assert verdict(text) is Runtime.ALLOWED_BY_OTHER  # mangle's ACCEPT; filter sees mark 0


def nft_marks(statement: dict) -> tuple:
    rules = convert_rule("c", {"expr": [{"mangle": {"key": {"meta": {"key": "mark"}}, "value": statement}}]},
                         {}, "inet")
    return rules[0].mark_op


def test_nft_mark_statements():
    mark = {"meta": {"key": "mark"}}
    assert nft_marks(0x8000) == (0x8000, 0xFFFFFFFF)
    assert nft_marks({"|": [mark, 4]}) == (4, 4)
    assert nft_marks({"&": [mark, 0x7FFF]}) == (0, 0xFFFF8000)
    assert nft_marks({"^": [mark, 8]}) == (8, 0)
    # iptables' --set-xmark 0x8000/0x8000 as nft writes it: mark and 0xffff7fff xor 0x8000
    op = nft_marks({"^": [{"&": [mark, 0xFFFF7FFF]}, 0x8000]})
    assert op == (0x8000, 0x8000)
    assert nft_marks({"ct": {"key": "mark"}}) is None  # the connection's mark: not followed


def test_chains_at_one_priority_leave_the_mark_unknown():
    # Two nft chains on prerouting at priority -150: which runs first is not defined.
    doc = {"nftables": [
        {"table": {"family": "ip", "name": "a"}}, {"table": {"family": "ip", "name": "b"}},
        {"chain": {"family": "ip", "table": "a", "name": "pre", "type": "filter", "hook": "prerouting",
                   "prio": -150, "policy": "accept"}},
        {"chain": {"family": "ip", "table": "b", "name": "pre", "type": "filter", "hook": "prerouting",
                   "prio": -150, "policy": "accept"}},
        {"chain": {"family": "ip", "table": "b", "name": "in", "type": "filter", "hook": "input",
                   "prio": 0, "policy": "accept"}},
        {"rule": {"family": "ip", "table": "a", "chain": "pre", "expr": [
            {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 1}}]}},
        {"rule": {"family": "ip", "table": "b", "chain": "pre", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 1}}, {"drop": None}]}},
    ]}
    assert judge(model_from_texts(nft_json=doc), IN, None).state is Runtime.UNCERTAIN


def test_mark_rule_for_another_interface_does_not_apply():
    text = mangle("-A PREROUTING -i eth0 -j KUBE-MARK-DROP") + KUBE_FIREWALL
    assert verdict(text) is Runtime.ALLOWED_BY_POLICY


def test_rules_after_a_certain_return_are_not_reached():
    # kube-proxy's KUBE-POSTROUTING: unmarked packets return before the MARK.
    text = mangle("-A POSTROUTING -j KUBE-POSTROUTING",
                  "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
                  "-A KUBE-POSTROUTING -j MARK --set-xmark 0x8000/0x8000") + KUBE_FIREWALL
    assert packet_for(model_from_texts(legacy=text), OUT).mark == 0


def test_a_maybe_return_does_not_hide_what_follows():
    text = mangle("-A POSTROUTING -j KUBE-POSTROUTING",
                  "-A KUBE-POSTROUTING -m limit --limit 1/s -j RETURN",
                  "-A KUBE-POSTROUTING -j MARK --set-xmark 0x8000/0x8000") + KUBE_FIREWALL
    assert packet_for(model_from_texts(legacy=text), OUT).mark is None


def test_a_mark_rule_reached_only_once_the_mark_is_unknown_is_found():
    # The second MARK applies only to marked packets: reached once the first may have run.
    text = mangle("-A PREROUTING -p vrrp -m limit --limit 1/s -j MARK --set-xmark 0x1/0x1",
                  "-A PREROUTING -m mark --mark 0x1/0x1 -j MARK --set-xmark 0x8000/0x8000") + KUBE_FIREWALL
    assert verdict(text) is Runtime.UNCERTAIN


def test_notrack_for_other_traffic_keeps_adverts_new():
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A PREROUTING -p udp --dport 53 -j CT --notrack\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -m conntrack --ctstate NEW -p vrrp -j ACCEPT\nCOMMIT\n")
    assert packet_for(model_from_texts(legacy=text), IN).ct_state == "new"
    assert verdict(text) is Runtime.ALLOWED_BY_OTHER
