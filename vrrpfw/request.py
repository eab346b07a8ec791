"""What a run opens, checks or closes: the rules, and why those rules.

Two sources.  The options (``--iface``, ``--group``, ``--family``,
``--peer``, ``--src``, ``--ah``, ``--strict``) go through
:func:`vrrpfw.model.make_specs`.  A keepalived configuration
(``--keepalived-conf``) is read by :mod:`vrrpfw.keepalived.conf`, and each
``vrrp_instance`` becomes the rules keepalived needs, with one derivation
line per instance so the admin sees exactly why each rule is there.

Unicast rules need this host's address (keepalived's ``unicast_src_ip``,
else the interface's primary address of that family), so building a
request reads interface addresses: it must run inside the namespace the
run acts in.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

from vrrpfw.record import field, record

from . import environment, inputs
from .backends import registry
from .backends.base import Options
from .errors import InputError
from .host import enter_netns as namespace
from .host import ifaddr
from .model import (
    Family,
    VrrpRule,
    VrrpSpec,
    make_specs,
    rules_for,
    validate_family,
    validate_group,
    validate_interface,
    validate_peers,
    validate_sources,
)
from .persist.lock import check_dir as check_lock_dir
from .results import Result

if TYPE_CHECKING:  # the parser itself is imported where a configuration is read
    from .keepalived.conf import KaConfig


@record
class Request:
    rules: List[VrrpRule]
    derivation: List[str] = field(default_factory=list)  # instance -> rules, for the admin
    notes: List[str] = field(default_factory=list)  # what the configuration reader ignored
    netns: Optional[str] = None  # the configuration's net_namespace
    sources: Tuple[str, ...] = ()  # --from: the multicast peers' addresses

    def judged_sources(self) -> Tuple[str, ...]:
        """The peers' addresses the path is judged for (Options.peers): the
        unicast peers, or the multicast sources named with --from."""
        return tuple(dict.fromkeys([r.group for r in self.rules if r.unicast] + list(self.sources)))


def local_address(interface: str, family: Family) -> Optional[str]:
    """The address keepalived sends unicast adverts from by default."""
    found = ifaddr.primary_of(interface, family.value)
    return found.address if found is not None else None


def _add(rules: List[VrrpRule], more: Sequence[VrrpRule]) -> None:
    for r in more:
        if r not in rules:
            rules.append(r)


def refuse_broadcast_peers(specs: Sequence[VrrpSpec], what: str = "--peer") -> None:
    """A unicast peer that is a broadcast address of the interface's subnet
    (its last address, /30 and wider, or a ``brd`` set on an address): no
    node holds it, and keepalived cannot send there (it configures it, then
    logs "Cant send advert to 192.0.2.255 (Permission denied)": a raw socket
    without SO_BROADCAST; measured with keepalived 2.2.7).  Read from the
    interface inside the run's namespace, before any change; an interface
    that does not exist yet has no subnet to judge by.  The subnet's first
    (network) address is left alone, as keepalived leaves it: Linux routes
    it as unicast and lets a host hold it, and keepalived sends to it."""
    for spec in specs:
        if not (spec.peers or spec.sources) or spec.family is not Family.IPV4:
            continue
        for iface in spec.interfaces:
            edges = dict(ifaddr.broadcasts(iface))
            for peer in spec.peers:
                if peer in edges:
                    raise InputError(f"{what} {peer} is the broadcast address of {edges[peer]} on {iface}, "
                                     "not a node's address: keepalived cannot send adverts to it")
            for source in spec.sources:  # --from: no node sends from a broadcast address
                if source in edges:
                    raise InputError(f"--from {source} is the broadcast address of {edges[source]} on "
                                     f"{iface}, not a node's address: no peer sends adverts from it")


def from_options(interfaces: Sequence[str], groups: Sequence[str] = (), family: Optional[str] = None,
                 peers: Sequence[str] = (), src: Optional[str] = None, ah: bool = False,
                 strict: bool = False, sources: Sequence[str] = ()) -> Request:
    rules: List[VrrpRule] = []
    specs = make_specs(interfaces, groups, family, peers, src, ah, strict, local_address, sources)
    refuse_broadcast_peers(specs)
    for spec in specs:
        _add(rules, rules_for(spec))
    froms = tuple(a for spec in specs for a in spec.sources)
    return Request(rules, notes=global_ipv6_sources(froms), sources=froms)


def global_ipv6_sources(sources: Sequence[str]) -> List[str]:
    """A note for each ``--from`` IPv6 address that is not link-local:
    keepalived sends IPv6 multicast adverts from the link-local address
    (RFC 5798 5.1.2.1), so the adverts judged may not be the ones the peer
    sends (unless its mcast_src_ip says otherwise)."""
    return [f"--from {a}: keepalived sends IPv6 multicast adverts from the peer's link-local address "
            "(fe80::/10) unless its mcast_src_ip names another; the verdict is for adverts from "
            f"{a} only" for a in sources if ":" in a and not ipaddress.ip_address(a).is_link_local]


def read_conf(path: str) -> KaConfig:
    """Parse (and so validate) a keepalived configuration: pure, no
    namespace needed, so a bad file is refused before anything else.
    (The parser is imported here: a check without --keepalived-conf never
    needs it.)"""
    from .keepalived import conf as keepalived_conf

    return keepalived_conf.parse(path)


def from_conf(conf: KaConfig, interfaces: Optional[Sequence[str]] = None, family: Optional[str] = None,
              strict: bool = False) -> Request:
    """The rules of every vrrp_instance (of ``interfaces`` only, where given;
    of ``family`` only, where given).  ``--group``, ``--peer``, ``--src`` and
    ``--ah`` come from the configuration and are refused beside it (by the
    caller)."""
    from .keepalived.reader import shown

    wanted = list(interfaces) if interfaces else None
    known = {i.interface for i in conf.instances}
    for name in wanted or []:
        if name not in known:
            raise InputError(f"--iface {name}: no vrrp_instance of {conf.path} runs on it "
                             f"(its instances use: {', '.join(sorted(known)) or 'none'})")
    rules: List[VrrpRule] = []
    lines: List[str] = []
    for inst in conf.instances:
        if wanted is not None and inst.interface not in wanted:
            continue
        if family not in (None, "both") and inst.family != family:
            continue
        inst_name = shown(inst.where, inst.name)  # hidden where the invoker cannot read it
        try:
            specs = make_specs([inst.interface], [inst.group] if inst.group else [], inst.family,
                               inst.peers, inst.unicast_src, inst.auth_type == "AH", strict, local_address)
            refuse_broadcast_peers(specs, "unicast_peer")
        except InputError as e:
            raise InputError(f"{inst.where}: vrrp_instance {inst_name}: {e}") from None
        mine = [r for s in specs for r in rules_for(s)]
        _add(rules, mine)
        lines.append(f"{inst.where}: vrrp_instance {inst_name} (VRID {inst.vrid}, VRRPv{inst.version}, "
                     f"{inst.family}) -> " + "; ".join(f"{r.direction.value} {r.interface} {r.selector}"
                                                       for r in mine))
        lines.extend(f"    {why}" for why in inst.derivation)
    if not rules:
        what = f" on {', '.join(wanted)}" if wanted else ""
        fam = f" of family {family}" if family not in (None, "both") else ""
        raise InputError(f"{conf.path}: no vrrp_instance{what}{fam} to open")
    return Request(rules, lines, list(conf.notes), conf.net_namespace)


@record
class Ask:
    """What the caller asked for, type-checked and validated before any
    namespace is entered or firewall read (a bad keepalived.conf is
    refused first, with file:line)."""

    interfaces: Optional[List[str]]
    group: Optional[str]
    family: Optional[str]
    peers: Tuple[str, ...]
    src: Optional[str]
    ah: bool
    strict: bool
    conf: Optional[KaConfig]
    netns: Optional[str]
    sources: Tuple[str, ...] = ()  # --from

    @property
    def wants_rules(self) -> bool:
        """check: rules to judge (else: discover what vrrpfw has)."""
        return self.interfaces is not None or self.conf is not None

    @classmethod
    def checked(cls, interfaces: Any, group: Any, family: Any, peers: Any, src: Any, ah: Any,
                strict: Any, keepalived_conf: Any, netns: Any, need_rules: bool,
                closing: bool = False, sources: Any = ()) -> Ask:
        environment.check()  # before anything is read: a bad variable is exit 2
        names = _some(inputs.optional_names(interfaces, "interfaces"))
        if names is not None:
            names = [validate_interface(n) for n in names]
        grp = inputs.optional_text(group, "group")
        fam = validate_family(inputs.optional_text(family, "family"))
        ps = validate_peers(inputs.addresses(peers, "peers"))
        froms = validate_sources(inputs.addresses(sources, "sources"))
        source = inputs.optional_text(src, "src")
        conf_path = inputs.optional_path(keepalived_conf, "keepalived_conf")
        ns = inputs.optional_text(netns, "netns")
        if ns is not None:
            ns = namespace.validate_name(ns)
        flags = (inputs.flag(ah, "ah"), inputs.flag(strict, "strict"))
        if grp is not None:
            if closing:
                grp = close_group(grp)
            else:
                grp = validate_group(grp)
            if fam in ("ipv4", "ipv6") and Family.of(grp).value != fam and (closing or names is None):
                # With interfaces, open/check refuse it when they build the rules; close and a
                # check of every rule build none, and would look for rules that cannot exist.
                raise InputError(f"--group {grp} is not an {fam.replace('ip', 'IP')} address, "
                                 f"but --family is {fam}")
        conf = None
        if conf_path is not None:
            given = [n for n, on in (("--group", grp is not None and not closing), ("--peer", bool(ps)),
                                     ("--src", source is not None), ("--ah", flags[0])) if on]
            if froms:
                raise InputError("--from goes with --iface, not with --keepalived-conf: name the "
                                 "interface and its peers' addresses")
            if given:
                raise InputError(f"{' and '.join(given)} come from the keepalived configuration; "
                                 f"leave {'them' if len(given) > 1 else 'it'} out with --keepalived-conf")
            conf = read_conf(conf_path)
            if ns is not None and conf.net_namespace not in (None, ns):
                raise InputError(f"--netns {ns} contradicts {conf.path}'s net_namespace "
                                 f"{conf.net_namespace}")
            ns = ns or conf.net_namespace
        elif need_rules and names is None:
            raise InputError("no interface given (use --iface NAME, or --keepalived-conf PATH)")
        if closing and ps:
            raise InputError("close takes no --peer: it removes vrrpfw's rules of the interfaces "
                             "(narrow with --group PEER_ADDRESS)")
        if closing and froms:
            raise InputError("close takes no --from: it removes what open added (narrow with --iface)")
        if not closing and conf is None:
            if names is None and froms:
                raise InputError("--from names the peers of an interface; give --iface too")
            if names is None and (ps or source is not None or any(flags)):
                raise InputError("--peer, --src, --ah and --strict describe the rules to check; "
                                 "give --iface too")
            if names is not None:
                # The options' shape, now (this host's addresses are read
                # later, inside the namespace): contradictions are exit 2
                # before any I/O.  "::"/0.0.0.0 stand for the address.
                make_specs(names, [grp] if grp else [], fam, ps, source, flags[0], flags[1],
                           lambda _i, f: "0.0.0.0" if f.value == "ipv4" else "::", froms)
        return cls(names, grp, fam, ps, source, flags[0], flags[1], conf, ns, froms)

    def request(self) -> Request:
        if self.conf is not None:
            return from_conf(self.conf, self.interfaces, self.family, self.strict)
        assert self.interfaces is not None
        return from_options(self.interfaces, [self.group] if self.group else [], self.family,
                            self.peers, self.src, self.ah, self.strict, self.sources)


def close_group(group: str) -> str:
    """close --group: a multicast group, or a unicast peer's address."""
    try:
        return validate_group(group)
    except InputError:
        return validate_peers([group])[0]


