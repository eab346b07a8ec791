"""python-iptables rules into the evaluator's model.  Pure apart from
reading the rule objects python-iptables hands us."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any, Optional, Tuple

from ...model import AH_PROTO, VRRP_PROTO
from ..rules import FwRule, Match

IPT_INV_PROTO = 0x40  # linux/netfilter/x_tables.h XT_INV_PROTO
ANY_ADDR = ("0.0.0.0/0.0.0.0", "0.0.0.0/0", "::/0", None, "")
IP6T_F_PROTO = 0x01  # linux/netfilter_ipv6/ip6_tables.h: -p given (else any protocol)
# ipt_ttl_info / ip6t_hl_info: {u8 mode; u8 value}; mode 0 is EQ, 1 NE, 2 LT, 3 GT
TTL_MODES = ("eq", "ne", "lt", "gt")
# python-iptables 1.0 names protocols from /etc/protocols, 1.2 gives numbers;
# show the names iptables-save prints, whichever we got.
PROTOCOL_NAMES = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp",
                  "51": "ah", "58": "ipv6-icmp", "112": "vrrp", "132": "sctp"}


def _prefix(addr: Optional[str]) -> Optional[str]:
    """python-iptables gives ``a.b.c.d/255.255.255.0``; show ``/24``."""
    if addr in ANY_ADDR:
        return None
    assert addr is not None
    neg = addr.startswith("!")
    body = addr[1:] if neg else addr
    try:
        net = ipaddress.ip_network(body, strict=False)
        body = str(net)
    except ValueError:
        pass
    return ("!" if neg else "") + body


def _render(chain: str, fw: FwRule) -> str:
    """An iptables-save-like line for messages and --dry-run."""
    parts = [f"-A {chain}"]
    for flag, value in (("-s", fw.src), ("-d", fw.dst), ("-i", fw.in_iface),
                        ("-o", fw.out_iface), ("-p", fw.protocol)):
        if value:
            neg = value.startswith("!")
            parts.append(("! " if neg else "") + f"{flag} {value.lstrip('!')}")
    for m in fw.matches:
        parts.append(f"-m {m.name}")
        for key, words in m.params:
            ws = list(words)
            neg = ws[:1] == ["!"]
            vals = " ".join(f'"{w}"' if " " in w else w for w in (ws[1:] if neg else ws))
            parts.append(("! " if neg else "") + f"--{key} {vals}".rstrip())
    if fw.target:
        parts.append(f"{'-g' if fw.goto else '-j'} {fw.target}")
    return " ".join(parts)


def _after(ptr: Any, size: int) -> bytes:
    """``size`` bytes of the kernel's data behind the struct ``ptr`` points
    to (a match's or target's header).  ctypes is imported here: the rule
    objects come from python-iptables, which has loaded it, and a run that
    reads no legacy rule (nftables, firewalld) need not (1.2 to 1.6 ms)."""
    import ctypes

    return ctypes.string_at(ctypes.addressof(ptr[0]) + ctypes.sizeof(ptr[0]), size)


def ttl_data(match: Any) -> Optional[Tuple[int, int]]:
    """(mode, value) of a ``ttl`` / ``hl`` match read from the kernel's
    struct, not through libxtables' save function: the struct is kernel
    ABI, while python-iptables' option handling of these extensions broke
    with iptables 1.8.11 (its issue #353)."""
    ptr = getattr(match, "_ptr", None)
    if ptr is None:
        return None
    raw = _after(ptr, 2)
    return raw[0], raw[1]


def _match(m: Any) -> Match:
    """A python-iptables match in the evaluator's form; ttl and hl as
    ``Match("ttl", (("ttl-eq", ("255",)),))``, the form
    rules.vrrpfw_key and the evaluator know."""
    if m.name in ("ttl", "hl"):
        data = ttl_data(m)
        if data is not None and data[0] < len(TTL_MODES):
            return Match(m.name, ((f"{m.name}-{TTL_MODES[data[0]]}", (str(data[1]),)),))
    return Match(m.name, tuple((k, tuple(v)) for k, v in m.get_all_parameters().items()))


def _fills(target: Any) -> Tuple[str, ...]:
    """``-j SET --add-set NAME src``: the ipset this rule fills from packets."""
    if target is None or target.name != "SET":
        return ()
    try:
        words = [w for w in target.get_all_parameters().get("add-set", []) if w != "!"]
    except Exception:  # python-iptables cannot show it: any set may be filled
        return ("fills:ipset *",)
    return (f"fills:ipset {words[0]}",) if words else ()


XT_CT_NOTRACK = 1


def _notrack(target: Any) -> Tuple[str, ...]:
    """``-j CT --notrack``: read from the kernel's struct (every revision of
    xt_ct_target_info starts with its u16 flags), as iptables-save's
    ``--notrack`` gives it: the "NOTRACK" effect the path judge knows."""
    ptr = getattr(target, "_ptr", None) if target is not None and target.name == "CT" else None
    if ptr is None:
        return ()
    try:
        flags = struct.unpack("=H", _after(ptr, 2))[0]
    except (TypeError, ValueError, AttributeError):
        return ()
    return ("NOTRACK",) if flags & XT_CT_NOTRACK else ()


def to_fwrule(chain: str, rule: Any) -> FwRule:
    matches = tuple(_match(m) for m in rule.matches)
    proto = rule.protocol
    neg = proto.startswith("!")
    proto = ("!" if neg else "") + PROTOCOL_NAMES.get(proto.lstrip("!"), proto.lstrip("!"))
    target = rule.target
    fw = FwRule(
        chain=chain,
        protocol=None if proto in ("ip", "all", "0") else proto,
        src=_prefix(rule.src),
        dst=_prefix(rule.dst),
        in_iface=rule.in_interface or None,
        out_iface=rule.out_interface or None,
        matches=matches,
        target=target.name if target is not None else "",
        goto=bool(getattr(target, "goto", False)) if target is not None else False,
        effects=_fills(target) + _notrack(target),
    )
    return FwRule(**{**fw.__dict__, "text": _render(chain, fw), "mark_op": _mark_op(target)})


def _mark_op(target: Any) -> Optional[Tuple[int, int]]:
    """``-j MARK``'s (value, mask), read from the kernel's struct
    (xt_mark_tginfo2, revision 2: what every iptables since 1.4 writes)."""
    ptr = getattr(target, "_ptr", None) if target is not None and target.name == "MARK" else None
    if ptr is None or getattr(getattr(ptr[0], "u", None), "user", None) is None \
            or ptr[0].u.user.revision != 2:
        return None
    raw = _after(ptr, 8)
    value, mask = struct.unpack("=II", raw)
    return value, mask


def could_match_vrrp(proto: int, invflags: int, flags: Optional[int] = None) -> bool:
    """From an ipt_entry's (ip6t_entry's, with its ``flags``) protocol
    fields: can this rule match an advert, protocol 112 or AH's 51?"""
    inverted = bool(invflags & IPT_INV_PROTO)
    if flags is not None and not flags & IP6T_F_PROTO:
        return True  # ip6tables compares the protocol only with IP6T_F_PROTO
    if proto == 0:  # any protocol ("! -p all" matches nothing)
        return not inverted
    if inverted:  # "! -p X" matches 112 or 51, whichever X is not
        return True
    return proto in (VRRP_PROTO, AH_PROTO)
