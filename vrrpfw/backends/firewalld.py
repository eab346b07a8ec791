"""firewalld over D-Bus: vrrpfw's firewalld backend.

Why two modes: with ``FirewallBackend=iptables`` a direct rule in INPUT is
evaluated before firewalld's zone chains and works.  With the nftables
backend (the default since firewalld 0.6) a direct ACCEPT only ends the
iptables-nft base chain; firewalld's own ``inet firewalld`` table is a
separate base chain that still rejects the packet, so the admin's classic
recipe reports success and leaves VRRP blocked.  There vrrpfw judges
firewalld's generated table like every other chain on the path (deny rich
rules, policies, zone targets and source-bound zones included) and adds a
lowest-priority rich rule to each zone or policy whose chain drops the
advert (see :mod:`firewalld_rules`).

vrrpfw never calls ``reload()``: it would drop other tools' runtime-only
changes.  Runtime and permanent configuration are read and changed one by
one, each only where missing.  Direct rules carry the ``vrrpfw`` comment;
rich rules cannot, so :mod:`vrrpfw.persist.state` records which ones vrrpfw
added and which interfaces asked for them.  The D-Bus client is
:mod:`firewalld_dbus`, one layer's zone/direct logic and the permanent
store :mod:`firewalld_layer`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ..errors import BackendError, BackendUnavailable, EnvironmentProblem, InputError, VrrpfwError
from ..hostscan import HostScan, firewalld_answers
from ..model import COMMENT, DEFAULT_GROUP4, Direction, VrrpRule
from ..netpath import BaseChain, ChainState, ChainVerdict, PathModel
from ..persist.lock import store_locks
from ..persist.state import Entry, StateFile
from ..readers.model import build_model, read_legacy
from ..readers.nft import read as nft_read
from ..readers.nft import run_json
from ..results import Action, Runtime
from .base import Availability, Backend, Change, Key, Options, Persister, RuntimeStatus
from .firewalld_dbus import BUS_NAME, Firewalld
from .firewalld_layer import FirewalldPermanent, _Layer
from .firewalld_rules import (
    FW_CHAIN,
    POLICY_PREFIX,
    RICH_ADDR,
    construct_of,
    describe_target,
    direct_args,
    name_construct,
    rich_allows,
    top_rich_rule,
)

MAX_ROUNDS = 5


def runtime_generation(fw_backend: str) -> Optional[str]:
    """An identity of firewalld's current runtime configuration, which a
    reload or restart changes: it deletes and recreates its nf_tables table
    (nftables backend) or its chains (iptables backend over iptables-nft),
    and nf_tables numbers tables and chains afresh, never reusing a number
    within a network namespace until reboot (hence the boot id and the
    namespace).  None where it cannot be read (iptables-legacy, no nft)."""
    try:
        if fw_backend == "nftables":
            doc = run_json(["list", "tables"], timeout=10)
            marks = [str(o["table"]["handle"]) for o in doc.get("nftables", [])
                     if "table" in o and (o["table"]["family"], o["table"]["name"]) == ("inet", "firewalld")]
        else:
            doc = run_json(["list", "chains", "ip"], timeout=10)
            marks = [str(o["chain"]["handle"]) for o in doc.get("nftables", []) if "chain" in o
                     and (o["chain"]["table"], o["chain"]["name"]) == ("filter", "INPUT_ZONES")]
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        netns = os.stat("/proc/self/ns/net").st_ino
    except (OSError, RuntimeError, ValueError, KeyError, subprocess.SubprocessError):
        return None
    return f"{boot}:{netns}:{fw_backend}:{marks[0]}" if len(marks) == 1 else None


class FirewalldBackend(Backend):
    name = "firewalld"
    summary = "firewalld over D-Bus: direct rules (iptables backend) or zone allowance (nftables)"

    def __init__(self, options: Options, scan: Optional[HostScan] = None) -> None:
        super().__init__(options, scan)
        self.fw = Firewalld()
        self.state = StateFile(options.state_file)
        self._loaded = False
        self.mode = ""
        self.fw_backend = ""
        self._layers: Dict[str, _Layer] = {}
        self._notes: List[str] = []
        # path mode: rule key -> zones/policies where vrrpfw's allowance is or must be
        self.targets: Dict[Key, List[str]] = {}
        self._last: Dict[Key, RuntimeStatus] = {}  # the latest status of each rule
        self._kept: Dict[str, List[str]] = {}  # close: interface -> allowances kept for others
        self._unlisted: Dict[Key, str] = {}  # accepted by a rule firewalld does not list (see _listed)

    @classmethod
    def availability(cls) -> Availability:
        try:
            import dbus  # noqa: F401
        except ImportError as e:
            return Availability(False, f"dbus-python is not installed ({e})")
        if not firewalld_answers():
            return Availability(False, f"firewalld does not answer on the system bus ({BUS_NAME})")
        return Availability(True, "firewalld answers on the system bus")

    def ensure_loaded(self) -> None:
        if self._loaded:
            return
        self.state.load()
        self.fw_backend = self.fw.backend()
        mode = self.options.mode
        if mode == "auto":
            mode = "zone" if self.fw_backend == "nftables" else "direct"
        if mode == "direct" and self.fw_backend == "nftables" and not self.options.force:
            raise InputError(
                "direct rules are ineffective on firewalld's nftables backend (its own table rejects "
                "VRRP after them); use --mode zone (or auto), or --force to add them anyway")
        self.mode = mode
        if self.options.zone:
            zones = set(self.fw.zones("runtime")) | set(self.fw.zones("permanent"))
            if self.options.zone not in zones:
                raise InputError(f"firewalld has no zone {self.options.zone!r} "
                                 f"(zones: {', '.join(sorted(zones))})")
        self.state.generation = runtime_generation(self.fw_backend)
        if self.state.generation is None and any(e.layer == "runtime" for e in self.state.entries):
            self.note("vrrpfw cannot tell whether firewalld was reloaded since it added its runtime "
                      "allowances (no nf_tables handle to read); one vanished and re-added identically "
                      "would be taken for vrrpfw's")
        for n in self.state.prune(self._present):
            self.note(n)
        self._loaded = True

    def _present(self, e: Entry) -> bool:
        """Is the entry's allowance in firewalld now?  A zone or policy that
        no longer exists holds nothing."""
        try:
            return self.fw.has(e.layer, e.zone, e.kind, e.value)
        except (InputError, BackendError):
            return False

    def note(self, text: str) -> None:
        if text not in self._notes:
            self._notes.append(text)

    def lock_paths(self) -> List[str]:
        """state.json: read at the start of the run, rewritten during it."""
        return [self.state.path]

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Save the record after the block, also when it fails part-way: an
        allowance made before the failure stays recorded.  A failed save
        while another error is on its way is noted, not raised over it."""
        try:
            yield
        except BaseException:
            try:
                self.state.save()
            except VrrpfwError as e:
                self.note(f"state not saved: {e}")
            raise
        self.state.save()

    def layer(self, name: str) -> _Layer:
        if name not in self._layers:
            self._layers[name] = _Layer(self.fw, self.state, self.mode, name, self.options.zone)
        return self._layers[name]

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        """A writing run saves the record at the end (what open was asked
        for, what close released, entries that no longer prove anything);
        a check saves only what it forgot, and only if it gets the lock at
        once; a dry run never writes."""
        self.ensure_loaded()
        if write:
            with self.saving():
                yield
            return
        yield
        if not self.options.dry_run:
            with contextlib.suppress(VrrpfwError):
                with store_locks([self.state.path], 0):
                    self.state.save()

    def path_mode(self) -> bool:
        """On the nftables backend the verdict comes from firewalld's own
        nf_tables table, judged like every other chain on the path."""
        self.ensure_loaded()
        return self.mode == "zone" and self.fw_backend == "nftables"

    def writes(self, chain: BaseChain) -> bool:
        return chain.owner == "firewalld"

    def path_model(self) -> PathModel:
        nft = nft_read()
        if nft.unread:
            raise EnvironmentProblem(f"cannot read {nft.unread}")
        legacy, why = read_legacy()
        return build_model(legacy, nft, self.options, why)

    def _target(self, cv: ChainVerdict, rule: VrrpRule) -> Optional[str]:
        """The zone or policy whose rules keep the advert out, from the rule
        that decided in firewalld's table; None where a source binding may
        decide and the peer is not known."""
        d = cv.decision
        chains = [d.rule.chain] if d.rule is not None else []
        if cv.state is ChainState.UNCERTAIN and not self.options.peers:
            zones = self._source_zones(cv)
            if zones:
                note = (f"zones bound to source addresses ({', '.join(zones)}) may judge the peer's "
                        "adverts instead of the interface's zone: give --peer ADDR")
                if note not in self._notes:
                    self._notes.append(note)
                return None
        for name in chains:
            target = construct_of(name)
            if target is not None:
                return target
        if rule.direction is Direction.IN:
            return self.layer("runtime").zone_for(rule.interface)
        return None

    @staticmethod
    def _source_zones(cv: ChainVerdict) -> List[str]:
        rules = cv.chain.lookup("filter_INPUT_ZONES") or []
        return sorted({construct_of(r.target) or r.target for r in rules
                       if r.src or any(m.param("key") and "saddr" in (m.param("key") or ("",))[0]
                                       for m in r.matches)})

    def _path_statuses(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        statuses = self.path_statuses(self.path_model(), rules)
        layer = self.layer("runtime")
        for st in statuses:
            st.ours = layer.recorded(st.rule)
            targets: List[str] = []
            for cv in st.verdict.chains if st.verdict is not None else []:
                if self.writes(cv.chain) and not cv.state.passes:
                    t = self._target(cv, st.rule)
                    if t is not None and t not in targets:
                        targets.append(t)
                elif self.writes(cv.chain) and cv.decision.rule is not None:
                    t = construct_of(cv.decision.rule.chain)
                    if t is not None and t not in targets and not any(h[2] == t for h in st.ours) \
                            and not self._listed(t, st.rule.group):
                        targets.append(t)
                        self._unlisted[st.rule.key] = t
            st.needs = targets
            recorded = [h[2] for h in st.ours]
            self.targets[st.rule.key] = list(dict.fromkeys(recorded + targets))
            if st.state is Runtime.ALLOWED_BY_OTHER and st.ours:
                st.state = Runtime.ALLOWED
            st.detail = FW_CHAIN.sub(name_construct, st.detail)
        return statuses

    def _listed(self, target: str, group: str) -> bool:
        """Does firewalld's own runtime configuration hold an allowance for
        VRRP in ``target``?  Its nf_tables table can accept VRRP by a rule
        firewalld does not list: a firewalld killed without cleaning up
        leaves its table, and the next one (which deletes only tables it
        created) adds its rules beside the stale ones, until a reload drops
        them.  Such an accept is not relied on: vrrpfw adds its allowance."""
        try:
            if target.startswith(POLICY_PREFIX):
                settings = self.fw.policy_settings("runtime", target[len(POLICY_PREFIX):])
                return str(settings.get("target", "")) == "ACCEPT" or any(
                    rich_allows(str(r), group) for r in settings.get("rich_rules", []))
            return self.layer("runtime").other_allowance(target, group) is not None
        except (InputError, BackendError):
            return True  # not a construct firewalld knows by that name: not ours to judge

    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        if self.options.sweep:
            self._release_for_close(rules)
        if self.path_mode():
            out = self._path_statuses(rules)
        else:
            layer = self.layer("runtime")
            out = []
            for r in rules:
                state, detail, ours = layer.status(r)
                out.append(RuntimeStatus(r, state, detail, ours))
        for st in out:
            self._last[st.rule.key] = st
            kept = self._kept.get(st.rule.interface)
            if kept:
                st.detail = "; ".join([st.detail] + kept) if st.detail else "; ".join(kept)
        return out

    def _release_for_close(self, rules: Sequence[VrrpRule]) -> None:
        """close: an allowance vrrpfw added for several interfaces stays
        while one it is not closing needs it; the closing interfaces are
        released from it now, so nothing plans (or reports) its removal.
        The interfaces also leave the list of what open was asked for."""
        closing: Dict[str, List[str]] = {}
        for r in rules:
            closing.setdefault(r.group, []).append(r.interface)
            self.state.forget(r.interface, r.group)
        names = ("runtime", "permanent") if self.options.persist else ("runtime",)
        for r in rules:
            for name in names:
                for e in self.layer(name).entries_for(r):
                    others = self.state.others(*e.ident, closing[r.group])
                    if not others:
                        continue
                    self.state.release(*e.ident, r.interface)
                    text = (f"vrrpfw's {e.kind} in {describe_target(e.zone)} ({name}) is kept: "
                            f"still needed by {', '.join(others)}")
                    kept = self._kept.setdefault(r.interface, [])
                    if text not in kept:
                        kept.append(text)

    def discover_layer(self, name: str) -> List[VrrpRule]:
        """vrrpfw's rules in a layer: from the record (and, at runtime, every
        interface open was asked for, also where the admin's allowance was
        already there) and from direct rules with vrrpfw's comment."""
        found: List[VrrpRule] = []
        if name == "runtime":
            for iface, group in self.state.asked:
                found += [VrrpRule(d, iface, group) for d in (Direction.IN, Direction.OUT)
                          if VrrpRule(d, iface, group) not in found]
        for e in self.state.entries:
            if e.layer != name:
                continue
            group = DEFAULT_GROUP4
            m = RICH_ADDR.search(e.value) if e.kind == "rich" else None
            if m:
                group = m.group(2).split("/")[0]
            for iface in e.interfaces:
                rule = VrrpRule(Direction.IN, iface, group)
                if rule not in found:
                    found.append(rule)
        for _ipv, _table, chain, _prio, args in self.fw.direct_rules(name):
            if COMMENT in args and chain in ("INPUT", "OUTPUT") and len(args) > 3:
                direction = Direction.IN if chain == "INPUT" else Direction.OUT
                rule = VrrpRule(direction, args[1], args[3])
                if rule not in found:
                    found.append(rule)
        return found

    def discover(self) -> List[VrrpRule]:
        return self.discover_layer("runtime")

    def plan(self, statuses: Sequence[RuntimeStatus], op: str) -> List[Change]:
        if op == "open":
            for st in statuses:  # remembered (saved only by a real run): check without --iface checks it
                self.state.ask(st.rule.interface, st.rule.group)
            self._share(statuses)
        if op == "open" and self.path_mode():
            return [Change(Action.INSERT, st.rule, t) for st in statuses for t in st.needs]
        if op == "open":
            return [Change(Action.INSERT, st.rule) for st in statuses if st.state is Runtime.MISSING]
        changes = [Change(Action.DELETE, st.rule, h) for st in statuses for h in st.ours]
        if op == "close" and self.options.remove_seed:
            changes.extend(self.seed_changes("runtime"))
        return changes

    def _share(self, statuses: Sequence[RuntimeStatus]) -> None:
        """open: an interface let through by an allowance vrrpfw added for
        another interface (same zone, or the zone or policy that decides for
        it) is recorded on it too, in both layers, so closing the other
        interface keeps it.  Updates the statuses to say it is vrrpfw's."""
        if self.mode == "direct":
            return
        names = ("runtime", "permanent") if self.options.persist else ("runtime",)
        for st in statuses:
            if st.rule.direction is not Direction.IN and not self.path_mode():
                continue
            where = {self.layer("runtime").zone_for(st.rule.interface)}
            for cv in st.verdict.chains if st.verdict is not None else []:
                if self.writes(cv.chain) and cv.decision.rule is not None:
                    where.add(construct_of(cv.decision.rule.chain) or "")
            for name in names:
                lay = self.layer(name)
                for e in list(self.state.entries):
                    if e.layer == name and e.zone in where and st.rule.interface not in e.interfaces \
                            and (e.value == top_rich_rule(st.rule.group) or e.kind == "service"
                                 or rich_allows(e.value, st.rule.group)) and self._present(e):
                        self.state.add(*e.ident, st.rule.interface)
                if name == "runtime":
                    st.ours += [h for h in lay.recorded(st.rule) if h not in st.ours]
            if st.ours and st.state is Runtime.ALLOWED_BY_OTHER:
                st.state = Runtime.ALLOWED

    def seed_changes(self, layer: str) -> List[Change]:
        out = []
        for chain, prio, args in self.layer(layer).seed_rules():
            direction = Direction.IN if chain == "INPUT" else Direction.OUT
            iface = args[args.index("-i") + 1] if "-i" in args else (
                args[args.index("-o") + 1] if "-o" in args else "?")
            rule = VrrpRule(direction, iface, DEFAULT_GROUP4)
            out.append(Change(Action.DELETE, rule, ("direct", layer, chain, prio, args)))
        return out

    def apply(self, changes: Sequence[Change]) -> None:
        """Path mode: an allowance can reveal the next construct that drops
        (a policy first, then the zone); judge again and continue, a few
        rounds at most, recording every allowance as it is made."""
        layer = self.layer("runtime")
        pending = list(changes)
        done: Set[Tuple[Key, str]] = set()
        for _ in range(MAX_ROUNDS):
            with self.saving():
                layer.apply(pending)
            inserted = [c for c in pending if c.action is Action.INSERT and c.handle is not None]
            if not inserted or not self.path_mode():
                return
            done |= {(c.rule.key, c.handle) for c in inserted}
            rules = list(dict.fromkeys(c.rule for c in inserted))
            pending = [Change(Action.INSERT, st.rule, t) for st in self._path_statuses(rules)
                       for t in st.needs if (st.rule.key, t) not in done]
            if not pending:
                return

    def describe_in(self, layer: str, change: Change) -> str:
        if change.action is Action.INSERT and isinstance(change.handle, str):
            return (f"{layer}: {describe_target(change.handle)}: add rich rule "
                    f"{top_rich_rule(change.rule.group)}")
        if change.action is Action.DELETE:
            h = change.handle
            if h[0] == "direct":
                return f"{layer}: remove direct rule ipv4 filter {h[2]} {h[3]} {' '.join(h[4])}"
            return f"{layer}: {describe_target(h[2])}: remove {h[3]} {h[4]}"
        if self.mode == "direct":
            args = " ".join(direct_args(change.rule))
            return f"{layer}: add direct rule ipv4 filter {change.rule.chain} 0 {args}"
        lay = self.layer(layer)
        kind, value = lay.allowance(change.rule)
        return f"{layer}: zone {lay.zone_for(change.rule.interface)}: add {kind} {value}"

    def describe(self, change: Change) -> str:
        return self.describe_in("runtime", change)

    def rule_text(self, rule: VrrpRule) -> str:
        if self.path_mode():
            where = ", ".join(describe_target(t) for t in self.targets.get(rule.key, [])) or "nowhere needed"
            return f"{where}: rich rule {top_rich_rule(rule.group)}"
        if self.mode == "direct":
            return f"direct ipv4 filter {rule.chain} 0 {' '.join(direct_args(rule))}"
        if rule.direction is Direction.OUT:
            return "nothing to add: firewalld zones do not filter outbound traffic"
        lay = self.layer("runtime")
        kind, value = lay.allowance(rule)
        return f"zone {lay.zone_for(rule.interface)}: {kind} {value}"

    def persister(self) -> Optional[Persister]:
        return FirewalldPermanent(self)

    def warnings(self) -> List[str]:
        notes: List[str] = list(self._notes)
        notes.append(f"firewalld uses its {self.fw_backend} backend; vrrpfw manages "
                     f"{'direct rules' if self.mode == 'direct' else 'a zone allowance'}")
        notes += [f"not persisted: {text}" for text in self._runtime_only().values()]
        try:
            self._firewalld_notes(notes)
        except (BackendUnavailable, EnvironmentProblem) as e:  # stopped mid-run: say so, keep the report
            notes.append(f"firewalld stopped answering: {e}")
        if self.scan is not None and self.scan.legacy_filter:
            notes.append("legacy iptables tables exist too; firewalld manages this host, so vrrpfw "
                         "leaves them alone")
        return list(dict.fromkeys(notes))

    def blockers(self) -> List[str]:
        """Besides the layers the run does not write: an allowance only the
        runtime has is blocked by the next reload (see _runtime_only)."""
        out = super().blockers()
        for key in self._runtime_only():
            out.append(f"VRRP in {key[1]} would be blocked by the next firewalld reload or reboot: "
                       "allowed at runtime only, not persisted")
        return out

    def _runtime_only(self) -> Dict[Key, str]:
        """Rules allowed at runtime by someone else's allowance that the
        permanent configuration lacks: VRRP works until the next reload,
        so persisting is not "not managed", it is missing.  Only where the
        runtime allowance can be named and the permanent zone has none."""
        out: Dict[Key, str] = {}
        if not self.options.persist:
            return out
        for key, where in self._unlisted.items():
            st = self._last.get(key)
            if st is not None and not st.ours:
                out[key] = (f"VRRP in {key[1]} to {key[2]} is accepted in {describe_target(where)} by a "
                            "rule in firewalld's nf_tables table that firewalld's own configuration does not "
                            "list (left by a firewalld that stopped without cleaning up?), absent from the "
                            "permanent configuration: a firewalld reload blocks it; `vrrpfw open` adds "
                            "vrrpfw's allowance")
        try:
            runtime, permanent = self.layer("runtime"), self.layer("permanent")
            for key, st in self._last.items():
                if key in out or st.rule.direction is not Direction.IN or st.ours or st.state not in (
                        Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY):
                    continue
                zone = runtime.zone_for(st.rule.interface)
                what = runtime.other_allowance(zone, st.rule.group)
                if what is None or permanent.other_allowance(permanent.zone_for(st.rule.interface),
                                                             st.rule.group) is not None:
                    continue
                out[key] = (f"VRRP in {st.rule.interface} to {st.rule.group} is allowed at runtime by the "
                            f"admin's {what}, absent from the permanent configuration (a firewalld reload "
                            "or reboot blocks it; make the admin's allowance permanent, or let vrrpfw add "
                            "its own after removing it)")
        except (BackendUnavailable, EnvironmentProblem):
            return {}
        return out

    def _firewalld_notes(self, notes: List[str]) -> None:
        runtime = self.layer("runtime")
        for lay in (runtime, self.layer("permanent")):
            for n in lay.notes:
                if n not in notes:
                    notes.append(n)
        if self.fw_backend == "nftables":
            for chain, _prio, args in runtime.seed_rules():
                notes.append(f"direct rule in {chain} '{' '.join(args)}' is present but ineffective: "
                             "firewalld's nftables table rejects VRRP after it (close --remove-seed-rules "
                             "removes it)")
        if self.mode == "zone":
            zones = set(runtime._zone_memo.values()) | {
                t for ts in self.targets.values() for t in ts if not t.startswith(POLICY_PREFIX)}
            for zone in sorted(zones):
                members = self.fw.interfaces("runtime", zone)
                if zone == self.fw.default_zone("runtime"):
                    members.append("every interface in no zone")
                target = self.fw.target("runtime", zone)
                notes.append(f"zone {zone} covers: {', '.join(members)}; "
                             "the zone allowance applies to all of them")
                if zone in ("drop", "block") or target in ("DROP", "%%REJECT%%", "REJECT"):
                    notes.append(f"zone {zone} (target {target}) drops or rejects everything not "
                                 "explicitly allowed")
        if self.fw.lockdown():
            notes.append("firewalld lockdown is enabled: changes over D-Bus need a whitelisted caller")
