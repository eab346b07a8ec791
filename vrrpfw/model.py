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


# What an interface name may contain: exactly what every backend and saved
# format represents as itself.  See validate_interface.
IFACE_CHARS = "ASCII letters, digits, '.', '_' and '-' (not first), at most 15 bytes"
_IFACE_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_IFACE_WHY = {
    "+": "which iptables and firewalld read as a wildcard ('eth+' is every interface starting with 'eth')",
    "*": "which nftables reads as a wildcard ('eth*' is every interface starting with 'eth')",
    "!": "which iptables and firewalld read as negation",
    '"': "a quote, which would end the name in nft commands and nftables.conf",
    "'": "a quote, which nft and iptables-restore would read as quoting",
    "\\": "a backslash, which nft and iptables-restore read as an escape",
    "/": "which Linux does not allow",
    ":": "which Linux does not allow",
    "#": "which starts a comment in iptables-save files and nftables.conf",
    "$": "which nftables reads as a variable",
    "@": "which nftables reads as a set reference",
    ";": "which ends an nftables statement",
    "{": "which nftables reads as the start of a set",
    "}": "which nftables reads as the end of a set",
    "[": "which nftables reads as a bracket",
    "]": "which nftables reads as a bracket",
    "\0": "which Linux does not allow",
}


def _iface_char_reason(ch: str) -> str:
    if ch in _IFACE_WHY:
        return _IFACE_WHY[ch]
    if ch in " \t\n\v\f\r":
        return "which Linux does not allow"
    if ord(ch) >= 128:
        return ("which is not ASCII (iptables listed 'eth\u00e90' as the wildcard 'eth\u00e90+' "
                "and a saved file got it in another encoding)")
    if not ch.isprintable():
        return "a control character"
    return "which firewall commands and saved rulesets may read as syntax"


def validate_interface(name: str) -> str:
    """Accept only names every backend and saved format represents exactly:
    ASCII letters, digits, ``.``, ``_`` and ``-`` (not first), at most 15
    bytes (``IFNAMSIZ`` - 1), neither ``.`` nor ``..`` nor the sysctl names
    ``all`` and ``default`` (Linux refuses those four too).

    A whitelist, because each firewall has its own metacharacters: ``+`` is
    iptables' and firewalld's wildcard, ``*`` nft's (``iifname "eth*"``
    matches eth0), ``!`` negation, quotes and backslashes end or escape the
    name in nft commands, nftables.conf and iptables-save files, ``#``
    starts a comment there, a leading ``-`` makes iptables read an option,
    and a non-ASCII byte was shown by iptables as a prefix wildcard and saved
    in another encoding.  firewalld's own check (``checkInterface``) refuses
    `` ``, ``/``, ``!`` and ``*``: a subset of what is refused here."""
    if not isinstance(name, str):
        raise InputError(f"interface name must be a string, not {type(name).__name__}")
    if name == "":
        raise InputError("interface name is empty")
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) >= IFNAMSIZ:
        raise InputError(
            f"interface name {name!r} is {len(raw)} bytes; Linux allows at most {IFNAMSIZ - 1}"
        )
    if name in (".", "..", "all", "default"):
        why = " (it names every interface's sysctls)" if name in ("all", "default") else ""
        raise InputError(f"interface name {name!r} is not allowed by Linux{why}")
    for ch in name:
        if ch not in _IFACE_OK:
            raise InputError(
                f"interface name {name!r} contains {ch!r}, {_iface_char_reason(ch)}; "
                f"vrrpfw accepts {IFACE_CHARS}"
            )
    if name.startswith("-"):
        raise InputError(
            f"interface name {name!r} starts with '-', which iptables reads as an option; "
            f"vrrpfw accepts {IFACE_CHARS}"
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
