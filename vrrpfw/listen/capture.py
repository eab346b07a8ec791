"""The listener's sockets: what reaches the wire and what netfilter delivers.

* the wire: an AF_PACKET socket bound to each interface sees every frame
  before netfilter (incoming), and this host's own adverts on their way out
  (``PACKET_OUTGOING``: reported as "sent by this host", never judged);
* delivery: raw IP sockets for protocols 112 (VRRP) and 51 (AH), IPv4 and
  IPv6, joined to the VRRP groups on each interface, receive only what
  netfilter let in, as keepalived's own sockets would.

The listener never sends a packet itself; joining the groups makes the
kernel send an IGMP/MLD membership report only if no socket on the host
(keepalived's included) had joined them already.

Sockets are opened raw first and read wire first at the end, so a packet at
either edge of the window can only look *more* delivered than wire (which
is capped), never dropped.

What the wire carries beyond plain adverts: a frame tagged for a VLAN (the
tag from PACKET_AUXDATA, or still in the frame) is "other vlan", reported and
never judged (delivery for it would be on the VLAN interface, if any); IPv6
extension headers are walked (the capture filter and the decoder, both
bounded); fragments are counted on the wire and matched with the datagrams
the kernel reassembled and delivered ("fragmented": keepalived never
fragments).  The kernel's drops in the listener's own sockets (the packet
sockets' PACKET_STATISTICS, the raw sockets' SO_RXQ_OVFL and SO_MEMINFO) are
"capture overflow", never blamed on netfilter.  Each distinct advert is
decoded once (:class:`_DecodeCache`).

Split from :mod:`.listener` (which runs a listen): sockets, the BPF filter
and :class:`_Capture`, which feeds a :class:`~vrrpfw.listen.verdicts.Tally`.
"""

from __future__ import annotations

import ctypes
import ipaddress
import select
import socket
import struct
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import EnvironmentProblem
from .packet import (
    PROTO_AH,
    PROTO_VRRP,
    Advert,
    DecodeError,
    FragmentError,
    decode_frame,
    decode_ip,
    decode_vrrp,
    frame_payload,
    frame_vlan,
)
from .report import (
    Counters,
    Heard,
    ListenReport,
)
from .verdicts import Tally

PROTOS = (PROTO_VRRP, PROTO_AH)
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PACKET_OTHERHOST = 3
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
SO_ATTACH_FILTER = 26
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
RCVBUF = 1 << 20
# After the window closes: read what is already queued, wire sockets first.
DRAIN = 0.05


# Kernel socket buffers: ask for this much (SO_RCVBUFFORCE as root, else
# SO_RCVBUF, which net.core.rmem_max caps).  What still overflows is counted
# (PACKET_STATISTICS, SO_RXQ_OVFL) and reported as capture overflow.
RCVBUF_FORCE = 4 << 20
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
TP_STATUS_VLAN_VALID = 0x10
SO_RXQ_OVFL = 40
SO_MEMINFO = 55
SK_MEMINFO_DROPS = 8
SO_RCVBUFFORCE = 33
# Adverts repeat byte for byte (an IPv4 header's ID and checksum aside): each
# distinct one is decoded once.  Bounded: so many entries of so many bytes.
DECODE_CACHE = 64
DECODE_CACHE_BYTES = 2048
IPV6_EXT = (0, 43, 60, 44)  # hop-by-hop, routing, destination options, fragment
BPF_WALK = 8  # IPv6 extension headers the capture filter steps over


