"""ufw (Ubuntu's and Debian's "uncomplicated firewall").

ufw owns the filter table: its chains hang off INPUT and OUTPUT, and at
every start and reload it rebuilds them from its own files, so a rule
vrrpfw put straight into INPUT is lost at the next ``ufw reload``, and
netfilter-persistent, which would restore rules.v4, conflicts with ufw
(Debian's ufw package breaks it).  And ``ufw allow proto vrrp`` does not
exist: ufw's rule language knows tcp, udp, ipv6, esp, ah, igmp and gre only,
and an all-protocols rule would open far more than VRRP.

So vrrpfw works where ufw's own documentation says hand-written rules
belong: the before rules.  Its line goes to the top of
``ufw-before-input`` (inbound) or ``ufw-before-output`` (outbound;
``ufw6-...`` for IPv6), at runtime through ``iptables-restore --noflush``
of the variant ufw runs on (iptables-nft or iptables-legacy: whichever
filter table holds ufw's chains), one transaction per family, without
touching the rest of ufw and without a ``ufw reload``; and in
``/etc/ufw/before.rules`` / ``before6.rules``
(:mod:`vrrpfw.persist.ufw_rules`), which ufw loads at every start.

Verdicts come from the same path model as every backend: INPUT (OUTPUT)
of ufw's filter table is judged with its jumps into ufw's chains, and a
vrrpfw line in ufw's before chain that decides counts as vrrpfw's own.
Other layers on the path (a legacy table beside iptables-nft, another nft
table) are reported as blockers, not written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import BackendError, BackendUnavailable, EnvironmentProblem
from ..host import ifaddr
from ..host.hostscan import HostScan, UfwState
from ..host.run import run
from ..host.which import which
from ..judge import owners
from ..judge.netpath import DROPPED, bridge_hint, combine, judge_peers, responsible
from ..judge.path_model import BaseChain, ChainId, ChainState, ChainVerdict, PathModel, PathVerdict
from ..judge.read.legacy import LegacyTables
from ..judge.read.model import build_model, read_legacy
from ..judge.read.nft import NftLayer
from ..judge.read.nft import read as nft_read
from ..judge.rules import FwRule, vrrpfw_key
from ..model import Family, VrrpRule, rules_from_keys
from ..persist import iptables_save
from ..persist.iptables_save import check_family
from ..persist.store import Persister
from ..persist.ufw_rules import (
    UfwRulesFile,
    UfwRulesStore,
    chain_for,
    default_path,
    file_family,
    ufw_holds,
)
from ..results import Action, Runtime
from .base import Availability, Backend, Change, Options, RuntimeStatus, held_by, held_text
from .xtables_lock import open_lock, wait_for_lock

FAMILY_OF = {Family.IPV4: "ip", Family.IPV6: "ip6"}
HOOKED = ("INPUT", "OUTPUT")


def is_ufw_chain(name: str) -> bool:
    return name.startswith(("ufw-", "ufw6-"))


def tool(family: str, variant: str, restore: bool = False) -> str:
    """``iptables-nft``, ``ip6tables-legacy-restore``, ...: the variant ufw runs on."""
    return f"{'ip6tables' if family == 'ip6' else 'iptables'}-{variant}{'-restore' if restore else ''}"


def restore_lines(changes: Sequence[Change]) -> Dict[str, List[str]]:
    """Pure: per family ("ip", "ip6"), the ``iptables-restore --noflush``
    lines that make ``changes`` true: deletions first (by rule
    specification, so a rule read in another spelling, ``-p vrrp``, is
    found), then each insertion at the top of its chain."""
    out: Dict[str, List[str]] = {}
    for ch in changes:
        if ch.action is Action.DELETE:
            cid, _ = ch.handle
            spec = iptables_save.rule_line(ch.rule, cid.name)[len(f"-A {cid.name}"):]
            out.setdefault(cid.family, []).append(f"-D {cid.name}{spec}")
    for ch in changes:
        if ch.action in (Action.INSERT, Action.MOVE):
            cid = ch.handle
            spec = iptables_save.rule_line(ch.rule, cid.name)[len(f"-A {cid.name}"):]
            out.setdefault(cid.family, []).append(f"-I {cid.name} 1{spec}")
    return out


def restore_text(lines: Sequence[str]) -> str:
    return "*filter\n" + "".join(f"{line}\n" for line in lines) + "COMMIT\n"


UFW_LOCK = "/run/ufw.lock"  # ufw.util.create_lock's file: ufw holds it for every command


@contextlib.contextmanager
def ufw_lock(timeout: float, path: str = UFW_LOCK) -> Iterator[None]:
    """ufw's lock (a POSIX ``lockf`` lock on /run/ufw.lock, as ufw takes
    it), waited for up to ``timeout`` seconds."""
    fd = open_lock(path, "ufw's lock", 0o644)
    try:
        wait_for_lock(fd, fcntl.lockf, path, timeout,
                      f"a ufw command held {path} for more than {timeout:g}s; nothing was "
                      "changed (raise --lock-timeout to wait longer)")
        yield
    finally:
        os.close(fd)  # releases the lock


class UfwBackend(Backend):
    manages = owners.UFW
    name = "ufw"
    summary = "ufw: vrrpfw's lines in ufw's before chains and before rules files"

    def __init__(self, options: Options, scan: Optional[HostScan] = None) -> None:
        if scan is None:
            from ..host.hostscan import scan as scan_host

            scan = scan_host()
        super().__init__(options, scan)
        state = scan.ufw
        if state is None:
            raise BackendUnavailable("backend ufw: ufw is not installed here (no /etc/ufw/ufw.conf)")
        if not state.active:
            raise BackendUnavailable(f"backend ufw: ufw is not active here ({state.found}); "
                                     "enable it (`ufw enable`) or choose another backend")
        self.ufw: UfwState = state
        assert state.layer is not None
        self.layer = state.layer  # "nft" | "legacy": the ChainId layer and the tools' variant
        self._nft = NftLayer()
        self._legacy: Optional[LegacyTables] = None
        self._legacy_unread: Optional[str] = None

    @classmethod
    def availability(cls) -> Availability:
        if os.geteuid() != 0:
            return Availability(False, "ufw's chains need root (run vrrpfw as root)")
        return Availability(True, "we are root")

    # -- reading ---------------------------------------------------------
    def _load(self) -> None:
        self._nft = nft_read(heads=self.scan_heads())
        if self._nft.unread and self.layer == "nft":
            raise EnvironmentProblem(f"cannot read {self._nft.unread}")
        self._legacy, self._legacy_unread = read_legacy()
        if self.layer == "legacy" and self._legacy is None:
            raise EnvironmentProblem(f"cannot read {self._legacy_unread or 'the legacy filter table'}")

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        """A fresh read of every layer; writes go through the restorer,
        which takes the xtables lock and applies one batch per family.  A
        writing session also holds ufw's own lock, so no ``ufw`` command
        (a reload rebuilds ufw's chains) runs between the read and the write."""
        with ufw_lock(self.options.lock_timeout) if write else contextlib.nullcontext():
            self._load()
            yield

    def path_model(self) -> PathModel:
        return build_model(self._legacy, self._nft, self.options, self._legacy_unread)

    def writes(self, chain: BaseChain) -> bool:
        """ufw's INPUT and OUTPUT: the base chains that jump into its chains."""
        cid = chain.id
        return (cid.layer == self.layer and cid.table == "filter" and cid.name in HOOKED
                and cid.family in ("ip", "ip6"))

    def _chain_names(self, family: str) -> List[str]:
        if self.layer == "nft":
            table = self._nft.tables.get((family, "filter"))
            return list(table.chains) if table is not None else []
        if self._legacy is None or (family, "filter") not in self._legacy.tables:
            return []
        return self._legacy.chain_names("filter", family)

    def _rules(self, family: str, chain: str) -> List[FwRule]:
        if chain not in self._chain_names(family):
            return []
        if self.layer == "nft":
            return list(self._nft.tables[(family, "filter")].chains.get(chain, []))
        assert self._legacy is not None
        return self._legacy.chain_rules("filter", chain, family)

    def _sub(self, model: PathModel, family: str, chain: str) -> List[FwRule]:
        """The rules of ufw's chain ``chain`` as the model's base chains
        (ufw's INPUT/OUTPUT) see them; empty where it is not loaded."""
        for c in model.chains:
            if self.writes(c) and c.id.family == family:
                rules = c.lookup(chain)
                if rules is not None:
                    return list(rules)
        return []

    def _cid(self, family: str, chain: str) -> ChainId:
        return ChainId(self.layer, family, "filter", chain)

    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        o = self.options
        if o.persist and o.persist_file:  # one family per file: refused before anything changes
            check_family(rules, file_family(o.persist_file), o.persist_file, ufw_holds)
        return self.path_statuses(self.path_model(), rules)

    def path_statuses(self, model: PathModel, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        """Each rule judged over the whole path; ufw's base chain counts as
        decided by vrrpfw where vrrpfw's line in ufw's before chain accepts
        the advert; ``needs`` is that before chain where ufw's base chain
        does not let the advert through."""
        out = []
        self._blocked: List[str] = []
        self._held: List[Tuple[owners.Owner, str]] = []
        for r in rules:
            fam = FAMILY_OF[r.family]
            before = chain_for(r)
            v = judge_peers(model, r, self.options.peers, ifaddr.primary_of(r.interface, r.family.value))
            mine = [fw for fw in self._sub(model, fam, before) if vrrpfw_key(fw, anywhere=True) == r.key]
            chains: List[ChainVerdict] = []
            needs: List[ChainId] = []
            for judged in v.chains:
                cv = judged
                owner = held_by(cv) if not cv.state.passes else None
                if owner is not None and owner is not owners.UFW:
                    if (owner, held_text(cv)) not in self._held:  # open changes nothing (Backend.held)
                        self._held.append((owner, held_text(cv)))
                    chains.append(cv)
                    continue
                if self.writes(cv.chain):
                    d = cv.decision
                    cstate = cv.state
                    if (cstate is ChainState.OTHER and d.rule is not None and d.rule.chain == before
                            and vrrpfw_key(d.rule, anywhere=True) == r.key):
                        cstate = ChainState.OURS
                    cv = ChainVerdict(cv.chain, cstate, d, mine)
                    if not cstate.passes:
                        needs.append(self._cid(fam, before))
                    elif self.options.pin and cstate is ChainState.POLICY and not mine:
                        needs.append(self._cid(fam, before))  # open pins it in ufw's before rules
                elif not cv.state.passes:
                    msg = (bridge_hint(cv, r) if responsible(cv.chain) == "bridge" else
                           f"{cv.text}; ufw does not manage that chain: vrrpfw's {responsible(cv.chain)} "
                           "backend would have to open it")
                    if msg not in self._blocked:
                        self._blocked.append(msg)
                chains.append(cv)
            state = combine(chains, model.unread)
            if v.state is Runtime.UNCERTAIN and state in DROPPED:
                state = v.state  # a bridge whose ports disagree: some peers' adverts get through
            verdict = PathVerdict(r, state, chains, list(model.unread))
            ours = [(self._cid(fam, before), fw) for fw in mine]
            if self.options.sweep:
                ours += [(self._cid(fam, c), fw) for c in self._chain_names(fam)
                         if is_ufw_chain(c) and c != before for fw in self._rules(fam, c)
                         if vrrpfw_key(fw, anywhere=True) == r.key]
            # Dry-run predictions judge the chains this run writes; ufw's
            # chains are opened through its before chain, which the generic
            # prediction cannot see: where nothing else blocks, say so by
            # leaving the verdict out (the plan alone then predicts).
            others_pass = all(cv.state.passes or self.writes(cv.chain) for cv in chains)
            out.append(RuntimeStatus(r, state, verdict.detail, ours, needs,
                                     None if others_pass and not model.unread else verdict))
        return out

    def discover(self) -> List[VrrpRule]:
        keys = [vrrpfw_key(fw, anywhere=True) for fam in ("ip", "ip6") for c in self._chain_names(fam)
                if is_ufw_chain(c) for fw in self._rules(fam, c)]
        return rules_from_keys(k for k in keys if k is not None)

    # -- writing ---------------------------------------------------------
    def plan(self, statuses: Sequence[RuntimeStatus], op: str) -> List[Change]:
        """The generic plan, except where ``open`` keeps one of several
        copies of a line in a chain and deletes the others: ``iptables -D``
        by rule text removes the *first* copy, not the one that was read, so
        the copy kept would be the lower one (perhaps below a DROP).  There
        every copy is deleted and one is put back at the top of the chain."""
        changes = super().plan(statuses, op)
        if op != "open":
            return changes
        out = list(changes)
        for st in statuses:
            for cid in dict.fromkeys(c for c, _ in st.ours):
                copies = [h for h in st.ours if h[0] == cid]
                deleted = [ch.handle for ch in changes
                           if ch.action is Action.DELETE and ch.rule == st.rule and ch.handle[0] == cid]
                if not deleted or len(deleted) == len(copies):
                    continue
                kept = [h for h in copies if not any(h[1] is d[1] for d in deleted)]
                out += [Change(Action.DELETE, st.rule, h) for h in kept]
                placed = any(ch.action in (Action.INSERT, Action.MOVE) and ch.rule == st.rule
                             and ch.handle == cid for ch in changes)
                if not placed:
                    out.append(Change(Action.MOVE, st.rule, cid))
        return out

    def apply(self, changes: Sequence[Change]) -> None:
        """One ``iptables-restore --noflush`` per family: its deletions and
        insertions land together or not at all; ufw itself is not reloaded."""
        batches = restore_lines(changes)
        for fam in batches:
            have = self._chain_names(fam)
            missing = [line.split()[1] for line in batches[fam] if line.split()[1] not in have]
            if missing and fam == "ip6" and not self.ufw.ipv6:
                raise BackendError("ufw's IPv6 support is off (IPV6=no in /etc/default/ufw): ufw drops all "
                                   f"IPv6 and has no {missing[0]} chain for vrrpfw's rule; set IPV6=yes and "
                                   "reload ufw (nothing was changed)")
            if missing:
                raise BackendError(f"ufw's chain {missing[0]} is not loaded: vrrpfw cannot add its "
                                   f"{'IPv6' if fam == 'ip6' else 'IPv4'} rules there (nothing was changed)")
        if self.scan is not None:  # the read-back below lists the changed kernel
            self.scan.outdated()
        try:
            for fam in sorted(batches):
                self._restore(fam, restore_text(batches[fam]))
        finally:
            self._load()

    def _restore(self, family: str, text: str) -> None:
        name = tool(family, self.layer, restore=True)
        path = which(name)
        if path is None:
            raise EnvironmentProblem(f"{name} is not installed; ufw runs on it (apt-get install iptables)")
        wait = max(1, int(self.options.lock_timeout + 0.999))
        ran = run([path, "--noflush", f"--wait={wait}"], stdin=text, timeout=60 + wait)
        if ran.exc is not None:
            raise EnvironmentProblem(f"cannot run {name}: {ran.exc}")
        if ran.code != 0:
            first = (ran.err.strip().splitlines() or ["(no message)"])[0]
            raise BackendError(f"{name} --noflush failed: {first}")

    def describe(self, change: Change) -> str:
        lines = restore_lines([change])
        fam, (line,) = next(iter(lines.items()))
        return f"{tool(fam, self.layer)} {line}"

    def rule_text(self, rule: VrrpRule) -> str:
        return iptables_save.rule_line(rule, chain_for(rule))

    def persister(self) -> Optional[Persister]:
        o = self.options
        if o.persist_file:
            fam = file_family(o.persist_file)
            paths: List[Tuple[Family, str]] = [(fam, o.persist_file)]
        else:
            fams = [Family.IPV4] + ([Family.IPV6] if self.ufw.ipv6 else [])
            paths = [(f, default_path(f, o.root)) for f in fams]
        parts = {f: UfwRulesFile(path, self.saved_files().get(path), f, self.layer, o.validate_saved,
                                 o.locked) for f, path in paths}
        return UfwRulesStore(parts, custom=o.persist_file is not None,
                             ufw_dir=os.path.dirname(default_path(Family.IPV4, o.root)),
                             default_file=os.path.join(o.root, "etc/default/ufw"), layer=self.layer)

    def warnings(self) -> List[str]:
        notes = []
        if self.scan is not None and self.scan.legacy_filter and self.layer == "nft":
            notes.append("legacy iptables tables are loaded beside ufw's iptables-nft table; vrrpfw's ufw "
                         "backend judges them but writes only ufw's chains")
        return notes
