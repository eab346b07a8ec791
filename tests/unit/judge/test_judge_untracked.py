"""Untracked adverts (vrrpfw.judge.netpath.packet_for and
untracked_before_conntrack): a notrack that certainly matches, certainly
reached, in a chain before conntrack (prerouting / output below priority
-200) makes the advert ``untracked``; one that only may apply leaves the
state unknown, as does one behind a conntrack template.  The matches that
read the state then judge it as the kernel does (xt_conntrack, xt_state,
nft_ct); tests/integration/judge/test_untracked_path.py holds the same against
real packets."""

from __future__ import annotations

import pytest

from vrrpfw.judge.iptables import parse_rule
from vrrpfw.judge.matches import match_extension, match_rule
from vrrpfw.judge.netpath import Runtime, judge, packet_for
from vrrpfw.judge.nft import convert_rule
from vrrpfw.judge.notrack import untracked_before_conntrack
from vrrpfw.judge.path_model import BaseChain, ChainId, Hook, PathModel, ct_state_at
from vrrpfw.judge.read.saved import model_from_texts
from vrrpfw.judge.rules import FwRule, Match, Packet, Tri
from vrrpfw.model import Direction, Family, VrrpRule

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth0", "224.0.0.18")
IN6 = VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6)
PEER = VrrpRule(Direction.IN, "eth0", "192.0.2.2", Family.IPV4, local="192.0.2.1")
NET = "192.0.2.0/24"


def saved(raw: str, filt: str, policy: str = "DROP", out_policy: str = "ACCEPT") -> str:
    return ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:R - [0:0]\n" + raw + "COMMIT\n"
            f"*filter\n:INPUT {policy} [0:0]\n:OUTPUT {out_policy} [0:0]\n" + filt + "COMMIT\n")


def state(text: str, rule: VrrpRule = IN) -> object:
    return packet_for(model_from_texts(legacy=text), rule, None, NET).ct_state


def verdict(text: str, rule: VrrpRule = IN) -> Runtime:
    return judge(model_from_texts(legacy=text), rule, None, NET).state


INVALID_DROP = "-A INPUT -m conntrack --ctstate INVALID -j DROP\n-A INPUT -p vrrp -j ACCEPT\n"
UNTRACKED_ACCEPT = "-A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT\n"


@pytest.mark.parametrize("raw", ["-A PREROUTING -p vrrp -j CT --notrack\n", "-A PREROUTING -j NOTRACK\n",
                                 "-A PREROUTING -d 224.0.0.18/32 -j CT --notrack\n",
                                 # in a user chain jumped to for certain
                                 "-A PREROUTING -p vrrp -j R\n-A R -j CT --notrack\n",
                                 # a log and a notrack for other traffic first change nothing
                                 "-A PREROUTING -j LOG\n-A PREROUTING -p udp -j CT --notrack\n"
                                 "-A PREROUTING -j NOTRACK\n",
                                 # a user chain that certainly returns first
                                 "-A PREROUTING -j R\n-A R -j RETURN\n-A PREROUTING -j NOTRACK\n",
                                 # another source (off the link) first: it never applies
                                 "-A PREROUTING -s 198.51.100.0/24 -j ACCEPT\n-A PREROUTING -j NOTRACK\n"])
def test_a_certain_notrack_before_conntrack_untracks(raw):
    text = saved(raw, INVALID_DROP)
    assert state(text) == "untracked"
    assert verdict(text) is Runtime.ALLOWED_BY_OTHER


