"""The path model (vrrpfw.judge.netpath): which base chains an advert crosses, in
which order, what the advert looks like to them, and how their verdicts add
up to one.  Hand-built models, no kernel; see tests/mutation.sh."""

import pytest

from vrrpfw.judge.netpath import RANK, combine, judge, judge_chain, judge_peers, packet_for, responsible
from vrrpfw.judge.path_model import (
    LEGACY_HOOKS,
    LEGACY_TABLES,
    PATH,
    BaseChain,
    ChainId,
    ChainState,
    ChainVerdict,
    Hook,
    PathModel,
    PathVerdict,
    reachable_rules,
)
from vrrpfw.judge.rules import Decision, FwRule, Match, Outcome, Packet
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.results import Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

RULE_IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
RULE_OUT = VrrpRule(Direction.OUT, "eth0", "224.0.0.18")
COMMENTED = (Match("comment", (("comment", ("vrrpfw",)),)),)
OURS_IN = FwRule("INPUT", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0", matches=COMMENTED,
                 target="ACCEPT", text="ours")
OURS_OUT = FwRule("OUTPUT", protocol="vrrp", dst="224.0.0.18/32", out_iface="eth0", matches=COMMENTED,
                  target="ACCEPT", text="ours-out")


def chain(name="INPUT", hook=Hook.INPUT, rules=(), policy="ACCEPT", priority=0, layer="legacy",
          table="filter", family="ip", user=None, devices=None, owner=""):
    user = user or {}
    return BaseChain(ChainId(layer, family, table, name), hook, priority, policy, list(rules),
                     user.get, devices, owner)


def test_constants():
    assert PATH[Direction.IN] == (Hook.INGRESS, Hook.PREROUTING, Hook.INPUT)
    assert PATH[Direction.OUT] == (Hook.OUTPUT, Hook.POSTROUTING, Hook.EGRESS)
    assert LEGACY_TABLES == {"raw": -300, "mangle": -150, "filter": 0, "security": 50}
    assert LEGACY_HOOKS == {"PREROUTING": Hook.PREROUTING, "INPUT": Hook.INPUT, "OUTPUT": Hook.OUTPUT,
                            "POSTROUTING": Hook.POSTROUTING}
    assert [h.value for h in Hook] == ["ingress", "prerouting", "input", "output", "postrouting", "egress"]


def test_labels_and_responsibility():
    assert ChainId("legacy", "ip", "filter", "INPUT").label == "legacy filter INPUT"
    assert ChainId("nft", "inet", "fw", "in").label == "nft inet fw in"
    assert responsible(chain()) == "iptables"
    assert responsible(chain(layer="nft")) == "nftables"
    assert responsible(chain(layer="nft", owner="firewalld")) == "firewalld"
    assert responsible(chain(owner="firewalld")) == "iptables"


def test_default_lookup_knows_no_chain():
    c = BaseChain(ChainId("nft", "ip", "t", "c"), Hook.INPUT, 0, "ACCEPT", [])
    assert c.lookup("anything") is None and c.devices is None and c.owner == ""


def test_sees_hooks_and_devices():
    c = chain()
    assert c.sees(Direction.IN, "eth0") and not c.sees(Direction.OUT, "eth0")
    assert chain(hook=Hook.EGRESS).sees(Direction.OUT, "eth0")
    bound = chain(hook=Hook.INGRESS, devices=("eth0", "eth2"))
    assert bound.sees(Direction.IN, "eth0") and bound.sees(Direction.IN, "eth2")
    assert not bound.sees(Direction.IN, "eth1")
    assert not bound.sees(Direction.OUT, "eth0")
    assert not chain(hook=Hook.INGRESS, devices=()).sees(Direction.IN, "eth0")


def test_on_path_order():
    a = chain("a", Hook.INPUT, priority=-10, layer="nft")
    b = chain("b", Hook.PREROUTING, priority=100, layer="nft")
    c = chain("c", Hook.INGRESS, priority=500, layer="nft")
    d = chain("d", Hook.INPUT, priority=-10, layer="legacy")
    e = chain("e", Hook.INPUT, priority=-20, layer="nft")
    out = chain("o", Hook.OUTPUT)
    other = chain("x", Hook.INGRESS, devices=("eth9",))
    model = PathModel([a, b, c, d, e, out, other])
    assert [x.id.name for x in model.on_path(Direction.IN, "eth0")] == ["c", "b", "e", "d", "a"]
    p, q, r = chain("p", Hook.EGRESS), chain("q", Hook.POSTROUTING), chain("r", Hook.OUTPUT, priority=5)
    assert [x.id.name for x in PathModel([p, q, r]).on_path(Direction.OUT, "eth0")] == ["r", "q", "p"]
    assert PathModel().on_path(Direction.IN, "eth0") == []
    assert PathModel().unread == [] and PathModel().notes == []


