"""VRRP adverts byte by byte: every field the decoder reads and the encoders
write, against values worked out by hand from RFC 791, 8200, 2402, 3768 and
5798, and every refusal with its reason (the listener reports it)."""

from __future__ import annotations

import hashlib
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
    frame_payload,
    ipv6_payload,
)

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

SRC4, GRP4 = "192.0.2.2", "224.0.0.18"
SRC6, GRP6 = "fe80::2", "ff02::12"


# --- the Internet checksum ---

def test_checksum_rfc1071_example():
    # RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to 2ddf0, folds to ddf2
    assert checksum16(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2


def test_checksum_pads_an_odd_byte_on_the_right():
    assert checksum16(b"\x01") == 0xFFFF - 0x0100
    assert checksum16(b"\x00\x01\x02") == 0xFFFF - 0x0201


def test_checksum_folds_every_carry():
    assert checksum16(b"\xff\xff\x00\x02") == 0xFFFF - 0x0002  # 0x10001 -> 0x0002
    assert checksum16(b"\xff\xff" * 2) == 0                    # 0x1fffe -> 0xffff
    # many carries: 0x10000 * 0xffff words fold more than once
    assert checksum16(b"\xff\xff" * 0x10001) == 0
    assert checksum16(b"") == 0xFFFF


# --- the encoders, field by field ---

def test_encode_vrrpv2_bytes():
    msg = encode_vrrp(2, 51, 100, ["192.0.2.100"], 3, auth_type=1, auth_data=b"secret")
    assert msg[:6] == bytes([0x21, 51, 100, 1, 1, 3])
    assert msg[8:12] == bytes([192, 0, 2, 100])
    assert msg[12:] == b"secret\0\0"
    assert checksum16(msg) == 0 and msg[6:8] != b"\0\0"
    # auth data longer than 8 bytes is cut, not carried
    assert encode_vrrp(2, 1, 1, [], 1, auth_data=b"0123456789")[8:] == b"01234567"


def test_encode_vrrpv3_bytes():
    msg = encode_vrrp(3, 7, 150, ["192.0.2.100", "192.0.2.101"], 0.5, "ipv4", SRC4, GRP4)
    assert msg[:6] == bytes([0x31, 7, 150, 2, 0, 50])
    assert msg[8:] == bytes([192, 0, 2, 100, 192, 0, 2, 101])
    pseudo = bytes([192, 0, 2, 2, 224, 0, 0, 18, 0, 112, 0, len(msg)])
    assert checksum16(pseudo + msg) == 0
    # centiseconds round, and keep 12 bits
    assert encode_vrrp(3, 1, 1, [], 0.015)[4:6] == struct.pack("!H", 2)
    assert encode_vrrp(3, 1, 1, [], 41.0)[4:6] == struct.pack("!H", 4100 & 0x0FFF)


def test_encode_vrrpv3_without_addresses_of_the_pseudo_header_leaves_the_checksum_0():
    assert encode_vrrp(3, 9, 200, ["fd00::1"], 1.0, "ipv6", SRC6)[6:8] == b"\0\0"
    assert encode_vrrp(3, 9, 200, ["fd00::1"], 1.0, "ipv6", None, GRP6)[6:8] == b"\0\0"
    assert encode_vrrp(3, 9, 200, ["fd00::1"], 1.0, "ipv6", SRC6, GRP6)[6:8] != b"\0\0"


def test_encode_ah_header():
    ah = encode_ah(b"MSG", spi=0x01020304, seq=7, icv=b"\xaa" * 12)
    # next header 112, payload length (24 / 4) - 2 = 4, reserved 0, SPI, sequence, ICV
    assert ah == bytes([112, 4, 0, 0, 1, 2, 3, 4, 0, 0, 0, 7]) + b"\xaa" * 12 + b"MSG"
    assert encode_ah(b"", icv=b"")[1] == 1  # a bare 12-byte header
    assert encode_ah(b"M")[:12] == bytes([112, 4, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 1])


def test_encode_ipv4_header():
    pkt = encode_ipv4(b"PAYLOAD", SRC4, GRP4, ttl=9, proto=51)
    assert pkt[:10] == bytes([0x45, 0xC0, 0, 27, 0, 0, 0, 0, 9, 51])
    assert pkt[12:20] == bytes([192, 0, 2, 2, 224, 0, 0, 18])
    assert checksum16(pkt[:20]) == 0 and pkt[10:12] != b"\0\0"
    assert pkt[20:] == b"PAYLOAD"
    assert encode_ipv4(b"", SRC4, GRP4)[8:10] == bytes([255, 112])


def test_encode_ipv6_header():
    pkt = encode_ipv6(b"PAYLOAD", SRC6, GRP6, hop_limit=9, proto=51)
    assert pkt[:8] == bytes([0x60, 0, 0, 0, 0, 7, 51, 9])
    assert pkt[8:24] == bytes.fromhex("fe800000000000000000000000000002")
    assert pkt[24:40] == bytes.fromhex("ff020000000000000000000000000012")
    assert pkt[40:] == b"PAYLOAD"
    assert encode_ipv6(b"", SRC6, GRP6)[6:8] == bytes([112, 255])


def test_encode_frame():
    pkt4 = encode_ipv4(b"", SRC4, GRP4)
    frame = encode_frame(pkt4, (10, 4095))
    assert frame[:12] == bytes.fromhex("01005e000012" "020000000001")
    assert frame[12:20] == bytes.fromhex("8100000a" "81000fff")
    assert frame[20:22] == b"\x08\x00" and frame[22:] == pkt4
    pkt6 = encode_ipv6(b"", SRC6, GRP6)
    assert encode_frame(pkt6)[12:14] == b"\x86\xdd"
    assert encode_frame(b"")[12:14] == b"\x08\x00"


# --- the decoder, field by field ---

def test_decoded_v2_fields_and_digest():
    msg = encode_vrrp(2, 200, 254, ["192.0.2.100", "192.0.2.7"], 5, auth_type=0)
    a = decode_ipv4(encode_ipv4(msg, SRC4, GRP4, ttl=254))
    assert (a.family, a.src, a.dst, a.ttl, a.proto) == ("ipv4", SRC4, GRP4, 254, 112)
    assert (a.version, a.vrid, a.priority, a.auth_type, a.auth) == (2, 200, 254, 0, "none")
    assert a.interval == 5.0 and a.addresses == ("192.0.2.100", "192.0.2.7") and a.checksum_ok
    assert a.digest == hashlib.sha1(msg).hexdigest()[:16]


def test_v2_auth_names():
    def auth(auth_type):
        return decode_vrrp(encode_vrrp(2, 1, 1, [], 1, auth_type=auth_type), "ipv4", SRC4, GRP4, 255)

    assert (auth(1).auth, auth(2).auth, auth(7).auth) == ("pass", "ah", "type-7")
    assert auth(7).auth_type == 7


def test_v2_checksum_covers_auth_data_and_not_what_trails():
    msg = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1, auth_type=1, auth_data=b"secret")
    assert decode_vrrp(msg + b"trailing", "ipv4", SRC4, GRP4, 255).checksum_ok
    bad = msg[:-1] + b"X"  # auth data changed
    assert not decode_vrrp(bad, "ipv4", SRC4, GRP4, 255).checksum_ok
    # without auth data (cut short) the checksum covers what there is
    short = msg[:12]
    assert not decode_vrrp(short, "ipv4", SRC4, GRP4, 255).checksum_ok
    nodata = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1)
    head = nodata[:12]
    fixed = head[:6] + struct.pack("!H", checksum16(head[:6] + b"\0\0" + head[8:])) + head[8:]
    assert decode_vrrp(fixed, "ipv4", SRC4, GRP4, 255).checksum_ok


