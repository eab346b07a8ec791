"""The replay's senders and receivers for every advert shape of issue 10
(IPv6 multicast to ff02::12, unicast, AH, another TTL), held against a rule
that must stop exactly that shape: the same replica delivers every other
shape, so neither the sender nor the receiver can count adverts that the
kernel did not deliver (or miss ones it did)."""

from __future__ import annotations

from typing import Dict, List, Tuple

import pytest

from vrrpfw.prove.replica import replica
from vrrpfw.prove.snapshot import Snapshot
from vrrpfw.prove.traffic import Shape, exchange

pytestmark = [pytest.mark.integration, pytest.mark.one_end]

COUNT = 5
SHAPES = ["ipv4", "ipv6", "ipv4 ah", "ipv4 unicast", "ipv6 unicast", "ipv4 unicast ah", "ipv4 ttl 1",
          "ipv6 ttl 1"]

# (legacy, legacy6) rules, the shapes whose inbound they stop, the shapes whose outbound they stop
CASES: Dict[str, Tuple[str, str, List[str], List[str]]] = {
    "nothing": ("", "", [], []),
    "ip6-vrrp-in": ("", "-A INPUT -p 112 -j DROP", ["ipv6", "ipv6 unicast", "ipv6 ttl 1"], []),
    "ah-in": ("-A INPUT -p ah -j DROP", "", ["ipv4 ah", "ipv4 unicast ah"], []),
    # keepalived's IPv6 unicast adverts carry the kernel's hop limit (64), not 255
    "ttl-strict": ("-A INPUT -m ttl --ttl-lt 255 -j DROP", "-A INPUT -m hl --hl-lt 255 -j DROP",
                   ["ipv4 ttl 1", "ipv6 ttl 1", "ipv6 unicast"], []),
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


def test_unicast_is_measured_without_the_other_directions_conntrack_entry() -> None:
    """conntrack tracks protocol 112 by address pair: once the host has sent
    to its unicast peer, the peer's adverts are replies (``established``).
    The replica measures inbound first, as for a host that has not sent
    yet, which is what the static verdict assumes (``new``)."""
    legacy = ("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
              "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n")
    snap = Snapshot("eth1", ["192.0.2.1/24"], legacy_save=legacy, addrs6=["fe80::1/64", "fd00::1/64"])
    with replica(snap) as r:
        d = r.measure(COUNT, seconds=1.0, shape=Shape.parse("ipv4 unicast"))
        assert [p.arrived for p in d.inbound.values()] == [0] and d.outbound.arrived == COUNT
        # The kernel fact the order avoids: after the host's adverts, the peer's get in.
        exchange(r.host, "eth1", r.peer, r.peer_if, COUNT, "192.0.2.2", 1.0)
        replies = exchange(r.peer, r.peer_if, r.host, "eth1", COUNT, "192.0.2.1", 1.0, "192.0.2.2")
        assert replies.delivered == COUNT, replies


@pytest.mark.parametrize("text", ["ipv4", "ipv6", "ipv6 unicast"])
def test_an_egress_drop_is_counted_not_a_crash(text: str) -> None:
    """After routing, a netdev egress drop reaches an IPv6 sender as ENOBUFS
    (IPv4 sees nothing): either way the advert never leaves."""
    nft = ('table netdev t {\n\tchain c {\n'
           '\t\ttype filter hook egress device "eth1" priority 0; policy drop;\n\t}\n}\n')
    snap = Snapshot("eth1", ["192.0.2.1/24"], nft_ruleset=nft, addrs6=["fe80::1/64", "fd00::1/64"])
    with replica(snap) as r:
        d = r.measure(COUNT, seconds=1.0, shape=Shape.parse(text))
    assert d.outbound.arrived == 0 and d.outbound.counts.sent + d.outbound.counts.refused == COUNT
    assert [p.arrived for p in d.inbound.values()] == [COUNT]
