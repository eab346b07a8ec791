"""Send and count real VRRP adverts between two namespaces.

``recv`` counts two things at once: frames that reached the interface (a
packet socket sees them before netfilter) and packets a raw IP socket for
the advert's protocol receives (only what netfilter let in).  ``send``
counts what the kernel refused with EPERM (an OUTPUT drop).  Each run
carries a random nonce so packets of other runs never count.

Every shape keepalived sends: IPv4 or IPv6 (the family follows the
address), to a multicast group (joined by the receiver) or to a unicast
address (the receiver's own: keepalived's ``unicast_peer``), as IP
protocol 112 or wrapped in an AH header (protocol 51, ``auth_type AH``),
VRRPv2 or v3, with keepalived's TTL / hop limit or another one (to test
rules that enforce 255).

The adverts are keepalived's, header field by header field (measured
against keepalived 2.2.7 by tests/integration/prove/test_advert_fidelity.py):

* IPv4: no options (IHL 5), TOS 0xc0 (keepalived's IP_TOS
  IPTOS_PREC_INTERNETCONTROL: DSCP CS6, ECN 0), DF clear (keepalived writes
  the header itself, IP_HDRINCL, with frag_off 0; a raw socket would set DF
  by default, so IP_MTU_DISCOVER is IP_PMTUDISC_DONT here), TTL 255,
  total length 20 + 8 + 4 per virtual address + 8 (VRRPv2's auth data;
  VRRPv3 has none), plus 24 with AH.
* IPv6: traffic class 0xc0 (keepalived's IPV6_TCLASS), the kernel's flow
  label, no extension headers, hop limit 255 to the multicast group, and
  for unicast the kernel's default hop limit (keepalived sets only
  IPV6_MULTICAST_HOPS: its unicast adverts leave with 64 on a default
  host), payload 8 + 16 per virtual address (VRRPv3).
* VRRP: version 2 over IPv4 (3 with ``--version 3``), 3 over IPv6; type
  advert, VRID 51, priority 100, one virtual address (``--addresses N``),
  interval 1 s, auth type 0 (2 behind AH), valid checksums.
* AH: next header 112, length 4 (24 bytes: HMAC-96), SPI the source
  address (as keepalived), a sequence number, a 12-byte ICV (zeros).

The run's nonce is the first virtual address (IPv4: its 4 bytes; IPv6:
fd00::/96 plus them), so the adverts stay the length keepalived's are.

    python -m vrrpfw.prove.traffic recv IFACE DST NONCE SECONDS EXPECTED [--done-on-stdin] [--proto 51]
    python -m vrrpfw.prove.traffic send IFACE DST NONCE COUNT [--source ADDR] [--interval S]
                                   [--proto 51] [--ttl N] [--version 3] [--addresses N]
                                   [--go-on-stdin]

NONCE is 8 hex digits.

``recv`` prints ``ready`` once it listens, then one JSON line.  With
``--done-on-stdin`` it stops a short grace period after the sender says
it is done (a line on stdin), rather than waiting out SECONDS: a blocked
path then costs a fraction of a second, not the full timeout.  Its clock
then starts when the sender is done, not when the receiver is ready: on a
busy machine starting the sender alone can take longer than SECONDS, and
adverts not yet sent are not adverts dropped.

``send`` with ``--go-on-stdin`` makes its socket, then waits for a line on
stdin before the first advert (EOF: it sends nothing and exits 1), so the
sender's interpreter can start while the receiver's does, and no advert
leaves before the receiver listens.

This half uses the standard library only and is run as a file
(``python -I -S adverts.py``) by :func:`vrrpfw.prove.traffic.exchange`,
which keeps each child's start-up to that of a bare interpreter.
"""

from __future__ import annotations

# _socket is socket's C half: the same socket type and functions, without
# the socket module's conversion of its constants to enums, which costs a
# child ~10 ms of CPU at start (prove starts eight children; json and typing,
# ~8 ms each, are left out for the same reason).
import _socket as socket
import errno
import select
import struct
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only (from __future__ import annotations)
    from typing import Any, Dict, List, Optional, Sequence, Tuple

