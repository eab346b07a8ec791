"""``vrrpfw prove``: the kernel is the judge.

Reading rules can only say what we think they do; ``prove`` replays this
host's packet filter in throw-away namespaces (:mod:`vrrpfw.prove.replica`) and
sends real adverts through it, both directions, as things are today and
after the change ``vrrpfw open`` would make (run for real, but inside the
replica, with ``--no-persist`` and no way to reach the system D-Bus).  The
host itself is only read.

Per interface two replicas are built side by side, one measured as is and
one opened then measured, so the two measurements overlap in time.

Every advert shape keepalived sends can be proved: IPv4 or IPv6 multicast
(the family of ``group``), unicast between this host's address and each
peer (``unicast``), wrapped in AH (``ah``); the replica then carries the
host's ip6tables and ip6 nf_tables rules and IPv6 addresses too, and
``vrrpfw open`` in it gets the same options.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vrrpfw.record import field, record

from .. import environment
from ..errors import EXIT_ENVIRONMENT, EXIT_NOT_ALLOWED, EXIT_OK, EnvironmentProblem, InputError, VrrpfwError
from ..host.run import TimeoutExpired
from ..model import (
    AH_PROTO,
    DEFAULT_GROUP4,
    VRRP_PROTO,
    Family,
    validate_address,
    validate_group,
    validate_interface,
    validate_sources,
)
from .addresses import plan_peers
from .netns import Namespace, Popen, first_line, guard_signals
from .replica import Delivery, Replica, replica
from .snapshot import Snapshot, capture_iface, capture_rules, static_limits
from .traffic import Shape

BACKENDS = ("auto", "iptables", "nftables", "firewalld")
# Where the replica's vrrpfw looks for the system bus: nowhere.  A path
# socket is reachable from any network namespace, so without this an
# `open` inside the replica could talk to the real firewalld.
NO_BUS = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/vrrpfw-prove-has-no-bus"}


@record
class OpenRun:
    """What ``vrrpfw open`` planned and did inside the replica."""

    exit_code: int
    backend: str = ""
    changed: bool = False
    planned: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # open's warnings and blockers
    error: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"exit_code": self.exit_code, "backend": self.backend, "changed": self.changed,
                "planned": self.planned, "notes": self.notes, "error": self.error}


@record
class InterfaceProof:
    iface: str
    count: int
    today: Optional[Delivery] = None
    after: Optional[Delivery] = None
    opened: Optional[OpenRun] = None
    limits: List[str] = field(default_factory=list)
    error: Optional[str] = None  # the replica could not be built
    # What on this interface's host path the replica cannot replay: then no
    # replay is run, and the result is "cannot tell" (never a number that is
    # not the host's).
    cannot_tell: List[str] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        """A result was measured (neither "cannot tell" nor a build error)."""
        return not self.cannot_tell and not self.error and self.today is not None

    def to_dict(self) -> Dict[str, Any]:
        return {"iface": self.iface, "count": self.count, "cannot_tell": self.cannot_tell,
                "today": self.today.to_dict() if self.today else None,
                "after": self.after.to_dict() if self.after else None,
                "open": self.opened.to_dict() if self.opened else None,
                "limits": self.limits, "error": self.error}

    def lines(self) -> List[str]:
        if self.cannot_tell:
            return [f"{self.iface}: cannot tell: {why}" for why in self.cannot_tell]
        if self.error:
            return [f"{self.iface}: replica could not be built: {self.error}"]
        assert self.today is not None
        parts = []
        many = len(self.today.inbound) > 1
        for src, today in self.today.inbound.items():
            label = f"inbound from {src}" if many else "inbound"
            after = self.after.inbound[src].text() if self.after else "not measured"
            parts.append(f"{label} today {today.text()}, after open {after}")
        after_out = self.after.outbound.text() if self.after else "not measured"
        parts.append(f"outbound today {self.today.outbound.text()}, after open {after_out}")
        out = [f"{self.iface}: " + "; ".join(parts)]
        if self.opened is not None:
            if self.opened.error:
                out.append(f"{self.iface}: open in the replica failed (exit {self.opened.exit_code}): "
                           f"{self.opened.error}")
            for p in self.opened.planned:
                out.append(f"{self.iface}: open would {p}")
            if not self.opened.planned and not self.opened.error:
                out.append(f"{self.iface}: open would change nothing")
            out.extend(f"{self.iface}: open says: {n}" for n in self.opened.notes)
        return out


@record
class ProofResult:
    group: str
    backend: str
    count: int
    interfaces: List[InterfaceProof] = field(default_factory=list)
    shape: str = "ipv4"  # the advert shape measured (vrrpfw.prove.traffic.Shape.name)

    @property
    def limits(self) -> List[str]:
        seen: List[str] = []
        for i in self.interfaces:
            seen.extend(x for x in i.limits if x not in seen)
        return seen

    @property
    def exit_code(self) -> int:
        """0: after open every advert gets through both ways on every
        interface; 3: no result for some interface (a replica could not be
        built, or "cannot tell": something on its path is not replayable);
        1: otherwise (including "after" not measurable)."""
        if any(i.error or i.cannot_tell for i in self.interfaces):
            return EXIT_ENVIRONMENT
        if all(i.after is not None and i.after.ok for i in self.interfaces):
            return EXIT_OK
        return EXIT_NOT_ALLOWED

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    def to_dict(self) -> Dict[str, Any]:
        return {"command": "prove", "group": self.group, "shape": self.shape, "backend": self.backend,
                "count": self.count,
                "ok": self.ok, "exit_code": self.exit_code,
                "interfaces": [i.to_dict() for i in self.interfaces], "limits": self.limits}

    def plain(self) -> str:
        lines = [line for i in self.interfaces for line in i.lines()]
        if self.limits:
            lines.append("limits:")
            lines.extend(f"  - {x}" for x in self.limits)
        return "\n".join(lines) + "\n"


def parse_open_output(exit_code: int, stdout: str, stderr: str) -> OpenRun:
    """``vrrpfw open --json`` output (or its failure) as an OpenRun."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return OpenRun(exit_code, error=_last_line(stderr) or "no output")
    if not isinstance(data, dict):
        return OpenRun(exit_code, error="unexpected output")
    if "error" in data and "backend" not in data:
        return OpenRun(exit_code, error=str(data["error"]))
    planned = [str(p) for p in data.get("planned") or []]
    notes = [str(w) for w in data.get("warnings") or []]
    notes += [f"still blocked by {b}" for b in data.get("blockers") or []]
    error = None if exit_code in (EXIT_OK, EXIT_NOT_ALLOWED) else (_last_line(stderr) or "failed")
    return OpenRun(exit_code, str(data.get("backend", "")), bool(data.get("changed")), planned, notes, error)