def test_reachable_rules():
    j1, j2 = FwRule("INPUT", target="A"), FwRule("INPUT", target="A")
    a1 = FwRule("A", target="B")
    b1 = FwRule("B", target="DROP")
    c = chain(rules=[j1, j2, FwRule("INPUT", target="")], user={"A": [a1], "B": [b1]})
    got = list(reachable_rules(c))
    assert got.count(a1) == 1 and got.count(b1) == 1 and len(got) == 5  # each user chain once
    deep = {f"C{i}": [FwRule(f"C{i}", target=f"C{i + 1}")] for i in range(10)}
    c = chain(rules=[FwRule("INPUT", target="C0")], user=deep)
    assert len(list(reachable_rules(c))) == 11  # C0..C9
    assert len(list(reachable_rules(c, limit=3))) == 4  # the rules of C0, C1, C2
    assert len(list(reachable_rules(c, limit=0))) == 1


def test_packet_for_infers_conntrack_and_mark():
    plain = PathModel([chain(rules=[FwRule("INPUT", target="LOG")])])
    pkt = packet_for(plain, RULE_IN, "192.0.2.5", "192.0.2.0/24")
    assert pkt == Packet(Direction.IN, "eth0", "224.0.0.18", "192.0.2.5", "new", 0, "192.0.2.0/24")
    for target in ("NOTRACK", "CT"):
        model = PathModel([chain("PREROUTING", Hook.PREROUTING, [FwRule("PREROUTING", target=target)])])
        pkt = packet_for(model, RULE_IN)
        assert pkt.ct_state is None and pkt.mark == 0
    for target in ("MARK", "CONNMARK"):
        model = PathModel([chain(rules=[FwRule("INPUT", target=target)])])
        pkt = packet_for(model, RULE_IN)
        assert pkt.mark is None and pkt.ct_state == "new"
    both = PathModel([chain(rules=[FwRule("INPUT", effects=("MARK", "NOTRACK"))])])
    pkt = packet_for(both, RULE_IN)
    assert pkt.mark is None and pkt.ct_state is None
    # Inside a user chain it counts too; off the path it does not.
    nested = PathModel([chain(rules=[FwRule("INPUT", target="S")], user={"S": [FwRule("S", target="MARK")]})])
    assert packet_for(nested, RULE_IN).mark is None
    off = PathModel([chain("OUTPUT", Hook.OUTPUT, [FwRule("OUTPUT", target="NOTRACK")])])
    assert packet_for(off, RULE_IN).ct_state == "new"
    assert packet_for(off, RULE_OUT).ct_state is None


def verdict(state, ours=(), rule=None, reason="", policy="ACCEPT", name="INPUT", outcome=Outcome.ACCEPT):
    return ChainVerdict(chain(name), state, Decision(outcome, rule, policy, reason), list(ours))


def test_combine():
    ok, other, pol = verdict(ChainState.OURS), verdict(ChainState.OTHER), verdict(ChainState.POLICY)
    drop, unsure = verdict(ChainState.DROP), verdict(ChainState.UNCERTAIN)
    shadow = verdict(ChainState.DROP, ours=[OURS_IN])
    assert combine([], []) is Runtime.ALLOWED_BY_POLICY
    assert combine([pol], []) is Runtime.ALLOWED_BY_POLICY
    assert combine([pol, other], []) is Runtime.ALLOWED_BY_OTHER
    assert combine([other, ok, pol], []) is Runtime.ALLOWED
    assert combine([ok], ["legacy iptables"]) is Runtime.UNCERTAIN
    assert combine([ok, unsure], []) is Runtime.UNCERTAIN
    assert combine([unsure, drop], ["x"]) is Runtime.MISSING
    assert combine([ok, shadow], []) is Runtime.SHADOWED
    assert combine([drop, shadow], []) is Runtime.SHADOWED
    assert combine([drop], []) is Runtime.MISSING


def test_chain_states():
    assert [s for s in ChainState if s.passes] == [ChainState.OURS, ChainState.OTHER, ChainState.POLICY]
    assert ChainState.OURS.value == "allowed" and ChainState.OTHER.value == "allowed-by-other"
    assert RANK[Runtime.MISSING] < RANK[Runtime.SHADOWED] < RANK[Runtime.UNCERTAIN] \
        < RANK[Runtime.ALLOWED_BY_POLICY] < RANK[Runtime.ALLOWED_BY_OTHER] < RANK[Runtime.ALLOWED]


