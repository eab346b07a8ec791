"""One firewalld layer (runtime or permanent) for vrrpfw's rules: where an
allowance is, adding and removing it with the record of what vrrpfw added;
and the permanent configuration as vrrpfw's persistence store."""

from __future__ import annotations

from typing import Any, Callable, ContextManager, Dict, List, Optional, Protocol, Sequence, Set, Tuple

from ...errors import BackendUnavailable, EnvironmentProblem, InputError, VrrpfwError
from ...host import ifaddr
from ...model import AH_PROTO, COMMENT, Direction, Key, VrrpRule
from ...persist.state import Entry, StateFile
from ...persist.store import Persister, PersistPlan
from ...results import Action, Runtime
from ..base import Change, Options
from .boot import NM_BUS_NAME, permanent_targets, source_note, zone_note
from .bus import Firewalld, MayHaveChanged, OutcomeUnknown
from .rules import (
    describe_target,
    direct_args,
    direct_may_drop,
    ipv_of,
    is_seed_direct,
    rich_allows,
    rich_may_deny,
    rich_priority,
    rich_rule,
    service_covers,
    service_is_vrrpfws,
    top_rich_rule,
)

SERVICE = "vrrp"
ACCEPTING_TARGETS = {"ACCEPT"}


def entry_fits(e: Entry, rule: VrrpRule) -> bool:
    """Does the allowance of a state entry serve ``rule``?  vrrpfw adds
    the service only for IPv4 VRRP to 224.0.0.18, a rich rule naming
    exactly the rule otherwise; an older vrrpfw's rich rule (no priority)
    or an exact twin counts."""
    if e.kind == "service":
        return service_is_vrrpfws(rule)
    return e.value in (top_rich_rule(rule), rich_rule(rule)) or (
        e.kind == "rich" and rich_allows(e.value, rule))


