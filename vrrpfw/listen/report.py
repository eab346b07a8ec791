"""What ``vrrpfw check --listen`` reports: the adverts heard (:class:`Heard`),
one verdict per source (:class:`SourceVerdict`), this host's own adverts
(:class:`SentSummary`), the firewall counters that grew
(:class:`CounterGrowth`, :class:`Counters`) and the whole
:class:`ListenReport` with its exit code, plus the words of the verdicts
and the memory bounds (MAX_*).

Split from :mod:`.listener` as the layer every other part of the listener
shares (capture, counters and verdicts all speak in these types).

Exit codes (``ListenReport.exit_code``): 0 every advert heard was delivered;
1 something dropped here (fully or partly), TTL not 255, a wrong group, a
VRID conflict, fragmented adverts, a capture that overflowed (uncertain),
sources past MAX_SOURCES, or an interface heard nothing while another heard
adverts; 5 (EXIT_NOTHING_HEARD) no advert at all on any interface (adverts
for another VLAN do not count).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from vrrpfw.record import field, record

from ..errors import EXIT_NOT_ALLOWED, EXIT_OK
from .packet import (
    Advert,
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


# Memory bounds: whatever the wire carries, a listen keeps at most this much.
MAX_SOURCES = 256  # (interface, VLAN, family, VRID, source) tracked; more are counted, not judged
MAX_BODIES = 16  # distinct advert bodies (digests) matched per source; more share one counter
MAX_ADDRESS_SETS = 4  # distinct virtual address sets kept per source (for VRID conflicts)
MAX_GROUPS = 8  # distinct destinations kept per source


@record(frozen=True)
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


@record(frozen=True)
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


@record
class Counters:
    grown: List[CounterGrowth] = field(default_factory=list)
    not_read: List[str] = field(default_factory=list)


@record
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


@record
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


@record
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
