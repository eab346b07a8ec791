"""Issue 10 in the nftables backend's pure parts: the converter judges IPv6,
AH, TTL / hop limit and unicast expressions per packet family (three-valued:
the same rule for an IPv4 and an IPv6 advert), vrrpfw's rules of every shape
are written in one nft form and recognised back, and nftables.conf blocks
round-trip every shape (old IPv4 blocks included)."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from vrrpfw.backends.nftables import needs_xt, nft_rule_json, nft_rule_text, xt_insert_line
from vrrpfw.judge.matches import match_rule
from vrrpfw.judge.nft import convert_rule, convert_table
from vrrpfw.judge.rules import Match, Packet, vrrpfw_key
from vrrpfw.model import Direction, Family, make_specs, rules_for
from vrrpfw.persist import nft_conf

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN, OUT = Direction.IN, Direction.OUT
V4 = Packet(IN, "eth0", "224.0.0.18", src="192.0.2.2", family="ipv4")
V6 = Packet(IN, "eth0", "ff02::12", src="fe80::2", family="ipv6")
AH4 = Packet(IN, "eth0", "224.0.0.18", src="192.0.2.2", family="ipv4", proto=51)
LOW_TTL4 = Packet(IN, "eth0", "224.0.0.18", src="192.0.2.2", family="ipv4", ttl=1)
LOW_HL6 = Packet(IN, "eth0", "ff02::12", src="fe80::2", family="ipv6", ttl=1)


def pay(proto: str, field: str) -> Dict[str, Any]:
    return {"payload": {"protocol": proto, "field": field}}


def meta(key: str) -> Dict[str, Any]:
    return {"meta": {"key": key}}


def m(left: Any, right: Any, op: str = "==") -> Dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def rule(*expr: Dict[str, Any], family: str = "inet", verdict: str = "drop", comment: str = ""):
    body: Dict[str, Any] = {"expr": [*expr, {verdict: None}]}
    if comment:
        body["comment"] = comment
    rules = convert_rule("input", body, {}, family)
    assert len(rules) == 1
    return rules[0]


def judged(fw, *pkts: Packet) -> List[str]:
    return [match_rule(fw, p).name for p in pkts]


# --- converter: family ----------------------------------------------------

@pytest.mark.parametrize("exprs,v4,v6", [
    ([m(pay("ip6", "daddr"), "ff02::12")], "NO", "YES"),
    ([m(pay("ip6", "daddr"), "ff02::12", "!=")], "NO", "NO"),
    ([m(pay("ip6", "daddr"), "ff02::13", "!=")], "NO", "YES"),
    ([m(pay("ip", "daddr"), "224.0.0.18")], "YES", "NO"),
    # an inet chain's 'ip daddr != X' requires IPv4 (nft adds meta nfproto ipv4)
    ([m(pay("ip", "daddr"), "224.0.0.19", "!=")], "YES", "NO"),
    ([m(pay("ip", "protocol"), "vrrp")], "YES", "NO"),
    ([m(pay("ip6", "nexthdr"), "vrrp")], "NO", "YES"),
    ([m(meta("l4proto"), "vrrp")], "YES", "YES"),
    ([m(meta("nfproto"), "ipv6")], "NO", "YES"),
    ([m(meta("nfproto"), "ipv4")], "YES", "NO"),
    ([m(meta("protocol"), "ip6")], "NO", "YES"),
    ([m(pay("ip6", "saddr"), {"prefix": {"addr": "fe80::", "len": 10}})], "NO", "YES"),
    ([m(pay("ip6", "saddr"), "fd00::9")], "NO", "NO"),
    ([m(pay("ip6", "hoplimit"), 255)], "NO", "YES"),
    ([m(pay("ip6", "hoplimit"), 255, "!=")], "NO", "NO"),
    ([m(pay("ip", "ttl"), 255, "!=")], "NO", "NO"),
    ([m(pay("ip6", "hoplimit"), {"set": [1, 255]})], "NO", "YES"),
    ([m(pay("ip6", "flowlabel"), 5)], "NO", "MAYBE"),  # not judged, but IPv6 only
    ([m(pay("ip", "dscp"), "cs1")], "NO", "NO"),  # keepalived sends CS6
    ([m(pay("ip", "dscp"), "cs6")], "YES", "NO"),
    ([m(pay("icmpv6", "type"), "nd-neighbor-solicit")], "NO", "NO"),
])
def test_inet_rule_judged_per_family(exprs, v4, v6):
    assert judged(rule(*exprs), V4, V6) == [v4, v6]


def test_table_family_decides_what_reaches_a_rule():
    # In an ip6 table only IPv6 adverts arrive, so no nfproto test is added.
    fw = rule(m(pay("ip6", "nexthdr"), "vrrp"), family="ip6")
    assert fw.protocol == "vrrp" and fw.matches == ()
    # 'ip6 ...' in an ip table never matches the IPv4 adverts that reach it.
    assert judged(rule(m(pay("ip6", "nexthdr"), "vrrp"), family="ip"), V4) == ["NO"]
    # netdev sees both families, like inet.
    assert judged(rule(m(pay("ip6", "nexthdr"), "vrrp"), family="netdev"), V4, V6) == ["NO", "YES"]


def test_ah_expressions():
    assert judged(rule(m(pay("ip", "protocol"), "ah")), V4, AH4, V6) == ["NO", "YES", "NO"]
    assert judged(rule(m(meta("l4proto"), "ah")), V4, AH4) == ["NO", "YES"]
    # An AH header field: an AH advert may match, a plain VRRP advert cannot.
    assert judged(rule(m(pay("ah", "spi"), 5)), V4, AH4) == ["NO", "MAYBE"]
    assert judged(rule(m(pay("esp", "spi"), 5)), V4, AH4) == ["NO", "NO"]


def test_ttl_becomes_the_match_vrrpfw_key_reads():
    fw = rule(m(pay("ip", "ttl"), 255))
    assert fw.matches[-1] == Match("ttl", (("ttl-eq", ("255",)),))
    assert judged(fw, V4, LOW_TTL4, V6) == ["YES", "NO", "NO"]
    fw = rule(m(pay("ip6", "hoplimit"), 255))
    assert fw.matches[-1] == Match("hl", (("hl-eq", ("255",)),))
    assert judged(fw, V6, LOW_HL6, V4) == ["YES", "NO", "NO"]
    fw = rule(m(pay("ip", "ttl"), 255, "!="))
    assert judged(fw, V4, LOW_TTL4) == ["NO", "YES"]


def test_unicast_expressions():
    fw = rule(m(pay("ip", "saddr"), "192.0.2.2"), m(pay("ip", "daddr"), "224.0.0.18"))
    assert (fw.src, fw.dst) == ("192.0.2.2/32", "224.0.0.18/32")
    other = Packet(IN, "eth0", "224.0.0.18", src="192.0.2.3", family="ipv4")
    assert judged(fw, V4, other, V6) == ["YES", "NO", "NO"]
    unknown_peer = Packet(IN, "eth0", "224.0.0.18", family="ipv4", src_net="192.0.2.0/24")
    assert judged(fw, unknown_peer) == ["MAYBE"]  # never a guessed yes or no
    fw = rule(m(pay("ip6", "saddr"), "fd00::2"), m(pay("ip6", "daddr"), "fd00::1"))
    assert (fw.src, fw.dst) == ("fd00::2/128", "fd00::1/128")


# --- vrrpfw's own rules, every shape ----------------------------------------

def shapes() -> List:
    out = []
    for kw in (dict(), dict(groups=["ff02::12"]), dict(strict=True), dict(groups=["ff02::12"], strict=True),
               dict(ah=True), dict(ah=True, strict=True), dict(peers=["192.0.2.2", "192.0.2.3"]),
               dict(peers=["fd00::2"], local="fd00::1", strict=True),
               dict(peers=["192.0.2.2"], ah=True, strict=True)):
        for spec in make_specs(["eth0"], local_of=lambda i, f: "192.0.2.1", **kw):
            out += rules_for(spec)
    return out


def expr_of(r) -> List[Dict[str, Any]]:
    """nft_rule_json as nft lists it back (counter with numbers, JSON ints)."""
    body = nft_rule_json(r, ("inet", "filter", "input"))
    return [{"counter": {"packets": 0, "bytes": 0}} if e == {"counter": None} else e for e in body["expr"]]


@pytest.mark.parametrize("r", shapes(), ids=lambda r: f"{r.direction.value} {r.selector}")
def test_written_rule_is_recognised_and_judged(r):
    for family in ("inet", "ip6" if r.family is Family.IPV6 else "ip", "netdev"):
        fw = convert_rule("input", {"expr": expr_of(r), "comment": "vrrpfw"}, {}, family)[0]
        assert vrrpfw_key(fw, anywhere=True) == r.key, fw
    fw = convert_rule("input", {"expr": expr_of(r), "comment": "vrrpfw"}, {}, "inet")[0]
    pkt = Packet(r.direction, "eth0", r.dst, src=r.src, family=r.family.value, proto=r.proto)
    other = Packet(r.direction, "eth0", "224.0.0.18" if r.family is Family.IPV6 else "ff02::12",
                   family="ipv4" if r.family is Family.IPV6 else "ipv6", proto=r.proto)
    assert judged(fw, pkt, other) == ["YES", "NO"]
    if r.strict:
        assert judged(fw, Packet(r.direction, "eth0", r.dst, src=r.src, family=r.family.value,
                                 proto=r.proto, ttl=64)) == ["NO"]


def test_rule_text_shapes():
    v4, v6, uni, ah = (rules_for(s)[0] for s in (
        make_specs(["eth0"])[0], make_specs(["eth0"], ["ff02::12"], strict=True)[0],
        make_specs(["eth0"], peers=["192.0.2.2"], local="192.0.2.1", strict=True)[0],
        make_specs(["eth0"], ah=True)[0]))
    # the IPv4 multicast form is the one older vrrpfw wrote, byte for byte
    assert nft_rule_text(v4) == ('iifname "eth0" ip daddr 224.0.0.18 ip protocol vrrp '
                                 'counter accept comment "vrrpfw"')
    assert nft_rule_text(v6) == ('iifname "eth0" ip6 daddr ff02::12 ip6 hoplimit 255 meta l4proto vrrp '
                                 'counter accept comment "vrrpfw"')
    assert nft_rule_text(uni) == ('iifname "eth0" ip saddr 192.0.2.2 ip daddr 192.0.2.1 ip ttl 255 '
                                  'ip protocol vrrp counter accept comment "vrrpfw"')
    ah_rule = rules_for(make_specs(["eth0"], ah=True)[0])[2]
    assert nft_rule_text(ah_rule).endswith('ip protocol ah counter accept comment "vrrpfw"')
    assert ah.proto == 112


def test_strict_rules_in_iptables_nft_chains_use_its_own_match():
    strict = rules_for(make_specs(["eth0"], ["ff02::12"], strict=True)[0])
    assert needs_xt(strict[0], ("ip6", "filter", "INPUT"))
    assert not needs_xt(strict[1], ("ip6", "filter", "OUTPUT"))  # outbound: no TTL match
    assert not needs_xt(strict[0], ("inet", "filter", "input"))
    assert not needs_xt(strict[0], ("ip6", "filter", "vrrp_in"))  # not a chain iptables-nft made
    assert xt_insert_line(strict[0], ("ip6", "filter", "INPUT")) == (
        "-I INPUT 1 -d ff02::12/128 -i eth0 -p 112 -m hl --hl-eq 255 -m comment --comment vrrpfw -j ACCEPT")


def test_ip6_iptables_nft_table_is_read_with_its_compat_rules():
    """ip6tables-nft's own strict rule: xt expressions resolved by position."""
    from vrrpfw.judge.iptables import parse_rule
    line = "-A INPUT -d ff02::12/128 -i eth0 -p vrrp -m hl --hl-eq 255 -m comment --comment vrrpfw -j ACCEPT"
    items = [{"chain": {"family": "ip6", "table": "filter", "name": "INPUT", "hook": "input", "prio": 0,
                        "policy": "drop"}},
             {"rule": {"family": "ip6", "table": "filter", "chain": "INPUT", "handle": 4, "expr": [
                 m(meta("iifname"), "eth0"), m(meta("l4proto"), "vrrp"), m(pay("ip6", "daddr"), "ff02::12"),
                 {"xt": {"type": "match", "name": "hl"}}, {"xt": {"type": "match", "name": "comment"}},
                 {"accept": None}]}}]
    table = convert_table("ip6", "filter", items, lambda chain, pos: parse_rule(line))
    fw = table.chains["INPUT"][0]
    assert fw.handle == 4 and table.iptables_nft
    assert vrrpfw_key(fw) == ("in", "eth0", "ff02::12 ttl 255")


