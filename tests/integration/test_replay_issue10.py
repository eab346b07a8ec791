"""The replay's senders and receivers for every advert shape of issue 10
(IPv6 multicast to ff02::12, unicast, AH, another TTL), held against a rule
that must stop exactly that shape: the same replica delivers every other
shape, so neither the sender nor the receiver can count adverts that the
kernel did not deliver (or miss ones it did)."""

from __future__ import annotations

from typing import Dict, List, Tuple

import pytest

from vrrpfw.replica import Snapshot, replica
from vrrpfw.traffic import Shape

pytestmark = pytest.mark.integration

COUNT = 5
SHAPES = ["ipv4", "ipv6", "ipv4 ah", "ipv4 unicast", "ipv6 unicast", "ipv4 unicast ah", "ipv4 ttl 1",
          "ipv6 ttl 1"]

# (legacy, legacy6) rules, the shapes whose inbound they stop, the shapes whose outbound they stop
CASES: Dict[str, Tuple[str, str, List[str], List[str]]] = {
    "nothing": ("", "", [], []),
    "ip6-vrrp-in": ("", "-A INPUT -p 112 -j DROP", ["ipv6", "ipv6 unicast", "ipv6 ttl 1"], []),
    "ah-in": ("-A INPUT -p ah -j DROP", "", ["ipv4 ah", "ipv4 unicast ah"], []),
    "ttl-strict": ("-A INPUT -m ttl --ttl-lt 255 -j DROP", "-A INPUT -m hl --hl-lt 255 -j DROP",
                   ["ipv4 ttl 1", "ipv6 ttl 1"], []),
    "multicast-only-dropped": ("-A INPUT -d 224.0.0.0/4 -j DROP", "-A INPUT -d ff00::/8 -j DROP",
                               ["ipv4", "ipv6", "ipv4 ah", "ipv4 ttl 1", "ipv6 ttl 1"], []),
    "unicast-peer-dropped": ("-A INPUT -s 192.0.2.2/32 -d 192.0.2.1/32 -j DROP",
                             "-A INPUT -s fd00::2/128 -d fd00::1/128 -j DROP",
                             ["ipv4 unicast", "ipv6 unicast", "ipv4 unicast ah"], []),
    "ip6-out": ("", "-A OUTPUT -p 112 -j DROP", [], ["ipv6", "ipv6 unicast", "ipv6 ttl 1"]),
    "ah-out": ("-A OUTPUT -p 51 -j DROP", "", [], ["ipv4 ah", "ipv4 unicast ah"]),
}


def save(rule: str) -> str:
    body = f"{rule}\n" if rule else ""
    return f"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{body}COMMIT\n"


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_shape_is_stopped_only_by_its_rule(case: str) -> None:
    legacy, legacy6, stopped_in, stopped_out = CASES[case]
    snap = Snapshot("eth1", ["192.0.2.1/24"], legacy_save=save(legacy), legacy6_save=save(legacy6),
                    addrs6=["fe80::1/64", "fd00::1/64"])
    with replica(snap) as r:
        for text in SHAPES:
            d = r.measure(COUNT, seconds=1.0, shape=Shape.parse(text))
            (inbound,) = d.inbound.values()
            assert inbound.counts.wire == COUNT, (text, inbound)  # it was sent and reached the host
            assert inbound.arrived == (0 if text in stopped_in else COUNT), (text, inbound)
            assert d.outbound.arrived == (0 if text in stopped_out else COUNT), (text, d.outbound)
            if text in stopped_out:  # an OUTPUT drop is EPERM at the sender
                assert d.outbound.counts.refused == COUNT, (text, d.outbound)


def test_ipv6_multicast_comes_from_the_link_local_address_and_unicast_from_the_peer() -> None:
    """What the static verdict assumes about sources: keepalived multicasts
    from its link-local address; unicast from its own (global) address."""
    legacy6 = save("-A INPUT -s fe80::2/128 -j DROP")
    snap = Snapshot("eth1", ["192.0.2.1/24"], legacy6_save=legacy6, addrs6=["fe80::1/64", "fd00::1/64"])
    with replica(snap) as r:
        multicast = r.measure(COUNT, seconds=1.0, shape=Shape.parse("ipv6"))
        unicast = r.measure(COUNT, seconds=1.0, shape=Shape.parse("ipv6 unicast"))
    assert list(multicast.inbound) == ["fe80::2"] and multicast.inbound["fe80::2"].arrived == 0
    assert list(unicast.inbound) == ["fd00::2"] and unicast.inbound["fd00::2"].arrived == COUNT


def test_given_ipv6_peers_send_from_their_addresses() -> None:
    legacy6 = save("-A INPUT -s fd00::7/128 -j DROP")
    snap = Snapshot("eth1", ["192.0.2.1/24"], legacy6_save=legacy6, addrs6=["fe80::1/64", "fd00::1/64"])
    with replica(snap, ["fd00::7", "fd00::8"]) as r:
        d = r.measure(COUNT, seconds=1.0, shape=Shape.parse("ipv6 unicast"))
    assert {s: p.arrived for s, p in d.inbound.items()} == {"fd00::7": 0, "fd00::8": COUNT}


@pytest.mark.parametrize("text", ["ipv4", "ipv6 unicast ttl 7", "ipv4 unicast ah"])
def test_shape_text_round_trips(text: str) -> None:
    assert Shape.parse(text).name == text


@pytest.mark.parametrize("text", ["", "ipv5", "ipv6 ah", "ipv4 ttl 0", "ipv4 ttl", "ipv4 foo"])
def test_bad_shapes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Shape.parse(text)
