"""VRRP decoding, on packets built by hand: what ``check --listen`` reports
about a router is only as good as these fields."""

from __future__ import annotations

import struct

import pytest

from vrrpfw.listen.packet import (
    DecodeError,
    checksum16,
    decode_frame,
    decode_ip,
    decode_ipv4,
    decode_ipv6,
    decode_vrrp,
    encode_ah,
    encode_frame,
    encode_ipv4,
    encode_ipv6,
    encode_vrrp,
)

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

SRC4, GRP4 = "192.0.2.2", "224.0.0.18"
SRC6, GRP6 = "fe80::2", "ff02::12"


def v2_by_hand() -> bytes:
    # version 2 type 1, vrid 51, prio 100, 1 addr, auth PASS, 1 s, checksum 0, addr, "secret\0\0"
    msg = bytes([0x21, 51, 100, 1, 1, 1, 0, 0]) + bytes([192, 0, 2, 100]) + b"secret\0\0"
    csum = checksum16(msg)
    return msg[:6] + struct.pack("!H", csum) + msg[8:]


def test_vrrpv2_ipv4_by_hand():
    a = decode_ipv4(encode_ipv4(v2_by_hand(), SRC4, GRP4))
    assert (a.family, a.src, a.dst, a.ttl, a.proto) == ("ipv4", SRC4, GRP4, 255, 112)
    assert (a.version, a.vrid, a.priority, a.auth_type, a.auth, a.interval) == (2, 51, 100, 1, "pass", 1.0)
    assert a.addresses == ("192.0.2.100",)
    assert a.checksum_ok
    assert a.digest


def test_vrrpv2_bad_checksum_is_reported_not_raised():
    msg = bytearray(v2_by_hand())
    msg[6] ^= 0xFF
    a = decode_ipv4(encode_ipv4(bytes(msg), SRC4, GRP4))
    assert not a.checksum_ok


def test_vrrpv3_ipv4_checksum_covers_pseudo_header():
    msg = encode_vrrp(3, 7, 150, ["192.0.2.100", "192.0.2.101"], 0.5, "ipv4", SRC4, GRP4)
    a = decode_ipv4(encode_ipv4(msg, SRC4, GRP4, ttl=1))
    assert (a.version, a.vrid, a.priority, a.interval, a.ttl, a.auth) == (3, 7, 150, 0.5, 1, "none")
    assert a.addresses == ("192.0.2.100", "192.0.2.101")
    assert a.checksum_ok
    # the same message from another source: the pseudo-header differs, the checksum is wrong
    assert not decode_ipv4(encode_ipv4(msg, "192.0.2.3", GRP4)).checksum_ok


def test_vrrpv3_ipv6_with_pseudo_header_checksum():
    msg = encode_vrrp(3, 9, 200, ["fd00::100"], 1.0, "ipv6", SRC6, GRP6)
    # the checksum by hand: pseudo-header src, dst, upper-layer length, zeros, next header 112
    pseudo = (bytes.fromhex("fe800000000000000000000000000002")
              + bytes.fromhex("ff020000000000000000000000000012")
              + struct.pack("!I", len(msg)) + b"\0\0\0" + bytes([112]))
    assert checksum16(pseudo + msg) == 0
    a = decode_ipv6(encode_ipv6(msg, SRC6, GRP6))
    assert (a.family, a.src, a.dst, a.ttl) == ("ipv6", SRC6, GRP6, 255)
    assert (a.version, a.vrid, a.priority) == (3, 9, 200)
    assert a.addresses == ("fd00::100",)
    assert a.checksum_ok and a.interval == 1.0


def test_vrrpv3_max_interval_is_twelve_bits_of_centiseconds():
    msg = encode_vrrp(3, 1, 100, [], 40.95, "ipv4", SRC4, GRP4)
    assert decode_ipv4(encode_ipv4(msg, SRC4, GRP4)).interval == pytest.approx(40.95)
    # the 4 reserved bits above do not leak into the interval
    raw = bytearray(msg)
    raw[4] |= 0xF0
    assert decode_vrrp(bytes(raw), "ipv4", SRC4, GRP4, 255).interval == pytest.approx(40.95)


def test_ipv6_hop_by_hop_header_is_stepped_over():
    msg = encode_vrrp(3, 9, 200, ["fd00::100"], 1.0, "ipv6", SRC6, GRP6)
    hbh = bytes([112, 0]) + bytes([5, 2, 0, 0]) + b"\1\0"  # router alert + PadN, 8 bytes
    pkt = bytearray(encode_ipv6(hbh + msg, SRC6, GRP6))
    pkt[6] = 0
    a = decode_ipv6(bytes(pkt))
    assert a.vrid == 9 and a.checksum_ok and a.proto == 112


def test_ah_wrapped_v2_ipv4():
    inner = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1, auth_type=2)
    a = decode_ipv4(encode_ipv4(encode_ah(inner), SRC4, GRP4, proto=51))
    assert (a.proto, a.auth, a.auth_type, a.vrid, a.version) == (51, "ah", 2, 51, 2)
    assert a.addresses == ("192.0.2.100",) and a.checksum_ok


