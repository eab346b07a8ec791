"""The firewall's drop counters around a listen.

Firewall counters are read best effort before and after (``nft -j list
ruleset``; legacy ``iptables -L -v -x -n`` of the tables that exist): rules
with a counter and a drop/reject verdict, and the legacy chain policies,
whose packet count grew during the listen.  A failure to read them never
fails the listen; the report says why instead.

Split from :mod:`.listener`: reading counters has nothing to do with
capturing packets.
"""

from __future__ import annotations

import json
import shutil
from typing import Any, Dict, List, Sequence, Tuple

from ..host.run import run
from .report import (
    FAMILIES,
    CounterGrowth,
)

# --- counters: best effort ---

def _run(argv: Sequence[str]) -> str:
    ran = run(argv, timeout=20).raised()
    if ran.code != 0:
        raise RuntimeError(f"{argv[0]} failed: {(ran.err or ran.out).strip().splitlines()[:1]}")
    return ran.out


def nft_drop_counters(doc: Dict[str, Any]) -> Dict[Tuple[str, ...], Tuple[int, str, str]]:
    """From ``nft -j list ruleset``: each rule with an anonymous counter and
    a drop or reject verdict in a base chain on a receive hook (ingress,
    prerouting, input) -> (packets, hook, verdict)."""
    hooks: Dict[Tuple[str, str, str], str] = {}
    out: Dict[Tuple[str, ...], Tuple[int, str, str]] = {}
    items = doc.get("nftables", []) if isinstance(doc, dict) else []
    for item in items:
        chain = item.get("chain") if isinstance(item, dict) else None
        if isinstance(chain, dict) and chain.get("hook") in ("ingress", "prerouting", "input"):
            hooks[(chain.get("family", ""), chain.get("table", ""), chain.get("name", ""))] = chain["hook"]
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict):
            continue
        where = (rule.get("family", ""), rule.get("table", ""), rule.get("chain", ""))
        if where not in hooks:
            continue
        packets, verdict = None, None
        for expr in rule.get("expr", []) or []:
            if not isinstance(expr, dict):
                continue
            c = expr.get("counter")
            if isinstance(c, dict) and isinstance(c.get("packets"), int):
                packets = c["packets"]
            for v in ("drop", "reject"):
                if v in expr:
                    verdict = v
        if packets is not None and verdict is not None:
            key = ("nftables", where[0], where[1], where[2], f"handle {rule.get('handle')}")
            out[key] = (packets, hooks[where], verdict)
    return out


def legacy_drop_counters(text: str, layer: str, table: str) -> Dict[Tuple[str, ...], Tuple[int, str, str]]:
    """From ``iptables-legacy -t TABLE -L -v -x -n --line-numbers``: DROP
    and REJECT rules, and the policy of built-in chains that drop."""
    family = "ip6" if layer.startswith("ip6") else "ip"
    out: Dict[Tuple[str, ...], Tuple[int, str, str]] = {}
    chain = ""
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Chain "):
            chain = parts[1] if len(parts) > 1 else ""
            if "(policy" in line and len(parts) >= 5 and parts[3] in ("DROP", "REJECT"):
                out[(layer, family, table, chain, "policy")] = (int(parts[4]), chain.lower(), parts[3])
            continue
        if len(parts) >= 4 and parts[0].isdigit() and parts[1].isdigit() and parts[3] in ("DROP", "REJECT"):
            hook = chain.lower() if chain in ("INPUT", "PREROUTING") else f"chain {chain}"
            out[(layer, family, table, chain, f"rule {parts[0]}")] = (int(parts[1]), hook, parts[3])
    return out


def read_counters(families: Sequence[str] = FAMILIES) -> Tuple[Dict[Tuple[str, ...], Tuple[int, str, str]],
                                                                 List[str]]:
    """A snapshot of every drop counter we can read, and why some could not."""
    snap: Dict[Tuple[str, ...], Tuple[int, str, str]] = {}
    why: List[str] = []
    if shutil.which("nft") is None:
        why.append("nftables: nft is not installed")
    else:
        try:
            snap.update(nft_drop_counters(json.loads(_run(["nft", "-j", "list", "ruleset"]) or "{}")))
        except (RuntimeError, ValueError, OSError) as e:
            why.append(f"nftables: {e}")
    legacy = [("iptables-legacy", "/proc/net/ip_tables_names", "ipv4"),
              ("ip6tables-legacy", "/proc/net/ip6_tables_names", "ipv6")]
    for tool, names, family in legacy:
        if family not in families:
            continue
        try:
            with open(names) as f:  # only tables that exist: listing one would create it
                tables = [t.strip() for t in f if t.strip() in ("raw", "mangle", "filter", "security")]
        except OSError:
            continue  # legacy tables not loaded: nothing to read
        if tables and shutil.which(tool) is None:
            why.append(f"{tool}: not installed, but legacy tables {','.join(tables)} exist")
            continue
        for table in tables:
            try:
                text = _run([tool, "-w", "5", "-t", table, "-L", "-v", "-x", "-n", "--line-numbers"])
                snap.update(legacy_drop_counters(text, tool, table))
            except (RuntimeError, OSError) as e:
                why.append(f"{tool} {table}: {e}")
    return snap, why


def counter_growth(before: Dict[Tuple[str, ...], Tuple[int, str, str]],
                   after: Dict[Tuple[str, ...], Tuple[int, str, str]]) -> List[CounterGrowth]:
    grown = []
    for key, (packets, hook, verdict) in sorted(after.items()):
        old = before.get(key)
        delta = packets - (old[0] if old else 0)
        if old is not None and delta > 0:
            layer, family, table, chain, rule = key
            grown.append(CounterGrowth(layer, family, table, chain, hook, rule, verdict, delta))
    return grown
