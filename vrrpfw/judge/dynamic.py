"""Dynamic state an advert's verdict can depend on: ipsets (the iptables
``set`` match), ``recent`` lists (``/proc/net/xt_recent``) and nft sets
that packets or timeouts change.  Pure: the readers in
:mod:`vrrpfw.judge.read.dynamic` hand the kernel's current contents in as
text, and this module judges a match against them.

The verdict is what the kernel holds *now*.  Where a rule on this host can
fill the state from packets the advert itself matches, the next advert may
meet other contents, so a current "no" is only a maybe.  Where it cannot
(fail2ban fills its ipset from userspace; a ``--set`` rule for ssh only),
the current contents decide, and the verdict names the state it depends on.
"""

from __future__ import annotations

import ipaddress
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from vrrpfw.record import field, record, replace

from ..model import Direction
from .lazy_state import LazyState, dynamic_names, ipset_key, nft_set_key, recent_key  # noqa: F401 (moved there)
from .matches import match_recent, match_rule
from .packet_values import addr_in
from .rules import FwRule, Match, Packet, Tri

# ipset types with the nomatch flag (those with a net dimension).
NOMATCH_TYPES = ("hash:net", "hash:net,net", "hash:net,port", "hash:net,port,net", "hash:net,iface",
                 "hash:ip,port,net")
# How ipset names a protocol in a port dimension; a protocol without ports
# (VRRP, AH) is stored as "proto:0" and an advert matches it with port 0.
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "udplite": 136, "icmp": 1, "icmpv6": 58,
                 "ipv6-icmp": 58, "vrrp": 112, "ah": 51, "esp": 50, "gre": 47}
# Kernel HZ values a distribution builds with: jiffies are compared under each.
HZ_CANDIDATES = (100, 250, 300, 1000)


def _all3(values: Iterable[Tri]) -> Tri:
    out = Tri.YES
    for v in values:
        if v is Tri.NO:
            return Tri.NO
        if v is Tri.MAYBE:
            out = Tri.MAYBE
    return out


def _any3(values: Iterable[Tri]) -> Tri:
    out = Tri.NO
    for v in values:
        if v is Tri.YES:
            return Tri.YES
        if v is Tri.MAYBE:
            out = Tri.MAYBE
    return out


def _not3(t: Tri) -> Tri:
    return t if t is Tri.MAYBE else (Tri.NO if t is Tri.YES else Tri.YES)


# ---------------------------------------------------------------- ipset


@record(frozen=True)
class IpSetEntry:
    dims: Tuple[str, ...]  # one word per dimension, as ipset save prints it
    nomatch: bool = False
    timeout: bool = False  # the entry expires (it counts while it is there)


@record
class IpSet:
    name: str
    type: str  # "hash:ip", "bitmap:ip", "list:set" ...
    family: Optional[str] = None  # "inet" or "inet6"; None: not said (bitmap, mac, list:set)
    netmask: Optional[int] = None
    entries: List[IpSetEntry] = field(default_factory=list)

    @property
    def dimensions(self) -> Tuple[str, ...]:
        """``hash:ip,port`` -> ("ip", "port")."""
        return tuple(self.type.split(":", 1)[1].split(",")) if ":" in self.type else ()

    @property
    def timeouts(self) -> bool:
        return any(e.timeout for e in self.entries)


def parse_ipset_save(text: str) -> Dict[str, IpSet]:
    """``ipset save`` (``ipset list -o save``) output: name -> set."""
    sets: Dict[str, IpSet] = {}
    for raw in text.splitlines():
        words = _split(raw.strip())
        if len(words) >= 3 and words[0] == "create":
            s = IpSet(words[1], words[2])
            opts = words[3:]
            for i, w in enumerate(opts[:-1]):
                if w == "family":
                    s.family = opts[i + 1]
                elif w == "netmask":
                    try:
                        s.netmask = int(opts[i + 1])
                    except ValueError:
                        pass
            sets[s.name] = s
        elif len(words) >= 3 and words[0] == "add" and words[1] in sets:
            rest = words[3:]
            sets[words[1]].entries.append(IpSetEntry(tuple(words[2].split(",")), "nomatch" in rest,
                                                     "timeout" in rest))
    return sets


def _split(line: str) -> List[str]:
    """Words of a save line; a quoted comment is one word."""
    out: List[str] = []
    word, quoted = "", False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch.isspace() and not quoted:
            if word:
                out.append(word)
            word = ""
        else:
            word += ch
    if word:
        out.append(word)
    return out


