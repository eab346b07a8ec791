"""Property tests of the VRRP packet decoder (vrrpfw.listen.packet) and the
listener's per-frame helpers: whatever bytes the wire carries, random or a
mutation of a real advert, they return an Advert (or a plain value) or raise
DecodeError (FragmentError is one), never another exception, in bounded time
and memory.  Derandomized: the same examples on every run (CI)."""

from __future__ import annotations

import time
import tracemalloc
from typing import Callable, List

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from vrrpfw.listen.capture import ARPHRD_ETHER, _carries_vrrp_or_ah, frame_key, ip_key  # noqa: E402
from vrrpfw.listen.packet import (  # noqa: E402
    PROTO_AH,
    PROTO_VRRP,
    Advert,
    DecodeError,
    FragmentError,
    decode_frame,
    decode_ip,
    decode_vrrp,
    encode_ah,
    encode_frame,
    encode_ipv4,
    encode_ipv6,
    encode_vrrp,
    frame_payload,
    frame_vlan,
    ipv6_payload,
)

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

SETTINGS = settings(derandomize=True, max_examples=300, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
# a decode of at most 64 KiB must stay far below these.  Time is this
# process's CPU time (process_time), not the wall clock: other work on a
# loaded CI machine must not fail it (it did once at 0.25 s of wall time,
# and hypothesis then called the test flaky); a runaway loop still does.
MAX_SECONDS = 1.0
MAX_BYTES = 1 << 20


def real_adverts() -> List[bytes]:
    """Frames as the wire carries them, built by vrrp_packet's encoders."""
    s4, g4, s6, g6 = "192.0.2.2", "224.0.0.18", "fd00::2", "ff02::12"
    v2 = encode_vrrp(2, 51, 100, ["192.0.2.100", "192.0.2.101"], 1, auth_type=1, auth_data=b"secret")
    v3_4 = encode_vrrp(3, 52, 150, ["192.0.2.100"], 1.0, "ipv4", s4, g4)
    v3_6 = encode_vrrp(3, 53, 200, ["fd00::100", "fd00::101"], 0.5, "ipv6", s6, g6)
    hbh = bytes([PROTO_VRRP, 0]) + b"\x05\x02\x00\x00\x01\x00"
    frag6 = bytes([PROTO_VRRP, 0, 0, 1]) + b"\0\0\0\x07"
    packets = [
        encode_ipv4(v2, s4, g4), encode_ipv4(v3_4, s4, g4),
        encode_ipv4(encode_ah(v2), s4, g4, proto=PROTO_AH),
        encode_ipv6(v3_6, s6, g6), encode_ipv6(encode_ah(v3_6), s6, g6, proto=PROTO_AH),
        encode_ipv6(hbh + v3_6, s6, g6, proto=0),
        encode_ipv6(frag6 + v3_6[:16], s6, g6, proto=44),
    ]
    frames = [encode_frame(p) for p in packets] + [encode_frame(packets[0], [100]),
                                                    encode_frame(packets[3], [10, 20])]
    return frames


REAL = real_adverts()


def bounded(call: Callable[[], object]) -> object:
    """Run ``call``: its result, or the DecodeError it raised; fail on any
    other exception, on more than MAX_SECONDS or MAX_BYTES."""
    tracemalloc.start()
    started = time.process_time()
    try:
        result: object = call()
    except DecodeError as e:
        result = e
    finally:
        elapsed = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < MAX_SECONDS, elapsed
    assert peak < MAX_BYTES, peak
    return result


def check_advert(result: object) -> None:
    if isinstance(result, FragmentError):
        assert result.family in ("ipv4", "ipv6") and 0 <= result.proto <= 255
        assert result.vrid is None or 0 <= result.vrid <= 255
    elif isinstance(result, Advert):
        assert result.family in ("ipv4", "ipv6") and result.version in (2, 3)
        assert 0 <= result.vrid <= 255 and 0 <= result.priority <= 255
        assert len(result.addresses) <= 255 and result.proto in (PROTO_VRRP, PROTO_AH)
    else:
        assert isinstance(result, DecodeError), result


def decode_everywhere(data: bytes) -> None:
    check_advert(bounded(lambda: decode_frame(data)))
    check_advert(bounded(lambda: decode_ip(data)))
    for family, src, dst in (("ipv4", "192.0.2.2", "224.0.0.18"), ("ipv6", "fd00::2", "ff02::12")):
        for proto in (PROTO_VRRP, PROTO_AH, 6):
            check_advert(bounded(lambda: decode_vrrp(data, family, src, dst, 255, proto)))  # noqa: B023
    for helper in (lambda: ipv6_payload(data), lambda: frame_payload(data)):
        r = bounded(helper)
        assert isinstance(r, (tuple, DecodeError)), r
    assert isinstance(bounded(lambda: frame_vlan(data)), int)
    assert isinstance(bounded(lambda: frame_key(data)), (bytes, type(None)))
    assert isinstance(bounded(lambda: ip_key(data)), (bytes, type(None)))
    assert isinstance(bounded(lambda: _carries_vrrp_or_ah(data, ARPHRD_ETHER)), bool)


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_decode_errors(data):
    decode_everywhere(data)


MUTATION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 4095), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 4095), st.integers(0, 0)),
    st.tuples(st.just("insert"), st.integers(0, 4095), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0, 4095), st.integers(1, 64)),
)


