"""firewalld's words for VRRP: rich rules, direct-rule arguments, and the
names of the zones and policies behind the chains of its nf_tables table.
Pure: no D-Bus here."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, List, Optional, Sequence

from ...model import AH_PROTO, COMMENT, DEFAULT_GROUP4, VRRP_PROTO, Direction, Family, VrrpRule


def proto_name(proto: int) -> str:
    """The protocol word firewalld's rich rules use (``/etc/protocols``)."""
    return "ah" if proto == AH_PROTO else "vrrp"


def _body(rule: VrrpRule) -> str:
    """Family, addresses and protocol of a rule, in firewalld's own order."""
    words = [f'family="{rule.family.value}"']
    if rule.src is not None:
        words.append(f'source address="{rule.src}"')
    words.append(f'destination address="{rule.dst}"')
    words.append(f'protocol value="{proto_name(rule.proto)}"')
    return " ".join(words) + " accept"


def rich_rule(rule: VrrpRule) -> str:
    """vrrpfw's zone allowance for ``rule`` (zone mode, where the vrrp
    service does not fit): ``rule family="ipv6" destination
    address="ff02::12" protocol value="vrrp" accept``; unicast adds the
    source (the peer inbound, this host outbound), AH says ``ah``.
    Rich rules have no TTL match, which is why --strict is refused outside
    direct mode (see FirewalldBackend.refuse_strict)."""
    return f"rule {_body(rule)}"


# State entries for a policy use this prefix in place of a zone name.
POLICY_PREFIX = "policy:"
# The lowest rich-rule priority: evaluated before every deny rule an admin can write.
TOP_PRIORITY = -32768


def top_rich_rule(rule: VrrpRule) -> str:
    """vrrpfw's allowance on firewalld's nftables backend: a rich rule at
    the lowest priority, so that it wins over deny rules (priority < 0 or
    plain reject/drop rules, which firewalld puts before allowances)."""
    return f'rule priority="{TOP_PRIORITY}" {_body(rule)}'