def bpf_program(walk: int = BPF_WALK) -> List[Tuple[int, int, int, int]]:
    """Classic BPF for an Ethernet packet socket: IPv4 protocol 112 or 51
    (fragments included: every fragment carries the protocol), IPv6 whose
    header chain reaches 112 or 51 within ``walk`` extension headers
    (hop-by-hop, routing, destination options, fragment), and frames still
    carrying a VLAN tag (the decoder judges those).  So a busy interface does
    not flood Python.  Frames queued before it is attached still pass the
    decoder's own check."""
    ins: List[Tuple[Any, ...]] = []  # (code, jt label, jf label, k); labels resolved below

    def op(code: int, k: int = 0, jt: Any = None, jf: Any = None) -> None:
        ins.append((code, jt, jf, k))

    def label(name: str) -> None:
        ins.append(("label", name))

    LDH, LDB, LDB_X, LDX_IMM, LD_MEM, ST = 0x28, 0x30, 0x50, 0x01, 0x60, 0x02
    ADD_K, LSH_K, ADD_X, TAX, JEQ, RET = 0x04, 0x64, 0x0C, 0x07, 0x15, 0x06
    op(LDH, 12)  # EtherType (a tag the kernel stripped is in the aux data)
    op(JEQ, 0x0800, "v4", None)
    op(JEQ, 0x86DD, "v6", None)
    for tpid in (0x8100, 0x88A8, 0x9100):
        op(JEQ, tpid, "accept", None)
    op(RET, 0)
    label("v4")
    op(LDB, 23)  # IPv4 protocol
    op(JEQ, PROTO_VRRP, "accept", None)
    op(JEQ, PROTO_AH, "accept", "drop")
    label("v6")
    op(LDB, 20)  # IPv6 next header
    op(LDX_IMM, 54)  # X: offset of the header it names
    for i in range(walk):
        op(JEQ, PROTO_VRRP, "accept", None)
        op(JEQ, PROTO_AH, "accept", None)
        for ext in IPV6_EXT[:-1]:
            op(JEQ, ext, f"step{i}", None)
        op(JEQ, IPV6_EXT[-1], f"step{i}", "drop")
        label(f"step{i}")
        op(LDB_X, 1)  # header length in 8-octet units, not counting the first (0 for a fragment header)
        op(ADD_K, 1)
        op(LSH_K, 3)
        op(ST, 0)  # M[0] = this header's size
        op(LDB_X, 0)  # its next header
        op(ST, 1)
        op(LD_MEM, 0)
        op(ADD_X)
        op(TAX)  # X += size
        op(LD_MEM, 1)
    op(JEQ, PROTO_VRRP, "accept", None)
    op(JEQ, PROTO_AH, "accept", "drop")
    label("accept")
    op(RET, 0x40000)
    label("drop")
    op(RET, 0)
    where: Dict[str, int] = {}
    pc = 0
    for item in ins:
        if item[0] == "label":
            where[item[1]] = pc
        else:
            pc += 1
    out: List[Tuple[int, int, int, int]] = []
    for item in ins:
        if item[0] == "label":
            continue
        code, jt, jf, k = item
        here = len(out)
        rel = [0 if t is None else where[t] - here - 1 for t in (jt, jf)]
        assert all(0 <= r <= 255 for r in rel), "BPF jump out of range"
        out.append((code, rel[0], rel[1], k))
    return out


_BPF = bpf_program()


