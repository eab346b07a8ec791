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
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from vrrpfw.record import record

from .errors import InputError

VRRP_PROTO = 112
AH_PROTO = 51  # keepalived's auth_type AH wraps each advert in an AH header
DEFAULT_GROUP4 = "224.0.0.18"
DEFAULT_GROUP6 = "ff02::12"  # VRRPv3 over IPv6 (RFC 5798)
# Every rule vrrpfw adds carries this comment; close removes only such rules.
COMMENT = "vrrpfw"
IFNAMSIZ = 16  # kernel limit including the trailing NUL
# RFC 5798 5.1.1.3: a receiver drops an advert whose TTL / hop limit is not 255.
STRICT_TTL = 255
Key = Tuple[str, str, str]  # (direction, interface, selector): VrrpRule.key
# firewalld's nftables tables (family, name): its backend's, never counted as ours to open.
FIREWALLD_TABLES = {("inet", "firewalld"), ("ip", "firewalld"), ("ip6", "firewalld")}


class Family(str, enum.Enum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @property
    def bits(self) -> int:
        """Prefix length of one address: the ``/32`` or ``/128`` of a rule."""
        return 32 if self is Family.IPV4 else 128

    @property
    def default_group(self) -> str:
        return DEFAULT_GROUP4 if self is Family.IPV4 else DEFAULT_GROUP6

    @classmethod
    def of(cls, address: str) -> Family:
        """The family of a (valid) address."""
        return cls.IPV6 if ":" in address else cls.IPV4


class Direction(str, enum.Enum):
    IN = "in"
    OUT = "out"

    @property
    def chain(self) -> str:
        """The iptables/nft base chain this direction is filtered in."""
        return "INPUT" if self is Direction.IN else "OUTPUT"


@record(frozen=True)
class VrrpSpec:
    """Validated request: allow VRRP on these interfaces, to a multicast
    group or (``peers`` given) between this host's ``local`` address and
    each peer; ``ah`` also IP protocol 51; ``strict`` only adverts that
    arrive with TTL / hop limit 255.  One family per spec."""

    interfaces: Tuple[str, ...]
    group: str = DEFAULT_GROUP4
    family: Family = Family.IPV4
    directions: Tuple[Direction, ...] = (Direction.IN, Direction.OUT)
    peers: Tuple[str, ...] = ()
    local: Optional[str] = None  # unicast: this host's address (keepalived's unicast_src_ip)
    ah: bool = False
    strict: bool = False
    # multicast: the peers' source addresses (--from), where the admin names
    # them; the rules stay the same, the path is judged for exactly these.
    sources: Tuple[str, ...] = ()


@record(frozen=True)
class VrrpRule:
    """One abstract allowance.  Multicast: VRRP to ``group`` in or out of
    ``interface``.  Unicast (``local`` set): ``group`` is the peer's
    address, and the rule matches adverts from the peer to ``local``
    inbound, from ``local`` to the peer outbound.  ``proto`` is 112, or 51
    for AH-wrapped adverts; ``strict`` (inbound only) also matches TTL /
    hop limit 255.

    Its identity (``key``) is (direction, interface, selector), where the
    selector is readable text every store can carry: ``224.0.0.18``,
    ``ff02::12 ttl 255``, ``peer 192.0.2.2 local 192.0.2.1 ah``."""

    direction: Direction
    interface: str
    group: str
    family: Family = Family.IPV4
    proto: int = VRRP_PROTO
    local: Optional[str] = None
    strict: bool = False

    @property
    def chain(self) -> str:
        return self.direction.chain

    @property
    def unicast(self) -> bool:
        return self.local is not None

    @property
    def src(self) -> Optional[str]:
        """The source address the rule matches (None: any)."""
        if self.local is None:
            return None
        return self.group if self.direction is Direction.IN else self.local

    @property
    def dst(self) -> str:
        """The destination address the rule matches."""
        if self.local is not None and self.direction is Direction.IN:
            return self.local
        return self.group

    @property
    def ttl(self) -> Optional[int]:
        """The TTL / hop limit the rule matches (None: any)."""
        return STRICT_TTL if self.strict else None

    @property
    def selector(self) -> str:
        return selector_text(self.group, self.local, self.proto, self.strict)

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.direction.value, self.interface, self.selector)

    @classmethod
    def from_key(cls, key: Tuple[str, str, str]) -> VrrpRule:
        group, local, proto, strict = parse_selector(key[2])
        return cls(Direction(key[0]), key[1], group, Family.of(group), proto, local, strict)

    @classmethod
    def from_match(cls, direction: Direction, interface: str, proto: int, src: Optional[str],
                   dst: str, ttl: Optional[int]) -> Optional[VrrpRule]:
        """The rule whose firewall form matches ``src``/``dst``/``proto``/
        ``ttl`` (addresses without prefix), or None where no vrrpfw rule
        has that form: readers call this on rules carrying vrrpfw's comment."""
        try:
            fam = Family.of(dst)
            d = ipaddress.ip_address(dst)
            s = ipaddress.ip_address(src) if src is not None else None
        except ValueError:
            return None
        if proto not in (VRRP_PROTO, AH_PROTO) or (s is not None and s.version != d.version):
            return None
        if ttl not in (None, STRICT_TTL) or (ttl is not None and direction is Direction.OUT):
            return None
        if s is None:
            if not d.is_multicast:
                return None
            return cls(direction, interface, str(d), fam, proto, None, ttl is not None)
        peer, local = (s, d) if direction is Direction.IN else (d, s)
        return cls(direction, interface, str(peer), fam, proto, str(local), ttl is not None)