def told(result: Result, req: Request) -> Result:
    """The result, with why these rules (the configuration's derivation)."""
    result.derivation = list(req.derivation)
    result.warnings.extend(n for n in req.notes if n not in result.warnings)
    return result


MODES = ("auto", "direct", "zone")


def _some(names: Optional[List[str]]) -> Optional[List[str]]:
    """None means every interface vrrpfw manages; an empty list is refused,
    so a script whose computed list came out empty does not close all."""
    if names is not None and not names:
        raise InputError("the list of interfaces is empty; pass None (no --iface) for every interface "
                         "vrrpfw manages")
    return names


def run_options(backend: Any, persist: Any, persist_file: Any, dry_run: Any, lock_timeout: Any, root: Any,
             zone: Any, mode: Any, force: Any, state_file: Any, command: str) -> Options:
    """Every option checked for type and range before anything is read."""
    if inputs.text(backend, "backend") not in registry.NAMES:
        raise InputError(f"unknown backend {backend!r}; choose one of: {', '.join(registry.NAMES)}")
    persist = inputs.flag(persist, "persist")
    dry_run = inputs.flag(dry_run, "dry_run")
    if isinstance(persist_file, os.PathLike):
        persist_file = os.fspath(persist_file)
    if isinstance(state_file, os.PathLike):
        state_file = os.fspath(state_file)
    # The file primitives (persist.files) are imported only where a path is named.
    if persist_file is not None:
        if not persist:
            raise InputError("--no-persist and --persist-file contradict each other; give one")
        from .persist.files import check_path

        check_path(persist_file)
    if state_file is not None:
        from .persist.files import check_path

        check_path(state_file, "--state-file")
    editing = command != "check"
    options = Options(persist, persist_file, dry_run, inputs.seconds(lock_timeout),
                      inputs.directory(root, "root"),
                      _zone(inputs.optional_text(zone, "zone")), _mode(inputs.text(mode, "mode")),
                      inputs.flag(force, "force"), state_file, sweep=command == "close",
                      validate_saved=editing, locked=editing and not dry_run, pin=command == "open")
    if options.locked:
        check_lock_dir()  # an unsafe lock directory is refused before any firewall is read
    return options


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    return mode


def _zone(zone: Optional[str]) -> Optional[str]:
    if zone is None:
        return None
    if not zone or len(zone) > 64 or not all((c.isascii() and c.isalnum()) or c in "-_" for c in zone):
        raise InputError(f"zone name {zone!r} is not a valid firewalld zone name")
    return zone