class _Layer:
    """Where one layer (runtime or permanent) stands for one rule."""

    def __init__(self, fw: Firewalld, state: StateFile, mode: str, layer: str, zone_opt: Optional[str]):
        self.fw, self.state, self.mode, self.layer, self.zone_opt = fw, state, mode, layer, zone_opt
        self.notes: List[str] = []
        self._zone_memo: Dict[str, str] = {}
        self._service_memo: Dict[str, Dict[str, Any]] = {}  # service name -> its settings in this layer

    def zone_for(self, iface: str) -> str:
        if self.zone_opt:
            return self.zone_opt
        if iface not in self._zone_memo:
            zone = self.fw.zone_of(self.layer, iface)
            if not zone:
                zone = self.fw.default_zone(self.layer)
                self.notes.append(f"interface {iface} is in no zone ({self.layer}); firewalld "
                                  f"applies the default zone {zone}, so vrrpfw uses it")
            self._zone_memo[iface] = zone
        return self._zone_memo[iface]

    def allowance(self, rule: VrrpRule) -> Tuple[str, str]:
        """(kind, value) vrrpfw adds for this rule in zone mode."""
        if service_is_vrrpfws(rule) and self.fw.knows_service(self.layer, SERVICE):
            return "service", SERVICE
        return "rich", rich_rule(rule)

    def status(self, rule: VrrpRule) -> Tuple[Runtime, str, List[Any]]:
        """(state, detail, our handles) of one rule in this layer.  Our
        handles are every allowance recorded for the interface, in whatever
        zone it was when vrrpfw added it (close must find them there); the
        rule is allowed by ours only where one is in its zone now."""
        if self.mode == "direct":
            return self._direct_status(rule)
        ours: List[Any] = self._our_direct(rule)
        recorded = self.recorded(rule)
        ours += recorded
        if rule.direction is Direction.OUT:
            return Runtime.ALLOWED_BY_OTHER, "firewalld zones do not filter outbound traffic", ours
        zone = self.zone_for(rule.interface)
        found = [f"zone {zone}: {h[3]} {h[4]}" for h in recorded if h[2] == zone]
        if found:
            return Runtime.ALLOWED, found[0], ours
        other = self._other_allowance(zone, rule)
        if other:
            return Runtime.ALLOWED_BY_OTHER, f"already allowed by {other}", ours
        return Runtime.MISSING, f"zone {zone} rejects VRRP", ours

    def other_allowance(self, zone: str, rule: VrrpRule) -> Optional[str]:
        """Someone else's allowance for ``rule``'s adverts in ``zone``, named."""
        return self._other_allowance(zone, rule)

    def _other_allowance(self, zone: str, rule: VrrpRule, unshadowed: bool = False) -> Optional[str]:
        """A service counts by what its definition covers, whatever its name
        (firewalld 2.1's ``vrrp`` service, an admin's own with
        ``<protocol value="vrrp"/>``, one limited to a destination that
        may not be the rule's); a zone's ``protocol`` covers both families
        and every address.  ``unshadowed``: only an allowance no deny rich
        rule of the zone may come before (firewalld's zone chain runs rich
        rules of priority < 0, then deny rules, then services, protocols and
        accepts, then priority > 0, then the target): where nothing else
        judges the kernel's path (the iptables backend's direct mode)."""
        rich = self.fw.rich_rules(self.layer, zone) if unshadowed else []
        link = ifaddr.subnets(rule.interface, rule.family.value) if rich and rule.src is None else []
        denies = [rich_priority(t) for t in rich if rich_may_deny(t, rule, link)]
        first_deny = min(denies) if denies else None

        def shadowed(priority: float) -> bool:
            return first_deny is not None and first_deny <= priority

        target = self.fw.target(self.layer, zone)
        if (target in ACCEPTING_TARGETS or zone == "trusted") and not shadowed(float("inf")):
            return f"zone {zone} (target {target})"
        return self._listed_allowance(zone, rule, shadowed)

    def only_target(self, zone: str, rule: VrrpRule) -> bool:
        """Does ``zone`` let ``rule``'s adverts in by its target alone
        (ACCEPT, or the trusted zone): firewalld's policy, with no
        allowance of anyone's for VRRP in the zone?  Then ``open`` pins
        vrrpfw's allowance there, so a later target change keeps VRRP."""
        target = self.fw.target(self.layer, zone)
        accepts = target in ACCEPTING_TARGETS or zone == "trusted"
        return accepts and self._listed_allowance(zone, rule) is None

    def pins(self, rule: VrrpRule) -> bool:
        """open, without firewalld's nf_tables table to judge (its iptables
        backend: direct rules, or zone mode): are ``rule``'s adverts let in
        only by the interface's zone target?  Then vrrpfw adds its allowance
        as where the zone rejects them (an admin's direct rule, service,
        protocol or rich rule is theirs: nothing is added)."""
        if rule.direction is not Direction.IN:
            return False
        state, detail, _ = self.status(rule)
        return (state is Runtime.ALLOWED_BY_OTHER and detail.startswith("already allowed by zone ")
                and self.only_target(self.zone_for(rule.interface), rule))

    def _listed_allowance(self, zone: str, rule: VrrpRule,
                          shadowed: Callable[[float], bool] = lambda _priority: False) -> Optional[str]:
        """An allowance for ``rule`` that ``zone`` lists (service, protocol,
        rich rule), named; None where there is none.  ``shadowed(priority)``:
        a deny rich rule of the zone may run before an allowance of that
        priority (see :meth:`_other_allowance`)."""
        if not shadowed(0):  # services and protocols run where priority-0 accepts do
            service = self.service_covering(self.fw.zone_services(self.layer, zone), rule)
            if service is not None:
                return f"service {service} in zone {zone}"
            for proto in (("ah", "51") if rule.proto == AH_PROTO else ("vrrp", "112")):
                if self.fw.has(self.layer, zone, "protocol", proto):
                    return f"protocol {proto} in zone {zone}"
        for text in self.fw.rich_rules(self.layer, zone):
            if rich_allows(text, rule) and not shadowed(rich_priority(text)):
                return f"rich rule '{text}' in zone {zone}"
        return None

    def service_covering(self, names: Sequence[str], rule: VrrpRule) -> Optional[str]:
        """The first of the services ``names`` (a zone's or a policy's) whose
        definition in this layer accepts all of ``rule``'s adverts: any
        service, shipped or the admin's, by its protocols and destination
        (firewalld applies a service's own and each included service's
        definition separately); None where none does."""
        for name in names:
            if self._service_covers(str(name), rule, set()):
                return str(name)
        return None

    def _service_covers(self, name: str, rule: VrrpRule, seen: Set[str]) -> bool:
        if name in seen:  # firewalld refuses include loops; never follow one
            return False
        seen.add(name)
        if name not in self._service_memo:
            try:
                self._service_memo[name] = self.fw.service_settings(self.layer, name)
            except InputError:  # INVALID_SERVICE: a zone naming a service not defined in this layer
                self._service_memo[name] = {}
        settings = self._service_memo[name]
        return service_covers(settings, rule) or any(
            self._service_covers(str(inc), rule, seen) for inc in settings.get("includes", []))

    def _our_direct(self, rule: VrrpRule) -> List[Any]:
        want, family = direct_args(rule), ipv_of(rule)
        return [("direct", self.layer, chain, prio, args, ipv)
                for ipv, table, chain, prio, args in self.fw.direct_rules(self.layer)
                if ipv == family and table == "filter" and chain == rule.chain and args == want]

    def _direct_status(self, rule: VrrpRule) -> Tuple[Runtime, str, List[Any]]:
        # The admin's direct rules that may drop the advert: the direct chain
        # runs them by priority (in the order added within one), before the zones.
        drops = [(prio, args) for ipv, table, chain, prio, args in self.fw.direct_rules(self.layer)
                 if ipv == ipv_of(rule) and table == "filter" and chain == rule.chain
                 and COMMENT not in args and direct_may_drop(args, rule)]

        def dropped_before(priority: int) -> Optional[str]:
            ahead = [f"'{' '.join(a)}' (priority {p})" for p, a in drops if int(p) <= int(priority)]
            return f"the direct rule {ahead[0]} may drop it first" if ahead else None

        ours = self._our_direct(rule)
        if ours:
            first = dropped_before(min(int(h[3]) for h in ours))
            if first:
                return Runtime.UNCERTAIN, f"direct rule in {rule.chain}, but {first}", ours
            return Runtime.ALLOWED, f"direct rule in {rule.chain}", ours
        for ipv, table, chain, prio, args in self.fw.direct_rules(self.layer):
            if ipv == ipv_of(rule) and table == "filter" and chain == rule.chain \
                    and is_seed_direct(args, rule) and not dropped_before(prio):
                return Runtime.ALLOWED_BY_OTHER, f"already allowed by direct rule: {' '.join(args)}", []
        if drops:  # the zones come after every direct rule
            return Runtime.MISSING, dropped_before(max(int(p) for p, _ in drops)) or "", []
        if rule.direction is Direction.IN:
            zone = self.zone_for(rule.interface)
            other = self._other_allowance(zone, rule, unshadowed=True)
            if other:
                return Runtime.ALLOWED_BY_OTHER, f"already allowed by {other}", []
        return Runtime.MISSING, "", []

    def seed_rules(self) -> List[Tuple[str, int, List[str]]]:
        """Hand-made direct ACCEPTs for VRRP (any interface) in this layer."""
        out = []
        for ipv, table, chain, prio, args in self.fw.direct_rules(self.layer):
            if ipv != "ipv4" or table != "filter" or COMMENT in args:
                continue
            words = [a.lower() for a in args]
            if "accept" in words and any(w in ("vrrp", "112") for w in words):
                out.append((chain, prio, args))
        return out

    def apply(self, changes: Sequence[Change]) -> List[str]:
        """Make changes in this layer; returns what was done, as text."""
        done: List[str] = []
        for ch in changes:
            if ch.action is Action.DELETE:
                done += self._delete(ch.rule, ch.handle)
        for ch in changes:
            if ch.action is Action.INSERT:
                done += self._insert(ch.rule, ch.handle)
        return done

    def entries_for(self, rule: VrrpRule) -> List[Entry]:
        """The state entries of this layer that allow ``rule`` for its interface."""
        return [e for e in self.state.entries
                if e.layer == self.layer and rule.interface in e.interfaces and entry_fits(e, rule)]

    def recorded(self, rule: VrrpRule) -> List[Any]:
        """vrrpfw's allowances for ``rule`` in this layer, as recorded when it
        added them (in the zone or policy of that time) and still present."""
        return [("zone", self.layer, e.zone, e.kind, e.value) for e in self.entries_for(rule)
                if self.fw.has(self.layer, e.zone, e.kind, e.value)]

    def _insert(self, rule: VrrpRule, target: Optional[str] = None) -> List[str]:
        if target is not None:  # judged from the generated table: the zone or policy that drops
            value = top_rich_rule(rule)
            if self.fw.has(self.layer, target, "rich", value):
                if self.state.find(self.layer, target, "rich", value) is not None:
                    self.state.add(self.layer, target, "rich", value, rule.interface)
                return []
            self._add(rule, target, "rich", value)
            return [f"{self.layer}: {describe_target(target)}: add rich rule {value}"]
        if self.mode == "direct":
            args = direct_args(rule)
            text = f"direct {ipv_of(rule)} filter {rule.chain} 0 {' '.join(args)}"
            try:
                self.fw.direct_change(self.layer, True, rule.chain, 0, args, ipv_of(rule))
            except OutcomeUnknown as e:  # direct rules carry vrrpfw's comment: no record needed
                self._settle(e, f"adding the direct rule {text}", lambda: bool(self._our_direct(rule)))
            return [f"{self.layer}: {text}"]
        zone = self.zone_for(rule.interface)
        kind, value = self.allowance(rule)
        added = []
        if not self.fw.has(self.layer, zone, kind, value):
            self._add(rule, zone, kind, value)
            added.append(f"{self.layer}: zone {zone}: add {kind} {value}")
        elif self.state.find(self.layer, zone, kind, value) is not None:
            self.state.add(self.layer, zone, kind, value, rule.interface)  # ours already: share it
        return added

    def _add(self, rule: VrrpRule, zone: str, kind: str, value: str) -> None:
        """Add one allowance that is absent.  It is recorded as pending and
        the record saved *before* the call (a call can time out on vrrpfw's
        side and still complete in firewalld: the record must not depend on
        the answer); the answer, or firewalld read again, settles it."""
        entry = self.state.add_pending(self.layer, zone, kind, value, rule.interface)
        if entry is not None:
            self.state.save()  # raises before any change where the record cannot be written
        try:
            self.fw.change(self.layer, True, zone, kind, value)
        except OutcomeUnknown as e:
            self._settle(e, f"adding {kind} {value} to {describe_target(zone)}",
                         lambda: self.fw.has(self.layer, zone, kind, value), entry)
            return
        except VrrpfwError:  # firewalld answered: it did not add it
            if entry is not None:
                self.state.drop(entry)
            raise
        if entry is not None:
            self.state.confirm(entry)

    def _settle(self, err: OutcomeUnknown, doing: str, done: Callable[[], bool],
                entry: Optional[Entry] = None) -> None:
        """A change call went unanswered: read firewalld again and go by what
        is there.  Done: a note, and a pending ``entry`` is vrrpfw's.  Not
        done: the call's error, now proven to have changed nothing (a
        pending ``entry`` is dropped).  Unreadable: MayHaveChanged (the
        pending ``entry`` stays for the next run)."""
        try:
            carried_out = done()
        except (BackendUnavailable, EnvironmentProblem) as again:
            kept = "" if entry is None else (
                f"; recorded as pending in {self.state.path}: the next vrrpfw run that reaches firewalld "
                "takes it for vrrpfw's if it is there (close then removes it)")
            raise MayHaveChanged(
                f"{err}; read again, firewalld did not answer either ({again}): vrrpfw cannot tell whether "
                f"firewalld finished {doing} ({self.layer}), so firewalld may have been changed{kept}; "
                "run `vrrpfw check` once firewalld answers") from None
        if carried_out:
            if entry is not None:
                self.state.confirm(entry)
            self.notes.append(f"firewalld did not answer vrrpfw's call in time but carried it out: {doing} "
                              f"({self.layer}) is done (read again)"
                              + ("; recorded as vrrpfw's" if entry is not None else ""))
            return
        if entry is not None:
            self.state.drop(entry)
        raise EnvironmentProblem(f"{err}; read again: firewalld did not carry it out, {doing} "
                                 f"({self.layer}) changed nothing")

    def _delete(self, rule: VrrpRule, handle: Any) -> List[str]:
        if handle[0] == "direct":
            chain, prio, args = handle[2:5]
            ipv = handle[5] if len(handle) > 5 else "ipv4"  # seed rules: IPv4 only
            text = f"direct {ipv} filter {chain} {prio} {' '.join(args)}"
            try:
                self.fw.direct_change(self.layer, False, chain, prio, args, ipv)
            except OutcomeUnknown as e:
                self._settle(e, f"removing the {text}", lambda: not any(
                    d == (ipv, "filter", chain, prio, list(args)) for d in self.fw.direct_rules(self.layer)))
            return [f"{self.layer}: remove {text}"]
        _, _, zone, kind, value = handle
        if self.state.others(self.layer, zone, kind, value, [rule.interface]):
            self.state.release(self.layer, zone, kind, value, rule.interface)
            return []
        # Removed first, forgotten after: a failed call leaves the record of what is still there.
        try:
            self.fw.change(self.layer, False, zone, kind, value)
        except OutcomeUnknown as e:
            self._settle(e, f"removing {kind} {value} from {describe_target(zone)}",
                         lambda: not self.fw.has(self.layer, zone, kind, value))
        self.state.release(self.layer, zone, kind, value, rule.interface)
        return [f"{self.layer}: {describe_target(zone)}: remove {kind} {value}"]