def test_v3_checksum_is_over_the_addresses_only_and_its_pseudo_header():
    msg = encode_vrrp(3, 7, 150, ["fd00::1", "fd00::2"], 2.5, "ipv6", SRC6, GRP6)
    a = decode_vrrp(msg + b"trailing", "ipv6", SRC6, GRP6, 255)
    assert a.checksum_ok and a.interval == 2.5 and a.auth_type == 0 and a.auth == "none"
    assert a.addresses == ("fd00::1", "fd00::2")
    assert not decode_vrrp(msg, "ipv6", SRC6, "ff02::13", 255).checksum_ok
    msg4 = encode_vrrp(3, 7, 150, ["192.0.2.1"], 2.5, "ipv4", SRC4, GRP4)
    assert decode_vrrp(msg4, "ipv4", SRC4, GRP4, 255).checksum_ok
    assert not decode_vrrp(msg4, "ipv4", SRC4, "224.0.0.19", 255).checksum_ok


def test_ah_digest_covers_the_ah_header():
    payload = encode_ah(encode_vrrp(2, 51, 100, [], 1, auth_type=2), spi=5)
    a = decode_vrrp(payload, "ipv4", SRC4, GRP4, 255, 51)
    assert a.digest == hashlib.sha1(payload).hexdigest()[:16]
    assert a.auth == "ah"
    v3 = decode_vrrp(encode_ah(encode_vrrp(3, 4, 1, [], 1.0, "ipv4", SRC4, GRP4)), "ipv4", SRC4, GRP4, 255,
        51)
    assert v3.auth == "ah" and v3.checksum_ok and v3.version == 3