def _attach_bpf(sock: socket.socket) -> None:
    prog = b"".join(struct.pack("HBBI", *ins) for ins in _BPF)
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HL", len(_BPF), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class _Capture:
    """The sockets of one listen, and what they heard."""

    def __init__(self, names: List[str], families: Sequence[str], group4: str, group6: str) -> None:
        self.names = names
        self.index: Dict[int, str] = {}
        for name in names:
            try:
                self.index[socket.if_nametoindex(name)] = name
            except OSError:
                raise EnvironmentProblem(f"no interface {name} in this network namespace") from None
        self.raw: List[Tuple[socket.socket, str, int]] = []
        self.wire_socks: List[Tuple[socket.socket, str]] = []
        self.tally = Tally()
        self.decoded = _DecodeCache()
        self.undecodable = 0
        self.packet_lost: Dict[str, int] = {name: 0 for name in names}
        self.raw_lost: Dict[str, int] = {}
        try:
            # raw first: a packet between the two openings may look delivered, never dropped
            for family in families:
                for proto in PROTOS:
                    self.raw.append((self._raw(family, proto, group4, group6), family, proto))
            for name in names:
                self.wire_socks.append((self._packet(name), name))
        except PermissionError as e:
            self.close()
            raise EnvironmentProblem(f"listening for VRRP needs root (CAP_NET_RAW): {e.strerror}") from None
        except OSError as e:
            self.close()
            raise EnvironmentProblem(f"cannot open the listening sockets: {e}") from None

    def _raw(self, family: str, proto: int, group4: str, group6: str) -> socket.socket:
        if family == "ipv4":
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
            s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            for ifindex in self.index:
                mreqn = socket.inet_aton(group4) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            for ifindex in self.index:
                mreq = ipaddress.IPv6Address(group6).packed + struct.pack("@I", ifindex)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        _rcvbuf(s)
        s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)  # the kernel's drop count rides on each packet
        s.setblocking(False)
        return s

    def _packet(self, name: str) -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            _rcvbuf(s)
            s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)  # the VLAN tag the kernel took off the frame
            s.bind((name, ETH_P_ALL))
            # The link type from the bound socket (sysfs would show the
            # namespace it was mounted in, not the one --netns entered).
            if s.getsockname()[3] == ARPHRD_ETHER:
                try:
                    _attach_bpf(s)
                except OSError:
                    pass  # the Python check below still filters
            _packet_drops(s)  # from here on: statistics reset on each read
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        return s

    def close(self) -> None:
        for s, *_ in self.raw + self.wire_socks:  # type: ignore[operator]
            s.close()

    def read_wire(self, s: socket.socket, name: str) -> None:
        while True:
            try:
                data, anc, _flags, addr = s.recvmsg(65535, 64)
            except BlockingIOError:
                return
            pkttype, hatype = addr[2], addr[3]
            if pkttype == PACKET_OTHERHOST:
                continue  # unicast for another host (promiscuous or bridged)
            try:
                if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
                    advert = self.decoded.get(frame_key(data), lambda: decode_frame(data))  # noqa: B023
                    vlan = _aux_vlan(anc) or frame_vlan(data)
                elif data[:1] and data[0] >> 4 in (4, 6):
                    advert, vlan = self.decoded.get(ip_key(data), lambda: decode_ip(data)), 0  # noqa: B023
                else:
                    continue
            except FragmentError as frag:
                if frag.proto in PROTOS and pkttype != PACKET_OUTGOING:
                    if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK) and (_aux_vlan(anc) or frame_vlan(data)):
                        self.undecodable += 1  # a fragment for another VLAN: not this interface's
                    else:
                        self.tally.add_fragment(name, frag)
                continue
            except DecodeError:
                if _carries_vrrp_or_ah(data, hatype):
                    self.undecodable += 1
                continue
            self.tally.add_wire(Heard(name, advert, pkttype == PACKET_OUTGOING, vlan))

    def read_raw(self, s: socket.socket, family: str, proto: int) -> None:
        while True:
            try:
                data, anc, _flags, addr = s.recvmsg(65535, 256)
            except BlockingIOError:
                return
            lost = _rxq_ovfl(anc)
            which = f"{family}/{proto}"
            if lost > self.raw_lost.get(which, 0):
                self.raw_lost[which] = lost  # cumulative since the socket was opened
            try:
                if family == "ipv4":
                    ifindex = _ipv4_ifindex(anc)
                    if ifindex not in self.index:
                        continue
                    advert = self.decoded.get(ip_key(data), lambda: decode_ip(data))  # noqa: B023
                else:
                    ifindex, dst, hops = _ipv6_info(anc)
                    if ifindex not in self.index:
                        continue
                    src = str(addr[0]).split("%")[0]
                    key6 = (data, src, dst, hops, proto) if len(data) <= DECODE_CACHE_BYTES else None
                    advert = self.decoded.get(key6, lambda: decode_vrrp(  # noqa: B023
                        data, "ipv6", str(ipaddress.IPv6Address(src)), dst, hops, proto))  # noqa: B023
            except (DecodeError, ValueError):
                continue  # the wire socket counts what cannot be decoded
            self.tally.add_delivered(Heard(self.index[ifindex], advert))

    def read_drops(self) -> None:
        """The sockets' own drops: the packet sockets' statistics (the kernel
        resets them on each read); for the raw sockets, SO_RXQ_OVFL rides only
        on packets queued after a drop, so the socket's drop counter
        (SO_MEMINFO) is read at the end as well."""
        for s, name in self.wire_socks:
            self.packet_lost[name] += _packet_drops(s)
        for s, family, proto in self.raw:
            key = f"{family}/{proto}"
            self.raw_lost[key] = max(self.raw_lost.get(key, 0), _socket_drops(s))

    def run(self, seconds: float) -> None:
        kinds: Dict[int, Tuple[str, ...]] = {}
        socks: Dict[int, socket.socket] = {}
        for s, name in self.wire_socks:
            kinds[s.fileno()], socks[s.fileno()] = ("wire", name), s
        for s, family, proto in self.raw:
            kinds[s.fileno()], socks[s.fileno()] = ("raw", family, str(proto)), s
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(socks.values()), [], [], left)
            for s in ready:
                self._read(s, kinds[s.fileno()])
        time.sleep(DRAIN)
        for s, name in self.wire_socks:  # wire first, then delivery: see the module docstring
            self.read_wire(s, name)
        for s, family, proto in self.raw:
            self.read_raw(s, family, proto)
        self.read_drops()

    def report(self, seconds: float, group4: str, group6: str, counters: Counters) -> ListenReport:
        overflow = {"packet": {k: v for k, v in self.packet_lost.items() if v},
                    "raw": {k: v for k, v in self.raw_lost.items() if v}}
        return self.tally.report(self.names, seconds, group4, group6, counters, self.undecodable, overflow,
                                 vlan_interfaces())

    def _read(self, s: socket.socket, kind: Tuple[str, ...]) -> None:
        if kind[0] == "wire":
            self.read_wire(s, kind[1])
        else:
            self.read_raw(s, kind[1], int(kind[2]))


