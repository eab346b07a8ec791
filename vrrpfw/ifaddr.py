"""An interface's primary address and subnet, without a subprocess.

The verdict needs them: outbound adverts leave from this address, and an
inbound advert comes from a peer on the same subnet (VRRP peers share the
link), so a rule matching the source can often be judged without knowing
the peer.  ``SIOCGIFADDR``/``SIOCGIFNETMASK`` answer in microseconds.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from typing import NamedTuple, Optional

SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B


class IfAddr(NamedTuple):
    address: str
    network: str


def primary(iface: str) -> Optional[IfAddr]:
    """None where the interface does not exist or has no IPv4 address."""
    try:
        name = iface.encode()[:15]
    except UnicodeError:
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("256s", name)
            addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)[20:24])
            mask = socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFNETMASK, req)[20:24])
    except OSError:
        return None
    net = ipaddress.IPv4Network(f"{addr}/{mask}", strict=False)
    return IfAddr(addr, str(net))


# /proc/net/if_inet6 flags (IFA_F_*) of addresses that cannot be used yet or at all.
_UNUSABLE6 = 0x08 | 0x40  # DADFAILED, TENTATIVE
_SCOPE_LINK = 0x20


def primary6(iface: str, proc: str = "/proc/net/if_inet6") -> Optional[IfAddr]:
    """The interface's IPv6 link-local address (and fe80::/64): keepalived
    sends VRRPv3 over IPv6 from it unless unicast_src_ip says otherwise
    (RFC 5798 5.1.2.1).  None where there is none (IPv6 off, DAD pending)."""
    try:
        with open(proc, encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split()
        if len(words) != 6 or words[5] != iface:
            continue
        scope, flags = int(words[3], 16), int(words[4], 16)
        if scope != _SCOPE_LINK or flags & _UNUSABLE6:
            continue
        addr = ipaddress.IPv6Address(bytes.fromhex(words[0]))
        net = ipaddress.IPv6Network(f"{addr}/{int(words[2], 16)}", strict=False)
        return IfAddr(str(addr), str(net))
    return None


def primary_of(iface: str, family: str) -> Optional[IfAddr]:
    """:func:`primary` for ``ipv4``, :func:`primary6` for ``ipv6``."""
    return primary6(iface) if family == "ipv6" else primary(iface)
