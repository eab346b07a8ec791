"""Legacy iptables through python-iptables (libiptc).

Every legacy chain on VRRP's path is read (raw, mangle, filter and security
tables, the hooks an advert crosses, and the user chains they jump to), so
cost grows with those chains and not with the rest; close alone reads every
chain, since a vrrpfw rule moved elsewhere is still vrrpfw's to remove.
The verdict is the whole path's (nf_tables chains included, read-only).
Writes happen under the xtables lock, on a snapshot taken after the lock is
held; vrrpfw's rule goes to the top of each legacy chain that does not
certainly let the advert through, one libiptc commit per table.

IPv6 rules live in ip6tables' tables (python-iptables' Table6/Rule6, chain
family "ip6"), read only when a rule asked for is IPv6, or by close and
discover.  The strict rules' ``ttl`` / ``hl`` match is built the way
:func:`vrrpfw.judge.read.iptc_loader.ttl_way` found to work with this libxtables.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Set

from ..errors import BackendError, ConcurrentChange
from ..host.hostscan import HostScan
from ..judge.path_model import LEGACY_HOOKS, BaseChain, ChainId, PathModel
from ..judge.read.iptc_loader import add_ttl_match, delete, insert, load_iptc
from ..judge.read.legacy import LegacyTables
from ..judge.read.model import build_model
from ..judge.read.nft import read as nft_read
from ..judge.rules import FwRule, vrrpfw_key
from ..model import COMMENT, Direction, Family, Key, VrrpRule, rules_from_keys
from ..persist.iptables_line import rule_line
from ..results import Action
from .base import Availability, Backend, Change, Options, RuntimeStatus
from .xtables_lock import xtables_lock

if TYPE_CHECKING:  # the saved file's store is imported where a run persists
    from ..persist.iptables_save import Placement
    from ..persist.store import Persister


class IptablesBackend(Backend):
    name = "iptables"
    summary = "legacy iptables (raw, mangle, filter, security) through python-iptables"

    def __init__(self, options: Options, scan: Optional[HostScan] = None) -> None:
        super().__init__(options, scan)
        self._iptc: Any = None
        self._legacy: Optional[LegacyTables] = None
        # rule key -> (table, chain)s where vrrpfw's rule is or goes, for the saved file
        self.placements: Dict[Key, Set[Placement]] = {}

    @classmethod
    def availability(cls) -> Availability:
        if os.geteuid() != 0:
            return Availability(False, "iptables needs root (run vrrpfw as root)")
        try:
            load_iptc()
        except ModuleNotFoundError as e:  # iptc_loader says what to install
            return Availability(False, str(e))
        except Exception as e:  # ImportError, OSError from ctypes, XTablesError
            return Availability(False, f"python-iptables cannot be loaded: {e}")
        return Availability(True, "python-iptables loads and we are root")

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        self._iptc = load_iptc()
        lock = xtables_lock(self.options.lock_timeout) if write else contextlib.nullcontext()
        with lock:
            # The filter table is where vrrpfw writes when nothing on the
            # path drops (open on a bare host still pins VRRP there? no: such
            # chains are left alone), so only existing tables are read.
            self._legacy = LegacyTables(self._iptc)
            self._legacy.open()
            try:
                yield
            finally:
                self._legacy.forget()

    def _tables(self) -> LegacyTables:
        assert self._legacy is not None, "outside a session"
        return self._legacy

    pin_places = "legacy filter INPUT / OUTPUT; the filter table is not loaded"

    def writes(self, chain: BaseChain) -> bool:
        return chain.id.layer == "legacy"

    def pins_in(self, chain: BaseChain) -> bool:
        return self.writes(chain) and chain.id.table == "filter" and chain.id.name in ("INPUT", "OUTPUT")

    def path_model(self) -> PathModel:
        return build_model(self._tables(), nft_read(heads=self.scan_heads()), self.options)

    # -- reading ---------------------------------------------------------
    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        o = self.options
        if o.persist and o.persist_file:  # refused before anything changes
            from ..persist.iptables_save import check_family
            from ..persist.iptables_store import custom_family, restored_by

            check_family(rules, custom_family(o.persist_file), o.persist_file, restored_by)
        if o.sweep or any(r.family is Family.IPV6 for r in rules):
            self._tables().open_ip6()
        statuses = self.path_statuses(self.path_model(), rules)
        swept = self._swept()
        for st in statuses:
            chains = [cid for cid, _ in st.ours if cid.name in LEGACY_HOOKS] + list(st.needs)
            self.placements[st.rule.key] = {(cid.table, cid.name) for cid in chains}
            seen = {id(fw) for _, fw in st.ours}
            st.ours += [(cid, fw) for cid in swept for fw in self._rules(cid)
                        if vrrpfw_key(fw, anywhere=True) == st.rule.key and id(fw) not in seen]
        return statuses

    def _rules(self, cid: ChainId) -> List[FwRule]:
        return self._tables().chain_rules(cid.table, cid.name, cid.family)

    def _swept(self) -> List[ChainId]:
        """Every chain of every legacy table, for close: a vrrpfw rule moved
        into another chain is still vrrpfw's to remove.  Reading them all
        costs what the whole table costs, so only close does."""
        if not self.options.sweep:
            return []
        hooked = set(LEGACY_HOOKS)
        return [cid for cid in self._tables().chain_ids() if cid.name not in hooked]

    def discover(self) -> List[VrrpRule]:
        legacy = self._tables()
        legacy.open_ip6()
        chains = legacy.chain_ids(list(LEGACY_HOOKS))
        return rules_from_keys(vrrpfw_key(fw, anywhere=True) for cid in chains + self._swept()
                               for fw in self._rules(cid))

    # -- writing ---------------------------------------------------------
    def _build(self, r: VrrpRule) -> Any:
        """vrrpfw's rule for ``r`` as python-iptables builds it, matches in
        the order rule_line prints them (ttl/hl before the comment)."""
        six = r.family is Family.IPV6
        rule = self._iptc.Rule6() if six else self._iptc.Rule()
        rule.protocol = str(r.proto)
        if r.src is not None:
            rule.src = f"{r.src}/{r.family.bits}"
        rule.dst = f"{r.dst}/{r.family.bits}"
        if r.direction is Direction.IN:
            rule.in_interface = r.interface
        else:
            rule.out_interface = r.interface
        if r.ttl is not None:
            add_ttl_match(self._iptc, rule, six, r.ttl)
        match = rule.create_match("comment")
        match.comment = COMMENT
        rule.create_target("ACCEPT")
        return rule

    def apply(self, changes: Sequence[Change]) -> None:
        """Deletes, then inserts at the top, then one libiptc commit per
        table touched (libiptc cannot span tables)."""
        if not changes:
            return
        iptc = self._iptc
        legacy = self._tables()
        touched: List[ChainId] = []
        try:
            for ch in changes:
                if ch.action is Action.DELETE:  # from the chain it is in (close sweeps)
                    cid, fw = ch.handle
                    delete(iptc.Chain(legacy.table(cid), cid.name), fw.handle)
                    touched += [cid] if cid not in touched else []
            for ch in changes:
                if ch.action in (Action.INSERT, Action.MOVE):
                    cid = ch.handle
                    insert(iptc.Chain(legacy.table(cid), cid.name), self._build(ch.rule))
                    touched += [cid] if cid not in touched else []
            for key in dict.fromkeys((cid.family, cid.table) for cid in touched):
                legacy.tables[key].commit()
        except iptc.IPTCError as e:
            # EAGAIN: the table changed before our replace, nothing landed.
            # EINVAL: it changed between libiptc's replace and its counter
            # update, so our replace may have landed.  Either way the caller
            # re-reads the table and re-plans, which is idempotent.
            if "temporarily unavailable" in str(e) or "Invalid argument" in str(e):
                raise ConcurrentChange(
                    "a legacy table kept changing while vrrpfw committed (a writer not "
                    "taking the xtables lock?); run `vrrpfw check` to see what is in place") from None
            raise BackendError(f"iptables refused the change: {e}") from None
        finally:
            for table in legacy.tables.values():
                table.refresh()
            legacy.forget()

    def describe(self, change: Change) -> str:
        if change.action is Action.DELETE:
            cid, fw = change.handle
            return f"{_command(cid)} -t {cid.table} -D" + fw.text[len("-A"):]
        cid = change.handle
        line = rule_line(change.rule, cid.name)
        return f"{_command(cid)} -t {cid.table} -I {cid.name} 1" + line[len(f"-A {cid.name}"):]

    def rule_text(self, rule: VrrpRule) -> str:
        return rule_line(rule)

    def persister(self) -> Optional[Persister]:
        from ..persist.iptables_store import saved_iptables_file

        return saved_iptables_file(self, "legacy", lambda: self.placements)

    def warnings(self) -> List[str]:
        notes = super().warnings()
        if self.scan is not None:
            if self.scan.iptables_variant == "nf_tables":
                notes.append(
                    "the `iptables` command on this host is iptables-nft; vrrpfw's legacy "
                    "rules show in `iptables-legacy -S`, not `iptables -S`"
                )
            if self.scan.nft_error:
                notes.append(self.scan.nft_error)
        return notes


def _command(cid: ChainId) -> str:
    """The command an admin would type for this chain's table."""
    return "ip6tables-legacy" if cid.family == "ip6" else "iptables-legacy"
