"""The listener's bounded tally and its verdicts for the wire shapes of issue
18 (VLAN tags, fragments, capture overflow, floods of sources), and its
capture filter run by a small classic-BPF interpreter.  Pure: no sockets."""

from __future__ import annotations

import struct
import tracemalloc
from typing import List, Sequence, Tuple

import pytest

from vrrpfw.listen.capture import PACKET_AUXDATA, SOL_PACKET, _aux_vlan, bpf_program, vlan_interfaces
from vrrpfw.listen.packet import (
    Advert,
    FragmentError,
    decode_ip,
    encode_ah,
    encode_frame,
    encode_ipv4,
    encode_ipv6,
    encode_vrrp,
)
from vrrpfw.listen.report import (
    CAPTURE_OVERFLOW,
    DELIVERED,
    DROPPED,
    FRAGMENTED,
    MAX_BODIES,
    MAX_SOURCES,
    OTHER_VLAN,
    Heard,
)
from vrrpfw.listen.verdicts import Tally, aggregate

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def adv(src="192.0.2.2", vrid=51, digest="d1", family="ipv4", dst="224.0.0.18",
        addrs=("192.0.2.100",)) -> Advert:
    return Advert(family, src, dst, 255, 112, 2, vrid, 100, 0, "none", 1.0, tuple(addrs), True, digest)


def test_memory_is_bounded_for_a_flood_of_distinct_adverts_and_sources():
    # 20,000 adverts from 2,000 sources, each advert a distinct body: the tally
    # keeps MAX_SOURCES sources and MAX_BODIES bodies each, not every advert
    def flood():
        for i in range(20_000):
            yield Heard("eth1", adv(src=f"192.0.{i % 2000 // 250}.{i % 250}", digest=f"{i:016x}"))

    tracemalloc.start()
    try:
        report = aggregate(["eth1"], flood(), flood())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(report.sources) == MAX_SOURCES
    assert report.untracked == 20_000 - MAX_SOURCES * 10
    assert report.exit_code == 1 and any("not judged" in line for line in report.lines())
    assert peak < 2_000_000, peak  # kept, the 40,000 records took 30 MB


def test_bodies_past_the_cap_still_match_as_a_multiset():
    t = Tally()
    n = MAX_BODIES + 10
    for i in range(n):
        t.add_wire(Heard("eth1", adv(digest=f"{i}")))
    for i in range(n - 3):
        t.add_delivered(Heard("eth1", adv(digest=f"{i}")))
    (s,) = t.report(["eth1"]).sources
    assert len(t.inbound[("eth1", 0, "ipv4", 51, "192.0.2.2")].bodies) == MAX_BODIES
    assert (s.verdict, s.wire, s.delivered) == (DELIVERED, n, n - 3)


def test_tagged_for_a_vlan_is_other_vlan_not_dropped_and_never_judged():
    a, b = adv(), adv(vrid=52)
    report = aggregate(["eth1"], [Heard("eth1", a, vlan=100)] * 3 + [Heard("eth1", b)] * 2,
                       [Heard("eth1", b)] * 2)
    s = {x.vrid: x for x in report.sources}
    assert (s[51].verdict, s[51].vlan) == (OTHER_VLAN, 100)
    assert s[51].detail == "tagged for VLAN 100, no interface here"
    assert s[51].counters == [] and s[51].ok
    assert (s[52].verdict, report.exit_code) == (DELIVERED, 0)
    only = aggregate(["eth1"], [Heard("eth1", a, vlan=100)], [])
    assert only.exit_code == 5 and only.nothing_heard == ["eth1"]
    there = aggregate(["eth1"], [Heard("eth1", a, vlan=100)], [], vlan_interfaces={("eth1", 100): "eth1.100"})
    assert there.sources[0].detail == "tagged for VLAN 100, delivered through eth1.100: listen there"


def test_vlan_interfaces_from_8021q_config(tmp_path):
    conf = tmp_path / "config"
    conf.write_text("VLAN Dev name    | VLAN ID\nName-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD\n"
                    "eth1.100       | 100  | eth1\nvlan7          | 7  | eth2\n")
    assert vlan_interfaces(str(conf)) == {("eth1", 100): "eth1.100", ("eth2", 7): "vlan7"}
    assert vlan_interfaces(str(tmp_path / "missing")) == {}


