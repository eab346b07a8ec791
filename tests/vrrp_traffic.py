"""Send and count VRRP adverts; run inside a namespace by the tests.

``recv`` counts two things at once: frames that reached the interface (a
packet socket sees them before netfilter) and packets a raw IP socket for
protocol 112 receives (only what netfilter let in).  Each run carries a
random nonce so packets from other runs never count.

    python vrrp_traffic.py recv IFACE GROUP NONCE SECONDS EXPECTED
    python vrrp_traffic.py send IFACE GROUP NONCE COUNT
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

PROTO = 112
ETH_P_ALL = 0x0003


def advert(nonce: bytes) -> bytes:
    # VRRPv2 header (version 2, advert, vrid 51, priority 100, 0 addrs), then the nonce.
    return struct.pack("!BBBBBBH", 0x21, 51, 100, 0, 0, 1, 0) + nonce


def recv(iface: str, group: str, nonce: bytes, seconds: float, expected: int) -> dict:
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO)
    ifindex = socket.if_nametoindex(iface)
    mreqn = socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    wire.bind((iface, 0))
    counts = {"wire": 0, "delivered": 0}
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if counts["delivered"] >= expected and counts["wire"] >= expected:
            break
        ready, _, _ = select.select([raw, wire], [], [], max(0.0, deadline - time.monotonic()))
        for s in ready:
            data = s.recv(65535)
            if s is wire:
                # Ethernet (14) + IPv4: protocol byte at offset 14 + 9.
                if len(data) > 23 and data[12:14] == b"\x08\x00" and data[23] == PROTO and nonce in data:
                    counts["wire"] += 1
            elif nonce in data:
                counts["delivered"] += 1
    return counts


def send(iface: str, group: str, nonce: bytes, count: int) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO)
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
        time.sleep(0.01)
    return {"sent": sent, "refused": refused}


def main(argv: list) -> None:
    mode, iface, group, nonce = argv[0], argv[1], argv[2], argv[3].encode()
    if mode == "recv":
        out = recv(iface, group, nonce, float(argv[4]), int(argv[5]))
    else:
        out = send(iface, group, nonce, int(argv[4]))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
