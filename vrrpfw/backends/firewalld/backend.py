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
advert (see :mod:`.rules`).

vrrpfw never calls ``reload()``: it would drop other tools' runtime-only
changes.  Runtime and permanent configuration are read and changed one by
one, each only where missing.  Direct rules carry the ``vrrpfw`` comment;
rich rules cannot, so :mod:`vrrpfw.persist.state` records which ones vrrpfw
added and which interfaces asked for them; :mod:`.owner` keeps
that record honest and judges which allowances are vrrpfw's.  The D-Bus
client is :mod:`.bus`, one layer's zone/direct logic and the
permanent store :mod:`.layer`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ...errors import BackendUnavailable, EnvironmentProblem, InputError, OutcomeUnknown, VrrpfwError
from ...host import ifaddr
from ...host.hostscan import HostScan, firewalld_answered
from ...judge import owners
from ...judge.chaineval import evaluate
from ...judge.netpath import judge_peers, packet_for
from ...judge.path_model import BaseChain, ChainState, ChainVerdict, PathModel
from ...judge.read.model import build_model, read_legacy
from ...judge.read.nft import EarlyListings, NftLayer
from ...judge.read.nft import read as nft_read
from ...model import DEFAULT_GROUP4, Direction, Family, Key, VrrpRule
from ...persist.lock import store_locks
from ...persist.state import StateFile
from ...persist.store import Persister
from ...results import Action, Runtime
from ..base import Availability, Backend, Change, Options, RuntimeStatus
from .bus import BUS_NAME, Firewalld
from .layer import FirewalldPermanent, _Layer
from .owner import Ownership, generation_marks
from .rules import (
    FW_CHAIN,
    POLICY_PREFIX,
    construct_of,
    describe_target,
    direct_args,
    ipv_of,
    name_construct,
    top_rich_rule,
)

MAX_ROUNDS = 5
# firewalld's zone dispatch for input: a goto per bound source, then per interface, then the default zone.
ZONES_CHAIN = "filter_INPUT_ZONES"


