"""nf_tables JSON (``nft -j list table``) into the evaluator's model.  Pure.

What we understand becomes a field or a membership test the evaluator can
decide for a VRRP advert: interface names, addresses, protocols, packet
type, conntrack state, mark, ``fib daddr type``; literal values, anonymous
sets, ranges, prefixes, and *named* sets and maps read from their elements.
A verdict map is expanded into one rule per element (its keys are disjoint,
so the expansion is exact).  What we cannot decide (a dynamic or timeout
set, a concatenation with an unknown part, a rate limit, a socket or osf
match, an unreadable compat ``xt`` match) becomes a maybe-match, and the
evaluator reports the chain as ``uncertain`` where it matters.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from vrrpfw.record import field, record

from .lazy_state import nft_set_key
from .rules import FwRule, Match

VERDICTS = {"accept": "ACCEPT", "drop": "DROP", "reject": "REJECT", "return": "RETURN",
            "queue": "NFQUEUE", "continue": ""}
# Statements that hand the packet elsewhere: not judged.
ELSEWHERE = {"fwd": "FWD", "tproxy": "TPROXY", "synproxy": "SYNPROXY"}
OTHER_L4 = {"tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "esp", "ah", "comp", "igmp", "gre"}
META_KEYS = {"iifname": "iifname", "oifname": "oifname", "l4proto": "l4proto", "nfproto": "nfproto",
             "pkttype": "pkttype", "mark": "mark", "protocol": "ethertype", "iif": "iif", "oif": "oif",
             "skuid": "skuid", "skgid": "skgid", "iifgroup": "iifgroup", "oifgroup": "oifgroup",
             # bridge family: the bridge of the port the frame came in / goes out on
             "ibrname": "ibrname", "obrname": "obrname"}
# Header fields keepalived's adverts carry fixed values in (see Packet);
# id, checksum, length and the flow label vary: unknown.
IP_FIELDS = {"protocol": "l4proto", "saddr": "saddr", "daddr": "daddr", "ttl": "ttl", "frag-off": "frag_off",
             "version": "version", "hdrlength": "hdrlength", "dscp": "dscp", "ecn": "ecn"}
# An advert has no extension header (keepalived sends none), so ip6's
# first next header is its upper-layer protocol.
IP6_FIELDS = {"nexthdr": "l4proto", "saddr": "saddr", "daddr": "daddr", "hoplimit": "hoplimit",
              "version": "version", "dscp": "dscp", "ecn": "ecn"}
# The packet family an ``ip ...`` / ``ip6 ...`` expression implicitly
# requires: nft adds a ``meta nfproto`` (inet) or ``meta protocol``
# (netdev) dependency, so an IPv6 advert never matches ``ip daddr != X``.
PAYLOAD_FAMILY = {"ip": "ipv4", "icmp": "ipv4", "igmp": "ipv4", "ip6": "ipv6", "icmpv6": "ipv6"}
# The family every packet of a table's family has (inet and netdev see both).
TABLE_FAMILY = {"ip": "ipv4", "ip6": "ipv6"}
# TTL / hop limit tests as the iptables ttl / hl matches (vrrpfw_key reads those).
TTL_MATCH = {"ttl": "ttl", "hoplimit": "hl"}

# Resolves compat (xt) expressions of an iptables-nft rule: given the chain
# and the rule's position in it, the rule as iptables-nft prints it, parsed.
XtResolver = Callable[[str, int], Optional[FwRule]]


@record
class NftSet:
    name: str
    elements: Optional[List[Any]]  # None: not known (not listed)
    is_map: bool = False
    # Packets (add/update statements) or timeouts change it: its elements are
    # what the kernel holds now, and the verdict depends on them.
    dynamic: bool = False
    key: str = ""  # how the verdict names it: "nft set inet t @blk"


@record
class NftTable:
    """One table, converted: chains with their rules, base-chain headers."""

    family: str
    name: str
    chains: Dict[str, List[FwRule]] = field(default_factory=dict)
    headers: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # base chains only
    sets: Dict[str, NftSet] = field(default_factory=dict)
    iptables_nft: bool = False  # written by iptables-nft (compat expressions likely)


class _Unknown(Exception):
    """An expression this converter does not decide."""


def _value(v: Any, sets: Dict[str, NftSet]) -> List[str]:
    """The right-hand side as a list of element strings."""
    if isinstance(v, bool):
        raise _Unknown("bool")
    if isinstance(v, (int, float)):
        return [str(int(v))]
    if isinstance(v, str):
        if v.startswith("@"):
            s = sets.get(v[1:])
            if s is None or s.elements is None:
                raise _Unknown(f"set {v}")
            out: List[str] = []
            for e in s.elements:
                out += _value(e[0] if s.is_map and isinstance(e, list) else e, sets)
            return out
        return [v]
    if isinstance(v, list):
        out = []
        for e in v:
            out += _value(e, sets)
        return out
    if isinstance(v, dict):
        if "set" in v:
            return _value(v["set"], sets)
        if "prefix" in v:
            return [f"{v['prefix']['addr']}/{v['prefix']['len']}"]
        if "range" in v:
            lo, hi = v["range"]
            return [f"{_value(lo, sets)[0]}-{_value(hi, sets)[0]}"]
        if "elem" in v:
            return _value(v["elem"].get("val"), sets)
        if "concat" in v:
            parts = [_value(p, sets) for p in v["concat"]]
            if any(len(p) != 1 for p in parts):
                raise _Unknown("concat of sets")
            return [" . ".join(p[0] for p in parts)]
    raise _Unknown(f"value {v!r}"[:60])


def _key(left: Any) -> Tuple[str, Optional[str]]:
    """(selector key, mask) of a match's left-hand side."""
    if not isinstance(left, dict):
        raise _Unknown("left")
    if "meta" in left:
        key = left["meta"].get("key")
        if key in META_KEYS:
            return META_KEYS[key], None
        raise _Unknown(f"meta {key}")
    if "payload" in left:
        proto, fld = left["payload"].get("protocol"), left["payload"].get("field")
        if proto == "ip" and fld in IP_FIELDS:
            return IP_FIELDS[fld], None
        if proto == "ip6" and fld in IP6_FIELDS:
            return IP6_FIELDS[fld], None
        if proto == "arp":
            return "never", None
        if proto == "ah":
            raise _Unknown(f"payload ah {fld}")  # an AH header's field: AH adverts may match
        if proto in OTHER_L4:
            return "never", None
        if proto == "th":
            # The raw transport header: an advert has none, but the bytes at
            # its offsets are the VRRP (or AH) header's, which vary (priority,
            # count).  Unknown alone; in a concatenation beside ``meta
            # l4proto`` the protocol part decides.
            return f"th_{fld}", None
        if proto == "ether" and fld == "type":
            return "ethertype", None
        if proto == "ether" and fld == "daddr":
            return "ether_daddr", None  # a group's multicast MAC (bridge, netdev chains)
        raise _Unknown(f"payload {proto} {fld}")
    if "ct" in left:
        key = left["ct"].get("key")
        if key in ("state", "status") and "dir" not in left["ct"]:
            return f"ct_{key}", None
        raise _Unknown(f"ct {key}")
    if "fib" in left:
        fib = left["fib"]
        if fib.get("result") == "type" and list(fib.get("flags", [])) == ["daddr"]:
            return "fib_daddr_type", None
        if fib.get("result") == "oif" and sorted(fib.get("flags", [])) == ["iif", "saddr"]:
            return "fib_rpf", None  # reverse-path lookup: is there a route back to the source?
        if fib.get("result") == "oif" and sorted(fib.get("flags", [])) == ["iif", "mark", "saddr"]:
            # The same lookup keyed by the packet's mark too (firewalld's IPv6 rpfilter).
            return "fib_rpf_mark", None
        raise _Unknown("fib")
    if "&" in left:
        inner, mask = left["&"]
        key, _ = _key(inner)
        if isinstance(mask, int) and key in ("mark", "ct_state", "frag_off", "dscp", "ecn", "hdrlength",
                                             "version"):
            return key, str(mask)
        raise _Unknown("bitwise")
    if "concat" in left:
        keys = [_key(p)[0] for p in left["concat"]]
        if "never" in keys:
            return "never", None
        return " . ".join(keys), None
    raise _Unknown(next(iter(left), "left"))


