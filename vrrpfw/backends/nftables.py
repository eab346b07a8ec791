"""nf_tables, native and iptables-nft alike, through libnftables' JSON API.

Every base chain on a hook votes: an accept in one table does not save a
packet another table drops.  So for each IPv4-capable (``ip``, ``inet``)
filter base chain on the input hook (output for outbound), we evaluate the
chain for a synthetic VRRP packet with the same three-valued evaluator the
iptables backend uses, and insert vrrpfw's accept at the top of each chain
that could drop it, all in one nft transaction.  Chains firewalld manages
are the firewalld backend's job and never touched here.

Why the ``nft -j`` command rather than the Python bindings: the bindings
ship with the distribution's python3-nftables for the system interpreter
only, while vrrpfw also runs from virtual environments on other Pythons;
``nft`` speaks the same libnftables JSON, and ``nft -j -f -`` applies a
whole batch as one transaction.  Costs one process start per call.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ..errors import BackendError, EnvironmentProblem
from ..host.hostscan import HostScan
from ..host.run import run
from ..host.which import which
from ..judge import owners
from ..judge.nextboot import BootModel
from ..judge.path_model import FAMILIES as PATH_FAMILIES
from ..judge.path_model import PATH, BaseChain, ChainId, Hook, PathModel
from ..judge.read.legacy import LegacyTables
from ..judge.read.model import build_model, read_legacy
from ..judge.read.nft import NftLayer
from ..judge.read.nft import read as nft_read
from ..judge.rules import FwRule, vrrpfw_key
from ..model import COMMENT, FIREWALLD_TABLES, Family, Key, VrrpRule, rules_from_keys
from ..persist import files, locations, nft_conf, restorers
from ..persist.iptables_save import BUILTIN_CHAINS, Placement, rule_line
from ..persist.iptables_store import IptablesSaveFile, saved_iptables_file
from ..persist.nextboot import boot_label, nft_conf_model, unrestored
from ..persist.saved import SavedFile
from ..persist.store import Persister, PersistPlan
from ..results import Action
from .base import Availability, Backend, Change, Options, RuntimeStatus

FAMILIES = ("ip", "ip6", "inet", "netdev")
ChainTuple = Tuple[str, str, str]  # family, table, chain


def nft_binary() -> Optional[str]:
    return which("nft")


def run_nft(args: Sequence[str], stdin: Optional[str] = None) -> str:
    nft = nft_binary()
    if nft is None:
        raise EnvironmentProblem("nft is not installed (apt-get install nftables)")
    ran = run([nft, *args], stdin=stdin, timeout=60)
    if ran.exc is not None:
        raise EnvironmentProblem(f"cannot run nft: {ran.exc}")
    if ran.code != 0:
        lines = ran.err.strip().splitlines() or ["(no message)"]
        first = next((line for line in lines if "Error:" in line), lines[0])
        if "Operation not permitted" in ran.err:
            raise EnvironmentProblem(f"nft {' '.join(args[:3])}: {first} (run vrrpfw as root)")
        raise BackendError(f"nft {' '.join(args[:3])} failed: {first}")
    return ran.out


def nft_rule_text(rule: VrrpRule) -> str:
    return nft_conf.rule_text(rule)


def nft_rule_json(rule: VrrpRule, chain: ChainTuple) -> Dict[str, Any]:
    exprs: List[Dict[str, Any]] = [{"match": {"op": "==", "left": left, "right": value}}
                                   for left, value, _ in nft_conf.nft_matches(rule)]
    exprs += [{"counter": None}, {"accept": None}]
    return {"family": chain[0], "table": chain[1], "chain": chain[2], "comment": COMMENT, "expr": exprs}


XT_RESTORE = {"ip": "iptables-nft-restore", "ip6": "ip6tables-nft-restore"}


def needs_xt(rule: VrrpRule, chain: ChainTuple) -> bool:
    """A strict rule going into a chain of iptables-nft's tables: iptables
    1.8.9 lists nft's native ``ip ttl 255`` there as ``-m ttl --ttl-eq 0``
    and loses ``-p`` beside it (so iptables-nft-save would save, and a boot
    restore load, a different rule).  iptables-nft writes its own ttl / hl
    match (an xt expression), which every iptables-nft reads back."""
    family, table, name = chain
    return rule.ttl is not None and family in XT_RESTORE and name in BUILTIN_CHAINS.get(table, ())


def xt_insert_line(rule: VrrpRule, chain: ChainTuple) -> str:
    """``-I CHAIN 1 ...``: the rule at the top of ``chain``, as
    iptables-nft-restore reads it."""
    line = rule_line(rule, chain[2])
    return f"-I {chain[2]} 1" + line[len(f"-A {chain[2]}"):]


def run_xt_restore(family: str, tables: Dict[str, List[str]]) -> None:
    """Insert lines into iptables-nft's tables of ``family`` in one
    ``--noflush`` restore: one transaction, the tool's own expressions."""
    tool = which(XT_RESTORE[family])
    if tool is None:
        raise EnvironmentProblem(f"{XT_RESTORE[family]} is not installed; vrrpfw needs it to add a TTL "
                                 "match to iptables-nft's chains (apt-get install iptables)")
    text = "".join(f"*{t}\n" + "".join(f"{line}\n" for line in lines) + "COMMIT\n"
                   for t, lines in sorted(tables.items()))
    ran = run([tool, "--noflush", "--wait"], stdin=text, timeout=60)
    if ran.exc is not None:
        raise EnvironmentProblem(f"cannot run {tool}: {ran.exc}")
    if ran.code != 0:
        first = (ran.err.strip().splitlines() or ["(no message)"])[0]
        raise BackendError(f"{XT_RESTORE[family]} --noflush failed: {first}")