def test_aux_vlan_from_packet_auxdata():
    def aux(status, tci):
        return [(SOL_PACKET, PACKET_AUXDATA, struct.pack("@IIIHHHH", status, 60, 60, 0, 14, tci, 0x8100))]

    assert _aux_vlan(aux(0x10, 0x2064)) == 100  # priority bits stripped
    assert _aux_vlan(aux(0, 0)) == 0 and _aux_vlan([]) == 0


def frag(first=True, src="192.0.2.2", vrid=71, family="ipv4", dst="224.0.0.18") -> FragmentError:
    return FragmentError(family, src, dst, 255, 112, 9, first, vrid if first else None)


def test_fragments_reassembled_and_delivered_are_fragmented_not_nothing_heard():
    t = Tally()
    for _ in range(5):
        t.add_fragment("eth1", frag(True))
        t.add_fragment("eth1", frag(False))
        t.add_delivered(Heard("eth1", adv(vrid=71)))
    report = t.report(["eth1"])
    (s,) = report.sources
    assert (s.verdict, s.wire, s.delivered, s.vrid) == (FRAGMENTED, 5, 5, 71)
    assert "5 datagrams in 10 fragments" in s.detail and "5 reassembled" in s.detail
    assert report.nothing_heard == [] and report.exit_code == 1


def test_fragments_never_delivered_are_fragmented_with_none_delivered():
    t = Tally()
    t.add_fragment("eth1", frag(True))
    t.add_fragment("eth1", frag(False))
    (s,) = t.report(["eth1"]).sources
    assert (s.verdict, s.wire, s.delivered, s.vrid) == (FRAGMENTED, 1, 0, 71)
    assert "0 reassembled" in s.detail


def test_a_shortfall_with_overflowing_sockets_is_capture_overflow_not_dropped_here():
    a = adv()
    wire, got = [Heard("eth1", a)] * 10, [Heard("eth1", a)] * 4
    plain = aggregate(["eth1"], wire, [])
    assert plain.sources[0].verdict == DROPPED  # no overflow: netfilter's doing
    for overflow in ({"packet": {}, "raw": {"ipv4/112": 6}}, {"packet": {"eth1": 3}, "raw": {}}):
        for delivered in ([], got):
            r = aggregate(["eth1"], wire, delivered, overflow=overflow)
            (s,) = r.sources
            assert s.verdict == CAPTURE_OVERFLOW and "netfilter" in s.detail and "cannot be told" in s.detail
            assert r.exit_code == 1
            assert any(line.startswith("capture overflow: ") for line in r.lines())
            assert not any("dropped here" in line for line in r.lines())
    # the other family's raw socket overflowing says nothing about this one
    r6 = aggregate(["eth1"], wire, [], overflow={"packet": {}, "raw": {"ipv6/112": 6}})
    assert r6.sources[0].verdict == DROPPED
    # everything matched, yet the sockets lost some: uncertain, never exit 0
    r = aggregate(["eth1"], wire, wire, overflow={"packet": {"eth1": 3}, "raw": {}})
    assert r.sources[0].verdict == DELIVERED and r.exit_code == 1
    assert r.to_json()["capture_overflow"] == {"packet": {"eth1": 3}, "raw": {}}


# --- the capture filter, run by a classic BPF interpreter ---

def run_bpf(prog: Sequence[Tuple[int, int, int, int]], pkt: bytes) -> int:
    a = x = 0
    mem = [0] * 16
    pc = 0
    for _ in range(10_000):
        code, jt, jf, k = prog[pc]
        pc += 1
        if code in (0x28, 0x30, 0x50):  # ldh abs, ldb abs, ldb ind
            off = k + (x if code == 0x50 else 0)
            size = 2 if code == 0x28 else 1
            if off + size > len(pkt):
                return 0
            a = int.from_bytes(pkt[off:off + size], "big")
        elif code == 0x01:
            x = k
        elif code == 0x60:
            a = mem[k]
        elif code == 0x02:
            mem[k] = a
        elif code == 0x04:
            a = (a + k) & 0xFFFFFFFF
        elif code == 0x64:
            a = (a << k) & 0xFFFFFFFF
        elif code == 0x0C:
            a = (a + x) & 0xFFFFFFFF
        elif code == 0x07:
            x = a
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"opcode {code:#x} not interpreted")
    raise AssertionError("no return")