@pytest.mark.parametrize("raw", [
    "-A PREROUTING -s 192.0.2.99/32 -j CT --notrack\n",  # the peer is somewhere on 192.0.2.0/24
    "-A PREROUTING -m limit --limit 1/hour -j ACCEPT\n-A PREROUTING -j NOTRACK\n",  # may end the chain first
    "-A PREROUTING -m limit --limit 1/hour -j R\n-A R -j ACCEPT\n-A PREROUTING -j NOTRACK\n",
    "-A PREROUTING -m limit --limit 1/hour -j DROP\n-A PREROUTING -j NOTRACK\n",
    "-A PREROUTING -m limit --limit 1/hour -g R\n-A R -j LOG\n-A PREROUTING -j NOTRACK\n",
    "-A PREROUTING -j CT --zone 3\n-A PREROUTING -j NOTRACK\n",  # a template first: the notrack does nothing
    "-A PREROUTING -m limit --limit 1/hour -j CT --zone 3\n-A PREROUTING -j NOTRACK\n",
    "-A PREROUTING -m limit --limit 1/hour -j NOTRACK\n",  # may match only
    "-A PREROUTING -j QUEUE\n-A PREROUTING -j NOTRACK\n",  # a target not known first
])
def test_a_notrack_that_may_not_run_leaves_the_state_unknown(raw):
    text = saved(raw, INVALID_DROP)
    assert state(text) is None
    assert verdict(text) is Runtime.UNCERTAIN


def test_rules_that_certainly_end_the_raw_chain_first_leave_adverts_new():
    text = saved("-A PREROUTING -p vrrp -j ACCEPT\n-A PREROUTING -j NOTRACK\n", UNTRACKED_ACCEPT)
    assert state(text) == "new"
    assert verdict(text) is Runtime.MISSING


def test_a_certain_notrack_and_a_maybe_one_before_it_untrack():
    text = saved("-A PREROUTING -m limit --limit 1/hour -j NOTRACK\n-A PREROUTING -j NOTRACK\n",
                 UNTRACKED_ACCEPT)
    assert state(text) == "untracked" and verdict(text) is Runtime.ALLOWED_BY_OTHER
    # A maybe-jump into a chain that certainly untracks, then a certain one.
    text = saved("-A PREROUTING -m limit --limit 1/hour -j R\n-A R -j NOTRACK\n-A R -j ACCEPT\n"
                 "-A PREROUTING -j NOTRACK\n", UNTRACKED_ACCEPT)
    # Entered, R untracks before it accepts; not entered, the next notrack untracks.
    assert state(text) == "untracked"
    # Where R may accept before its notrack, the advert may leave the raw chain tracked.
    text = saved("-A PREROUTING -m limit --limit 1/hour -j R\n-A R -m limit --limit 1/hour -j ACCEPT\n"
                 "-A R -j NOTRACK\n-A PREROUTING -j NOTRACK\n", UNTRACKED_ACCEPT)
    assert state(text) is None


@pytest.mark.parametrize("filt, want", [
    (INVALID_DROP, Runtime.ALLOWED_BY_OTHER),
    (UNTRACKED_ACCEPT, Runtime.ALLOWED_BY_OTHER),
    ("-A INPUT -m state --state UNTRACKED -j ACCEPT\n", Runtime.ALLOWED_BY_OTHER),
    ("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", Runtime.MISSING),
    ("-A INPUT -m state --state NEW -j ACCEPT\n", Runtime.MISSING),
    ("-A INPUT -m conntrack --ctstate INVALID -j ACCEPT\n", Runtime.MISSING),
    ("-A INPUT -m conntrack ! --ctstate UNTRACKED -j ACCEPT\n", Runtime.MISSING),
    ("-A INPUT -m conntrack ! --ctstate NEW,ESTABLISHED -j ACCEPT\n", Runtime.ALLOWED_BY_OTHER),
])
def test_state_matches_judge_untracked(filt, want):
    assert verdict(saved("-A PREROUTING -j NOTRACK\n", filt)) is want


