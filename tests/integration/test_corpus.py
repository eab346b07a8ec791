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
"""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Optional

import pytest
from corpus_stats import record
from netns import ns_names
from replaycheck import PASSING, agrees, ruleset, vrrpfw_json

from vrrpfw.replica import Delivery, Replica, replica, snapshot_from_files

pytestmark = pytest.mark.integration

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus")
SUFFIXES = ("legacy", "iptnft", "nft")
IFACE = "eth1"
COUNT = 5


def cases() -> Dict[str, Dict[str, str]]:
    found: Dict[str, Dict[str, str]] = {}
    for name in sorted(os.listdir(CORPUS)):
        stem, _, suffix = name.rpartition(".")
        if suffix in SUFFIXES:
            found.setdefault(stem, {})[suffix] = os.path.join(CORPUS, name)
    return found


CASES = cases()


def header(files: Dict[str, str], key: str) -> Optional[str]:
    for path in files.values():
        with open(path) as f:
            for line in f:
                if not line.startswith("#"):
                    break
                if line[1:].strip().startswith(f"{key}:"):
                    return line.split(":", 1)[1].strip()
    return None


def vrrpfw(r: Replica, *args: str) -> tuple:
    return vrrpfw_json(r, IFACE, *args)


def replicas() -> set:
    """Namespaces of replicas (this test's and prove's)."""
    return {n for n in ns_names() if n.startswith(("vph", "vpp"))}


def outcome(d: Delivery) -> Dict[str, int]:
    return {"in": min(p.arrived for p in d.inbound.values()), "out": d.outbound.arrived}


def states(out: dict) -> Dict[str, str]:
    """Per direction, the path verdict (every backend reports the same path)."""
    return {rule["direction"]: rule["runtime"] for rule in out.get("rules", [])}


@pytest.mark.parametrize("stem", sorted(CASES))
def test_static_verdict_is_the_kernels_then_open_and_close(stem: str) -> None:
    files = CASES[stem]
    peer = header(files, "peer")
    snap = snapshot_from_files(legacy=files.get("legacy"), iptnft=files.get("iptnft"), nft=files.get("nft"),
                               iface=IFACE, addrs=["192.0.2.1/24"])
    peer_args: List[str] = ["--peer", peer] if peer else []
    with replica(snap, [peer] if peer else []) as r:
        original = ruleset(r)
        before = outcome(r.measure(count=COUNT, seconds=1.0))
        rc, out, err = vrrpfw(r, "check", "--backend", "nftables", *peer_args)
        verdict = states(out)
        assert set(verdict) == {"in", "out"}, (out, err)
        for direction in ("in", "out"):
            record(stem, direction, verdict[direction], before[direction], COUNT)
            assert agrees(verdict[direction], [before[direction]], COUNT), (
                f"{stem} {direction}: vrrpfw says {verdict[direction]}, the kernel delivered "
                f"{before[direction]}/{COUNT}: {out['rules']}")
        ok = all(verdict[d] in PASSING for d in verdict)
        assert (rc == 0) == ok, (rc, verdict)

        # vrrpfw prove, run on the replica as if it were the host: its replay
        # must see what the packets did, and leave no namespace or rule behind.
        spaces = replicas()
        proc = r.host.run([sys.executable, "-m", "vrrpfw", "prove", "--iface", IFACE, "--json",
                           "--count", str(COUNT), *peer_args], check=False, timeout=180)
        proof = json.loads(proc.stdout)
        assert replicas() == spaces and ruleset(r) == original
        (today,) = proof["interfaces"]
        seen = {"in": min(v["arrived"] for v in today["today"]["inbound"].values()),
                "out": today["today"]["outbound"]["arrived"]}
        for direction in ("in", "out"):
            if before[direction] in (0, COUNT):  # rate limits make partial outcomes vary
                assert seen[direction] == before[direction], (direction, before, proof)

        firewalld = "table inet firewalld" in (snap.nft_ruleset or "")
        rc, out, err = vrrpfw(r, "open", *peer_args)
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