def test_ah_with_a_longer_icv():
    inner = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1, auth_type=2)
    a = decode_vrrp(encode_ah(inner, icv=b"\1" * 16), "ipv4", SRC4, GRP4, 255, 51)
    assert a.vrid == 51 and a.addresses == ("192.0.2.100",) and a.checksum_ok


def test_ipv4_options_and_dont_fragment():
    msg = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1)
    pkt = bytearray(encode_ipv4(b"\1\1\1\1" + msg, SRC4, GRP4))
    pkt[0] = 0x46  # 24-byte header: one word of options (NOPs)
    a = decode_ipv4(bytes(pkt))
    assert a.vrid == 51 and a.checksum_ok and a.digest == hashlib.sha1(msg).hexdigest()[:16]
    pkt = bytearray(encode_ipv4(msg, SRC4, GRP4))
    pkt[6] = 0x40  # DF alone is no fragment
    assert decode_ipv4(bytes(pkt)).vrid == 51
    # bytes past the IP total length (Ethernet padding) are not the advert's
    padded = encode_ipv4(msg, SRC4, GRP4) + b"\0" * 6
    assert decode_ipv4(padded).digest == hashlib.sha1(msg).hexdigest()[:16]


@pytest.mark.parametrize("offset, value", [(6, 0x20), (6, 0x01), (7, 0x01), (6, 0x1F)])
def test_ipv4_fragments_are_refused(offset, value):
    pkt = bytearray(encode_ipv4(encode_vrrp(2, 51, 100, [], 1), SRC4, GRP4))
    pkt[offset] = value
    with pytest.raises(DecodeError, match="^ipv4 fragment of protocol 112$"):
        decode_ipv4(bytes(pkt))


def test_ipv6_extension_headers_are_stepped_over():
    msg = encode_vrrp(3, 9, 200, ["fd00::100"], 1.0, "ipv6", SRC6, GRP6)
    # destination options, 16 bytes (length field 1), then routing, 8 bytes, then VRRP
    dst_opts = bytes([43, 1]) + bytes([1, 12]) + b"\0" * 12
    routing = bytes([112, 0, 0, 0]) + b"\0" * 4
    pkt = bytearray(encode_ipv6(dst_opts + routing + msg, SRC6, GRP6, hop_limit=7))
    pkt[6] = 60
    payload, nxt = ipv6_payload(bytes(pkt))
    assert (payload, nxt) == (msg, 112)
    a = decode_ipv6(bytes(pkt))
    assert (a.src, a.dst, a.ttl, a.vrid) == (SRC6, GRP6, 7, 9) and a.checksum_ok


def test_ipv6_payload_ends_at_the_payload_length():
    msg = encode_vrrp(3, 9, 200, [], 1.0, "ipv6", SRC6, GRP6)
    pkt = encode_ipv6(msg, SRC6, GRP6) + b"\0" * 4
    assert ipv6_payload(pkt) == (msg, 112)


def test_ipv6_fragment_header_is_refused():
    frag = bytes([112, 0, 0, 0]) + b"\0" * 4
    pkt = bytearray(encode_ipv6(frag + encode_vrrp(3, 9, 200, [], 1.0), SRC6, GRP6))
    pkt[6] = 44
    with pytest.raises(DecodeError, match="^ipv6 fragment of protocol 112$"):
        decode_ipv6(bytes(pkt))


