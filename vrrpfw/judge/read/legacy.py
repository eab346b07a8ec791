"""Legacy iptables (x_tables) chains on VRRP's path, read through libiptc.

Every legacy table that exists and can drop (raw, mangle, filter, security)
is read, not only filter: ``-t raw -A PREROUTING -p 112 -j DROP`` drops an
advert before filter INPUT ever sees it.  Only tables listed in
``/proc/net/ip_tables_names`` (``ip6_tables_names`` for ip6tables) are
opened: opening another would create it.

IPv4 tables (family "ip") are read at once; IPv6 ones (ip6tables, family
"ip6") only when asked (:meth:`LegacyTables.open_ip6`: IPv6 rules, close
and discover), since an IPv4 advert never crosses them.

Decoding a rule in python-iptables costs ~0.2 ms, so rules whose protocol
field can never be 112 (or AH's 51) are skipped from libiptc's raw entry
(they cannot match, jump, or be vrrpfw's).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ...errors import EnvironmentProblem
from ...host.hostscan import legacy_table_names
from ..path_model import LEGACY_HOOKS, LEGACY_TABLES, BaseChain, ChainId
from ..rules import FwRule
from .iptc_rules import could_match_vrrp, to_fwrule

IP6_NAMES = "/proc/net/ip6_tables_names"
TableKey = Tuple[str, str]  # (family "ip" | "ip6", table name)


class LegacyTables:
    """A snapshot of the legacy tables (one libiptc handle each) that both
    reads chains for the path model and carries the handles the iptables
    backend writes through.  ``tables`` is keyed by (family, name)."""

    def __init__(self, iptc: Any, names: Optional[List[str]] = None,
                 names6: Optional[List[str]] = None) -> None:
        self.iptc = iptc
        present = legacy_table_names() if names is None else names
        self.names = [t for t in LEGACY_TABLES if t in (present or [])]
        self._names6 = names6
        self.ip6_open = False
        self.tables: Dict[TableKey, Any] = {}
        self._rules: Dict[Tuple[str, str, str], List[FwRule]] = {}

    def open(self) -> None:
        """One snapshot per table per session; a cached python-iptables
        Table may predate our lock, so it is refreshed."""
        self.tables = {}
        self.ip6_open = False
        for name in self.names:
            self.tables[("ip", name)] = self._open(self.iptc.Table, name)
        self._rules = {}

    def open_ip6(self) -> None:
        """Add the ip6tables tables that exist (once per snapshot)."""
        if self.ip6_open:
            return
        present = legacy_table_names(IP6_NAMES) if self._names6 is None else self._names6
        for name in [t for t in LEGACY_TABLES if t in (present or [])]:
            self.tables[("ip6", name)] = self._open(self.iptc.Table6, name)
        self.ip6_open = True

    def _open(self, cls: Any, name: str) -> Any:
        try:
            cached = name in getattr(cls, "_cache", {})
            table = cls(name, autocommit=False)
            if cached:
                table.refresh()
        except self.iptc.IPTCError as e:
            what = "ip6tables " if cls is getattr(self.iptc, "Table6", None) else ""
            raise EnvironmentProblem(f"cannot read the legacy {what}{name} table: {e}") from None
        return table

    def forget(self) -> None:
        self._rules = {}

    def table(self, cid: ChainId) -> Any:
        return self.tables[(cid.family, cid.table)]

    def chain_rules(self, table: str, chain: str, family: str = "ip") -> List[FwRule]:
        key = (family, table, chain)
        if key not in self._rules:
            t = self.tables[(family, table)]
            iptc_chain = self.iptc.Chain(t, chain)
            rules: List[FwRule] = []
            entry = t.first_rule(chain)
            while entry:
                if _could_match(entry, family):
                    rule = t.create_rule(entry, iptc_chain)
                    fw = to_fwrule(chain, rule)
                    rules.append(FwRule(**{**fw.__dict__, "handle": rule}))
                entry = t.next_rule(entry)
            self._rules[key] = rules
        return self._rules[key]

    def chain_names(self, table: str, family: str = "ip") -> List[str]:
        return [c.name for c in self.tables[(family, table)].chains]

    def chain_ids(self, names: Optional[List[str]] = None) -> List[ChainId]:
        """The chains named ``names`` (default: every chain) of every open table."""
        out = []
        for (family, table), t in self.tables.items():
            chains = ([c for c in names if t.is_chain(c)] if names is not None
                      else self.chain_names(table, family))
            out += [ChainId("legacy", family, table, c) for c in chains]
        return out

    def base_chains(self) -> List[BaseChain]:
        out = []
        for (family, name), table in self.tables.items():
            for chain in LEGACY_HOOKS:
                if not table.is_chain(chain):
                    continue
                policy = self.iptc.Chain(table, chain).get_policy()

                def lookup(sub: str, name: str = name, table: Any = table, family: str = family
                           ) -> Optional[List[FwRule]]:
                    if not sub or not table.is_chain(sub) or table.builtin_chain(sub):
                        return None
                    return self.chain_rules(name, sub, family)

                out.append(BaseChain(ChainId("legacy", family, name, chain), LEGACY_HOOKS[chain],
                                     LEGACY_TABLES[name], policy.name if policy is not None else "ACCEPT",
                                     self.chain_rules(name, chain, family), lookup))
        return out


def _could_match(entry: Any, family: str) -> bool:
    if family == "ip6":
        return could_match_vrrp(entry.ipv6.proto, entry.ipv6.invflags, entry.ipv6.flags)
    return could_match_vrrp(entry.ip.proto, entry.ip.invflags)
