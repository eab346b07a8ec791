"""The differential corpus: real-world rulesets, judged by vrrpfw and by the
kernel.

Each case in tests/corpus/ is replayed in throwaway namespaces (the replica
``vrrpfw prove`` uses), real adverts are sent both ways, and vrrpfw's static
``check`` runs inside the replica.  A definite verdict must be what the
packets did: ``allowed``/``allowed-by-other``/``allowed-by-policy`` means
every advert arrived, ``missing``/``shadowed`` means none did; anything
else must be ``uncertain``.  Then ``open`` must make every advert arrive (or
exit non-zero saying why it cannot: firewalld's table without firewalld),
and ``close`` must restore the ruleset and the kernel's original outcome.

The same holds per advert shape a case declares (``# shape:``: IPv6,
unicast, AH): the shape's adverts are replayed, and both the static verdict
over the replica's rules and ``vrrpfw check`` with the shape's options
(``--group ff02::12``, ``--peer P --src L``, ``--ah``) must agree with them;
``open`` with those options must let them all through and ``close`` must
give the ruleset back.  A shape with another TTL than keepalived's is judged
statically only (``check`` has no option for it):
tests/integration/judge/test_corpus_ttl.py, on one library end.

Cases with legacy or iptables-nft tables run on both library ends:
``check``'s kernel reader reads legacy tables through python-iptables, and
``prove`` preloads it for them.  Nft-only cases, the textbook test and their
shapes, reach none of typer, rich, python-iptables or dbus-python (check,
open and close take the CLI's typer-free path; prove's replica has no bus):
marked one_end, they run once (tests/one_end_guard.py).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Dict, List, Tuple

import pytest
from corpus_stats import record, record_prove
from netns import ns_names
from replaycheck import (
    PASSING,
    agrees,
    case_peers,
    case_snapshot,
    corpus_cases,
    outcome,
    ruleset,
    shape_rule,
    shaped,
    static_shape_agrees,
    vrrpfw_json,
)

from vrrpfw.model import Direction
from vrrpfw.prove.netns import release
from vrrpfw.prove.replica import Replica, replica
from vrrpfw.prove.traffic import Shape

pytestmark = pytest.mark.integration

IFACE = "eth1"
COUNT = 5
CASES = corpus_cases()


def nft_only(stem: str) -> bool:
    """The case loads native nftables only: no legacy or iptables-nft tables."""
    return set(CASES[stem]) == {"nft"}


# An nft-only case reaches no typer (check, open and close take the CLI's
# typer-free path, vrrpfw/cli/fast.py), rich, python-iptables (no legacy table
# to read or write; prove preloads it only for legacy replicas) or
# dbus-python (prove's replica has no bus, and a missing bus socket is
# answered without it): one_end, run once (tests/one_end_guard.py fails it
# the day it reaches one).  Cases with legacy or iptables-nft tables reach
# python-iptables (check's kernel reader) and run on both ends.
def one_end_if_nft_only(stem: str):
    return pytest.param(stem, marks=pytest.mark.one_end, id=stem) if nft_only(stem) else stem


def vrrpfw(r: Replica, *args: str) -> tuple:
    return vrrpfw_json(r, IFACE, *args)


def left_behind(pid: int) -> list:
    """Replica namespaces of that prove run still listed (other runs, e.g. a
    parallel test session, use the same prefixes with their own pid)."""
    mark = f"{pid % 100000}-"
    return [n for n in ns_names() if n.startswith(("vph", "vpp")) and n[3:].startswith(mark)]


def states(out: dict) -> Dict[str, str]:
    """Per direction, the path verdict (every backend reports the same path)."""
    return {rule["direction"]: rule["runtime"] for rule in out.get("rules", [])}


@pytest.mark.parametrize("stem", [one_end_if_nft_only(s) for s in sorted(CASES)])
def test_static_verdict_is_the_kernels_then_open_and_close(stem: str) -> None:
    files = CASES[stem]
    peers = case_peers(files)
    snap = case_snapshot(files)
    # the case's IPv4 peers, where its multicast adverts come from
    peer_args: List[str] = [a for p in peers if ":" not in p for a in ("--peer", p)]
    with replica(snap, peers) as r:
        original = ruleset(r)
        before = outcome(r.measure(count=COUNT, seconds=1.0))
        rc, out, err = vrrpfw(r, "check", "--backend", "nftables")
        verdict = states(out)
        assert set(verdict) == {"in", "out"}, (out, err)
        details = {rule["direction"]: rule.get("detail", "") for rule in out.get("rules", [])}
        for direction in ("in", "out"):  # both recorded before either is asserted (the summary counts them)
            record(stem, direction, verdict[direction], before[direction], COUNT, reason=details[direction])
        for direction in ("in", "out"):
            assert agrees(verdict[direction], [before[direction]], COUNT), (
                f"{stem} {direction}: vrrpfw says {verdict[direction]}, the kernel delivered "
                f"{before[direction]}/{COUNT}: {out['rules']}")
        ok = all(verdict[d] in PASSING for d in verdict)
        assert (rc == 0) == ok, (rc, verdict)

        # vrrpfw prove, run on the replica as if it were the host: its replay
        # must see what the packets did, and leave no namespace or rule behind.
        # Through the API: the CLI's --peer means unicast, and these adverts are
        # multicast from the case's peers.
        code = ("import json, sys; from vrrpfw.prove import prove; a = sys.argv; "
                "print(json.dumps(prove([a[1]], peers=a[3:], count=int(a[2])).to_dict()))")
        proc = r.host.popen([sys.executable, "-c", code, IFACE, str(COUNT), *peer_args[1::2]])
        try:
            stdout, stderr = proc.communicate(timeout=180)
        finally:
            release(proc)
        try:
            proof = json.loads(stdout)
        except ValueError:
            proof = {}
        gave = len(proof.get("interfaces") or []) == 1 and proof["interfaces"][0].get("today") is not None
        why = "" if gave else (stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        record_prove(stem, gave, why)
        assert not left_behind(proc.pid) and ruleset(r) == original, stderr
        assert gave, (proc.returncode, stdout, stderr)
        (today,) = proof["interfaces"]
        seen = {"in": min(v["arrived"] for v in today["today"]["inbound"].values()),
                "out": today["today"]["outbound"]["arrived"]}
        for direction in ("in", "out"):
            if before[direction] in (0, COUNT):  # rate limits make partial outcomes vary
                assert seen[direction] == before[direction], (direction, before, proof)

        # firewalld's own table (a comment that merely names firewalld does not count)
        firewalld = re.search(r"^\s*table\s+\w+\s+firewalld\b", snap.nft_ruleset or "", re.M) is not None
        rc, out, err = vrrpfw(r, "open")
        if firewalld:
            # firewalld's table without firewalld: only firewalld may change it.
            assert rc == 3 and "firewalld" in err and len(err.strip().splitlines()) == 1, (rc, err)
            assert ruleset(r) == original
            return
        assert rc == 0, (out, err)
        assert outcome(r.measure(count=COUNT, seconds=1.0)) == {"in": COUNT, "out": COUNT}

        rc, out, err = vrrpfw(r, "close")
        assert rc == 0, (out, err)
        assert "vrrpfw" not in ruleset(r)
        if any("vrrpfw" in open(path).read().split("\n", 1)[1] for path in files.values()):
            return  # the case holds vrrpfw's own rules: close rightly removed them too
        assert ruleset(r) == original
        after = outcome(r.measure(count=COUNT, seconds=1.0))
        for direction in ("in", "out"):
            if before[direction] in (0, COUNT):  # rate limits make partial outcomes vary
                assert after[direction] == before[direction], (direction, before, after)


# ------------------------------------------------------------ other shapes

# (stem, shape) where vrrpfw is wrong today: the reason names the bug; strict,
# so the entry must go once it is fixed.
KNOWN_GAPS: Dict[Tuple[str, str], str] = {
}


def shape_args(shape: Shape, peers: List[str]) -> List[str]:
    """``check``/``open`` options that make vrrpfw judge ``shape``."""
    args: List[str] = []
    if shape.unicast:
        mine = [p for p in peers if (":" in p) == (shape.family == "ipv6")]
        rule = shape_rule(shape, Direction.IN, mine[0] if mine else None)
        args += ["--peer", rule.group, "--src", rule.local or ""]
    elif shape.family == "ipv6":
        args += ["--group", shape.group]
    if shape.proto == 51:
        args.append("--ah")
    return args


# The shapes of an nft-only case: one_end, as its textbook test above.
SHAPES = [pytest.param(*p.values, marks=[*p.marks, pytest.mark.one_end], id=p.id)
          if nft_only(p.values[0]) else p for p in shaped(CASES, KNOWN_GAPS, ttl=False)]


@pytest.mark.parametrize("stem,name", SHAPES)
def test_shape_verdicts_are_the_kernels_then_open_and_close(stem: str, name: str) -> None:
    files, shape = CASES[stem], Shape.parse(name)
    peers = case_peers(files)
    with replica(case_snapshot(files), peers) as r:
        original = ruleset(r)
        before = static_shape_agrees(r, stem, name, shape, peers, COUNT)
        args = shape_args(shape, peers)
        rc, out, err = vrrpfw(r, "check", *args)
        mine = {d: shape_rule(shape, d, args[1] if shape.unicast else None).selector for d in Direction}
        said = {rule["direction"]: rule["runtime"] for rule in out.get("rules", [])
                if rule["group"] == mine[Direction(rule["direction"])]}
        if rc == 0 and out.get("backend") == "none" and not out.get("rules"):
            # auto-detection found no table on VRRP's path ("nothing blocks VRRP here", no rule
            # reports): that is a passing verdict both ways, held against the packets below
            said = {"in": "allowed-by-policy", "out": "allowed-by-policy"}
        assert set(said) == {"in", "out"}, (args, out, err)
        for direction in ("in", "out"):
            assert agrees(said[direction], [before[direction]], COUNT), (
                f"{stem} [{name}] {direction}: vrrpfw check {args} says {said[direction]}, the kernel "
                f"delivered {before[direction]}/{COUNT}: {out['rules']}")

        rc, out, err = vrrpfw(r, "open", *args)
        assert rc == 0, (args, out, err)
        assert outcome(r.measure(count=COUNT, seconds=1.0, shape=shape)) == {"in": COUNT, "out": COUNT}
        rc, out, err = vrrpfw(r, "close")  # every rule of vrrpfw on the interface
        assert rc == 0, (out, err)
        assert ruleset(r) == original
