"""Verdicts the corpus test saw, and the figures of issue 17 (item 8) printed
at the end of the run, per advert shape (IPv4 multicast, IPv6, unicast, AH,
another TTL), over the whole corpus and over the rulesets people published
(stems ``pub-``, tests/corpus/published/):

* verdicts: how many (one per direction, case and shape);
* false OK: a passing verdict (allowed*) while adverts were dropped that way
  (must be 0; the test fails on each too);
* uncertain: share of verdicts that say ``uncertain``;
* false alarms: (case, shape) pairs where every advert arrived both ways but
  a verdict is not passing (``check`` exits non-zero on a healthy host);
* prove: share of cases where ``vrrpfw prove`` gave a result;

then every uncertain verdict, grouped by the reason vrrpfw gives.

The suite runs in parallel workers (pytest-xdist), and the summary is printed
by the controlling process, which runs no test: so every verdict is also
appended, one JSON line, to the file named by VRRPFW_CORPUS_STATS (set by
conftest.py before the workers start), and the summary reads that file.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

STATS_ENV = "VRRPFW_CORPUS_STATS"
PASSING = ("allowed", "allowed-by-other", "allowed-by-policy")
PUBLISHED_PREFIX = "pub-"  # replaycheck.PUBLISHED_PREFIX (no import: this module has no vrrpfw dependency)
# (case, direction, verdict, arrived, count, shape, reason)
Seen = Tuple[str, str, str, int, int, str, str]
SEEN: List[Seen] = []


def _append(row: list) -> None:
    path = os.environ.get(STATS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short line per write: appends do not interleave
            f.write(json.dumps(row) + "\n")


def record(case: str, direction: str, verdict: str, arrived: int, count: int, shape: str = "ipv4",
           source: str = "corpus", reason: str = "") -> None:
    """One verdict of the corpus (or, ``source="property"``, of the
    property test: summed up on a line of its own, never mixed in).
    ``reason``: vrrpfw's detail for the verdict (used for uncertain ones)."""
    seen = (case, direction, verdict, arrived, count, shape, reason)
    if source == "corpus":
        SEEN.append(seen)
    _append([source, *seen])


def record_prove(case: str, result: bool, why: str = "") -> None:
    """Whether ``vrrpfw prove`` gave a result for ``case`` (and why not)."""
    _append(["prove", case, bool(result), why])


def _rows(source: str) -> List[list]:
    path = os.environ.get(STATS_ENV)
    if not path or not os.path.exists(path):
        return [["corpus", *s] for s in SEEN] if source == "corpus" else []
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r[0] == source]


def recorded(source: str = "corpus") -> List[Seen]:
    """Every worker's verdicts of ``source`` (from the shared file), else this process's."""
    out: List[Seen] = []
    for r in _rows(source):
        row = list(r[1:]) + [""] * (7 - len(r[1:]))
        out.append(tuple(row[:7]))  # type: ignore[arg-type]
    return out


def _pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.1f} %" if d else "-"


def _shares(seen: List[Seen], head: str, cases: str) -> List[str]:
    """``head``: n verdicts over m ``cases``, the uncertain share, overall and per shape."""
    uncertain = [s for s in seen if s[2] == "uncertain"]
    by_shape: Dict[str, List[int]] = {}
    for s in seen:
        n = by_shape.setdefault(s[5], [0, 0])
        n[0] += 1
        n[1] += s[2] == "uncertain"
    return ([f"{head}: {len(seen)} verdicts over {len({s[0] for s in seen})} {cases}; "
             f"uncertain {len(uncertain)} ({_pct(len(uncertain), len(seen))})"]
            + [f"  shape {shape}: {n[0]} verdicts, uncertain {n[1]} ({_pct(n[1], n[0])})"
               for shape, n in sorted(by_shape.items())])


def false_ok(s: Seen) -> bool:
    return s[2] in PASSING and s[3] < s[4]