class NftConfFile(Persister):
    """An nftables ruleset file (``/etc/nftables.conf`` ...) with vrrpfw's
    marked block of ``insert rule`` lines at its end."""

    stages = True

    def __init__(self, backend: NftablesBackend, target: locations.PersistTarget, saved: SavedFile) -> None:
        self.b = backend
        self.path = target.path
        self.saved = saved
        self.restorer = target.restorer
        self.note = target.note
        self.layered = False  # True when a LayeredStore persists iptables-nft chains elsewhere
        saved.want(restorers.nft(), "nft")

    def lock_paths(self) -> List[str]:
        return [self.saved.path]

    def load(self) -> None:
        self.saved.load(self.b.options.validate_saved, self.b.options.locked)

    def _current(self) -> str:
        return self.saved.current

    def defines_any(self, chains: Set[ChainTuple]) -> bool:
        defined = {cid for cid, _ in nft_conf.defined_chains_in(self.path, self._current(),
                                                                  root=self.b.options.root)}
        return bool(defined & chains)

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Tuple[str, str, str]]:
        return nft_conf.keys(self._current()) & {r.key for r in rules}

    def discover(self) -> List[VrrpRule]:
        return rules_from_keys(sorted(nft_conf.keys(self._current())))

    def boot_models(self) -> List[BootModel]:
        """The ruleset file (as staged) as nftables.service loads it."""
        absent = self.saved.original is None and not self.saved.changed
        if not absent and not self.restorer and self.b.options.persist_file is None:
            return [unrestored(self.path, (Family.IPV4, Family.IPV6))]
        return [nft_conf_model(boot_label(self.path, self.restorer), self.path,
                               None if absent else self._current(), on_disk=not self.saved.changed)]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        text = self._current()
        if op == "open":
            defined = nft_conf.defined_chains_in(self.path, text, root=self.b.options.root)
            names = {cid for cid, _ in defined}
            wanted = []
            for r in rules:
                live = self.b.rule_chains.get(r.key)
                missing = sorted(" ".join(c) for c in (live or set()) - names
                                 if not (self.layered and c in IPTABLES_NFT_CHAINS))
                if missing:
                    self.note = (f"chains {', '.join(missing)} are not defined in {self.path}; "
                                 "vrrpfw cannot persist its rules there")
                hooks = {h.value for h in PATH[r.direction]}
                for cid, hook in defined:
                    if hook in hooks and cid[0] in PATH_FAMILIES[r.family] and (
                            live is None or cid in live or cid not in self.b.base_chains()):
                        if needs_xt(r, cid):
                            self.note = (f"a TTL match in {' '.join(cid)} is not written to {self.path}: "
                                         "iptables-nft would read nft's 'ip ttl 255' there as another "
                                         "rule; save that chain with iptables-nft-save")
                            continue
                        wanted.append((r, cid))
            new = nft_conf.with_lines(text, wanted)
        else:
            new = nft_conf.without_keys(text, [r.key for r in rules])
        if new == text:
            return PersistPlan(False)
        return PersistPlan(True, files.unified_diff(self.path, self.saved.text, new), new)

    def commit(self, plan: PersistPlan) -> None:
        self.saved.stage(plan.payload)


# iptables-nft's and ip6tables-nft's filter chains: restored at boot from
# rules.v4 / rules.v6 (RHEL: /etc/sysconfig/iptables / ip6tables).
IPTABLES_NFT_CHAINS = {(f, "filter", c) for f in XT_RESTORE for c in ("INPUT", "OUTPUT")}


def looks_like_iptables_save(path: str) -> bool:
    text = files.read_text(os.path.realpath(path)) or ""
    return any(line.startswith("*") for line in text.splitlines())