PROTO = 112
AH = 51
ETH_P_ALL = 0x0003
GROUP = "224.0.0.18"
GROUP6 = "ff02::12"
TTL = 255  # what keepalived sends (IPv6 unicast aside) and RFC 5798 receivers require
TOS = 0xC0  # keepalived's IP_TOS / IPV6_TCLASS: IPTOS_PREC_INTERNETCONTROL (DSCP CS6)
VRID = 51
PRIORITY = 100
AUTH_AH = 2  # VRRPv2's auth type field behind an AH header
# Not in every Python's socket module (3.9 lacks some): Linux's values.
IPV6_JOIN_GROUP = getattr(socket, "IPV6_JOIN_GROUP", 20)
IPV6_MULTICAST_IF = getattr(socket, "IPV6_MULTICAST_IF", 17)
IPV6_MULTICAST_HOPS = getattr(socket, "IPV6_MULTICAST_HOPS", 18)
IPV6_MULTICAST_LOOP = getattr(socket, "IPV6_MULTICAST_LOOP", 19)
IPV6_UNICAST_HOPS = getattr(socket, "IPV6_UNICAST_HOPS", 16)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
IPV6_CHECKSUM = getattr(socket, "IPV6_CHECKSUM", 7)
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
# After the sender is done: how long stragglers may still take (veth delivers
# within microseconds; on a busy machine the softirq that delivers them can
# wait behind other work, so each advert that still arrives extends the wait
# by this much, up to SECONDS after the sender is done).
GRACE = 0.2
# With --done-on-stdin, how long the sender may take to start and finish
# (the same bound exchange() gives the sender's process) before SECONDS runs.
SENDER_BOUND = 30.0


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def nonce_address(nonce: bytes, family: str) -> bytes:
    """The first virtual address of a run's adverts: the nonce (4 bytes)
    itself over IPv4, fd00::/96 followed by it over IPv6."""
    return nonce if family == "ipv4" else b"\xfd" + bytes(11) + nonce


def virtual_addresses(nonce: bytes, family: str, count: int = 1) -> bytes:
    """``count`` packed addresses: the nonce's, then 192.0.2.101... (fd00::101...)."""
    out = nonce_address(nonce, family)
    for i in range(1, count):
        out += bytes([192, 0, 2, 100 + i]) if family == "ipv4" else b"\xfd" + bytes(13) + bytes([1, i])
    return out


def default_version(family: str) -> int:
    """keepalived's VRRP version: 2 over IPv4 (its default), 3 over IPv6 (the only one)."""
    return 3 if family == "ipv6" else 2


def advert(nonce: bytes, proto: int = PROTO, family: str = "ipv4", version: Optional[int] = None,
           count: int = 1, src: Optional[str] = None, dst: Optional[str] = None,
           seq: int = 1) -> bytes:
    """The advert keepalived sends for VRID 51, priority 100, interval 1 s
    and ``count`` virtual addresses (the first is the nonce's), from the
    VRRP header on; for ``proto`` 51 behind an AH header (next header 112,
    length 4, SPI the source address, sequence ``seq``, a 12-byte ICV).
    VRRPv2's checksum covers the message; VRRPv3's a pseudo-header too, so
    over IPv4 it needs ``src`` and ``dst`` (over IPv6 the kernel fills it:
    IPV6_CHECKSUM, as keepalived does)."""
    version = version or default_version(family)
    addrs = virtual_addresses(nonce, family, count)
    if version == 2:
        auth = AUTH_AH if proto == AH else 0
        msg = struct.pack("!BBBBBBH", 0x21, VRID, PRIORITY, count, auth, 1, 0) + addrs + bytes(8)
        msg = msg[:6] + struct.pack("!H", _checksum(msg)) + msg[8:]
    else:
        msg = struct.pack("!BBBBHH", 0x31, VRID, PRIORITY, count, 100, 0) + addrs
        if family == "ipv4" and src and dst:
            pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, PROTO, len(msg))
            msg = msg[:6] + struct.pack("!H", _checksum(pseudo + msg)) + msg[8:]
    if proto != AH:
        return msg
    spi = struct.unpack("!I", socket.inet_aton(src))[0] if src and family == "ipv4" else 1
    # payload length: AH length in 32-bit words minus 2 (24 bytes -> 4)
    return struct.pack("!BBHII", PROTO, 4, 0, spi, seq) + bytes(12) + msg


