"""A path model from saved texts instead of the kernel.  Pure.

For judging a ruleset that is not loaded (the corpus in the unit tests,
which run without root; a saved file before it is restored): an
iptables-save text (legacy, or iptables-nft's, which keeps its chains in
``ip``-family tables) and the JSON of ``nft -j list ruleset``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ...model import FIREWALLD_TABLES
from ..iptables import parse_save
from ..nft import convert_table
from ..path_model import LEGACY_HOOKS, LEGACY_TABLES, BaseChain, Bridge, ChainId, PathModel
from ..rules import FwRule
from .nft import HOOKS


def legacy_chains(text: str, layer: str = "legacy", family: str = "ip") -> List[BaseChain]:
    """Base chains of an iptables-save text.  ``layer`` "nft" reads it as
    iptables-nft's tables (same hooks and priorities, family ip);
    ``family`` "ip6" reads an ip6tables-save text."""
    out = []
    for table, chains in parse_save(text).items():
        if table not in LEGACY_TABLES:
            continue

        def lookup(name: str, chains: Dict[str, Tuple[Optional[str], List[FwRule]]] = chains
                   ) -> Optional[List[FwRule]]:
            entry = chains.get(name)
            return entry[1] if entry is not None and entry[0] is None else None

        for name, (policy, rules) in chains.items():
            if name in LEGACY_HOOKS and policy is not None:
                out.append(BaseChain(ChainId(layer, family, table, name), LEGACY_HOOKS[name],
                                     LEGACY_TABLES[table], policy, rules, lookup))
    return out


def nft_chains(doc: Dict[str, Any],
               devices: Optional[Dict[Tuple[str, str, str], Tuple[str, ...]]] = None) -> List[BaseChain]:
    """Base chains of ``nft -j list ruleset`` output."""
    items = doc.get("nftables", [])
    by_table: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for item in items:
        for kind in ("table", "chain", "rule", "set", "map"):
            if kind in item:
                body = item[kind]
                key = (body.get("family"), body.get("table") if kind != "table" else body.get("name"))
                by_table.setdefault(key, []).append(item)
    out = []
    for (family, name), table_items in by_table.items():
        if family not in ("ip", "ip6", "inet", "netdev", "bridge"):
            continue
        table = convert_table(family, name, table_items)
        owner = "firewalld" if (family, name) in FIREWALLD_TABLES else ""
        for cname, header in table.headers.items():
            hook = HOOKS.get(str(header.get("hook")))
            if hook is None:
                continue

            def lookup(sub: str, chains: Dict[str, List[FwRule]] = table.chains) -> Optional[List[FwRule]]:
                return chains.get(sub) if sub else None

            dev = header.get("dev")
            devs = (tuple(dev) if isinstance(dev, list) else (str(dev),)) if dev else None
            if devs is None and devices is not None and hook.value in ("ingress", "egress"):
                devs = devices.get((family, name, cname))
            out.append(BaseChain(ChainId("nft", family, name, cname), hook, int(header.get("prio", 0)),
                                 str(header.get("policy", "accept")).upper(), table.chains.get(cname, []),
                                 lookup, devs, owner, str(header.get("type", "filter"))))
    return out


def model_from_texts(legacy: Optional[str] = None, iptnft: Optional[str] = None,
                     nft_json: Optional[Dict[str, Any]] = None,
                     devices: Optional[Dict[Tuple[str, str, str], Tuple[str, ...]]] = None,
                     legacy6: Optional[str] = None, iptnft6: Optional[str] = None,
                     bridges: Optional[Dict[str, Bridge]] = None) -> PathModel:
    """iptables-nft's tables are read from their save text where it is given:
    in nft's JSON their compat matches (comments, conntrack) show by name
    only.  ``legacy6`` / ``iptnft6`` are the ip6tables-save texts;
    ``bridges`` the host's bridges where known (else any interface may be a
    bridge, and br_netfilter's physdev info is unknown)."""
    model = PathModel(bridges=bridges)
    for text, layer, family in ((legacy, "legacy", "ip"), (legacy6, "legacy", "ip6")):
        if text:
            model.chains += legacy_chains(text, layer, family)
    via_text = {("ip", t) for t in parse_save(iptnft)} if iptnft else set()
    via_text |= {("ip6", t) for t in parse_save(iptnft6)} if iptnft6 else set()
    if nft_json:
        model.chains += [c for c in nft_chains(nft_json, devices)
                         if (c.id.family, c.id.table) not in via_text]
    for text, family in ((iptnft, "ip"), (iptnft6, "ip6")):
        if text:
            model.chains += legacy_chains(text, "nft", family)
    return model
