"""``vrrpfw check --listen SECONDS``: the live proof while keepalived runs.

Why listen at all: the static verdict of ``check`` judges the rules; this
judges the packets.  For SECONDS it watches two places at once, in the
current network namespace:

* the wire: an AF_PACKET socket bound to each interface sees every frame
  before netfilter (incoming), and this host's own adverts on their way out
  (``PACKET_OUTGOING``: reported as "sent by this host", never judged);
* delivery: raw IP sockets for protocols 112 (VRRP) and 51 (AH), IPv4 and
  IPv6, joined to the VRRP groups on each interface, receive only what
  netfilter let in, as keepalived's own sockets would.

A wire advert and a delivered one are the same packet when interface,
source, destination, protocol and a hash of the bytes from the VRRP (or AH)
header on agree; identical adverts repeat every interval, so the match is
by multiset (delivered n of m).  The listener never sends a packet itself;
joining the groups makes the kernel send an IGMP/MLD membership report only
if no socket on the host (keepalived's included) had joined them already.

Sockets are opened raw first and read wire first at the end, so a packet at
either edge of the window can only look *more* delivered than wire (which
is capped), never dropped.

Exit codes (``ListenReport.exit_code``): 0 every advert heard was delivered;
1 something dropped here (fully or partly), TTL not 255, a wrong group, a
VRID conflict, or an interface heard nothing while another heard adverts;
5 (EXIT_NOTHING_HEARD) no advert at all on any interface.  Usage errors are
``InputError`` (2) and environment problems ``EnvironmentProblem`` (3).

Firewall counters are read best effort before and after (``nft -j list
ruleset``; legacy ``iptables -L -v -x -n`` of the tables that exist): rules
with a counter and a drop/reject verdict, and the legacy chain policies,
whose packet count grew during the listen.  A failure to read them never
fails the listen; the report says why instead.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import math
import os
import select
import shutil
import socket
import struct
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import EXIT_NOT_ALLOWED, EXIT_OK, EnvironmentProblem, InputError
from .model import validate_interface
from .vrrp_packet import (
    PROTO_AH,
    PROTO_VRRP,
    Advert,
    DecodeError,
    decode_frame,
    decode_ip,
    decode_vrrp,
    frame_payload,
)

EXIT_NOTHING_HEARD = 5  # no advert reached any listened interface during the listen

DELIVERED = "delivered"
DROPPED = "dropped here"
TTL_NOT_255 = "ttl not 255"
WRONG_GROUP = "wrong group"
VRID_CONFLICT = "vrid conflict"
NOTHING_HEARD = "nothing heard"

GROUP4 = "224.0.0.18"
GROUP6 = "ff02::12"
FAMILIES = ("ipv4", "ipv6")
PROTOS = (PROTO_VRRP, PROTO_AH)
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PACKET_OTHERHOST = 3
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
SO_ATTACH_FILTER = 26
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
RCVBUF = 1 << 20
# After the window closes: read what is already queued, wire sockets first.
DRAIN = 0.05

# Classic BPF for an Ethernet packet socket: IPv4 protocol or IPv6 next
# header 112 or 51, so a busy interface does not flood Python.  Frames
# queued before it is attached still pass the decoder's own check.
_BPF = [
    (0x28, 0, 0, 12),      # ldh [12]            EtherType
    (0x15, 0, 2, 0x0800),  # jeq IPv4 ? next : 4
    (0x30, 0, 0, 23),      # ldb [23]            IPv4 protocol
    (0x05, 0, 0, 2),       # ja 6
    (0x15, 0, 4, 0x86DD),  # jeq IPv6 ? next : drop
    (0x30, 0, 0, 20),      # ldb [20]            IPv6 next header
    (0x15, 1, 0, 112),     # jeq 112 ? accept : next
    (0x15, 0, 1, 51),      # jeq 51 ? accept : drop
    (0x06, 0, 0, 0x40000),  # accept
    (0x06, 0, 0, 0),       # drop
]


@dataclass(frozen=True)
class Heard:
    """One advert seen on an interface: on the wire (``outgoing`` when this
    host sent it) or delivered to a raw socket."""

    interface: str
    advert: Advert
    outgoing: bool = False

    def key(self) -> Tuple[str, str, str, str, int, str]:
        a = self.advert
        return (self.interface, a.family, a.src, a.dst, a.proto, a.digest)


@dataclass(frozen=True)
class CounterGrowth:
    """A drop/reject rule (or a legacy chain policy) whose packet counter grew."""

    layer: str  # "nftables", "iptables-legacy", "ip6tables-legacy"
    family: str  # nft family (ip, ip6, inet, netdev) or "ip"/"ip6" for legacy
    table: str
    chain: str
    hook: str
    rule: str  # "handle 7", "rule 3", "policy"
    verdict: str
    packets: int

    def families(self) -> Tuple[str, ...]:
        return {"ip": ("ipv4",), "ip6": ("ipv6",)}.get(self.family, FAMILIES)

    def to_json(self) -> Dict[str, Any]:
        return {"layer": self.layer, "family": self.family, "table": self.table, "chain": self.chain,
                "hook": self.hook, "rule": self.rule, "verdict": self.verdict, "packets": self.packets}

    def text(self) -> str:
        return (f"{self.layer} {self.family} {self.table} {self.chain} {self.rule} {self.verdict} "
                f"+{self.packets}")


@dataclass
class Counters:
    grown: List[CounterGrowth] = field(default_factory=list)
    not_read: List[str] = field(default_factory=list)


@dataclass
class SourceVerdict:
    """What one router (interface, family, VRID, source) sent us, and why it
    does or does not reach keepalived."""

    interface: str
    family: str
    src: str
    dst: str
    vrid: int
    priority: int
    version: int
    auth: str
    ttl: int
    interval: float
    addresses: Tuple[str, ...]
    wire: int
    delivered: int
    verdict: str
    checksum_bad: int = 0
    counters: List[CounterGrowth] = field(default_factory=list)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == DELIVERED and self.delivered == self.wire and not self.checksum_bad

    def to_json(self) -> Dict[str, Any]:
        return {"interface": self.interface, "family": self.family, "src": self.src, "dst": self.dst,
                "vrid": self.vrid, "priority": self.priority, "version": self.version, "auth": self.auth,
                "ttl": self.ttl, "interval": self.interval, "virtual_addresses": list(self.addresses),
                "wire": self.wire, "delivered": self.delivered, "checksum_bad": self.checksum_bad,
                "verdict": self.verdict, "detail": self.detail,
                "counters": [c.to_json() for c in self.counters]}


@dataclass
class SentSummary:
    """This host's own adverts seen leaving an interface (it is a master there)."""

    interface: str
    family: str
    src: str
    dst: str
    vrid: int
    priority: int
    version: int
    count: int

    def to_json(self) -> Dict[str, Any]:
        return {"interface": self.interface, "family": self.family, "src": self.src, "dst": self.dst,
                "vrid": self.vrid, "priority": self.priority, "version": self.version, "count": self.count}