def is_v6(address: str) -> bool:
    return ":" in address


def is_multicast(address: str) -> bool:
    if is_v6(address):
        return address.lower().startswith("ff")
    return 224 <= int(address.split(".", maxsplit=1)[0]) <= 239


def carries(payload: bytes, proto: int, nonce: bytes, family: str) -> bool:
    """``payload`` (what follows the IP header) is a VRRP advert, behind AH
    for ``proto`` 51, whose first virtual address is ``nonce``'s."""
    if proto == AH:
        if len(payload) < 12 or payload[0] != PROTO:
            return False
        payload = payload[(payload[1] + 2) * 4:]
    want = nonce_address(nonce, family)
    return len(payload) >= 8 + len(want) and payload[0] & 0x0F == 1 and payload[8:8 + len(want)] == want


def on_wire(data: bytes, proto: int, nonce: bytes) -> bool:
    """An Ethernet frame of IPv4 or IPv6 carrying ``proto`` and our nonce.
    Outgoing frames show up on a packet socket too; the nonce tells runs apart."""
    if data[12:14] == b"\x08\x00":  # IPv4: protocol byte at 14 + 9
        return len(data) > 23 and data[23] == proto and carries(data[14 + (data[14] & 0x0F) * 4:], proto,
                                                                 nonce, "ipv4")
    if data[12:14] == b"\x86\xdd":  # IPv6: next header at 14 + 6
        return len(data) > 20 and data[20] == proto and carries(data[54:], proto, nonce, "ipv6")
    return False


def delivered(data: bytes, proto: int, nonce: bytes, family: str) -> bool:
    """What a raw socket of ``family`` read: IPv4's from the IP header on, IPv6's from the payload."""
    if family == "ipv4":
        return len(data) > 20 and carries(data[(data[0] & 0x0F) * 4:], proto, nonce, family)
    return carries(data, proto, nonce, family)


def _join(raw: socket.socket, group: str, ifindex: int) -> None:
    if is_v6(group):
        mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)
        raw.setsockopt(socket.IPPROTO_IPV6, IPV6_JOIN_GROUP, mreq)
    else:
        mreqn = socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)


def recv(iface: str, group: str, nonce: bytes, seconds: float, expected: int,
         done_on_stdin: bool = False, proto: int = PROTO) -> Dict[str, int]:
    """Count adverts to ``group`` (a multicast group, joined here, or this
    host's own unicast address) on the wire and delivered to a raw socket."""
    raw = socket.socket(socket.AF_INET6 if is_v6(group) else socket.AF_INET, socket.SOCK_RAW, proto)
    ifindex = socket.if_nametoindex(iface)
    if is_multicast(group):
        _join(raw, group, ifindex)
    wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    wire.bind((iface, 0))
    counts = {"wire": 0, "delivered": 0}
    watched: List[Any] = [raw, wire]
    if done_on_stdin:
        watched.append(sys.stdin)
    print("ready", flush=True)
    start = time.monotonic()
    deadline = start + seconds + (SENDER_BOUND if done_on_stdin else 0.0)
    cap, done = deadline, False
    while time.monotonic() < deadline:
        if counts["delivered"] >= expected and counts["wire"] >= expected:
            break
        ready, _, _ = select.select(watched, [], [], max(0.0, deadline - time.monotonic()))
        for s in ready:
            if s is sys.stdin:
                sys.stdin.readline()  # "done" or EOF: the sender has finished
                watched.remove(sys.stdin)
                done = True
                cap = time.monotonic() + seconds
                deadline = min(cap, time.monotonic() + GRACE)
                continue
            data = s.recv(65535)
            if s is wire:
                ours = on_wire(data, proto, nonce)
                counts["wire"] += ours
            else:
                ours = delivered(data, proto, nonce, "ipv6" if is_v6(group) else "ipv4")
                counts["delivered"] += ours
            if done and ours:  # a straggler: more may be queued behind it
                deadline = min(cap, time.monotonic() + GRACE)
    return counts