class LayeredStore(Persister):
    """iptables-nft's chains (``ip filter INPUT``/``OUTPUT``) are restored
    at boot from the distribution's saved iptables ruleset, through
    iptables-nft; native chains from the nftables ruleset file.  Each rule
    is persisted in the store(s) of the live chains that hold it."""

    stages = True

    def __init__(self, backend: NftablesBackend, nft: NftConfFile, ipt: IptablesSaveFile) -> None:
        self.b, self.nft, self.ipt = backend, nft, ipt
        nft.layered = True
        self.path = f"{nft.path} and {ipt.path}"
        self.restorer = ", ".join(x for x in (nft.restorer, ipt.restorer) if x) or None
        self.note = None

    def lock_paths(self) -> List[str]:
        return self.nft.lock_paths() + self.ipt.lock_paths()

    def load(self) -> None:
        self.nft.load()
        self.ipt.load()

    def _split(self, rules: Sequence[VrrpRule]) -> Tuple[List[VrrpRule], List[VrrpRule]]:
        to_nft, to_ipt = [], []
        for r in rules:
            live = self.b.rule_chains.get(r.key, set())
            if live & IPTABLES_NFT_CHAINS and not self.nft.defines_any(live & IPTABLES_NFT_CHAINS):
                to_ipt.append(r)
            if live - IPTABLES_NFT_CHAINS or not live:
                to_nft.append(r)
        return to_nft, to_ipt

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Tuple[str, str, str]]:
        to_nft, to_ipt = self._split(rules)
        in_nft, in_ipt = self.nft.persisted(to_nft), self.ipt.persisted(to_ipt)
        return {r.key for r in rules
                if (r not in to_nft or r.key in in_nft) and (r not in to_ipt or r.key in in_ipt)}

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Tuple[str, str, str]]:
        return self.nft.persisted(rules) | self.ipt.persisted(rules)

    def discover(self) -> List[VrrpRule]:
        found = self.nft.discover()
        return found + [r for r in self.ipt.discover() if r not in found]

    def boot_models(self) -> List[BootModel]:
        """Both files are on the path at boot: the nftables ruleset, and the
        iptables-nft chains of the saved iptables files where something
        restores them."""
        return self.nft.boot_models() + [m for p in self.ipt.parts.values() if p.restorer
                                         for m in p.boot_models()]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        if op == "open":
            to_nft, to_ipt = self._split(rules)
            plans = [self.nft.plan(op, to_nft), self.ipt.plan(op, to_ipt)]
        else:
            plans = [self.nft.plan(op, rules), self.ipt.plan(op, rules)]
        self.note = "; ".join(n for n in (self.nft.note, self.ipt.note) if n) or None
        return PersistPlan(any(p.changed for p in plans), "".join(p.diff for p in plans), plans)

    def commit(self, plan: PersistPlan) -> None:
        nft_plan, ipt_plan = plan.payload
        if nft_plan.changed:
            self.nft.commit(nft_plan)
        if ipt_plan.changed:
            self.ipt.commit(ipt_plan)