def mutate(frame: bytes, mutations) -> bytes:
    b = bytearray(frame)
    for kind, where, what in mutations:
        at = where % (len(b) + 1)
        if kind == "set" and b:
            b[at % len(b)] = what
        elif kind == "cut":
            del b[at:]
        elif kind == "insert":
            b[at:at] = what
        elif kind == "delete":
            del b[at:at + what]
    return bytes(b)


@SETTINGS
@given(st.sampled_from(REAL), st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_real_adverts_raise_only_decode_errors(frame, mutations):
    data = mutate(frame, mutations)
    decode_everywhere(data)
    decode_everywhere(data[14:])  # the same bytes as an IP packet (a raw socket's view)


def test_the_real_adverts_decode():
    # the seeds themselves: everything decodes but the fragment
    results = [bounded(lambda f=f: decode_frame(f)) for f in REAL]
    assert [type(r).__name__ for r in results] == ["Advert"] * 6 + ["FragmentError"] + ["Advert"] * 2
    assert frame_vlan(REAL[-1]) == 10 and frame_vlan(REAL[0]) == 0


@SETTINGS
@given(st.integers(0, 300), st.sampled_from([0, 43, 60]))
def test_long_extension_header_chains_are_bounded(n, kind):
    # n extension headers of 8 bytes, then VRRP: beyond the bounded walk a DecodeError, never a hang
    v3 = encode_vrrp(3, 53, 200, ["fd00::100"], 1.0, "ipv6", "fd00::2", "ff02::12")
    chain = b"".join(bytes([kind if i + 1 < n else PROTO_VRRP, 0]) + b"\x01\x04\0\0\0\0" for i in range(n))
    r = bounded(lambda: decode_ip(encode_ipv6(chain + v3, "fd00::2", "ff02::12", proto=kind if n else 112)))
    if n <= 8:
        assert isinstance(r, Advert) and r.vrid == 53
    else:
        assert isinstance(r, DecodeError) and "extension headers" in str(r)


def decoded(data: bytes, decode: Callable[[bytes], object]) -> object:
    try:
        return decode(data)
    except FragmentError as e:
        return ("fragment", e.family, e.src, e.dst, e.proto, e.first, e.vrid)
    except DecodeError:
        return "undecodable"


@SETTINGS
@given(st.sampled_from(REAL), st.lists(MUTATION, max_size=3), st.lists(MUTATION, min_size=1, max_size=3))
def test_the_listeners_decode_cache_key_holds_every_byte_the_decoder_reads(frame, common, change):
    # two frames whose keys are equal must decode alike (the cache hands out
    # the first one's Advert for the second); IPv4 ID and checksum are left out
    a = mutate(frame, common)
    b = mutate(a, change)
    if frame_key(a) is not None and frame_key(a) == frame_key(b):
        assert decoded(a, decode_frame) == decoded(b, decode_frame)
    if ip_key(a[14:]) is not None and ip_key(a[14:]) == ip_key(b[14:]):
        assert decoded(a[14:], decode_ip) == decoded(b[14:], decode_ip)


@SETTINGS
@given(st.sampled_from(REAL[:3]), st.binary(min_size=4, max_size=4))
def test_adverts_differing_only_in_ipv4_id_and_checksum_share_a_key(frame, id_and_sum):
    other = frame[:18] + id_and_sum[:2] + frame[20:24] + id_and_sum[2:] + frame[26:]
    assert frame_key(frame) == frame_key(other) is not None
    assert decode_frame(frame) == decode_frame(other)


def test_every_single_byte_change_outside_the_key_decodes_alike():
    # exhaustive over the headers: a byte the key leaves out must not change the decode
    for frame in REAL:
        for at in range(min(len(frame), 96)):
            for flip in (0x01, 0x10, 0x80, 0xFF):
                other = frame[:at] + bytes([frame[at] ^ flip]) + frame[at + 1:]
                if frame_key(frame) == frame_key(other):
                    assert decoded(frame, decode_frame) == decoded(other, decode_frame), (frame.hex(), at)
                if ip_key(frame[14:]) == ip_key(other[14:]):
                    assert decoded(frame[14:], decode_ip) == decoded(other[14:], decode_ip), (frame.hex(), at)
