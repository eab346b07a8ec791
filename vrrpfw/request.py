"""What a run opens, checks or closes: the rules, and why those rules.

Two sources.  The options (``--iface``, ``--group``, ``--family``,
``--peer``, ``--src``, ``--ah``, ``--strict``) go through
:func:`vrrpfw.model.make_specs`.  A keepalived configuration
(``--keepalived-conf``) is read by :mod:`vrrpfw.keepalived_conf`, and each
``vrrp_instance`` becomes the rules keepalived needs, with one derivation
line per instance so the admin sees exactly why each rule is there.

Unicast rules need this host's address (keepalived's ``unicast_src_ip``,
else the interface's primary address of that family), so building a
request reads interface addresses: it must run inside the namespace the
run acts in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from . import ifaddr, keepalived_conf
from .errors import InputError
from .keepalived_conf import KaConfig
from .model import Family, VrrpRule, VrrpSpec, make_specs, rules_for


@dataclass
class Request:
    rules: List[VrrpRule]
    derivation: List[str] = field(default_factory=list)  # instance -> rules, for the admin
    notes: List[str] = field(default_factory=list)  # what the configuration reader ignored
    netns: Optional[str] = None  # the configuration's net_namespace


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
        if not spec.peers or spec.family is not Family.IPV4:
            continue
        for iface in spec.interfaces:
            edges = dict(ifaddr.broadcasts(iface))
            for peer in spec.peers:
                if peer in edges:
                    raise InputError(f"{what} {peer} is the broadcast address of {edges[peer]} on {iface}, "
                                     "not a node's address: keepalived cannot send adverts to it")


def from_options(interfaces: Sequence[str], groups: Sequence[str] = (), family: Optional[str] = None,
                 peers: Sequence[str] = (), src: Optional[str] = None, ah: bool = False,
                 strict: bool = False) -> Request:
    rules: List[VrrpRule] = []
    specs = make_specs(interfaces, groups, family, peers, src, ah, strict, local_address)
    refuse_broadcast_peers(specs)
    for spec in specs:
        _add(rules, rules_for(spec))
    return Request(rules)


def read_conf(path: str) -> KaConfig:
    """Parse (and so validate) a keepalived configuration: pure, no
    namespace needed, so a bad file is refused before anything else."""
    return keepalived_conf.parse(path)


def from_conf(conf: KaConfig, interfaces: Optional[Sequence[str]] = None, family: Optional[str] = None,
              strict: bool = False) -> Request:
    """The rules of every vrrp_instance (of ``interfaces`` only, where given;
    of ``family`` only, where given).  ``--group``, ``--peer``, ``--src`` and
    ``--ah`` come from the configuration and are refused beside it (by the
    caller)."""
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
        inst_name = keepalived_conf.shown(inst.where, inst.name)  # hidden where the invoker cannot read it
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
