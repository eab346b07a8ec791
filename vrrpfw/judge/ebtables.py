"""ebtables rules (``ebtables-nft -L`` lines) into the evaluator's model.  Pure.

ebtables-nft keeps its tables in nf_tables' ``bridge`` family, and some of
its matches (``--ip-proto``, ``--ip-dst``...) are compat ``xt`` expressions
whose details nft's JSON leaves out.  ``ebtables-nft -t TABLE -L`` prints
them; this reads those lines.  ``-i``/``-o`` are the bridge port (as a
bridge chain's iifname), ``--logical-in``/``--logical-out`` the bridge.
Anything not understood is a maybe-match, never a guess.
"""

from __future__ import annotations

import shlex
from typing import Dict, List, Optional, Tuple

from .rules import FwRule, Match

ETHERTYPES = {"ipv4": "ip", "0x0800": "ip", "ipv6": "ip6", "0x86dd": "ip6"}
TARGETS = {"ACCEPT": "ACCEPT", "DROP": "DROP", "RETURN": "RETURN", "CONTINUE": ""}


def _set(key: str, value: str, neg: bool) -> Match:
    params: List[Tuple[str, Tuple[str, ...]]] = [("key", (key,)), ("values", (value,))]
    if neg:
        params.append(("neg", ("!",)))
    return Match("set", tuple(params))


def parse_line(chain: str, line: str) -> Optional[FwRule]:
    """One rule line of ``ebtables -L`` in ``chain``; None for other lines."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if not words or not words[0].startswith(("-", "!")):
        return None
    fields: Dict[str, str] = {}
    matches: List[Match] = []
    target, goto = "", False
    i, neg = 0, False
    while i < len(words):
        w = words[i]
        if w == "!":
            neg, i = True, i + 1
            continue
        value = words[i + 1] if i + 1 < len(words) else ""
        if value == "!":  # the old form: -p ! IPv4
            neg, value = True, words[i + 2] if i + 2 < len(words) else ""
            i += 1
        i += 2
        bang = "!" if neg else ""
        if w in ("-j", "--jump"):
            target = TARGETS.get(value, value)
        elif w in ("-p", "--protocol"):
            eth = ETHERTYPES.get(value.lower())
            matches.append(_set("ethertype", eth, neg) if eth else Match("always" if neg else "never"))
        elif w in ("-i", "--in-interface", "--in-if"):
            fields["in_iface"] = bang + value
        elif w in ("-o", "--out-interface", "--out-if"):
            fields["out_iface"] = bang + value
        elif w in ("--logical-in", "--logical-out"):
            key = "ibrname" if w == "--logical-in" else "obrname"
            matches.append(_set(key, value[:-1] + "*" if value.endswith("+") else value, neg))
        elif w in ("--ip-proto", "--ip-protocol", "--ip6-proto", "--ip6-protocol"):
            fields["protocol"] = bang + value
        elif w in ("--ip-src", "--ip-source", "--ip6-src", "--ip6-source"):
            fields["src"] = bang + value
        elif w in ("--ip-dst", "--ip-destination", "--ip6-dst", "--ip6-destination"):
            fields["dst"] = bang + value
        elif w in ("-d", "--destination", "--dst") and value.count(":") == 5 and "/" not in value:
            matches.append(_set("ether_daddr", value.lower(), neg))
        elif w == "--pkttype-type":
            matches.append(_set("pkttype", value.lower(), neg))
        elif w in ("-c", "--set-counters"):
            i += 1  # two numbers
        else:
            matches.append(Match(f"ebt{w}"))  # not judged: a maybe-match
            while i < len(words) and not words[i].startswith("-") and words[i] != "!":
                i += 1
            continue
        neg = False
    if not target:
        target = ""
    return FwRule(chain=chain, matches=tuple(matches), target=target, goto=goto, text=line.strip(),
                  **fields)  # type: ignore[arg-type]


def parse_listing(text: str) -> Dict[str, List[FwRule]]:
    """``ebtables -t TABLE -L`` output: each chain's rules in order."""
    out: Dict[str, List[FwRule]] = {}
    chain: Optional[str] = None
    for line in text.splitlines():
        if line.startswith("Bridge chain:"):
            chain = line.split(":", 1)[1].split(",", 1)[0].strip()
            out.setdefault(chain, [])
            continue
        if chain is None or not line.strip():
            continue
        rule = parse_line(chain, line)
        if rule is not None:
            out[chain].append(rule)
    return out