FIELD_OF = {"iifname": "in_iface", "oifname": "out_iface", "l4proto": "protocol",
            "saddr": "src", "daddr": "dst"}


def _field_value(key: str, value: str) -> str:
    if key in ("iifname", "oifname"):
        return value[:-1] + "+" if value.endswith("*") and not value.endswith("\\*") else value
    if key in ("saddr", "daddr") and "/" not in value and "-" not in value:
        return f"{value}/128" if ":" in value else f"{value}/32"
    return value


def _ttl_match(key: str, neg: bool, value: str) -> Match:
    """``ip ttl 255`` / ``ip6 hoplimit != 1`` as the iptables ttl / hl
    match, the form :func:`vrrpfw.judge.rules.vrrpfw_key` recognises."""
    name = TTL_MATCH[key]
    return Match(name, ((f"{name}-eq", ("!", value) if neg else (value,)),))


def _condition(m: Dict[str, Any], sets: Dict[str, NftSet], fields: Dict[str, str]) -> Optional[Match]:
    """One ``match`` expression: a field where it is a plain literal, else a
    membership test; raises _Unknown where it cannot be decided."""
    op, left, right = m.get("op", "=="), m.get("left"), m.get("right")
    key, mask = _key(left)
    dynamic = _dynamic_refs(right, sets)
    if key == "never":
        return Match("always" if op == "!=" else "never")
    if op not in ("==", "!=", "in"):
        raise _Unknown(f"op {op}")
    if key in ("fib_rpf", "fib_rpf_mark") and isinstance(right, bool):
        values = ["present" if right else "missing"]
    else:
        values = _value(right, sets)
    neg = op == "!="
    if key in ("ct_state",) and op == "in":
        neg = False  # flags: any of them
    if key in TTL_MATCH and op != "in" and len(values) == 1 and mask is None and values[0].isdigit():
        return _ttl_match(key, neg, values[0])
    simple = (key in FIELD_OF and len(values) == 1 and FIELD_OF[key] not in fields and mask is None
              and not dynamic)
    if simple and (key != "l4proto" or not values[0].count("-")):
        fields[FIELD_OF[key]] = ("!" if neg else "") + _field_value(key, values[0])
        return None
    params: List[Tuple[str, Tuple[str, ...]]] = [("key", (key,)), ("values", tuple(values))]
    if neg:
        params.append(("neg", ("!",)))
    if mask is not None:
        params.append(("mask", (mask,)))
    if dynamic:
        params.append(("dynamic", dynamic))
    return Match("set", tuple(params))