def ext(kind: int, nxt: int, size: int = 8) -> bytes:
    if kind == 44:
        return struct.pack("!BBHI", nxt, 0, 0, 1)
    return bytes([nxt, size // 8 - 1]) + b"\x01" + bytes([size - 4]) + b"\0" * (size - 4)


def v6(chain: List[int], payload: bytes = b"\x31\x33\x64\x01" + b"\0" * 20) -> bytes:
    """IPv6 with extension headers ``chain[:-1]`` and upper protocol ``chain[-1]``."""
    body = b"".join(ext(kind, nxt, 16 if kind == 60 else 8) for kind, nxt in zip(chain, chain[1:]))
    return encode_frame(encode_ipv6(body + payload, "fd00::2", "ff02::12", proto=chain[0]))


def test_capture_filter_walks_ipv6_extension_headers_and_keeps_only_vrrp_and_ah():
    prog = bpf_program()
    accept = [
        encode_frame(encode_ipv4(encode_vrrp(2, 1, 100, ["192.0.2.9"]), "192.0.2.2", "224.0.0.18")),
        encode_frame(encode_ipv4(encode_ah(encode_vrrp(2, 1, 100, [])), "192.0.2.2", "224.0.0.18", proto=51)),
        v6([112]), v6([51]), v6([0, 112]), v6([0, 60, 112]), v6([0, 43, 60, 112]), v6([44, 112]),
        v6([0, 44, 51]), v6([0] * 8 + [112]),
        encode_frame(encode_ipv4(b"x" * 8, "192.0.2.2", "224.0.0.18", proto=6), vlans=[100]),  # tag: decoder
    ]
    drop = [
        encode_frame(encode_ipv4(b"x" * 20, "192.0.2.2", "224.0.0.18", proto=6)),
        v6([6]), v6([0, 6]), v6([0, 60, 17]), v6([0] * 9 + [112]),  # past the bounded walk
        v6([0, 112])[:54],  # truncated before the extension header
        b"\xff" * 14 + b"\x08\x06" + b"\0" * 28,  # ARP
    ]
    assert [run_bpf(prog, f) for f in accept] == [0x40000] * len(accept)
    assert [run_bpf(prog, f) for f in drop] == [0] * len(drop)


def test_decoder_reads_what_the_filter_lets_through():
    frame = v6([0, 60, 112], encode_vrrp(3, 9, 100, ["fd00::9"], 1.0, "ipv6", "fd00::2", "ff02::12"))
    a = decode_ip(frame[14:])
    assert (a.vrid, a.src, a.addresses, a.checksum_ok) == (9, "fd00::2", ("fd00::9",), True)


def test_fragments_of_one_source_go_to_the_vrid_they_showed_once():
    t = Tally()
    for _ in range(3):
        t.add_fragment("eth1", frag(True, vrid=72))
        t.add_fragment("eth1", frag(False))
        t.add_delivered(Heard("eth1", adv(vrid=72)))
    for _ in range(2):  # the same source, another VRID, not fragmented: delivered without a wire copy
        t.add_delivered(Heard("eth1", adv(vrid=71)))
    t.add_wire(Heard("eth1", adv(vrid=73)))
    t.add_delivered(Heard("eth1", adv(vrid=73)))
    s = {x.vrid: x for x in t.report(["eth1"]).sources}
    assert set(s) == {72, 73}
    assert (s[72].verdict, s[72].wire, s[72].delivered) == (FRAGMENTED, 3, 3)
    assert (s[73].verdict, s[73].wire, s[73].delivered) == (DELIVERED, 1, 1)


def test_vlan_already_listened_on_is_named():
    r = aggregate(["eth1", "eth1.100"], [Heard("eth1", adv(), vlan=100)], [],
                  vlan_interfaces={("eth1", 100): "eth1.100"})
    assert r.sources[0].detail == "tagged for VLAN 100: judged on eth1.100"