def test_frame_payload_steps_over_every_vlan_tpid():
    pkt = encode_ipv4(encode_vrrp(2, 51, 100, [], 1), SRC4, GRP4)
    for tpid in (0x8100, 0x88A8, 0x9100):
        frame = b"\1" * 12 + struct.pack("!HH", tpid, 7) + struct.pack("!HH", 0x8100, 8) + b"\x08\x00" + pkt
        assert frame_payload(frame) == (pkt, 0x0800)
        assert decode_frame(frame).vrid == 51
    assert frame_payload(b"\1" * 12 + b"\x08\x06" + b"ARP") == (b"ARP", 0x0806)


# --- every refusal says why ---

def v2() -> bytes:
    return encode_vrrp(2, 51, 100, ["192.0.2.100"], 1)


@pytest.mark.parametrize("make, message", [
    (lambda: decode_vrrp(v2(), "ipv5", SRC4, GRP4, 255), "^unknown family 'ipv5'$"),
    (lambda: decode_vrrp(v2(), "ipv4", SRC4, GRP4, 255, 17),
     r"^IP protocol 17 is neither VRRP \(112\) nor AH \(51\)$"),
    (lambda: decode_vrrp(v2()[:7], "ipv4", SRC4, GRP4, 255), "^VRRP header truncated: 7 bytes, need 8$"),
    (lambda: decode_vrrp(bytes([0x22]) + v2()[1:], "ipv4", SRC4, GRP4, 255),
     "^VRRP type 2 is not an advertisement$"),
    (lambda: decode_vrrp(bytes([0x41]) + v2()[1:], "ipv4", SRC4, GRP4, 255),
        "^VRRP version 4 is neither 2 nor 3$"),
    (lambda: decode_vrrp(bytes([0x11]) + v2()[1:], "ipv4", SRC4, GRP4, 255),
        "^VRRP version 1 is neither 2 nor 3$"),
    (lambda: decode_vrrp(v2()[:11], "ipv4", SRC4, GRP4, 255),
        "^VRRPv2 addresses truncated: 11 bytes, need 12$"),
    (lambda: decode_vrrp(encode_vrrp(3, 1, 1, ["fd00::1"], 1.0)[:23], "ipv6", SRC6, GRP6, 255),
     "^VRRPv3 addresses truncated: 23 bytes, need 24$"),
    (lambda: decode_vrrp(encode_ah(v2())[:11], "ipv4", SRC4, GRP4, 255, 51),
        "^AH header truncated: 11 bytes, need 12$"),
    (lambda: decode_vrrp(encode_ah(v2())[:20], "ipv4", SRC4, GRP4, 255, 51),
        "^AH header truncated: 20 bytes, need 24$"),
    (lambda: decode_vrrp(bytes([112, 0]) + encode_ah(v2())[2:], "ipv4", SRC4, GRP4, 255, 51),
     "^AH header length 8 is shorter than its fixed part$"),
    (lambda: decode_ipv4(b"\x45" * 19), "^IPv4 header truncated: 19 bytes, need 20$"),
    (lambda: decode_ipv4(b"\x65" + encode_ipv4(v2(), SRC4, GRP4)[1:]), "^IP version 6, expected 4$"),
    (lambda: decode_ipv4(b"\x44" + encode_ipv4(v2(), SRC4, GRP4)[1:]), "^IPv4 header length 16 is below 20$"),
    (lambda: decode_ipv4(b"\x46" + encode_ipv4(b"", SRC4, GRP4)[1:]),
        "^IPv4 header truncated: 20 bytes, need 24$"),
    (lambda: decode_ipv4(encode_ipv4(v2(), SRC4, GRP4)[:2] + b"\0\x13" + encode_ipv4(v2(), SRC4, GRP4)[4:]),
     "^IPv4 total length 19 is shorter than its header$"),
    (lambda: decode_ipv4(encode_ipv4(v2(), SRC4, GRP4)[:-1]), "^IPv4 packet truncated: 39 bytes, need 40$"),
    (lambda: ipv6_payload(b"\x60" * 39), "^IPv6 header truncated: 39 bytes, need 40$"),
    (lambda: ipv6_payload(b"\x40" + encode_ipv6(b"", SRC6, GRP6)[1:]), "^IP version 4, expected 6$"),
    (lambda: ipv6_payload(encode_ipv6(b"abc", SRC6, GRP6)[:42]),
        "^IPv6 packet truncated: 42 bytes, need 43$"),
    (lambda: ipv6_payload(encode_ipv6(b"\x70\0", SRC6, GRP6, proto=0)),
     "^IPv6 extension header truncated: 2 bytes, need 8$"),
    (lambda: ipv6_payload(encode_ipv6(b"\x70\1" + b"\0" * 6, SRC6, GRP6, proto=60)),
     "^IPv6 extension header truncated: 8 bytes, need 16$"),
    (lambda: decode_ip(b""), "^empty packet$"),
    (lambda: decode_ip(b"\x50" * 40), "^IP version 5 is neither 4 nor 6$"),
    (lambda: frame_payload(b"\0" * 13), "^Ethernet header truncated: 13 bytes, need 14$"),
    (lambda: frame_payload(b"\0" * 12 + b"\x81\x00\0\x05\x08"), "^VLAN tag truncated: 17 bytes, need 18$"),
    (lambda: decode_frame(b"\0" * 12 + b"\x88\xa8\0\x05\x08\x06"),
        "^EtherType 0x0806 is neither IPv4 nor IPv6$"),
])
def test_refusals_say_why(make, message):
    with pytest.raises(DecodeError, match=message):
        make()


