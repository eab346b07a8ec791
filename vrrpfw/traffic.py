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
with TTL / hop limit 255 or another one (to test rules that enforce 255).

    python -m vrrpfw.traffic recv IFACE DST NONCE SECONDS EXPECTED [--done-on-stdin] [--proto 51]
    python -m vrrpfw.traffic send IFACE DST NONCE COUNT [--source ADDR] [--interval S]
                                   [--proto 51] [--ttl N]

``recv`` prints ``ready`` once it listens, then one JSON line.  With
``--done-on-stdin`` it stops a short grace period after the sender says
it is done (a line on stdin), rather than waiting out SECONDS: a blocked
path then costs a fraction of a second, not the full timeout.  Its clock
then starts when the sender is done, not when the receiver is ready: on a
busy machine starting the sender alone can take longer than SECONDS, and
adverts not yet sent are not adverts dropped.

The sender/receiver half uses the standard library only and is run as a
file (``python -I -S traffic.py``) by :func:`exchange`, which keeps each
child's start-up to that of a bare interpreter.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import struct
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

if TYPE_CHECKING:  # the child half runs as a bare file and imports nothing of ours
    from .netns import Namespace

PROTO = 112
AH = 51
ETH_P_ALL = 0x0003
GROUP = "224.0.0.18"
GROUP6 = "ff02::12"
TTL = 255  # what keepalived sends and RFC 5798 receivers require
# Not in every Python's socket module (3.9 lacks some): Linux's values.
IPV6_JOIN_GROUP = getattr(socket, "IPV6_JOIN_GROUP", 20)
IPV6_MULTICAST_IF = getattr(socket, "IPV6_MULTICAST_IF", 17)
IPV6_MULTICAST_HOPS = getattr(socket, "IPV6_MULTICAST_HOPS", 18)
IPV6_MULTICAST_LOOP = getattr(socket, "IPV6_MULTICAST_LOOP", 19)
IPV6_UNICAST_HOPS = getattr(socket, "IPV6_UNICAST_HOPS", 16)
# After the sender is done: how long stragglers may still take (veth delivers
# within microseconds; on a busy machine the softirq that delivers them can
# wait behind other work, so each advert that still arrives extends the wait
# by this much, up to SECONDS after the sender is done).
GRACE = 0.2
# With --done-on-stdin, how long the sender may take to start and finish
# (the same bound exchange() gives the sender's process) before SECONDS runs.
SENDER_BOUND = 30.0


def advert(nonce: bytes, proto: int = PROTO) -> bytes:
    """VRRPv2 header (version 2, advert, vrid 51, priority 100, 0 addrs),
    then the nonce; for ``proto`` 51 behind an AH header (next header 112,
    SPI 1, a sequence number and a 12-byte ICV, as keepalived's HMAC-96)."""
    vrrp = struct.pack("!BBBBBBH", 0x21, 51, 100, 0, 0, 1, 0) + nonce
    if proto != AH:
        return vrrp
    # payload length: AH length in 32-bit words minus 2 (24 bytes -> 4)
    return struct.pack("!BBHII", PROTO, 4, 0, 1, 1) + bytes(12) + vrrp


def is_v6(address: str) -> bool:
    return ":" in address


def is_multicast(address: str) -> bool:
    if is_v6(address):
        return address.lower().startswith("ff")
    return 224 <= int(address.split(".", maxsplit=1)[0]) <= 239


def on_wire(data: bytes, proto: int, nonce: bytes) -> bool:
    """An Ethernet frame of IPv4 or IPv6 carrying ``proto`` and our nonce.
    Outgoing frames show up on a packet socket too; the nonce tells runs apart."""
    if data[12:14] == b"\x08\x00":  # IPv4: protocol byte at 14 + 9
        return len(data) > 23 and data[23] == proto and nonce in data
    if data[12:14] == b"\x86\xdd":  # IPv6: next header at 14 + 6
        return len(data) > 20 and data[20] == proto and nonce in data
    return False


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
                ours = nonce in data
                counts["delivered"] += ours
            if done and ours:  # a straggler: more may be queued behind it
                deadline = min(cap, time.monotonic() + GRACE)
    return counts


