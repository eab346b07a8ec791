"""A replica of this host's packet filter, in throw-away namespaces.

Why a replica: what decides whether an advert gets through is the kernel,
not our reading of the rules.  We copy what the kernel decides with (the
legacy tables, the nf_tables ruleset, ipsets, the sysctls that gate
multicast delivery, the interface's name and addresses) into a fresh
namespace joined to a "peer" namespace by a veth, and let real packets
find out.  :mod:`.snapshot` reads the host (``capture`` only reads) and
says what cannot be copied (``limits``); :mod:`.addresses` plans both ends'
addresses; this module builds the replica and only writes inside the
namespaces it creates.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, TypeVar

from vrrpfw.record import record

from ..environment import XTABLES_LOCK_VAR
from ..errors import EnvironmentProblem
from .addresses import PeerPlan, neighbour_in, plan_peers
from .netns import (
    CommandFailed,
    Namespace,
    Popen,
    add_addresses,
    first_line,
    namespace,
    release,
    veth,
    wait_operstate_up,
)
from .snapshot import NftTable, Snapshot, split_tables, static_limits
from .traffic import GROUP, Counts, Shape, both_ways

PEER_IF = "vrrppeer0"
# The peer-namespace ends of the idle veths made for interfaces the ruleset names.
NAMED_PEER_PREFIX = "vpx"


@record
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


@record
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


def save_tables(save: Optional[str]) -> Set[str]:
    """The ``*table`` sections of an iptables-save text."""
    return {line[1:].strip() for line in (save or "").splitlines() if line.startswith("*")}


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


# ---------------------------------------------------------------- the replica

@record
class Replica:
    host: Namespace
    peer: Namespace
    iface: str
    peer_if: str
    sources: List[str]
    limits: List[str]
    plan: Optional[PeerPlan] = None
    local: Optional[str] = None  # unicast: the host's address (keepalived's unicast_src_ip)
    prestarted: Optional[Popen] = None  # what replica()'s ``prestart`` started in ``host``

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
    if not snap.named():
        return []  # nothing to make: no need to list what the namespace has
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


T = TypeVar("T")
U = TypeVar("U")


def _both(first: Callable[[], T], second: Callable[[], U]) -> Tuple[T, U]:
    """Run ``first`` here and ``second`` in a thread, side by side; both
    finish before this returns, and ``first``'s exception wins."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(second)
        try:
            a = first()
        finally:
            futures_wait([other])
        return a, other.result()


@contextlib.contextmanager
def _private_xtables_lock() -> Iterator[str]:
    """A path for the replica's own xtables lock (``XTABLES_LOCKFILE``) in a
    private directory, removed afterwards.  Every iptables writer of the
    replica's host namespace takes it (its restores, ``vrrpfw open``): they
    still exclude each other, but no longer wait for the machine's
    ``/run/xtables.lock``, which serialised the two replicas' restores (a
    lock is per file, not per namespace) and made prove wait for, and hold
    up, the host's own iptables writers."""
    path = tempfile.mkdtemp(prefix="vrrpfw-prove-")
    try:
        yield os.path.join(path, "xtables.lock")
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _started(host: Namespace, prestart: Optional[Callable[[Namespace], Popen]]) -> Iterator[Optional[Popen]]:
    proc = prestart(host) if prestart is not None else None
    try:
        yield proc
    finally:
        if proc is not None:
            release(proc)


