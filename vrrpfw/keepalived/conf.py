"""Read keepalived's configuration and say what vrrpfw must open for it.

Pure logic: no firewall is touched.  :mod:`vrrpfw.keepalived.reader` reads
the files (lexer, includes, block tree, each checked against keepalived's own
parser, lib/parser.c); this module is the third step, checked against
keepalived/vrrp/vrrp_parser.c, vrrp.c's vrrp_complete_instance and
``keepalived -t -f FILE`` (2.2.7 here):

3. the **interpreter** walks ``global_defs`` and every ``vrrp_instance`` and
   skips everything else (``vrrp_script``, ``virtual_server``,
   ``vrrp_sync_group``, ``track_script``, ... with their blocks).

What keepalived decides, and this module mirrors (checked on 2.2.7):

* The instance's address family is set by the **first** of
  ``unicast_src_ip``/``mcast_src_ip``, a ``unicast_peer`` or a
  ``virtual_ipaddress`` address, or by ``native_ipv6``; a later
  ``virtual_ipaddress`` of the other family is ignored by keepalived
  ("address family must match VRRP instance") and noted here.
  ``virtual_ipaddress_excluded`` never sets nor checks the family.  With no
  such address the family is IPv4.
* ``version`` (the instance keyword; ``vrrp_version`` is the ``global_defs``
  one and unknown inside an instance): default 3 for IPv6, else
  ``global_defs vrrp_version``, else 2.  ``version 2`` written *before* the
  IPv6 addresses keeps VRRPv2 over IPv6 (keepalived accepts it unless
  ``vrrp_strict``); written after them it is ignored.
* VRRPv3 has no authentication: keepalived drops ``auth_type PASS`` (noted)
  and AH is refused here, as AH with IPv6 is.
* ``use_vmac [NAME]`` (default ``vrrp.VRID``): adverts go out of and arrive
  on the macvlan, unless ``vmac_xmit_base`` is set, which sends and receives
  them on the base ``interface``.  ``global_defs default_interface`` is for
  static addresses only: an instance without ``interface`` is refused by
  keepalived ("Unknown interface!") and here.
* An instance without a virtual address is dropped by keepalived when it is
  VRRPv3, IPv6 or strict ("at least one is required"); it is noted and left
  out here.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

from vrrpfw.record import record

from ..errors import InputError
from ..model import validate_interface
from .reader import Where, _fail, _Line, _Node, _q, _Reader, _reason, _show, _tree

_IP = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

DEFAULT_GROUP4 = "224.0.0.18"
DEFAULT_GROUP6 = "ff02::12"
DEFAULT_PRIORITY = 100
OWNER_PRIORITY = 255  # keepalived's default priority for `state MASTER`


@record(frozen=True)
class KaInstance:
    name: str
    where: Where
    interface: str
    base_interface: str
    vrid: int
    priority: int
    version: int
    family: str
    group: Optional[str]
    unicast_src: Optional[str]
    peers: Tuple[str, ...]
    auth_type: Optional[str]
    virtual_addresses: Tuple[str, ...]
    derivation: Tuple[str, ...]


@record(frozen=True)
class KaConfig:
    path: str
    files: Tuple[str, ...]
    instances: Tuple[KaInstance, ...]
    net_namespace: Optional[str]
    notes: Tuple[str, ...]


# ---------------------------------------------------------- interpreter

def _int(node: _Node, lo: int, hi: int) -> int:
    text = node.arg("a number")
    if not re.fullmatch(r"[0-9]+", text) or not lo <= int(text) <= hi:
        raise _fail(node.where, f"{node.key} {_q(node.where, text)} is not a number in {lo}..{hi}")
    return int(text)


def _addr(text: str, where: Where, what: str) -> _IP:
    try:
        return ipaddress.ip_address(text.split("/", 1)[0])
    except ValueError:
        raise _fail(where, f"{what} {_q(where, text)} is not an IP address") from None


def _fam(addr: _IP) -> str:
    return "ipv4" if addr.version == 4 else "ipv6"


def _unicast(text: str, where: Where, what: str) -> _IP:
    addr = _addr(text, where, what)
    if addr.is_multicast or addr.is_unspecified or str(addr) == "255.255.255.255":
        raise _fail(where, f"{what} {_q(where, text)} is not a unicast address")
    return addr


@record
class _Globals:
    group4: str = DEFAULT_GROUP4
    group6: str = DEFAULT_GROUP6
    group4_why: str = "keepalived's default"
    group6_why: str = "keepalived's default"
    version: int = 2
    version_why: str = "keepalived's default"
    strict: bool = False
    net_namespace: Optional[str] = None


def _read_globals(nodes: Sequence[_Node], g: _Globals, notes: List[str]) -> None:
    for n in nodes:
        if n.key in ("vrrp_mcast_group4", "vrrp_mcast_group6"):
            want = 4 if n.key.endswith("4") else 6
            text = n.arg("a multicast address")
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                raise _fail(n.where, f"{n.key} {_q(n.where, text)} is not an IP address") from None
            if addr.version != want or not addr.is_multicast:
                raise _fail(n.where, f"{n.key} {_q(n.where, text)} is not an IPv{want} multicast address")
            if want == 4:
                g.group4, g.group4_why = str(addr), f"{n.key} at {n.where}"
            else:
                g.group6, g.group6_why = str(addr), f"{n.key} at {n.where}"
        elif n.key == "vrrp_version":
            g.version = _int(n, 2, 3)
            g.version_why = f"global_defs vrrp_version at {n.where}"
        elif n.key == "vrrp_strict":
            g.strict = True
        elif n.key == "net_namespace":
            # Not a global_defs keyword: keepalived logs "Unknown keyword"
            # and runs where it was started, so its adverts meet that
            # namespace's firewall.
            notes.append(f"{n.where}: net_namespace inside global_defs is ignored, as keepalived ignores it "
                         "('Unknown keyword'; it is a top-level keyword)")


def _read_namespace(nodes: Sequence[_Node], g: _Globals, notes: List[str]) -> None:
    """keepalived's top-level ``net_namespace``: the first one counts, as in
    keepalived (a later one is "Duplicate net_namespace definition -
    ignoring", one without a name "name missing - ignoring")."""
    for n in nodes:
        if n.key != "net_namespace":
            continue
        if len(n.words) < 2:
            notes.append(f"{n.where}: net_namespace without a name is ignored, as keepalived ignores it")
        elif g.net_namespace is None:
            g.net_namespace = n.arg("a namespace name")
        else:
            notes.append(f"{n.where}: a second net_namespace is ignored, as keepalived ignores it "
                         "(the first one counts)")


def _instance(node: _Node, g: _Globals, notes: List[str]) -> Optional[KaInstance]:
    name = node.words[1] if len(node.words) > 1 else ""
    if not name:
        raise _fail(node.where, "vrrp_instance needs a name")
    why: List[str] = []
    base: Optional[Tuple[str, Where]] = None
    vrid: Optional[int] = None
    priority: Optional[Tuple[int, Where]] = None
    master = False
    version: Optional[Tuple[int, str]] = None
    family: Optional[Tuple[str, str]] = None  # (family, what decided it)
    src: Optional[Tuple[_IP, Where]] = None
    peers: List[Tuple[_IP, Where]] = []
    vips: List[str] = []
    has_vip = False
    vmac: Optional[Tuple[Optional[str], Where]] = None
    xmit_base = False
    auth: Optional[Tuple[str, Where]] = None
    auth_pass = False

    def set_family(fam: str, what: str) -> None:
        nonlocal family
        if family is None:
            family = (fam, what)

    for n in node.block or []:
        k = n.key
        if k == "interface":
            text = n.arg("an interface name")
            try:
                validate_interface(text)
            except InputError as e:
                raise _fail(n.where, _reason(n.where, e, "not a valid interface name")) from None
            base = (text, n.where)
        elif k == "virtual_router_id":
            vrid = _int(n, 1, 255)
        elif k == "priority":
            priority = (_int(n, 1, 255), n.where)
        elif k == "state":
            master = n.arg("MASTER or BACKUP") == "MASTER"
        elif k == "version":
            v = _int(n, 2, 3)
            if v == 2 and family is not None and family[0] == "ipv6":
                notes.append(f"{n.where}: version 2 ignored: written after the IPv6 address that made "
                             f"{_show(node.where, name)} IPv6 (keepalived ignores it and uses VRRPv3)")
            else:
                version = (v, f"version at {n.where}")
        elif k == "vrrp_version":
            notes.append(f"{n.where}: vrrp_version is not an instance keyword (keepalived ignores it; "
                         "the instance keyword is 'version')")
        elif k == "native_ipv6":
            if family is not None and family[0] == "ipv4":
                raise _fail(n.where, f"native_ipv6 contradicts the IPv4 {family[1]} "
                            "(keepalived: cannot specify native_ipv6 with IPv4 addresses)")
            set_family("ipv6", f"native_ipv6 at {n.where}")
        elif k in ("unicast_src_ip", "mcast_src_ip"):
            addr = _unicast(n.arg("an address"), n.where, k)
            set_family(_fam(addr), f"{k} {addr} at {n.where}")
            src = (addr, n.where)
        elif k == "unicast_peer":
            for p in n.block or []:
                addr = _unicast(p.key, p.where, "unicast_peer")
                set_family(_fam(addr), f"unicast_peer {addr} at {p.where}")
                peers.append((addr, p.where))
        elif k in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
            for a in n.block or []:
                addr = _addr(a.key, a.where, k)
                if k == "virtual_ipaddress":
                    set_family(_fam(addr), f"virtual_ipaddress {addr} at {a.where}")
                    assert family is not None
                    if _fam(addr) != family[0]:
                        notes.append(f"{a.where}: {addr} ignored: keepalived requires every "
                                     f"virtual_ipaddress to match the instance's family "
                                     f"({family[0]}, from {family[1]})")
                        continue
                    has_vip = True
                if a.key.split("/", 1)[0] not in vips:
                    vips.append(a.key.split("/", 1)[0])
        elif k == "use_vmac":
            vmac = (n.words[1] if len(n.words) > 1 else None, n.where)
        elif k == "vmac_xmit_base":
            xmit_base = True
        elif k == "authentication":
            for a in n.block or []:
                if a.key == "auth_type":
                    t = a.arg("PASS or AH")
                    if t not in ("PASS", "AH"):
                        raise _fail(a.where, f"auth_type {_q(a.where, t)} is neither PASS nor AH")
                    auth = (t, a.where)
                elif a.key == "auth_pass":
                    auth_pass = len(a.words) > 1

    if base is None:
        raise _fail(node.where, f"vrrp_instance {_show(node.where, name)} has no interface "
                    "(keepalived refuses it; "
                    "global_defs default_interface applies to static addresses only)")
    if vrid is None:
        raise _fail(node.where, f"vrrp_instance {_show(node.where, name)} has no virtual_router_id")

    fam, fam_why = family or ("ipv4", "no address decided it: keepalived's default")
    why.append(f"family {fam} ({fam_why})")

    if version is None:
        if fam == "ipv6":
            version = (3, "IPv6 and no earlier 'version 2'")
        else:
            version = (g.version, g.version_why)
    elif fam == "ipv6" and version[0] == 2 and g.strict:
        version = (3, "vrrp_strict forces VRRPv3 for IPv6")
    why.append(f"version {version[0]} ({version[1]})")

    auth_type: Optional[str] = None
    if auth is not None:
        if auth[0] == "AH" and version[0] == 3:
            raise _fail(auth[1], f"auth_type AH with VRRPv3 ({version[1]}): keepalived refuses "
                        "authentication with VRRPv3")
        if auth[0] == "AH" and fam == "ipv6":
            raise _fail(auth[1], "auth_type AH with IPv6: keepalived refuses AH with IPv6")
        if version[0] == 3:
            notes.append(f"{auth[1]}: auth_type PASS ignored: keepalived drops authentication with VRRPv3")
        elif not auth_pass:
            notes.append(f"{auth[1]}: auth_type ignored: no auth_pass (keepalived drops it)")
        else:
            auth_type = auth[0]

    if src is not None and peers and src[0].version != peers[0][0].version:
        raise _fail(src[1], f"unicast_src_ip {src[0]} is IPv{src[0].version} but unicast_peer "
                    f"{peers[0][0]} ({peers[0][1]}) is IPv{peers[0][0].version}")
    for addr, where in peers:
        if _fam(addr) != fam:
            raise _fail(where, f"unicast_peer {addr} is not {fam} like the instance ({fam_why}); "
                        "keepalived skips it")
    peer_texts = tuple(dict.fromkeys(str(a) for a, _ in peers))
    # Contradictions above are errors even in an instance keepalived then drops.
    if not has_vip and (version[0] == 3 or fam == "ipv6" or g.strict):
        notes.append(f"{node.where}: vrrp_instance {_show(node.where, name)} ignored: "
                     "no virtual_ipaddress, which keepalived "
                     "requires for VRRPv3, IPv6 and vrrp_strict (it drops the instance)")
        return None

    iface = base[0]
    if vmac is None:
        why.append(f"interface {iface} (interface at {base[1]})")
    else:
        vname = vmac[0] or f"vrrp.{vrid}"
        try:
            validate_interface(vname)
        except InputError as e:
            raise _fail(vmac[1], f"use_vmac: {_reason(vmac[1], e, 'not a valid interface name')}") from None
        named = "as named" if vmac[0] else "keepalived's default name vrrp.VRID"
        if xmit_base:
            why.append(f"interface {iface} (use_vmac {vname} with vmac_xmit_base: adverts are sent and "
                       f"received on the base interface)")
        else:
            iface = vname
            why.append(f"interface {iface} (use_vmac {vname}, {named}: adverts go out of and arrive on the "
                       f"macvlan; vmac_xmit_base not set)")
    if xmit_base and vmac is None:
        notes.append(f"{node.where}: vmac_xmit_base without use_vmac has no effect")

    group: Optional[str] = None
    if peer_texts:
        why.append(f"unicast to {', '.join(peer_texts)} (unicast_peer): no multicast group")
    elif fam == "ipv4":
        group = g.group4
        why.append(f"group {group} ({g.group4_why})")
    else:
        group = g.group6
        why.append(f"group {group} ({g.group6_why})")
    if src is not None:
        why.append(f"source {src[0]} (set at {src[1]})")
    else:
        why.append("source: the interface's primary address (no unicast_src_ip / mcast_src_ip)")

    if priority is not None:
        prio = priority[0]
        why.append(f"priority {prio} (priority at {priority[1]})")
    else:
        prio = OWNER_PRIORITY if master else DEFAULT_PRIORITY
        why.append(f"priority {prio} (keepalived's default{' for state MASTER' if master else ''})")

    return KaInstance(
        name=name, where=node.where, interface=iface, base_interface=base[0], vrid=vrid,
        priority=prio, version=version[0], family=fam, group=group,
        unicast_src=str(src[0]) if src else None, peers=peer_texts, auth_type=auth_type,
        virtual_addresses=tuple(vips), derivation=tuple(why),
    )


def _refuse_vrid_clash(inst: KaInstance, earlier: Sequence[KaInstance]) -> None:
    """Two instances on one interface and family with one VRID: keepalived
    (2.2.7, ``keepalived -t``) refuses both multicast ("A and B both use
    VRID 51 with IPv4 on interface eth0") and unicast from one source
    address with a peer in common ("duplicate VRID conflict"), and accepts
    unicast beside multicast, disjoint peers and different unicast_src_ip
    (their adverts cannot be confused).  Where one instance names its
    unicast_src_ip and the other takes the interface's address, keepalived
    decides by that address, which a configuration alone does not give:
    accepted here."""
    for other in earlier:
        if (other.interface, other.family, other.vrid) != (inst.interface, inst.family, inst.vrid):
            continue
        if bool(other.peers) != bool(inst.peers):
            continue
        if inst.peers and (not set(inst.peers) & set(other.peers) or inst.unicast_src != other.unicast_src):
            continue
        fam = "IPv6" if inst.family == "ipv6" else "IPv4"
        shared = f" and peer {sorted(set(inst.peers) & set(other.peers))[0]}" if inst.peers else ""
        raise _fail(inst.where, f"vrrp_instance {_show(inst.where, inst.name)} and "
                                f"{_show(other.where, other.name)} (at {other.where}) both use "
                                f"VRID {inst.vrid} with {fam} on interface {inst.interface}{shared}; "
                                "keepalived refuses this")


def _interpret(path: str, reader: _Reader, lines: Sequence[_Line]) -> KaConfig:
    nodes = _tree(lines)
    g = _Globals()
    notes = reader.notes
    _read_namespace(nodes, g, notes)
    # global_defs applies to every instance wherever it stands in the file.
    for n in nodes:
        if n.key == "global_defs":
            _read_globals(n.block or [], g, notes)
    instances: List[KaInstance] = []
    seen: Dict[str, Where] = {}
    for n in nodes:
        if n.key != "vrrp_instance":
            continue
        inst = _instance(n, g, notes)
        if inst is None:
            continue
        if inst.name in seen:
            raise _fail(n.where, f"vrrp_instance {_show(n.where, inst.name)} is already defined "
                        f"at {seen[inst.name]}")
        seen[inst.name] = n.where
        _refuse_vrid_clash(inst, instances)
        instances.append(inst)
    if not instances:
        first = reader.files[0] if reader.files else path
        raise InputError(f"{first}:1: no usable vrrp_instance in the configuration")
    return KaConfig(path=path, files=tuple(reader.files), instances=tuple(instances),
                    net_namespace=g.net_namespace, notes=tuple(notes))


def parse(path: str) -> KaConfig:
    """Read keepalived's configuration at ``path`` (and its includes).

    Raises InputError, one line beginning ``file:line: ``, for anything that
    keepalived would refuse or that contradicts itself; a missing or
    unreadable ``path`` is ``cannot read PATH: reason``."""
    reader = _Reader()
    lines = reader.read_file(path, None)
    return _interpret(path, reader, lines)


def parse_text(text: str, path: str = "<text>") -> KaConfig:
    """Parse configuration text as if read from ``path``.

    Relative includes are resolved as keepalived resolves them for a file of
    that name: against ``path``'s directory when ``path`` contains a ``/``,
    else against the current working directory."""
    reader = _Reader()
    lines = reader.read_text(text, path)
    return _interpret(path, reader, lines)