def _last_line(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return lines[-1] if lines else ""


@record(frozen=True)
class Ask:
    """What one proof measures and what ``open`` in the replica is asked:
    the shape, the group (multicast), the peers (the sources of multicast
    adverts, or the unicast peers), this host's unicast address, and the
    open options that do not change the packets (``strict``)."""

    shape: Shape
    group: str
    peers: Tuple[str, ...] = ()
    local: Optional[str] = None
    strict: bool = False
    named: bool = False  # multicast: the peers were named with --from (open in the replica gets them)

    def open_args(self) -> List[str]:
        args = ([a for p in self.peers for a in ("--peer", p)] if self.shape.unicast
                else ["--group", self.group])
        if self.named and not self.shape.unicast:
            args += [a for p in self.peers for a in ("--from", p)]
        if self.shape.unicast and self.local:
            args += ["--src", self.local]
        if self.shape.proto == AH_PROTO:
            args.append("--ah")
        if self.strict:
            args.append("--strict")
        return args


def open_argv(iface: str, group: str, backend: str, ask: Optional[Ask] = None) -> List[str]:
    """``vrrpfw open``'s arguments in the replica (after ``python -m vrrpfw``)."""
    args = ask.open_args() if ask is not None else ["--group", group]
    return ["open", "--iface", iface, *args, "--backend", backend, "--no-persist", "--json"]


# What `vrrpfw open` imports once it runs, beyond what `python -m vrrpfw`
# imports first ("module" or "module:function to call").  Only speed hangs on
# this list: a module missing from it is imported after "go", as it always
# was, and a name that does not import is skipped.
# python-iptables only where the replica holds legacy tables (OPEN_PRELOAD_LEGACY):
# elsewhere `open` never loads it, and preloading it would make every prove
# reach it; never dbus-python (the replica has no bus: NO_BUS).
OPEN_PRELOAD = ("vrrpfw.cli.entry", "vrrpfw.cli.help_text", "vrrpfw.api", "vrrpfw.cli.render",
                "vrrpfw.host.hostscan", "vrrpfw.judge.read.model", "vrrpfw.judge.read.bridges",
                "vrrpfw.persist.iptables_line")
OPEN_PRELOAD_LEGACY = ("vrrpfw.judge.read.legacy", "vrrpfw.backends.xtables_lock",
                       "vrrpfw.judge.read.iptc_loader:load_iptc")
# `python -m vrrpfw ARGS`, except that the interpreter starts (and imports
# OPEN_PRELOAD, which reads nothing of the firewall) while the replica is
# still being built, and runs vrrpfw only once "go" arrives on stdin, when
# the replica is complete; anything else (EOF: prove gave up) runs nothing.
OPEN_BOOT = """\
import importlib, sys
for name in sys.argv.pop(1).split(","):
    module, _, call = name.partition(":")
    try:
        loaded = importlib.import_module(module)
        if call:
            getattr(loaded, call)()
    except Exception:
        pass
if sys.stdin.readline() != "go\\n":
    sys.exit(125)
import runpy
runpy.run_module("vrrpfw", run_name="__main__", alter_sys=True)
"""


def open_preload(snap: Snapshot, backend: str) -> Tuple[str, ...]:
    """What the prestarted ``open`` imports while it waits: python-iptables
    too where the replica holds legacy tables or ``--backend iptables`` asks
    for them."""
    legacy = snap.legacy_save is not None or snap.legacy6_save is not None or backend == "iptables"
    return OPEN_PRELOAD + (OPEN_PRELOAD_LEGACY if legacy else ())


def start_open(host: Namespace, argv: Sequence[str], preload: Sequence[str] = OPEN_PRELOAD) -> Popen:
    """``vrrpfw open`` (``argv``: :func:`open_argv`) started in ``host``,
    importing ``preload`` (:func:`open_preload`) while it waits for
    :func:`open_in` to say go."""
    return host.popen([sys.executable, "-c", OPEN_BOOT, ",".join(preload), *argv], env=NO_BUS,
                      stdin=True)


def open_in(r: Replica, group: str, backend: str, ask: Optional[Ask] = None) -> OpenRun:
    """Run the real ``vrrpfw open`` inside the replica's host namespace: the
    one replica() prestarted (:func:`start_open`), else a new one."""
    argv = open_argv(r.iface, group, backend, ask)
    if r.prestarted is None:
        proc = r.host.run([sys.executable, "-m", "vrrpfw", *argv], check=False, timeout=300, env=NO_BUS)
        return parse_open_output(proc.returncode, proc.stdout, proc.stderr)
    try:
        out, err = r.prestarted.communicate("go\n", timeout=300)
    except TimeoutExpired:
        raise EnvironmentProblem("vrrpfw open in the replica did not finish within 300 s") from None
    return parse_open_output(r.prestarted.returncode, out, err)


def _today(snap: Snapshot, ask: Ask, count: int, seconds: float) -> Delivery:
    with replica(snap, ask.peers, ask.local) as r:
        return r.measure(count, ask.group, seconds, ask.shape)


def _after(snap: Snapshot, ask: Ask, count: int, backend: str, seconds: float,
           proof: InterfaceProof) -> Optional[Delivery]:
    argv = open_argv(snap.iface, ask.group, backend, ask)
    preload = open_preload(snap, backend)
    with replica(snap, ask.peers, ask.local, prestart=lambda host: start_open(host, argv, preload)) as r:
        proof.limits = r.limits
        proof.opened = open_in(r, ask.group, backend, ask)
        if proof.opened.exit_code not in (EXIT_OK, EXIT_NOT_ALLOWED):
            proof.limits.append(f"after: not measured: vrrpfw open could not run in the replica "
                                f"({proof.opened.error})")
            return None
        return r.measure(count, ask.group, seconds, ask.shape)


def _prove_one(snap: Snapshot, ask: Ask, count: int, backend: str, seconds: float,
               pool: ThreadPoolExecutor) -> InterfaceProof:
    proof = InterfaceProof(snap.iface, count)
    if snap.cannot_tell:
        proof.cannot_tell = list(snap.cannot_tell)
        proof.limits = static_limits(snap)
        return proof
    today = pool.submit(_today, snap, ask, count, seconds)
    after = pool.submit(_after, snap, ask, count, backend, seconds, proof)
    try:
        proof.today = today.result()
        proof.after = after.result()
    except VrrpfwError as e:
        proof.error = str(e)
        proof.today = proof.after = None
    return proof


def _shape(group: str, peers: Sequence[str], unicast: bool, ah: bool) -> Shape:
    """The advert keepalived sends: the family of the group, or of the
    unicast peers (one family per proof); AH only over IPv4, as keepalived."""
    if unicast:
        if not peers:
            raise InputError("unicast: give the peers' addresses (--peer)")
        fams = {Family.of(validate_address(p, "peer")) for p in peers}
        if len(fams) > 1:
            raise InputError("unicast peers of both families: prove one family at a time")
        family = fams.pop()
    else:
        family = Family.of(group)
    if ah and family is Family.IPV6:
        raise InputError("--ah: keepalived refuses AH authentication with IPv6; AH exists only in "
                         "VRRPv2 over IPv4")
    return Shape(family.value, AH_PROTO if ah else VRRP_PROTO, unicast)


def _local(snap: Snapshot, shape: Shape, src: Optional[str]) -> Optional[str]:
    """This host's unicast address: ``src``, else what ``vrrpfw open``
    itself would take (the interface's primary address of the family: IPv6's
    link-local one), read from the snapshot."""
    if not shape.unicast:
        return None
    if src is not None:
        return validate_address(src, "--src address")
    cidrs = snap.addrs if shape.family == "ipv4" else [
        c for c in snap.addrs6 if c.lower().startswith("fe80")]
    return cidrs[0].split("/")[0] if cidrs else None


def prove(interfaces: Sequence[str], group: str = DEFAULT_GROUP4, peers: Sequence[str] = (),
          backend: str = "auto", count: int = 20, seconds: float = 2.0, unicast: bool = False,
          src: Optional[str] = None, ah: bool = False, strict: bool = False,
          sources: Sequence[str] = ()) -> ProofResult:
    """Measure VRRP delivery on each interface in a replica of this host's
    packet filter, today and after ``vrrpfw open``.  Reads the host; writes
    only inside namespaces it creates and always deletes.

    Multicast (default): adverts to ``group`` (IPv4 or IPv6), from each of
    ``peers`` (else a made-up neighbour).  ``unicast``: adverts between this
    host's ``src`` (default: the interface's primary address of the peers'
    family, as ``open`` takes it) and each of ``peers``.  ``ah``: wrapped in
    AH (IP protocol 51).  ``strict``: ``open`` in the replica gets
    ``--strict`` (adverts are sent with TTL 255, as keepalived sends them).
    ``sources`` (``--from``): multicast adverts from exactly these peers,
    and ``open`` in the replica is given them too."""
    environment.check()  # the replicas' `vrrpfw open` would refuse a bad variable as "cannot tell"
    ifaces = [validate_interface(i) for i in interfaces]
    if not ifaces:
        raise InputError("prove needs at least one --iface")
    group = validate_group(group)
    if backend not in BACKENDS:  # ufw: its configuration is the host's, a replica has none of its own
        raise InputError(f"prove does not replay --backend {backend}; choose one of: {', '.join(BACKENDS)} "
                         "(auto replays what ufw loaded, as it replays every layer)")
    if not 1 <= count <= 10000:
        raise InputError(f"count {count} is out of range (1..10000)")
    froms = validate_sources(sources)
    if froms and (unicast or peers):
        raise InputError("--from names the sources of multicast adverts; --peer means unicast "
                         "(keepalived's unicast_peer): give one")
    for a in froms:
        if Family.of(a) is not Family.of(group):
            raise InputError(f"--from {a} is not of the group {group}'s family")
    if froms:
        peers = froms
    shape = _shape(group, peers, unicast, ah)
    result = ProofResult(group, backend, count, shape=shape.name)
    with guard_signals():
        base = capture_rules()
        snaps = [capture_iface(base, i) for i in ifaces]
        asks = []
        for s in snaps:
            plan_peers(s.iface, s.addrs, peers, s.addrs6)  # bad --peer: InputError before building anything
            local = _local(s, shape, src)
            if shape.unicast and local is None:
                raise InputError(f"interface {s.iface} has no {shape.family} address to send unicast "
                                 "adverts from; give src")
            asks.append(Ask(shape, group, tuple(peers), local, strict, bool(froms)))
        with ThreadPoolExecutor(max_workers=min(8, 2 * len(snaps) + 2)) as pool:
            # Each interface's two replicas run side by side; interfaces one after another
            # so a host with many interfaces does not build dozens of namespaces at once.
            for s, ask in zip(snaps, asks):
                result.interfaces.append(_prove_one(s, ask, count, backend, seconds, pool))
    return result


def error_line(e: VrrpfwError) -> str:
    return first_line(str(e))