def _ip_dim(piece: str, addr: Optional[str], within: Optional[str], netmask: Optional[int]) -> Tri:
    """One ip/net dimension of an entry against the packet's address."""
    if "/" not in piece and "-" not in piece and netmask is not None:
        piece = f"{piece}/{netmask}"
    return addr_in(piece, addr, within)


def _port_dim(piece: str, pkt: Packet) -> Tri:
    """``tcp:22``, ``22`` (tcp), ``vrrp:0``: an advert has protocol 112 (51
    wrapped in AH) and, having no ports, port 0."""
    proto, _, port = piece.rpartition(":")
    proto = proto.lower() or "tcp"
    number = PROTO_NUMBERS.get(proto)
    if number is None:
        try:
            number = int(proto)
        except ValueError:
            return Tri.MAYBE
    if "-" in port:
        return Tri.MAYBE
    try:
        return Tri.YES if number == pkt.proto and int(port) == 0 else Tri.NO
    except ValueError:
        return Tri.MAYBE


def _iface_dim(piece: str, iface: Optional[str]) -> Tri:
    if piece.startswith("physdev:") or iface is None:
        return Tri.MAYBE  # bridge ports, or the interface not known (a bridge port)
    if iface == "":
        return Tri.NO
    if piece.endswith("+"):
        return Tri.YES if iface.startswith(piece[:-1]) else Tri.NO
    return Tri.YES if iface == piece else Tri.NO


def _dimension(kind: str, piece: str, src: bool, pkt: Packet, netmask: Optional[int]) -> Tri:
    inbound = pkt.direction is Direction.IN
    if kind in ("ip", "net"):
        if src:
            return _ip_dim(piece, pkt.src, pkt.src_net, netmask)
        return _ip_dim(piece, pkt.dst, None, netmask)
    if kind == "port":
        return _port_dim(piece, pkt)
    if kind == "iface":
        in_if, out_if = (pkt.interface, "") if inbound else ("", pkt.interface)
        return _iface_dim(piece, in_if if src else out_if)
    if kind == "mark":
        if pkt.mark is None:
            return Tri.MAYBE
        try:
            return Tri.YES if int(piece, 0) == pkt.mark else Tri.NO
        except ValueError:
            return Tri.MAYBE
    return Tri.MAYBE  # mac: not known here


def _specificity(entry: IpSetEntry) -> Tuple[int, ...]:
    out = []
    for d in entry.dims:
        _, _, bits = d.partition("/")
        out.append(int(bits) if bits.isdigit() else 128)
    return tuple(out)


def ipset_test(s: IpSet, flags: Sequence[bool], pkt: Packet, sets: Dict[str, IpSet],
               return_nomatch: bool = False, depth: int = 0) -> Tri:
    """Does the kernel's test of set ``s`` (``flags``: True for src per
    dimension) find the advert, with the set's current members?"""
    if s.type == "list:set":
        if depth > 8:
            return Tri.MAYBE
        answers = []
        for e in s.entries:
            member = sets.get(e.dims[0])
            answers.append(Tri.MAYBE if member is None else
                           ipset_test(member, flags, pkt, sets, return_nomatch, depth + 1))
        return _any3(answers)
    dims = s.dimensions
    if not dims or len(flags) < len(dims):
        return Tri.NO  # the kernel refuses a test with fewer flags than dimensions
    if s.family is not None and pkt.family != ("ipv6" if s.family == "inet6" else "ipv4"):
        return Tri.NO
    # A net type answers with its most specific matching entry, which may
    # be a nomatch one; rank the candidates by specificity.
    hits: List[Tuple[Tuple[int, ...], Tri, bool]] = []
    for e in s.entries:
        if len(e.dims) != len(dims):
            return Tri.MAYBE
        t = _all3(_dimension(kind, piece, flags[i], pkt, s.netmask)
                  for i, (kind, piece) in enumerate(zip(dims, e.dims)))
        if t is not Tri.NO:
            hits.append((_specificity(e), t, e.nomatch))
    nomatch_ok = s.type in NOMATCH_TYPES
    if not hits:
        return Tri.NO
    hits.sort(key=lambda h: h[0], reverse=True)
    # Walk from the most specific: the first certain hit decides; maybes
    # above it make the answer uncertain unless they would answer the same.
    outcomes = set()
    for _, t, nomatch in hits:
        found = (nomatch and return_nomatch) if (nomatch_ok and nomatch) else \
            (not (nomatch_ok and return_nomatch))
        outcomes.add(found)
        if t is Tri.YES:
            break
    else:
        outcomes.add(False)  # every candidate may miss
    if len(outcomes) > 1:
        return Tri.MAYBE
    return Tri.YES if outcomes.pop() else Tri.NO


