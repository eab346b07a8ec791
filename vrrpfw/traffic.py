"""Send and count real VRRP adverts between two namespaces.

``recv`` counts two things at once: frames that reached the interface (a
packet socket sees them before netfilter) and packets a raw IP socket for
protocol 112 receives (only what netfilter let in).  ``send`` counts what
the kernel refused with EPERM (an OUTPUT drop).  Each run carries a random
nonce so packets of other runs never count.

    python -m vrrpfw.traffic recv IFACE GROUP NONCE SECONDS EXPECTED [--done-on-stdin]
    python -m vrrpfw.traffic send IFACE GROUP NONCE COUNT [--source ADDR] [--interval S]

``recv`` prints ``ready`` once it listens, then one JSON line.  With
``--done-on-stdin`` it stops a short grace period after the sender says
it is done (a line on stdin), rather than waiting out SECONDS: a blocked
path then costs a fraction of a second, not the full timeout.

The sender/receiver half uses the standard library only and is run as a
file (``python -I -S traffic.py``) by :func:`exchange`, which keeps each
child's start-up to that of a bare interpreter.
"""

from __future__ import annotations

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
ETH_P_ALL = 0x0003
GROUP = "224.0.0.18"
# After the sender is done: how long stragglers may still take (veth delivers
# within microseconds; this covers a busy machine).
GRACE = 0.2


def advert(nonce: bytes) -> bytes:
    # VRRPv2 header (version 2, advert, vrid 51, priority 100, 0 addrs), then the nonce.
    return struct.pack("!BBBBBBH", 0x21, 51, 100, 0, 0, 1, 0) + nonce


def recv(iface: str, group: str, nonce: bytes, seconds: float, expected: int,
         done_on_stdin: bool = False) -> Dict[str, int]:
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO)
    ifindex = socket.if_nametoindex(iface)
    mreqn = socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    wire.bind((iface, 0))
    counts = {"wire": 0, "delivered": 0}
    watched: List[Any] = [raw, wire]
    if done_on_stdin:
        watched.append(sys.stdin)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if counts["delivered"] >= expected and counts["wire"] >= expected:
            break
        ready, _, _ = select.select(watched, [], [], max(0.0, deadline - time.monotonic()))
        for s in ready:
            if s is sys.stdin:
                sys.stdin.readline()  # "done" or EOF: the sender has finished
                watched.remove(sys.stdin)
                deadline = min(deadline, time.monotonic() + GRACE)
                continue
            data = s.recv(65535)
            if s is wire:
                # Ethernet (14) + IPv4: protocol byte at offset 14 + 9.  Outgoing
                # frames show up here too; the nonce tells them apart.
                if len(data) > 23 and data[12:14] == b"\x08\x00" and data[23] == PROTO and nonce in data:
                    counts["wire"] += 1
            elif nonce in data:
                counts["delivered"] += 1
    return counts


def send(iface: str, group: str, nonce: bytes, count: int, source: Optional[str] = None,
         interval: float = 0.002) -> Dict[str, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO)
    if source:
        s.bind((source, 0))  # a given peer's address, as that peer would send
    ifindex = socket.if_nametoindex(iface)
    mreqn = socket.inet_aton("0.0.0.0") + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sent = refused = 0
    for _ in range(count):
        try:
            s.sendto(advert(nonce), (group, 0))
            sent += 1
        except PermissionError:  # OUTPUT dropped it: netfilter says EPERM
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
    if len(args) < 5 or args[0] not in ("recv", "send"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, iface, group, nonce = args[0], args[1], args[2], args[3].encode()
    if mode == "recv":
        out = recv(iface, group, nonce, float(args[4]), int(args[5]), done)
    else:
        out = send(iface, group, nonce, int(args[4]), source,
                   float(interval) if interval is not None else 0.002)
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
             group: str = GROUP, seconds: float = 2.5, source: Optional[str] = None) -> Counts:
    """Send ``count`` adverts from ``sender`` out of ``send_if`` and count
    them at ``receiver``'s ``recv_if``.  ``seconds`` caps the wait; normally
    the receiver stops as soon as everything is counted or the sender is done."""
    from .errors import EnvironmentProblem
    from .netns import first_line, release

    nonce = uuid.uuid4().hex
    rx = receiver.popen(child_argv("recv", recv_if, group, nonce, str(seconds), str(count),
                                   "--done-on-stdin"), stdin=True)
    try:
        assert rx.stdout is not None and rx.stdin is not None
        line = rx.stdout.readline()
        if line.strip() != "ready":
            err = rx.stderr.read() if rx.stderr is not None and rx.poll() is not None else ""
            raise EnvironmentProblem(f"advert receiver in {receiver.name} did not start: "
                                     f"{first_line(line + err)}")
        extra = ["--source", source] if source else []
        tx = sender.run(child_argv("send", send_if, group, nonce, str(count), *extra),
                        timeout=seconds + 30)
        out, _ = rx.communicate("done\n", timeout=seconds + 30)
    finally:
        release(rx)
    got = json.loads(out.strip().splitlines()[-1])
    got.update(json.loads(tx.stdout.strip().splitlines()[-1]))
    return Counts(**{k: int(got.get(k, 0)) for k in ("sent", "refused", "wire", "delivered")})


@dataclass
class TwoWay:
    """Both directions at once.  ``inbound`` is keyed by the peer's source
    address ("" for the peer namespace's own primary address)."""

    inbound: Dict[str, Counts] = field(default_factory=dict)
    outbound: Counts = field(default_factory=Counts)


def both_ways(host: Namespace, host_if: str, peer: Namespace, peer_if: str, count: int = 20,
              group: str = GROUP, seconds: float = 2.5, sources: Sequence[str] = ()) -> TwoWay:
    """Inbound (peer -> host: the host's raw socket, i.e. what netfilter let
    in) from each source, and outbound (host -> peer: the peer's *wire*,
    since an egress drop need not show as EPERM), all concurrently.  Each
    exchange has its own nonce, so they cannot count each other's adverts."""
    srcs = list(sources) or [""]
    with ThreadPoolExecutor(max_workers=len(srcs) + 1) as pool:
        ins = {s: pool.submit(exchange, peer, peer_if, host, host_if, count, group, seconds, s or None)
               for s in srcs}
        out = pool.submit(exchange, host, host_if, peer, peer_if, count, group, seconds)
        return TwoWay({s: f.result() for s, f in ins.items()}, out.result())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
