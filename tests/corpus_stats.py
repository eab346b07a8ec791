"""Verdicts the corpus test saw, for the share of ``uncertain`` printed at
the end of the run (the issue's aim: at most 15 %)."""

from __future__ import annotations

from typing import List, Tuple

SEEN: List[Tuple[str, str, str, int, int]] = []  # (case, direction, verdict, arrived, count)


def record(case: str, direction: str, verdict: str, arrived: int, count: int) -> None:
    SEEN.append((case, direction, verdict, arrived, count))


def summary() -> List[str]:
    if not SEEN:
        return []
    uncertain = [s for s in SEEN if s[2] == "uncertain"]
    lines = [f"corpus: {len(SEEN)} verdicts over {len({s[0] for s in SEEN})} cases; "
             f"uncertain {len(uncertain)} ({100.0 * len(uncertain) / len(SEEN):.1f} %)"]
    lines += [f"  uncertain: {c} {d} (kernel {a}/{n})" for c, d, _, a, n in uncertain]
    return lines
