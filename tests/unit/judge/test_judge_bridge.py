"""Bridges on the judged path (vrrpfw/judge/netpath.py, chaineval's physdev
and bridge selectors, judge/read/bridges.py), pure.  The facts these encode
were measured with real packets: tests/integration/judge/test_bridge_path.py."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from vrrpfw.judge.matches import match_physdev
from vrrpfw.judge.netpath import judge
from vrrpfw.judge.packet_values import multicast_mac
from vrrpfw.judge.path_model import Bridge, Hook, Vantage
from vrrpfw.judge.read.bridges import bridges_from_links
from vrrpfw.judge.read.saved import model_from_texts
from vrrpfw.judge.rules import Match, Packet, Tri
from vrrpfw.model import Direction, Family, VrrpRule
from vrrpfw.results import Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "br0", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "br0", "224.0.0.18")
IN6 = VrrpRule(Direction.IN, "br0", "ff02::12", family=Family.IPV6)


def meta(key: str, value: Any, op: str = "==") -> Dict[str, Any]:
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": value}}


def payload(proto: str, fld: str, value: Any) -> Dict[str, Any]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": fld}}, "right": value}}


VRRP = payload("ip", "protocol", "vrrp")


def ruleset(family: str, hook: str, exprs: List[List[Dict[str, Any]]], policy: str = "accept",
            dev: Optional[str] = None) -> Dict[str, Any]:
    chain: Dict[str, Any] = {"family": family, "table": "f", "name": "c", "type": "filter", "hook": hook,
                             "prio": 0, "policy": policy}
    if dev:
        chain["dev"] = dev
    items: List[Dict[str, Any]] = [{"table": {"family": family, "name": "f"}}, {"chain": chain}]
    items += [{"rule": {"family": family, "table": "f", "chain": "c", "handle": i + 2, "expr": e}}
              for i, e in enumerate(exprs)]
    return {"nftables": items}


def merged(*docs: Dict[str, Any]) -> Dict[str, Any]:
    return {"nftables": [i for d in docs for i in d["nftables"]]}


ONE = {"br0": Bridge("br0", ("eth0",))}
TWO = {"br0": Bridge("br0", ("eth0", "eth1"))}
BRNF = {"br0": Bridge("br0", ("eth0",), call_iptables=True, call_ip6tables=False)}


def verdict(doc=None, bridges=None, rule=IN, legacy=None):
    return judge(model_from_texts(legacy=legacy, nft_json=doc, bridges=bridges), rule)


def test_bridge_input_drop_is_on_a_bridges_path_only():
    doc = ruleset("bridge", "input", [[VRRP, {"drop": None}]])
    v = verdict(doc, ONE)
    assert v.state is Runtime.MISSING
    assert "nft bridge f c (port eth0): dropped by" in v.detail
    other = VrrpRule(Direction.IN, "eth5", "224.0.0.18")  # not a bridge, not a port
    assert verdict(doc, ONE, other).state is Runtime.ALLOWED_BY_POLICY
    assert verdict(doc, ONE, OUT).state is Runtime.ALLOWED_BY_POLICY  # input hook: inbound only


def test_bridge_output_and_postrouting_see_our_adverts():
    for hook in ("output", "postrouting"):
        doc = ruleset("bridge", hook, [[VRRP, {"drop": None}]])
        assert verdict(doc, ONE, OUT).state is Runtime.MISSING
        assert verdict(doc, ONE, IN).state is Runtime.ALLOWED_BY_POLICY


def test_bridge_chains_see_the_port_not_the_bridge():
    by_port = ruleset("bridge", "input", [[meta("iifname", "eth0"), {"drop": None}]])
    by_bridge = ruleset("bridge", "input", [[meta("iifname", "br0"), {"drop": None}]])
    assert verdict(by_port, ONE).state is Runtime.MISSING
    assert verdict(by_bridge, ONE).state is Runtime.ALLOWED_BY_POLICY
    out_port = ruleset("bridge", "output", [[meta("oifname", "eth0"), {"drop": None}]])
    assert verdict(out_port, ONE, OUT).state is Runtime.MISSING


def test_a_port_match_is_uncertain_unless_every_port_agrees():
    doc = ruleset("bridge", "input", [[meta("iifname", "eth0"), {"drop": None}]])
    assert verdict(doc, TWO).state is Runtime.UNCERTAIN
    every = ruleset("bridge", "input", [[meta("iifname", "eth*"), {"drop": None}]])
    assert verdict(every, TWO).state is Runtime.MISSING
    # Outbound adverts are flooded to every port: one port's drop loses that peer.
    out = ruleset("bridge", "output", [[meta("oifname", "eth1"), {"drop": None}]])
    assert verdict(out, TWO, OUT).state is Runtime.UNCERTAIN


def test_ibrname_ether_daddr_and_vlan():
    drop_br0 = ruleset("bridge", "input", [[meta("ibrname", "br0"), {"drop": None}]])
    drop_br1 = ruleset("bridge", "input", [[meta("ibrname", "br1"), {"drop": None}]])
    assert verdict(drop_br0, ONE).state is Runtime.MISSING
    assert verdict(drop_br1, ONE).state is Runtime.ALLOWED_BY_POLICY
    mac = ruleset("bridge", "input", [[payload("ether", "daddr", "01:00:5e:00:00:12"), {"accept": None}]],
                  policy="drop")
    assert verdict(mac, ONE).state is Runtime.ALLOWED_BY_OTHER
    assert verdict(mac, ONE, IN6).state is Runtime.MISSING  # ff02::12 goes to 33:33:00:00:00:12
    vlan = ruleset("bridge", "input", [[payload("vlan", "id", 10), {"drop": None}]])
    assert verdict(vlan, ONE).state is Runtime.UNCERTAIN


def test_bridge_chains_see_both_families():
    doc = ruleset("bridge", "input", [[meta("l4proto", "vrrp"), {"drop": None}]])
    assert verdict(doc, ONE, IN6).state is Runtime.MISSING
    v4_only = ruleset("bridge", "input", [[VRRP, {"drop": None}]])
    assert verdict(v4_only, ONE, IN6).state is Runtime.ALLOWED_BY_POLICY


def test_unknown_topology_makes_a_bridge_drop_uncertain_never_ok():
    doc = ruleset("bridge", "input", [[VRRP, {"drop": None}]])
    assert verdict(doc, None).state is Runtime.UNCERTAIN
    # Known: not a bridge.
    assert verdict(doc, {}).state is Runtime.ALLOWED_BY_POLICY


def test_netdev_chains_on_the_port_are_on_the_path():
    doc = ruleset("netdev", "ingress", [[VRRP, {"drop": None}]], dev="eth1")
    assert verdict(doc, TWO).state is Runtime.UNCERTAIN  # only adverts that come in on eth1
    one = ruleset("netdev", "ingress", [[VRRP, {"drop": None}]], dev="eth0")
    assert verdict(one, ONE).state is Runtime.MISSING
    egress = ruleset("netdev", "egress", [[VRRP, {"drop": None}]], dev="eth0")
    assert verdict(egress, ONE, OUT).state is Runtime.MISSING


def test_path_order_port_bridge_then_ip():
    doc = merged(ruleset("bridge", "input", [[VRRP, {"drop": None}]]),
                 ruleset("ip", "input", [[VRRP, {"drop": None}]]),
                 ruleset("netdev", "ingress", [[VRRP, {"counter": None}]], dev="eth0"))
    model = model_from_texts(nft_json=doc, bridges=ONE)
    stops = model.stops(IN, model.vantages(IN)[0])
    assert [(s.where, s.chain.id.family, s.chain.hook, s.interface) for s in stops] == [
        ("port", "netdev", Hook.INGRESS, "eth0"), ("bridge", "bridge", Hook.INPUT, "eth0"),
        ("iface", "ip", Hook.INPUT, "br0")]


PHYSDEV_DROP = "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A {chain} {rule} -j DROP\nCOMMIT\n"


@pytest.mark.parametrize("rule,brnf_on,off", [
    ("-m physdev --physdev-in eth0 -p vrrp", Runtime.MISSING, Runtime.ALLOWED_BY_POLICY),
    ("-m physdev --physdev-in eth9 -p vrrp", Runtime.ALLOWED_BY_POLICY, Runtime.ALLOWED_BY_POLICY),
    ("-m physdev --physdev-is-in", Runtime.MISSING, Runtime.ALLOWED_BY_POLICY),
    ("-m physdev --physdev-is-bridged", Runtime.ALLOWED_BY_POLICY, Runtime.ALLOWED_BY_POLICY),
    ("-m physdev ! --physdev-is-bridged", Runtime.MISSING, Runtime.MISSING),
    ("-m physdev ! --physdev-out eth0", Runtime.ALLOWED_BY_POLICY, Runtime.MISSING),
    ("-m physdev --physdev-is-out", Runtime.ALLOWED_BY_POLICY, Runtime.ALLOWED_BY_POLICY),
])
def test_physdev_inbound_as_measured(rule, brnf_on, off):
    text = PHYSDEV_DROP.format(chain="INPUT", rule=rule)
    assert verdict(None, BRNF, IN, legacy=text).state is brnf_on
    assert verdict(None, ONE, IN, legacy=text).state is off  # br_netfilter off
    assert verdict(None, None, IN, legacy=text).state is Runtime.UNCERTAIN  # not known


def test_physdev_on_ipv6_follows_call_ip6tables_and_our_own_adverts_carry_none():
    text6 = PHYSDEV_DROP.format(chain="INPUT", rule="-m physdev --physdev-in eth0")
    model = model_from_texts(legacy6=text6, bridges=BRNF)  # call_ip6tables off
    assert judge(model, IN6).state is Runtime.ALLOWED_BY_POLICY
    out = PHYSDEV_DROP.format(chain="OUTPUT", rule="-m physdev ! --physdev-is-bridged")
    assert verdict(None, BRNF, OUT, legacy=out).state is Runtime.MISSING
    on_other = VrrpRule(Direction.IN, "eth5", "224.0.0.18")
    text = PHYSDEV_DROP.format(chain="INPUT", rule="-m physdev --physdev-in eth0")
    assert verdict(None, BRNF, on_other, legacy=text).state is Runtime.ALLOWED_BY_POLICY


def test_physdev_in_on_two_ports_is_uncertain():
    text = PHYSDEV_DROP.format(chain="INPUT", rule="-m physdev --physdev-in eth1")
    two = {"br0": Bridge("br0", ("eth0", "eth1"), call_iptables=True)}
    assert verdict(None, two, IN, legacy=text).state is Runtime.UNCERTAIN


def test_match_physdev_unknown_port_is_maybe():
    m = Match("physdev", (("physdev-in", ("eth0",)),))
    pkt = Packet(Direction.IN, "br0", "224.0.0.18", brnf=True, port=None)
    assert match_physdev(m, pkt) is Tri.MAYBE
    assert match_physdev(m, Packet(Direction.IN, "br0", "224.0.0.18", brnf=None)) is Tri.MAYBE


def test_multicast_mac():
    assert multicast_mac("224.0.0.18") == "01:00:5e:00:00:12"
    assert multicast_mac("239.129.1.2") == "01:00:5e:01:01:02"  # the high bit of the 2nd octet is lost
    assert multicast_mac("ff02::12") == "33:33:00:00:00:12"
    assert multicast_mac("192.0.2.1") is None


def test_bridges_from_links():
    links = [
        {"ifname": "lo"},
        {"ifname": "eth0", "master": "br0", "linkinfo": {"info_kind": "veth", "info_slave_kind": "bridge"}},
        {"ifname": "eth1", "master": "br0", "linkinfo": {"info_kind": "veth", "info_slave_kind": "bridge"}},
        {"ifname": "br0", "linkinfo": {"info_kind": "bridge",
                                       "info_data": {"nf_call_iptables": 0, "nf_call_ip6tables": 1}}},
        {"ifname": "br1", "linkinfo": {"info_kind": "bridge", "info_data": {"nf_call_iptables": 0}}},
    ]
    got = bridges_from_links(links, True, False, False)
    assert got["br0"] == Bridge("br0", ("eth0", "eth1"), False, True)  # the bridge's own option
    assert got["br1"] == Bridge("br1", (), False, None)  # no nf_call_ip6tables reported: unknown
    off = bridges_from_links(links, False, None, None)  # br_netfilter not loaded
    assert off["br0"] == Bridge("br0", ("eth0", "eth1"), False, False)
    assert bridges_from_links(links, True, True, True)["br1"].call_iptables is True


def test_vantages():
    model = model_from_texts(nft_json=ruleset("bridge", "input", []), bridges=TWO)
    assert model.vantages(IN) == [Vantage("br0", "eth0", False), Vantage("br0", "eth1", False)]
    port = VrrpRule(Direction.IN, "eth1", "224.0.0.18")
    assert model.vantages(port) == [Vantage("br0", "eth1", False)]
    assert model.vantages(VrrpRule(Direction.OUT, "eth1", "224.0.0.18")) == [Vantage("", None, False)]
    assert model.vantages(VrrpRule(Direction.IN, "eth7", "224.0.0.18")) == [Vantage("", None, False)]
    empty = model_from_texts(bridges={"br0": Bridge("br0", (), True)})
    assert empty.vantages(IN) == [Vantage("br0", None, True)]


def test_a_bridge_port_as_the_interface():
    port_in = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
    port_out = VrrpRule(Direction.OUT, "eth0", "224.0.0.18")
    v = verdict(None, ONE, port_in)
    assert v.state is Runtime.UNCERTAIN  # the stack receives it on br0, never on eth0
    assert "eth0 is a port of bridge br0" in v.detail
    drop_in = ruleset("bridge", "input", [[VRRP, {"drop": None}]])
    assert verdict(drop_in, ONE, port_in).state is Runtime.MISSING
    # Sent straight out of a port, the frame bypasses the bridge hooks.
    drop_out = ruleset("bridge", "output", [[VRRP, {"drop": None}]])
    assert verdict(drop_out, ONE, port_out).state is Runtime.ALLOWED_BY_POLICY
    assert verdict(None, ONE, port_out).detail.startswith("no chain on the path")


EBT_LISTING = """Bridge table: filter

