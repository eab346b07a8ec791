"""vrrpfw.model field by field: the rule's addresses in each direction, its
identity (selector text) through a store and back, and every refusal of
bad input with the reason the user reads."""

from __future__ import annotations

import pytest

from vrrpfw.errors import EXIT_USAGE, InputError
from vrrpfw.model import (
    AH_PROTO,
    STRICT_TTL,
    VRRP_PROTO,
    Direction,
    Family,
    VrrpRule,
    VrrpSpec,
    make_spec,
    make_specs,
    parse_selector,
    rules_for,
    rules_from_keys,
    selector_text,
    validate_address,
    validate_family,
    validate_group,
    validate_interface,
    validate_peers,
)

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def test_family_and_direction_facts():
    assert (Family.IPV4.bits, Family.IPV6.bits) == (32, 128)
    assert (Family.IPV4.default_group, Family.IPV6.default_group) == ("224.0.0.18", "ff02::12")
    assert (Family.of("192.0.2.1"), Family.of("fd00::1")) == (Family.IPV4, Family.IPV6)
    assert (Direction.IN.chain, Direction.OUT.chain) == ("INPUT", "OUTPUT")
    assert STRICT_TTL == 255 and (VRRP_PROTO, AH_PROTO) == (112, 51)


def test_multicast_rule_addresses():
    rule = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
    assert (rule.unicast, rule.src, rule.dst, rule.ttl, rule.chain) == (False, None, "224.0.0.18", None,
        "INPUT")
    out = VrrpRule(Direction.OUT, "eth0", "224.0.0.18", strict=True)
    assert (out.src, out.dst, out.ttl, out.chain) == (None, "224.0.0.18", 255, "OUTPUT")
    assert rule.key == ("in", "eth0", "224.0.0.18")


def test_unicast_rule_addresses_by_direction():
    inbound = VrrpRule(Direction.IN, "eth0", "192.0.2.2", local="192.0.2.1")
    outbound = VrrpRule(Direction.OUT, "eth0", "192.0.2.2", local="192.0.2.1")
    assert inbound.unicast and outbound.unicast
    assert (inbound.src, inbound.dst) == ("192.0.2.2", "192.0.2.1")
    assert (outbound.src, outbound.dst) == ("192.0.2.1", "192.0.2.2")
    assert outbound.key == ("out", "eth0", "peer 192.0.2.2 local 192.0.2.1")


@pytest.mark.parametrize("args, text", [
    (("224.0.0.18", None, VRRP_PROTO, False), "224.0.0.18"),
    (("224.0.0.18", None, AH_PROTO, False), "224.0.0.18 ah"),
    (("ff02::12", None, VRRP_PROTO, True), "ff02::12 ttl 255"),
    (("192.0.2.2", "192.0.2.1", AH_PROTO, True), "peer 192.0.2.2 local 192.0.2.1 ah ttl 255"),
    (("fd00::2", "fd00::1", VRRP_PROTO, False), "peer fd00::2 local fd00::1"),
])
def test_selector_text_and_back(args, text):
    assert selector_text(*args) == text
    assert parse_selector(text) == args


def test_parse_selector_normalises_addresses():
    assert parse_selector("FF02::0012 ttl 255") == ("ff02::12", None, VRRP_PROTO, True)
    assert parse_selector("peer FD00::0002 local FD00::1") == ("fd00::2", "fd00::1", VRRP_PROTO, False)
    assert parse_selector("  224.0.0.18   ah ") == ("224.0.0.18", None, AH_PROTO, False)


@pytest.mark.parametrize("text", ["", "   ", "peer 192.0.2.2 local", "224.0.0.18 ah ah", "224.0.0.18 ttl",
                                  "224.0.0.18 ttl 255 ah", "peer 192.0.2.2 remote 192.0.2.1",
                                  "224.0.0.18 ttl 255 x", "peer nowhere local 192.0.2.1"])
def test_parse_selector_refusals_quote_the_text(text):
    with pytest.raises(InputError, match="^bad rule selector ") as e:
        parse_selector(text)
    assert repr(text) in str(e.value)


def test_from_key_builds_the_whole_rule():
    rule = VrrpRule.from_key(("out", "eth1", "peer fd00::2 local fd00::1 ah"))
    assert rule == VrrpRule(Direction.OUT, "eth1", "fd00::2", Family.IPV6, AH_PROTO, "fd00::1", False)
    assert VrrpRule.from_key(("in", "eth1", "ff02::12 ttl 255")) == VrrpRule(
        Direction.IN, "eth1", "ff02::12", Family.IPV6, VRRP_PROTO, None, True)