def _dynamic_refs(right: Any, sets: Dict[str, NftSet]) -> Tuple[str, ...]:
    """The dynamic named sets a right-hand side refers to (``@blk``)."""
    if isinstance(right, str) and right.startswith("@"):
        found = sets.get(right[1:])
        if found is not None and found.dynamic:
            return (found.key,)
    return ()


@record
class _Built:
    fields: Dict[str, str] = field(default_factory=dict)
    matches: List[Match] = field(default_factory=list)
    effects: List[str] = field(default_factory=list)
    target: str = ""
    goto: bool = False
    # ((selector key, mask), [(value, verdict)])
    vmap: Optional[Tuple[Tuple[str, Optional[str]], List[Tuple[str, Any]]]] = None
    mark_op: Optional[Tuple[int, int]] = None
    mark_unknown: bool = False  # a second mark statement, or one not followed
    vmap_dynamic: Tuple[str, ...] = ()  # the map is dynamic: its current elements decide


def _verdict(v: Any) -> Tuple[str, bool]:
    """(target, goto) of a verdict object such as {"jump": {"target": "x"}}."""
    if isinstance(v, dict):
        if "jump" in v or "goto" in v:
            return str((v.get("jump") or v.get("goto") or {}).get("target")), "goto" in v
        for k, name in VERDICTS.items():
            if k in v:
                return name, False
    if isinstance(v, str) and v in VERDICTS:
        return VERDICTS[v], False
    return "UNKNOWN-VERDICT", False