# ---------------------------------------------------------------- recent


@record(frozen=True)
class RecentEntry:
    addr: str
    ttl: int
    stamps: Tuple[int, ...]  # jiffies


def parse_xt_recent(text: str) -> List[RecentEntry]:
    """``/proc/net/xt_recent/NAME``: ``src=A ttl: T last_seen: J oldest_pkt: N J1, J2, ...``."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words or not words[0].startswith("src="):
            continue
        try:
            ttl = int(words[words.index("ttl:") + 1])
            rest = line.split("oldest_pkt:", 1)[1].split(None, 1)
            stamps = tuple(int(w) for w in (rest[1] if len(rest) > 1 else "").replace(",", " ").split())
        except (ValueError, IndexError):
            continue
        out.append(RecentEntry(words[0][4:], ttl, stamps))
    return out


def _hits_now(entry: RecentEntry, seconds: int, jiffies: Optional[int]) -> Optional[int]:
    """Stamps within the last ``seconds``; None where it depends on HZ or
    the time is unknown."""
    if not seconds:
        return len(entry.stamps)
    if jiffies is None:
        return None
    counts = {sum(1 for s in entry.stamps if s >= jiffies - seconds * hz) for hz in HZ_CANDIDATES}
    return counts.pop() if len(counts) == 1 else None


@record
class DynState:
    """The kernel's dynamic state as read now, for one namespace.
    ``ipsets`` None: ipset could not be read (``ipset_unread`` says why).
    ``recent``: list name -> entries (a name missing: not readable).
    ``fillers``: state key -> rules that add to it from packets."""

    ipsets: Optional[Dict[str, IpSet]] = None
    ipset_unread: str = ""
    recent: Dict[str, List[RecentEntry]] = field(default_factory=dict)
    jiffies: Optional[int] = None
    fillers: Dict[str, List[FwRule]] = field(default_factory=dict)

    def fillable(self, key: str, pkt: Packet) -> bool:
        """Can a rule on this host add to ``key`` from a packet the advert
        matches (either way: a sent advert's rule may fill what a received
        one is tested against)?  Judged without dynamic state, so a filler
        that tests another set counts as a maybe."""
        bare = replace(pkt, state=None)
        other = replace(bare, src=None, direction=Direction.OUT if pkt.direction is Direction.IN
                        else Direction.IN)
        rules = list(self.fillers.get(key, ()))
        if key.startswith("ipset "):
            rules += self.fillers.get("ipset *", [])  # a SET target python-iptables could not show
        for rule in rules:
            if match_rule(rule, bare) is not Tri.NO or match_rule(rule, other) is not Tri.NO:
                return True
        return False

    # What the rule evaluator (judge.chaineval) asks of a packet's state: it
    # imports nothing of this module, which imports it.
    def ipset_match(self, m: Match, pkt: Packet) -> Tri:
        return ipset_match(m, pkt)

    def recent_match(self, m: Match, mode: str, neg: bool, pkt: Packet) -> Tri:
        return _recent_list_match(m, mode, neg, pkt, self)

    def names(self, rule: FwRule) -> List[str]:
        return dynamic_names(rule)

    def unread(self, name: str) -> Optional[str]:
        return unread_reason(self, name)

    def now(self) -> Optional[DynState]:
        return self


def ipset_match(m: Match, pkt: Packet) -> Tri:
    """``-m set [!] --match-set NAME src[,dst...] [--return-nomatch]``."""
    words = list(m.param("match-set") or ())
    neg = bool(words) and words[0] == "!"
    if neg:
        words = words[1:]
    if len(words) < 2:
        return Tri.MAYBE
    name, flags = words[0], [f == "src" for f in words[1].split(",")]
    for key, _ in m.params:
        if key.startswith(("packets-", "bytes-")) or key in ("packets", "bytes"):
            return Tri.MAYBE  # counter conditions: not judged
    state: Optional[DynState] = pkt.state
    if state is None or state.ipsets is None or name not in state.ipsets:
        return Tri.MAYBE
    ret_nomatch = m.param("return-nomatch") is not None
    found = ipset_test(state.ipsets[name], flags, pkt, state.ipsets, ret_nomatch)
    if found is not Tri.YES and _ipset_fillable(state, name, pkt):
        found = Tri.MAYBE
    return _not3(found) if neg else found


def _ipset_fillable(state: DynState, name: str, pkt: Packet, depth: int = 0) -> bool:
    if state.fillable(ipset_key(name), pkt):
        return True
    s = (state.ipsets or {}).get(name)
    if s is not None and s.type == "list:set" and depth < 8:
        return any(_ipset_fillable(state, e.dims[0], pkt, depth + 1) for e in s.entries)
    return False


FULL_MASKS = ("255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
# ``-m recent``, judged whole (judge.chaineval: --set, then the list in the packet's state).
recent_match = match_recent


def _recent_list_match(m: Match, mode: str, neg: bool, pkt: Packet, state: DynState) -> Tri:
    """``-m recent`` other than ``--set``: the list ``--name`` as read now."""
    name = (m.param("name") or ("DEFAULT",))[-1]
    if name not in state.recent:
        return Tri.MAYBE
    found = _recent_found(m, mode, state.recent[name], pkt, state.jiffies)
    if found is not Tri.YES and state.fillable(recent_key(name), pkt):
        found = Tri.MAYBE
    return _not3(found) if neg else found


def _number(m: Match, key: str) -> int:
    words = m.param(key)
    try:
        return int(words[-1]) if words else 0
    except ValueError:
        return -1


def _recent_found(m: Match, mode: str, entries: List[RecentEntry], pkt: Packet,
                  jiffies: Optional[int]) -> Tri:
    seconds, hitcount = _number(m, "seconds"), _number(m, "hitcount")
    if seconds < 0 or hitcount < 0 or m.param("reap") is not None and mode == "update":
        return Tri.MAYBE
    dest = m.param("rdest") is not None
    mask_words = m.param("mask")
    addr = pkt.dst if dest else pkt.src
    within = None if dest else pkt.src_net
    answers: List[Tri] = []
    for e in entries:
        try:
            if ipaddress.ip_address(e.addr).version != (6 if pkt.family == "ipv6" else 4):
                continue
        except ValueError:
            return Tri.MAYBE
        net = e.addr
        if mask_words and mask_words[-1] not in FULL_MASKS:
            try:
                net = str(ipaddress.ip_network(f"{e.addr}/{mask_words[-1]}", strict=False))
            except ValueError:
                return Tri.MAYBE
        here = addr_in(net, addr, within)
        if here is Tri.NO:
            continue
        if m.param("rttl") is not None and e.ttl not in (0, pkt.ttl):
            # An entry added by hand (ttl 0) matches any TTL; the advert's
            # TTL / hop limit not known (IPv6 unicast): it may match.
            if pkt.ttl is None:
                answers.append(Tri.MAYBE)
            continue
        if mode == "remove" or (not seconds and not hitcount):
            answers.append(here)
            continue
        hits = _hits_now(e, seconds, jiffies)
        if hits is None:
            answers.append(Tri.MAYBE)
            continue
        answers.append(_all3((here, Tri.YES if hits >= max(hitcount, 1) else Tri.NO)))
    return _any3(answers)


def unread_reason(state: Optional[DynState], name: str) -> Optional[str]:
    """Why the state called ``name`` (see :func:`dynamic_names`) could not
    be read; None where it was."""
    if state is None:
        return "not read"
    if name.startswith("ipset ") and state.ipsets is None:
        return state.ipset_unread or "ipset save failed"
    if name.startswith("ipset ") and name[6:] not in (state.ipsets or {}):
        return "no such set"
    if name.startswith("recent list ") and name[12:] not in state.recent:
        return f"/proc/net/xt_recent/{name[12:]} not readable"
    return None


def fillers_of(rules: Iterable[FwRule]) -> Dict[str, List[FwRule]]:
    """State key -> the rules that add to it from the packets they match."""
    out: Dict[str, List[FwRule]] = {}
    for rule in rules:
        for key in fill_keys(rule):
            out.setdefault(key, []).append(rule)
    return out


def fill_keys(rule: FwRule) -> List[str]:
    """The dynamic state a rule adds to from the packets it matches."""
    out = [e.split(":", 1)[1] for e in rule.effects if e.startswith("fills:")]
    for m in rule.matches:
        if m.name == "recent" and m.param("set") is not None:
            out.append(recent_key((m.param("name") or ("DEFAULT",))[-1]))
    return out
