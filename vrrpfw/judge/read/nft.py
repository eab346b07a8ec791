"""nf_tables chains on VRRP's path, read through ``nft -j``.

``nft -j list chains`` (headers only, cheap) says which tables have a base
chain on a hook the advert crosses; each such table is then listed once,
whole (chains, rules, sets and maps with their elements), so a table of
50,000 rules that VRRP never meets costs nothing.  Tables written by
iptables-nft hide match details in compat expressions; where those occur,
``iptables-nft -t TABLE -S`` gives the same rules as text.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ...host.nft import nft_json
from ...host.run import run
from ...model import FIREWALLD_TABLES
from ..path_model import BaseChain, ChainId, Hook

# The converters are imported where a table is listed: a host whose nf_tables
# has nothing on VRRP's path (a legacy host) never pays for them.
if TYPE_CHECKING:
    from ..nft import NftTable
    from ..rules import FwRule

FAMILIES = ("ip", "ip6", "inet", "netdev", "bridge")
HOOKS = {h.value: h for h in Hook}


@dataclass
class NftLayer:
    chains: List[BaseChain] = field(default_factory=list)
    tables: Dict[Tuple[str, str], NftTable] = field(default_factory=dict)
    # every chain of every ip/inet/netdev/bridge table (close sweeps them all)
    all_chains: List[Tuple[str, str, str]] = field(default_factory=list)
    unread: Optional[str] = None  # why nf_tables could not be read
    # each listed table's handle (nf_tables numbers a recreated table afresh)
    handles: Dict[Tuple[str, str], int] = field(default_factory=dict)


XT_TOOLS = {"ip": "iptables-nft", "ip6": "ip6tables-nft"}


def _xt_resolver(table: str, family: str = "ip") -> Any:
    """Rules of an iptables-nft (``ip``) or ip6tables-nft (``ip6``) table as
    that tool prints them, by chain and position; None where the tool is
    missing or disagrees."""
    tool = shutil.which(XT_TOOLS[family])
    if tool is None:
        return None
    ran = run([tool, "-t", table, "-S"], timeout=60)
    if ran.exc is not None:
        return None
    from ..iptables import parse_rule

    out = ran.out
    by_chain: Dict[str, List[FwRule]] = {}
    for line in out.splitlines():
        rule = parse_rule(line)
        if rule is not None:
            by_chain.setdefault(rule.chain, []).append(rule)

    def resolve(chain: str, pos: int) -> Optional[FwRule]:
        rules = by_chain.get(chain, [])
        return rules[pos] if pos < len(rules) else None
    return resolve


def _ebt_resolver(table: str) -> Any:
    """Rules of an ebtables-nft table as ``ebtables-nft -L`` prints them, by
    chain and position; None where the tool is missing."""
    tool = shutil.which("ebtables-nft")
    if tool is None:
        return None
    ran = run([tool, "-t", table, "-L"], timeout=60)
    if ran.exc is not None:
        return None
    from ..ebtables import parse_listing as parse_ebtables

    out = ran.out
    by_chain = parse_ebtables(out)

    def resolve(chain: str, pos: int) -> Optional[FwRule]:
        rules = by_chain.get(chain, [])
        return rules[pos] if pos < len(rules) else None
    return resolve


_DEVICE = re.compile(r'devices?\s*=?\s*(\{[^}]*\}|"[^"]*"|\S+)')


def parse_devices(text: str) -> Dict[Tuple[str, str, str], Tuple[str, ...]]:
    """Devices of ingress/egress chains from ``nft list chains`` text: the
    JSON of nft 1.0.x leaves them out."""
    out: Dict[Tuple[str, str, str], Tuple[str, ...]] = {}
    table: Optional[Tuple[str, str]] = None
    chain: Optional[str] = None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "table":
            table, chain = (words[1], words[2]), None
        elif len(words) >= 2 and words[0] == "chain":
            chain = words[1]
        elif table and chain and "hook" in words:
            m = _DEVICE.search(line)
            if m:
                names = re.findall(r'"([^"]*)"|([^\s{},"]+)', m.group(1))
                out[(table[0], table[1], chain)] = tuple(a or b for a, b in names)
    return out


def _devices(header: Dict[str, Any], known: Dict[Tuple[str, str, str], Tuple[str, ...]]
             ) -> Optional[Tuple[str, ...]]:
    """The devices a chain is bound to; None for chains on every device."""
    if header.get("hook") not in ("ingress", "egress"):
        return None
    dev = header.get("dev")
    if dev is not None:
        return tuple(dev) if isinstance(dev, list) else (str(dev),)
    return known.get((header["family"], header["table"], header["name"]))


def _device_listing() -> Dict[Tuple[str, str, str], Tuple[str, ...]]:
    ran = run([shutil.which("nft") or "nft", "list", "chains"], timeout=60)
    if ran.exc is not None:
        return {}
    return parse_devices(ran.out)


def read(sweep: bool = False, heads: Any = None) -> NftLayer:
    """Every table with a chain on VRRP's path.  ``heads``: ``nft -j list
    chains`` as the caller read it moments ago in this run (the host scan),
    so it is not run twice."""
    layer = NftLayer()
    if shutil.which("nft") is None:
        if os.path.isdir("/sys/module/nf_tables"):
            layer.unread = "nf_tables is loaded but nft is not installed (apt-get install nftables)"
        return layer
    try:
        if heads is None:
            heads = nft_json(["list", "chains"])
    except PermissionError:
        layer.unread = "nf_tables (reading it needs root or CAP_NET_ADMIN)"
        return layer
    except (RuntimeError, OSError, ValueError) as e:
        layer.unread = f"nf_tables ({e})"
        return layer
    try:
        wanted, devices = _wanted(layer, heads, sweep)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        layer.unread = f"nf_tables (nft's chain listing has a shape vrrpfw does not know: {e!r})"
        return layer
    for family, name in wanted:
        try:
            doc = nft_json(["list", "table", family, name])
        except (PermissionError, RuntimeError, OSError, ValueError) as e:
            layer.unread = f"nf_tables table {family} {name} ({e})"
            continue
        try:
            _add_table(layer, family, name, doc.get("nftables", []), devices)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            # A newer nft may print what this version of vrrpfw cannot
            # judge: that table is unread (so no verdict is "ok"), not a crash.
            layer.unread = (f"nf_tables table {family} {name} (nft's JSON has a shape vrrpfw "
                            f"does not know: {e!r})")
    return layer


def _wanted(layer: NftLayer, heads: Any, sweep: bool
            ) -> Tuple[List[Tuple[str, str]], Dict[Tuple[str, str, str], Tuple[str, ...]]]:
    """The tables to list (those with a hook on VRRP's path; all when close
    sweeps) and the devices of netdev chains."""
    wanted: List[Tuple[str, str]] = []
    for item in heads.get("nftables", []):
        c = item.get("chain")
        if not c or c.get("family") not in FAMILIES:
            continue
        layer.all_chains.append((c["family"], c["table"], c["name"]))
        key = (c["family"], c["table"])
        if (c.get("hook") in HOOKS or sweep) and key not in wanted:
            wanted.append(key)
    devices: Dict[Tuple[str, str, str], Tuple[str, ...]] = {}
    hooks = {str((i.get("chain") or {}).get("hook")) for i in heads.get("nftables", [])}
    if hooks & {"ingress", "egress"}:
        devices = _device_listing()
    return wanted, devices


def _add_table(layer: NftLayer, family: str, name: str, items: List[Any],
               devices: Dict[Tuple[str, str, str], Tuple[str, ...]]) -> None:
    from ..nft import convert_table

    has_xt = family in (*XT_TOOLS, "bridge") and any("xt" in e for i in items
                                                     for e in (i.get("rule") or {}).get("expr", []))
    resolver = None
    if has_xt:
        resolver = _ebt_resolver(name) if family == "bridge" else _xt_resolver(name, family)
    table = convert_table(family, name, items, resolver)
    layer.tables[(family, name)] = table
    for item in items:
        head = item.get("table")
        if head and (head.get("family"), head.get("name")) == (family, name) and "handle" in head:
            layer.handles[(family, name)] = int(head["handle"])
    owner = "firewalld" if (family, name) in FIREWALLD_TABLES else ""
    for cname, header in table.headers.items():
        hook = HOOKS.get(str(header.get("hook")))
        if hook is None:
            continue

        def lookup(sub: str, table: NftTable = table) -> Optional[List[FwRule]]:
            return table.chains.get(sub) if sub else None

        policy = str(header.get("policy", "accept")).upper()
        cid = ChainId("nft", family, name, cname)
        layer.chains.append(BaseChain(cid, hook, int(header.get("prio", 0)), policy,
                                      table.chains.get(cname, []), lookup,
                                      _devices(header, devices), owner, str(header.get("type", "filter"))))