# --- nftables.conf ----------------------------------------------------------

OLD_BLOCK = (f"{nft_conf.BEGIN}\n"
             'insert rule inet filter input iifname "eth0" ip daddr 224.0.0.18 ip protocol vrrp counter '
             'accept comment "vrrpfw"\n'
             f"{nft_conf.END}\n")


def test_old_block_is_still_recognised_and_closed():
    text = "flush ruleset\n" + OLD_BLOCK
    assert nft_conf.keys(text) == {("in", "eth0", "224.0.0.18")}
    assert nft_conf.without_keys(text, [("in", "eth0", "224.0.0.18")]) == "flush ruleset\n"


@pytest.mark.parametrize("r", shapes(), ids=lambda r: f"{r.direction.value} {r.selector}")
def test_conf_round_trip_every_shape(r):
    chain = ("inet", "filter", "input" if r.direction is IN else "output")
    text = nft_conf.with_lines("flush ruleset\n", [(r, chain)])
    assert nft_conf.entries(text) == [(r.key, chain)]
    assert nft_conf.with_lines(text, [(r, chain)]) == text  # idempotent
    assert nft_conf.without_keys(text, [r.key]) == "flush ruleset\n"


def test_conf_keeps_lines_it_did_not_write():
    r = rules_for(make_specs(["eth0"], ["ff02::12"], strict=True)[0])[0]
    line = nft_conf.insert_line(r, ("inet", "filter", "input"))
    edited = [line.replace("255", "254"), line.replace("ff02::12", "ff02::12/64"),
              line.replace("meta l4proto vrrp", "meta l4proto tcp"),
              line.replace("ip6 daddr", "ip daddr")]
    text = nft_conf._join("", edited, "")
    assert nft_conf.keys(text) == set()
    assert nft_conf.without_keys(text, None) == text


def test_conf_filters_chains_by_family():
    assert nft_conf.parse_line("insert rule ip6 filter input garbage") is None
    both = shapes()
    text = nft_conf.with_lines("", [(r, ("inet", "f", "c")) for r in both])
    assert nft_conf.keys(text) == {r.key for r in both}