def _vmap_entries(data: Any, sets: Dict[str, NftSet]) -> List[Tuple[str, Any]]:
    if isinstance(data, str) and data.startswith("@"):
        s = sets.get(data[1:])
        if s is None or s.elements is None:
            raise _Unknown(f"map {data}")
        pairs = s.elements
    elif isinstance(data, dict) and "set" in data:
        pairs = data["set"]
    else:
        raise _Unknown("vmap data")
    out = []
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise _Unknown("vmap element")
        for v in _value(pair[0], sets):
            out.append((v, pair[1]))
    return out


def _show(v: Any) -> str:
    """An expression or value in (roughly) nft's own syntax, for messages."""
    if isinstance(v, dict):
        if "meta" in v:
            return f"meta {v['meta'].get('key')}"
        if "payload" in v:
            return f"{v['payload'].get('protocol')} {v['payload'].get('field')}"
        if "ct" in v:
            return f"ct {v['ct'].get('key')}"
        if "fib" in v:
            return "fib " + " . ".join(v["fib"].get("flags", [])) + f" {v['fib'].get('result')}"
        if "set" in v:
            items = v["set"] if isinstance(v["set"], list) else [v["set"]]
            return "{ " + ", ".join(_show(e) for e in items) + " }"
        if "prefix" in v:
            return f"{v['prefix'].get('addr')}/{v['prefix'].get('len')}"
        if "range" in v:
            return "-".join(_show(e) for e in v["range"])
        if "concat" in v:
            return " . ".join(_show(e) for e in v["concat"])
        if "&" in v:
            return " & ".join(_show(e) for e in v["&"])
        return next(iter(v), "?")
    if isinstance(v, list):
        return ", ".join(_show(e) for e in v)
    return f'"{v}"' if isinstance(v, str) and not v.startswith("@") and not v.isalnum() else str(v)


def rule_text(rule: Dict[str, Any]) -> str:
    """A rule's expressions as nft would print them, roughly."""
    words: List[str] = []
    for expr in rule.get("expr", []):
        if "match" in expr:
            m = expr["match"]
            op = "" if m.get("op") in ("==", "in") else f"{m.get('op')} "
            words.append(f"{_show(m.get('left'))} {op}{_show(m.get('right'))}")
        elif "jump" in expr or "goto" in expr:
            kind = "jump" if "jump" in expr else "goto"
            words.append(f"{kind} {expr[kind].get('target')}")
        elif "vmap" in expr:
            words.append(f"{_show(expr['vmap'].get('key'))} vmap {_show(expr['vmap'].get('data'))}")
        elif "xt" in expr:
            words.append(f"xt {expr['xt'].get('type')} {expr['xt'].get('name')}")
        elif expr and next(iter(expr)) not in ("counter",):
            words.append(next(iter(expr)))
    if rule.get("comment"):
        words.append(f'comment "{rule["comment"]}"')
    text = " ".join(words)
    return f"{text} (handle {rule['handle']})" if "handle" in rule else text


def _payloads(node: Any) -> Iterator[str]:
    """The protocol of every payload expression anywhere in ``node``."""
    if isinstance(node, dict):
        payload = node.get("payload")
        if isinstance(payload, dict) and "protocol" in payload:
            yield str(payload["protocol"])
        for v in node.values():
            yield from _payloads(v)
    elif isinstance(node, list):
        for v in node:
            yield from _payloads(v)


