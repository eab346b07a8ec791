"""firewalld over D-Bus (dbus-python): runtime and permanent, separately.

Why two modes: with ``FirewallBackend=iptables`` a direct rule in INPUT is
evaluated before firewalld's zone chains and works.  With the nftables
backend (the default since firewalld 0.6) a direct ACCEPT only ends the
iptables-nft base chain; firewalld's own ``inet firewalld`` table is a
separate base chain that still rejects the packet, so the admin's classic
recipe reports success and leaves VRRP blocked.  There we allow VRRP in the
interface's zone: firewalld's ``vrrp`` service where it exists (2.1.0+),
else the rich rule ``rule family="ipv4" destination address="GROUP"
protocol value="vrrp" accept``.

vrrpfw never calls ``reload()``: it would drop other tools' runtime-only
changes.  Runtime and permanent configuration are read and changed one by
one, each only where missing.  Direct rules carry the ``vrrpfw`` comment;
zone allowances cannot, so :mod:`vrrpfw.persist.state` records which ones
vrrpfw added and which interfaces asked for them.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ..errors import BackendError, BackendUnavailable, EnvironmentProblem, InputError
from ..hostscan import HostScan, firewalld_answers
from ..model import COMMENT, DEFAULT_GROUP4, Direction, VrrpRule
from ..netpath import BaseChain, ChainState, ChainVerdict, PathModel
from ..persist.state import StateFile
from ..readers.model import build_model, read_legacy
from ..readers.nft import read as nft_read
from ..results import Action, Runtime
from .base import Availability, Backend, Change, Key, Options, Persister, PersistPlan, RuntimeStatus

BUS_NAME = "org.fedoraproject.FirewallD1"
PATH = "/org/fedoraproject/FirewallD1"
CONFIG_PATH = "/org/fedoraproject/FirewallD1/config"
SERVICE = "vrrp"
ACCEPTING_TARGETS = {"ACCEPT"}
MAX_ROUNDS = 5
# Seconds to wait for each firewalld call; a hung firewalld becomes exit 3.
DBUS_TIMEOUT = float(os.environ.get("VRRPFW_DBUS_TIMEOUT", "15"))


def rich_rule(group: str) -> str:
    return f'rule family="ipv4" destination address="{group}" protocol value="vrrp" accept'


# State entries for a policy use this prefix in place of a zone name.
POLICY_PREFIX = "policy:"
# The lowest rich-rule priority: evaluated before every deny rule an admin can write.
TOP_PRIORITY = -32768


def top_rich_rule(group: str) -> str:
    """vrrpfw's allowance on firewalld's nftables backend: a rich rule at
    the lowest priority, so that it wins over deny rules (priority < 0 or
    plain reject/drop rules, which firewalld puts before allowances)."""
    return (f'rule priority="{TOP_PRIORITY}" family="ipv4" destination address="{group}" '
            'protocol value="vrrp" accept')


def same_rich(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


_CHAIN_OWNER = re.compile(r"^filter_(IN|OUT)_(policy_)?(.+?)(_pre|_log|_deny|_allow|_post)?$")


def construct_of(chain_name: str) -> Optional[str]:
    """The zone (or ``policy:NAME``) whose chain in firewalld's table holds
    a rule: ``filter_IN_public_deny`` -> ``public``."""
    m = _CHAIN_OWNER.match(chain_name)
    if m is None or m.group(3) in ("", "ZONES", "POLICIES"):
        return None
    return (POLICY_PREFIX + m.group(3)) if m.group(2) else m.group(3)


def describe_target(target: str) -> str:
    if target.startswith(POLICY_PREFIX):
        return f"policy {target[len(POLICY_PREFIX):]}"
    return f"zone {target}"


_FW_CHAIN = re.compile(r"\b(filter_(?:IN|OUT)_[A-Za-z0-9_.-]+):")


def _name_construct(m: Any) -> str:
    """``filter_IN_public_allow:`` -> ``zone public (filter_IN_public_allow):``."""
    target = construct_of(m.group(1))
    return f"{describe_target(target)} ({m.group(1)}):" if target else m.group(0)


def direct_args(rule: VrrpRule, comment: bool = True) -> List[str]:
    flag = "-i" if rule.direction is Direction.IN else "-o"
    args = [flag, rule.interface, "-d", rule.group, "-p", "112"]
    if comment:
        args += ["-m", "comment", "--comment", COMMENT]
    return args + ["-j", "ACCEPT"]


_RICH_ADDR = re.compile(r'destination\s+(not\s+)?address="([^"]+)"')


def rich_allows(rule_text: str, group: str) -> bool:
    """Does a rich rule accept VRRP to ``group``?  Only the plain shapes
    count: a source, a limit or a negation makes it not ours to judge."""
    text = " ".join(rule_text.split())
    if not text.endswith(" accept") or "source" in text or "limit" in text:
        return False
    if 'family="ipv6"' in text:
        return False
    proto = re.search(r'protocol value="([^"]+)"', text)
    if proto is None or proto.group(1).lower() not in ("vrrp", "112"):
        return False
    addr = _RICH_ADDR.search(text)
    if addr is None:
        return True
    if addr.group(1):
        return False
    return addr.group(2).split("/")[0] == group and addr.group(2) in (group, f"{group}/32")


def is_seed_direct(args: Sequence[str], rule: VrrpRule) -> bool:
    """A hand-made direct ACCEPT for VRRP on this interface (the recipe)."""
    words = list(args)
    flag = "-i" if rule.direction is Direction.IN else "-o"
    flag_long = "--in-interface" if rule.direction is Direction.IN else "--out-interface"
    has_iface = any(w in (flag, flag_long) and i + 1 < len(words) and words[i + 1] == rule.interface
                    for i, w in enumerate(words))
    has_proto = any(w in ("-p", "--protocol") and i + 1 < len(words)
                    and words[i + 1].lower() in ("vrrp", "112") for i, w in enumerate(words))
    accepts = "ACCEPT" in words
    return has_iface and has_proto and accepts and COMMENT not in words


class Firewalld:
    """Thin D-Bus client; every D-Bus failure becomes one of our errors."""

    def __init__(self) -> None:
        try:
            import dbus
        except ImportError as e:
            raise BackendUnavailable(f"dbus-python is not installed ({e})") from None
        self._dbus = dbus
        try:
            bus = dbus.SystemBus()
            obj = bus.get_object(BUS_NAME, PATH, introspect=False)
            cfg = bus.get_object(BUS_NAME, CONFIG_PATH, introspect=False)
        except dbus.exceptions.DBusException as e:
            raise self._map(e, "connecting to firewalld") from None
        self.bus = bus
        self.main = dbus.Interface(obj, BUS_NAME)
        self.zone = dbus.Interface(obj, BUS_NAME + ".zone")
        self.direct = dbus.Interface(obj, BUS_NAME + ".direct")
        self.policies = dbus.Interface(obj, BUS_NAME + ".policies")
        self.policy = dbus.Interface(obj, BUS_NAME + ".policy")
        self.config = dbus.Interface(cfg, BUS_NAME + ".config")
        self.config_direct = dbus.Interface(cfg, BUS_NAME + ".config.direct")
        self.config_props = dbus.Interface(cfg, "org.freedesktop.DBus.Properties")
        self._zone_cfg: Dict[str, Any] = {}

    def _map(self, e: Any, doing: str) -> Exception:
        name = e.get_dbus_name() or ""
        msg = (e.get_dbus_message() or "").strip()
        if name == BUS_NAME + ".Exception":
            code = msg.split(":")[0].strip()
            if code in ("INVALID_ZONE", "INVALID_INTERFACE", "INVALID_SERVICE"):
                return InputError(f"firewalld: {msg} ({doing})")
            if code == "ACCESS_DENIED":
                return EnvironmentProblem(f"firewalld refused {doing}: {msg} (lockdown mode?)")
            return BackendError(f"firewalld failed {doing}: {msg}")
        if name.endswith((".ServiceUnknown", ".NameHasNoOwner")):
            return BackendUnavailable("firewalld is not running (nothing owns "
                                      f"{BUS_NAME} on the system bus)")
        if name.endswith((".AccessDenied", ".AuthFailed", ".NotAuthorized")) or "NotAuthorized" in name:
            return EnvironmentProblem(f"D-Bus or polkit denied {doing}: {msg} (run vrrpfw as root)")
        if name.endswith((".NoReply", ".Disconnected", ".NoServer", ".FileNotFound", ".Timeout")):
            return EnvironmentProblem(f"firewalld stopped answering while {doing}: {msg}")
        return BackendError(f"D-Bus error while {doing}: {name}: {msg}")

    def call(self, doing: str, fn: Callable[..., Any], *args: Any, ok_codes: Tuple[str, ...] = ()) -> Any:
        try:
            return fn(*args, timeout=DBUS_TIMEOUT)
        except self._dbus.exceptions.DBusException as e:
            msg = (e.get_dbus_message() or "").strip()
            if ok_codes and msg.split(":")[0].strip() in ok_codes:
                return None  # ALREADY_ENABLED / NOT_ENABLED: someone got there first
            raise self._map(e, doing) from None

    # -- facts --------------------------------------------------------------
    def backend(self) -> str:
        return str(self.call("reading FirewallBackend", self.config_props.Get,
                             BUS_NAME + ".config", "FirewallBackend"))

    def default_zone(self, layer: str) -> str:
        if layer == "runtime":
            return str(self.call("reading the default zone", self.main.getDefaultZone))
        return str(self.call("reading the permanent default zone", self.config_props.Get,
                             BUS_NAME + ".config", "DefaultZone"))

    def zone_of(self, layer: str, iface: str) -> str:
        api = self.zone if layer == "runtime" else self.config
        return str(self.call(f"finding the zone of {iface}", api.getZoneOfInterface, iface))

    def zones(self, layer: str) -> List[str]:
        if layer == "runtime":
            return [str(z) for z in self.call("listing zones", self.zone.getZones)]
        return [str(z) for z in self.call("listing zones", self.config.getZoneNames)]

    def knows_service(self, layer: str, name: str) -> bool:
        if layer == "runtime":
            names = self.call("listing services", self.main.listServices)
        else:
            names = self.call("listing services", self.config.getServiceNames)
        return name in [str(n) for n in names]

    def lockdown(self) -> bool:
        return bool(self.call("querying lockdown", self.policies.queryLockdown))

    def zone_cfg(self, zone: str) -> Any:
        if zone not in self._zone_cfg:
            path = self.call(f"finding permanent zone {zone}", self.config.getZoneByName, zone)
            obj = self.bus.get_object(BUS_NAME, path, introspect=False)
            self._zone_cfg[zone] = self._dbus.Interface(obj, BUS_NAME + ".config.zone")
        return self._zone_cfg[zone]

    def target(self, layer: str, zone: str) -> str:
        if layer == "runtime":
            settings = self.call(f"reading zone {zone}", self.zone.getZoneSettings2, zone)
            return str(settings.get("target", "default"))
        return str(self.call(f"reading zone {zone}", self.zone_cfg(zone).getTarget))

    def interfaces(self, layer: str, zone: str) -> List[str]:
        if layer == "runtime":
            return [str(i) for i in self.call(f"reading zone {zone}", self.zone.getInterfaces, zone)]
        return [str(i) for i in self.call(f"reading zone {zone}", self.zone_cfg(zone).getInterfaces)]

    def _policy_cfg(self, policy: str) -> Any:
        path = self.call(f"finding permanent policy {policy}", self.config.getPolicyByName, policy)
        obj = self.bus.get_object(BUS_NAME, path, introspect=False)
        return self._dbus.Interface(obj, BUS_NAME + ".config.policy")

    def policy_settings(self, layer: str, policy: str) -> Dict[str, Any]:
        doing = f"reading policy {policy}"
        if layer == "runtime":
            return dict(self.call(doing, self.policy.getPolicySettings, policy))
        return dict(self.call(doing, self._policy_cfg(policy).getSettings))

    def policy_rich_rules(self, layer: str, policy: str) -> List[str]:
        return [str(r) for r in self.policy_settings(layer, policy).get("rich_rules", [])]

    def policy_change(self, layer: str, add: bool, policy: str, value: str) -> None:
        """Policies have no add/remove call per rich rule: read, edit, write back."""
        settings = self.policy_settings(layer, policy)
        rules = [str(r) for r in settings.get("rich_rules", [])]
        present = [r for r in rules if same_rich(r, value)]
        if add == bool(present):
            return
        rules = rules + [value] if add else [r for r in rules if not same_rich(r, value)]
        # Only the key we change: firewalld applies the keys it is given.
        settings = {"rich_rules": self._dbus.Array(rules, signature="s")}
        verb, prep = ("adding", "to") if add else ("removing", "from")
        doing = f"{verb} rich rule {value!r} {prep} policy {policy}"
        if layer == "runtime":
            self.call(doing, self.policy.setPolicySettings, policy, settings)
        else:
            self.call(doing, self._policy_cfg(policy).update, settings)

    def has(self, layer: str, zone: str, kind: str, value: str) -> bool:
        """An unknown service or protocol just means: not allowed that way."""
        if zone.startswith(POLICY_PREFIX):
            return any(same_rich(r, value) for r in self.policy_rich_rules(layer, zone[len(POLICY_PREFIX):]))
        doing = f"querying zone {zone}"
        unknown = ("INVALID_SERVICE", "INVALID_PROTOCOL", "INVALID_RULE")
        if layer == "runtime":
            fn = {"service": self.zone.queryService, "rich": self.zone.queryRichRule,
                  "protocol": self.zone.queryProtocol}[kind]
            return bool(self.call(doing, fn, zone, value, ok_codes=unknown))
        z = self.zone_cfg(zone)
        fn = {"service": z.queryService, "rich": z.queryRichRule, "protocol": z.queryProtocol}[kind]
        return bool(self.call(doing, fn, value, ok_codes=unknown))

    def rich_rules(self, layer: str, zone: str) -> List[str]:
        if layer == "runtime":
            return [str(r) for r in self.call(f"reading zone {zone}", self.zone.getRichRules, zone)]
        return [str(r) for r in self.call(f"reading zone {zone}", self.zone_cfg(zone).getRichRules)]

    def change(self, layer: str, add: bool, zone: str, kind: str, value: str) -> None:
        if zone.startswith(POLICY_PREFIX):
            self.policy_change(layer, add, zone[len(POLICY_PREFIX):], value)
            return
        doing = f"{'adding' if add else 'removing'} {kind} {value!r} {'to' if add else 'from'} zone {zone}"
        ok = ("ALREADY_ENABLED",) if add else ("NOT_ENABLED",)
        if layer == "runtime":
            if kind == "service":
                fn = self.zone.addService if add else self.zone.removeService
            else:
                fn = self.zone.addRichRule if add else self.zone.removeRichRule
            args: Tuple[Any, ...] = (zone, value, 0) if add else (zone, value)
            self.call(doing, fn, *args, ok_codes=ok)
            return
        z = self.zone_cfg(zone)
        if kind == "service":
            fn = z.addService if add else z.removeService
        else:
            fn = z.addRichRule if add else z.removeRichRule
        self.call(doing, fn, value, ok_codes=ok)

    def direct_rules(self, layer: str) -> List[Tuple[str, str, str, int, List[str]]]:
        api = self.direct if layer == "runtime" else self.config_direct
        out = []
        for ipv, table, chain, prio, args in self.call("listing direct rules", api.getAllRules):
            out.append((str(ipv), str(table), str(chain), int(prio), [str(a) for a in args]))
        return out

    def direct_change(self, layer: str, add: bool, chain: str, prio: int, args: Sequence[str]) -> None:
        api = self.direct if layer == "runtime" else self.config_direct
        fn = api.addRule if add else api.removeRule
        ok = ("ALREADY_ENABLED",) if add else ("NOT_ENABLED",)
        self.call(f"{'adding' if add else 'removing'} a direct rule in {chain}", fn,
                  "ipv4", "filter", chain, prio, self._dbus.Array(list(args), signature="s"), ok_codes=ok)


class _Layer:
    """Where one layer (runtime or permanent) stands for one rule."""

    def __init__(self, fw: Firewalld, state: StateFile, mode: str, layer: str, zone_opt: Optional[str]):
        self.fw, self.state, self.mode, self.layer, self.zone_opt = fw, state, mode, layer, zone_opt
        self.notes: List[str] = []
        self._zone_memo: Dict[str, str] = {}

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
        if rule.group == DEFAULT_GROUP4 and self.fw.knows_service(self.layer, SERVICE):
            return "service", SERVICE
        return "rich", rich_rule(rule.group)

    def status(self, rule: VrrpRule) -> Tuple[Runtime, str, List[Any]]:
        """(state, detail, our handles) of one rule in this layer."""
        if self.mode == "direct":
            return self._direct_status(rule)
        ours: List[Any] = self._our_direct(rule)
        if rule.direction is Direction.OUT:
            return Runtime.ALLOWED_BY_OTHER, "firewalld zones do not filter outbound traffic", ours
        zone = self.zone_for(rule.interface)
        found = None
        for entry in self.state.entries:
            if entry.layer == self.layer and entry.zone == zone and rule.interface in entry.interfaces:
                if self.fw.has(self.layer, zone, entry.kind, entry.value) and \
                        (entry.kind == "service" or rich_allows(entry.value, rule.group)):
                    ours.append(("zone", self.layer, zone, entry.kind, entry.value))
                    found = found or f"zone {zone}: {entry.kind} {entry.value}"
        if found:
            return Runtime.ALLOWED, found, ours
        other = self._other_allowance(zone, rule.group)
        if other:
            return Runtime.ALLOWED_BY_OTHER, f"already allowed by {other}", ours
        return Runtime.MISSING, f"zone {zone} rejects VRRP", ours

    def _other_allowance(self, zone: str, group: str) -> Optional[str]:
        target = self.fw.target(self.layer, zone)
        if target in ACCEPTING_TARGETS or zone == "trusted":
            return f"zone {zone} (target {target})"
        if group == DEFAULT_GROUP4 and self.fw.has(self.layer, zone, "service", SERVICE):
            return f"service {SERVICE} in zone {zone}"
        for proto in ("vrrp", "112"):
            if self.fw.has(self.layer, zone, "protocol", proto):
                return f"protocol {proto} in zone {zone}"
        for text in self.fw.rich_rules(self.layer, zone):
            if rich_allows(text, group):
                return f"rich rule '{text}' in zone {zone}"
        return None

    def _our_direct(self, rule: VrrpRule) -> List[Any]:
        want = direct_args(rule)
        return [("direct", self.layer, chain, prio, args)
                for ipv, table, chain, prio, args in self.fw.direct_rules(self.layer)
                if ipv == "ipv4" and table == "filter" and chain == rule.chain and args == want]

    def _direct_status(self, rule: VrrpRule) -> Tuple[Runtime, str, List[Any]]:
        ours = self._our_direct(rule)
        if ours:
            return Runtime.ALLOWED, f"direct rule in {rule.chain}", ours
        for ipv, table, chain, _prio, args in self.fw.direct_rules(self.layer):
            if ipv == "ipv4" and table == "filter" and chain == rule.chain and is_seed_direct(args, rule):
                return Runtime.ALLOWED_BY_OTHER, f"already allowed by direct rule: {' '.join(args)}", []
        if rule.direction is Direction.IN:
            zone = self.zone_for(rule.interface)
            other = self._other_allowance(zone, rule.group)
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

    def recorded(self, rule: VrrpRule) -> List[Any]:
        """vrrpfw's allowances for ``rule`` in this layer, as recorded when it
        added them and still present in firewalld."""
        return [("zone", self.layer, e.zone, e.kind, e.value) for e in self.state.entries
                if e.layer == self.layer and rule.interface in e.interfaces
                and (e.kind != "rich" or rich_allows(e.value, rule.group)
                     or e.value == top_rich_rule(rule.group))
                and self.fw.has(self.layer, e.zone, e.kind, e.value)]

    def _insert(self, rule: VrrpRule, target: Optional[str] = None) -> List[str]:
        if target is not None:  # judged from the generated table: the zone or policy that drops
            value = top_rich_rule(rule.group)
            if self.fw.has(self.layer, target, "rich", value):
                if self.state.find(self.layer, target, "rich", value) is not None:
                    self.state.add(self.layer, target, "rich", value, rule.interface)
                return []
            self.fw.change(self.layer, True, target, "rich", value)
            self.state.add(self.layer, target, "rich", value, rule.interface)
            return [f"{self.layer}: {describe_target(target)}: add rich rule {value}"]
        if self.mode == "direct":
            self.fw.direct_change(self.layer, True, rule.chain, 0, direct_args(rule))
            return [f"{self.layer}: direct ipv4 filter {rule.chain} 0 {' '.join(direct_args(rule))}"]
        zone = self.zone_for(rule.interface)
        kind, value = self.allowance(rule)
        added = []
        if not self.fw.has(self.layer, zone, kind, value):
            self.fw.change(self.layer, True, zone, kind, value)
            added.append(f"{self.layer}: zone {zone}: add {kind} {value}")
            self.state.add(self.layer, zone, kind, value, rule.interface)
        elif self.state.find(self.layer, zone, kind, value) is not None:
            self.state.add(self.layer, zone, kind, value, rule.interface)  # ours already: share it
        return added

    def _delete(self, rule: VrrpRule, handle: Any) -> List[str]:
        if handle[0] == "direct":
            _, _, chain, prio, args = handle
            self.fw.direct_change(self.layer, False, chain, prio, args)
            return [f"{self.layer}: remove direct ipv4 filter {chain} {prio} {' '.join(args)}"]
        _, _, zone, kind, value = handle
        if self.state.release(self.layer, zone, kind, value, rule.interface):
            self.fw.change(self.layer, False, zone, kind, value)
            return [f"{self.layer}: zone {zone}: remove {kind} {value}"]
        return []


class FirewalldPermanent(Persister):
    """firewalld's permanent configuration, changed through D-Bus."""

    def __init__(self, backend: FirewalldBackend) -> None:
        self.b = backend
        self.path = "firewalld permanent configuration"
        self.restorer = "firewalld"
        self.note = None

    def load(self) -> None:
        self.b.ensure_loaded()

    def _layer(self) -> _Layer:
        return self.b.layer("permanent")

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        layer = self._layer()
        if self.b.path_mode():
            # Every allowance vrrpfw made at runtime is in the permanent
            # configuration too, so a reload gives the same verdict.
            return {r.key for r in rules
                    if all(layer.fw.has("permanent", t, "rich", top_rich_rule(r.group))
                           for t in self.b.targets.get(r.key, []))
                    and (self.b.targets.get(r.key) or layer.status(r)[0] is not Runtime.MISSING)}
        return {r.key for r in rules
                if layer.status(r)[0] in (Runtime.ALLOWED, Runtime.ALLOWED_BY_OTHER)}

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        layer = self._layer()
        if self.b.path_mode():
            return {r.key for r in rules if layer.recorded(r)}
        return {r.key for r in rules if layer.status(r)[2]}

    def discover(self) -> List[VrrpRule]:
        return self.b.discover_layer("permanent")

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        layer = self._layer()
        changes: List[Change] = []
        for r in rules:
            if self.b.path_mode():
                if op == "open":
                    value = top_rich_rule(r.group)
                    changes += [Change(Action.INSERT, r, t) for t in self.b.targets.get(r.key, [])
                                if not layer.fw.has("permanent", t, "rich", value)]
                else:
                    changes += [Change(Action.DELETE, r, h) for h in layer.recorded(r)]
                continue
            state, _, ours = layer.status(r)
            if op == "open" and state is Runtime.MISSING:
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
        self._layer().apply(plan.payload)
        self.b.state.save()


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
        self._loaded = True

    def layer(self, name: str) -> _Layer:
        if name not in self._layers:
            self._layers[name] = _Layer(self.fw, self.state, self.mode, name, self.options.zone)
        return self._layers[name]

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        self.ensure_loaded()
        yield

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
            st.needs = targets
            recorded = [h[2] for h in st.ours]
            self.targets[st.rule.key] = list(dict.fromkeys(recorded + targets))
            if st.state is Runtime.ALLOWED_BY_OTHER and st.ours:
                st.state = Runtime.ALLOWED
            st.detail = _FW_CHAIN.sub(_name_construct, st.detail)
        return statuses

    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        if self.path_mode():
            return self._path_statuses(rules)
        layer = self.layer("runtime")
        out = []
        for r in rules:
            state, detail, ours = layer.status(r)
            out.append(RuntimeStatus(r, state, detail, ours))
        return out

    def discover_layer(self, name: str) -> List[VrrpRule]:
        found: List[VrrpRule] = []
        for e in self.state.entries:
            if e.layer != name:
                continue
            group = DEFAULT_GROUP4
            m = _RICH_ADDR.search(e.value) if e.kind == "rich" else None
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
        if op == "open" and self.path_mode():
            return [Change(Action.INSERT, st.rule, t) for st in statuses for t in st.needs]
        if op == "open":
            return [Change(Action.INSERT, st.rule) for st in statuses if st.state is Runtime.MISSING]
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
            try:
                layer.apply(pending)
            finally:
                self.state.save()
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
            return f"{layer}: zone {h[2]}: remove {h[3]} {h[4]} (if no other interface needs it)"
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
        runtime = self.layer("runtime")
        notes.append(f"firewalld uses its {self.fw_backend} backend; vrrpfw manages "
                     f"{'direct rules' if self.mode == 'direct' else 'a zone allowance'}")
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
            seen = set()
            zones = set(runtime._zone_memo.values()) | {
                t for ts in self.targets.values() for t in ts if not t.startswith(POLICY_PREFIX)}
            for zone in sorted(zones):
                if zone in seen:
                    continue
                seen.add(zone)
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
        if self.scan is not None and self.scan.legacy_filter:
            notes.append("legacy iptables tables exist too; firewalld manages this host, so vrrpfw "
                         "leaves them alone")
        return notes
