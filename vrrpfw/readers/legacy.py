"""Legacy iptables (x_tables) chains on VRRP's path, read through libiptc.

Every legacy table that exists and can drop (raw, mangle, filter, security)
is read, not only filter: ``-t raw -A PREROUTING -p 112 -j DROP`` drops an
advert before filter INPUT ever sees it.  Only tables listed in
``/proc/net/ip_tables_names`` are opened: opening another would create it.

Decoding a rule in python-iptables costs ~0.2 ms, so rules whose protocol
field can never be 112 are skipped from libiptc's raw entry (they cannot
match, jump, or be vrrpfw's).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..chaineval import FwRule
from ..errors import EnvironmentProblem
from ..hostscan import legacy_table_names
from ..netpath import LEGACY_HOOKS, LEGACY_TABLES, BaseChain, ChainId
from .iptc_rules import could_match_vrrp, to_fwrule


class LegacyTables:
    """A snapshot of the legacy tables (one libiptc handle each) that both
    reads chains for the path model and carries the handles the iptables
    backend writes through."""

    def __init__(self, iptc: Any, names: Optional[List[str]] = None) -> None:
        self.iptc = iptc
        present = legacy_table_names() if names is None else names
        self.names = [t for t in LEGACY_TABLES if t in (present or [])]
        self.tables: Dict[str, Any] = {}
        self._rules: Dict[tuple, List[FwRule]] = {}

    def open(self) -> None:
        """One snapshot per table per session; a cached python-iptables
        Table may predate our lock, so it is refreshed."""
        for name in self.names:
            try:
                cached = name in getattr(self.iptc.Table, "_cache", {})
                table = self.iptc.Table(name, autocommit=False)
                if cached:
                    table.refresh()
            except self.iptc.IPTCError as e:
                raise EnvironmentProblem(f"cannot read the legacy {name} table: {e}") from None
            self.tables[name] = table
        self._rules = {}

    def forget(self) -> None:
        self._rules = {}

    def chain_rules(self, table: str, chain: str) -> List[FwRule]:
        key = (table, chain)
        if key not in self._rules:
            t = self.tables[table]
            iptc_chain = self.iptc.Chain(t, chain)
            rules: List[FwRule] = []
            entry = t.first_rule(chain)
            while entry:
                if could_match_vrrp(entry.ip.proto, entry.ip.invflags):
                    rule = t.create_rule(entry, iptc_chain)
                    fw = to_fwrule(chain, rule)
                    rules.append(FwRule(**{**fw.__dict__, "handle": rule}))
                entry = t.next_rule(entry)
            self._rules[key] = rules
        return self._rules[key]

    def chain_names(self, table: str) -> List[str]:
        return [c.name for c in self.tables[table].chains]

    def base_chains(self) -> List[BaseChain]:
        out = []
        for name, table in self.tables.items():
            for chain in LEGACY_HOOKS:
                if not table.is_chain(chain):
                    continue
                policy = self.iptc.Chain(table, chain).get_policy()

                def lookup(sub: str, name: str = name, table: Any = table) -> Optional[List[FwRule]]:
                    if not sub or not table.is_chain(sub) or table.builtin_chain(sub):
                        return None
                    return self.chain_rules(name, sub)

                out.append(BaseChain(ChainId("legacy", "ip", name, chain), LEGACY_HOOKS[chain],
                                     LEGACY_TABLES[name], policy.name if policy is not None else "ACCEPT",
                                     self.chain_rules(name, chain), lookup))
        return out