class _Owner(Protocol):
    """What the permanent store asks of the backend's Ownership."""

    def runtime_only(self) -> Dict[Key, str]: ...
    def discover(self, name: str) -> List[VrrpRule]: ...


class _Backend(Protocol):
    """What the permanent store asks of the firewalld backend that holds it
    (a protocol: the backend imports this module, not the other way)."""

    options: Options
    targets: Dict[Key, List[str]]

    @property
    def owner(self) -> _Owner: ...
    def ensure_loaded(self) -> None: ...
    def layer(self, name: str) -> _Layer: ...
    def path_mode(self) -> bool: ...
    def note(self, text: str) -> None: ...
    def seed_changes(self, layer: str) -> List[Change]: ...
    def describe_in(self, layer: str, change: Change) -> str: ...
    def saving(self) -> ContextManager[None]: ...


class FirewalldPermanent(Persister):
    """firewalld's permanent configuration, changed through D-Bus."""

    def __init__(self, backend: _Backend) -> None:
        self.b = backend
        self.path = "firewalld permanent configuration"
        self.restorer = "firewalld"
        self.note = None
        # The report's note (the run reads it after measuring and after
        # committing): where the interface's zone differs after a reload, and
        # calls that timed out but were carried out.
        self.zone_notes: List[str] = []
        self.settled: List[str] = []
        self._source_note: Optional[str] = None  # "": the bindings are the same
        self._unsure: Set[Key] = set()  # set by _persisted

    def load(self) -> None:
        self.b.ensure_loaded()

    def _layer(self) -> _Layer:
        return self.b.layer("permanent")

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        """Keys the permanent configuration allows.  An allowance only the
        runtime has (the admin's runtime-only rule) is not persisted: a
        reload drops it.  A firewalld that stopped answering confirms
        nothing (so: not persisted), with a note."""
        return self._measure(self._persisted, rules)

    def targets(self, rule: VrrpRule) -> List[str]:
        """Path mode: where the permanent allowance for ``rule`` must be:
        where the runtime needs it, and in the zone the permanent
        configuration gives the interface (the zone after a reload or
        reboot) where that differs and does not allow the adverts already
        (see :mod:`.boot`).  ``--zone`` names the zone for both."""
        targets = self.b.targets.get(rule.key, [])
        if rule.direction is not Direction.IN or self.b.options.zone:
            return list(targets)
        layer = self._layer()
        now = self.b.layer("runtime").zone_for(rule.interface)
        boot = layer.zone_for(rule.interface)
        if boot == now:
            return list(targets)
        note = zone_note(rule.interface, now, boot, layer.fw.has_owner(NM_BUS_NAME))
        if note is not None:
            self._add_note(note)
        allows = (layer.fw.has("permanent", boot, "rich", top_rich_rule(rule))
                  or layer.other_allowance(boot, rule) is not None)
        return permanent_targets(targets, now, boot, allows)

    def _add_note(self, note: str) -> None:
        if note not in self.zone_notes:
            self.zone_notes.append(note)
            self.note = "; ".join(self.zone_notes + self.settled)

    def _sources_differ(self) -> bool:
        """Do the runtime and the permanent configuration bind source
        addresses to zones differently (said in the note)?"""
        if self._source_note is None:
            fw = self._layer().fw
            now, boot = fw.source_bindings("runtime"), fw.source_bindings("permanent")
            self._source_note = source_note(now, boot) or ""
        if self._source_note:
            self._add_note(self._source_note)
        return bool(self._source_note)

    def _persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        layer = self._layer()
        if self.b.path_mode():
            # Every allowance the runtime needs is in the permanent
            # configuration too, and the interface's zone there allows the
            # adverts: a reload or reboot gives the same verdict.  Source
            # bindings that differ after a reload: nothing inbound is sure.
            out = set()
            self._unsure = set()
            for r in rules:
                differ = r.direction is Direction.IN and self._sources_differ()  # said in the note
                targets = self.targets(r)
                if all(layer.fw.has("permanent", t, "rich", top_rich_rule(r)) for t in targets) \
                        and (targets or layer.status(r)[0] is not Runtime.MISSING):
                    if differ:
                        self._unsure.add(r.key)
                    else:
                        out.add(r.key)
            return out
        return {r.key for r in rules
                if layer.status(r)[0] in (Runtime.ALLOWED, Runtime.ALLOWED_BY_OTHER)}

    def runtime_only(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        return set(self.b.owner.runtime_only()) & {r.key for r in rules}

    def uncertain(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        """Inbound keys the permanent configuration allows in the zones the
        runtime shows, while source bindings differ after a reload: which
        zone judges the adverts then is not known (see boot.py)."""
        return self._unsure & {r.key for r in rules}

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        return self._measure(self._owned, rules)

    def _owned(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        layer = self._layer()
        if self.b.path_mode():
            return {r.key for r in rules if layer.recorded(r)}
        return {r.key for r in rules if layer.status(r)[2]}

    def _measure(self, how: Callable[[Sequence[VrrpRule]], Set[Key]], rules: Sequence[VrrpRule]) -> Set[Key]:
        try:
            return how(rules)
        except (BackendUnavailable, EnvironmentProblem) as e:
            self.b.note(f"the permanent configuration could not be read back: {e}")
            return set()

    def discover(self) -> List[VrrpRule]:
        return self.b.owner.discover("permanent")

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        layer = self._layer()
        changes: List[Change] = []
        planned: Set[Tuple[str, str]] = set()
        for r in rules:
            if self.b.path_mode():
                if op == "open":  # one rich rule can serve both directions (multicast): once
                    value = top_rich_rule(r)
                    targets = self.targets(r)
                    changes += [Change(Action.INSERT, r, t) for t in targets
                                if (t, value) not in planned
                                and not layer.fw.has("permanent", t, "rich", value)]
                    planned |= {(t, value) for t in targets}
                else:
                    changes += [Change(Action.DELETE, r, h) for h in layer.recorded(r)]
                continue
            state, _, ours = layer.status(r)
            if op == "open" and (state is Runtime.MISSING or (self.b.options.pin and layer.pins(r))):
                changes.append(Change(Action.INSERT, r))
            elif op == "close":
                changes.extend(Change(Action.DELETE, r, h) for h in ours)
        if op == "close" and self.b.options.remove_seed:
            changes.extend(self.b.seed_changes("permanent"))
        if not changes:
            return PersistPlan(False)
        diff = "\n".join(self.b.describe_in("permanent", c) for c in changes) + "\n"
        return PersistPlan(True, diff, changes)

    def commit(self, plan: PersistPlan) -> None:
        """Each change is recorded as it is made; the record is saved also
        when a later change fails, so nothing vrrpfw added is forgotten."""
        layer = self._layer()
        known = len(layer.notes)
        with self.b.saving():
            layer.apply(plan.payload)
        self.settled += layer.notes[known:]  # a call that timed out but was carried out: the report says so
        if self.settled or self.zone_notes:
            self.note = "; ".join(self.zone_notes + self.settled)
