"""An interface's primary IPv4 address and subnet, without a subprocess.

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