def test_ipv6_carrying_udp_is_refused_by_protocol():
    with pytest.raises(DecodeError, match="^IP protocol 17 is neither"):
        decode_ipv6(encode_ipv6(b"\0" * 8, SRC6, GRP6, proto=17))
    with pytest.raises(DecodeError, match="^IP protocol 6 is neither"):
        decode_ip(encode_ipv4(b"\0" * 8, SRC4, GRP4, proto=6))


# --- edges: the smallest and the largest packets each layer takes ---

def test_the_smallest_headers_are_read_whole():
    # a bare 12-byte AH header (no ICV) in front of VRRP
    inner = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1)
    bare = encode_ah(inner, icv=b"")
    assert decode_vrrp(bare, "ipv4", SRC4, GRP4, 255, 51).vrid == 51
    with pytest.raises(DecodeError, match="^VRRP header truncated: 0 bytes, need 8$"):
        decode_vrrp(encode_ah(b"", icv=b""), "ipv4", SRC4, GRP4, 255, 51)
    # a 20-byte IPv4 header with nothing behind it: the VRRP header is what is missing
    with pytest.raises(DecodeError, match="^VRRP header truncated: 0 bytes, need 8$"):
        decode_ipv4(encode_ipv4(b"", SRC4, GRP4))
    # a 40-byte IPv6 header, and an 8-byte extension header followed by no next header (59)
    assert ipv6_payload(encode_ipv6(b"", SRC6, GRP6)) == (b"", 112)
    assert ipv6_payload(encode_ipv6(bytes([59, 0]) + b"\0" * 6, SRC6, GRP6, proto=0)) == (b"", 59)
    # a 14-byte Ethernet header, and one VLAN tag, with nothing behind them
    assert frame_payload(b"\0" * 12 + b"\x08\x00") == (b"", 0x0800)
    assert frame_payload(b"\0" * 12 + b"\x81\x00\x00\x05\x86\xdd") == (b"", 0x86DD)


def test_ah_wrapping_v2_names_ah_whatever_the_v2_auth_type():
    for auth_type in (0, 1, 2):
        inner = encode_vrrp(2, 51, 100, [], 1, auth_type=auth_type)
        a = decode_vrrp(encode_ah(inner), "ipv4", SRC4, GRP4, 255, 51)
        assert (a.auth, a.auth_type) == ("ah", auth_type)