@dataclass
class ListenReport:
    interfaces: List[str]
    seconds: float
    sources: List[SourceVerdict] = field(default_factory=list)
    sent: List[SentSummary] = field(default_factory=list)
    nothing_heard: List[str] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    undecodable: int = 0

    @property
    def exit_code(self) -> int:
        if not self.sources:
            return EXIT_NOTHING_HEARD
        if self.nothing_heard or not all(s.ok for s in self.sources):
            return EXIT_NOT_ALLOWED
        return EXIT_OK

    def to_json(self) -> Dict[str, Any]:
        return {"interfaces": list(self.interfaces), "seconds": self.seconds, "exit_code": self.exit_code,
                "sources": [s.to_json() for s in self.sources],
                "sent_by_this_host": [s.to_json() for s in self.sent],
                "nothing_heard": list(self.nothing_heard),
                "counters": {"grown": [c.to_json() for c in self.counters.grown],
                             "not_read": list(self.counters.not_read)},
                "undecodable": self.undecodable}

    def lines(self) -> List[str]:
        out = []
        for s in self.sources:
            addrs = ",".join(s.addresses) or "-"
            line = (f"{s.interface}: {s.src} -> {s.dst} vrid {s.vrid} prio {s.priority} v{s.version} "
                    f"auth {s.auth} ttl {s.ttl} every {s.interval:g}s [{addrs}]: {s.verdict} "
                    f"{s.delivered}/{s.wire}")
            if s.detail:
                line += f" ({s.detail})"
            out.append(line)
            out.extend(f"  counter grew: {c.text()}" for c in s.counters)
        for iface in self.nothing_heard:
            mine = [x for x in self.sent if x.interface == iface]
            hint = ""
            if mine:
                hint = (f" (this host sent {sum(x.count for x in mine)} adverts there: as master it "
                        "hears nothing from backups, which stay silent)")
            out.append(f"{iface}: {NOTHING_HEARD} in {self.seconds:g} s{hint}")
        for x in self.sent:
            out.append(f"{x.interface}: sent by this host: {x.src} -> {x.dst} vrid {x.vrid} "
                       f"prio {x.priority} v{x.version} x{x.count}")
        if self.undecodable:
            out.append(f"undecodable protocol 112/51 packets: {self.undecodable}")
        out.extend(f"counters not read: {why}" for why in self.counters.not_read)
        return out


