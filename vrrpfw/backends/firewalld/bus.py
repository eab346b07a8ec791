"""A thin firewalld D-Bus client (dbus-python): every D-Bus failure becomes
one of vrrpfw's errors, every call has a timeout, and "already there" or
"not there" answers are not failures.

Round trips are what a check costs (each ~0.5 ms, firewalld being a Python
daemon), so: the bus name is resolved once, and every proxy speaks to that
firewalld; a read is asked once per run and remembered until vrrpfw changes
anything (every change call forgets all answers, before and after it, so
what is read back after a change, or to settle an unanswered call, is
firewalld's answer of that moment); the runtime's zone bindings come from
one ``getActiveZones``, the permanent sources by zone object path; and the
reads a run will make are sent ahead, together (:meth:`Firewalld.prefetch`),
so firewalld answers them while vrrpfw works and vrrpfw waits about once
rather than once per read."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Tuple

from ...environment import dbus_timeout
from ...errors import (  # noqa: F401 - OutcomeUnknown, MayHaveChanged: re-exported for the firewalld modules
    BackendError,
    BackendUnavailable,
    EnvironmentProblem,
    InputError,
    MayHaveChanged,
    OutcomeUnknown,
)
from .rules import POLICY_PREFIX, same_rich

BUS_NAME = "org.fedoraproject.FirewallD1"
PATH = "/org/fedoraproject/FirewallD1"
CONFIG_PATH = "/org/fedoraproject/FirewallD1/config"
# has(): the query method of each kind of allowance (runtime: on the zone
# interface with the zone's name; permanent: on the zone's config object).
HAS_METHODS = {"service": "queryService", "rich": "queryRichRule", "protocol": "queryProtocol"}
PATH_CONFIG_ZONE_BY_NAME = (CONFIG_PATH, "org.fedoraproject.FirewallD1.config", "getZoneByName")


class Firewalld:
    """Thin D-Bus client; every D-Bus failure becomes one of our errors."""

    def __init__(self) -> None:
        try:
            import dbus
        except ImportError as e:
            raise BackendUnavailable(f"dbus-python is not installed ({e})") from None
        self._dbus = dbus
        # Seconds to wait for each firewalld call (VRRPFW_DBUS_TIMEOUT, validated
        # before any call: libdbus aborts on nan); a hung firewalld becomes exit 3.
        self.timeout = dbus_timeout()
        try:
            bus = dbus.SystemBus()
            # The unique name of the firewalld that answers now (get_object
            # with the well-known name would ask the bus again per object).
            self.owner = str(bus.activate_name_owner(BUS_NAME))
            obj = bus.get_object(self.owner, PATH, introspect=False)
            cfg = bus.get_object(self.owner, CONFIG_PATH, introspect=False)
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
        self._policy_paths: Dict[str, Any] = {}
        self._memo: Dict[Tuple[Any, ...], Any] = {}  # read -> firewalld's answer (see forget)
        self._pending: Dict[Tuple[Any, ...], Any] = {}  # read -> its call in flight (see prefetch)
        self.epoch = 0  # how many times answers were forgotten: 0 while vrrpfw has changed nothing

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
        if name.endswith((".NoReply", ".Disconnected", ".Timeout")):  # sent, maybe carried out
            # libdbus appends a generic "Possible causes include: ..." list to
            # NoReply; it says nothing of this call and would be quoted twice
            # where a read-back fails too.
            msg = msg.split(" Possible causes include")[0].strip()
            return OutcomeUnknown(f"firewalld stopped answering while {doing}: {msg}")
        if name.endswith((".NoServer", ".FileNotFound")):  # no bus to send it to
            return EnvironmentProblem(f"firewalld stopped answering while {doing}: {msg}")
        return BackendError(f"D-Bus error while {doing}: {name}: {msg}")

    def call(self, doing: str, fn: Callable[..., Any], *args: Any, ok_codes: Tuple[str, ...] = ()) -> Any:
        try:
            return fn(*args, timeout=self.timeout)
        except self._dbus.exceptions.DBusException as e:
            return self._failed(e, doing, ok_codes)

    def _failed(self, e: Any, doing: str, ok_codes: Tuple[str, ...]) -> Any:
        msg = (e.get_dbus_message() or "").strip()
        if ok_codes and msg.split(":")[0].strip() in ok_codes:
            return None  # ALREADY_ENABLED / NOT_ENABLED: someone got there first
        raise self._map(e, doing) from None

    def read(self, key: Tuple[Any, ...], doing: str, fn: Callable[..., Any], *args: Any,
             ok_codes: Tuple[str, ...] = ()) -> Any:
        """``call`` for a read, asked of firewalld once until :meth:`forget`.
        The answer is shared: callers copy before they change it.  A read
        :meth:`prefetch` sent already is not sent again: its answer is
        awaited (an error answer is raised here, as ``call`` raises it)."""
        if key not in self._memo:
            sent = self._pending.pop(key, None)
            if sent is None:
                self._memo[key] = self.call(doing, fn, *args, ok_codes=ok_codes)
            else:
                self._memo[key] = self._await(sent, doing, ok_codes)
        return self._memo[key]

    def prefetch(self, reads: Sequence[Tuple[Tuple[Any, ...], str, str, str, Tuple[Any, ...]]]) -> None:
        """Send reads (memo key, object path, interface, method, arguments)
        the run will make, without waiting for their answers: firewalld
        answers them back to back while vrrpfw does other work, and each
        :meth:`read` of the same key takes its answer rather than asking
        again.  The same question asked earlier in the run, of a firewalld
        vrrpfw has not changed since (:meth:`forget` drops what is in
        flight): the answer ``read`` would get.  Keys answered or in flight
        already are skipped.  A failure to send sends nothing more: the
        reads are then made one by one, as without prefetching."""
        from dbus.lowlevel import MethodCallMessage

        for key, path, iface, method, args in reads:
            if key in self._memo or key in self._pending:
                continue
            try:
                msg = MethodCallMessage(destination=self.owner, path=path, interface=iface, method=method)
                if args:
                    msg.append(*args)
                box: List[Any] = []
                call = self.bus.send_message_with_reply(msg, box.append, self.timeout,
                                                        require_main_loop=False)
            except (self._dbus.exceptions.DBusException, TypeError, ValueError):
                return
            self._pending[key] = (box, call)

    def ahead(self, keys: Sequence[Tuple[Any, ...]]) -> None:
        """:meth:`prefetch` the reads named by their memo keys (as the
        methods below key them): ``("backend",)``, ``("lockdown",)``,
        ``("active",)``, ``("default", "runtime")``, ``("direct", LAYER)``,
        ``("zone_paths",)``, ``("zone_path", ZONE)``, ``("target",
        "runtime", ZONE)``, ``("zone_of", "permanent", IFACE)``, ``("has",
        LAYER, ZONE, KIND, VALUE)`` of a zone, ``("zone_sources", PATH)``.
        A permanent ``has`` needs the zone's object path: until it is known,
        the path is asked instead.  Keys of other shapes are left to
        ``read``."""
        reads = []
        for key in keys:
            d = self._describe(key)
            if d is not None:
                reads.append((key,) + d)
            elif key[0] == "has" and key[1] == "permanent" and not key[2].startswith(POLICY_PREFIX):
                reads.append((("zone_path", key[2]),) + (PATH_CONFIG_ZONE_BY_NAME + ((key[2],),)))
        self.prefetch(reads)

    def _describe(self, key: Tuple[Any, ...]) -> Any:
        """(object path, interface, method, arguments) of a read keyed
        ``key``, or None (see :meth:`ahead`)."""
        what = key[0]
        main, config, props = BUS_NAME, BUS_NAME + ".config", "org.freedesktop.DBus.Properties"
        if key == ("backend",):
            return CONFIG_PATH, props, "Get", (config, "FirewallBackend")
        if key == ("lockdown",):
            return PATH, main + ".policies", "queryLockdown", ()
        if key == ("active",):
            return PATH, main + ".zone", "getActiveZones", ()
        if key == ("default", "runtime"):
            return PATH, main, "getDefaultZone", ()
        if key == ("direct", "runtime"):
            return PATH, main + ".direct", "getAllRules", ()
        if key == ("direct", "permanent"):
            return CONFIG_PATH, config + ".direct", "getAllRules", ()
        if key == ("zone_paths",):
            return CONFIG_PATH, config, "listZones", ()
        if what == "zone_path":
            return PATH_CONFIG_ZONE_BY_NAME + ((key[1],),)
        if what == "target" and key[1] == "runtime":
            return PATH, main + ".zone", "getZoneSettings2", (key[2],)
        if what == "zone_of" and key[1] == "permanent":
            return CONFIG_PATH, config, "getZoneOfInterface", (key[2],)
        if what == "zone_sources":
            return key[1], config + ".zone", "getSources", ()
        if what == "has" and not key[2].startswith(POLICY_PREFIX) and key[3] in HAS_METHODS:
            method = HAS_METHODS[key[3]]
            if key[1] == "runtime":
                return PATH, main + ".zone", method, (key[2], key[4])
            path = self._memo.get(("zone_path", key[2]))
            if path is not None:
                return str(path), config + ".zone", method, (key[4],)
        return None

    def _await(self, sent: Tuple[List[Any], Any], doing: str, ok_codes: Tuple[str, ...]) -> Any:
        """The answer of a prefetched read, as ``call`` gives it (a proxy
        call's value: nothing, the one value, or a tuple of them)."""
        from dbus.lowlevel import ErrorMessage

        box, call = sent
        try:
            call.block()
        except self._dbus.exceptions.DBusException as e:
            return self._failed(e, doing, ok_codes)
        reply = box[0] if box else None
        if reply is None or isinstance(reply, ErrorMessage):
            args = reply.get_args_list() if reply is not None else []
            name = reply.get_error_name() if reply is not None else "org.freedesktop.DBus.Error.NoReply"
            err = self._dbus.exceptions.DBusException(*(args[:1] or []), name=name)
            return self._failed(err, doing, ok_codes)
        got = reply.get_args_list()
        if not got:
            return None
        return got[0] if len(got) == 1 else tuple(got)

    def forget(self) -> None:
        """Drop every remembered answer, and the reads still in flight:
        firewalld may have changed."""
        self._memo.clear()
        self._pending.clear()
        self.epoch += 1

    # -- facts --------------------------------------------------------------
    def backend(self) -> str:
        return str(self.read(("backend",), "reading FirewallBackend", self.config_props.Get,
                             BUS_NAME + ".config", "FirewallBackend"))

    def default_zone(self, layer: str) -> str:
        if layer == "runtime":
            return str(self.read(("default", layer), "reading the default zone", self.main.getDefaultZone))
        return str(self.read(("default", layer), "reading the permanent default zone", self.config_props.Get,
                             BUS_NAME + ".config", "DefaultZone"))

    def zone_of(self, layer: str, iface: str) -> str:
        """The zone ``iface`` is bound to ("" where none): at runtime from
        the active zones (an interface is in one runtime zone at most, as
        getZoneOfInterface finds it)."""
        if layer == "runtime":
            return next((z for z, d in self.active_zones().items() if iface in d.get("interfaces", [])), "")
        return str(self.read(("zone_of", layer, iface), f"finding the zone of {iface}",
                             self.config.getZoneOfInterface, iface))

    def zones(self, layer: str) -> List[str]:
        if layer == "runtime":
            return [str(z) for z in self.read(("zones", layer), "listing zones", self.zone.getZones)]
        return [str(z) for z in self.read(("zones", layer), "listing zones", self.config.getZoneNames)]

    def knows_service(self, layer: str, name: str) -> bool:
        if layer == "runtime":
            names = self.read(("services", layer), "listing services", self.main.listServices)
        else:
            names = self.read(("services", layer), "listing services", self.config.getServiceNames)
        return name in [str(n) for n in names]

    def zone_services(self, layer: str, zone: str) -> List[str]:
        """The services a zone allows (names) in ``layer``."""
        key = ("zone_services", layer, zone)
        if layer == "runtime":
            return [str(s) for s in self.read(key, f"reading zone {zone}", self.zone.getServices, zone)]
        return [str(s) for s in self.read(key, f"reading zone {zone}", self.zone_cfg(zone).getServices)]

    def service_settings(self, layer: str, name: str) -> Dict[str, Any]:
        """A service's definition (``protocols``, ``destination`` {ipv4, ipv6},
        ``ports``, ...): what an allowance by it really covers."""
        doing = f"reading service {name}"
        key = ("service", layer, name)
        if layer == "runtime":
            return dict(self.read(key, doing, self.main.getServiceSettings2, name))
        path = self.read(("service_path", name), f"finding permanent service {name}",
                         self.config.getServiceByName, name)
        obj = self.bus.get_object(self.owner, path, introspect=False)
        svc = self._dbus.Interface(obj, BUS_NAME + ".config.service")
        return dict(self.read(key, doing, svc.getSettings2))

    def active_zones(self) -> Dict[str, Dict[str, List[str]]]:
        """The runtime's zones that have interfaces or sources bound, with
        them (``interfaces``, ``sources``): one call for every zone."""
        got = self.read(("active",), "listing active zones", self.zone.getActiveZones)
        return {str(z): {str(k): [str(v) for v in vs] for k, vs in d.items()} for z, d in got.items()}

    def source_bindings(self, layer: str) -> Dict[str, List[str]]:
        """Zone -> the sources bound to it (see ``sources``), in one layer;
        zones without sources left out.  The runtime's from the active
        zones; the permanent configuration's by each zone's object path
        (its name asked only where sources are bound)."""
        if layer == "runtime":
            out = {z: sorted(d.get("sources", [])) for z, d in self.active_zones().items()}
            return {z: v for z, v in out.items() if v}
        found: Dict[str, List[str]] = {}
        paths = [str(p) for p in self.read(("zone_paths",), "listing zones", self.config.listZones)]
        # All sent before the first answer is awaited (see prefetch).
        self.ahead([("zone_sources", p) for p in paths])
        answers = [self.read(("zone_sources", p), "reading the permanent zones' sources",
                             self._sources_at(p)) for p in paths]
        for path, got in zip(paths, answers):
            srcs = sorted(str(s) for s in got)
            if srcs:
                obj = self.bus.get_object(self.owner, path, introspect=False)
                props = self._dbus.Interface(obj, "org.freedesktop.DBus.Properties")
                name = str(self.call("reading a permanent zone's name", props.Get,
                                     BUS_NAME + ".config.zone", "name"))
                found[name] = srcs
        return found

    def _sources_at(self, path: str) -> Callable[..., Any]:
        """getSources of the permanent zone at an object path, its proxy
        made only if it is called (a prefetched read is not)."""
        def get(timeout: float) -> Any:
            zone = self._dbus.Interface(self.bus.get_object(self.owner, path, introspect=False),
                                        BUS_NAME + ".config.zone")
            return zone.getSources(timeout=timeout)
        return get

    def has_owner(self, name: str) -> bool:
        """Whether a program owns ``name`` on the bus firewalld is on (a
        bus that does not answer: False)."""
        try:
            return bool(self.bus.name_has_owner(name))
        except self._dbus.exceptions.DBusException:
            return False

    def lockdown(self) -> bool:
        return bool(self.read(("lockdown",), "querying lockdown", self.policies.queryLockdown))

    def zone_cfg(self, zone: str) -> Any:
        if zone not in self._zone_cfg:
            path = self.read(("zone_path", zone), f"finding permanent zone {zone}",
                             self.config.getZoneByName, zone)
            obj = self.bus.get_object(self.owner, path, introspect=False)
            self._zone_cfg[zone] = self._dbus.Interface(obj, BUS_NAME + ".config.zone")
        return self._zone_cfg[zone]

    def target(self, layer: str, zone: str) -> str:
        key = ("target", layer, zone)
        if layer == "runtime":
            settings = self.read(key, f"reading zone {zone}", self.zone.getZoneSettings2, zone)
            return str(settings.get("target", "default"))
        return str(self.read(key, f"reading zone {zone}", self.zone_cfg(zone).getTarget))

    def interfaces(self, layer: str, zone: str) -> List[str]:
        """The interfaces bound to a zone (the runtime's: of a zone that
        exists, see ``target``, from the active zones)."""
        if layer == "runtime":
            return list(self.active_zones().get(zone, {}).get("interfaces", []))
        return [str(i) for i in self.read(("interfaces", layer, zone), f"reading zone {zone}",
                                          self.zone_cfg(zone).getInterfaces)]

    def sources(self, layer: str, zone: str) -> List[str]:
        """The source addresses, prefixes and ``ipset:NAME`` bound to a zone
        (the runtime's: of a zone that exists, from the active zones)."""
        if layer == "runtime":
            return list(self.active_zones().get(zone, {}).get("sources", []))
        return [str(i) for i in self.read(("sources", layer, zone), f"reading zone {zone}",
                                          self.zone_cfg(zone).getSources)]

    def _policy_cfg(self, policy: str) -> Any:
        if policy not in self._policy_paths:
            self._policy_paths[policy] = self.call(f"finding permanent policy {policy}",
                                                   self.config.getPolicyByName, policy)
        obj = self.bus.get_object(self.owner, self._policy_paths[policy], introspect=False)
        return self._dbus.Interface(obj, BUS_NAME + ".config.policy")

    def policy_settings(self, layer: str, policy: str) -> Dict[str, Any]:
        doing = f"reading policy {policy}"
        key = ("policy", layer, policy)
        if layer == "runtime":
            return dict(self.read(key, doing, self.policy.getPolicySettings, policy))
        return dict(self.read(key, doing, self._policy_cfg(policy).getSettings))

    def policy_rich_rules(self, layer: str, policy: str) -> List[str]:
        return [str(r) for r in self.policy_settings(layer, policy).get("rich_rules", [])]

    def policy_change(self, layer: str, add: bool, policy: str, value: str) -> None:
        """Policies have no add/remove call per rich rule: read, edit, write back."""
        self.forget()
        try:
            self._policy_change(layer, add, policy, value)
        finally:
            self.forget()

    def _policy_change(self, layer: str, add: bool, policy: str, value: str) -> None:
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
        key = ("has", layer, zone, kind, value)
        if layer == "runtime":
            fn = {"service": self.zone.queryService, "rich": self.zone.queryRichRule,
                  "protocol": self.zone.queryProtocol}[kind]
            return bool(self.read(key, doing, fn, zone, value, ok_codes=unknown))
        z = self.zone_cfg(zone)
        fn = {"service": z.queryService, "rich": z.queryRichRule, "protocol": z.queryProtocol}[kind]
        return bool(self.read(key, doing, fn, value, ok_codes=unknown))

    def rich_rules(self, layer: str, zone: str) -> List[str]:
        key = ("rich_rules", layer, zone)
        if layer == "runtime":
            return [str(r) for r in self.read(key, f"reading zone {zone}", self.zone.getRichRules, zone)]
        return [str(r) for r in self.read(key, f"reading zone {zone}", self.zone_cfg(zone).getRichRules)]

    def change(self, layer: str, add: bool, zone: str, kind: str, value: str) -> None:
        self.forget()
        try:
            self._change(layer, add, zone, kind, value)
        finally:
            self.forget()

    def _change(self, layer: str, add: bool, zone: str, kind: str, value: str) -> None:
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
        for ipv, table, chain, prio, args in self.read(("direct", layer), "listing direct rules",
                                                       api.getAllRules):
            out.append((str(ipv), str(table), str(chain), int(prio), [str(a) for a in args]))
        return out

    def direct_change(self, layer: str, add: bool, chain: str, prio: int, args: Sequence[str],
                      ipv: str = "ipv4") -> None:
        api = self.direct if layer == "runtime" else self.config_direct
        fn = api.addRule if add else api.removeRule
        ok = ("ALREADY_ENABLED",) if add else ("NOT_ENABLED",)
        self.forget()
        try:
            self.call(f"{'adding' if add else 'removing'} a direct rule in {chain}", fn,
                      ipv, "filter", chain, prio, self._dbus.Array(list(args), signature="s"), ok_codes=ok)
        finally:
            self.forget()