def test_judge_chain():
    rule = RULE_IN
    pkt = Packet(Direction.IN, "eth0", "224.0.0.18")
    v = judge_chain(chain(rules=[OURS_IN], policy="DROP"), rule, pkt)
    assert v.state is ChainState.OURS and v.ours == [OURS_IN] and v.decision.rule is OURS_IN
    other = FwRule("INPUT", target="ACCEPT", text="other")
    v = judge_chain(chain(rules=[other, OURS_IN], policy="DROP"), rule, pkt)
    assert v.state is ChainState.OTHER and v.ours == [OURS_IN]
    # vrrpfw's rule moved into a user chain decides as "another rule".
    moved = FwRule("S", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0", matches=COMMENTED,
                   target="ACCEPT")
    v = judge_chain(chain(rules=[FwRule("INPUT", target="S")], policy="DROP", user={"S": [moved]}), rule, pkt)
    assert v.state is ChainState.OTHER and v.ours == []
    # Another direction's or interface's rule is not ours.
    eth1 = FwRule("INPUT", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth1", matches=COMMENTED,
                  target="ACCEPT")
    assert judge_chain(chain(rules=[eth1]), rule, pkt).ours == []
    assert judge_chain(chain(policy="ACCEPT"), rule, pkt).state is ChainState.POLICY
    assert judge_chain(chain(policy="DROP"), rule, pkt).state is ChainState.DROP
    v = judge_chain(chain(rules=[FwRule("INPUT", target="DROP"), OURS_IN]), rule, pkt)
    assert v.state is ChainState.DROP and v.ours == [OURS_IN]
    maybe = FwRule("INPUT", src="198.51.100.1/32", target="DROP")
    assert judge_chain(chain(rules=[maybe]), rule, pkt).state is ChainState.UNCERTAIN


def test_chain_verdict_text():
    r = FwRule("INPUT", target="DROP", text="-A INPUT -j DROP")
    assert verdict(ChainState.POLICY).text == "legacy filter INPUT: allowed by policy ACCEPT"
    assert verdict(ChainState.OURS, rule=OURS_IN).text == "legacy filter INPUT: allowed by vrrpfw's rule"
    assert verdict(ChainState.OTHER, rule=r).text == "legacy filter INPUT: accepted by -A INPUT -j DROP"
    assert verdict(ChainState.OTHER, rule=FwRule("INPUT")).text == "legacy filter INPUT: accepted by a rule"
    sub = FwRule("SUB", target="DROP", text="deep")
    assert verdict(ChainState.DROP, rule=sub).text == "legacy filter INPUT: dropped by SUB: deep"
    assert verdict(ChainState.DROP, policy="DROP").text == "legacy filter INPUT: dropped by policy DROP"
    assert verdict(ChainState.UNCERTAIN, rule=r, reason="why").text == \
        "legacy filter INPUT: uncertain (why: -A INPUT -j DROP)"
    assert verdict(ChainState.UNCERTAIN, policy="DROP").text == \
        "legacy filter INPUT: uncertain (not judged: policy DROP)"


def test_path_verdict_detail():
    pol = verdict(ChainState.POLICY)
    drop = verdict(ChainState.DROP, policy="DROP")
    assert PathVerdict(RULE_IN, Runtime.ALLOWED_BY_POLICY, [pol], []).detail == \
        "no chain on the path drops VRRP; no rule pins it (a policy change would block it)"
    assert PathVerdict(RULE_IN, Runtime.ALLOWED_BY_POLICY, [pol], ["nft"]).detail == \
        "no chain on the path drops VRRP; no rule pins it (a policy change would block it); not read: nft"
    assert PathVerdict(RULE_IN, Runtime.MISSING, [pol, drop], ["a", "b"]).detail == \
        "legacy filter INPUT: dropped by policy DROP; not read: a; not read: b"
    assert PathVerdict(RULE_IN, Runtime.UNCERTAIN, [pol], ["a"]).detail == "not read: a"
    assert PathVerdict(RULE_IN, Runtime.UNCERTAIN, [], []).detail == ""


def model_in():
    return PathModel([
        chain("PREROUTING", Hook.PREROUTING, [], table="raw", priority=-300),
        chain("INPUT", Hook.INPUT, [OURS_IN], policy="DROP"),
        chain("input", Hook.INPUT, [], policy="ACCEPT", layer="nft", family="inet", table="fw"),
        chain("OUTPUT", Hook.OUTPUT, [OURS_OUT], policy="DROP"),
    ])


