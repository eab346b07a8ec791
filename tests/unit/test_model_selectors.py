"""The rule model of issue 10: families, unicast peers, AH and strict TTL,
and the selector text that carries a rule's identity through every store."""

import pytest

from vrrpfw.errors import InputError
from vrrpfw.model import (
    AH_PROTO,
    VRRP_PROTO,
    Direction,
    Family,
    VrrpRule,
    make_specs,
    parse_selector,
    rules_for,
    selector_text,
)

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def local_of(iface, fam):
    return {"eth0": {Family.IPV4: "192.0.2.1", Family.IPV6: "fe80::1"}}.get(iface, {}).get(fam)


def keys(specs):
    return [r.key for s in specs for r in rules_for(s)]


def test_default_is_ipv4_multicast_unchanged():
    assert keys(make_specs(["eth0"])) == [("in", "eth0", "224.0.0.18"), ("out", "eth0", "224.0.0.18")]


def test_ipv6_group_gives_ipv6_and_default_group():
    (spec,) = make_specs(["eth0"], ["FF02::0012"])
    assert spec.family is Family.IPV6 and spec.group == "ff02::12"
    (spec,) = make_specs(["eth0"], family="ipv6")
    assert spec.group == "ff02::12"


def test_both_families():
    specs = make_specs(["eth0"], ["224.0.0.19", "ff02::13"], family="both")
    assert [(s.family, s.group) for s in specs] == [(Family.IPV4, "224.0.0.19"), (Family.IPV6, "ff02::13")]


@pytest.mark.parametrize("kw, words", [
    (dict(groups=["224.0.0.18"], family="ipv6"), "contradicts"),
    (dict(groups=["224.0.0.18", "224.0.0.19"]), "more than one"),
    (dict(peers=["192.0.2.2"], groups=["224.0.0.18"]), "contradict"),
    (dict(local="192.0.2.1"), "needs --peer"),
    (dict(peers=["fd00::2"], ah=True), "AH"),
    (dict(family="ipv6", ah=True), "AH"),
    (dict(peers=["192.0.2.2"], family="both"), "no ipv6 peer"),
    (dict(groups=["224.0.0.19"], family="both"), "no ipv6 group"),  # once taken: ff02::12 unasked
    (dict(peers=["192.0.2.2"], local="fd00::1"), "family"),
    (dict(peers=["192.0.2.1"]), "own address"),
    (dict(peers=["192.0.2.2"], family="ipx"), "unknown family"),
    (dict(peers=["fe80::2%eth0"]), "scope"),
    (dict(peers=["127.0.0.1"]), "not a unicast"),
])
def test_contradictions_refused(kw, words):
    with pytest.raises(InputError) as e:
        make_specs(["eth0"], local_of=local_of, **kw)
    assert words in str(e.value)


def test_unicast_rules_match_peer_to_local_and_back():
    specs = make_specs(["eth0"], peers=["192.0.2.2", "192.0.2.3"], local_of=local_of)
    rules = [r for s in specs for r in rules_for(s)]
    assert [(r.direction.value, r.src, r.dst) for r in rules] == [
        ("in", "192.0.2.2", "192.0.2.1"), ("out", "192.0.2.1", "192.0.2.2"),
        ("in", "192.0.2.3", "192.0.2.1"), ("out", "192.0.2.1", "192.0.2.3")]
    assert rules[0].selector == "peer 192.0.2.2 local 192.0.2.1"


def test_unicast_needs_a_local_address():
    with pytest.raises(InputError, match="--src"):
        make_specs(["eth9"], peers=["192.0.2.2"], local_of=local_of)
    (spec,) = make_specs(["eth9"], peers=["192.0.2.2"], local="192.0.2.9", local_of=local_of)
    assert spec.local == "192.0.2.9"


def test_ah_and_strict():
    rules = rules_for(make_specs(["eth0"], ah=True, strict=True)[0])
    assert [(r.direction.value, r.proto, r.ttl) for r in rules] == [
        ("in", VRRP_PROTO, 255), ("out", VRRP_PROTO, None), ("in", AH_PROTO, 255), ("out", AH_PROTO, None)]
    assert rules[2].selector == "224.0.0.18 ah ttl 255"


@pytest.mark.parametrize("rule", [
    VrrpRule(Direction.IN, "eth0", "224.0.0.18"),
    VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6, strict=True),
    VrrpRule(Direction.OUT, "eth0", "192.0.2.2", Family.IPV4, AH_PROTO, "192.0.2.1"),
    VrrpRule(Direction.IN, "eth0", "fd00::2", Family.IPV6, VRRP_PROTO, "fd00::1", True),
])
def test_key_round_trips_and_firewall_form_round_trips(rule):
    assert VrrpRule.from_key(rule.key) == rule
    back = VrrpRule.from_match(rule.direction, rule.interface, rule.proto, rule.src, rule.dst, rule.ttl)
    assert back == rule


@pytest.mark.parametrize("text", ["", "peer 192.0.2.2", "224.0.0.18 esp", "bogus", "224.0.0.18 ttl 64",
                                  "peer 192.0.2.2 local nowhere"])
def test_bad_selector_refused(text):
    with pytest.raises(InputError):
        parse_selector(text)


def test_from_match_refuses_forms_vrrpfw_never_writes():
    assert VrrpRule.from_match(Direction.IN, "eth0", 6, None, "224.0.0.18", None) is None
    assert VrrpRule.from_match(Direction.IN, "eth0", 112, None, "192.0.2.1", None) is None  # no src
    assert VrrpRule.from_match(Direction.OUT, "eth0", 112, None, "224.0.0.18", 255) is None
    assert VrrpRule.from_match(Direction.IN, "eth0", 112, "fd00::2", "192.0.2.1", None) is None
    assert VrrpRule.from_match(Direction.IN, "eth0", 112, None, "224.0.0.18", 64) is None
    assert selector_text("224.0.0.18", None, 112, False) == "224.0.0.18"


def test_strict_leaves_ipv6_unicast_hop_limit_alone():
    """keepalived's IPv6 unicast adverts carry the kernel's hop limit (64),
    so --strict matches TTL 255 on IPv4 unicast and multicast only."""
    from vrrpfw.model import make_specs, rules_for

    specs = make_specs(["eth0"], peers=["192.0.2.2", "fd00::2"], strict=True,
                       local_of=lambda i, f: "192.0.2.1" if f is Family.IPV4 else "fd00::1")
    got = {(r.family, r.direction): r.ttl for s in specs for r in rules_for(s)}
    assert got == {(Family.IPV4, Direction.IN): 255, (Family.IPV4, Direction.OUT): None,
                   (Family.IPV6, Direction.IN): None, (Family.IPV6, Direction.OUT): None}
    multicast6 = make_specs(["eth0"], groups=["ff02::12"], strict=True)
    assert [r.ttl for s in multicast6 for r in rules_for(s)] == [255, None]