def test_state_matches_on_an_untracked_advert():
    # xt_conntrack with no connection decides by --ctstate alone (other
    # options are not looked at); vrrpfw leaves matches with more options
    # unjudged, which is safe either way.
    pkt = Packet(Direction.IN, "eth0", "224.0.0.18", ct_state="untracked")
    r = parse_rule("-A INPUT -m conntrack --ctstate UNTRACKED --ctproto 112 -j ACCEPT")
    assert r is not None and match_rule(r, pkt) is Tri.MAYBE
    assert match_extension(Match("state", (("state", ("UNTRACKED",)),)), pkt) is Tri.YES
    assert match_extension(Match("state", (("state", ("INVALID",)),)), pkt) is Tri.NO


def test_outbound_notrack_untracks_what_this_host_sends():
    text = saved("-A OUTPUT -p vrrp -j CT --notrack\n",
                 "-A OUTPUT -m conntrack --ctstate UNTRACKED -j ACCEPT\n", policy="ACCEPT", out_policy="DROP")
    assert state(text, OUT) == "untracked" and verdict(text, OUT) is Runtime.ALLOWED_BY_OTHER
    assert state(text, IN) == "new"  # the output hook is not on the inbound path


def test_unicast_untracked_adverts_are_never_established():
    # Without the notrack, a NEW-only rule is uncertain (the adverts may be
    # replies); untracked, they never are.
    new_only = "-A INPUT -p vrrp -s 192.0.2.2 -m conntrack --ctstate NEW -j ACCEPT\n"
    tracked = saved("", new_only)
    assert judge(model_from_texts(legacy=tracked), PEER, "192.0.2.2", NET).state is Runtime.UNCERTAIN
    established = saved("-A PREROUTING -p vrrp -j NOTRACK\n",
                        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                        "-A INPUT -m conntrack --ctstate INVALID -j DROP\n-A INPUT -p vrrp -j ACCEPT\n")
    v = judge(model_from_texts(legacy=established), PEER, "192.0.2.2", NET)
    assert v.state is Runtime.ALLOWED_BY_OTHER and "established" not in v.detail


def nft_doc(*items):
    return {"nftables": [{"table": {"family": "inet", "name": "t"}}, *items]}


def chain(name, hook, prio, policy="accept"):
    return {"chain": {"family": "inet", "table": "t", "name": name, "type": "filter", "hook": hook,
                      "prio": prio, "policy": policy}}


def rule(chain_name, *expr):
    return {"rule": {"family": "inet", "table": "t", "chain": chain_name, "expr": list(expr)}}


VRRP = {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "vrrp"}}
CT_INVALID_DROP = [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}},
                   {"drop": None}]
CT_UNTRACKED_ACCEPT = [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "untracked"}},
                       {"accept": None}]


def nft_verdict(prio, *pre, filt=(CT_INVALID_DROP, [VRRP, {"accept": None}]), rule_=IN):
    doc = nft_doc(chain("pre", "prerouting", prio), chain("in", "input", 0, "drop"),
                  *(rule("pre", *e) for e in pre), *(rule("in", *e) for e in filt))
    model = model_from_texts(nft_json=doc)
    return packet_for(model, rule_, None, NET).ct_state, judge(model, rule_, None, NET).state


def test_nft_notrack_by_priority():
    notrack = [VRRP, {"notrack": None}]
    assert nft_verdict(-300, notrack) == ("untracked", Runtime.ALLOWED_BY_OTHER)
    assert nft_verdict(-201, notrack) == ("untracked", Runtime.ALLOWED_BY_OTHER)
    assert nft_verdict(-300, notrack, rule_=IN6) == ("untracked", Runtime.ALLOWED_BY_OTHER)
    # At conntrack's own priority the order is not defined; after it the advert has its entry already.
    assert nft_verdict(-200, notrack)[0] is None
    assert nft_verdict(0, notrack)[0] is None
    assert nft_verdict(-300, notrack, filt=(CT_UNTRACKED_ACCEPT,)) == ("untracked", Runtime.ALLOWED_BY_OTHER)