def _sender(iface: str, dst: str, source: Optional[str], proto: int, ttl: int) -> socket.socket:
    """A raw socket sending ``proto`` out of ``iface`` with ``ttl`` (as
    TTL or hop limit, multicast or unicast alike), from ``source`` if given."""
    ifindex = socket.if_nametoindex(iface)
    if is_v6(dst):
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
        if source:
            s.bind((source, 0, 0, ifindex))
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ttl)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0)
        return s
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    if source:
        s.bind((source, 0))  # a given peer's address, as that peer would send
    mreqn = socket.inet_aton("0.0.0.0") + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return s


def send(iface: str, group: str, nonce: bytes, count: int, source: Optional[str] = None,
         interval: float = 0.002, proto: int = PROTO, ttl: int = TTL) -> Dict[str, int]:
    """Send ``count`` adverts to ``group`` (multicast, or a unicast address)."""
    s = _sender(iface, group, source, proto, ttl)
    # IPv6: the scope id picks the link for ff02::/fe80:: (ignored for global addresses).
    to = (group, 0, 0, socket.if_nametoindex(iface)) if is_v6(group) else (group, 0)
    sent = refused = 0
    for _ in range(count):
        try:
            s.sendto(advert(nonce, proto), to)
            sent += 1
        except PermissionError:  # OUTPUT dropped it: netfilter says EPERM
            refused += 1
        except OSError as e:  # IPv6: a drop after routing (netdev egress) is ENOBUFS
            if e.errno != errno.ENOBUFS:
                raise
            refused += 1
        time.sleep(interval)
    return {"sent": sent, "refused": refused}


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
    source = _option(args, "--source")
    interval = _option(args, "--interval")
    proto = int(_option(args, "--proto") or PROTO)
    ttl = int(_option(args, "--ttl") or TTL)
    if len(args) < 5 or args[0] not in ("recv", "send"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, iface, group, nonce = args[0], args[1], args[2], args[3].encode()
    if mode == "recv":
        out = recv(iface, group, nonce, float(args[4]), int(args[5]), done, proto)
    else:
        out = send(iface, group, nonce, int(args[4]), source,
                   float(interval) if interval is not None else 0.002, proto, ttl)
    print(json.dumps(out), flush=True)
    return 0


# --- the parent's half: runs in this process, children in the namespaces ---

# The child command: a bare interpreter running this file (not ``-m``, which
# would import the whole package first); -I keeps this directory off sys.path.
SCRIPT = os.path.abspath(__file__)
if SCRIPT.endswith((".pyc", ".pyo")):  # pragma: no cover - sourceless installs
    SCRIPT = SCRIPT[:-1]


def child_argv(*args: str) -> List[str]:
    return [sys.executable, "-I", "-S", SCRIPT, *args]


@dataclass
class Counts:
    """One exchange: what the sender sent and the kernel refused (EPERM),
    what reached the receiver's wire and what its raw socket got."""

    sent: int = 0
    refused: int = 0
    wire: int = 0
    delivered: int = 0

    def to_dict(self) -> Dict[str, int]:
        return asdict(self)


def exchange(sender: Namespace, send_if: str, receiver: Namespace, recv_if: str, count: int = 20,
             group: str = GROUP, seconds: float = 2.5, source: Optional[str] = None,
             proto: int = PROTO, ttl: int = TTL) -> Counts:
    """Send ``count`` adverts from ``sender`` out of ``send_if`` and count
    them at ``receiver``'s ``recv_if``.  ``group`` is the destination: a
    multicast group or the receiver's unicast address (IPv4 or IPv6);
    ``proto`` 112 or 51 (AH); ``ttl`` the TTL / hop limit sent.  ``seconds``
    caps the wait; normally the receiver stops as soon as everything is
    counted or the sender is done."""
    from .errors import EnvironmentProblem
    from .netns import first_line, release

    nonce = uuid.uuid4().hex
    shape = ["--proto", str(proto)] if proto != PROTO else []
    rx = receiver.popen(child_argv("recv", recv_if, group, nonce, str(seconds), str(count),
                                   "--done-on-stdin", *shape), stdin=True)
    try:
        assert rx.stdout is not None and rx.stdin is not None
        line = rx.stdout.readline()
        if line.strip() != "ready":
            err = rx.stderr.read() if rx.stderr is not None and rx.poll() is not None else ""
            raise EnvironmentProblem(f"advert receiver in {receiver.name} did not start: "
                                     f"{first_line(line + err)}")
        extra = ["--source", source] if source else []
        if ttl != TTL:
            extra += ["--ttl", str(ttl)]
        tx = sender.run(child_argv("send", send_if, group, nonce, str(count), *extra, *shape),
                        timeout=seconds + SENDER_BOUND)
        out, _ = rx.communicate("done\n", timeout=seconds + SENDER_BOUND)
    finally:
        release(rx)
    got = json.loads(out.strip().splitlines()[-1])
    got.update(json.loads(tx.stdout.strip().splitlines()[-1]))
    return Counts(**{k: int(got.get(k, 0)) for k in ("sent", "refused", "wire", "delivered")})


@dataclass(frozen=True)
class Shape:
    """What an advert looks like on the wire: the family, multicast to the
    family's group or unicast between the two ends' own addresses, IP
    protocol 112 or 51 (AH), and its TTL / hop limit.  The default is
    today's textbook advert: IPv4 multicast, protocol 112, TTL 255.

    Its text form (``name``/``parse``) is what corpus cases declare:
    ``ipv4``, ``ipv6``, ``ipv4 ah``, ``ipv6 unicast``, ``ipv4 ttl 1``."""

    family: str = "ipv4"
    proto: int = PROTO
    unicast: bool = False
    ttl: int = TTL

    @property
    def name(self) -> str:
        words = [self.family]
        if self.unicast:
            words.append("unicast")
        if self.proto == AH:
            words.append("ah")
        if self.ttl != TTL:
            words += ["ttl", str(self.ttl)]
        return " ".join(words)

    @property
    def group(self) -> str:
        return GROUP6 if self.family == "ipv6" else GROUP

    @classmethod
    def parse(cls, text: str) -> Shape:
        """The inverse of ``name``; ValueError on anything else."""
        words = text.split()
        if not words or words[0] not in ("ipv4", "ipv6"):
            raise ValueError(f"shape {text!r} must start with ipv4 or ipv6")
        family, rest = words[0], words[1:]
        unicast = rest[:1] == ["unicast"]
        rest = rest[1:] if unicast else rest
        proto = AH if rest[:1] == ["ah"] else PROTO
        rest = rest[1:] if proto == AH else rest
        ttl = TTL
        if rest[:1] == ["ttl"] and len(rest) == 2 and rest[1].isdigit() and 1 <= int(rest[1]) <= 255:
            ttl, rest = int(rest[1]), rest[2:]
        if rest:
            raise ValueError(f"shape {text!r}: unknown words {rest}")
        if family == "ipv6" and proto == AH:
            raise ValueError("AH exists only over IPv4 (keepalived refuses it with IPv6)")
        return cls(family, proto, unicast, ttl)


@dataclass
class TwoWay:
    """Both directions at once.  ``inbound`` is keyed by the peer's source
    address ("" for the peer namespace's own primary address)."""

    inbound: Dict[str, Counts] = field(default_factory=dict)
    outbound: Counts = field(default_factory=Counts)


def both_ways(host: Namespace, host_if: str, peer: Namespace, peer_if: str, count: int = 20,
              group: str = GROUP, seconds: float = 2.5, sources: Sequence[str] = (),
              proto: int = PROTO, ttl: int = TTL, inbound_dst: Optional[str] = None,
              outbound_dst: Optional[str] = None, inbound: bool = True,
              outbound: bool = True) -> TwoWay:
    """Inbound (peer -> host: the host's raw socket, i.e. what netfilter let
    in) from each source, and outbound (host -> peer: the peer's *wire*,
    since an egress drop need not show as EPERM), all concurrently.  Each
    exchange has its own nonce, so they cannot count each other's adverts.
    Adverts go to ``group``, unless ``inbound_dst`` / ``outbound_dst`` name
    the receiving end's unicast address; both directions carry ``proto``
    and ``ttl``.  ``inbound``/``outbound`` False: that direction is not
    measured (its Counts stay empty)."""
    srcs = (list(sources) or [""]) if inbound else []
    with ThreadPoolExecutor(max_workers=len(srcs) + 1) as pool:
        ins = {s: pool.submit(exchange, peer, peer_if, host, host_if, count, inbound_dst or group,
                              seconds, s or None, proto, ttl)
               for s in srcs}
        out = pool.submit(exchange, host, host_if, peer, peer_if, count, outbound_dst or group, seconds,
                          None, proto, ttl) if outbound else None
        return TwoWay({s: f.result() for s, f in ins.items()}, out.result() if out else Counts())

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
