"""Verdicts the corpus test saw, for the share of ``uncertain`` printed at
the end of the run (the issue's aim: at most 15 %), overall and per advert
shape (IPv4 multicast, IPv6, unicast, AH, another TTL)."""

from __future__ import annotations

from typing import Dict, List, Tuple

# (case, direction, verdict, arrived, count, shape)
SEEN: List[Tuple[str, str, str, int, int, str]] = []


def record(case: str, direction: str, verdict: str, arrived: int, count: int, shape: str = "ipv4") -> None:
    SEEN.append((case, direction, verdict, arrived, count, shape))


def summary() -> List[str]:
    if not SEEN:
        return []
    uncertain = [s for s in SEEN if s[2] == "uncertain"]
    lines = [f"corpus: {len(SEEN)} verdicts over {len({s[0] for s in SEEN})} cases; "
             f"uncertain {len(uncertain)} ({100.0 * len(uncertain) / len(SEEN):.1f} %)"]
    by_shape: Dict[str, List[int]] = {}
    for s in SEEN:
        n = by_shape.setdefault(s[5], [0, 0])
        n[0] += 1
        n[1] += s[2] == "uncertain"
    lines += [f"  shape {shape}: {n[0]} verdicts, uncertain {n[1]} ({100.0 * n[1] / n[0]:.1f} %)"
              for shape, n in sorted(by_shape.items())]
    lines += [f"  uncertain: {c} [{sh}] {d} (kernel {a}/{n})" for c, d, _, a, n, sh in uncertain]
    return lines