def test_ah_wrapped_v3_ipv6_and_raw_socket_payload():
    inner = encode_vrrp(3, 4, 110, ["fd00::100"], 1.0, "ipv6", SRC6, GRP6)
    payload = encode_ah(inner)
    a = decode_ipv6(encode_ipv6(payload, SRC6, GRP6, proto=51))
    b = decode_vrrp(payload, "ipv6", SRC6, GRP6, 255, 51)  # what an IPv6 raw socket hands over
    assert a == b
    assert a.proto == 51 and a.auth == "ah" and a.checksum_ok


def test_digest_matches_wire_and_delivered_copies_only():
    msg = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1)
    a = decode_ipv4(encode_ipv4(msg, SRC4, GRP4, ttl=255))
    b = decode_ipv4(encode_ipv4(msg, SRC4, GRP4, ttl=254))
    c = decode_ipv4(encode_ipv4(encode_vrrp(2, 51, 101, ["192.0.2.100"], 1), SRC4, GRP4))
    assert a.digest == b.digest != c.digest


@pytest.mark.parametrize("vlans", [(), (10,), (100, 20)])
def test_frames_with_and_without_vlan_tags(vlans):
    pkt4 = encode_ipv4(encode_vrrp(2, 51, 100, ["192.0.2.100"], 1), SRC4, GRP4)
    assert decode_frame(encode_frame(pkt4, vlans)).vrid == 51
    pkt6 = encode_ipv6(encode_vrrp(3, 9, 200, [], 1.0, "ipv6", SRC6, GRP6), SRC6, GRP6)
    assert decode_frame(encode_frame(pkt6, vlans)).family == "ipv6"


def test_decode_ip_picks_the_version():
    pkt6 = encode_ipv6(encode_vrrp(3, 9, 200, [], 1.0, "ipv6", SRC6, GRP6), SRC6, GRP6)
    assert decode_ip(pkt6).family == "ipv6"
    assert decode_ip(encode_ipv4(encode_vrrp(2, 1, 1, [], 1), SRC4, GRP4)).family == "ipv4"


def good_packets():
    v2 = encode_ipv4(encode_vrrp(2, 51, 100, ["192.0.2.100"], 1), SRC4, GRP4)
    inner = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1, auth_type=2)
    ah = encode_ipv4(encode_ah(inner), SRC4, GRP4, proto=51)
    v6 = encode_ipv6(encode_vrrp(3, 9, 200, ["fd00::1"], 1.0, "ipv6", SRC6, GRP6), SRC6, GRP6)
    return [v2, ah, v6]


def test_every_truncation_is_a_decode_error():
    for pkt in good_packets():
        decode_ip(pkt)
        for n in range(len(pkt)):
            with pytest.raises(DecodeError):
                decode_ip(pkt[:n])
        frame = encode_frame(pkt, (5,))
        for n in range(len(frame) - len(pkt)):
            with pytest.raises(DecodeError):
                decode_frame(frame[:n])


def test_garbage_is_a_decode_error_never_another_exception():
    import random

    rng = random.Random(112)
    seeds = good_packets()
    for _ in range(3000):
        pkt = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            pkt[rng.randrange(len(pkt))] = rng.randrange(256)
        try:
            decode_ip(bytes(pkt))
        except DecodeError:
            pass
    for n in range(60):
        try:
            decode_frame(bytes(rng.randrange(256) for _ in range(n)))
        except DecodeError:
            pass


@pytest.mark.parametrize("mangle, why", [
    (lambda p: p[:20] + bytes([0x11]) + p[21:], "type"),             # VRRP type 1 -> version 1
    (lambda p: p[:20] + bytes([0x22]) + p[21:], "advertisement"),    # type 2
    (lambda p: p[:9] + bytes([17]) + p[10:], "protocol 17"),         # UDP
    (lambda p: p[:6] + b"\x20\x00" + p[8:], "fragment"),             # MF set
    (lambda p: bytes([0x44]) + p[1:], "header length"),              # IHL 16 bytes
    (lambda p: p[:23] + bytes([200]) + p[24:], "addresses"),         # 200 addresses claimed
])
def test_specific_refusals(mangle, why):
    pkt = encode_ipv4(encode_vrrp(2, 51, 100, ["192.0.2.100"], 1), SRC4, GRP4)
    with pytest.raises(DecodeError):
        decode_ipv4(mangle(pkt))


def test_non_ip_ethertype_is_refused():
    frame = encode_frame(encode_ipv4(encode_vrrp(2, 51, 100, [], 1), SRC4, GRP4))
    with pytest.raises(DecodeError, match="EtherType 0x0806"):
        decode_frame(frame[:12] + b"\x08\x06" + frame[14:])


def test_ah_carrying_something_else_is_refused():
    ah = bytearray(encode_ah(encode_vrrp(2, 51, 100, [], 1)))
    ah[0] = 6
    with pytest.raises(DecodeError, match="AH carries protocol 6"):
        decode_vrrp(bytes(ah), "ipv4", SRC4, GRP4, 255, 51)