def test_from_match_unicast_by_direction():
    inbound = VrrpRule.from_match(Direction.IN, "eth0", AH_PROTO, "192.0.2.2", "192.0.2.1", 255)
    assert inbound == VrrpRule(Direction.IN, "eth0", "192.0.2.2", Family.IPV4, AH_PROTO, "192.0.2.1", True)
    outbound = VrrpRule.from_match(Direction.OUT, "eth0", VRRP_PROTO, "fd00::1", "FD00::2", None)
    assert outbound == VrrpRule(Direction.OUT, "eth0", "fd00::2", Family.IPV6, VRRP_PROTO, "fd00::1", False)
    multicast = VrrpRule.from_match(Direction.IN, "eth0", VRRP_PROTO, None, "FF02::12", None)
    assert multicast == VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6, VRRP_PROTO, None, False)


@pytest.mark.parametrize("args", [
    (Direction.IN, "eth0", VRRP_PROTO, None, "bogus", None),
    (Direction.IN, "eth0", VRRP_PROTO, "bogus", "192.0.2.1", None),
    (Direction.IN, "eth0", 50, None, "224.0.0.18", None),
    (Direction.IN, "eth0", VRRP_PROTO, "192.0.2.2", "fd00::1", None),
    (Direction.IN, "eth0", VRRP_PROTO, None, "224.0.0.18", 1),
    (Direction.OUT, "eth0", VRRP_PROTO, "192.0.2.1", "192.0.2.2", 255),
    (Direction.IN, "eth0", VRRP_PROTO, None, "fd00::1", None),
])
def test_from_match_refuses_what_vrrpfw_never_writes(args):
    assert VrrpRule.from_match(*args) is None


@pytest.mark.parametrize("name", ["a-", "a.b", "A_9", "x" * 15, "al", "defaults", "..."])
def test_interface_names_accepted(name):
    assert validate_interface(name) == name


@pytest.mark.parametrize("name, message", [
    (5, "^interface name must be a string, not int$"),
    ("", "^interface name is empty$"),
    ("abcdefghijklmnop", "^interface name 'abcdefghijklmnop' is 16 bytes; Linux allows at most 15$"),
    (".", r"^interface name '\.' is not allowed by Linux$"),
    ("all", r"^interface name 'all' is not allowed by Linux \(it names every interface's sysctls\)$"),
    ("default", r"^interface name 'default' is not allowed by Linux \(it names every interface's sysctls\)$"),
    ("-eth0", "^interface name '-eth0' starts with '-', which iptables reads as an option; vrrpfw accepts "
        "ASCII "
              r"letters, digits, '\.', '_' and '-' \(not first\), at most 15 bytes$"),
    ("eth*", r"^interface name 'eth\*' contains '\*', which nftables reads as a wildcard \('eth\*' is every "
             r"interface starting with 'eth'\); vrrpfw accepts ASCII letters"),
    ("eth 0", "contains ' ', which Linux does not allow;"),
    ("eth\n0", r"contains '\\n', which Linux does not allow;"),
    ("eth\r0", r"contains '\\r', which Linux does not allow;"),
    ("eth\x0b0", r"contains '\\x0b', which Linux does not allow;"),
    ("eth\x0c0", r"contains '\\x0c', which Linux does not allow;"),
    ("eth\x010", r"contains '\\x01', a control character;"),
    ("eth\x7f0", r"contains '\\x7f', a control character;"),
    ("eth\u00e90",
        r"contains 'é', which is not ASCII \(iptables listed 'eth\u00e90' as the wildcard 'eth\u00e90\+' "
                   r"and a saved file got it in another encoding\);"),
    ("eth%0", "contains '%', which firewall commands and saved rulesets may read as syntax;"),
    ("eth$0", "contains '\\$', which nftables reads as a variable;"),
    ("eth\x000", r"contains '\\x00', which Linux does not allow;"),
])
def test_interface_refusals_say_why(name, message):
    with pytest.raises(InputError, match=message) as e:
        validate_interface(name)
    assert e.value.exit_code == EXIT_USAGE


def test_an_interface_name_is_measured_in_bytes():
    with pytest.raises(InputError, match="^interface name 'ééééééééa' is 17 bytes; Linux allows at most 15$"):
        validate_interface("é" * 8 + "a")


@pytest.mark.parametrize("group, family, message", [
    ("ff02::12%eth0", None, r"^multicast group 'ff02::12%eth0' is not an IPv4 or IPv6 address$"),
    ("bogus", None, r"^multicast group 'bogus' is not an IPv4 or IPv6 address$"),
    ("192.0.2.1", None, r"^multicast group '192\.0\.2\.1' is not a multicast address \(IPv4 224\.0\.0\.0/4, "
                        r"IPv6 ff00::/8\)$"),
    ("224.0.0.18", Family.IPV6, r"^multicast group '224\.0\.0\.18' is not an IPv6 group$"),
    ("ff02::12", Family.IPV4, r"^multicast group 'ff02::12' is not an IPv4 group$"),
])
def test_group_refusals(group, family, message):
    with pytest.raises(InputError, match=message):
        validate_group(group, family)