class FirewalldBackend(Backend):
    manages = owners.FIREWALLD
    name = "firewalld"
    summary = "firewalld over D-Bus: direct rules (iptables backend) or zone allowance (nftables)"

    def __init__(self, options: Options, scan: Optional[HostScan] = None) -> None:
        super().__init__(options, scan)
        self.fw = Firewalld()
        self.state = StateFile(options.state_file)
        self._loaded = False
        self._nft: Optional[Tuple[int, NftLayer]] = None  # (fw.epoch, chains read then): see _path_nft
        self._early = EarlyListings()  # the kernel listings the verdict will read, started early
        self.mode = ""
        self.fw_backend = ""
        self._layers: Dict[str, _Layer] = {}
        self._notes: List[str] = []
        self._kernel_blocked: List[str] = []  # iptables backend: what the kernel drops past vrrpfw's reach
        # path mode: rule key -> zones/policies where vrrpfw's allowance is or must be
        self.targets: Dict[Key, List[str]] = {}
        self.owner = Ownership(self.fw, self.state, options, self.layer)

    @classmethod
    def availability(cls) -> Availability:
        try:
            import dbus  # noqa: F401
        except ImportError as e:
            return Availability(False, f"dbus-python is not installed ({e})")
        if not firewalld_answered():
            return Availability(False, f"firewalld does not answer on the system bus ({BUS_NAME})")
        return Availability(True, "firewalld answers on the system bus")

    def ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._early.start(self._heads())
        try:
            self._load()
        except BaseException:
            self._early.drop()
            raise

    def _load(self) -> None:
        self.state.load()
        self.fw.ahead(self._reads_first())
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
        self.fw.ahead(self._reads_moded())
        nft = self._path_nft() if mode == "zone" and self.fw_backend == "nftables" else None
        self._ahead_loaded()
        self.owner.load(self.fw_backend, self.note, generation_marks(self.fw_backend, nft, self._heads()))
        self._loaded = True

    # -- reads sent ahead (see Firewalld.prefetch): what the run will ask, asked
    # together, so firewalld answers while vrrpfw reads the kernel ----------------
    def _entry_zones(self) -> List[Any]:
        """The state file's zone entries (policies are read otherwise)."""
        return [e for e in self.state.entries if not e.zone.startswith(POLICY_PREFIX)]

    def _reads_first(self) -> List[Any]:
        """Before the backend is known: what every mode reads (lockdown and
        the runtime's direct rules for the report), and whether each
        recorded allowance is still there (the record's pruning)."""
        keys: List[Any] = [("backend",), ("lockdown",), ("direct", "runtime")]
        keys += [("has", e.layer, e.zone, e.kind, e.value) for e in self._entry_zones()]
        return keys

    def _reads_moded(self) -> List[Any]:
        """Once the mode is known: path mode's zone bindings, default zone
        and the recorded zones' targets (the report's zone notes), the
        permanent zones (their sources, for the persisted verdict); direct
        mode's permanent direct rules."""
        persist = self.options.persist
        if self.mode == "direct":
            return [("direct", "permanent")] if persist else []
        keys: List[Any] = [("active",), ("default", "runtime")]
        keys += [("target", "runtime", e.zone) for e in self._entry_zones() if e.layer == "runtime"]
        return keys + ([("zone_paths",)] if persist else [])

    def _ahead_loaded(self) -> None:
        """After the kernel's listing (the answers above have arrived by
        now): the reads that needed one of them, the permanent allowances
        (by their zone's object path) and the permanent zones' sources."""
        keys: List[Any] = [("has", e.layer, e.zone, e.kind, e.value) for e in self._entry_zones()
                           if e.layer == "permanent"]
        try:
            for zone in dict.fromkeys(k[2] for k in keys):
                self.fw.zone_cfg(zone)
            if self.options.persist and self.mode == "zone" and self.fw_backend == "nftables":
                paths = self.fw.read(("zone_paths",), "listing zones", self.fw.config.listZones)
                keys += [("zone_sources", str(p)) for p in paths]
        except OutcomeUnknown:
            raise  # firewalld stopped answering: asked again, it would wait a whole timeout more
        except VrrpfwError:
            return  # read again where it is needed, and raised there
        self.fw.ahead(keys)

    def _ahead_rules(self, rules: Sequence[VrrpRule]) -> None:
        """Path mode, the rules known: each inbound interface's permanent
        zone (where the allowance must persist) and its runtime zone's
        target (the report's zone notes), read without remembering the
        zone (the notes name only zones the run looked at)."""
        keys: List[Any] = []
        try:
            active = self.fw.active_zones()
            for r in rules:
                if r.direction is not Direction.IN or self.options.zone:
                    continue
                if self.options.persist:
                    keys.append(("zone_of", "permanent", r.interface))
                zone = next((z for z, d in active.items() if r.interface in d.get("interfaces", [])), "")
                keys.append(("target", "runtime", zone or self.fw.default_zone("runtime")))
        except OutcomeUnknown:
            raise  # as in _ahead_loaded
        except VrrpfwError:
            return
        self.fw.ahead(keys)

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
        once; a dry run never writes.  The kernel listings started for the
        verdict (see nft.EarlyListings) and not read are killed and reaped at
        the end."""
        try:
            self.ensure_loaded()
            if write:
                with self.saving():
                    yield
                return
            yield
            # Nothing to save (the usual check): no lock either (naming it loads
            # hashlib, 3-7 ms, and creates the lock directory and file).
            if not self.options.dry_run and not self.state.unchanged():
                with contextlib.suppress(VrrpfwError):
                    with store_locks([self.state.path], 0):
                        self.state.save()
        finally:
            self._early.drop()

    def path_mode(self) -> bool:
        """On the nftables backend the verdict comes from firewalld's own
        nf_tables table, judged like every other chain on the path."""
        self.ensure_loaded()
        return self.mode == "zone" and self.fw_backend == "nftables"

    def writes(self, chain: BaseChain) -> bool:
        return chain.owner == "firewalld"

    def _heads(self) -> Any:
        """The host scan's ``nft -j list chains``, while it still shows the
        kernel as this run found it (vrrpfw has changed nothing in firewalld)."""
        if self.scan is None or self.fw.epoch:
            return None
        return self.scan.nft_heads

    def _path_nft(self) -> NftLayer:
        """The nf_tables chains on the path, read once until vrrpfw changes
        firewalld (every change call makes the next read a fresh one): the
        run's generation stamp and its verdicts come from one listing."""
        if self._nft is None or self._nft[0] != self.fw.epoch:
            self._nft = (self.fw.epoch, nft_read(heads=self._heads(), early=self._early.take(self.fw.epoch)))
        return self._nft[1]

    def path_model(self) -> PathModel:
        nft = self._path_nft()
        if nft.unread:
            raise EnvironmentProblem(f"cannot read {nft.unread}")
        legacy, why = read_legacy()
        return build_model(legacy, nft, self.options, why)

    def _targets(self, model: PathModel, cv: ChainVerdict, rule: VrrpRule) -> List[str]:
        """The zones or policies whose rules keep the advert out, from the
        rule that decided in firewalld's table; where the zone dispatch
        itself is in doubt (sources bound to zones overlap the interface's
        subnets, and no --from names the peers), every zone that may judge
        an advert from there and does not let it in (see _bound_zones)."""
        d = cv.decision
        if (cv.state is ChainState.UNCERTAIN and not self.options.peers and not rule.unicast
                and rule.direction is Direction.IN):
            bound = self._bound_zones(model, cv, rule)
            if bound is not None:
                return bound
        chains = [d.rule.chain] if d.rule is not None else []
        for name in chains:
            target = construct_of(name)
            if target is not None:
                return [target]
        if rule.direction is Direction.IN:
            return [self.layer("runtime").zone_for(rule.interface)]
        return []

    def _bound_zones(self, model: PathModel, cv: ChainVerdict, rule: VrrpRule) -> Optional[List[str]]:
        """VRRP peers share the link, so an advert comes from one of the
        interface's subnets: every zone bound to a source (address, prefix
        or ipset) that overlaps them judges some of those adverts, and the
        interface's (or the default) zone the rest.  Each of them that does
        not certainly let the advert in, with a note naming the zone and the
        binding.  None where no bound source overlaps the subnets, or every
        zone that may judge the advert lets it in (the doubt is elsewhere)."""
        lookup = cv.chain.lookup
        dispatch = lookup(ZONES_CHAIN)
        if not dispatch:
            return None
        from ...judge.dispatch import handed_to, source_bound  # only where the zone dispatch is in doubt

        nets = ifaddr.subnets(rule.interface, rule.family.value)
        if not nets:
            primary = ifaddr.primary_of(rule.interface, rule.family.value)
            nets = [primary.network] if primary is not None else []
        packets = [packet_for(model, rule, None, net) for net in nets]
        hands = handed_to(dispatch, packets, lookup)
        if not source_bound(hands):
            return None
        out: List[str] = []
        for h in hands:
            zone = construct_of(h.chain)
            if zone is None:
                continue
            pkt = next(p for p in packets if p.src_net == h.subnet)
            if evaluate(lookup(h.chain) or [], "DROP", pkt, lookup).accepted:
                continue  # this zone lets VRRP in already
            out.append(zone)
            if not h.certain:
                self.note(f"zone {zone}: its bound source ({h.binding}) overlaps {rule.interface}'s subnet "
                          f"{h.subnet}, and VRRP peers share the link, so it judges adverts from peers "
                          f"there: vrrpfw's allowance goes to zone {zone} too (--from ADDR judges only "
                          "the peers named)")
        return out or None  # every zone lets VRRP in: the doubt is elsewhere

    def _chains_judged(self, model: PathModel, st: RuntimeStatus) -> List[ChainVerdict]:
        """The chains whose verdicts place vrrpfw's allowance: the rule's
        path, and with --from for a multicast rule each named peer's own
        path (one peer's source may be bound to another zone than the
        next's; the rule's verdict keeps only the worst)."""
        chains = list(st.verdict.chains) if st.verdict is not None else []
        r = st.rule
        if r.unicast or r.direction is not Direction.IN:
            return chains
        local = ifaddr.primary_of(r.interface, r.family.value)
        for peer in self.options.peers:
            if Family.of(peer) is r.family:
                chains.extend(judge_peers(model, r, [peer], local).chains)
        return chains

    def _path_statuses(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        model = self.path_model()
        statuses = self.path_statuses(model, rules)
        layer = self.layer("runtime")
        for st in statuses:
            st.ours = layer.recorded(st.rule)
            targets: List[str] = []
            for cv in self._chains_judged(model, st):
                if self.writes(cv.chain) and not cv.state.passes:
                    for t in self._targets(model, cv, st.rule):
                        if t not in targets:
                            targets.append(t)
                elif self.writes(cv.chain) and cv.decision.rule is not None:
                    there = construct_of(cv.decision.rule.chain)
                    if there is not None and there not in targets and self.owner.accepted_unlisted(st, there):
                        targets.append(there)
                    elif there is not None and there not in targets and self._pins_in(there, st.rule):
                        targets.append(there)  # open pins its allowance in a zone that accepts by target
            # Where vrrpfw's allowance is already in place, adding it again
            # changes nothing: what still doubts (firewalld's IPv6 reverse
            # path filter, say) is not the zone's to decide.
            value = top_rich_rule(st.rule)
            st.needs = [t for t in targets if not layer.fw.has("runtime", t, "rich", value)]
            recorded = [h[2] for h in st.ours]
            self.targets[st.rule.key] = list(dict.fromkeys(recorded + targets))
            if st.state is Runtime.ALLOWED_BY_OTHER and st.ours:
                st.state = Runtime.ALLOWED
            st.detail = FW_CHAIN.sub(name_construct, st.detail)
        return statuses

    def _pins_in(self, target: str, rule: VrrpRule) -> bool:
        """open: the interface's zone accepts the advert by its target
        alone (firewalld's policy; see FirewalldLayer.only_target)."""
        if not self.options.pin or rule.direction is not Direction.IN or target.startswith(POLICY_PREFIX):
            return False
        layer = self.layer("runtime")
        return target == layer.zone_for(rule.interface) and layer.only_target(target, rule)

    def refuse_strict(self, rules: Sequence[VrrpRule]) -> None:
        """--strict needs a TTL / hop-limit match, which firewalld's rich
        rules, services and zone settings do not have.  Direct rules (the
        iptables backend's mode) take iptables' ``-m ttl`` / ``-m hl`` and
        do it; in zone mode vrrpfw refuses rather than open more than was
        asked.  A direct rule cannot help on the nftables backend: firewalld's
        own table still rejects the advert after it."""
        if self.mode != "direct" and any(r.strict for r in rules):
            raise InputError(
                "--strict: firewalld's rich rules have no TTL / hop-limit match, so vrrpfw cannot "
                f"open VRRP for TTL 255 only in firewalld's {self.mode} mode; use firewalld's iptables "
                "backend (direct rules), or vrrpfw's nftables / iptables backend")

    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        self.ensure_loaded()
        self.refuse_strict(rules)
        if self.options.sweep:
            self.owner.release_for_close(rules)
        if self.path_mode():
            self._ahead_rules(rules)
            out = self._path_statuses(rules)
        else:
            layer = self.layer("runtime")
            out = []
            for r in rules:
                state, detail, ours = layer.status(r)
                pin = [layer.zone_for(r.interface)] if self.options.pin and layer.pins(r) else []
                out.append(RuntimeStatus(r, state, detail, ours, pin))
            if self.fw_backend == "iptables":
                self._judge_kernel(out)
        self.owner.remember(out)
        return out

    def _judge_kernel(self, statuses: Sequence[RuntimeStatus]) -> None:
        """firewalld's iptables backend: the configuration read over D-Bus
        does not show what else is in the kernel's tables (a passthrough, a
        plain iptables rule); the kernel's path can only make each verdict
        worse (see :mod:`.kernel`)."""
        from .kernel import judge_kernel, kernel_model  # the iptables backend's only

        model = kernel_model(self.options, self._heads(), self._early.take(self.fw.epoch))
        self._kernel_blocked = []
        direct = [d for d in self.fw.direct_rules("runtime") if d[1] == "filter"]
        for st in statuses:
            # the direct rules that run before a new one of priority 0
            ahead = sum(1 for ipv, _, chain, prio, _ in direct
                        if ipv == ipv_of(st.rule) and chain == st.rule.chain and int(prio) <= 0)
            line = judge_kernel(model, st, self.options.peers, ahead)
            if line is not None and line not in self._kernel_blocked:
                self._kernel_blocked.append(line)

    def discover(self) -> List[VrrpRule]:
        return self.owner.discover("runtime")

    def plan(self, statuses: Sequence[RuntimeStatus], op: str) -> List[Change]:
        if op == "open" and self.held():
            return []  # another program's chain keeps VRRP out (see Backend.held): change nothing
        if op == "open":
            inbound = {st.rule.interface for st in statuses if st.rule.direction is Direction.IN}
            for st in statuses:  # remembered (saved only by a real run): check without --iface checks it
                if st.rule.direction is Direction.IN or st.rule.interface not in inbound:
                    self.state.ask(st.rule.interface, st.rule.selector)
            if self.mode != "direct":  # direct rules carry vrrpfw's comment: nothing to share
                self.owner.share(statuses, self.path_mode())
        if op == "open" and self.path_mode():
            return [Change(Action.INSERT, st.rule, t) for st in statuses for t in st.needs]
        if op == "open":  # where the zone rejects, or lets it in by its target alone (a pin)
            return [Change(Action.INSERT, st.rule) for st in statuses
                    if st.state is Runtime.MISSING or st.needs]
        changes = [Change(Action.DELETE, st.rule, h) for st in statuses for h in st.ours]
        if op == "close" and self.options.remove_seed:
            changes.extend(self.seed_changes("runtime"))
        return changes

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
                    f"{top_rich_rule(change.rule)}")
        if change.action is Action.DELETE:
            h = change.handle
            if h[0] == "direct":
                ipv = h[5] if len(h) > 5 else "ipv4"
                return f"{layer}: remove direct rule {ipv} filter {h[2]} {h[3]} {' '.join(h[4])}"
            return f"{layer}: {describe_target(h[2])}: remove {h[3]} {h[4]}"
        if self.mode == "direct":
            args = " ".join(direct_args(change.rule))
            return f"{layer}: add direct rule {ipv_of(change.rule)} filter {change.rule.chain} 0 {args}"
        lay = self.layer(layer)
        kind, value = lay.allowance(change.rule)
        return f"{layer}: zone {lay.zone_for(change.rule.interface)}: add {kind} {value}"

    def describe(self, change: Change) -> str:
        return self.describe_in("runtime", change)

    def rule_text(self, rule: VrrpRule) -> str:
        if self.path_mode():
            where = ", ".join(describe_target(t) for t in self.targets.get(rule.key, [])) or "nowhere needed"
            return f"{where}: rich rule {top_rich_rule(rule)}"
        if self.mode == "direct":
            return f"direct {ipv_of(rule)} filter {rule.chain} 0 {' '.join(direct_args(rule))}"
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
        notes += [f"not persisted: {text}" for text in self.owner.runtime_only().values()]
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
        runtime has is blocked by the next reload (see Ownership.runtime_only)."""
        out = super().blockers() + self._kernel_blocked
        for key in self.owner.runtime_only():
            out.append(f"VRRP in {key[1]} would be blocked by the next firewalld reload or reboot: "
                       "allowed at runtime only, not persisted")
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
                members += [f"source {src}" for src in self.fw.sources("runtime", zone)]
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
