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

What the wire carries beyond plain adverts: a frame tagged for a VLAN (the
tag from PACKET_AUXDATA, or still in the frame) is "other vlan", reported and
never judged (delivery for it would be on the VLAN interface, if any); IPv6
extension headers are walked (the capture filter and the decoder, both
bounded); fragments are counted on the wire and matched with the datagrams
the kernel reassembled and delivered ("fragmented": keepalived never
fragments).  The kernel's drops in the listener's own sockets (the packet
sockets' PACKET_STATISTICS, the raw sockets' SO_RXQ_OVFL and SO_MEMINFO) are
"capture overflow", never blamed on netfilter.  Memory is bounded: the
capture feeds a :class:`Tally` (counters per source and one sample, MAX_*
limits), never a list of adverts, and decodes each distinct advert once.

Exit codes (``ListenReport.exit_code``): 0 every advert heard was delivered;
1 something dropped here (fully or partly), TTL not 255, a wrong group, a
VRID conflict, fragmented adverts, a capture that overflowed (uncertain),
sources past MAX_SOURCES, or an interface heard nothing while another heard
adverts; 5 (EXIT_NOTHING_HEARD) no advert at all on any interface (adverts
for another VLAN do not count).  Usage errors are ``InputError`` (2) and
environment problems ``EnvironmentProblem`` (3).

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
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import EXIT_NOT_ALLOWED, EXIT_OK, EnvironmentProblem, InputError
from ..host.run import run
from ..model import validate_interface
from .packet import (
    PROTO_AH,
    PROTO_VRRP,
    Advert,
    DecodeError,
    FragmentError,
    decode_frame,
    decode_ip,
    decode_vrrp,
    frame_payload,
    frame_vlan,
)

EXIT_NOTHING_HEARD = 5  # no advert reached any listened interface during the listen

DELIVERED = "delivered"
DROPPED = "dropped here"
OTHER_VLAN = "other vlan"  # tagged for a VLAN: not this interface's traffic; never judged as dropped
FRAGMENTED = "fragmented"  # keepalived never fragments: counted after reassembly, fails the exit code
CAPTURE_OVERFLOW = "capture overflow"  # the listener's own socket buffers overflowed: uncertain
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

# Memory bounds: whatever the wire carries, a listen keeps at most this much.
MAX_SOURCES = 256  # (interface, VLAN, family, VRID, source) tracked; more are counted, not judged
MAX_BODIES = 16  # distinct advert bodies (digests) matched per source; more share one counter
MAX_ADDRESS_SETS = 4  # distinct virtual address sets kept per source (for VRID conflicts)
MAX_GROUPS = 8  # distinct destinations kept per source
# Kernel socket buffers: ask for this much (SO_RCVBUFFORCE as root, else
# SO_RCVBUF, which net.core.rmem_max caps).  What still overflows is counted
# (PACKET_STATISTICS, SO_RXQ_OVFL) and reported as capture overflow.
RCVBUF_FORCE = 4 << 20
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
TP_STATUS_VLAN_VALID = 0x10
SO_RXQ_OVFL = 40
SO_MEMINFO = 55
SK_MEMINFO_DROPS = 8
SO_RCVBUFFORCE = 33
# Adverts repeat byte for byte (an IPv4 header's ID and checksum aside): each
# distinct one is decoded once.  Bounded: so many entries of so many bytes.
DECODE_CACHE = 64
DECODE_CACHE_BYTES = 2048
IPV6_EXT = (0, 43, 60, 44)  # hop-by-hop, routing, destination options, fragment
BPF_WALK = 8  # IPv6 extension headers the capture filter steps over