def figures(seen: Sequence[Seen], proves: Optional[Sequence[list]], head: str) -> List[str]:
    """Issue 17 item 8's figures for ``seen`` (and ``proves``), per shape."""
    lines = [f"{head}: {len({s[0] for s in seen})} cases"]
    pairs: Dict[Tuple[str, str], List[Seen]] = {}
    for s in seen:
        pairs.setdefault((s[0], s[5]), []).append(s)
    for shape in sorted({s[5] for s in seen}):
        mine = [s for s in seen if s[5] == shape]
        cases = [v for (c, sh), v in pairs.items() if sh == shape]
        delivered = [v for v in cases if all(s[3] == s[4] for s in v) and {s[1] for s in v} == {"in", "out"}]
        alarms = [v for v in delivered if any(s[2] not in PASSING for s in v)]
        unsure = [s for s in mine if s[2] == "uncertain"]
        lines.append(f"  shape {shape}: {len(mine)} verdicts over {len(cases)} cases; "
                     f"false OK {sum(false_ok(s) for s in mine)}; "
                     f"uncertain {len(unsure)} ({_pct(len(unsure), len(mine))}); "
                     f"false alarms {len(alarms)} of {len(cases)} cases ({_pct(len(alarms), len(cases))}; "
                     f"{len(delivered)} cases deliver both ways)")
    for s in seen:
        if false_ok(s):
            lines.append(f"  FALSE OK: {s[0]} [{s[5]}] {s[1]}: {s[2]} while {s[3]}/{s[4]} arrived: {s[6]}")
    if proves is not None:
        got = sum(1 for p in proves if p[2])
        lines.append(f"  prove gave a result in {got} of {len(proves)} cases ({_pct(got, len(proves))})")
        lines += [f"    no result: {p[1]}: {p[3]}" for p in proves if not p[2]]
    return lines


def reasons(detail: str) -> List[str]:
    """The reasons in a verdict's detail: each chain's ``uncertain (REASON: rule)``
    and each ``not read: X``."""
    out = []
    for part in detail.split("; "):
        if part.startswith("not read: "):
            out.append(part)
            continue
        i = part.find("uncertain (")
        if i >= 0:
            reason = part[i + len("uncertain ("):]
            reason = reason.rsplit(")", 1)[0]
            out.append(reason.split(": ", 1)[0] if ": " in reason else reason)
    return out or [detail or "(no detail)"]


def by_reason(seen: Sequence[Seen]) -> List[str]:
    groups: Dict[str, List[Seen]] = {}
    for s in seen:
        if s[2] == "uncertain":
            for r in dict.fromkeys(reasons(s[6])):
                groups.setdefault(r, []).append(s)
    lines = [f"uncertain verdicts by reason ({sum(1 for s in seen if s[2] == 'uncertain')} verdicts):"]
    for r, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"  {r}: {len(v)}")
        lines += [f"    {c} [{sh}] {d} (kernel {a}/{n}): {why}" for c, d, v_, a, n, sh, why in v]
    return lines


def published(seen: Sequence[Seen]) -> List[Seen]:
    return [s for s in seen if s[0].startswith(PUBLISHED_PREFIX)]


def summary() -> List[str]:
    """The corpus replayed against the kernel (with each uncertain verdict),
    the corpus against its recorded outcomes (test_corpus_static, no root),
    and the property test: each on lines of its own; then the figures per
    shape, whole corpus and published rulesets, and the uncertain verdicts
    by reason."""
    lines: List[str] = []
    replayed = recorded()
    proves = _rows("prove") or None  # None: no prove ran in this session (test_corpus.py's), no line for it
    if replayed:
        lines += _shares(replayed, "corpus, replayed", "cases")
        lines += [f"  uncertain: {c} [{sh}] {d} (kernel {a}/{n})"
                  for c, d, v, a, n, sh, _ in replayed if v == "uncertain"]
    static = recorded("static")
    if static:
        lines += _shares(static, "corpus, against recorded outcomes", "cases")
    prop = recorded("property")
    if prop:
        lines += _shares(prop, "property", "parts")
    for seen, source, prv in ((replayed, "replayed", proves), (static, "recorded outcomes", None)):
        if not seen:
            continue
        mine = published(seen)
        lines += figures(seen, prv, f"figures, whole corpus, {source}")
        if mine:
            pub_proves = [p for p in prv if p[1].startswith(PUBLISHED_PREFIX)] if prv is not None else None
            lines += figures(mine, pub_proves, f"figures, published rulesets (pub-*), {source}")
        lines += by_reason(seen)
    return lines
