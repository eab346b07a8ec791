"""What a replica copies from this host: the :class:`Snapshot` (legacy
tables, the nf_tables ruleset, ipsets, the sysctls that gate multicast
delivery, the interface's name, addresses and stack), read by
:func:`capture` (``capture_*`` only read) or built from saved files
(:func:`snapshot_from_files`), and what a replica of it cannot reproduce
(:func:`static_limits`), because an answer with unstated blind spots is
worse than none.

Split from :mod:`.replica`, which only writes inside the namespaces it
creates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

from vrrpfw.record import field, record, replace

from ..errors import EnvironmentProblem, InputError
from ..host.run import run
from ..model import validate_interface
from .addresses import STANDIN_ADDRS6
from .netns import (
    first_line,
)
from .replica_ifaces import PathFinding, judge_stack, named_interfaces, read_link, read_stack

# Per-interface sysctls that decide whether a multicast advert is delivered:
# rp_filter (strict mode drops a source not routed back via the interface),
# src_valid_mark (rp_filter honouring fwmarks), accept_local (a source that
# is one of our own addresses).  Global: how many groups a socket may join.
CONF_SYSCTLS = ("rp_filter", "src_valid_mark", "accept_local")
GLOBAL_SYSCTLS = ("net/ipv4/igmp_max_memberships",)
# Tables iptables-nft creates (IPv4); anything else in nf_tables is native nft.
IPTNFT_TABLES = ("filter", "raw", "mangle", "nat", "security")


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


@record
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
    # named()'s last answer and what it was computed from (reading 50,000 rules
    # takes tens of ms, and capture and each replica ask); replace() drops it.
    _named: Optional[Tuple[Tuple[object, ...], List[str]]] = field(
        default=None, init=False, repr=False, compare=False)

    def named(self) -> List[str]:
        """The interfaces the rulesets name, besides those the replica makes anyway and ``lo``."""
        made = [self.iface] + ([self.bridge_port] if self.bridge_port else [])
        texts = [self.legacy_save, self.iptnft_save, self.legacy6_save, self.iptnft6_save]
        key = (*texts, self.nft_ruleset, self.ipset, *made)
        if self._named is None or self._named[0] != key:
            self._named = (key, named_interfaces(texts, self.nft_ruleset, self.ipset, made))
        return list(self._named[1])


@record
class NftTable:
    family: str
    name: str
    text: str


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
    """The rulesets of the current namespace (interface fields left empty).
    The save commands are independent reads: they run side by side (the
    iptables-nft ones after ``nft list ruleset``, which says whether they
    have tables to save); a failure is reported in the order they are listed."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("vrrpfw prove needs root (network namespaces, reading netfilter)")
    _need("ip")
    snap = Snapshot(iface="")
    legacy = (_read_file("/proc/net/ip_tables_names") or "").split()
    legacy6 = (_read_file("/proc/net/ip6_tables_names") or "").split()
    with ThreadPoolExecutor(max_workers=4) as pool:
        legacy_f = pool.submit(_read, [_need("iptables-legacy-save")]) if legacy else None
        legacy6_f = pool.submit(_read, [_need("ip6tables-legacy-save")]) if legacy6 else None
        nft_f = pool.submit(_read, ["nft", "list", "ruleset"]) if shutil.which("nft") else None
        ipset_f = pool.submit(_read, ["ipset", "save"]) if shutil.which("ipset") else None
        if legacy_f is not None:
            snap.legacy_save = legacy_f.result()
        if legacy6_f is not None:
            snap.legacy6_save = legacy6_f.result()
        if nft_f is not None:
            text = nft_f.result()
            snap.nft_ruleset = text if text.strip() else None
        else:
            snap.limits.append("nft is not installed: nf_tables rules (if any) were not read")
        tables = split_tables(snap.nft_ruleset) if snap.nft_ruleset else []
        iptnft_f = iptnft6_f = None
        if any(t.family == "ip" and t.name in IPTNFT_TABLES for t in tables):
            if shutil.which("iptables-nft-save"):
                iptnft_f = pool.submit(_read, ["iptables-nft-save"])
        if any(t.family == "ip6" and t.name in IPTNFT_TABLES for t in tables):
            if shutil.which("ip6tables-nft-save"):
                iptnft6_f = pool.submit(_read, ["ip6tables-nft-save"])
        if iptnft_f is not None:
            snap.iptnft_save = compatible(iptnft_f.result()) or None
        if iptnft6_f is not None:
            snap.iptnft6_save = compatible(iptnft6_f.result()) or None
        if ipset_f is not None:
            text = ipset_f.result()
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
        facts = read_link(n, tools=False)  # bridge, master, port: /sys says
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
