"""What rules on the path do to the advert besides deciding: marks set
only where the rule certainly runs, the connection's mark apart from the
packet's, header rewrites (DSCP, TTL), nft statements that run before the
rest of their rule's conditions, and the conntrack state of unicast
adverts.  Each case was a false OK (allowed while the kernel drops)."""

from __future__ import annotations

import pytest

from vrrpfw.judge.iptables import parse_rule, parse_save
from vrrpfw.judge.matches import match_rule
from vrrpfw.judge.netpath import Runtime, judge, judge_peers
from vrrpfw.judge.packet_values import member, packet_value
from vrrpfw.judge.read.saved import model_from_texts
from vrrpfw.judge.rules import Packet, Tri
from vrrpfw.model import Direction, Family, VrrpRule

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
LOCAL = ("192.0.2.1", "192.0.2.0/24")
PASS = {Runtime.ALLOWED, Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY}


def legacy(text: str, rule: VrrpRule = IN, peers=()) -> Runtime:
    return judge_peers(model_from_texts(legacy=text), rule, list(peers), LOCAL).state


def nft(doc: dict, rule: VrrpRule = IN) -> Runtime:
    return judge_peers(model_from_texts(nft_json=doc), rule, [], LOCAL).state


MARK_ACCEPT = "*filter\n:INPUT DROP [0:0]\n-A INPUT -m mark --mark 0x1 -j ACCEPT\nCOMMIT\n"


def test_a_mark_after_a_rule_that_may_accept_is_not_certain():
    text = ("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -s 192.0.2.0/25 -j ACCEPT\n"
            "-A PREROUTING -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n" + MARK_ACCEPT)
    assert legacy(text) not in PASS


def test_a_mark_after_a_maybe_return_is_not_certain():
    text = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:X - [0:0]\n-A PREROUTING -j X\n"
            "-A X -s 192.0.2.0/25 -j RETURN\n-A X -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n" + MARK_ACCEPT)
    assert legacy(text) not in PASS


def test_connmark_reads_the_connections_mark_not_the_packets():
    text = ("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p vrrp -j MARK --set-xmark 0x1/0xffffffff\n"
            "COMMIT\n*filter\n:INPUT DROP [0:0]\n-A INPUT -m connmark --mark 0x1 -j ACCEPT\nCOMMIT\n")
    assert legacy(text) is Runtime.MISSING  # a new connection's mark is 0
    untracked = Packet(Direction.IN, "eth0", "224.0.0.18", ct_state="untracked")
    r = parse_rule("-A INPUT -m connmark ! --mark 0x1 -j ACCEPT")
    assert r is not None and match_rule(r, untracked) is Tri.NO  # no connection: never matches


def test_header_rewrites_make_the_field_unknown():
    dscp = ("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p vrrp -j DSCP --set-dscp 0x00\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -m dscp --dscp-class CS6 -j ACCEPT\nCOMMIT\n")
    assert legacy(dscp) is Runtime.UNCERTAIN
    ttl = ("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j TTL --ttl-dec 1\nCOMMIT\n"
           "*filter\n:INPUT DROP [0:0]\n-A INPUT -m ttl --ttl-eq 255 -j ACCEPT\nCOMMIT\n")
    assert legacy(ttl) is Runtime.UNCERTAIN


def chain(name, hook, prio, policy="accept"):
    return {"chain": {"family": "inet", "table": "t", "name": name, "type": "filter", "hook": hook,
                      "prio": prio, "policy": policy}}


def rule(chain_name, *expr):
    return {"rule": {"family": "inet", "table": "t", "chain": chain_name, "expr": list(expr)}}


def match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


META_MARK = {"meta": {"key": "mark"}}


def test_nft_statement_before_a_condition_runs_anyway():
    # prerouting: meta mark set 1 meta l4proto tcp accept -- the mark is set for the advert too
    doc = {"nftables": [{"table": {"family": "inet", "name": "t"}}, chain("pre", "prerouting", -150),
                        chain("in", "input", 0),
                        rule("pre", {"mangle": {"key": META_MARK, "value": 1}},
                             match({"meta": {"key": "l4proto"}}, "tcp"), {"accept": None}),
                        rule("in", match(META_MARK, 1), {"drop": None})]}
    assert nft(doc) is Runtime.MISSING


def test_nft_dscp_rewrite_then_dscp_match():
    dscp = {"payload": {"protocol": "ip", "field": "dscp"}}
    doc = {"nftables": [{"table": {"family": "inet", "name": "t"}}, chain("pre", "prerouting", -150),
                        chain("in", "input", 0, "drop"),
                        rule("pre", {"mangle": {"key": dscp, "value": "cs0"}}),
                        rule("in", match(dscp, "cs6"), {"accept": None})]}
    assert nft(doc) is Runtime.UNCERTAIN


def test_tos_value_is_compared_unmasked():
    r = parse_rule("-A INPUT -m tos --tos 0xc0/0x0f -j ACCEPT")
    pkt = Packet(Direction.IN, "eth0", "224.0.0.18")
    assert r is not None and match_rule(r, pkt) is Tri.NO  # (0xc0 & 0x0f) != 0xc0


def test_unicast_adverts_may_be_established():
    peer = VrrpRule(Direction.IN, "eth0", "192.0.2.2", Family.IPV4, local="192.0.2.1")
    new_only = ("*filter\n:INPUT DROP [0:0]\n"
                "-A INPUT -p vrrp -s 192.0.2.2 -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n")
    v = judge(model_from_texts(legacy=new_only), peer, "192.0.2.2", "192.0.2.0/24")
    assert v.state is Runtime.UNCERTAIN and "established" in v.detail
    both = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p vrrp -s 192.0.2.2 -j ACCEPT\nCOMMIT\n"
    assert judge(model_from_texts(legacy=both), peer, "192.0.2.2", "192.0.2.0/24").state in PASS


def test_ct_status_without_a_connection_breaks():
    for state, want in (("invalid", "\x00break"), ("untracked", "\x00break"), (None, None), ("new", "")):
        assert packet_value(Packet(Direction.IN, "eth0", "224.0.0.18", ct_state=state), "ct_status") == want
    assert member("ct_status", "dnat", "") is Tri.NO


def test_restore_file_insert_goes_to_the_top():
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p vrrp -j ACCEPT\n-I INPUT -p vrrp -j DROP\nCOMMIT\n"
    assert [r.target for r in parse_save(text)["filter"]["INPUT"][1]] == ["DROP", "ACCEPT"]
    assert legacy(text) is Runtime.MISSING
