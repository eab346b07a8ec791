"""A replica of this host's packet filter, in throw-away namespaces.

Why a replica: what decides whether an advert gets through is the kernel,
not our reading of the rules.  We copy what the kernel decides with (the
legacy tables, the nf_tables ruleset, ipsets, the sysctls that gate
multicast delivery, the interface's name and addresses) into a fresh
namespace joined to a "peer" namespace by a veth, and let real packets
find out.  ``capture`` only reads; ``replica`` only writes inside the
namespaces it creates.  What cannot be copied is listed in ``limits``,
because an answer with unstated blind spots is worse than none.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ..errors import EnvironmentProblem, InputError
from ..host.run import run
from ..model import validate_interface
from .netns import (
    CommandFailed,
    Namespace,
    add_addresses,
    first_line,
    namespace,
    veth,
    wait_operstate_up,
)
from .replica_ifaces import PathFinding, judge_stack, named_interfaces, read_link, read_stack
from .traffic import GROUP, Counts, Shape, both_ways

# Per-interface sysctls that decide whether a multicast advert is delivered:
# rp_filter (strict mode drops a source not routed back via the interface),
# src_valid_mark (rp_filter honouring fwmarks), accept_local (a source that
# is one of our own addresses).  Global: how many groups a socket may join.
CONF_SYSCTLS = ("rp_filter", "src_valid_mark", "accept_local")
GLOBAL_SYSCTLS = ("net/ipv4/igmp_max_memberships",)
# Tables iptables-nft creates (IPv4); anything else in nf_tables is native nft.
IPTNFT_TABLES = ("filter", "raw", "mangle", "nat", "security")
# An address for an interface that has none (TEST-NET-1, RFC 5737).
STANDIN_ADDR = "192.0.2.1/24"
# IPv6 stand-ins (link-local for multicast, as keepalived sends from it; ULA for unicast).
STANDIN_ADDRS6 = ("fe80::1/64", "fd00::1/64")
PEER_IF = "vrrppeer0"
# The peer-namespace ends of the idle veths made for interfaces the ruleset names.
NAMED_PEER_PREFIX = "vpx"
BRIDGE_SYSCTLS = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables")

COMMON_LIMITS = (
    "conntrack state is not replayed: the replica's connection table starts empty",
    "keepalived itself is not run: adverts are raw packets with keepalived's headers (family, "
    "multicast group or unicast addresses, protocol 112 or AH, TOS/traffic class 0xc0, DF clear, "
    "TTL 255 or for IPv6 unicast the kernel's hop limit, VRRPv2 over IPv4 and v3 over IPv6 with "
    "one virtual address), not keepalived's process or VIPs",
    "the peer side is a bare namespace: the real peers' own firewalls are not replayed",
    "routes are not replayed beyond the interface's own subnets (rp_filter decides with routes)",
    "neighbours are pinned in the replica (permanent ARP/NDP entries): a firewall that blocks "
    "neighbour discovery, which unicast adverts need, is not judged",
    "base chains of equal priority on the same hook run in load order, which may differ from the host's",
)


@dataclass
class Snapshot:
    """What the kernel decides delivery with, as text (read-only capture)."""

    iface: str
    addrs: List[str] = field(default_factory=list)  # IPv4 CIDRs on iface
    legacy_save: Optional[str] = None  # iptables-legacy-save; None: no legacy table
    nft_ruleset: Optional[str] = None  # nft list ruleset; None: empty or no nft
    iptnft_save: Optional[str] = None  # iptables-nft-save, where iptables-nft tables exist
    addrs6: List[str] = field(default_factory=list)  # IPv6 CIDRs on iface, link-local included
    legacy6_save: Optional[str] = None  # ip6tables-legacy-save; None: no legacy IPv6 table
    iptnft6_save: Optional[str] = None  # ip6tables-nft-save, where its ip6 tables exist
    ipset: Optional[str] = None  # ipset save, where sets exist
    sysctls: Dict[str, str] = field(default_factory=dict)  # /proc/sys path -> value
    limits: List[str] = field(default_factory=list)
    # Interfaces the rulesets name, as the host has them: name -> (kind "bridge" or
    # "veth", the bridge it is a port of).  Absent names are made as veths.
    links: Dict[str, Tuple[str, Optional[str]]] = field(default_factory=dict)
    # Why a replay of ``iface`` would not be the host's (empty: it would be).
    cannot_tell: List[str] = field(default_factory=list)
    # ``iface`` is a bridge the replica rebuilds: its port towards the peers, and
    # br_netfilter's switches (bridge-nf-call-iptables, ...) as the host has them.
    bridge_port: Optional[str] = None
    bridge_sysctls: Dict[str, str] = field(default_factory=dict)
    bridge_opts: Dict[str, int] = field(default_factory=dict)  # ip link's bridge options to copy

    def named(self) -> List[str]:
        """The interfaces the rulesets name, besides those the replica makes anyway and ``lo``."""
        made = [self.iface] + ([self.bridge_port] if self.bridge_port else [])
        return named_interfaces([self.legacy_save, self.iptnft_save, self.legacy6_save, self.iptnft6_save],
                                self.nft_ruleset, self.ipset, made)


@dataclass
class NftTable:
    family: str
    name: str
    text: str


@dataclass
class PeerPlan:
    host_cidrs: List[str]
    peer_cidrs: List[str]
    sources: List[str]  # the addresses adverts come from, in order
    limits: List[str] = field(default_factory=list)
    # IPv6: the same, plus the limits that matter only when IPv6 is measured.
    host_cidrs6: List[str] = field(default_factory=list)
    peer_cidrs6: List[str] = field(default_factory=list)
    sources6: List[str] = field(default_factory=list)
    limits6: List[str] = field(default_factory=list)
    given6: bool = False  # IPv6 peers were given (else the peer is made up)

    def local(self, family: str) -> str:
        """The host's unicast address of ``family`` (keepalived's
        unicast_src_ip default): IPv4's first; IPv6's first global one, else
        its link-local one."""
        if family == "ipv4":
            return self.host_cidrs[0].split("/")[0]
        addrs = [c.split("/")[0] for c in self.host_cidrs6]
        return next((a for a in addrs if not a.lower().startswith("fe80")), addrs[0])


@dataclass
class PathResult:
    """One direction: how many of ``count`` adverts arrived where it counts."""

    arrived: int
    count: int
    counts: Counts

    @property
    def ok(self) -> bool:
        return self.arrived >= self.count

    def text(self) -> str:
        return f"{self.arrived}/{self.count}"

    def to_dict(self) -> Dict[str, object]:
        return {"arrived": self.arrived, "count": self.count, "ok": self.ok, **self.counts.to_dict()}


@dataclass
class Delivery:
    """Inbound (per peer source: delivered to the host's raw socket) and
    outbound (reached the peer's wire)."""

    inbound: Dict[str, PathResult]
    outbound: PathResult

    @property
    def ok(self) -> bool:
        return self.outbound.ok and all(p.ok for p in self.inbound.values())

    def to_dict(self) -> Dict[str, object]:
        return {"inbound": {k: v.to_dict() for k, v in self.inbound.items()},
                "outbound": self.outbound.to_dict(), "ok": self.ok}


# ---------------------------------------------------------------- pure parts

def split_tables(ruleset: str) -> List[NftTable]:
    """``nft list ruleset`` text, one entry per top-level table (comments
    between tables dropped)."""
    tables: List[NftTable] = []
    current: List[str] = []
    head: Optional[List[str]] = None
    for line in ruleset.splitlines():
        if head is None:
            m = re.match(r"table\s+(\S+)\s+(\S+)\s*\{", line)
            if m:
                head = [m.group(1), m.group(2)]
                current = [line]
            continue
        current.append(line)
        if line.rstrip() == "}":
            tables.append(NftTable(head[0], head[1], "\n".join(current) + "\n"))
            head = None
    return tables


def save_tables(save: Optional[str]) -> Set[str]:
    """The ``*table`` sections of an iptables-save text."""
    return {line[1:].strip() for line in (save or "").splitlines() if line.startswith("*")}


def compatible(save: str) -> str:
    """An iptables-nft-save text without the tables it calls incompatible:
    native nft tables that merely share a name with iptables-nft's (``table
    ip filter`` written with nft) are listed with empty chains, which,
    restored, would replace their real rules."""
    bad = {m.group(1) for m in re.finditer(r"(?m)^# Table `([^']+)' .*incompatible", save)}
    out: List[str] = []
    skip = False
    for line in save.splitlines():
        if line.startswith("*"):
            skip = line[1:].strip() in bad
        if not skip and not line.startswith("#"):
            out.append(line)
        if line.strip() == "COMMIT":
            skip = False
    return "\n".join(out) + "\n" if any(x.startswith("*") for x in out) else ""


def without_owner_flag(text: str) -> str:
    """A table flagged ``owner`` belongs to the process that loaded it and
    vanishes when ``nft -f`` exits; the replica must keep it."""
    def fix(m: re.Match[str]) -> str:
        flags = [f.strip() for f in m.group(2).split(",") if f.strip() != "owner"]
        return f"{m.group(1)}flags {','.join(flags)}" if flags else ""
    return re.sub(r"(?m)^(\t)flags ([a-z, ]+)$", fix, text)


def without_flowtables(text: str) -> str:
    """A table without its flowtables and the ``flow add``/``flow offload``
    statements that fill them.  A flowtable only speeds up *forwarded*
    flows; an advert is sent or received locally and never meets one, so
    the table means the same to it without them (for kernels built without
    flowtables, where the table would not load at all)."""
    out: List[str] = []
    skipping = 0
    for line in text.splitlines():
        if skipping:
            skipping += line.count("{") - line.count("}")
            continue
        if re.match(r"\s*flowtable\s+\S+\s*\{", line):
            skipping = line.count("{") - line.count("}")
            continue
        out.append(re.sub(r"\s*\bflow\s+(?:add|offload)\s+@\S+", "", line))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def plan_peers(iface: str, addrs: Sequence[str], peers: Sequence[str],
               addrs6: Sequence[str] = ()) -> PeerPlan:
    """Addresses for both ends: the host's own, and per peer one on the same
    subnet (given ones, else host address + 1 or the next free one), per
    family: IPv6 peers are planned against ``addrs6``."""
    v6 = [p for p in peers if ":" in p]
    plan = _plan4(iface, addrs, [p for p in peers if ":" not in p])
    plan.host_cidrs6, plan.peer_cidrs6, plan.sources6, plan.limits6 = _plan6(iface, addrs6, v6)
    plan.given6 = bool(v6)
    if v6:  # IPv6 was asked for: what the replica made up for it is a limit of the answer
        plan.limits.extend(plan.limits6)
    return plan


def _plan4(iface: str, addrs: Sequence[str], peers: Sequence[str]) -> PeerPlan:
    limits: List[str] = []
    host_cidrs = list(addrs)
    if not host_cidrs:
        host_cidrs = [STANDIN_ADDR]
        limits.append(f"{iface} has no IPv4 address: the replica gives it {STANDIN_ADDR}")
    ifaces = [ipaddress.IPv4Interface(c) for c in host_cidrs]
    used = {i.ip for i in ifaces}
    peer_cidrs: List[str] = []
    sources: List[str] = []
    for p in peers:
        _place_peer(p, ipaddress.IPv4Address, iface, ifaces, used, peer_cidrs, sources, limits,
                    "subnets; without the host's routes rp_filter may judge it differently here")
    if not peers:
        first = ifaces[0]
        ip = _free_neighbour(first, used)
        prefix = first.network.prefixlen if ip in first.network and first.network.prefixlen < 32 else 32
        peer_cidrs.append(f"{ip}/{prefix}")
        sources.append(str(ip))
    return PeerPlan(host_cidrs, peer_cidrs, sources, limits)


def _place_peer(text: str, parse: Any, iface: str, ifaces: Sequence[Any], used: Set[Any],
                peer_cidrs: List[str], sources: List[str], limits: List[str], outside: str) -> None:
    """One given peer of either family: refused if it is not a unicast
    address or is the host's own; placed in the host's subnet holding it,
    else a host route (and a limit saying so)."""
    try:
        ip = parse(text.strip())
    except ValueError:
        raise InputError(f"peer {text!r} is not an IPv4 or IPv6 address") from None
    if ip in used:
        raise InputError(f"peer {ip} is an address of {iface} itself")
    if ip.is_multicast or ip.is_loopback or ip.is_unspecified:
        raise InputError(f"peer {ip} is not a unicast address")
    net = next((i.network for i in ifaces if ip in i.network and i.network.prefixlen < ip.max_prefixlen),
               None)
    if net is None:
        limits.append(f"peer {ip} is outside {iface}'s {outside}")
    peer_cidrs.append(f"{ip}/{net.prefixlen if net is not None else ip.max_prefixlen}")
    sources.append(str(ip))
    used.add(ip)


def _plan6(iface: str, addrs6: Sequence[str], peers: Sequence[str]
           ) -> Tuple[List[str], List[str], List[str], List[str]]:
    """(host CIDRs, peer CIDRs, sources, limits) for IPv6.  Each end gets a
    link-local address (multicast adverts leave from it); a peer without a
    given address is the host's link-local + 1 (and global + 1 where the
    host has a global address), so unicast has somewhere to go."""
    limits: List[str] = []
    host = [ipaddress.IPv6Interface(c) for c in addrs6]
    if not any(i.ip.is_link_local for i in host):
        host.insert(0, ipaddress.IPv6Interface(STANDIN_ADDRS6[0]))
        limits.append(f"{iface} has no IPv6 link-local address: the replica gives it {STANDIN_ADDRS6[0]}")
    if not any(not i.ip.is_link_local for i in host):
        host.append(ipaddress.IPv6Interface(STANDIN_ADDRS6[1]))
        limits.append(f"{iface} has no global IPv6 address: the replica gives it {STANDIN_ADDRS6[1]} "
                      "for unicast")
    used = {i.ip for i in host}
    peer_cidrs: List[str] = []
    sources: List[str] = []
    for p in peers:
        _place_peer(p, ipaddress.IPv6Address, iface, host, used, peer_cidrs, sources, limits,
                    "IPv6 prefixes; without the host's routes the replica reaches it by a host route")
    # The peer always has a link-local address (IPv6 needs one) and, where the
    # host has global prefixes, an address in the first one.
    own = [i for i in host if i.ip.is_link_local][:1] + [i for i in host if not i.ip.is_link_local][:1]
    for i in own:
        if any(ipaddress.IPv6Address(c.split("/")[0]) in i.network for c in peer_cidrs):
            continue
        ip = i.ip + 1
        while ip in used:
            ip += 1
        used.add(ip)
        peer_cidrs.append(f"{ip}/{i.network.prefixlen}")
        if not peers and i.ip.is_link_local:
            sources.append(str(ip))  # keepalived multicasts from its link-local address
    return [str(i) for i in host], peer_cidrs, sources, limits


def _free_neighbour(iface: ipaddress.IPv4Interface, used: Set[ipaddress.IPv4Address]
                    ) -> ipaddress.IPv4Address:
    net = iface.network
    if net.prefixlen >= 31:
        for ip in net:
            if ip not in used:
                return ip
        return iface.ip + 1
    candidate = iface.ip + 1
    if candidate in net and candidate != net.broadcast_address and candidate not in used:
        return candidate
    for ip in net.hosts():
        if ip not in used:
            return ip
    raise InputError(f"no free address for a peer in {net}")


def static_limits(snap: Snapshot) -> List[str]:
    """What a replica of this snapshot cannot reproduce, known before building it."""
    limits = list(COMMON_LIMITS)
    nft = snap.nft_ruleset or ""
    if re.search(r"\b(flags [a-z,]*dynamic|timeout|expires|meter)\b", nft):
        limits.append("dynamic set elements are loaded as listed at capture time (timeouts restart; "
                      "elements added later by the packet path are not there)")
    if re.search(r"(?m)^table (inet|ip) firewalld\b", nft):
        limits.append("firewalld's nf_tables table is replayed, but firewalld itself does not run "
                      "in the replica")
    return limits + snap.limits


# ---------------------------------------------------------------- capture

def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise EnvironmentProblem(f"vrrpfw prove needs {tool}, which is not installed")
    return path


def _read(argv: Sequence[str]) -> str:
    ran = run(argv, timeout=None).raised()
    if ran.code != 0:
        raise EnvironmentProblem(f"{argv[0]} failed ({ran.code}): {first_line(ran.err)}")
    return ran.out


def _read_file(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def capture_rules() -> Snapshot:
    """The rulesets of the current namespace (interface fields left empty)."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("vrrpfw prove needs root (network namespaces, reading netfilter)")
    _need("ip")
    snap = Snapshot(iface="")
    legacy = (_read_file("/proc/net/ip_tables_names") or "").split()
    if legacy:
        snap.legacy_save = _read([_need("iptables-legacy-save")])
    if (_read_file("/proc/net/ip6_tables_names") or "").split():
        snap.legacy6_save = _read([_need("ip6tables-legacy-save")])
    if shutil.which("nft"):
        text = _read(["nft", "list", "ruleset"])
        snap.nft_ruleset = text if text.strip() else None
    else:
        snap.limits.append("nft is not installed: nf_tables rules (if any) were not read")
    if snap.nft_ruleset and any(t.family == "ip" and t.name in IPTNFT_TABLES
                                for t in split_tables(snap.nft_ruleset)):
        if shutil.which("iptables-nft-save"):
            snap.iptnft_save = compatible(_read(["iptables-nft-save"])) or None
    if snap.nft_ruleset and any(t.family == "ip6" and t.name in IPTNFT_TABLES
                                for t in split_tables(snap.nft_ruleset)):
        if shutil.which("ip6tables-nft-save"):
            snap.iptnft6_save = compatible(_read(["ip6tables-nft-save"])) or None
    if shutil.which("ipset"):
        text = _read(["ipset", "save"])
        snap.ipset = text if text.strip() else None
    return snap


def capture_iface(snap: Snapshot, iface: str) -> Snapshot:
    """``snap`` for one interface: its addresses, sysctls and per-interface limits."""
    validate_interface(iface)
    ran = run(["ip", "-j", "addr", "show", "dev", iface], timeout=None).raised()
    if ran.code != 0:
        raise InputError(f"interface {iface} does not exist here ({first_line(ran.err)})")
    infos = [a for link in json.loads(ran.out or "[]") for a in link.get("addr_info", [])]
    addrs = [f"{a['local']}/{a['prefixlen']}" for a in infos if a.get("family") == "inet"]
    addrs6 = [f"{a['local']}/{a['prefixlen']}" for a in infos if a.get("family") == "inet6"]
    sysctls: Dict[str, str] = {}
    for scope in ("all", "default", iface):
        for name in CONF_SYSCTLS:
            key = f"net/ipv4/conf/{scope}/{name}"
            value = _read_file("/proc/sys/" + key)
            if value is not None:
                sysctls[key] = value
    for key in GLOBAL_SYSCTLS:
        value = _read_file("/proc/sys/" + key)
        if value is not None:
            sysctls[key] = value
    found, bridge = _iface_path(iface, snap.nft_ruleset)
    out = replace(snap, iface=iface, addrs=addrs, addrs6=addrs6, sysctls=sysctls,
                  limits=snap.limits + found.limits, cannot_tell=found.cannot_tell,
                  bridge_port=found.bridge_port, bridge_sysctls=bridge if found.bridge_port else {},
                  bridge_opts=found.bridge_opts)
    out.links = _host_links(out.named())
    return out


def _iface_path(iface: str, nft: Optional[str]) -> Tuple[PathFinding, Dict[str, str]]:
    """What on ``iface``'s host path (masters, lower devices, bridges and
    bridge filtering, tc, XDP) a veth replay would not meet (cannot tell,
    limits, a bridge to rebuild), and br_netfilter's switches here."""
    bridge = {}
    for k in BRIDGE_SYSCTLS:
        value = _read_file(f"/proc/sys/net/bridge/{k}")
        if value is not None:
            bridge[k] = value
    # legacy ebtables: a loaded ebtable_* module is a table every bridged frame meets
    ebtables = sorted(m[len("ebtable_"):] for m in _listdir("/sys/module") if m.startswith("ebtable_"))
    found = judge_stack(iface, read_stack(iface), nft, bridge, ebtables)
    if not found.cannot_tell:
        found.limits.append("tc/XDP/eBPF programs are not replayed (no tc filter or XDP program found on "
                            f"{iface}'s path; cgroup and socket eBPF programs are not checked)")
    if not any("bridge" in x for x in found.cannot_tell + found.limits):
        found.limits.append("bridge filtering (br_netfilter, bridge tables) is not replayed "
                            f"({iface} is no bridge and no bridge port)")
    return found, bridge


def _listdir(path: str) -> List[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _host_links(names: Sequence[str]) -> Dict[str, Tuple[str, Optional[str]]]:
    """How the host has the named interfaces: bridge or not, and the bridge
    each is a port of (only where that bridge is named too)."""
    out: Dict[str, Tuple[str, Optional[str]]] = {}
    for n in names:
        facts = read_link(n)
        if facts is not None:
            out[n] = ("bridge" if facts.bridge else "veth", facts.master if facts.port else None)
    return out


def capture(iface: str) -> Snapshot:
    """Read (never change) what decides VRRP delivery on ``iface`` here."""
    return capture_iface(capture_rules(), iface)


def snapshot_from_files(legacy: Optional[str] = None, iptnft: Optional[str] = None,
                        nft: Optional[str] = None, iface: str = "eth1",
                        addrs: Sequence[str] = ("192.0.2.1/24",), ipset: Optional[str] = None,
                        sysctls: Optional[Dict[str, str]] = None, legacy6: Optional[str] = None,
                        iptnft6: Optional[str] = None,
                        addrs6: Sequence[str] = STANDIN_ADDRS6) -> Snapshot:
    """A snapshot from saved texts (paths), e.g. the corpus of real rulesets
    (``legacy6``/``iptnft6``: ip6tables-save texts)."""
    def text(path: Optional[str]) -> Optional[str]:
        if path is None:
            return None
        with open(path) as f:
            return f.read()
    return Snapshot(iface=validate_interface(iface), addrs=list(addrs), legacy_save=text(legacy),
                    nft_ruleset=text(nft), iptnft_save=text(iptnft), ipset=text(ipset),
                    sysctls=dict(sysctls or {}), addrs6=list(addrs6), legacy6_save=text(legacy6),
                    iptnft6_save=text(iptnft6))


# ---------------------------------------------------------------- the replica

@dataclass
class Replica:
    host: Namespace
    peer: Namespace
    iface: str
    peer_if: str
    sources: List[str]
    limits: List[str]
    plan: Optional[PeerPlan] = None
    local: Optional[str] = None  # unicast: the host's address (keepalived's unicast_src_ip)

    def measure(self, count: int = 20, group: str = GROUP, seconds: float = 2.0,
                shape: Optional[Shape] = None) -> Delivery:
        """Adverts both ways.  Without ``shape``: IPv4 multicast to ``group``
        from each source.  With it: that family (``group`` of the other
        family is replaced by the shape's default group), multicast or
        unicast between the host's own address and each peer, protocol and
        TTL as the shape says."""
        shape = shape or Shape()
        if shape.family == "ipv6" and ":" not in group:
            group = shape.group
        srcs, in_dst, out_dst = self._ends(shape)
        if shape.unicast:
            return self._measure_unicast(count, seconds, shape, srcs, in_dst, out_dst)
        both = both_ways(self.host, self.iface, self.peer, self.peer_if, count, group, seconds,
                         srcs, shape.proto, shape.ttl, in_dst, out_dst, version=shape.version)
        inbound = {s: PathResult(c.delivered, count, c) for s, c in both.inbound.items()}
        return Delivery(inbound, PathResult(both.outbound.wire, count, both.outbound))

    def _measure_unicast(self, count: int, seconds: float, shape: Shape, srcs: Sequence[str],
                         in_dst: Optional[str], out_dst: Optional[str]) -> Delivery:
        """Unicast adverts one way after the other, each from a conntrack
        table without the other's entry.  Why: conntrack tracks protocol
        112/51 by address pair, so the host's adverts to a peer make that
        peer's adverts *replies* (``established``), and the outcome would
        depend on who sent first.  Inbound is measured first, as for a host
        that has not sent yet; the generic conntrack timeout (set to 1 s in
        the replica) then drops that entry before outbound is measured."""
        assert in_dst is not None and out_dst is not None
        timeout = "net/netfilter/nf_conntrack_generic_timeout"
        self.host.run(["sh", "-c", f"[ ! -e /proc/sys/{timeout} ] || echo 1 > /proc/sys/{timeout}"])
        inbound = {s: both_ways(self.host, self.iface, self.peer, self.peer_if, count, "", seconds, [s],
                                shape.proto, shape.ttl, in_dst, None, outbound=False,
                                version=shape.version).inbound[s]
                   for s in srcs}
        time.sleep(1.2 if inbound else 0)
        out = both_ways(self.host, self.iface, self.peer, self.peer_if, count, "", seconds, [],
                        shape.proto, shape.ttl, None, out_dst, inbound=False,
                        version=shape.version).outbound
        return Delivery({s: PathResult(c.delivered, count, c) for s, c in inbound.items()},
                        PathResult(out.wire, count, out))

    def _ends(self, shape: Shape) -> Tuple[List[str], Optional[str], Optional[str]]:
        """(sources, inbound destination, outbound destination) for ``shape``:
        destinations None for multicast (the group).  Unicast goes between
        the host's own address and each peer; a peer made up for IPv6 sends
        from its address in the host address's prefix."""
        plan = self.plan
        if plan is None or (shape.family == "ipv4" and not shape.unicast):
            return self.sources, None, None
        v6 = shape.family == "ipv6"
        srcs = list(plan.sources6 if v6 else plan.sources)
        if not shape.unicast:
            return srcs, None, None
        local = self.local if self.local and (":" in self.local) == v6 else plan.local(shape.family)
        if v6 and not plan.given6:
            srcs = [neighbour_in(plan.peer_cidrs6, local)]
        return srcs, local, srcs[0]


def neighbour_in(cidrs: Sequence[str], address: str) -> str:
    """The address of ``cidrs`` on the same prefix as ``address`` (else the first)."""
    ip = ipaddress.ip_address(address)
    for c in cidrs:
        if ip in ipaddress.ip_interface(c).network:
            return c.split("/")[0]
    return cidrs[0].split("/")[0]


def _load(ns: Namespace, what: str, argv: Sequence[str], text: str) -> None:
    try:
        ns.run(argv, stdin=text, timeout=300)
    except CommandFailed as e:
        raise EnvironmentProblem(f"replica: {what} failed: {first_line(e.stderr or e.stdout)}") from None


def _load_nft(ns: Namespace, snap: Snapshot) -> List[str]:
    """Native tables through ``nft -f``; iptables-nft's own tables through
    iptables-nft-restore where the snapshot has their save text, because
    ``nft list ruleset`` prints their xt matches in a form ``nft -f`` cannot
    always read back and drops their comments (vrrpfw's mark).  Returns
    limits for tables that could not be reproduced."""
    limits: List[str] = []
    tables = split_tables(snap.nft_ruleset or "")
    via_save = save_tables(snap.iptnft_save)
    via_save6 = save_tables(snap.iptnft6_save)
    native = [t for t in tables if not ((t.family == "ip" and t.name in via_save)
                                        or (t.family == "ip6" and t.name in via_save6))]
    if native:
        text = without_owner_flag("".join(t.text for t in native))
        try:
            ns.run(["nft", "-f", "-"], stdin=text, timeout=300)
        except CommandFailed:
            limits.extend(_load_tables_one_by_one(ns, snap.iface, native))
    if via_save and snap.iptnft_save:
        _load(ns, "iptables-nft-restore", ["iptables-nft-restore"], snap.iptnft_save)
    if via_save6 and snap.iptnft6_save:
        _load(ns, "ip6tables-nft-restore", ["ip6tables-nft-restore"], snap.iptnft6_save)
    return limits


def _load_tables_one_by_one(ns: Namespace, iface: str, tables: Sequence[NftTable]) -> List[str]:
    limits: List[str] = []
    for t in tables:
        try:
            ns.run(["nft", "-f", "-"], stdin=without_owner_flag(t.text), timeout=300)
        except CommandFailed as e:
            err = first_line(e.stderr)
            if "flowtable" in t.text and _load_without_flowtables(ns, t):
                limits.append(f"table {t.family} {t.name} is replayed without its flowtables ({err}); "
                              "they offload forwarded flows only, which adverts are not")
                continue
            relevant = t.family in ("ip", "inet") or f'"{iface}"' in t.text
            if relevant:
                raise EnvironmentProblem(
                    f"replica: nft -f failed for table {t.family} {t.name}: {err}") from None
            limits.append(f"table {t.family} {t.name} could not be reproduced ({err}); "
                          "it does not see IPv4 adverts on this interface"
                          + (" (IPv6 adverts through it are not replayed)" if t.family == "ip6" else ""))
    return limits


def _load_without_flowtables(ns: Namespace, t: NftTable) -> bool:
    try:
        ns.run(["nft", "-f", "-"], stdin=without_flowtables(without_owner_flag(t.text)), timeout=300)
    except CommandFailed:
        return False
    return True


def _ipv6_ready(ns: Namespace, ifname: str) -> None:
    """Before the link comes up: no duplicate address detection (an address
    stays tentative, unusable, for a second or more) and no automatic
    link-local address, so each end has exactly the addresses planned."""
    ns.run(["sysctl", "-q", "-w", f"net/ipv6/conf/{ifname}/accept_dad=0"])
    ns.ip("link", "set", "dev", ifname, "addrgenmode", "none")


def _mac(ns: Namespace, ifname: str) -> str:
    return str(json.loads(ns.ip("-j", "link", "show", "dev", ifname).stdout)[0]["address"])


def _pin_neighbours(ns: Namespace, ifname: str, cidrs: Sequence[str], mac: str) -> None:
    """Permanent ARP/NDP entries: unicast adverts then leave whatever the
    firewall does to neighbour discovery (which the replica does not judge)."""
    ns.ip_batch([f"neigh replace {c.split('/')[0]} lladdr {mac} dev {ifname} nud permanent"
                 for c in cidrs])


def _bridge(host: Namespace, peer: Namespace, snap: Snapshot) -> None:
    """The tested interface as the host has it: a bridge, whose port
    towards the peers (the host's name) is a veth to the peer namespace,
    with br_netfilter's switches set in the replica's namespace only (they
    are per namespace; nothing is loaded, and the machine's own namespace
    is untouched)."""
    assert snap.bridge_port is not None
    veth(host, snap.bridge_port, peer, PEER_IF)
    try:
        opts = [w for k, v in sorted(snap.bridge_opts.items()) for w in (k, str(v))]
        host.ip("link", "add", "name", snap.iface, "type", "bridge", *opts)
        _ipv6_ready(host, snap.bridge_port)
        host.ip("link", "set", "dev", snap.bridge_port, "master", snap.iface)
        host.ip("link", "set", "dev", snap.bridge_port, "up")
        if snap.bridge_sysctls:
            host.run(["sysctl", "-q", "-w", *[f"net.bridge.{k}={v}" for k, v in snap.bridge_sysctls.items()]])
    except CommandFailed as e:
        raise EnvironmentProblem(f"replica: rebuilding bridge {snap.iface} failed: {first_line(e.stderr)}"
                                 ) from None


_BATCH_SAFE = re.compile(r"^[A-Za-z0-9_.@-]+$")


def named_links_commands(snap: Snapshot, peer_ns: str, existing: Sequence[str] = ()) -> List[List[str]]:
    """``ip link`` argument lists that make, in the replica's host namespace,
    every interface the rulesets name: a bridge where the host has a bridge,
    else a veth whose other end (``vpxN``) sits idle in the peer namespace;
    then the bridge ports the host has among them.  None is brought up: no
    advert ever crosses them; they exist so that the ruleset loads (nft
    resolves ``iif``/``oif`` and hook devices when loading) and matches as
    on the host.  Names the new namespace already has (``sit0``, ``tunl0``
    where their modules are loaded: every namespace gets them) are kept."""
    names = [n for n in snap.named() if n not in existing]
    cmds: List[List[str]] = []
    for i, n in enumerate(names):
        kind = snap.links.get(n, ("veth", None))[0]
        if kind == "bridge":
            cmds.append(["link", "add", "name", n, "type", "bridge"])
        else:
            cmds.append(["link", "add", "name", n, "type", "veth", "peer", "name",
                         f"{NAMED_PEER_PREFIX}{i}", "netns", peer_ns])
    for n in names:
        master = snap.links.get(n, ("veth", None))[1]
        if (master in names and snap.links.get(master, ("veth", None))[0] == "bridge") or (
                master is not None and master == snap.iface and snap.bridge_port):
            cmds.append(["link", "set", "dev", n, "master", str(master)])
    return cmds


def _make_named_links(host: Namespace, peer: Namespace, snap: Snapshot) -> List[str]:
    existing = [str(link.get("ifname")) for link in json.loads(host.ip("-j", "link", "show").stdout or "[]")]
    cmds = named_links_commands(snap, peer.name, existing)
    if not cmds:
        return []
    try:
        if all(_BATCH_SAFE.match(w) for c in cmds for w in c):
            host.ip_batch([" ".join(c) for c in cmds])
        else:
            for c in cmds:
                host.ip(*c)
    except CommandFailed as e:
        raise EnvironmentProblem(f"replica: making the interfaces the ruleset names failed: "
                                 f"{first_line(e.stderr)}") from None
    names = snap.named()
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return [f"interfaces the ruleset names are idle stand-ins in the replica (no advert crosses them): "
            f"{shown}"]


@contextlib.contextmanager
def replica(snap: Snapshot, peers: Sequence[str] = (), local: Optional[str] = None) -> Iterator[Replica]:
    """Build the replica (host + peer namespaces, veth, IPv4 and IPv6
    addresses, sysctls, rulesets: legacy, ip6tables legacy, nf_tables) and
    delete it on the way out, whatever happens.  ``local``: the host's
    unicast address where it is not the interface's first one."""
    plan = plan_peers(snap.iface, snap.addrs, peers, snap.addrs6)
    with namespace("vph") as host, namespace("vpp") as peer:
        if snap.bridge_port:
            _bridge(host, peer, snap)
        else:
            veth(host, snap.iface, peer, PEER_IF)
        named = _make_named_links(host, peer, snap)
        try:
            _ipv6_ready(host, snap.iface)
            _ipv6_ready(peer, PEER_IF)
        except CommandFailed as e:
            raise EnvironmentProblem(f"replica: preparing IPv6 failed: {first_line(e.stderr)}") from None
        add_addresses(host, snap.iface, [*plan.host_cidrs, *[f"{c} nodad" for c in plan.host_cidrs6]])
        add_addresses(peer, PEER_IF, [*plan.peer_cidrs, *[f"{c} nodad" for c in plan.peer_cidrs6]])
        _pin_neighbours(host, snap.iface, plan.peer_cidrs + plan.peer_cidrs6, _mac(peer, PEER_IF))
        _pin_neighbours(peer, PEER_IF, plan.host_cidrs + plan.host_cidrs6, _mac(host, snap.iface))
        if snap.sysctls:
            try:
                host.run(["sysctl", "-q", "-w", *[f"{k}={v}" for k, v in snap.sysctls.items()]])
            except CommandFailed as e:
                raise EnvironmentProblem(f"replica: setting sysctls failed: {first_line(e.stderr)}") from None
        host.ip("link", "set", snap.iface, "up")
        peer.ip("link", "set", PEER_IF, "up")
        limits = static_limits(snap) + plan.limits + named
        if snap.ipset:
            _load(host, "ipset restore", ["ipset", "restore", "-exist"], snap.ipset)
        if snap.legacy_save:
            _load(host, "iptables-legacy-restore", ["iptables-legacy-restore", "-w", "30"],
                  snap.legacy_save)
        if snap.legacy6_save:
            _load(host, "ip6tables-legacy-restore", ["ip6tables-legacy-restore", "-w", "30"],
                  snap.legacy6_save)
        if snap.nft_ruleset or snap.iptnft_save or snap.iptnft6_save:
            limits.extend(_load_nft(host, snap))
        wait_operstate_up(host, snap.iface)
        wait_operstate_up(peer, PEER_IF)
        yield Replica(host, peer, snap.iface, PEER_IF, plan.sources, limits, plan, local)