def bpf_program(walk: int = BPF_WALK) -> List[Tuple[int, int, int, int]]:
    """Classic BPF for an Ethernet packet socket: IPv4 protocol 112 or 51
    (fragments included: every fragment carries the protocol), IPv6 whose
    header chain reaches 112 or 51 within ``walk`` extension headers
    (hop-by-hop, routing, destination options, fragment), and frames still
    carrying a VLAN tag (the decoder judges those).  So a busy interface does
    not flood Python.  Frames queued before it is attached still pass the
    decoder's own check."""
    ins: List[Tuple[Any, ...]] = []  # (code, jt label, jf label, k); labels resolved below

    def op(code: int, k: int = 0, jt: Any = None, jf: Any = None) -> None:
        ins.append((code, jt, jf, k))

    def label(name: str) -> None:
        ins.append(("label", name))

    LDH, LDB, LDB_X, LDX_IMM, LD_MEM, ST = 0x28, 0x30, 0x50, 0x01, 0x60, 0x02
    ADD_K, LSH_K, ADD_X, TAX, JEQ, RET = 0x04, 0x64, 0x0C, 0x07, 0x15, 0x06
    op(LDH, 12)  # EtherType (a tag the kernel stripped is in the aux data)
    op(JEQ, 0x0800, "v4", None)
    op(JEQ, 0x86DD, "v6", None)
    for tpid in (0x8100, 0x88A8, 0x9100):
        op(JEQ, tpid, "accept", None)
    op(RET, 0)
    label("v4")
    op(LDB, 23)  # IPv4 protocol
    op(JEQ, PROTO_VRRP, "accept", None)
    op(JEQ, PROTO_AH, "accept", "drop")
    label("v6")
    op(LDB, 20)  # IPv6 next header
    op(LDX_IMM, 54)  # X: offset of the header it names
    for i in range(walk):
        op(JEQ, PROTO_VRRP, "accept", None)
        op(JEQ, PROTO_AH, "accept", None)
        for ext in IPV6_EXT[:-1]:
            op(JEQ, ext, f"step{i}", None)
        op(JEQ, IPV6_EXT[-1], f"step{i}", "drop")
        label(f"step{i}")
        op(LDB_X, 1)  # header length in 8-octet units, not counting the first (0 for a fragment header)
        op(ADD_K, 1)
        op(LSH_K, 3)
        op(ST, 0)  # M[0] = this header's size
        op(LDB_X, 0)  # its next header
        op(ST, 1)
        op(LD_MEM, 0)
        op(ADD_X)
        op(TAX)  # X += size
        op(LD_MEM, 1)
    op(JEQ, PROTO_VRRP, "accept", None)
    op(JEQ, PROTO_AH, "accept", "drop")
    label("accept")
    op(RET, 0x40000)
    label("drop")
    op(RET, 0)
    where: Dict[str, int] = {}
    pc = 0
    for item in ins:
        if item[0] == "label":
            where[item[1]] = pc
        else:
            pc += 1
    out: List[Tuple[int, int, int, int]] = []
    for item in ins:
        if item[0] == "label":
            continue
        code, jt, jf, k = item
        here = len(out)
        rel = [0 if t is None else where[t] - here - 1 for t in (jt, jf)]
        assert all(0 <= r <= 255 for r in rel), "BPF jump out of range"
        out.append((code, rel[0], rel[1], k))
    return out


_BPF = bpf_program()


