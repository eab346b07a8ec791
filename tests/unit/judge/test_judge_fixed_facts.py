"""What the judge knows of every keepalived advert without looking: the
device it came in or goes out by (``iif``/``oif``, nft's by-index match),
its socket (none inbound; keepalived's, as root, outbound), and its IP
header (tos 0xc0 = DSCP CS6, not ECN-capable; IHL 5; frag-off 0, DF clear;
version), and what a raw transport-header match (``th dport``) can tell.
Pure: nft JSON and iptables lines into the evaluator (vrrpfw.judge)."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from vrrpfw.judge.iptables import parse_rule
from vrrpfw.judge.matches import match_rule
from vrrpfw.judge.nft import convert_rule
from vrrpfw.judge.rules import Packet, Tri
from vrrpfw.model import Direction
from vrrpfw.record import replace

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN, OUT = Direction.IN, Direction.OUT
V4_IN = Packet(IN, "eth1", "224.0.0.18", src="192.0.2.2", src_net="192.0.2.0/24", family="ipv4")
V4_OUT = Packet(OUT, "eth1", "224.0.0.18", src="192.0.2.1", family="ipv4")
V6_IN = Packet(IN, "eth1", "ff02::12", src="fe80::2", family="ipv6")
Y, N, M = Tri.YES, Tri.NO, Tri.MAYBE


def meta(key: str) -> Dict[str, Any]:
    return {"meta": {"key": key}}


def pay(proto: str, field: str) -> Dict[str, Any]:
    return {"payload": {"protocol": proto, "field": field}}


def nft(left: Any, right: Any, pkt: Packet, op: str = "==") -> Tri:
    rules = convert_rule("c", {"expr": [{"match": {"op": op, "left": left, "right": right}}, {"drop": None}]},
                         {}, "inet")
    assert len(rules) == 1
    return match_rule(rules[0], pkt)


@pytest.mark.parametrize("key,value,op,pkt,want", [
    ("iif", "eth1", "==", V4_IN, Y),
    ("iif", "lo", "==", V4_IN, N),
    ("iif", "lo", "!=", V4_IN, Y),
    ("iif", 7, "==", V4_IN, N),  # an index nft could not name: no such device
    # No input device on output: nft reads index 0 (kernel 5.5 on), which no
    # name equals, so a negated test matches (measured: iif != "lo" on output drops).
    ("iif", "eth1", "==", V4_OUT, N),
    ("iif", "lo", "!=", V4_OUT, Y),
    ("oif", "eth1", "==", V4_OUT, Y),
    ("oif", "wg0", "!=", V4_OUT, Y),
    ("oif", "wg0", "!=", V4_IN, Y),
    ("oif", "wg0", "==", V4_IN, N),
    ("iif", {"set": ["lo", "eth1"]}, "==", V4_IN, Y),
])
def test_device_by_index(key, value, op, pkt, want):
    assert nft(meta(key), value, pkt, op) is want


@pytest.mark.parametrize("key,value,op,pkt,want", [
    ("skuid", 0, "==", V4_OUT, Y),
    ("skuid", 1234, "!=", V4_OUT, Y),
    ("skuid", "root", "==", V4_OUT, Y),
    ("skgid", 100, "==", V4_OUT, N),
    ("skuid", 1234, "!=", V4_IN, N),  # no socket on input: breaks
    ("skuid", 0, "==", V4_IN, N),
])
def test_socket_owner_is_keepalived_as_root(key, value, op, pkt, want):
    assert nft(meta(key), value, pkt, op) is want


@pytest.mark.parametrize("proto,field,value,op,pkt,want", [
    ("ip", "hdrlength", 5, "!=", V4_IN, N),
    ("ip", "hdrlength", 5, "==", V4_IN, Y),
    ("ip", "frag-off", 16384, "==", V4_IN, N),  # DF only: keepalived's adverts have DF clear
    ("ip", "frag-off", 0, "==", V4_IN, Y),
    ("ip", "dscp", "cs6", "==", V4_IN, Y),
    ("ip", "dscp", "ef", "==", V4_IN, N),
    ("ip", "dscp", 48, "!=", V4_IN, N),
    ("ip", "ecn", "not-ect", "==", V4_IN, Y),
    ("ip", "ecn", "ce", "==", V4_IN, N),
    ("ip", "version", 4, "==", V4_IN, Y),
    ("ip6", "dscp", "cs6", "==", V6_IN, Y),
    ("ip6", "version", 6, "!=", V6_IN, N),
    ("ip", "id", 5, "==", V4_IN, M),  # varies
    ("ip", "length", 40, "==", V4_IN, M),  # depends on the number of addresses
    ("ip6", "flowlabel", 0, "==", V6_IN, M),
])
def test_header_fields(proto, field, value, op, pkt, want):
    assert nft(pay(proto, field), value, pkt, op) is want


def test_masked_frag_off_df_bit_is_clear():
    left = {"&": [pay("ip", "frag-off"), 0x4000]}
    assert nft(left, 0, V4_IN, "!=") is N  # "DF set" never holds for keepalived's adverts
    assert nft(left, 0, V4_IN) is Y


def test_th_alone_is_unknown_but_l4proto_in_a_concatenation_decides():
    assert nft(pay("th", "dport"), 22, V4_IN) is M
    left = {"concat": [pay("ip", "daddr"), meta("l4proto"), pay("th", "dport")]}
    elems = {"set": [{"concat": ["224.0.0.18", "tcp", 80]}, {"concat": ["224.0.0.18", "udp", 53]}]}
    assert nft(left, elems, V4_IN) is N


def test_vmap_keyed_by_a_concatenation_with_ports_never_takes_an_advert():
    # kube-proxy's nftables mode: ip daddr . meta l4proto . th dport vmap @service-ips
    key = {"concat": [pay("ip", "daddr"), meta("l4proto"), pay("th", "dport")]}
    sets = {}
    from vrrpfw.judge.nft import NftSet
    sets["service-ips"] = NftSet("service-ips", [[{"concat": ["10.96.0.1", "tcp", 443]},
                                                  {"goto": {"target": "service-x"}}]], True)
    rules = convert_rule("c", {"expr": [{"vmap": {"key": key, "data": "@service-ips"}}]}, sets, "ip")
    assert [match_rule(r, V4_IN) for r in rules] == [N]


@pytest.mark.parametrize("line,pkt,want", [
    ("-A INPUT -m tos --tos 0xc0 -j DROP", V4_IN, Y),
    ("-A INPUT -m tos --tos 0x10/0x3f -j DROP", V4_IN, N),
    ("-A INPUT -m tos --tos Minimize-Delay -j DROP", V4_IN, N),
    ("-A INPUT -m tos ! --tos 0xc0/0xff -j DROP", V4_IN, N),
    ("-A INPUT -m dscp --dscp-class CS6 -j ACCEPT", V4_IN, Y),
    ("-A INPUT -m dscp --dscp 0x30 -j ACCEPT", V4_IN, Y),
    ("-A INPUT -m dscp ! --dscp 0x30 -j DROP", V4_IN, N),
    ("-A OUTPUT -m owner --uid-owner 0 -j ACCEPT", V4_OUT, Y),
    ("-A OUTPUT -m owner ! --uid-owner 1234 -j ACCEPT", V4_OUT, Y),
    ("-A OUTPUT -m owner --uid-owner 1000-2000 -j DROP", V4_OUT, N),
    ("-A OUTPUT -m owner --socket-exists -j ACCEPT", V4_OUT, Y),
    ("-A OUTPUT -m owner --suppl-groups --gid-owner 5 -j DROP", V4_OUT, M),
    ("-A PREROUTING -m rpfilter --invert -j DROP", V4_IN, N),  # the peer's subnet routes back here
    ("-A PREROUTING -m rpfilter -j ACCEPT", V4_IN, Y),
    ("-A PREROUTING -m rpfilter --loose --invert -j DROP", V4_IN, M),
    ("-A INPUT -f -j DROP", V4_IN, N),
])
def test_iptables_header_socket_and_rpfilter_matches(line, pkt, want):
    r = parse_rule(line)
    assert r is not None and match_rule(r, pkt) is want


def test_rpfilter_for_a_peer_off_the_subnet_is_unknown():
    pkt = Packet(IN, "eth1", "224.0.0.18", src="198.51.100.9", src_net="192.0.2.0/24", family="ipv4")
    r = parse_rule("-A PREROUTING -m rpfilter --invert -j DROP")
    assert r is not None and match_rule(r, pkt) is M


@pytest.mark.parametrize("key,value,op,pkt,want", [
    ("iifgroup", "default", "==", replace(V4_IN, iface_group=0), Y),
    ("iifgroup", 5, "==", replace(V4_IN, iface_group=0), N),
    ("iifgroup", 5, "==", replace(V4_IN, iface_group=5), Y),
    ("iifgroup", 5, "==", V4_IN, M),  # the group was not read
    ("iifgroup", "default", "!=", replace(V4_OUT, iface_group=0), N),  # no input device: breaks
    ("oifgroup", 0, "==", replace(V4_OUT, iface_group=0), Y),
    ("oifgroup", 0, "!=", replace(V4_IN, iface_group=0), N),
])
def test_interface_group(key, value, op, pkt, want):
    assert nft(meta(key), value, pkt, op) is want


def test_ipv6_unicast_hop_limit_is_the_senders_default_not_known():
    """keepalived sets only the multicast hop limit: its IPv6 unicast adverts
    leave with the sender's default (64 unless changed), measured on the
    wire (tests/integration/prove/test_advert_fidelity.py)."""
    from vrrpfw.judge.netpath import packet_for
    from vrrpfw.judge.path_model import PathModel
    from vrrpfw.model import Family, VrrpRule
    uni6 = VrrpRule(IN, "eth1", "fd00::2", Family.IPV6, local="fd00::1")
    multi6 = VrrpRule(IN, "eth1", "ff02::12", Family.IPV6)
    uni4 = VrrpRule(IN, "eth1", "192.0.2.2", Family.IPV4, local="192.0.2.1")
    assert packet_for(PathModel(), uni6).ttl is None
    assert packet_for(PathModel(), multi6).ttl == 255
    # IPv4 unicast: 255 from a peer on the link; a routed peer's adverts lost some on the way
    assert packet_for(PathModel(), uni4, "192.0.2.2", "192.0.2.0/24").ttl == 255
    assert packet_for(PathModel(), uni4, "198.51.100.7", "192.0.2.0/24").ttl is None
    assert packet_for(PathModel(), replace(uni4, direction=OUT), "192.0.2.1").ttl == 255
    pkt = packet_for(PathModel(), uni6, "fd00::2")
    assert nft(pay("ip6", "hoplimit"), 255, pkt) is M
    r = parse_rule("-A INPUT -m hl --hl-eq 255 -j ACCEPT")
    assert r is not None and match_rule(r, pkt) is M


@pytest.mark.parametrize("name", ["ipv6-frag", "hopopt", "ipv6-route", "ipv6-opts", "ipv6-nonxt", "mh"])
def test_ipv6_extension_headers_by_name_never_match_an_advert(name):
    assert nft(pay("ip6", "nexthdr"), name, V6_IN) is N  # keepalived's adverts carry none


V6_OUT = Packet(OUT, "eth1", "ff02::12", src="fe80::1", family="ipv6")


@pytest.mark.parametrize("line", [
    "-A ufw6-before-output -m rt --rt-type 0 -j DROP",  # ufw's before6.rules, every chain
    "-A OUTPUT -m rt ! --rt-type 0 -j DROP",
    "-A INPUT -m frag --fragmore -j DROP",
    "-A INPUT -m frag ! --fragid 0 -j DROP",
    "-A INPUT -m hbh --hbh-len 0 -j DROP",
    "-A INPUT -m dst ! --dst-len 8 -j DROP",
])
@pytest.mark.parametrize("pkt", [V6_IN, V6_OUT])
def test_ip6tables_extension_header_matches_never_match_an_advert(line, pkt):
    """ip6t_rt, ip6t_frag and ip6t_hbh (hbh and dst) look for their header
    and fail without one, inverted options included: keepalived's adverts
    carry none (on ufw's IPv6 output chain the rt drop made every outbound
    verdict 'uncertain', while all adverts left: test_ipv6_exthdr_path)."""
    r = parse_rule(line)
    assert r is not None and match_rule(r, pkt) is N