def selector_text(group: str, local: Optional[str], proto: int, strict: bool) -> str:
    words = [group] if local is None else ["peer", group, "local", local]
    if proto == AH_PROTO:
        words.append("ah")
    if strict:
        words += ["ttl", str(STRICT_TTL)]
    return " ".join(words)


def parse_selector(text: str) -> Tuple[str, Optional[str], int, bool]:
    """(group or peer, local, proto, strict) from :func:`selector_text`'s
    form; raises InputError on anything else (a hand-edited state file)."""
    words = str(text).split()
    local: Optional[str] = None
    if words[:1] == ["peer"] and len(words) >= 4 and words[2] == "local":
        group, local, rest = words[1], words[3], words[4:]
    elif words:
        group, rest = words[0], words[1:]
    else:
        raise InputError(f"bad rule selector {text!r}")
    proto = VRRP_PROTO
    if rest[:1] == ["ah"]:
        proto, rest = AH_PROTO, rest[1:]
    strict = rest == ["ttl", str(STRICT_TTL)]
    if rest and not strict:
        raise InputError(f"bad rule selector {text!r}")
    try:
        group = str(ipaddress.ip_address(group))
        local = str(ipaddress.ip_address(local)) if local is not None else None
    except ValueError:
        raise InputError(f"bad rule selector {text!r}") from None
    return group, local, proto, strict


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


def validate_group(group: str, family: Optional[Family] = None) -> str:
    """A multicast group (IPv4 224.0.0.0/4 or IPv6 ff00::/8), normalised;
    with ``family``, it must be of that family."""
    try:
        if "%" in str(group):
            raise ValueError(group)
        addr = ipaddress.ip_address(str(group).strip())
    except ValueError:
        raise InputError(f"multicast group {group!r} is not an IPv4 or IPv6 address") from None
    if not addr.is_multicast:
        raise InputError(f"multicast group {group!r} is not a multicast address "
                         "(IPv4 224.0.0.0/4, IPv6 ff00::/8)")
    if family is not None and Family.of(str(addr)) is not family:
        raise InputError(f"multicast group {group!r} is not an {family.value.replace('ip', 'IP')} group")
    return str(addr)


def validate_address(value: str, what: str) -> str:
    """A unicast host address of either family, normalised.  No ``%scope``:
    the interface is given by ``--iface``."""
    if "%" in str(value):
        raise InputError(f"{what} {value!r}: leave out the %scope (the interface is --iface)")
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise InputError(f"{what} {value!r} is not an IPv4 or IPv6 address") from None
    if (addr.is_multicast or addr.is_unspecified or str(addr) == "255.255.255.255"
            or addr.is_loopback):
        raise InputError(f"{what} {value!r} is not a unicast address")
    mapped = getattr(addr, "ipv4_mapped", None)
    if mapped is not None:
        # An IPv6 socket sends to it as IPv4: rules of family ipv6 would never see those adverts.
        raise InputError(f"{what} {value!r} is an IPv4-mapped IPv6 address; give the IPv4 address {mapped}")
    return str(addr)