def _sender(iface: str, dst: str, source: Optional[str], proto: int,
            ttl: Optional[int]) -> Tuple[socket.socket, Optional[str]]:
    """A raw socket sending ``proto`` out of ``iface`` as keepalived's does
    (see the module's docstring), from ``source`` if given; and the source
    address its adverts will carry (None where it cannot be known).
    ``ttl`` None: keepalived's (255, the kernel's default for IPv6 unicast)."""
    ifindex = socket.if_nametoindex(iface)
    unicast = not is_multicast(dst)
    if is_v6(dst):
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
        if unicast:
            s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
        if source:
            s.bind((source, 0, 0, ifindex))
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, TOS)
        if proto == PROTO:  # the kernel fills VRRPv3's checksum (offset 6), as for keepalived
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 6)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_HOPS, TTL if ttl is None else ttl)
        if ttl is not None:  # keepalived leaves the unicast hop limit to the kernel
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0)
        return s, source
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    if unicast:
        s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
    if source:
        s.bind((source, 0))  # a given peer's address, as that peer would send
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, TOS)
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)  # DF clear, as keepalived's
    mreqn = socket.inet_aton("0.0.0.0") + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL if ttl is None else ttl)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL if ttl is None else ttl)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    if not source:  # the address the kernel will pick: AH's SPI and VRRPv3's checksum need it
        try:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
                if unicast:
                    probe.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
                probe.connect((dst, 9))
                source = probe.getsockname()[0]
            finally:
                probe.close()
        except OSError:
            source = None
    return s, source


def send(iface: str, group: str, nonce: bytes, count: int, source: Optional[str] = None,
         interval: float = 0.002, proto: int = PROTO, ttl: Optional[int] = None,
         version: Optional[int] = None, addresses: int = 1, go_on_stdin: bool = False) -> Dict[str, int]:
    """Send ``count`` adverts to ``group`` (multicast, or a unicast address);
    ``go_on_stdin``: not before a line arrives on stdin (EOF: SystemExit 1)."""
    s, src = _sender(iface, group, source, proto, ttl)
    if go_on_stdin and not sys.stdin.readline():
        raise SystemExit(1)  # the parent gave up before the receiver listened
    family = "ipv6" if is_v6(group) else "ipv4"
    # IPv6: the scope id picks the link for ff02::/fe80:: (ignored for global addresses).
    to = (group, 0, 0, socket.if_nametoindex(iface)) if is_v6(group) else (group, 0)
    sent = refused = 0
    for seq in range(1, count + 1):
        try:
            s.sendto(advert(nonce, proto, family, version, addresses, src, group, seq), to)
            sent += 1
        except PermissionError:  # OUTPUT dropped it: netfilter says EPERM
            refused += 1
        except OSError as e:  # IPv6: a drop after routing (netdev egress) is ENOBUFS
            if e.errno != errno.ENOBUFS:
                raise
            refused += 1
        time.sleep(interval)
    return {"sent": sent, "refused": refused}


def json_line(counts: Dict[str, int]) -> str:
    """``counts`` as ``json.dumps`` writes it (names are plain words, values ints)."""
    return "{" + ", ".join(f'"{k}": {int(v)}' for k, v in counts.items()) + "}"


def _option(argv: List[str], name: str) -> Optional[str]:
    if name in argv:
        i = argv.index(name)
        value = argv[i + 1]
        del argv[i:i + 2]
        return value
    return None


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    done = "--done-on-stdin" in args
    if done:
        args.remove("--done-on-stdin")
    go = "--go-on-stdin" in args
    if go:
        args.remove("--go-on-stdin")
    source = _option(args, "--source")
    interval = _option(args, "--interval")
    proto = int(_option(args, "--proto") or PROTO)
    ttl_text = _option(args, "--ttl")
    version_text = _option(args, "--version")
    addresses = int(_option(args, "--addresses") or 1)
    if len(args) < 5 or args[0] not in ("recv", "send"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, iface, group, nonce = args[0], args[1], args[2], bytes.fromhex(args[3])
    if mode == "recv":
        out = recv(iface, group, nonce, float(args[4]), int(args[5]), done, proto)
    else:
        out = send(iface, group, nonce, int(args[4]), source,
                   float(interval) if interval is not None else 0.002, proto,
                   int(ttl_text) if ttl_text else None, int(version_text) if version_text else None,
                   addresses, go)
    print(json_line(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