@dataclass(frozen=True)
class Heard:
    """One advert seen on an interface: on the wire (``outgoing`` when this
    host sent it) or delivered to a raw socket."""

    interface: str
    advert: Advert
    outgoing: bool = False
    vlan: int = 0  # the 802.1Q VLAN ID the frame was tagged with (0: untagged)

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
    vlan: int = 0

    @property
    def ok(self) -> bool:
        if self.verdict == OTHER_VLAN:
            return True  # not this interface's adverts: reported, never judged
        return self.verdict == DELIVERED and self.delivered == self.wire and not self.checksum_bad

    def to_json(self) -> Dict[str, Any]:
        return {"interface": self.interface, "family": self.family, "src": self.src, "dst": self.dst,
                "vrid": self.vrid, "priority": self.priority, "version": self.version, "auth": self.auth,
                "ttl": self.ttl, "interval": self.interval, "virtual_addresses": list(self.addresses),
                "wire": self.wire, "delivered": self.delivered, "checksum_bad": self.checksum_bad,
                "verdict": self.verdict, "detail": self.detail, "vlan": self.vlan,
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
    # the kernel dropped packets in the listener's own sockets (buffers full):
    # {"packet": {interface: n}, "raw": {"ipv4/112": n, ...}}
    overflow: Dict[str, Dict[str, int]] = field(default_factory=lambda: {"packet": {}, "raw": {}})
    untracked: int = 0  # adverts from sources past MAX_SOURCES: counted, not judged

    @property
    def exit_code(self) -> int:
        judged = [s for s in self.sources if s.verdict != OTHER_VLAN]
        if not judged:
            return EXIT_NOTHING_HEARD if not self.untracked else EXIT_NOT_ALLOWED
        lost = any(n for counts in self.overflow.values() for n in counts.values())
        if self.nothing_heard or self.untracked or lost or not all(s.ok for s in self.sources):
            return EXIT_NOT_ALLOWED  # a capture that overflowed cannot prove "all delivered": uncertain
        return EXIT_OK

    def to_json(self) -> Dict[str, Any]:
        return {"interfaces": list(self.interfaces), "seconds": self.seconds, "exit_code": self.exit_code,
                "sources": [s.to_json() for s in self.sources],
                "sent_by_this_host": [s.to_json() for s in self.sent],
                "nothing_heard": list(self.nothing_heard),
                "counters": {"grown": [c.to_json() for c in self.counters.grown],
                             "not_read": list(self.counters.not_read)},
                "undecodable": self.undecodable,
                "capture_overflow": {k: dict(v) for k, v in self.overflow.items()},
                "untracked": self.untracked}

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
        drops = [f"{n} on the packet socket of {i}" for i, n in sorted(self.overflow["packet"].items()) if n]
        drops += [f"{n} on the {k} raw socket" for k, n in sorted(self.overflow["raw"].items()) if n]
        if drops:
            out.append(f"{CAPTURE_OVERFLOW}: the kernel dropped packets in the listener's own socket "
                       f"buffers ({', '.join(drops)}): counts are lower bounds, not netfilter's doing")
        if self.untracked:
            out.append(f"{self.untracked} adverts from more than {MAX_SOURCES} sources: counted, not judged")
        out.extend(f"counters not read: {why}" for why in self.counters.not_read)
        return out


# --- the pure part: records in, verdicts out ---

def _is_multicast(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_multicast
    except ValueError:
        return False


class _Source:
    """What one (interface, VLAN, family, VRID, source) sent, as counters and
    a sample: its memory does not grow with the number of adverts."""

    __slots__ = ("wire", "got", "bodies", "got_bodies", "other_wire", "other_got", "ttls", "dsts",
                 "addr_sets", "bad_sum", "last")

    def __init__(self) -> None:
        self.wire = 0
        self.got = 0
        self.bodies: Dict[Tuple[str, int, str], int] = {}  # (dst, proto, digest) -> on the wire
        self.got_bodies: Dict[Tuple[str, int, str], int] = {}  # ... -> delivered
        self.other_wire = 0  # bodies past MAX_BODIES
        self.other_got = 0
        self.ttls: set = set()  # at most 256 values
        self.dsts: set = set()
        self.addr_sets: set = set()
        self.bad_sum = 0
        self.last: Optional[Advert] = None

    def matched(self) -> int:
        """Delivered copies of adverts seen on the wire (a multiset match)."""
        n = sum(min(k, self.got_bodies.get(body, 0)) for body, k in self.bodies.items())
        return n + min(self.other_wire, self.other_got)


class _Fragments:
    __slots__ = ("fragments", "datagrams", "vrid", "dst", "ttl")

    def __init__(self) -> None:
        self.fragments = 0
        self.datagrams = 0  # first fragments: one per fragmented datagram
        self.vrid: Optional[int] = None
        self.dst = ""
        self.ttl = 255


SourceKey = Tuple[str, int, str, int, str]  # interface, vlan, family, vrid, source


class Tally:
    """Adverts in as they arrive, verdicts out: counters per source, a fixed
    number of samples, bounded whatever the wire carries (MAX_*)."""

    def __init__(self) -> None:
        self.inbound: Dict[SourceKey, _Source] = {}
        self.outbound: Dict[SourceKey, Tuple[int, Advert]] = {}
        self.fragments: Dict[Tuple[str, str, str], _Fragments] = {}
        self.untracked = 0

    def _source(self, key: SourceKey) -> Optional[_Source]:
        src = self.inbound.get(key)
        if src is None:
            if len(self.inbound) >= MAX_SOURCES:
                return None
            src = self.inbound[key] = _Source()
        return src

    def add_wire(self, h: Heard) -> None:
        a = h.advert
        key = (h.interface, h.vlan, a.family, a.vrid, a.src)
        if h.outgoing:
            n, _ = self.outbound.get(key, (0, a))
            if n or len(self.outbound) < MAX_SOURCES:
                self.outbound[key] = (n + 1, a)
            return
        src = self._source(key)
        if src is None:
            self.untracked += 1
            return
        src.wire += 1
        body = (a.dst, a.proto, a.digest)
        if body in src.bodies or len(src.bodies) < MAX_BODIES:
            src.bodies[body] = src.bodies.get(body, 0) + 1
        else:
            src.other_wire += 1
        src.ttls.add(a.ttl)
        if len(src.dsts) < MAX_GROUPS:
            src.dsts.add(a.dst)
        addrs = frozenset(a.addresses)
        if len(src.addr_sets) < MAX_ADDRESS_SETS:
            src.addr_sets.add(addrs)
        if not a.checksum_ok:
            src.bad_sum += 1
        src.last = a

    def add_delivered(self, h: Heard) -> None:
        a = h.advert
        src = self._source((h.interface, 0, a.family, a.vrid, a.src))
        if src is None:
            return
        src.got += 1
        body = (a.dst, a.proto, a.digest)
        if body in src.bodies or body in src.got_bodies or len(src.got_bodies) < MAX_BODIES:
            src.got_bodies[body] = src.got_bodies.get(body, 0) + 1
        else:
            src.other_got += 1
        if src.last is None:
            src.last = a  # delivered only: a reassembled datagram, or a packet at the window's edge

    def add_fragment(self, interface: str, frag: FragmentError) -> None:
        key = (interface, frag.family, frag.src)
        entry = self.fragments.get(key)
        if entry is None:
            if len(self.fragments) >= MAX_SOURCES:
                self.untracked += 1
                return
            entry = self.fragments[key] = _Fragments()
        entry.fragments += 1
        entry.dst, entry.ttl = frag.dst, frag.ttl
        if frag.first:
            entry.datagrams += 1
            if frag.vrid is not None:
                entry.vrid = frag.vrid

    def report(self, interfaces: Sequence[str], seconds: float = 0.0, expect_group4: str = GROUP4,
               expect_group6: str = GROUP6, counters: Optional[Counters] = None, undecodable: int = 0,
               overflow: Optional[Dict[str, Dict[str, int]]] = None,
               vlan_interfaces: Optional[Dict[Tuple[str, int], str]] = None) -> ListenReport:
        return _judge(self, interfaces, seconds, expect_group4, expect_group6, counters or Counters(),
                      undecodable, overflow or {"packet": {}, "raw": {}}, vlan_interfaces or {})


def aggregate(interfaces: Sequence[str], wire: Iterable[Heard], delivered: Iterable[Heard],
              seconds: float = 0.0, expect_group4: str = GROUP4, expect_group6: str = GROUP6,
              counters: Optional[Counters] = None, undecodable: int = 0,
              overflow: Optional[Dict[str, Dict[str, int]]] = None,
              vlan_interfaces: Optional[Dict[Tuple[str, int], str]] = None) -> ListenReport:
    """Judge records of what was seen on the wire and what was delivered
    (see :func:`_judge`); the capture feeds a :class:`Tally` as packets
    arrive instead, so its memory stays bounded."""
    tally = Tally()
    for h in wire:
        tally.add_wire(h)
    for h in delivered:
        tally.add_delivered(h)
    return tally.report(interfaces, seconds, expect_group4, expect_group6, counters, undecodable, overflow,
                        vlan_interfaces)


def _judge(tally: Tally, interfaces: Sequence[str], seconds: float, expect_group4: str, expect_group6: str,
           counters: Counters, undecodable: int, overflow: Dict[str, Dict[str, int]],
           vlan_interfaces: Dict[Tuple[str, int], str]) -> ListenReport:
    """Judge each (interface, family, VRID, source).  Order of verdicts, most
    fundamental first: tagged for another VLAN (not this interface's traffic),
    TTL not 255 (keepalived discards those whatever the firewall does), wrong
    group, VRID conflict, fragmented (keepalived never fragments; counted
    after the kernel's reassembly), capture overflow (the listener's own
    sockets lost packets: a shortfall is not netfilter's), dropped here (none
    delivered), delivered (n of m; fewer than all still fails the exit code)."""
    expected = {"ipv4": str(ipaddress.ip_address(expect_group4)),
                "ipv6": str(ipaddress.ip_address(expect_group6))}
    raw_lost = {fam: sum(n for k, n in overflow.get("raw", {}).items() if k.startswith(fam + "/"))
                for fam in FAMILIES}
    packet_lost = dict(overflow.get("packet", {}))

    # VRID conflict: one VRID on one link, two sources, different address sets.
    sets: Dict[Tuple[str, int, str, int], Dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for (iface, vlan, family, vrid, src), rec in tally.inbound.items():
        if rec.wire:
            sets[(iface, vlan, family, vrid)][src] |= rec.addr_sets
    conflicts = set()
    for link, by_src in sets.items():
        distinct = {s for ss in by_src.values() for s in ss}
        if len(by_src) > 1 and len(distinct) > 1:
            conflicts.add(link)

    report = ListenReport(list(interfaces), seconds, counters=counters, undecodable=undecodable,
                          overflow={"packet": packet_lost, "raw": dict(overflow.get("raw", {}))},
                          untracked=tally.untracked)
    # Each source's fragments go to one of its records: the VRID its first
    # fragments showed, else the first that had datagrams delivered.
    owner: Dict[Tuple[str, str, str], SourceKey] = {}
    for key, rec in sorted(tally.inbound.items()):
        iface, vlan, family, vrid, src = key
        where = (iface, family, src)
        entry = tally.fragments.get(where)
        if entry is None or vlan or rec.got <= rec.matched():
            continue
        if where not in owner or (vrid == entry.vrid and owner[where][3] != entry.vrid):
            owner[where] = key
    frags_used = set()
    for (iface, vlan, family, vrid, src), rec in sorted(tally.inbound.items()):
        mine = owner.get((iface, family, src)) == (iface, vlan, family, vrid, src)
        frag = tally.fragments.get((iface, family, src)) if mine else None
        if rec.wire == 0 and frag is None:
            continue  # delivered, never on the wire: the window's edge, or looped back
        last = rec.last
        assert last is not None
        n_wire, n_got = rec.wire, rec.matched()
        detail = []
        bad_ttl = sorted(t for t in rec.ttls if t != 255)
        dsts = sorted(rec.dsts)
        wrong = [d for d in dsts if _is_multicast(d) and d != expected[family]]
        if frag is not None:
            frags_used.add((iface, family, src))
            extra = min(rec.got - n_got, frag.datagrams)
            n_wire, n_got = n_wire + frag.datagrams, n_got + extra
            if frag.dst not in dsts:
                dsts.append(frag.dst)
        if vlan:
            verdict = OTHER_VLAN
            there = vlan_interfaces.get((iface, vlan))
            if there is None:
                detail.append(f"tagged for VLAN {vlan}, no interface here")
            elif there in interfaces:
                detail.append(f"tagged for VLAN {vlan}: judged on {there}")
            else:
                detail.append(f"tagged for VLAN {vlan}, delivered through {there}: listen there")
        elif bad_ttl:
            verdict = TTL_NOT_255
            detail.append(f"ttl {','.join(map(str, bad_ttl))}: keepalived discards adverts whose "
                          "TTL/hop limit is not 255 (routed, or sent with a low multicast TTL)")
        elif wrong:
            verdict = WRONG_GROUP
            detail.append(f"sent to {','.join(wrong)}, expected {expected[family]}")
        elif (iface, vlan, family, vrid) in conflicts:
            verdict = VRID_CONFLICT
            others = sorted({a for ss in sets[(iface, vlan, family, vrid)].values() for a in ss}
                            - rec.addr_sets, key=sorted)
            other = "; ".join(",".join(sorted(s)) or "-" for s in others)
            detail.append(f"another source uses vrid {vrid} with virtual addresses {other}")
        elif frag is not None:
            verdict = FRAGMENTED
            detail.append(_fragment_detail(frag, n_got - (rec.matched())))
        elif n_got < n_wire and (raw_lost[family] or packet_lost.get(iface)):
            verdict = CAPTURE_OVERFLOW
            detail.append(_overflow_detail(n_wire - n_got, raw_lost[family], packet_lost.get(iface, 0)))
        elif n_got == 0:
            verdict = DROPPED
            detail.append("on the wire, none delivered: netfilter on this host dropped them")
        else:
            verdict = DELIVERED
            if n_got < n_wire:
                detail.append(f"{n_wire - n_got} dropped here")
        if rec.bad_sum:
            detail.append(f"{rec.bad_sum} with a bad checksum")
        if verdict not in (CAPTURE_OVERFLOW, OTHER_VLAN) and packet_lost.get(iface):
            detail.append(f"{CAPTURE_OVERFLOW}: {packet_lost[iface]} lost on the packet socket, the wire "
                          "count is a lower bound")
        grown = [c for c in counters.grown if family in c.families()] \
            if n_got < n_wire and verdict != OTHER_VLAN else []
        report.sources.append(SourceVerdict(
            iface, family, src, ",".join(dsts), vrid, last.priority, last.version, last.auth,
            bad_ttl[0] if bad_ttl else 255, last.interval, last.addresses, n_wire, n_got, verdict,
            rec.bad_sum, grown, "; ".join(detail), vlan))
    for (iface, family, src), frag in sorted(tally.fragments.items()):
        if (iface, family, src) in frags_used:
            continue  # judged above with what was delivered
        grown = [c for c in counters.grown if family in c.families()]
        report.sources.append(SourceVerdict(
            iface, family, src, frag.dst, frag.vrid if frag.vrid is not None else 0, 0, 0, "-", frag.ttl,
            0.0, (), frag.datagrams, 0, FRAGMENTED, 0, grown, _fragment_detail(frag, 0)))
    heard = {s.interface for s in report.sources if s.verdict != OTHER_VLAN}
    report.nothing_heard = [i for i in interfaces if i not in heard]
    for (iface, _vlan, family, vrid, src), (count, a) in sorted(tally.outbound.items()):
        report.sent.append(SentSummary(iface, family, src, a.dst, vrid, a.priority, a.version, count))
    return report


def _fragment_detail(frag: _Fragments, delivered: int) -> str:
    return (f"{frag.datagrams} datagrams in {frag.fragments} fragments on the wire, {delivered} reassembled "
            "and delivered: keepalived never fragments its adverts (another sender, or a path that "
            "fragments)")


def _overflow_detail(short: int, raw: int, packet: int) -> str:
    lost = []
    if raw:
        lost.append(f"{raw} on its raw sockets")
    if packet:
        lost.append(f"{packet} on its packet socket")
    return (f"{short} not matched, but the kernel dropped packets in the listener's own socket buffers "
            f"({', '.join(lost)}): the shortfall cannot be told from a drop by netfilter")


def _sort_key(k: Tuple[str, str, int, str]) -> Tuple[str, str, int, str]:
    return (k[0], k[1], k[2], k[3])


# --- counters: best effort ---

def _run(argv: Sequence[str]) -> str:
    ran = run(argv, timeout=20).raised()
    if ran.code != 0:
        raise RuntimeError(f"{argv[0]} failed: {(ran.err or ran.out).strip().splitlines()[:1]}")
    return ran.out


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
        except (RuntimeError, ValueError, OSError) as e:
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
            except (RuntimeError, OSError) as e:
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
        self.tally = Tally()
        self.decoded = _DecodeCache()
        self.undecodable = 0
        self.packet_lost: Dict[str, int] = {name: 0 for name in names}
        self.raw_lost: Dict[str, int] = {}
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
        _rcvbuf(s)
        s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)  # the kernel's drop count rides on each packet
        s.setblocking(False)
        return s

    def _packet(self, name: str) -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            _rcvbuf(s)
            s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)  # the VLAN tag the kernel took off the frame
            s.bind((name, ETH_P_ALL))
            # The link type from the bound socket (sysfs would show the
            # namespace it was mounted in, not the one --netns entered).
            if s.getsockname()[3] == ARPHRD_ETHER:
                try:
                    _attach_bpf(s)
                except OSError:
                    pass  # the Python check below still filters
            _packet_drops(s)  # from here on: statistics reset on each read
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
                data, anc, _flags, addr = s.recvmsg(65535, 64)
            except BlockingIOError:
                return
            pkttype, hatype = addr[2], addr[3]
            if pkttype == PACKET_OTHERHOST:
                continue  # unicast for another host (promiscuous or bridged)
            try:
                if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
                    advert = self.decoded.get(frame_key(data), lambda: decode_frame(data))  # noqa: B023
                    vlan = _aux_vlan(anc) or frame_vlan(data)
                elif data[:1] and data[0] >> 4 in (4, 6):
                    advert, vlan = self.decoded.get(ip_key(data), lambda: decode_ip(data)), 0  # noqa: B023
                else:
                    continue
            except FragmentError as frag:
                if frag.proto in PROTOS and pkttype != PACKET_OUTGOING:
                    if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK) and (_aux_vlan(anc) or frame_vlan(data)):
                        self.undecodable += 1  # a fragment for another VLAN: not this interface's
                    else:
                        self.tally.add_fragment(name, frag)
                continue
            except DecodeError:
                if _carries_vrrp_or_ah(data, hatype):
                    self.undecodable += 1
                continue
            self.tally.add_wire(Heard(name, advert, pkttype == PACKET_OUTGOING, vlan))

    def read_raw(self, s: socket.socket, family: str, proto: int) -> None:
        while True:
            try:
                data, anc, _flags, addr = s.recvmsg(65535, 256)
            except BlockingIOError:
                return
            lost = _rxq_ovfl(anc)
            which = f"{family}/{proto}"
            if lost > self.raw_lost.get(which, 0):
                self.raw_lost[which] = lost  # cumulative since the socket was opened
            try:
                if family == "ipv4":
                    ifindex = _ipv4_ifindex(anc)
                    if ifindex not in self.index:
                        continue
                    advert = self.decoded.get(ip_key(data), lambda: decode_ip(data))  # noqa: B023
                else:
                    ifindex, dst, hops = _ipv6_info(anc)
                    if ifindex not in self.index:
                        continue
                    src = str(addr[0]).split("%")[0]
                    key6 = (data, src, dst, hops, proto) if len(data) <= DECODE_CACHE_BYTES else None
                    advert = self.decoded.get(key6, lambda: decode_vrrp(  # noqa: B023
                        data, "ipv6", str(ipaddress.IPv6Address(src)), dst, hops, proto))  # noqa: B023
            except (DecodeError, ValueError):
                continue  # the wire socket counts what cannot be decoded
            self.tally.add_delivered(Heard(self.index[ifindex], advert))

    def read_drops(self) -> None:
        """The sockets' own drops: the packet sockets' statistics (the kernel
        resets them on each read); for the raw sockets, SO_RXQ_OVFL rides only
        on packets queued after a drop, so the socket's drop counter
        (SO_MEMINFO) is read at the end as well."""
        for s, name in self.wire_socks:
            self.packet_lost[name] += _packet_drops(s)
        for s, family, proto in self.raw:
            key = f"{family}/{proto}"
            self.raw_lost[key] = max(self.raw_lost.get(key, 0), _socket_drops(s))

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
        self.read_drops()

    def report(self, seconds: float, group4: str, group6: str, counters: Counters) -> ListenReport:
        overflow = {"packet": {k: v for k, v in self.packet_lost.items() if v},
                    "raw": {k: v for k, v in self.raw_lost.items() if v}}
        return self.tally.report(self.names, seconds, group4, group6, counters, self.undecodable, overflow,
                                 vlan_interfaces())

    def _read(self, s: socket.socket, kind: Tuple[str, ...]) -> None:
        if kind[0] == "wire":
            self.read_wire(s, kind[1])
        else:
            self.read_raw(s, kind[1], int(kind[2]))