def validate_peers(peers: Iterable[str]) -> Tuple[str, ...]:
    """Peers' unicast addresses (IPv4 or IPv6), normalised, duplicates dropped."""
    return _addresses(peers, "peer")


def validate_sources(sources: Iterable[str]) -> Tuple[str, ...]:
    """Multicast adverts' source addresses (``--from``): unicast host
    addresses of either family, normalised, duplicates dropped."""
    return _addresses(sources, "--from address")


def _addresses(values: Iterable[str], what: str) -> Tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    out: List[str] = []
    for value in values:
        addr = validate_address(value, what)
        if addr not in out:
            out.append(addr)
    return tuple(out)


def validate_family(value: Optional[str]) -> Optional[str]:
    """``ipv4``, ``ipv6``, ``both`` or None (decided by the group or peers),
    spelt exactly so, as the command line, the Ansible module's choices and
    every other fixed choice (backend, mode) take them: ``IPv4`` is refused."""
    if value is None:
        return None
    if value not in ("ipv4", "ipv6", "both"):
        raise InputError(f"unknown family {value!r}; choose one of: ipv4, ipv6, both")
    return str(value)


def _interfaces(interfaces: Iterable[str]) -> Tuple[str, ...]:
    seen: list[str] = []
    for name in interfaces:
        validate_interface(name)
        if name not in seen:
            seen.append(name)
    if not seen:
        raise InputError("no interface given (use --iface NAME)")
    return tuple(seen)


def make_spec(
    interfaces: Iterable[str],
    group: str = DEFAULT_GROUP4,
    directions: Sequence[Direction] = (Direction.IN, Direction.OUT),
) -> VrrpSpec:
    """Validate raw user input into a multicast spec; duplicates collapse, order kept."""
    ifaces = _interfaces(interfaces)
    if not directions:
        raise InputError("no direction given")
    g = validate_group(group)
    return VrrpSpec(ifaces, g, Family.of(g), tuple(directions))


