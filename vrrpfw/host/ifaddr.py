"""An interface's primary address and subnet, without a subprocess.

The verdict needs them: outbound adverts leave from this address, and an
inbound advert comes from a peer on the same subnet (VRRP peers share the
link), so a rule matching the source can often be judged without knowing
the peer.  ``SIOCGIFADDR``/``SIOCGIFNETMASK`` answer in microseconds.
"""

from __future__ import annotations

# _socket is the C module socket.py wraps: the same calls, without socket.py
# turning its constants into enums at import (3-5 ms of every run on 3.13).
import _socket
import fcntl
import ipaddress
import struct
from contextlib import closing
from typing import Dict, List, NamedTuple, Optional, Tuple

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
        with closing(_socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)) as s:
            req = struct.pack("256s", name)
            addr = _socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)[20:24])
            mask = _socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFNETMASK, req)[20:24])
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


# rtnetlink: every IPv4 address of an interface (SIOCGIFADDR gives the primary only).
_NETLINK_ROUTE = 0
_RTM_GETADDR = 22
_RTM_NEWADDR = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_DONE, _NLMSG_ERROR = 3, 2
_IFA_LOCAL, _IFA_BROADCAST = 2, 4


def broadcasts(iface: str) -> List[Tuple[str, str]]:
    """(broadcast address, network) of each IPv4 address on ``iface``: the
    last address of each subnet of /30 or wider (where the kernel adds a
    broadcast route; /31 and /32 have none) and any broadcast address set
    explicitly (``ip addr add ... brd``).  Empty where the interface does not
    exist or netlink cannot be asked."""
    found: List[Tuple[str, str]] = []
    for msg, index in _addr_messages(iface):
        found.extend(_broadcast_of(msg, index))
    return list(dict.fromkeys(found))


def subnets(iface: str, family: str, proc: str = "/proc/net/if_inet6") -> List[str]:
    """Every subnet of ``iface``'s addresses of ``family`` (``ipv4``:
    primary and secondary addresses, from netlink; ``ipv6``: each usable
    address's prefix, link-local included), in order, once.  Where VRRP
    peers on the link send from.  Empty where the interface has none."""
    out: List[str] = []
    if family == "ipv6":
        try:
            with open(proc, encoding="ascii") as f:
                lines = f.read().splitlines()
        except OSError:
            return out
        for line in lines:
            words = line.split()
            if len(words) != 6 or words[5] != iface or int(words[4], 16) & _UNUSABLE6:
                continue
            addr = ipaddress.IPv6Address(bytes.fromhex(words[0]))
            out.append(str(ipaddress.IPv6Network(f"{addr}/{int(words[2], 16)}", strict=False)))
        return list(dict.fromkeys(out))
    for msg, index in _addr_messages(iface):
        net = _network_of(msg, index)
        if net is not None:
            out.append(net)
    return list(dict.fromkeys(out))


def _addr_messages(iface: str) -> List[Tuple[bytes, int]]:
    """The RTM_NEWADDR bodies of an IPv4 address dump, with ``iface``'s
    index; empty where it does not exist or netlink cannot be asked."""
    try:
        index = _socket.if_nametoindex(iface)
    except (OSError, ValueError, UnicodeError):
        return []
    found: List[Tuple[bytes, int]] = []
    try:
        with closing(_socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, _NETLINK_ROUTE)) as s:
            s.settimeout(2)
            body = struct.pack("BBBBI", _socket.AF_INET, 0, 0, 0, 0)
            s.send(struct.pack("=IHHII", 16 + len(body), _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
                   + body)
            done = False
            while not done:
                data = s.recv(65536)
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    if length < 16:
                        return found
                    if kind in (_NLMSG_DONE, _NLMSG_ERROR):
                        done = True
                        break
                    if kind == _RTM_NEWADDR:
                        found.append((data[offset + 16:offset + length], index))
                    offset += (length + 3) & ~3
    except OSError:
        return found
    return found


def _network_of(msg: bytes, index: int) -> Optional[str]:
    if len(msg) < 8:
        return None
    family, prefixlen, _flags, _scope, ifindex = struct.unpack_from("=BBBBI", msg)
    if family != _socket.AF_INET or ifindex != index:
        return None
    local = _attrs(msg).get(_IFA_LOCAL)
    if local is None or len(local) != 4:
        return None
    return str(ipaddress.IPv4Network(f"{_socket.inet_ntoa(local)}/{prefixlen}", strict=False))


def _attrs(msg: bytes) -> Dict[int, bytes]:
    attrs: Dict[int, bytes] = {}
    offset = 8
    while offset + 4 <= len(msg):
        length, kind = struct.unpack_from("=HH", msg, offset)
        if length < 4:
            break
        attrs[kind] = msg[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


def _broadcast_of(msg: bytes, index: int) -> List[Tuple[str, str]]:
    if len(msg) < 8:
        return []
    family, prefixlen, _flags, _scope, ifindex = struct.unpack_from("=BBBBI", msg)
    if family != _socket.AF_INET or ifindex != index:
        return []
    attrs = _attrs(msg)
    local = attrs.get(_IFA_LOCAL)
    if local is None or len(local) != 4:
        return []
    net = ipaddress.IPv4Network(f"{_socket.inet_ntoa(local)}/{prefixlen}", strict=False)
    out: List[Tuple[str, str]] = []
    if prefixlen <= 30:
        out.append((str(net.broadcast_address), str(net)))
    brd = attrs.get(_IFA_BROADCAST)
    if brd is not None and len(brd) == 4 and _socket.inet_ntoa(brd) != "0.0.0.0":
        out.append((_socket.inet_ntoa(brd), str(net)))
    return out