class _DecodeCache:
    """Decode each distinct advert once (decoding costs ~40 us, a look-up ~1):
    the key holds every byte the decoder reads, so a hit is the same Advert."""

    def __init__(self) -> None:
        self.cache: Dict[Any, Advert] = {}

    def get(self, key: Any, decode: Callable[[], Advert]) -> Advert:
        advert = self.cache.get(key) if key is not None else None
        if advert is None:
            advert = decode()  # DecodeError (a fragment too) is never cached
            if key is not None:
                if len(self.cache) >= DECODE_CACHE:
                    self.cache.clear()
                self.cache[key] = advert
        return advert


def ip_key(packet: bytes) -> Optional[bytes]:
    """What the decoder reads of an IP packet: for IPv4 all but the ID and
    the header checksum, which change from one advert to the next."""
    if len(packet) > DECODE_CACHE_BYTES or len(packet) < 20:
        return None
    if packet[0] >> 4 == 4:
        return b"4" + packet[0:4] + packet[6:10] + packet[12:]
    return b"6" + packet


def frame_key(frame: bytes) -> Optional[bytes]:
    """:func:`ip_key` of an untagged Ethernet frame's packet (the MACs are
    never read); a tagged or other frame keys by all its bytes."""
    if len(frame) > DECODE_CACHE_BYTES + 14:
        return None
    if frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
        key = ip_key(frame[14:])
        return None if key is None else frame[12:14] + key
    return b"f" + frame


def _rcvbuf(s: socket.socket) -> None:
    """Large receive buffers: SO_RCVBUFFORCE as root, else what rmem_max allows."""
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_FORCE)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)


def _packet_drops(s: socket.socket) -> int:
    """tp_drops of a packet socket's PACKET_STATISTICS since the last read."""
    try:
        _packets, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    except (OSError, struct.error):
        return 0
    return int(drops)


def _socket_drops(s: socket.socket) -> int:
    """The kernel's count of packets dropped at this socket (full buffer)."""
    try:
        info = s.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * (SK_MEMINFO_DROPS + 1))
        return int(struct.unpack_from("@I", info, 4 * SK_MEMINFO_DROPS)[0])
    except (OSError, struct.error):
        return 0


def _aux_vlan(anc: List[Tuple[int, int, bytes]]) -> int:
    """The VLAN ID the kernel took off a frame (PACKET_AUXDATA), 0 if none."""
    for level, kind, data in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 20:
            status = struct.unpack("@I", data[:4])[0]
            tci = struct.unpack("@H", data[16:18])[0]
            if status & TP_STATUS_VLAN_VALID or tci:
                return int(tci & 0x0FFF)
    return 0


def _rxq_ovfl(anc: List[Tuple[int, int, bytes]]) -> int:
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(data) >= 4:
            return int(struct.unpack("@I", data[:4])[0])
    return 0


def vlan_interfaces(path: str = "/proc/net/vlan/config") -> Dict[Tuple[str, int], str]:
    """(parent, VLAN ID) -> the VLAN interface of this network namespace
    (8021q's table; none when the module is not loaded)."""
    out: Dict[Tuple[str, int], str] = {}
    try:
        with open(path) as f:
            for line in f:
                parts = [p.strip() for p in line.split("|")]
                if len(parts) == 3 and parts[1].isdigit():
                    out[(parts[2], int(parts[1]))] = parts[0]
    except OSError:
        pass
    return out


def _carries_vrrp_or_ah(data: bytes, hatype: int) -> bool:
    try:
        if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            data, _ = frame_payload(data)
    except DecodeError:
        return False
    if len(data) > 9 and data[0] >> 4 == 4:
        return data[9] in PROTOS
    if len(data) > 6 and data[0] >> 4 == 6:
        return data[6] in PROTOS
    return False


def _ipv4_ifindex(anc: List[Tuple[int, int, bytes]]) -> int:
    for level, kind, data in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 4:
            return int(struct.unpack("@i", data[:4])[0])
    return 0


def _ipv6_info(anc: List[Tuple[int, int, bytes]]) -> Tuple[int, str, int]:
    ifindex, dst, hops = 0, "::", -1
    for level, kind, data in anc:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_PKTINFO and len(data) >= 20:
            dst = str(ipaddress.IPv6Address(data[:16]))
            ifindex = int(struct.unpack("@I", data[16:20])[0])
        elif kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            hops = int(struct.unpack("@i", data[:4])[0])
    return ifindex, dst, hops
