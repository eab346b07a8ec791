"""From the adverts heard on the wire and those delivered to the sockets to
one verdict per source: the bounded :class:`Tally` the capture feeds, and
:func:`aggregate` / :func:`_judge`, which turn it into a
:class:`~vrrpfw.listen.report.ListenReport`.

A wire advert and a delivered one are the same packet when interface,
source, destination, protocol and a hash of the bytes from the VRRP (or AH)
header on agree; identical adverts repeat every interval, so the match is
by multiset (delivered n of m).  Memory is bounded: the capture feeds a
:class:`Tally` (counters per source and one sample, MAX_* limits), never a
list of adverts.

Split from :mod:`.listener`: pure logic, tested without sockets.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Dict, Iterable, Optional, Sequence, Tuple

from .packet import (
    Advert,
    FragmentError,
)
from .report import (
    CAPTURE_OVERFLOW,
    DELIVERED,
    DROPPED,
    FAMILIES,
    FRAGMENTED,
    GROUP4,
    GROUP6,
    MAX_ADDRESS_SETS,
    MAX_BODIES,
    MAX_GROUPS,
    MAX_SOURCES,
    OTHER_VLAN,
    TTL_NOT_255,
    VRID_CONFLICT,
    WRONG_GROUP,
    Counters,
    Heard,
    ListenReport,
    SentSummary,
    SourceVerdict,
)

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