def _requirement(key: str, value: str) -> Match:
    return Match("set", (("key", (key,)), ("values", (value,))))


def _implied(family: str, rule: Dict[str, Any], fields: Dict[str, str]) -> List[Match]:
    """The dependencies nft adds for payload expressions: ``ip ...`` needs
    an IPv4 packet, ``ip6 ...`` an IPv6 one, ``ah spi`` an AH header.  Left
    out where the table's family or a plain address field already says it
    (so vrrpfw's own rules keep the shape vrrpfw_key reads)."""
    out: List[Match] = []
    protos = set(_payloads(rule.get("expr", [])))
    for fam in sorted({PAYLOAD_FAMILY[p] for p in protos if p in PAYLOAD_FAMILY}):
        implied = TABLE_FAMILY.get(family) == fam or any(
            v and not v.startswith("!") and (":" in v) == (fam == "ipv6")
            for v in (fields.get("src"), fields.get("dst")))
        if not implied:
            out.append(_requirement("nfproto", fam))
    for proto in sorted(protos & OTHER_L4):
        out.append(_requirement("l4proto", proto))
    return out


def convert_rule(chain: str, rule: Dict[str, Any], sets: Dict[str, NftSet],
                 family: str = "ip") -> List[FwRule]:
    """One nft rule as evaluator rules (several for a verdict map).
    ``family``: the table's, which says what packets reach the rule."""
    b = _Built()
    exprs = rule.get("expr", [])
    ahead: List[FwRule] = []
    for i, expr in enumerate(exprs):
        had = len(b.effects)
        try:
            _statement(expr, sets, b)
        except _Unknown as e:
            b.matches.append(Match(f"nft-{str(e).split()[0]}"))
        if len(b.effects) > had and any(_conditional(e) for e in exprs[i + 1:]):
            # nft runs a rule's expressions in order: this statement runs
            # whenever the conditions before it hold, whatever follows.
            ahead.append(_side_effect(chain, rule, exprs[:i + 1], b, family))
            b.effects, b.mark_op, b.mark_unknown = [], None, False
    b.matches[:0] = _implied(family, rule, b.fields)
    if rule.get("comment"):
        b.matches.append(Match("comment", (("comment", (str(rule["comment"]),)),)))
    base = dict(chain=chain, matches=tuple(b.matches), effects=tuple(b.effects), handle=rule.get("handle"),
                text=rule_text(rule), mark_op=None if b.mark_unknown else b.mark_op, **b.fields)
    if b.vmap is None:
        return ahead + [FwRule(target=b.target, goto=b.goto, **base)]  # type: ignore[arg-type]
    (key, mask), entries = b.vmap
    out = []
    matches: Tuple[Match, ...] = tuple(b.matches)
    for value, verdict in entries:
        target, goto = _verdict(verdict)
        params: List[Tuple[str, Tuple[str, ...]]] = [("key", (key,)), ("values", (value,))]
        if mask is not None:
            params.append(("mask", (mask,)))
        if b.vmap_dynamic:
            params.append(("dynamic", b.vmap_dynamic))
        cond = Match("set", tuple(params)) if key != "never" else Match("never")
        out.append(FwRule(target=target, goto=goto,
                          **{**base, "matches": matches + (cond,)}))  # type: ignore[arg-type]
    if b.vmap_dynamic and key != "never":
        # An element a packet may add later: what it would map to is not known.
        cond = Match("set", (("key", (key,)), ("values", ()), ("dynamic", b.vmap_dynamic)))
        out.append(FwRule(target="UNJUDGED-VMAP", **{**base, "matches": matches + (cond,)}))  # type: ignore[arg-type]
    return ahead + out


def _conditional(expr: Dict[str, Any]) -> bool:
    """Can this expression stop the rule (a match, a rate, a map lookup)?"""
    return any(k in expr for k in ("match", "vmap", "limit", "quota", "meter", "connlimit")) \
        or _stateful_update(expr)


