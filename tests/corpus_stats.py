"""Verdicts the corpus test saw, for the share of ``uncertain`` printed at
the end of the run (the issue's aim: at most 15 %), overall and per advert
shape (IPv4 multicast, IPv6, unicast, AH, another TTL).

The suite runs in parallel workers (pytest-xdist), and the summary is printed
by the controlling process, which runs no test: so every verdict is also
appended, one JSON line, to the file named by VRRPFW_CORPUS_STATS (set by
conftest.py before the workers start), and the summary reads that file.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Tuple

STATS_ENV = "VRRPFW_CORPUS_STATS"
# (case, direction, verdict, arrived, count, shape)
Seen = Tuple[str, str, str, int, int, str]
SEEN: List[Seen] = []


def record(case: str, direction: str, verdict: str, arrived: int, count: int, shape: str = "ipv4",
           source: str = "corpus") -> None:
    """One verdict of the corpus (or, ``source="property"``, of the
    property test: summed up on a line of its own, never mixed in)."""
    seen = (case, direction, verdict, arrived, count, shape)
    if source == "corpus":
        SEEN.append(seen)
    path = os.environ.get(STATS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short line per write: appends do not interleave
            f.write(json.dumps([source, *seen]) + "\n")


def record_prove(case: str, result: bool) -> None:
    """Whether ``vrrpfw prove`` gave a result for a corpus case (False: it
    said "cannot tell" or could not build its replica): prove's coverage."""
    record(case, "prove", "result" if result else "no result", 0, 0, source="prove")


def recorded(source: str = "corpus") -> List[Seen]:
    """Every worker's verdicts of ``source`` (from the shared file), else this process's."""
    path = os.environ.get(STATS_ENV)
    if not path or not os.path.exists(path):
        return list(SEEN) if source == "corpus" else []
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [tuple(r[1:]) for r in rows if r[0] == source]  # type: ignore[misc]


def _shares(seen: List[Seen], head: str, cases: str) -> List[str]:
    """``head``: n verdicts over m ``cases``, the uncertain share, overall and per shape."""
    uncertain = [s for s in seen if s[2] == "uncertain"]
    by_shape: Dict[str, List[int]] = {}
    for s in seen:
        n = by_shape.setdefault(s[5], [0, 0])
        n[0] += 1
        n[1] += s[2] == "uncertain"
    return ([f"{head}: {len(seen)} verdicts over {len({s[0] for s in seen})} {cases}; "
             f"uncertain {len(uncertain)} ({100.0 * len(uncertain) / len(seen):.1f} %)"]
            + [f"  shape {shape}: {n[0]} verdicts, uncertain {n[1]} ({100.0 * n[1] / n[0]:.1f} %)"
               for shape, n in sorted(by_shape.items())])


def summary() -> List[str]:
    """The corpus replayed against the kernel (with each uncertain verdict),
    the corpus against its recorded outcomes (test_corpus_static, no root),
    and the property test: each on lines of its own."""
    lines: List[str] = []
    replayed = recorded()
    if replayed:
        lines += _shares(replayed, "corpus, replayed", "cases")
        lines += [f"  uncertain: {c} [{sh}] {d} (kernel {a}/{n})"
                  for c, d, v, a, n, sh in replayed if v == "uncertain"]
    static = recorded("static")
    if static:
        lines += _shares(static, "corpus, against recorded outcomes", "cases")
    proved = recorded("prove")
    if proved:
        got = sum(1 for s in proved if s[2] == "result")
        share = 100.0 * got / len(proved)
        lines.append(f"prove: a result in {got} of {len(proved)} corpus cases ({share:.1f} %)")
        lines += [f"  no result: {s[0]}" for s in proved if s[2] != "result"]
    prop = recorded("property")
    if prop:
        lines += _shares(prop, "property", "parts")
    return lines