def test_nft_templates_before_a_notrack_make_it_unsure():
    zone = {"mangle": {"key": {"ct": {"key": "zone"}}, "value": 1}}
    timeout = {"ct timeout": "tt"}
    assert [r.effects for r in convert_rule("c", {"expr": [zone]}, {})] == [("CT",)]
    assert [r.effects for r in convert_rule("c", {"expr": [timeout]}, {})] == [("CT",)]
    for template in (zone, timeout):
        assert nft_verdict(-300, [template], [{"notrack": None}], filt=(CT_UNTRACKED_ACCEPT,)) == (
            None, Runtime.UNCERTAIN)


def test_ingress_notrack_is_not_claimed_certain():
    ingress = {"chain": {"family": "netdev", "table": "n", "name": "i", "type": "filter", "hook": "ingress",
                         "prio": 0, "policy": "accept", "dev": "eth0"}}
    doc = {"nftables": [{"table": {"family": "netdev", "name": "n"}}, ingress,
                        {"rule": {"family": "netdev", "table": "n", "chain": "i",
                                  "expr": [{"notrack": None}]}},
                        {"table": {"family": "inet", "name": "t"}}, chain("in", "input", 0, "drop"),
                        *(rule("in", *e) for e in (CT_INVALID_DROP, [VRRP, {"accept": None}]))]}
    model = model_from_texts(nft_json=doc, devices={("netdev", "n", "i"): ("eth0",)})
    assert packet_for(model, IN, None, NET).ct_state is None


def base(hook, prio, *rules):
    return BaseChain(ChainId("nft", "inet", "t", "c"), hook, prio, "ACCEPT", list(rules))


def test_chains_before_conntrack_do_not_know_whether_the_notrack_ran_yet():
    assert ct_state_at(base(Hook.PREROUTING, -300), "untracked") is None
    assert ct_state_at(base(Hook.PREROUTING, -300), None) is None
    assert ct_state_at(base(Hook.INGRESS, 0), "untracked") is None
    assert ct_state_at(base(Hook.PREROUTING, -300), "new") == "invalid"
    assert ct_state_at(base(Hook.INPUT, 0), "untracked") == "untracked"
    assert ct_state_at(base(Hook.EGRESS, 0), "untracked") == "untracked"
    # A raw chain testing the state after a certain notrack: unknown there.
    early = base(Hook.PREROUTING, -300, FwRule("c", target="NOTRACK"),
                 FwRule("c", matches=(Match("conntrack", (("ctstate", ("UNTRACKED",)),)),), target="DROP"))
    assert judge(PathModel([early]), IN).state is Runtime.UNCERTAIN


def test_untracked_before_conntrack_needs_every_vantage():
    notrack = base(Hook.PREROUTING, -300, FwRule("c", target="NOTRACK", in_iface="eth0"))
    pkt = Packet(Direction.IN, "eth0", "224.0.0.18")
    assert untracked_before_conntrack(PathModel([notrack]), IN, pkt)
    other = base(Hook.PREROUTING, -300, FwRule("c", target="NOTRACK", in_iface="eth9"))
    assert not untracked_before_conntrack(PathModel([other]), IN, pkt)


def test_a_walk_through_chains_jumped_to_again_and_again_stays_bounded():
    # Each chain jumps twice into the next: 2**30 rule visits unbounded; the
    # walk gives up (unknown) within its budget instead.
    users = "".join(f":C{i} - [0:0]\n" for i in range(31))
    jumps = "".join(f"-A C{i} -m limit --limit 1/hour -j C{i + 1}\n-A C{i} -j C{i + 1}\n" for i in range(30))
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + users + jumps
            + "-A C30 -j LOG\n-A PREROUTING -j C0\n-A PREROUTING -j NOTRACK\nCOMMIT\n"
            "*filter\n:INPUT DROP [0:0]\n" + UNTRACKED_ACCEPT + "COMMIT\n")
    assert state(text) is None