class NftablesBackend(Backend):
    name = "nftables"
    summary = "nf_tables (native and iptables-nft) through libnftables JSON"

    def __init__(self, options: Options, scan: Optional[HostScan] = None) -> None:
        super().__init__(options, scan)
        self._layer = NftLayer()
        self._legacy: Optional[LegacyTables] = None
        self._legacy_unread: Optional[str] = None
        # key -> chains where vrrpfw's rule is or must be, from the last status
        self.rule_chains: Dict[Tuple[str, str, str], Set[ChainTuple]] = {}

    @classmethod
    def availability(cls) -> Availability:
        if nft_binary() is None:
            return Availability(False, "nft is not installed (apt-get install nftables)")
        if os.geteuid() != 0:
            return Availability(False, "nftables needs root (run vrrpfw as root)")
        return Availability(True, "nft is installed and we are root")

    def _load(self) -> None:
        self._layer = nft_read(sweep=self.options.sweep, heads=self.scan_heads())
        if self._layer.unread:
            raise EnvironmentProblem(f"cannot read {self._layer.unread}")
        self._legacy, self._legacy_unread = read_legacy()

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        """nft applies a batch atomically and fails it if a handle vanished,
        so no lock is needed; each session starts from a fresh listing."""
        self._load()
        yield

    def writes(self, chain: BaseChain) -> bool:
        # Not bridge-family chains: they see the bridge port, which vrrpfw's
        # rule (iifname/oifname the interface) never names (see bridge_hint).
        return chain.id.layer == "nft" and chain.owner != "firewalld" and chain.id.family != "bridge"

    pin_places = "an input / output base chain of type filter in a table of the admin's"

    def pins_in(self, chain: BaseChain) -> bool:
        """The input/output filter base chains of the admin's own tables:
        iptables-nft's filter INPUT/OUTPUT, any native table's; not its
        mangle or security tables, nor a table another program owns
        (firewalld's, Docker's, kube-proxy's, Calico's: see owners)."""
        cid = chain.id
        if not self.writes(chain) or chain.kind != "filter" or chain.hook not in (Hook.INPUT, Hook.OUTPUT):
            return False
        if cid.family not in ("ip", "ip6", "inet") or owners.of_chain("nft", cid.family, cid.table, cid.name):
            return False
        return cid.family == "inet" or cid.table == "filter" or cid.table not in owners.XT_TABLES

    def path_model(self) -> PathModel:
        return build_model(self._legacy, self._layer, self.options, self._legacy_unread)

    def base_chains(self) -> Set[ChainTuple]:
        return {_t(c.id) for c in self._layer.chains if self.writes(c)}

    def _all_rules(self) -> Iterator[Tuple[ChainId, FwRule]]:
        """Every rule of every table read (all tables when close sweeps)."""
        for (family, name), table in self._layer.tables.items():
            if (family, name) in FIREWALLD_TABLES:
                continue
            for chain, rules in table.chains.items():
                cid = ChainId("nft", family, name, chain)
                for fw in rules:
                    yield cid, fw

    def persister(self) -> Optional[Persister]:
        """An explicit file is the store its format says; otherwise both of
        the distribution's files, each for the chains it restores."""
        opts = self.options
        if opts.persist_file:
            if looks_like_iptables_save(opts.persist_file):
                return saved_iptables_file(self, "nft", self._iptables_placements)
            target = locations.choose(opts.persist_file, opts.root)
            return NftConfFile(self, target, self.saved_files().get(target.path))
        saved = saved_iptables_file(self, "nft", persist_file=None)
        target = locations.choose(None, opts.root, "nftables")
        nft = NftConfFile(self, target, self.saved_files().get(target.path, default_location=True))
        return LayeredStore(self, nft, saved)

    def _iptables_placements(self) -> Dict[Key, Set[Placement]]:
        """Where an iptables-save file must open each rule: the iptables-nft
        chains it can restore, and for every other live chain a placement
        no such file can hold (so it is reported missing, never present)."""
        out: Dict[Key, Set[Placement]] = {}
        for key, chains in self.rule_chains.items():
            out[key] = {(t, n) if f in XT_RESTORE and n in BUILTIN_CHAINS.get(t, ())
                        else (f"nft {f} {t} {n}", "") for f, t, n in chains}
        return out

    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        statuses = self.path_statuses(self.path_model(), rules)
        for st in statuses:
            if self.options.sweep:
                seen = {(cid, fw.handle) for cid, fw in st.ours}
                st.ours += [(cid, fw) for cid, fw in self._all_rules()
                            if vrrpfw_key(fw, anywhere=True) == st.rule.key and (cid, fw.handle) not in seen]
            self.rule_chains[st.rule.key] = {_t(cid) for cid, _ in st.ours} | {_t(c) for c in st.needs}
        return statuses

    def discover(self) -> List[VrrpRule]:
        return rules_from_keys(vrrpfw_key(fw, anywhere=True) for _, fw in self._all_rules())

    def apply(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        if self.scan is not None:  # the read-back below lists the changed kernel
            self.scan.outdated()
        batch: List[Dict[str, Any]] = []
        for ch in changes:
            if ch.action is Action.DELETE:
                cid, fw = ch.handle
                batch.append({"delete": {"rule": {"family": cid.family, "table": cid.table, "chain": cid.name,
                                                  "handle": fw.handle}}})
        xt: Dict[Tuple[str, str], List[str]] = {}
        for ch in changes:
            if ch.action in (Action.INSERT, Action.MOVE):
                chain = _t(ch.handle)
                if needs_xt(ch.rule, chain):
                    xt.setdefault((chain[0], chain[1]), []).append(xt_insert_line(ch.rule, chain))
                else:
                    batch.append({"insert": {"rule": nft_rule_json(ch.rule, chain)}})
        if batch:
            run_nft(["-j", "-f", "-"], stdin=json.dumps({"nftables": batch}))
        for family in sorted({f for f, _ in xt}):
            run_xt_restore(family, {t: lines for (f, t), lines in xt.items() if f == family})
        self._load()

    def describe(self, change: Change) -> str:
        if change.action is Action.DELETE:
            cid, fw = change.handle
            return f"nft delete rule {cid.family} {cid.table} {cid.name} handle {fw.handle}"
        cid = change.handle
        if needs_xt(change.rule, _t(cid)):
            tool = XT_RESTORE[cid.family].replace("-restore", "")
            return f"{tool} -t {cid.table} {xt_insert_line(change.rule, _t(cid))}"
        return f"nft insert rule {cid.family} {cid.table} {cid.name} {nft_rule_text(change.rule)}"

    def rule_text(self, rule: VrrpRule) -> str:
        return nft_rule_text(rule)


def _t(cid: ChainId) -> ChainTuple:
    return (cid.family, cid.table, cid.name)
