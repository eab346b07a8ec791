"""nft JSON -> evaluator model, and nftables.conf editing; no kernel needed."""

import pytest

from vrrpfw.backends.nftables import nft_rule_json
from vrrpfw.judge.chaineval import evaluate
from vrrpfw.judge.matches import match_rule
from vrrpfw.judge.nft import convert_rule
from vrrpfw.judge.rules import Outcome, Packet, Tri
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.persist import nft_conf

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
PKT = Packet(Direction.IN, "eth0", "224.0.0.18")


def m(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


META = lambda key: {"meta": {"key": key}}  # noqa: E731
IP = lambda field: {"payload": {"protocol": "ip", "field": field}}  # noqa: E731


def to_fwrule(chain, r):
    return convert_rule(chain, r, {})[0]


def rule(*expr, comment=None):
    r = {"expr": list(expr)}
    if comment:
        r["comment"] = comment
    return to_fwrule("input", r)


def test_our_inserted_rule_round_trips_as_ours():
    fw = to_fwrule("input", nft_rule_json(IN, ("inet", "filter", "input")))
    assert fw.in_iface == "eth0" and fw.dst == "224.0.0.18/32" and fw.protocol == "vrrp"
    assert fw.is_vrrpfw and fw.target == "ACCEPT"
    assert match_rule(fw, PKT) is Tri.YES


def test_matches_judged_from_nft_expressions():
    assert match_rule(rule(m(META("iifname"), "eth0"), {"drop": None}), PKT) is Tri.YES
    assert match_rule(rule(m(META("iifname"), "eth0", "!="), {"drop": None}), PKT) is Tri.NO
    assert match_rule(rule(m(META("l4proto"), {"set": ["esp", "vrrp"]}), {"drop": None}), PKT) is Tri.YES
    assert match_rule(rule(m(META("l4proto"), {"set": ["tcp", "udp"]}), {"drop": None}), PKT) is Tri.NO
    tcp = {"payload": {"protocol": "tcp", "field": "dport"}}
    assert match_rule(rule(m(tcp, 22), {"accept": None}), PKT) is Tri.NO
    assert match_rule(rule(m(META("nfproto"), "ipv6"), {"drop": None}), PKT) is Tri.NO
    prefix = {"prefix": {"addr": "224.0.0.0", "len": 4}}
    assert match_rule(rule(m(IP("daddr"), prefix), {"drop": None}), PKT) is Tri.YES
    ct = {"ct": {"key": "state"}}
    # Adverts go to a group that never answers: conntrack keeps them "new".
    assert match_rule(rule(m(ct, ["established", "related"], "in"), {"accept": None}), PKT) is Tri.NO
    assert match_rule(rule(m(ct, "new"), {"accept": None}), PKT) is Tri.YES
    assert match_rule(rule({"limit": {"rate": 5, "per": "second"}}, {"accept": None}), PKT) is Tri.MAYBE


def test_jumps_and_policies_evaluate_like_iptables():
    sub = [to_fwrule("sub", {"expr": [m(IP("protocol"), "vrrp"), {"reject": None}]})]
    chain = [rule({"jump": {"target": "sub"}}), rule(m(META("iifname"), "eth0"), {"accept": None})]
    d = evaluate(chain, "ACCEPT", PKT, lambda name: sub if name == "sub" else None)
    assert d.outcome is Outcome.DROP
    quiet = [rule({"counter": None}, {"accept": None})]
    assert evaluate(quiet, "DROP", PKT, lambda name: None).outcome is Outcome.ACCEPT


def test_nft_conf_block_add_remove_keeps_text():
    text = "flush ruleset\ntable inet filter {\n  chain input { type filter hook input priority 0; }\n}\n"
    new = nft_conf.with_lines(text, [(IN, ("inet", "filter", "input"))])
    assert new.startswith(text) and nft_conf.BEGIN in new
    assert nft_conf.keys(new) == {IN.key}
    assert nft_conf.with_lines(new, [(IN, ("inet", "filter", "input"))]) == new
    assert nft_conf.without_keys(new, [IN.key]) == text
    assert nft_conf.without_keys(new, None) == text


def test_unterminated_marker_is_left_alone():
    text = "table ip t {}\n" + nft_conf.BEGIN + "\ninsert rule ...\n"
    assert nft_conf.split(text) == (text, [], "")