def test_lengths_of_32_kib_and_more_are_unsigned():
    msg = encode_vrrp(2, 51, 100, ["192.0.2.100"], 1)
    big = msg + b"\0" * 40000
    a = decode_ipv4(encode_ipv4(big, SRC4, GRP4))
    assert a.vrid == 51 and a.checksum_ok
    b = decode_ipv6(encode_ipv6(big, SRC6, GRP6))
    assert b.vrid == 51 and b.family == "ipv6"
    ah = encode_ah(msg, spi=0xFFFFFFFF, seq=0xFFFFFFFF)
    assert ah[4:12] == b"\xff" * 8
    assert decode_vrrp(ah, "ipv4", SRC4, GRP4, 255, 51).vrid == 51


def test_every_ipv4_header_checksum_encodes_and_verifies():
    # the checksums of these headers cover both halves of the 16-bit range
    sums = set()
    for ttl in range(256):
        pkt = encode_ipv4(b"", SRC4, GRP4, ttl=ttl)
        assert checksum16(pkt[:20]) == 0
        sums.add(pkt[10] >= 0x80)
    assert sums == {True, False}


def test_encoder_defaults():
    assert encode_vrrp(2, 1, 1, [])[5] == 1  # one second
    assert encode_vrrp(3, 1, 1, [])[4:6] == b"\x00\x64"  # 100 centiseconds
    assert encode_vrrp(2, 1, 1, [])[4] == 0 and encode_vrrp(2, 1, 1, [])[8:] == b"\0" * 8


# --- fragments: what the listener counts of each ---

def frag4(payload, proto=112, flags_offset=0x2000, ident=0x4242, ttl=9):
    pkt = bytearray(encode_ipv4(payload, SRC4, GRP4, ttl=ttl, proto=proto))
    pkt[4:6] = struct.pack("!H", ident)
    pkt[6:8] = struct.pack("!H", flags_offset)
    return bytes(pkt)


def test_ipv4_fragment_fields():
    from vrrpfw.listen.packet import FragmentError

    msg = encode_vrrp(2, 77, 100, ["192.0.2.100"], 1)
    with pytest.raises(FragmentError) as e:
        decode_ipv4(frag4(msg))
    f = e.value
    assert (f.family, f.src, f.dst, f.ttl, f.proto, f.ident, f.first, f.vrid) == (
        "ipv4", SRC4, GRP4, 9, 112, 0x4242, True, 77)
    with pytest.raises(FragmentError) as e:
        decode_ipv4(frag4(msg, flags_offset=0x0001))  # last fragment, offset 8
    assert (e.value.first, e.value.vrid) == (False, None)
    with pytest.raises(FragmentError) as e:
        decode_ipv4(frag4(encode_ah(msg), proto=51))
    assert (e.value.proto, e.value.first, e.value.vrid) == (51, True, 77)
    with pytest.raises(FragmentError) as e:
        decode_ipv4(frag4(b"\x22\x05", proto=112))  # type 2: no advert, no VRID
    assert e.value.vrid is None
    with pytest.raises(FragmentError) as e:
        decode_ipv4(frag4(b"\x21", proto=112))  # one byte: no VRID yet
    assert e.value.vrid is None
    with pytest.raises(FragmentError) as e:
        decode_ipv4(frag4(b"\x11\x05\x21\x06", proto=17))
    assert e.value.vrid is None


def test_ipv6_fragment_fields():
    from vrrpfw.listen.packet import FragmentError

    msg = encode_vrrp(3, 66, 100, ["fd00::1"], 1.0, "ipv6", SRC6, GRP6)
    head = bytes([112, 0]) + struct.pack("!HI", 0x0001, 0x01020304)  # offset 0, more fragments
    pkt = bytearray(encode_ipv6(head + msg, SRC6, GRP6, hop_limit=7))
    pkt[6] = 44
    with pytest.raises(FragmentError) as e:
        decode_ipv6(bytes(pkt))
    f = e.value
    assert (f.family, f.src, f.dst, f.ttl, f.proto, f.ident, f.first, f.vrid) == (
        "ipv6", SRC6, GRP6, 7, 112, 0x01020304, True, 66)
    later = bytes([112, 0]) + struct.pack("!HI", 0x0008, 5)  # offset 8 bytes
    pkt = bytearray(encode_ipv6(later + msg, SRC6, GRP6))
    pkt[6] = 44
    with pytest.raises(FragmentError) as e:
        decode_ipv6(bytes(pkt))
    assert (e.value.first, e.value.vrid, e.value.ident) == (False, None, 5)