@contextlib.contextmanager
def replica(snap: Snapshot, peers: Sequence[str] = (), local: Optional[str] = None,
            prestart: Optional[Callable[[Namespace], Popen]] = None) -> Iterator[Replica]:
    """Build the replica (host + peer namespaces, veth, IPv4 and IPv6
    addresses, sysctls, rulesets: legacy, ip6tables legacy, nf_tables) and
    delete it on the way out, whatever happens.  ``local``: the host's
    unicast address where it is not the interface's first one.
    ``prestart``: starts a process in the host namespace as soon as that
    exists (``Replica.prestarted``), so that its start-up overlaps the
    build; it must wait for the caller's word before it reads anything,
    and is killed, if still running, before the replica is deleted."""
    plan = plan_peers(snap.iface, snap.addrs, peers, snap.addrs6)
    with contextlib.ExitStack() as stack:
        lock = stack.enter_context(_private_xtables_lock())
        host = stack.enter_context(namespace("vph"))
        host.env[XTABLES_LOCK_VAR] = lock
        prestarted = stack.enter_context(_started(host, prestart))
        peer = stack.enter_context(namespace("vpp"))
        # The ipsets and legacy tables need no interface (iptables matches
        # interfaces by name; nft resolves them when loading): they load
        # while the links are made.
        named, _ = _both(lambda: _build(host, peer, snap, plan), lambda: _load_legacy(host, snap))
        limits = static_limits(snap) + plan.limits + named

        def load_host() -> None:
            if snap.nft_ruleset or snap.iptnft_save or snap.iptnft6_save:
                limits.extend(_load_nft(host, snap))
            wait_operstate_up(host, snap.iface)

        _both(load_host, lambda: wait_operstate_up(peer, PEER_IF))
        yield Replica(host, peer, snap.iface, PEER_IF, plan.sources, limits, plan, local, prestarted)


def _load_legacy(host: Namespace, snap: Snapshot) -> None:
    """The ipsets, then the legacy tables that match on them."""
    if snap.ipset:
        _load(host, "ipset restore", ["ipset", "restore", "-exist"], snap.ipset)
    if snap.legacy_save:
        _load(host, "iptables-legacy-restore", ["iptables-legacy-restore", "-w", "30"], snap.legacy_save)
    if snap.legacy6_save:
        _load(host, "ip6tables-legacy-restore", ["ip6tables-legacy-restore", "-w", "30"], snap.legacy6_save)


def _build(host: Namespace, peer: Namespace, snap: Snapshot, plan: PeerPlan) -> List[str]:
    """The links, addresses, neighbours and sysctls of both ends, up; the
    limits of the stand-ins for the interfaces the ruleset names."""
    if snap.bridge_port:
        _bridge(host, peer, snap)
    else:
        veth(host, snap.iface, peer, PEER_IF)
    named = _make_named_links(host, peer, snap)

    # The two ends are set up side by side (their commands touch one
    # namespace each); each end in the order it always had.
    def prepare(ns: Namespace, ifname: str, cidrs: Sequence[str]) -> str:
        try:
            _ipv6_ready(ns, ifname)
        except CommandFailed as e:
            raise EnvironmentProblem(f"replica: preparing IPv6 failed: {first_line(e.stderr)}") from None
        add_addresses(ns, ifname, cidrs)
        return _mac(ns, ifname)

    host_mac, peer_mac = _both(
        lambda: prepare(host, snap.iface, [*plan.host_cidrs, *[f"{c} nodad" for c in plan.host_cidrs6]]),
        lambda: prepare(peer, PEER_IF, [*plan.peer_cidrs, *[f"{c} nodad" for c in plan.peer_cidrs6]]))

    def finish_host() -> None:
        _pin_neighbours(host, snap.iface, plan.peer_cidrs + plan.peer_cidrs6, peer_mac)
        if snap.sysctls:
            try:
                host.run(["sysctl", "-q", "-w", *[f"{k}={v}" for k, v in snap.sysctls.items()]])
            except CommandFailed as e:
                raise EnvironmentProblem(f"replica: setting sysctls failed: {first_line(e.stderr)}"
                                         ) from None
        host.ip("link", "set", snap.iface, "up")

    def finish_peer() -> None:
        _pin_neighbours(peer, PEER_IF, plan.host_cidrs + plan.host_cidrs6, host_mac)
        peer.ip("link", "set", PEER_IF, "up")

    _both(finish_host, finish_peer)
    return named