class _DecodeCache:
    """Decode each distinct advert once (decoding costs ~40 us, a look-up ~1):
    the key holds every byte the decoder reads, so a hit is the same Advert."""

    def __init__(self) -> None:
        self.cache: Dict[Any, Advert] = {}

    def get(self, key: Any, decode: Callable[[], Advert]) -> Advert:
        advert = self.cache.get(key) if key is not None else None
        if advert is None:
            advert = decode()  # DecodeError (a fragment too) is never cached
            if key is not None:
                if len(self.cache) >= DECODE_CACHE:
                    self.cache.clear()
                self.cache[key] = advert
        return advert


def ip_key(packet: bytes) -> Optional[bytes]:
    """What the decoder reads of an IP packet: for IPv4 all but the ID and
    the header checksum, which change from one advert to the next."""
    if len(packet) > DECODE_CACHE_BYTES or len(packet) < 20:
        return None
    if packet[0] >> 4 == 4:
        return b"4" + packet[0:4] + packet[6:10] + packet[12:]
    return b"6" + packet


def frame_key(frame: bytes) -> Optional[bytes]:
    """:func:`ip_key` of an untagged Ethernet frame's packet (the MACs are
    never read); a tagged or other frame keys by all its bytes."""
    if len(frame) > DECODE_CACHE_BYTES + 14:
        return None
    if frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
        key = ip_key(frame[14:])
        return None if key is None else frame[12:14] + key
    return b"f" + frame


