import pytest

from vrrpfw.judge.chaineval import evaluate
from vrrpfw.judge.matches import match_iface, match_rule
from vrrpfw.judge.rules import FwRule, Match, Outcome, Packet, Tri
from vrrpfw.model import Direction

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = Packet(Direction.IN, "eth0", "224.0.0.18")
OUT = Packet(Direction.OUT, "eth0", "224.0.0.18")
OURS = FwRule("INPUT", protocol="112", dst="224.0.0.18/32", in_iface="eth0",
              matches=(Match("comment", (("comment", ("vrrpfw",)),)),), target="ACCEPT", text="ours")


def chains(**user):
    return user.get


def test_policy_decides_an_empty_chain():
    d = evaluate([], "DROP", IN, chains())
    assert d.outcome is Outcome.POLICY and not d.accepted
    assert evaluate([], "ACCEPT", IN, chains()).accepted


def test_our_rule_at_top_accepts():
    d = evaluate([OURS, FwRule("INPUT", target="DROP")], "DROP", IN, chains())
    assert d.outcome is Outcome.ACCEPT and d.rule is OURS


def test_drop_above_shadows():
    drop = FwRule("INPUT", in_iface="eth0", target="DROP", text="drop")
    d = evaluate([drop, OURS], "ACCEPT", IN, chains())
    assert d.outcome is Outcome.DROP and d.rule is drop


def test_rules_that_cannot_match_are_skipped():
    rules = [
        FwRule("INPUT", protocol="tcp", target="DROP"),
        FwRule("INPUT", in_iface="eth1", target="DROP"),
        FwRule("INPUT", dst="10.0.0.0/8", target="DROP"),
        FwRule("INPUT", protocol="!vrrp", target="DROP"),
        FwRule("INPUT", matches=(Match("pkttype", (("pkt-type", ("unicast",)),)),), target="DROP"),
        FwRule("INPUT", matches=(Match("addrtype", (("dst-type", ("LOCAL",)),)),), target="DROP"),
        FwRule("INPUT", out_iface="eth0", target="DROP"),  # -o never matches in INPUT
        OURS,
    ]
    assert evaluate(rules, "DROP", IN, chains()).rule is OURS


def test_conntrack_state_of_an_advert_is_new_unless_untracked():
    ct = FwRule("INPUT", matches=(Match("conntrack", (("ctstate", ("INVALID",)),)),), target="DROP")
    assert evaluate([ct, OURS], "DROP", IN, chains()).rule is OURS
    new = FwRule("INPUT", matches=(Match("conntrack", (("ctstate", ("NEW",)),)),), target="DROP")
    assert evaluate([new, OURS], "DROP", IN, chains()).outcome is Outcome.DROP
    untracked = Packet(Direction.IN, "eth0", "224.0.0.18", ct_state=None)
    d = evaluate([ct, OURS], "DROP", untracked, chains())
    assert d.outcome is Outcome.UNCERTAIN and d.rule is ct


def test_unknown_source_makes_a_drop_uncertain():
    d = evaluate([FwRule("INPUT", src="192.0.2.7/32", target="DROP"), OURS], "DROP", IN, chains())
    assert d.outcome is Outcome.UNCERTAIN


def test_maybe_accept_then_drop_is_uncertain():
    rules = [FwRule("INPUT", src="192.0.2.7/32", target="ACCEPT"), FwRule("INPUT", target="DROP")]
    assert evaluate(rules, "ACCEPT", IN, chains()).outcome is Outcome.UNCERTAIN


def test_jump_into_user_chain_that_drops():
    sub = [FwRule("FOO", protocol="vrrp", target="DROP", text="deep")]
    d = evaluate([FwRule("INPUT", target="FOO"), OURS], "ACCEPT", IN, chains(FOO=sub))
    assert d.outcome is Outcome.DROP and d.rule is sub[0]


def test_user_chain_return_continues():
    sub = [FwRule("FOO", protocol="vrrp", target="RETURN"), FwRule("FOO", target="DROP")]
    d = evaluate([FwRule("INPUT", target="FOO"), OURS], "DROP", IN, chains(FOO=sub))
    assert d.rule is OURS


def test_goto_return_skips_rest_of_calling_chain():
    sub = [FwRule("FOO", target="RETURN")]
    d = evaluate([FwRule("INPUT", target="FOO", goto=True), OURS], "DROP", IN, chains(FOO=sub))
    assert d.outcome is Outcome.POLICY and d.policy == "DROP"


def test_loops_and_unknown_targets_are_uncertain():
    loop = [FwRule("FOO", target="FOO")]
    d = evaluate([FwRule("INPUT", target="FOO")], "ACCEPT", IN, chains(FOO=loop))
    assert d.outcome is Outcome.UNCERTAIN
    assert evaluate([FwRule("INPUT", target="NFQUEUE")], "ACCEPT", IN, chains()).outcome is Outcome.UNCERTAIN


def test_log_is_not_terminal():
    assert evaluate([FwRule("INPUT", target="LOG"), OURS], "DROP", IN, chains()).rule is OURS


def test_output_direction_uses_out_iface():
    out_rule = FwRule("OUTPUT", protocol="112", out_iface="eth0", target="ACCEPT")
    assert match_rule(out_rule, OUT) is Tri.YES
    assert match_rule(FwRule("OUTPUT", in_iface="eth0", target="DROP"), OUT) is Tri.NO


def test_iface_wildcards_and_negation():
    assert match_iface("eth+", "eth0") is Tri.YES
    assert match_iface("!eth+", "eth0") is Tri.NO
    assert match_iface("!eth1", "eth0") is Tri.YES
    assert match_iface("wlan+", "eth0") is Tri.NO


def test_negated_pkttype():
    r = FwRule("INPUT", matches=(Match("pkttype", (("pkt-type", ("!", "multicast")),)),), target="DROP")
    assert match_rule(r, IN) is Tri.NO


def test_iptables_pkttype_unicast_is_a_unicast_advert_nfts_host():
    """iptables' ``--pkt-type unicast`` is PACKET_HOST, which nft calls
    ``host``: it matches a unicast advert to this host (found by the
    property test: an ACCEPT for unicast in ip6tables raw was skipped, and
    the advert it let in was called "missing")."""
    unicast_in = Packet(Direction.IN, "eth0", "fd00::1", src="fd00::2", family="ipv6")
    accept = FwRule("INPUT", matches=(Match("pkttype", (("pkt-type", ("unicast",)),)),), target="ACCEPT")
    assert match_rule(accept, unicast_in) is Tri.YES
    assert match_rule(accept, IN) is Tri.NO  # a multicast advert
    negated = FwRule("INPUT", matches=(Match("pkttype", (("pkt-type", ("!", "unicast")),)),), target="DROP")
    assert match_rule(negated, unicast_in) is Tri.NO and match_rule(negated, IN) is Tri.YES
    nft_host = FwRule("INPUT", matches=(Match("pkttype", (("pkt-type", ("host",)),)),), target="ACCEPT")
    assert match_rule(nft_host, unicast_in) is Tri.YES
