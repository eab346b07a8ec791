"""What VRRP needs from a firewall, independent of any firewall.

keepalived sends adverts as IP protocol 112 to a multicast group (224.0.0.18
unless ``vrrp_mcast_group4`` says otherwise) out of one interface, and must
receive its peer's on the same interface.  A spec names those interfaces and
the group; :func:`rules_for` turns it into the abstract rules every backend
must make true.  All validation lives here so that bad input is refused
before any backend is imported, let alone touched.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from .errors import InputError

VRRP_PROTO = 112
DEFAULT_GROUP4 = "224.0.0.18"
# Every rule vrrpfw adds carries this comment; close removes only such rules.
COMMENT = "vrrpfw"
IFNAMSIZ = 16  # kernel limit including the trailing NUL


class Family(str, enum.Enum):
    IPV4 = "ipv4"


class Direction(str, enum.Enum):
    IN = "in"
    OUT = "out"

    @property
    def chain(self) -> str:
        """The iptables/nft base chain this direction is filtered in."""
        return "INPUT" if self is Direction.IN else "OUTPUT"


@dataclass(frozen=True)
class VrrpSpec:
    """Validated request: allow VRRP on these interfaces for this group."""

    interfaces: Tuple[str, ...]
    group: str = DEFAULT_GROUP4
    family: Family = Family.IPV4
    directions: Tuple[Direction, ...] = (Direction.IN, Direction.OUT)


@dataclass(frozen=True)
class VrrpRule:
    """One abstract allowance: VRRP to ``group`` in or out of ``interface``."""

    direction: Direction
    interface: str
    group: str
    family: Family = Family.IPV4

    @property
    def chain(self) -> str:
        return self.direction.chain

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.direction.value, self.interface, self.group)

    @classmethod
    def from_key(cls, key: Tuple[str, str, str]) -> VrrpRule:
        return cls(Direction(key[0]), key[1], key[2])


def validate_interface(name: str) -> str:
    """Accept exactly the names Linux accepts (``dev_valid_name``), minus
    the two that iptables would reinterpret: a trailing ``+`` is its wildcard
    and a leading ``!`` its negation, so such a rule would match other
    interfaces than the one the admin named."""
    if not isinstance(name, str) or name == "":
        raise InputError("interface name is empty")
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) >= IFNAMSIZ:
        raise InputError(
            f"interface name {name!r} is {len(raw)} bytes; Linux allows at most {IFNAMSIZ - 1}"
        )
    if name in (".", ".."):
        raise InputError(f"interface name {name!r} is not allowed by Linux")
    for ch in name:
        if ch in "/:" or ch.isspace() or ch == "\0":
            raise InputError(
                f"interface name {name!r} contains {ch!r}, which Linux does not allow"
            )
    if name.endswith("+"):
        raise InputError(
            f"interface name {name!r} ends in '+', which iptables treats as a wildcard"
        )
    if name.startswith("!"):
        raise InputError(
            f"interface name {name!r} starts with '!', which iptables treats as negation"
        )
    return name


def validate_group(group: str) -> str:
    """The group must be an IPv4 multicast address; returned normalised."""
    try:
        addr = ipaddress.IPv4Address(str(group).strip())
    except ValueError:
        raise InputError(f"multicast group {group!r} is not an IPv4 address") from None
    if not addr.is_multicast:
        raise InputError(
            f"multicast group {group!r} is not an IPv4 multicast address (224.0.0.0/4)"
        )
    return str(addr)


def validate_peers(peers: Iterable[str]) -> Tuple[str, ...]:
    """Peers' unicast IPv4 addresses, normalised, duplicates dropped."""
    if isinstance(peers, str):
        peers = [peers]
    out: List[str] = []
    for p in peers:
        try:
            addr = ipaddress.IPv4Address(str(p).strip())
        except ValueError:
            raise InputError(f"peer {p!r} is not an IPv4 address") from None
        if addr.is_multicast or addr.is_unspecified or str(addr) == "255.255.255.255":
            raise InputError(f"peer {p!r} is not a unicast address")
        if str(addr) not in out:
            out.append(str(addr))
    return tuple(out)


def make_spec(
    interfaces: Iterable[str],
    group: str = DEFAULT_GROUP4,
    directions: Sequence[Direction] = (Direction.IN, Direction.OUT),
) -> VrrpSpec:
    """Validate raw user input into a spec; duplicates collapse, order kept."""
    seen: list[str] = []
    for name in interfaces:
        validate_interface(name)
        if name not in seen:
            seen.append(name)
    if not seen:
        raise InputError("no interface given (use --iface NAME)")
    if not directions:
        raise InputError("no direction given")
    return VrrpSpec(tuple(seen), validate_group(group), Family.IPV4, tuple(directions))


def rules_for(spec: VrrpSpec) -> list[VrrpRule]:
    """The abstract rules a spec needs, inbound before outbound per interface."""
    return [
        VrrpRule(direction, iface, spec.group, spec.family)
        for iface in spec.interfaces
        for direction in spec.directions
    ]


def rules_from_keys(keys: Iterable[Optional[Tuple[str, str, str]]]) -> List[VrrpRule]:
    """Rules for (direction, interface, group) keys, deduplicated, in order;
    None entries (rules that are not vrrpfw's) are skipped."""
    found: List[VrrpRule] = []
    for key in keys:
        if key is not None:
            rule = VrrpRule.from_key(key)
            if rule not in found:
                found.append(rule)
    return found