def test_judge_whole_path():
    v = judge(model_in(), RULE_IN)
    assert v.state is Runtime.ALLOWED and v.rule == RULE_IN and v.unread == []
    assert [cv.chain.id.name for cv in v.chains] == ["PREROUTING", "INPUT", "input"]
    assert [cv.state for cv in v.chains] == [ChainState.POLICY, ChainState.OURS, ChainState.POLICY]
    out = judge(model_in(), RULE_OUT)
    assert out.state is Runtime.ALLOWED and [cv.chain.id.name for cv in out.chains] == ["OUTPUT"]
    m = model_in()
    m.unread.append("legacy iptables")
    v = judge(m, RULE_IN)
    assert v.state is Runtime.UNCERTAIN and v.unread == ["legacy iptables"] and v.unread is not m.unread


def test_judge_uses_the_source():
    from_peer = FwRule("INPUT", src="192.0.2.0/24", target="ACCEPT")
    m = PathModel([chain(rules=[from_peer], policy="DROP")])
    assert judge(m, RULE_IN).state is Runtime.UNCERTAIN
    assert judge(m, RULE_IN, src="192.0.2.9").state is Runtime.ALLOWED_BY_OTHER
    assert judge(m, RULE_IN, src="198.51.100.1").state is Runtime.MISSING
    assert judge(m, RULE_IN, src_net="192.0.2.0/24").state is Runtime.ALLOWED_BY_OTHER


def test_judge_peers():
    good, bad = "192.0.2.9", "198.51.100.1"
    from_peer = FwRule("INPUT", src="192.0.2.0/24", target="ACCEPT")
    m = PathModel([chain(rules=[from_peer], policy="DROP")])
    local = ("192.0.2.1", "192.0.2.0/24")
    assert judge_peers(m, RULE_IN, [good], local).state is Runtime.ALLOWED_BY_OTHER
    # The worst peer's verdict stands, wherever it is in the list.
    assert judge_peers(m, RULE_IN, [good, bad], local).state is Runtime.MISSING
    assert judge_peers(m, RULE_IN, [bad, good], local).state is Runtime.MISSING
    # No peer: somewhere on the subnet; no subnet known: uncertain.
    assert judge_peers(m, RULE_IN, [], local).state is Runtime.ALLOWED_BY_OTHER
    assert judge_peers(m, RULE_IN, []).state is Runtime.UNCERTAIN
    assert judge_peers(m, RULE_IN, [good]).state is Runtime.ALLOWED_BY_OTHER
    # A peer's address is not known to lie in the subnet: the subnet still decides the rpf lookup.
    rpf = FwRule("INPUT", matches=(Match("set", (("key", ("fib_rpf",)), ("values", ("present",)))),),
                 target="ACCEPT")
    m2 = PathModel([chain(rules=[rpf], policy="DROP")])
    assert judge_peers(m2, RULE_IN, [good], local).state is Runtime.ALLOWED_BY_OTHER
    assert judge_peers(m2, RULE_IN, [good]).state is Runtime.UNCERTAIN
    # Outbound the advert leaves from our own address.
    own = PathModel([chain("OUTPUT", Hook.OUTPUT, [FwRule("OUTPUT", src="192.0.2.1/32", target="ACCEPT")],
                           policy="DROP")])
    assert judge_peers(own, RULE_OUT, [bad], local).state is Runtime.ALLOWED_BY_OTHER
    assert judge_peers(own, RULE_OUT, [bad]).state is Runtime.UNCERTAIN


def test_more_path_edges():
    # vrrpfw's rule in an nft chain (lower-case name) is still ours.
    nft_ours = FwRule("input", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0", matches=COMMENTED,
                      target="ACCEPT")
    c = chain("input", layer="nft", family="inet", table="t", rules=[nft_ours], policy="DROP")
    v = judge_chain(c, RULE_IN, Packet(Direction.IN, "eth0", "224.0.0.18"))
    assert v.state is ChainState.OURS and v.ours == [nft_ours]
    # A notrack in a netdev chain bound to the advert's interface counts.
    bound = chain("ingress", Hook.INGRESS, [FwRule("ingress", effects=("NOTRACK",))], layer="nft",
                  family="netdev", devices=("eth0",))
    assert packet_for(PathModel([bound]), RULE_IN).ct_state is None
    deep = {f"C{i}": [FwRule(f"C{i}", target=f"C{i + 1}")] for i in range(70)}
    assert len(list(reachable_rules(chain(rules=[FwRule("INPUT", target="C0")], user=deep)))) == 65
