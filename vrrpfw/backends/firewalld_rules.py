"""firewalld's words for VRRP: rich rules, direct-rule arguments, and the
names of the zones and policies behind the chains of its nf_tables table.
Pure: no D-Bus here."""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence

from ..model import COMMENT, Direction, VrrpRule


def rich_rule(group: str) -> str:
    return f'rule family="ipv4" destination address="{group}" protocol value="vrrp" accept'


# State entries for a policy use this prefix in place of a zone name.
POLICY_PREFIX = "policy:"
# The lowest rich-rule priority: evaluated before every deny rule an admin can write.
TOP_PRIORITY = -32768


def top_rich_rule(group: str) -> str:
    """vrrpfw's allowance on firewalld's nftables backend: a rich rule at
    the lowest priority, so that it wins over deny rules (priority < 0 or
    plain reject/drop rules, which firewalld puts before allowances)."""
    return (f'rule priority="{TOP_PRIORITY}" family="ipv4" destination address="{group}" '
            'protocol value="vrrp" accept')


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


def direct_args(rule: VrrpRule, comment: bool = True) -> List[str]:
    flag = "-i" if rule.direction is Direction.IN else "-o"
    args = [flag, rule.interface, "-d", rule.group, "-p", "112"]
    if comment:
        args += ["-m", "comment", "--comment", COMMENT]
    return args + ["-j", "ACCEPT"]


RICH_ADDR = re.compile(r'destination\s+(not\s+)?address="([^"]+)"')


def rich_allows(rule_text: str, group: str) -> bool:
    """Does a rich rule accept VRRP to ``group``?  Only the plain shapes
    count: a source, a limit or a negation makes it not ours to judge."""
    text = " ".join(rule_text.split())
    if not text.endswith(" accept") or "source" in text or "limit" in text:
        return False
    if 'family="ipv6"' in text:
        return False
    proto = re.search(r'protocol value="([^"]+)"', text)
    if proto is None or proto.group(1).lower() not in ("vrrp", "112"):
        return False
    addr = RICH_ADDR.search(text)
    if addr is None:
        return True
    if addr.group(1):
        return False
    return addr.group(2).split("/")[0] == group and addr.group(2) in (group, f"{group}/32")


def is_seed_direct(args: Sequence[str], rule: VrrpRule) -> bool:
    """A hand-made direct ACCEPT for VRRP on this interface (the recipe)."""
    words = list(args)
    flag = "-i" if rule.direction is Direction.IN else "-o"
    flag_long = "--in-interface" if rule.direction is Direction.IN else "--out-interface"
    has_iface = any(w in (flag, flag_long) and i + 1 < len(words) and words[i + 1] == rule.interface
                    for i, w in enumerate(words))
    has_proto = any(w in ("-p", "--protocol") and i + 1 < len(words)
                    and words[i + 1].lower() in ("vrrp", "112") for i, w in enumerate(words))
    accepts = "ACCEPT" in words
    return has_iface and has_proto and accepts and COMMENT not in words