def test_group_of_the_family_given_is_normalised():
    assert validate_group("FF02::0012", Family.IPV6) == "ff02::12"
    assert validate_group(" 239.0.0.1\n", Family.IPV4) == "239.0.0.1"


@pytest.mark.parametrize("value, message", [
    ("fe80::1%eth0", r"^peer 'fe80::1%eth0': leave out the %scope \(the interface is --iface\)$"),
    ("nowhere", "^peer 'nowhere' is not an IPv4 or IPv6 address$"),
    ("224.0.0.18", r"^peer '224\.0\.0\.18' is not a unicast address$"),
    ("0.0.0.0", r"^peer '0\.0\.0\.0' is not a unicast address$"),
    ("::", "^peer '::' is not a unicast address$"),
    ("255.255.255.255", r"^peer '255\.255\.255\.255' is not a unicast address$"),
    ("127.0.0.2", r"^peer '127\.0\.0\.2' is not a unicast address$"),
    ("::1", "^peer '::1' is not a unicast address$"),
])
def test_address_refusals(value, message):
    with pytest.raises(InputError, match=message):
        validate_address(value, "peer")


def test_addresses_are_normalised_and_peers_deduplicated():
    assert validate_address(" FD00::0001 ", "peer") == "fd00::1"
    assert validate_peers("192.0.2.2") == ("192.0.2.2",)
    assert validate_peers(["fd00::2", "FD00::2", "192.0.2.2", "fd00::2"]) == ("fd00::2", "192.0.2.2")
    assert validate_peers([]) == ()


def test_family_values():
    assert [validate_family(v) for v in (None, "ipv4", "ipv6", "both")] == [None, "ipv4", "ipv6", "both"]
    with pytest.raises(InputError, match="^unknown family 'ipx'; choose one of: ipv4, ipv6, both$"):
        validate_family("ipx")


def test_make_spec():
    spec = make_spec(["eth0", "eth0"], "FF02::12", [Direction.OUT])
    assert spec == VrrpSpec(("eth0",), "ff02::12", Family.IPV6, (Direction.OUT,))
    with pytest.raises(InputError, match="^no direction given$"):
        make_spec(["eth0"], directions=[])
    with pytest.raises(InputError, match=r"^no interface given \(use --iface NAME\)$"):
        make_spec([])
    with pytest.raises(InputError, match="^interface name 'a b' contains"):
        make_spec(["eth0", "a b"])


def local_of(iface, fam):
    return {"eth0": {Family.IPV4: "192.0.2.1", Family.IPV6: "fd00::1"},
            "eth1": {Family.IPV4: "198.51.100.1"}}.get(iface, {}).get(fam)


@pytest.mark.parametrize("kw, message", [
    (dict(peers=["192.0.2.2"], groups=["224.0.0.18"]),
     "^--peer and --group contradict each other: unicast peers get no multicast rule; give one$"),
    (dict(local="192.0.2.1"), "^--src is this host's unicast address; it needs --peer$"),
    (dict(groups=["224.0.0.18"], family="ipv6"), "^--family ipv6 contradicts the ipv4 group given$"),
    (dict(peers=["fd00::2"], family="ipv4"), "^--family ipv4 contradicts the ipv6 peer given$"),
    (dict(peers=["192.0.2.2"], family="both"), "^--family both: no ipv6 peer given$"),
    (dict(groups=["ff02::12", "ff02::13"]), "^more than one ipv6 group given; keepalived sends to one$"),
    (dict(peers=["192.0.2.2"], local="fd00::9"), "^--src fd00::9 is not of the peers' family$"),
    (dict(peers=["192.0.2.2", "fd00::2"], local="192.0.2.9"),
     r"^--src is one address of one family; with peers of both families leave it out \(each interface's "
     r"primary address is used\)$"),
    (dict(peers=["fd00::2"], ah=True),
        r"^--ah: keepalived refuses AH authentication with IPv6 \(VRRPv3 has no "
                                       r"authentication\); AH exists only in VRRPv2 over IPv4$"),
    (dict(peers=["192.0.2.2"], ifaces=["eth0", "eth9"]),
     r"^interface eth9 has no ipv4 address to send unicast adverts from; give --src ADDR \(keepalived's "
     r"unicast_src_ip\)$"),
    (dict(peers=["192.0.2.3", "192.0.2.1"]),
        r"^--peer 192\.0\.2\.1 is this host's own address \(eth0\); list the "
                                             "other nodes only$"),
    (dict(peers=["192.0.2.2"], local="192.0.2.2"), r"^--peer 192\.0\.2\.2 is this host's own address"),
    (dict(local="300.1.1.1", peers=["192.0.2.2"]),
        "^--src address '300.1.1.1' is not an IPv4 or IPv6 address$"),
])
def test_make_specs_refusals(kw, message):
    kw = dict(kw)  # the parameter itself stays as it is for a rerun
    ifaces = kw.pop("ifaces", ["eth0"])
    with pytest.raises(InputError, match=message):
        make_specs(ifaces, local_of=local_of, **kw)