# --- the pure part: records in, verdicts out ---

def _is_multicast(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_multicast
    except ValueError:
        return False


def aggregate(interfaces: Sequence[str], wire: Iterable[Heard], delivered: Iterable[Heard],
              seconds: float = 0.0, expect_group4: str = GROUP4, expect_group6: str = GROUP6,
              counters: Optional[Counters] = None, undecodable: int = 0) -> ListenReport:
    """Judge each (interface, family, VRID, source) from what was seen on
    the wire and what was delivered.  Order of verdicts, most fundamental
    first: TTL not 255 (keepalived discards those whatever the firewall
    does), wrong group, VRID conflict, dropped here (none delivered),
    delivered (n of m; fewer than all still fails the exit code)."""
    counters = counters or Counters()
    expected = {"ipv4": str(ipaddress.ip_address(expect_group4)),
                "ipv6": str(ipaddress.ip_address(expect_group6))}
    inbound: Dict[Tuple[str, str, int, str], List[Heard]] = defaultdict(list)
    outbound: Dict[Tuple[str, str, int, str], List[Heard]] = defaultdict(list)
    for h in wire:
        group = outbound if h.outgoing else inbound
        group[(h.interface, h.advert.family, h.advert.vrid, h.advert.src)].append(h)
    wire_keys = Counter(h.key() for hs in inbound.values() for h in hs)
    got_keys = Counter(h.key() for h in delivered)
    matched = {k: min(n, got_keys.get(k, 0)) for k, n in wire_keys.items()}

    # VRID conflict: one VRID on one link, two sources, different address sets.
    sets: Dict[Tuple[str, str, int], Dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for (iface, family, vrid, src), hs in inbound.items():
        for h in hs:
            sets[(iface, family, vrid)][src].add(frozenset(h.advert.addresses))
    conflicts = set()
    for link, by_src in sets.items():
        distinct = {s for ss in by_src.values() for s in ss}
        if len(by_src) > 1 and len(distinct) > 1:
            conflicts.add(link)

    report = ListenReport(list(interfaces), seconds, counters=counters, undecodable=undecodable)
    for (iface, family, vrid, src), hs in sorted(inbound.items(), key=lambda kv: _sort_key(kv[0])):
        last = hs[-1].advert
        keys = {h.key() for h in hs}
        n_wire = len(hs)
        n_got = sum(matched.get(k, 0) for k in keys)
        bad_ttl = sorted({h.advert.ttl for h in hs if h.advert.ttl != 255})
        dsts = sorted({h.advert.dst for h in hs})
        wrong = [d for d in dsts if _is_multicast(d) and d != expected[family]]
        others = sorted({a for ss in sets[(iface, family, vrid)].values() for a in ss} - {
            frozenset(h.advert.addresses) for h in hs}, key=sorted)
        detail = []
        if bad_ttl:
            verdict = TTL_NOT_255
            detail.append(f"ttl {','.join(map(str, bad_ttl))}: keepalived discards adverts whose "
                          "TTL/hop limit is not 255 (routed, or sent with a low multicast TTL)")
        elif wrong:
            verdict = WRONG_GROUP
            detail.append(f"sent to {','.join(wrong)}, expected {expected[family]}")
        elif (iface, family, vrid) in conflicts:
            verdict = VRID_CONFLICT
            other = "; ".join(",".join(sorted(s)) or "-" for s in others)
            detail.append(f"another source uses vrid {vrid} with virtual addresses {other}")
        elif n_got == 0:
            verdict = DROPPED
            detail.append("on the wire, none delivered: netfilter on this host dropped them")
        else:
            verdict = DELIVERED
            if n_got < n_wire:
                detail.append(f"{n_wire - n_got} dropped here")
        bad_sum = sum(1 for h in hs if not h.advert.checksum_ok)
        if bad_sum:
            detail.append(f"{bad_sum} with a bad checksum")
        grown = [c for c in counters.grown if family in c.families()] if n_got < n_wire else []
        report.sources.append(SourceVerdict(
            iface, family, src, ",".join(dsts), vrid, last.priority, last.version, last.auth,
            bad_ttl[0] if bad_ttl else 255, last.interval, last.addresses, n_wire, n_got, verdict,
            bad_sum, grown, "; ".join(detail)))
    heard = {k[0] for k in inbound}
    report.nothing_heard = [i for i in interfaces if i not in heard]
    for (iface, family, vrid, src), hs in sorted(outbound.items(), key=lambda kv: _sort_key(kv[0])):
        a = hs[-1].advert
        report.sent.append(SentSummary(iface, family, src, a.dst, vrid, a.priority, a.version, len(hs)))
    return report


def _sort_key(k: Tuple[str, str, int, str]) -> Tuple[str, str, int, str]:
    return (k[0], k[1], k[2], k[3])


# --- counters: best effort ---

def _run(argv: Sequence[str]) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {(proc.stderr or proc.stdout).strip().splitlines()[:1]}")
    return proc.stdout


def nft_drop_counters(doc: Dict[str, Any]) -> Dict[Tuple[str, ...], Tuple[int, str, str]]:
    """From ``nft -j list ruleset``: each rule with an anonymous counter and
    a drop or reject verdict in a base chain on a receive hook (ingress,
    prerouting, input) -> (packets, hook, verdict)."""
    hooks: Dict[Tuple[str, str, str], str] = {}
    out: Dict[Tuple[str, ...], Tuple[int, str, str]] = {}
    items = doc.get("nftables", []) if isinstance(doc, dict) else []
    for item in items:
        chain = item.get("chain") if isinstance(item, dict) else None
        if isinstance(chain, dict) and chain.get("hook") in ("ingress", "prerouting", "input"):
            hooks[(chain.get("family", ""), chain.get("table", ""), chain.get("name", ""))] = chain["hook"]
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict):
            continue
        where = (rule.get("family", ""), rule.get("table", ""), rule.get("chain", ""))
        if where not in hooks:
            continue
        packets, verdict = None, None
        for expr in rule.get("expr", []) or []:
            if not isinstance(expr, dict):
                continue
            c = expr.get("counter")
            if isinstance(c, dict) and isinstance(c.get("packets"), int):
                packets = c["packets"]
            for v in ("drop", "reject"):
                if v in expr:
                    verdict = v
        if packets is not None and verdict is not None:
            key = ("nftables", where[0], where[1], where[2], f"handle {rule.get('handle')}")
            out[key] = (packets, hooks[where], verdict)
    return out


def legacy_drop_counters(text: str, layer: str, table: str) -> Dict[Tuple[str, ...], Tuple[int, str, str]]:
    """From ``iptables-legacy -t TABLE -L -v -x -n --line-numbers``: DROP
    and REJECT rules, and the policy of built-in chains that drop."""
    family = "ip6" if layer.startswith("ip6") else "ip"
    out: Dict[Tuple[str, ...], Tuple[int, str, str]] = {}
    chain = ""
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Chain "):
            chain = parts[1] if len(parts) > 1 else ""
            if "(policy" in line and len(parts) >= 5 and parts[3] in ("DROP", "REJECT"):
                out[(layer, family, table, chain, "policy")] = (int(parts[4]), chain.lower(), parts[3])
            continue
        if len(parts) >= 4 and parts[0].isdigit() and parts[1].isdigit() and parts[3] in ("DROP", "REJECT"):
            hook = chain.lower() if chain in ("INPUT", "PREROUTING") else f"chain {chain}"
            out[(layer, family, table, chain, f"rule {parts[0]}")] = (int(parts[1]), hook, parts[3])
    return out


def read_counters(families: Sequence[str] = FAMILIES) -> Tuple[Dict[Tuple[str, ...], Tuple[int, str, str]],
                                                                 List[str]]:
    """A snapshot of every drop counter we can read, and why some could not."""
    snap: Dict[Tuple[str, ...], Tuple[int, str, str]] = {}
    why: List[str] = []
    if shutil.which("nft") is None:
        why.append("nftables: nft is not installed")
    else:
        try:
            snap.update(nft_drop_counters(json.loads(_run(["nft", "-j", "list", "ruleset"]) or "{}")))
        except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as e:
            why.append(f"nftables: {e}")
    legacy = [("iptables-legacy", "/proc/net/ip_tables_names", "ipv4"),
              ("ip6tables-legacy", "/proc/net/ip6_tables_names", "ipv6")]
    for tool, names, family in legacy:
        if family not in families:
            continue
        try:
            with open(names) as f:  # only tables that exist: listing one would create it
                tables = [t.strip() for t in f if t.strip() in ("raw", "mangle", "filter", "security")]
        except OSError:
            continue  # legacy tables not loaded: nothing to read
        if tables and shutil.which(tool) is None:
            why.append(f"{tool}: not installed, but legacy tables {','.join(tables)} exist")
            continue
        for table in tables:
            try:
                text = _run([tool, "-w", "5", "-t", table, "-L", "-v", "-x", "-n", "--line-numbers"])
                snap.update(legacy_drop_counters(text, tool, table))
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                why.append(f"{tool} {table}: {e}")
    return snap, why


def counter_growth(before: Dict[Tuple[str, ...], Tuple[int, str, str]],
                   after: Dict[Tuple[str, ...], Tuple[int, str, str]]) -> List[CounterGrowth]:
    grown = []
    for key, (packets, hook, verdict) in sorted(after.items()):
        old = before.get(key)
        delta = packets - (old[0] if old else 0)
        if old is not None and delta > 0:
            layer, family, table, chain, rule = key
            grown.append(CounterGrowth(layer, family, table, chain, hook, rule, verdict, delta))
    return grown


# --- the capture: sockets in the current network namespace ---

def _check_args(interfaces: Sequence[str], seconds: float,
                families: Sequence[str]) -> Tuple[List[str], float]:
    if isinstance(interfaces, (str, bytes)) or not isinstance(interfaces, Sequence):
        raise InputError("interfaces must be a list of interface names")
    names = [validate_interface(i) for i in interfaces]
    if not names:
        raise InputError("listen needs at least one interface")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0:
        raise InputError(f"listen seconds must be a finite number > 0, not {seconds!r}")
    if isinstance(families, str) or not families or any(f not in FAMILIES for f in families):
        raise InputError(f"families must be a list of {', '.join(FAMILIES)}, not {families!r}")
    return names, float(seconds)


def _attach_bpf(sock: socket.socket) -> None:
    prog = b"".join(struct.pack("HBBI", *ins) for ins in _BPF)
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HL", len(_BPF), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class _Capture:
    """The sockets of one listen, and what they heard."""

    def __init__(self, names: List[str], families: Sequence[str], group4: str, group6: str) -> None:
        self.names = names
        self.index: Dict[int, str] = {}
        for name in names:
            try:
                self.index[socket.if_nametoindex(name)] = name
            except OSError:
                raise EnvironmentProblem(f"no interface {name} in this network namespace") from None
        self.raw: List[Tuple[socket.socket, str, int]] = []
        self.wire_socks: List[Tuple[socket.socket, str]] = []
        self.wire: List[Heard] = []
        self.delivered: List[Heard] = []
        self.undecodable = 0
        try:
            # raw first: a packet between the two openings may look delivered, never dropped
            for family in families:
                for proto in PROTOS:
                    self.raw.append((self._raw(family, proto, group4, group6), family, proto))
            for name in names:
                self.wire_socks.append((self._packet(name), name))
        except PermissionError as e:
            self.close()
            raise EnvironmentProblem(f"listening for VRRP needs root (CAP_NET_RAW): {e.strerror}") from None
        except OSError as e:
            self.close()
            raise EnvironmentProblem(f"cannot open the listening sockets: {e}") from None

    def _raw(self, family: str, proto: int, group4: str, group6: str) -> socket.socket:
        if family == "ipv4":
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
            s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            for ifindex in self.index:
                mreqn = socket.inet_aton(group4) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            for ifindex in self.index:
                mreq = ipaddress.IPv6Address(group6).packed + struct.pack("@I", ifindex)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        s.setblocking(False)
        return s

    def _packet(self, name: str) -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            s.bind((name, ETH_P_ALL))
            # The link type from the bound socket (sysfs would show the
            # namespace it was mounted in, not the one --netns entered).
            if s.getsockname()[3] == ARPHRD_ETHER:
                try:
                    _attach_bpf(s)
                except OSError:
                    pass  # the Python check below still filters
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        return s

    def close(self) -> None:
        for s, *_ in self.raw + self.wire_socks:  # type: ignore[operator]
            s.close()

    def read_wire(self, s: socket.socket, name: str) -> None:
        while True:
            try:
                data, addr = s.recvfrom(65535)
            except BlockingIOError:
                return
            pkttype, hatype = addr[2], addr[3]
            if pkttype == PACKET_OTHERHOST:
                continue  # unicast for another host (promiscuous or bridged)
            try:
                if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
                    advert = decode_frame(data)
                elif data[:1] and data[0] >> 4 in (4, 6):
                    advert = decode_ip(data)
                else:
                    continue
            except DecodeError:
                if _carries_vrrp_or_ah(data, hatype):
                    self.undecodable += 1
                continue
            self.wire.append(Heard(name, advert, pkttype == PACKET_OUTGOING))

    def read_raw(self, s: socket.socket, family: str, proto: int) -> None:
        while True:
            try:
                data, anc, _flags, addr = s.recvmsg(65535, 256)
            except BlockingIOError:
                return
            try:
                if family == "ipv4":
                    ifindex = _ipv4_ifindex(anc)
                    if ifindex not in self.index:
                        continue
                    advert = decode_ip(data)
                else:
                    ifindex, dst, hops = _ipv6_info(anc)
                    if ifindex not in self.index:
                        continue
                    src = str(addr[0]).split("%")[0]
                    advert = decode_vrrp(data, "ipv6", str(ipaddress.IPv6Address(src)), dst, hops, proto)
            except (DecodeError, ValueError):
                continue  # the wire socket counts what cannot be decoded
            self.delivered.append(Heard(self.index[ifindex], advert))

    def run(self, seconds: float) -> None:
        kinds: Dict[int, Tuple[str, ...]] = {}
        socks: Dict[int, socket.socket] = {}
        for s, name in self.wire_socks:
            kinds[s.fileno()], socks[s.fileno()] = ("wire", name), s
        for s, family, proto in self.raw:
            kinds[s.fileno()], socks[s.fileno()] = ("raw", family, str(proto)), s
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(socks.values()), [], [], left)
            for s in ready:
                self._read(s, kinds[s.fileno()])
        time.sleep(DRAIN)
        for s, name in self.wire_socks:  # wire first, then delivery: see the module docstring
            self.read_wire(s, name)
        for s, family, proto in self.raw:
            self.read_raw(s, family, proto)

    def _read(self, s: socket.socket, kind: Tuple[str, ...]) -> None:
        if kind[0] == "wire":
            self.read_wire(s, kind[1])
        else:
            self.read_raw(s, kind[1], int(kind[2]))