def _side_effect(chain: str, rule: Dict[str, Any], done: List[Dict[str, Any]], b: _Built,
                 family: str) -> FwRule:
    """The part of a rule up to a side effect followed by more conditions:
    the conditions so far and the effect, as a rule that lets the packet go
    on (its verdict belongs to the whole rule)."""
    fields = dict(b.fields)
    matches = _implied(family, {"expr": done}, fields) + list(b.matches)
    return FwRule(chain=chain, matches=tuple(matches), effects=tuple(b.effects), handle=rule.get("handle"),
                  text=rule_text(rule), mark_op=None if b.mark_unknown else b.mark_op, target="",
                  **fields)  # type: ignore[arg-type]


FULL = 0xFFFFFFFF


def _int(v: Any) -> Optional[int]:
    return v & FULL if isinstance(v, int) and not isinstance(v, bool) else None


def _is_mark(v: Any) -> bool:
    return isinstance(v, dict) and v.get("meta", {}).get("key") == "mark"


def _mark_value(value: Any) -> Optional[Tuple[int, int]]:
    """``meta mark set VALUE`` as (value, mask), the new mark being
    ``(mark & ~mask) ^ value``: a number, or the old mark and/or/xor a
    number (how nft writes iptables' --set-xmark, --or-mark ...)."""
    n = _int(value)
    if n is not None:
        return n, FULL
    if not isinstance(value, dict) or len(value) != 1:
        return None
    op, args = next(iter(value.items()))
    if op not in ("&", "|", "^") or not isinstance(args, list) or len(args) != 2:
        return None
    left, right = args
    b = _int(right)
    if b is None:
        return None
    inner = (0, 0) if _is_mark(left) else None  # the old mark, unchanged
    if inner is None and isinstance(left, dict) and list(left) == ["&"] and len(left["&"]) == 2 \
            and _is_mark(left["&"][0]) and _int(left["&"][1]) is not None:
        a = _int(left["&"][1])
        assert a is not None
        inner = (0, ~a & FULL)  # mark & a
    if inner is None:
        return None
    value0, mask0 = inner  # so far: (mark & ~mask0) ^ value0, value0 == 0
    if op == "&":
        return 0, (mask0 | ~b) & FULL
    if op == "^":
        return b, mask0
    # (m & ~mask0) | b == ((m & ~mask0) & ~b) ^ b
    return b, (mask0 | b) & FULL


def _stateful_update(expr: Dict[str, Any]) -> bool:
    """``add @s { ip saddr limit rate over 2/second }``: a set statement
    carrying a stateful expression acts as a condition."""
    stmt = expr.get("set") or expr.get("map")
    return isinstance(stmt, dict) and bool(stmt.get("stmt"))


def _fills(expr: Dict[str, Any], sets: Dict[str, NftSet]) -> Optional[str]:
    """``add @blk { ip saddr }`` / ``update @m { ... }``: the set this
    statement adds to from the packet (its state key)."""
    stmt = expr.get("set") or expr.get("map")
    if not isinstance(stmt, dict) or stmt.get("op") not in ("add", "update"):
        return None
    ref = stmt.get("set") or stmt.get("map")
    found = sets.get(ref[1:]) if isinstance(ref, str) and ref.startswith("@") else None
    return found.key if found is not None else None