Bridge chain: INPUT, entries: 4, policy: ACCEPT
-p IPv4 -i eth1 --ip-proto vrrp -j DROP
-p IPv4 -i eth0 --ip-dst 224.0.0.18 -j ACCEPT
-p IPv6 --ip6-proto vrrp -j DROP
--pkttype-type multicast -j CONTINUE
-d 01:00:5e:00:00:12 --among-dst 1:2:3:4:5:6 -j DROP

Bridge chain: OUTPUT, entries: 1, policy: DROP
-p ! IPv4 -j ACCEPT
"""


def test_ebtables_listing_is_judged():
    from vrrpfw.judge.ebtables import parse_listing
    from vrrpfw.judge.matches import match_rule

    chains = parse_listing(EBT_LISTING)
    r0, r1, r2, r3, r4 = chains["INPUT"]
    on = {p: Packet(Direction.IN, p, "224.0.0.18", bridge="br0") for p in ("eth0", "eth1")}
    v6 = Packet(Direction.IN, "eth0", "ff02::12", family="ipv6", bridge="br0")
    assert (match_rule(r0, on["eth0"]), match_rule(r0, on["eth1"]), match_rule(r0, v6)) == (Tri.NO, Tri.YES,
                                                                                          Tri.NO)
    assert r0.target == "DROP" and r1.target == "ACCEPT" and r3.target == ""
    assert match_rule(r1, on["eth0"]) is Tri.YES
    assert (match_rule(r2, on["eth0"]), match_rule(r2, v6)) == (Tri.NO, Tri.YES)
    assert match_rule(r3, on["eth0"]) is Tri.YES
    assert match_rule(r4, on["eth0"]) is Tri.MAYBE  # --among-dst: not judged
    (out,) = chains["OUTPUT"]
    assert match_rule(out, Packet(Direction.OUT, "eth0", "224.0.0.18")) is Tri.NO
    assert match_rule(out, Packet(Direction.OUT, "eth0", "ff02::12", family="ipv6")) is Tri.YES


def test_ports_are_judged_once_where_none_can_differ():
    many = {"br0": Bridge("br0", tuple(f"tap{i}" for i in range(50)))}
    ip_only = ruleset("ip", "input", [[meta("iifname", "br0"), VRRP, {"drop": None}]])
    model = model_from_texts(nft_json=ip_only, bridges=many)
    assert len(model.vantages(IN)) == 1
    assert judge(model, IN).state is Runtime.MISSING
    with_bridge = merged(ip_only, ruleset("bridge", "input", []))
    assert len(model_from_texts(nft_json=with_bridge, bridges=many).vantages(IN)) == 50
    brnf = {"br0": Bridge("br0", ("tap0", "tap1"), call_iptables=True)}
    assert len(model_from_texts(nft_json=ip_only, bridges=brnf).vantages(IN)) == 2
    assert len(model_from_texts(nft_json=ip_only, bridges=brnf).vantages(OUT)) == 1  # ours carry no physdev
