"""``vrrpfw prove``: the kernel is the judge.

Reading rules can only say what we think they do; ``prove`` replays this
host's packet filter in throw-away namespaces (:mod:`vrrpfw.replica`) and
sends real adverts through it, both directions, as things are today and
after the change ``vrrpfw open`` would make (run for real, but inside the
replica, with ``--no-persist`` and no way to reach the system D-Bus).  The
host itself is only read.

Per interface two replicas are built side by side, one measured as is and
one opened then measured, so the two measurements overlap in time.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .errors import EXIT_ENVIRONMENT, EXIT_NOT_ALLOWED, EXIT_OK, InputError, VrrpfwError
from .model import DEFAULT_GROUP4, validate_group, validate_interface
from .netns import first_line, guard_signals
from .replica import Delivery, Replica, Snapshot, capture_iface, capture_rules, plan_peers, replica

BACKENDS = ("auto", "iptables", "nftables", "firewalld")
# Where the replica's vrrpfw looks for the system bus: nowhere.  A path
# socket is reachable from any network namespace, so without this an
# `open` inside the replica could talk to the real firewalld.
NO_BUS = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/vrrpfw-prove-has-no-bus"}


@dataclass
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


@dataclass
class InterfaceProof:
    iface: str
    count: int
    today: Optional[Delivery] = None
    after: Optional[Delivery] = None
    opened: Optional[OpenRun] = None
    limits: List[str] = field(default_factory=list)
    error: Optional[str] = None  # the replica could not be built

    def to_dict(self) -> Dict[str, Any]:
        return {"iface": self.iface, "count": self.count,
                "today": self.today.to_dict() if self.today else None,
                "after": self.after.to_dict() if self.after else None,
                "open": self.opened.to_dict() if self.opened else None,
                "limits": self.limits, "error": self.error}

    def lines(self) -> List[str]:
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


@dataclass
class ProofResult:
    group: str
    backend: str
    count: int
    interfaces: List[InterfaceProof] = field(default_factory=list)

    @property
    def limits(self) -> List[str]:
        seen: List[str] = []
        for i in self.interfaces:
            seen.extend(x for x in i.limits if x not in seen)
        return seen

    @property
    def exit_code(self) -> int:
        """0: after open every advert gets through both ways on every
        interface; 3: a replica could not be built; 1: otherwise (including
        "after" not measurable)."""
        if any(i.error for i in self.interfaces):
            return EXIT_ENVIRONMENT
        if all(i.after is not None and i.after.ok for i in self.interfaces):
            return EXIT_OK
        return EXIT_NOT_ALLOWED

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    def to_dict(self) -> Dict[str, Any]:
        return {"command": "prove", "group": self.group, "backend": self.backend, "count": self.count,
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


def open_in(r: Replica, group: str, backend: str) -> OpenRun:
    """Run the real ``vrrpfw open`` inside the replica's host namespace."""
    argv = [sys.executable, "-m", "vrrpfw", "open", "--iface", r.iface, "--group", group,
            "--backend", backend, "--no-persist", "--json"]
    proc = r.host.run(argv, check=False, timeout=300, env=NO_BUS)
    return parse_open_output(proc.returncode, proc.stdout, proc.stderr)


def _today(snap: Snapshot, peers: Sequence[str], count: int, group: str, seconds: float) -> Delivery:
    with replica(snap, peers) as r:
        return r.measure(count, group, seconds)


def _after(snap: Snapshot, peers: Sequence[str], count: int, group: str, backend: str,
           seconds: float, proof: InterfaceProof) -> Optional[Delivery]:
    with replica(snap, peers) as r:
        proof.limits = r.limits
        proof.opened = open_in(r, group, backend)
        if proof.opened.exit_code not in (EXIT_OK, EXIT_NOT_ALLOWED):
            proof.limits.append(f"after: not measured: vrrpfw open could not run in the replica "
                                f"({proof.opened.error})")
            return None
        return r.measure(count, group, seconds)


def _prove_one(snap: Snapshot, peers: Sequence[str], count: int, group: str, backend: str,
               seconds: float, pool: ThreadPoolExecutor) -> InterfaceProof:
    proof = InterfaceProof(snap.iface, count)
    today = pool.submit(_today, snap, peers, count, group, seconds)
    after = pool.submit(_after, snap, peers, count, group, backend, seconds, proof)
    try:
        proof.today = today.result()
        proof.after = after.result()
    except VrrpfwError as e:
        proof.error = str(e)
        proof.today = proof.after = None
    return proof


def prove(interfaces: Sequence[str], group: str = DEFAULT_GROUP4, peers: Sequence[str] = (),
          backend: str = "auto", count: int = 20, seconds: float = 2.0) -> ProofResult:
    """Measure VRRP delivery on each interface in a replica of this host's
    packet filter, today and after ``vrrpfw open``.  Reads the host; writes
    only inside namespaces it creates and always deletes."""
    ifaces = [validate_interface(i) for i in interfaces]
    if not ifaces:
        raise InputError("prove needs at least one --iface")
    group = validate_group(group)
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if not 1 <= count <= 10000:
        raise InputError(f"count {count} is out of range (1..10000)")
    result = ProofResult(group, backend, count)
    with guard_signals():
        base = capture_rules()
        snaps = [capture_iface(base, i) for i in ifaces]
        for s in snaps:
            plan_peers(s.iface, s.addrs, peers)  # bad --peer: InputError before building anything
        with ThreadPoolExecutor(max_workers=min(8, 2 * len(snaps) + 2)) as pool:
            # Each interface's two replicas run side by side; interfaces one after another
            # so a host with many interfaces does not build dozens of namespaces at once.
            for s in snaps:
                result.interfaces.append(_prove_one(s, peers, count, group, backend, seconds, pool))
    return result


def error_line(e: VrrpfwError) -> str:
    return first_line(str(e))