def _rcvbuf(s: socket.socket) -> None:
    """Large receive buffers: SO_RCVBUFFORCE as root, else what rmem_max allows."""
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_FORCE)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)


def _packet_drops(s: socket.socket) -> int:
    """tp_drops of a packet socket's PACKET_STATISTICS since the last read."""
    try:
        _packets, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    except (OSError, struct.error):
        return 0
    return int(drops)


def _socket_drops(s: socket.socket) -> int:
    """The kernel's count of packets dropped at this socket (full buffer)."""
    try:
        info = s.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * (SK_MEMINFO_DROPS + 1))
        return int(struct.unpack_from("@I", info, 4 * SK_MEMINFO_DROPS)[0])
    except (OSError, struct.error):
        return 0


def _aux_vlan(anc: List[Tuple[int, int, bytes]]) -> int:
    """The VLAN ID the kernel took off a frame (PACKET_AUXDATA), 0 if none."""
    for level, kind, data in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 20:
            status = struct.unpack("@I", data[:4])[0]
            tci = struct.unpack("@H", data[16:18])[0]
            if status & TP_STATUS_VLAN_VALID or tci:
                return int(tci & 0x0FFF)
    return 0


def _rxq_ovfl(anc: List[Tuple[int, int, bytes]]) -> int:
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(data) >= 4:
            return int(struct.unpack("@I", data[:4])[0])
    return 0


def vlan_interfaces(path: str = "/proc/net/vlan/config") -> Dict[Tuple[str, int], str]:
    """(parent, VLAN ID) -> the VLAN interface of this network namespace
    (8021q's table; none when the module is not loaded)."""
    out: Dict[Tuple[str, int], str] = {}
    try:
        with open(path) as f:
            for line in f:
                parts = [p.strip() for p in line.split("|")]
                if len(parts) == 3 and parts[1].isdigit():
                    out[(parts[2], int(parts[1]))] = parts[0]
    except OSError:
        pass
    return out


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
    return capture.report(secs, g4, g6, counters)