def test_unicast_without_local_of_needs_src():
    with pytest.raises(InputError, match="^interface eth0 has no ipv4 address"):
        make_specs(["eth0"], peers=["192.0.2.2"])
    (spec,) = make_specs(["eth0"], peers=["192.0.2.2"], local="192.0.2.1")
    assert spec.local == "192.0.2.1"


def test_make_specs_multicast_shapes():
    assert make_specs(["eth0"]) == [VrrpSpec(("eth0",), "224.0.0.18", Family.IPV4)]
    assert make_specs(["eth0"], family="ipv6", strict=True) == [
        VrrpSpec(("eth0",), "ff02::12", Family.IPV6, strict=True)]
    assert make_specs(["eth0"], groups=["ff02::13", "224.0.0.19"], ah=False) == [
        VrrpSpec(("eth0",), "224.0.0.19", Family.IPV4), VrrpSpec(("eth0",), "ff02::13", Family.IPV6)]
    assert make_specs(["eth0"], ah=True) == [VrrpSpec(("eth0",), "224.0.0.18", Family.IPV4, ah=True)]


def test_make_specs_unicast_one_spec_per_interface_and_family():
    specs = make_specs(["eth0", "eth1"], peers=["192.0.2.2", "fd00::2", "192.0.2.3"], family="both",
                       local_of=lambda i, f: {Family.IPV4: f"192.0.2.{10 + len(i)}",
                           Family.IPV6: "fd00::1"}[f],
                       ah=False, strict=True)
    assert [(s.interfaces, s.family, s.peers, s.local, s.group, s.strict) for s in specs] == [
        (("eth0",), Family.IPV4, ("192.0.2.2", "192.0.2.3"), "192.0.2.14", "224.0.0.18", True),
        (("eth1",), Family.IPV4, ("192.0.2.2", "192.0.2.3"), "192.0.2.14", "224.0.0.18", True),
        (("eth0",), Family.IPV6, ("fd00::2",), "fd00::1", "ff02::12", True),
        (("eth1",), Family.IPV6, ("fd00::2",), "fd00::1", "ff02::12", True),
    ]
    (spec,) = make_specs(["eth1"], peers=["192.0.2.2"], ah=True, local_of=local_of)
    assert (spec.local, spec.ah, spec.peers) == ("198.51.100.1", True, ("192.0.2.2",))


def test_rules_for_order_interface_peer_proto_direction():
    spec = VrrpSpec(("eth0", "eth1"), "224.0.0.18", Family.IPV4, peers=("192.0.2.2", "192.0.2.3"),
                    local="192.0.2.1", ah=True)
    got = [(r.interface, r.group, r.proto, r.direction.value, r.local) for r in rules_for(spec)]
    want = [(i, p, proto, d, "192.0.2.1") for i in ("eth0", "eth1") for p in ("192.0.2.2", "192.0.2.3")
            for proto in (112, 51) for d in ("in", "out")]
    assert got == want


def test_rules_for_strict_on_ipv4_unicast_inbound_only():
    spec = VrrpSpec(("eth0",), "224.0.0.18", Family.IPV4, peers=("192.0.2.2",), local="192.0.2.1",
        strict=True)
    assert [(r.direction.value, r.strict) for r in rules_for(spec)] == [("in", True), ("out", False)]
    spec6 = VrrpSpec(("eth0",), "ff02::12", Family.IPV6, directions=(Direction.IN,), strict=True)
    assert [(r.direction.value, r.strict, r.family) for r in rules_for(spec6)] == [("in", True, Family.IPV6)]


def test_rules_from_keys_skips_none_and_duplicates_in_order():
    keys = [("out", "eth0", "224.0.0.18"), None, ("in", "eth0", "224.0.0.18"), ("out", "eth0", "224.0.0.18"),
            ("in", "eth1", "peer 192.0.2.2 local 192.0.2.1 ah")]
    assert rules_from_keys(keys) == [
        VrrpRule(Direction.OUT, "eth0", "224.0.0.18"), VrrpRule(Direction.IN, "eth0", "224.0.0.18"),
        VrrpRule(Direction.IN, "eth1", "192.0.2.2", Family.IPV4, AH_PROTO, "192.0.2.1")]
    assert rules_from_keys([]) == []
