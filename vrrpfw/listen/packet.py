"""Decode (and, for tests and replicas, encode) VRRP adverts.  Pure: no sockets.

Why a decoder of its own: ``vrrpfw check --listen`` must say *which* router
(VRID, source, priority, virtual addresses) it heard and whether the advert
is one keepalived would accept (TTL 255, good checksum), and it must match a
packet seen on the wire with the same packet delivered to a raw socket.  So
every field keepalived looks at is decoded here, and :attr:`Advert.digest`
identifies the bytes from the VRRP (or AH) header on, which are the same on
the wire and behind a raw socket.

Formats: VRRPv2 (RFC 3768: seconds, auth type, 8 bytes of auth data), VRRPv3
(RFC 5798: centiseconds, checksum over a pseudo-header), both optionally
behind an AH header (IP protocol 51, RFC 2402: keepalived's ``auth_type AH``).
Any malformed input raises :class:`DecodeError`, never IndexError or
struct.error, because the listener feeds it whatever the wire carries.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from typing import Optional, Sequence, Tuple

from vrrpfw.record import record

PROTO_VRRP = 112
PROTO_AH = 51
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
# IPv6 extension headers we step over to reach AH or VRRP (hop-by-hop,
# routing, destination options); a fragment header (44) raises
# FragmentError: keepalived never fragments, and a fragment cannot be
# decoded alone.  The walk is bounded: at most IPV6_MAX_EXTENSIONS headers.
IPV6_SKIPPABLE = (0, 43, 60)
IPV6_FRAGMENT = 44
IPV6_MAX_EXTENSIONS = 8
AUTH_NAMES = {0: "none", 1: "pass", 2: "ah"}


class DecodeError(ValueError):
    """Not a VRRP advert we can read (truncated, another protocol, garbage)."""


class FragmentError(DecodeError):
    """A fragment of an IP datagram: it cannot be decoded alone, but the
    listener counts it (the kernel reassembles fragments before a raw socket
    sees them).  ``proto`` is the protocol of the fragmented datagram,
    ``first`` whether this fragment starts it (offset 0), and ``vrid`` the
    VRRP VRID when a first fragment shows it (else None)."""

    def __init__(self, family: str, src: str, dst: str, ttl: int, proto: int, ident: int, first: bool,
                 vrid: Optional[int] = None) -> None:
        super().__init__(f"{family} fragment of protocol {proto}")
        self.family, self.src, self.dst, self.ttl, self.proto = family, src, dst, ttl, proto
        self.ident, self.first, self.vrid = ident, first, vrid


def _first_vrid(payload: bytes, proto: int) -> Optional[int]:
    """The VRID in the start of a fragmented VRRP (or AH-wrapped) datagram."""
    if proto == PROTO_AH and len(payload) >= 2 and payload[0] == PROTO_VRRP:
        payload = payload[(payload[1] + 2) * 4:]
        proto = PROTO_VRRP
    if proto == PROTO_VRRP and len(payload) >= 2 and payload[0] & 0x0F == 1:
        return payload[1]
    return None


@record(frozen=True)
class Advert:
    """One decoded advert.

    ``proto`` is the IP protocol that carried it: 112, or 51 when wrapped in
    AH.  ``auth`` is ``none``, ``pass`` or ``ah`` (v2's auth type field, or
    ``ah`` whenever AH wraps it; VRRPv3 has no authentication: ``none``),
    ``auth_type`` the raw v2 field (0 for v3).  ``interval`` is in seconds
    (v3's centiseconds divided by 100).  ``digest`` hashes the bytes from the
    AH or VRRP header on, so a wire copy and a delivered copy match."""

    family: str  # "ipv4" or "ipv6"
    src: str
    dst: str
    ttl: int  # IPv4 TTL or IPv6 hop limit; keepalived wants 255
    proto: int
    version: int
    vrid: int
    priority: int
    auth_type: int
    auth: str
    interval: float
    addresses: Tuple[str, ...]
    checksum_ok: bool
    digest: str = ""


def checksum16(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``; 0 over a packet whose
    checksum field is right."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(family: str, src: str, dst: str, length: int) -> bytes:
    s = ipaddress.ip_address(src).packed
    d = ipaddress.ip_address(dst).packed
    if family == "ipv4":
        return s + d + struct.pack("!BBH", 0, PROTO_VRRP, length)
    return s + d + struct.pack("!IxxxB", length, PROTO_VRRP)


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:16]


def _need(data: bytes, n: int, what: str) -> None:
    if len(data) < n:
        raise DecodeError(f"{what} truncated: {len(data)} bytes, need {n}")


def _strip_ah(payload: bytes) -> Tuple[bytes, int]:
    """The VRRP message behind an AH header, and the header's next protocol."""
    _need(payload, 12, "AH header")
    nxt, plen = payload[0], payload[1]
    size = (plen + 2) * 4
    if size < 12:
        raise DecodeError(f"AH header length {size} is shorter than its fixed part")
    _need(payload, size, "AH header")
    return payload[size:], nxt


def decode_vrrp(payload: bytes, family: str, src: str, dst: str, ttl: int,
                proto: int = PROTO_VRRP) -> Advert:
    """Decode what follows the IP header (and its IPv6 extension headers):
    a VRRP message, or AH then VRRP when ``proto`` is 51.  This is what an
    IPv6 raw socket delivers; src, dst and hop limit come from elsewhere."""
    if family not in ("ipv4", "ipv6"):
        raise DecodeError(f"unknown family {family!r}")
    digest = _digest(payload)
    message = payload
    if proto == PROTO_AH:
        message, nxt = _strip_ah(payload)
        if nxt != PROTO_VRRP:
            raise DecodeError(f"AH carries protocol {nxt}, not VRRP")
    elif proto != PROTO_VRRP:
        raise DecodeError(f"IP protocol {proto} is neither VRRP (112) nor AH (51)")
    _need(message, 8, "VRRP header")
    version, kind = message[0] >> 4, message[0] & 0x0F
    if kind != 1:
        raise DecodeError(f"VRRP type {kind} is not an advertisement")
    vrid, priority, count = message[1], message[2], message[3]
    size = 4 if family == "ipv4" else 16
    if version == 2:
        auth_type, interval = message[4], float(message[5])
        end = 8 + count * size
        _need(message, end, "VRRPv2 addresses")
        body = message[:end + 8] if len(message) >= end + 8 else message
        checksum_ok = checksum16(body) == 0
        auth = "ah" if proto == PROTO_AH else AUTH_NAMES.get(auth_type, f"type-{auth_type}")
    elif version == 3:
        auth_type = 0
        interval = (struct.unpack("!H", message[4:6])[0] & 0x0FFF) / 100.0
        end = 8 + count * size
        _need(message, end, "VRRPv3 addresses")
        checksum_ok = checksum16(_pseudo_header(family, src, dst, end) + message[:end]) == 0
        auth = "ah" if proto == PROTO_AH else "none"
    else:
        raise DecodeError(f"VRRP version {version} is neither 2 nor 3")
    addrs = tuple(str(ipaddress.ip_address(message[i:i + size])) for i in range(8, end, size))
    return Advert(family, src, dst, ttl, proto, version, vrid, priority, auth_type, auth, interval,
                  addrs, checksum_ok, digest)


def decode_ipv4(packet: bytes) -> Advert:
    """Decode an IPv4 packet from its IP header on (what an IPv4 raw socket
    and a packet socket past the link header deliver)."""
    _need(packet, 20, "IPv4 header")
    if packet[0] >> 4 != 4:
        raise DecodeError(f"IP version {packet[0] >> 4}, expected 4")
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20:
        raise DecodeError(f"IPv4 header length {ihl} is below 20")
    _need(packet, ihl, "IPv4 header")
    total = struct.unpack("!H", packet[2:4])[0]
    if total < ihl:
        raise DecodeError(f"IPv4 total length {total} is shorter than its header")
    _need(packet, total, "IPv4 packet")
    src = str(ipaddress.IPv4Address(packet[12:16]))
    dst = str(ipaddress.IPv4Address(packet[16:20]))
    frag = struct.unpack("!H", packet[6:8])[0]
    if frag & 0x3FFF:
        first = frag & 0x1FFF == 0
        ident = struct.unpack("!H", packet[4:6])[0]
        vrid = _first_vrid(packet[ihl:total], packet[9]) if first else None
        raise FragmentError("ipv4", src, dst, packet[8], packet[9], ident, first, vrid)
    return decode_vrrp(packet[ihl:total], "ipv4", src, dst, packet[8], packet[9])


def ipv6_payload(packet: bytes) -> Tuple[bytes, int]:
    """Step over an IPv6 header and its hop-by-hop, routing and destination
    options headers (at most IPV6_MAX_EXTENSIONS): the payload from the
    first other header, and its protocol.  A fragment raises FragmentError."""
    _need(packet, 40, "IPv6 header")
    if packet[0] >> 4 != 6:
        raise DecodeError(f"IP version {packet[0] >> 4}, expected 6")
    length = struct.unpack("!H", packet[4:6])[0]
    _need(packet, 40 + length, "IPv6 packet")
    payload, nxt = packet[40:40 + length], packet[6]
    for _ in range(IPV6_MAX_EXTENSIONS + 1):
        if nxt == IPV6_FRAGMENT:
            _need(payload, 8, "IPv6 fragment header")
            offset_flags, ident = struct.unpack("!HI", payload[2:8])
            first = offset_flags >> 3 == 0
            proto = payload[0]
            raise FragmentError("ipv6", str(ipaddress.IPv6Address(packet[8:24])),
                                str(ipaddress.IPv6Address(packet[24:40])), packet[7], proto, ident, first,
                                _first_vrid(payload[8:], proto) if first else None)
        if nxt not in IPV6_SKIPPABLE:
            return payload, nxt
        _need(payload, 8, "IPv6 extension header")
        size = (payload[1] + 1) * 8
        _need(payload, size, "IPv6 extension header")
        nxt, payload = payload[0], payload[size:]
    raise DecodeError(f"more than {IPV6_MAX_EXTENSIONS} IPv6 extension headers")


def decode_ipv6(packet: bytes) -> Advert:
    """Decode an IPv6 packet from its IP header on."""
    payload, nxt = ipv6_payload(packet)
    src = str(ipaddress.IPv6Address(packet[8:24]))
    dst = str(ipaddress.IPv6Address(packet[24:40]))
    return decode_vrrp(payload, "ipv6", src, dst, packet[7], nxt)


def decode_ip(packet: bytes) -> Advert:
    """Decode an IPv4 or IPv6 packet, whichever its version nibble says."""
    if not packet:
        raise DecodeError("empty packet")
    version = packet[0] >> 4
    if version == 4:
        return decode_ipv4(packet)
    if version == 6:
        return decode_ipv6(packet)
    raise DecodeError(f"IP version {version} is neither 4 nor 6")


def frame_payload(frame: bytes) -> Tuple[bytes, int]:
    """The network-layer bytes of an Ethernet frame and their EtherType,
    stepping over 802.1Q / 802.1ad tags."""
    _need(frame, 14, "Ethernet header")
    ethertype, offset = struct.unpack("!H", frame[12:14])[0], 14
    while ethertype in VLAN_TPIDS:
        _need(frame, offset + 4, "VLAN tag")
        ethertype = struct.unpack("!H", frame[offset + 2:offset + 4])[0]
        offset += 4
    return frame[offset:], ethertype


def frame_vlan(frame: bytes) -> int:
    """The VLAN ID of an Ethernet frame's outer 802.1Q / 802.1ad tag, 0 when
    it has none (or a priority tag: VLAN 0 is the untagged LAN)."""
    if len(frame) >= 16 and struct.unpack("!H", frame[12:14])[0] in VLAN_TPIDS:
        return int(struct.unpack("!H", frame[14:16])[0] & 0x0FFF)
    return 0


def decode_frame(frame: bytes) -> Advert:
    """Decode an Ethernet frame (as a SOCK_RAW packet socket reads it),
    possibly VLAN-tagged, carrying a VRRP advert."""
    payload, ethertype = frame_payload(frame)
    if ethertype == ETH_P_IP:
        return decode_ipv4(payload)
    if ethertype == ETH_P_IPV6:
        return decode_ipv6(payload)
    raise DecodeError(f"EtherType 0x{ethertype:04x} is neither IPv4 nor IPv6")


# --- encoding: for tests and namespace replicas, never sent by the listener ---

def encode_vrrp(version: int, vrid: int, priority: int, addresses: Sequence[str], interval: float = 1.0,
                family: str = "ipv4", src: Optional[str] = None, dst: Optional[str] = None,
                auth_type: int = 0, auth_data: bytes = b"") -> bytes:
    """A VRRP advert message with a correct checksum.  VRRPv3's checksum
    covers a pseudo-header, so it needs ``src`` and ``dst``; without them
    the checksum field is left 0 (for a socket with IPV6_CHECKSUM to fill)."""
    packed = b"".join(ipaddress.ip_address(a).packed for a in addresses)
    if version == 2:
        head = struct.pack("!BBBBBBH", 0x21, vrid, priority, len(addresses), auth_type, int(interval), 0)
        msg = head + packed + auth_data.ljust(8, b"\0")[:8]
        return msg[:6] + struct.pack("!H", checksum16(msg)) + msg[8:]
    centis = int(round(interval * 100)) & 0x0FFF
    head = struct.pack("!BBBBHH", 0x31, vrid, priority, len(addresses), centis, 0)
    msg = head + packed
    if src is None or dst is None:
        return msg
    csum = checksum16(_pseudo_header(family, src, dst, len(msg)) + msg)
    return msg[:6] + struct.pack("!H", csum) + msg[8:]


def encode_ah(message: bytes, spi: int = 0x1234, seq: int = 1, icv: bytes = b"\0" * 12) -> bytes:
    """``message`` behind an RFC 2402 AH header (next header VRRP)."""
    size = 12 + len(icv)
    return struct.pack("!BBHII", PROTO_VRRP, size // 4 - 2, 0, spi, seq) + icv + message


def encode_ipv4(payload: bytes, src: str, dst: str, ttl: int = 255, proto: int = PROTO_VRRP) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, proto, 0,
                       ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return head[:10] + struct.pack("!H", checksum16(head)) + head[12:] + payload


def encode_ipv6(payload: bytes, src: str, dst: str, hop_limit: int = 255, proto: int = PROTO_VRRP) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), proto, hop_limit,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) + payload


def encode_frame(packet: bytes, vlans: Sequence[int] = ()) -> bytes:
    """``packet`` in an Ethernet frame (multicast MAC, made-up source), with
    802.1Q tags for ``vlans``."""
    ethertype = ETH_P_IPV6 if packet[:1] and packet[0] >> 4 == 6 else ETH_P_IP
    tags = b"".join(struct.pack("!HH", 0x8100, v) for v in vlans)
    return b"\x01\x00\x5e\x00\x00\x12" + b"\x02\x00\x00\x00\x00\x01" + tags + struct.pack("!H", ethertype) \
        + packet