def make_specs(
    interfaces: Iterable[str],
    groups: Sequence[str] = (),
    family: Optional[str] = None,
    peers: Sequence[str] = (),
    local: Optional[str] = None,
    ah: bool = False,
    strict: bool = False,
    local_of: Optional[Callable[[str, Family], Optional[str]]] = None,
    sources: Sequence[str] = (),
) -> List[VrrpSpec]:
    """Validate the CLI's / API's options into one spec per family.

    The family comes from ``family`` (ipv4, ipv6, both), else from the
    groups or peers given, else IPv4.  Multicast: at most one group per
    family, default 224.0.0.18 / ff02::12.  Unicast (``peers``): no
    multicast rule at all; ``local`` is this host's address
    (keepalived's unicast_src_ip), else ``local_of(interface, family)``,
    the interface's primary address.  AH (IP protocol 51) exists only in
    VRRPv2 over IPv4, which keepalived enforces too.  ``sources``
    (``--from``): the multicast adverts' source addresses, each of a family
    opened (they name the family where nothing else does), and every family
    opened has one: exactly these peers' adverts are judged."""
    ifaces = _interfaces(interfaces)
    fam = validate_family(family)
    gs = [validate_group(g) for g in groups]
    ps = validate_peers(peers)
    src = validate_address(local, "--src address") if local is not None else None
    froms = validate_sources(sources)
    if froms and ps:
        raise InputError("--from names the sources of multicast adverts; --peer means unicast "
                         "(keepalived's unicast_peer), which has no multicast rule: give one")
    if ps and gs:
        raise InputError("--peer and --group contradict each other: unicast peers get no multicast "
                         "rule; give one")
    if src is not None and not ps:
        raise InputError("--src is this host's unicast address; it needs --peer")
    present = sorted({Family.of(a) for a in (gs or list(ps))}, key=lambda f: f.value)
    if fam is None:
        fams = present or sorted({Family.of(a) for a in froms}, key=lambda f: f.value) or [Family.IPV4]
    else:
        fams = [Family.IPV4, Family.IPV6] if fam == "both" else [Family(fam)]
        for f in present:
            if f not in fams:
                what = "group" if gs else "peer"
                raise InputError(f"--family {fam} contradicts the {f.value} {what} given")
        if ps and set(fams) != set(present):
            missing = [f.value for f in fams if f not in present]
            raise InputError(f"--family {fam}: no {' or '.join(missing)} peer given")
        if gs and set(fams) != set(present):
            # as with peers: a group names its family, and --family both with
            # an IPv4 group would open ff02::12 unasked (as ipv4 with an IPv6
            # group is refused above)
            missing = [f.value for f in fams if f not in present]
            raise InputError(f"--family {fam}: no {' or '.join(missing)} group given (a --group is of one "
                             f"family: give --family {present[0].value}, or leave out --group for the "
                             "default groups of both)")
    for a in froms:
        if Family.of(a) not in fams:
            raise InputError(f"--from {a} is not of the family opened ({', '.join(f.value for f in fams)})")
    for f in fams:
        if froms and not any(Family.of(a) is f for a in froms):
            raise InputError(f"--from names the {Family.of(froms[0]).value} peers only; no {f.value} "
                             f"--from address given (--from is every peer's address, or leave it out)")
    for f in fams:
        if sum(Family.of(g) is f for g in gs) > 1:
            raise InputError(f"more than one {f.value} group given; keepalived sends to one")
    if src is not None and Family.of(src) not in fams:
        raise InputError(f"--src {src} is not of the peers' family")
    if src is not None and len(fams) > 1:
        raise InputError("--src is one address of one family; with peers of both families leave it "
                         "out (each interface's primary address is used)")
    if ah and Family.IPV6 in fams:
        raise InputError("--ah: keepalived refuses AH authentication with IPv6 (VRRPv3 has no "
                         "authentication); AH exists only in VRRPv2 over IPv4")
    specs = []
    for f in fams:
        if not ps:
            group = next((g for g in gs if Family.of(g) is f), f.default_group)
            mine_from = tuple(a for a in froms if Family.of(a) is f)
            for iface in ifaces if mine_from else ():
                here = local_of(iface, f) if local_of is not None else None
                if here in mine_from:
                    raise InputError(f"--from {here} is this host's own address ({iface}); list the other "
                                     "nodes only")
            specs.append(VrrpSpec(ifaces, group, f, ah=ah, strict=strict, sources=mine_from))
            continue
        mine = tuple(p for p in ps if Family.of(p) is f)
        for iface in ifaces:
            here = src or (local_of(iface, f) if local_of is not None else None)
            if here is None:
                raise InputError(f"interface {iface} has no {f.value} address to send unicast adverts "
                                 f"from; give --src ADDR (keepalived's unicast_src_ip)")
            if here in mine:
                raise InputError(f"--peer {here} is this host's own address ({iface}); list the other "
                                 "nodes only")
            specs.append(VrrpSpec((iface,), f.default_group, f, peers=mine, local=here, ah=ah,
                                  strict=strict))
    return specs


def rules_for(spec: VrrpSpec) -> list[VrrpRule]:
    """The abstract rules a spec needs, inbound before outbound per
    interface (and per peer), VRRP before AH.  ``strict`` matches TTL /
    hop limit 255 inbound, except on IPv6 unicast: keepalived sets only
    IPV6_MULTICAST_HOPS, so its IPv6 unicast adverts carry the kernel's
    default hop limit (64; measured with keepalived 2.2.7 by
    tests/integration/prove/test_advert_fidelity.py), and a hop limit 255 rule
    would keep every one of them out."""
    protos = (VRRP_PROTO, AH_PROTO) if spec.ah else (VRRP_PROTO,)
    targets: Sequence[Tuple[str, Optional[str]]] = (
        [(p, spec.local) for p in spec.peers] if spec.peers else [(spec.group, None)])
    strict = spec.strict and not (spec.family is Family.IPV6 and spec.peers)
    return [
        VrrpRule(direction, iface, target, spec.family, proto, local,
                 strict and direction is Direction.IN)
        for iface in spec.interfaces
        for target, local in targets
        for proto in protos
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