def _statement(expr: Dict[str, Any], sets: Dict[str, NftSet], b: _Built) -> None:
    filled = _fills(expr, sets)
    if filled is not None:
        b.effects.append(f"fills:{filled}")
    if "match" in expr:
        cond = _condition(expr["match"], sets, b.fields)
        if cond is not None:
            b.matches.append(cond)
    elif "jump" in expr or "goto" in expr or any(k in expr for k in VERDICTS):
        b.target, b.goto = _verdict(expr)
    elif "vmap" in expr:
        vm = expr["vmap"]
        b.target = "UNJUDGED-VMAP"  # stays only if the map cannot be read
        b.vmap = (_key(vm["key"]), _vmap_entries(vm["data"], sets))
        b.vmap_dynamic = _dynamic_refs(vm["data"], sets)
    elif "xt" in expr:
        xt = expr["xt"]
        name = str(xt.get("name", "xt"))
        if xt.get("type") == "target":
            b.target = name.upper()
        else:
            b.matches.append(Match(name))  # params unknown: comment matches, others are maybes
    elif any(k in expr for k in ELSEWHERE):
        b.target = ELSEWHERE[next(k for k in ELSEWHERE if k in expr)]
    elif "mangle" in expr:
        key = expr["mangle"].get("key", {})
        selector = key.get("meta") or key.get("ct") or {}
        payload = key.get("payload") or {}
        if payload.get("field") in ("dscp", "ecn", "tos"):
            b.effects.append("TOS")  # ip dscp set ...: later matches read another byte
        elif payload.get("field") in ("ttl", "hoplimit"):
            b.effects.append("TTL")
        elif selector.get("key") == "zone" and "ct" in key:
            b.effects.append("CT")  # ct zone set: a conntrack template, as iptables' -j CT --zone
        elif selector.get("key") == "mark" and "ct" in key:
            b.effects.append("CONNMARK")  # the connection's mark: not followed
        elif selector.get("key") == "mark":
            b.effects.append("MARK")
            value = expr["mangle"].get("value")
            # meta mark set N: the packet's mark becomes N; anything else
            # (ct mark, an expression of the old mark) is not followed.
            op = _mark_value(value) if "meta" in key and b.mark_op is None else None
            if op is not None:
                b.mark_op = op
            else:
                b.mark_unknown = True
    elif "notrack" in expr:
        b.effects.append("NOTRACK")
    elif "ct timeout" in expr:
        b.effects.append("CT")  # a conntrack template too: a notrack after it does nothing
    elif "limit" in expr or "quota" in expr or "meter" in expr or "connlimit" in expr:
        raise _Unknown("rate")
    elif _stateful_update(expr):
        raise _Unknown("rate")  # a set update with a limit: matches only over the rate
    # counter, log, set/map updates, ct helper: neither conditions nor verdicts


def _set_elements(s: Dict[str, Any]) -> List[Any]:
    return list(s.get("elem", []))


def _set_dynamic(s: Dict[str, Any]) -> bool:
    """Packets or timeouts change it (the kernel's elements are only now's)."""
    flags = set(s.get("flags", []) if isinstance(s.get("flags"), list) else [s.get("flags")])
    return bool(flags & {"dynamic", "timeout"}) or "timeout" in s


def convert_table(family: str, name: str, items: Sequence[Dict[str, Any]],
                  xt: Optional[XtResolver] = None) -> NftTable:
    """``items``: the ``nftables`` array of ``nft -j list table FAMILY NAME``."""
    table = NftTable(family, name)
    for item in items:
        for kind in ("set", "map"):
            if kind in item:
                s = item[kind]
                table.sets[s["name"]] = NftSet(s["name"], _set_elements(s), kind == "map", _set_dynamic(s),
                                               nft_set_key(family, name, s["name"]))
        if "chain" in item:
            c = item["chain"]
            table.chains.setdefault(c["name"], [])
            if "hook" in c:
                table.headers[c["name"]] = c
    positions: Dict[str, int] = {}
    for item in items:
        r = item.get("rule")
        if r is None:
            continue
        chain = r["chain"]
        pos = positions.get(chain, 0)
        positions[chain] = pos + 1
        if xt is not None and any("xt" in e for e in r.get("expr", [])):
            decoded = xt(chain, pos)
            if decoded is not None:
                table.iptables_nft = True
                table.chains.setdefault(chain, []).append(
                    FwRule(**{**decoded.__dict__, "handle": r.get("handle")}))
                continue
        table.chains.setdefault(chain, []).extend(convert_rule(chain, r, table.sets, family))
    return table