def _carries_vrrp_or_ah(data: bytes, hatype: int) -> bool:
    try:
        if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            data, _ = frame_payload(data)
    except DecodeError:
        return False
    if len(data) > 9 and data[0] >> 4 == 4:
        return data[9] in PROTOS
    if len(data) > 6 and data[0] >> 4 == 6:
        return data[6] in PROTOS
    return False


def _ipv4_ifindex(anc: List[Tuple[int, int, bytes]]) -> int:
    for level, kind, data in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 4:
            return int(struct.unpack("@i", data[:4])[0])
    return 0


def _ipv6_info(anc: List[Tuple[int, int, bytes]]) -> Tuple[int, str, int]:
    ifindex, dst, hops = 0, "::", -1
    for level, kind, data in anc:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_PKTINFO and len(data) >= 20:
            dst = str(ipaddress.IPv6Address(data[:16]))
            ifindex = int(struct.unpack("@I", data[16:20])[0])
        elif kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            hops = int(struct.unpack("@i", data[:4])[0])
    return ifindex, dst, hops


def listen(interfaces: Sequence[str], seconds: float, families: Sequence[str] = FAMILIES,
           expect_group4: str = GROUP4, expect_group6: str = GROUP6,
           read_firewall_counters: bool = True, ready: Optional[Callable[[], None]] = None) -> ListenReport:
    """Listen for VRRP adverts on ``interfaces`` for ``seconds`` in the
    current network namespace, and judge each router heard (see the module
    docstring).  Sends nothing; needs root (CAP_NET_RAW).  ``ready`` is
    called once the sockets are open and the counters read, just before the
    window starts (the CLI can say "listening", a test can start sending)."""
    names, secs = _check_args(interfaces, seconds, families)
    try:
        g4 = str(ipaddress.IPv4Address(expect_group4))
        g6 = str(ipaddress.IPv6Address(expect_group6))
    except ValueError as e:
        raise InputError(f"not a group address: {e}") from None
    if not ipaddress.ip_address(g4).is_multicast or not ipaddress.ip_address(g6).is_multicast:
        raise InputError(f"{g4} / {g6}: expected groups must be multicast addresses")
    if os.geteuid() != 0:
        raise EnvironmentProblem("listening for VRRP needs root (raw and packet sockets)")
    capture = _Capture(names, families, g4, g6)
    counters = Counters()
    try:
        before: Dict[Tuple[str, ...], Tuple[int, str, str]] = {}
        if read_firewall_counters:
            before, counters.not_read = read_counters(families)
        if ready is not None:
            ready()
        capture.run(secs)
        if read_firewall_counters:
            after, why = read_counters(families)
            counters.grown = counter_growth(before, after)
            counters.not_read += [w for w in why if w not in counters.not_read]
        else:
            counters.not_read.append("not asked for")
    finally:
        capture.close()
    return aggregate(names, capture.wire, capture.delivered, secs, g4, g6, counters, capture.undecodable)