def same_rich(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


_CHAIN_OWNER = re.compile(r"^filter_(IN|OUT)_(policy_)?(.+?)(_pre|_log|_deny|_allow|_post)?$")


def construct_of(chain_name: str) -> Optional[str]:
    """The zone (or ``policy:NAME``) whose chain in firewalld's table holds
    a rule: ``filter_IN_public_deny`` -> ``public``."""
    m = _CHAIN_OWNER.match(chain_name)
    if m is None or m.group(3) in ("", "ZONES", "POLICIES"):
        return None
    return (POLICY_PREFIX + m.group(3)) if m.group(2) else m.group(3)


def describe_target(target: str) -> str:
    if target.startswith(POLICY_PREFIX):
        return f"policy {target[len(POLICY_PREFIX):]}"
    return f"zone {target}"


FW_CHAIN = re.compile(r"\b(filter_(?:IN|OUT)_[A-Za-z0-9_.-]+):")


def name_construct(m: Any) -> str:
    """``filter_IN_public_allow:`` -> ``zone public (filter_IN_public_allow):``."""
    target = construct_of(m.group(1))
    return f"{describe_target(target)} ({m.group(1)}):" if target else m.group(0)


def ipv_of(rule: VrrpRule) -> str:
    """The ``ipv`` of firewalld's direct interface: ipv4 or ipv6."""
    return "ipv6" if rule.family is Family.IPV6 else "ipv4"


def direct_args(rule: VrrpRule, comment: bool = True) -> List[str]:
    """vrrpfw's direct rule (iptables backend): the IPv4 multicast form is
    the one every earlier vrrpfw wrote, so those are still found and
    closed.  ``strict`` adds the TTL / hop-limit match, which direct rules
    (iptables syntax) have and rich rules lack."""
    flag = "-i" if rule.direction is Direction.IN else "-o"
    args = [flag, rule.interface]
    if rule.src is not None:
        args += ["-s", rule.src]
    args += ["-d", rule.dst, "-p", str(rule.proto)]
    if rule.ttl is not None:
        mod, opt = ("ttl", "--ttl-eq") if rule.family is Family.IPV4 else ("hl", "--hl-eq")
        args += ["-m", mod, opt, str(rule.ttl)]
    if comment:
        args += ["-m", "comment", "--comment", COMMENT]
    return args + ["-j", "ACCEPT"]


def direct_rule_of(chain: str, args: Sequence[str]) -> Optional[VrrpRule]:
    """The rule a direct rule with vrrpfw's comment was written for (the
    inverse of :func:`direct_args`); None for any other form."""
    if chain not in ("INPUT", "OUTPUT") or COMMENT not in args:
        return None
    direction = Direction.IN if chain == "INPUT" else Direction.OUT
    words = list(args)
    opts: Dict[str, str] = {}
    for i, w in enumerate(words[:-1]):
        if w in ("-i", "-o", "-s", "-d", "-p", "--ttl-eq", "--hl-eq"):
            opts[w] = words[i + 1]
    iface = opts.get("-i" if direction is Direction.IN else "-o")
    dst, proto = opts.get("-d"), opts.get("-p", "")
    ttl = opts.get("--ttl-eq", opts.get("--hl-eq"))
    if iface is None or dst is None or not proto.isdigit() or (ttl is not None and not ttl.isdigit()):
        return None
    rule = VrrpRule.from_match(direction, iface, int(proto), opts.get("-s"), dst,
                               int(ttl) if ttl is not None else None)
    return rule if rule is not None and direct_args(rule) == words else None


_ATTR = re.compile(r'(source|destination)\s+(not\s+)?address="([^"]+)"')


def _addr_fits(value: str, want: Optional[str]) -> bool:
    """Is a rich rule's address (``A`` or ``A/32``, ``A/128``) exactly ``want``?"""
    if want is None:
        return False
    addr, _, prefix = value.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return str(ip) == want and prefix in ("", str(ip.max_prefixlen))


def rich_allows(rule_text: str, rule: VrrpRule) -> bool:
    """Does a rich rule accept ``rule``'s adverts, all of them?  Only the
    plain shapes count: a limit, a negation, another family, protocol or
    address makes it not ours to judge.  No address means any; a source
    is fine only where it is exactly ``rule``'s (unicast): a multicast
    rule takes adverts from any peer.  No rich rule matches TTL, so
    every accept covers a strict rule's adverts too."""
    text = " ".join(rule_text.split())
    if not text.endswith(" accept") or "limit" in text or " not " in text:
        return False
    if _other_family_or_protocol(text, rule) or 'protocol value="' not in text:
        return False
    for m in _ATTR.finditer(text):
        want = rule.src if m.group(1) == "source" else rule.dst
        if not _addr_fits(m.group(3), want):
            return False
    return True


def _other_family_or_protocol(text: str, rule: VrrpRule) -> bool:
    """Does a rich rule name a family or protocol that is not ``rule``'s
    adverts' (VRRP, or AH for AH rules)?  No family or protocol named: no."""
    fam = re.search(r'family="([^"]+)"', text)
    if fam is not None and fam.group(1) != rule.family.value:
        return True
    proto = re.search(r'protocol value="([^"]+)"', text)
    wanted = ("ah", "51") if rule.proto == AH_PROTO else ("vrrp", "112")
    return proto is not None and proto.group(1).lower() not in wanted


def rich_priority(rule_text: str) -> int:
    """A rich rule's priority (0 where it names none)."""
    m = re.search(r'\bpriority="(-?\d+)"', rule_text)
    return int(m.group(1)) if m else 0


# Rich rule elements that match only other protocols (TCP/UDP/SCTP/DCCP ports, ICMP).
_NOT_VRRP = re.compile(r'\b(port|source-port|forward-port|icmp-block|icmp-type|masquerade)\b')


def rich_may_deny(rule_text: str, rule: VrrpRule, link: Sequence[str] = ()) -> bool:
    """May a rich rule drop or reject some of ``rule``'s adverts?  True
    unless its family, protocol, element or destination rules the advert
    out, or its source is off the link (``link``: the interface's subnets,
    where multicast peers send from); a service, an ipset or MAC source, a
    negation or a limit may match it."""
    text = " ".join(rule_text.split())
    bare = re.sub(r'"[^"]*"', '""', text)  # keywords outside quoted values
    if not re.search(r"\b(drop|reject)\b", bare) or _NOT_VRRP.search(bare):
        return False
    if _other_family_or_protocol(text, rule):
        return False
    for m in _ATTR.finditer(text):
        want = rule.src if m.group(1) == "source" else rule.dst
        if want is None:  # a multicast advert's source: any peer on the link
            if m.group(1) == "source" and not m.group(2) and link and not any(
                    _overlaps(m.group(3), net) for net in link):
                return False
            continue
        inside = _addr_within(m.group(3), want)
        if inside is bool(m.group(2)):
            return False  # the address (or its negation) excludes the advert
    return True


def rich_rule_of(rule_text: str, direction: Direction, interface: str) -> Optional[VrrpRule]:
    """The rule one of vrrpfw's rich rules was written for (the inverse of
    :func:`rich_rule` / :func:`top_rich_rule`); None for other shapes."""
    text = " ".join(rule_text.split())
    addrs = {m.group(1): m.group(3) for m in _ATTR.finditer(text)}
    proto = re.search(r'protocol value="([^"]+)"', text)
    if "destination" not in addrs or proto is None:
        return None
    number = {"vrrp": VRRP_PROTO, "112": VRRP_PROTO, "ah": AH_PROTO, "51": AH_PROTO}.get(
        proto.group(1).lower())
    if number is None:
        return None
    rule = VrrpRule.from_match(direction, interface, number, addrs.get("source"),
                               addrs["destination"].split("/")[0], None)
    return rule if rule is not None and rich_allows(text, rule) else None


# Direct-rule targets that never drop (the walk goes on, or the packet is accepted).
_PASSING_TARGETS = {"ACCEPT", "RETURN", "LOG", "NFLOG", "MARK", "CONNMARK", "CT", "NOTRACK", "TRACE", "AUDIT",
                    "TOS", "DSCP", "TTL", "HL", "CLASSIFY", "CONNSECMARK", "SECMARK"}


def direct_may_drop(args: Sequence[str], rule: VrrpRule) -> bool:
    """May an admin's direct rule (iptables arguments) drop or reject
    ``rule``'s adverts, or hand them to a chain that may?  Ruled out only by
    a passing target, or by a protocol, interface or address that
    excludes the advert; any "!" keeps it possible."""
    words = list(args)

    def values(*names: str) -> List[str]:
        return [words[i + 1] for i, w in enumerate(words[:-1]) if w in names]

    targets = values("-j", "--jump", "-g", "--goto")
    if not targets or targets[-1] in _PASSING_TARGETS:
        return False
    if "!" in words:
        return True
    protos = ("ah", "51") if rule.proto == AH_PROTO else ("vrrp", "112")
    given = [v.lower() for v in values("-p", "--protocol")]
    if given and not any(v in protos + ("all", "0") for v in given):
        return False
    flags = ("-i", "--in-interface") if rule.direction is Direction.IN else ("-o", "--out-interface")
    for name in values(*flags):
        if not (rule.interface == name or (name.endswith("+") and rule.interface.startswith(name[:-1]))):
            return False
    for value in values("-d", "--destination"):
        if rule.dst is not None and not _addr_within(value, rule.dst):
            return False
    for value in values("-s", "--source"):
        if rule.src is not None and not _addr_within(value, rule.src):
            return False
    return True


def is_seed_direct(args: Sequence[str], rule: VrrpRule) -> bool:
    """A hand-made direct ACCEPT for ``rule``'s adverts on its interface
    (the classic recipe): its protocol, and any address it names exactly
    the rule's (a ``-d`` or ``-s`` elsewhere lets other adverts through)."""
    words = list(args)
    flags = ("-i", "--in-interface") if rule.direction is Direction.IN else ("-o", "--out-interface")
    protos = ("ah", "51") if rule.proto == AH_PROTO else ("vrrp", "112")

    def values(*names: str) -> List[str]:
        return [words[i + 1] for i, w in enumerate(words[:-1]) if w in names]

    addrs_fit = all(_addr_fits(v, rule.dst) for v in values("-d", "--destination")) and all(
        _addr_fits(v, rule.src) for v in values("-s", "--source"))
    return (rule.interface in values(*flags) and any(v.lower() in protos for v in values("-p", "--protocol"))
            and addrs_fit and "ACCEPT" in words and "!" not in words and COMMENT not in words)


def service_covers(settings: Dict[str, Any], rule: VrrpRule) -> bool:
    """Does a service with these settings (firewalld's getServiceSettings2)
    accept all of ``rule``'s adverts?  Its protocols must include the
    rule's; a destination it names for the rule's family must be the
    rule's address or a network holding it, and one naming only the other family means the service is not
    applied to this family at all (firewalld's rule)."""
    protos = {str(p).lower() for p in settings.get("protocols", [])}
    wanted = {"ah", "51"} if rule.proto == AH_PROTO else {"vrrp", "112"}
    if not protos & wanted:
        return False
    dest = {str(k): str(v) for k, v in dict(settings.get("destination", {})).items()}
    if not dest:
        return True
    return rule.family.value in dest and _addr_within(dest[rule.family.value], rule.dst)


def _addr_within(value: str, want: Optional[str]) -> bool:
    """Is ``want`` inside a service's destination (an address, or a
    network: firewalld matches ``daddr`` against it)?"""
    if want is None:
        return False
    try:
        return ipaddress.ip_address(want) in ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False


def _overlaps(value: str, net: str) -> bool:
    """Do a rich rule's address (or network) and ``net`` share an address?
    True where either cannot be read."""
    try:
        return ipaddress.ip_network(value, strict=False).overlaps(ipaddress.ip_network(net, strict=False))
    except (ValueError, TypeError):
        return True


def service_is_vrrpfws(rule: VrrpRule) -> bool:
    """The rules vrrpfw adds the ``vrrp`` service for (zone mode): IPv4
    VRRP to 224.0.0.18, as every earlier vrrpfw did.  Everything else gets
    a rich rule naming exactly what is asked (firewalld 2.1's service also
    opens ff02::12, 1.3 has none), so closing one family never removes
    what the other still needs."""
    return (rule.family is Family.IPV4 and not rule.unicast and rule.group == DEFAULT_GROUP4
            and rule.proto == VRRP_PROTO and not rule.strict)
