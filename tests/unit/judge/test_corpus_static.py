"""The corpus, judged without a kernel: the static verdict over each case's
saved rules must be what real packets did when the case was recorded
(tests/corpus_record.py, as root), or ``uncertain``, for every advert shape
the case declares (IPv4 multicast always; IPv6, unicast, AH, another TTL
where its ``# shape:`` lines say).  The live replay of the same cases is
tests/integration/judge/test_corpus.py; this one runs in milliseconds, without
root, and is what mutation testing leans on."""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Tuple

import pytest
from corpus_stats import record
from replaycheck import CORPUS, PUBLISHED, PUBLISHED_PREFIX, case_model, corpus_cases, static_verdict

from vrrpfw.model import Direction
from vrrpfw.prove.traffic import Shape
from vrrpfw.results import Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

with open(os.path.join(CORPUS, "outcomes.json")) as f:
    OUTCOMES: Dict[str, dict] = json.load(f)
PASSING = {Runtime.ALLOWED, Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY}
BLOCKED = {Runtime.MISSING, Runtime.SHADOWED}
CASES = corpus_cases()

# (stem, shape) whose static verdict is wrong today: a bug of the reader,
# converter or evaluator named in the reason.  strict: the test fails once
# it is fixed, so the entry must then go.
KNOWN_GAPS: Dict[Tuple[str, str], str] = {
}


def text(stem: str, suffix: str) -> Optional[str]:
    path = CASES[stem].get(suffix)
    if path is None:
        return None
    with open(path) as f:
        return f.read()


def model(stem: str):
    with open(os.path.join(CORPUS, "json", f"{stem}.json")) as f:
        saved = json.load(f)
    devices = {tuple(d[:3]): tuple(d[3]) for d in saved["devices"]}
    return case_model(text(stem, "legacy"), text(stem, "iptnft"), saved["ruleset"], devices,
                      text(stem, "legacy6"), text(stem, "iptnft6"))


def judged() -> List[Tuple[str, str]]:
    """Every (stem, shape name) recorded."""
    out = []
    for stem, outcome in sorted(OUTCOMES.items()):
        out += [(stem, name) for name in [Shape().name, *sorted(outcome.get("shapes", {}))]]
    return out


def params() -> list:
    return [pytest.param(stem, shape, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[(stem, shape)]))
            if (stem, shape) in KNOWN_GAPS else pytest.param(stem, shape) for stem, shape in judged()]


def test_every_case_was_recorded():
    stems = set(CASES)
    assert stems == set(OUTCOMES), "run tests/corpus_record.py as root after changing the corpus"
    assert len(stems) >= 40
    published = [s for s in stems if s.startswith(PUBLISHED_PREFIX)]
    where = {os.path.dirname(path) for s in published for path in CASES[s].values()}
    assert where <= {os.path.join(CORPUS, PUBLISHED)}, "pub-* cases live in tests/corpus/published/"


@pytest.mark.parametrize("stem,shape", params())
def test_static_verdict_agrees_with_recorded_packets(stem: str, shape: str) -> None:
    outcome = OUTCOMES[stem]
    seen = outcome if shape == Shape().name else outcome["shapes"][shape]
    peers = outcome.get("peers", [outcome["peer"]] if outcome["peer"] else [])
    m = model(stem)
    verdicts = {key: static_verdict(m, Shape.parse(shape), direction, peers)
                for direction, key in ((Direction.IN, "in"), (Direction.OUT, "out"))}
    for key, verdict in verdicts.items():  # both recorded before either is asserted (the summary counts them)
        record(stem, key, verdict.state.value, seen[key], outcome["count"], shape, source="static",
               reason=verdict.detail)
    for key, verdict in verdicts.items():
        arrived, count = seen[key], outcome["count"]
        said = f"{stem} [{shape}] {key}: {verdict.state.value} but {arrived}/{count}: {verdict.detail}"
        if verdict.state in PASSING:
            assert arrived == count, said
        elif verdict.state in BLOCKED:
            assert arrived == 0, said
        else:
            assert verdict.state is Runtime.UNCERTAIN, verdict.state
