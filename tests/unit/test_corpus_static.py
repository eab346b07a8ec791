"""The corpus, judged without a kernel: the static verdict over each case's
saved rules must be what real packets did when the case was recorded
(tests/corpus_record.py, as root), or ``uncertain``.  The live replay of
the same cases is tests/integration/test_corpus.py; this one runs in
milliseconds, without root, and is what mutation testing leans on."""

from __future__ import annotations

import json
import os
from typing import Dict, Optional

import pytest
from corpus_stats import record

from vrrpfw.model import Direction, VrrpRule
from vrrpfw.netpath import judge_peers
from vrrpfw.readers.offline import model_from_texts
from vrrpfw.results import Runtime

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus")
with open(os.path.join(CORPUS, "outcomes.json")) as f:
    OUTCOMES: Dict[str, dict] = json.load(f)
PASSING = {Runtime.ALLOWED, Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY}
BLOCKED = {Runtime.MISSING, Runtime.SHADOWED}
LOCAL = ("192.0.2.1", "192.0.2.0/24")  # the replica's eth1


def text(stem: str, suffix: str) -> Optional[str]:
    path = os.path.join(CORPUS, f"{stem}.{suffix}")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def model(stem: str):
    with open(os.path.join(CORPUS, "json", f"{stem}.json")) as f:
        saved = json.load(f)
    devices = {tuple(d[:3]): tuple(d[3]) for d in saved["devices"]}
    return model_from_texts(text(stem, "legacy"), text(stem, "iptnft"), saved["ruleset"], devices)


def test_every_case_was_recorded():
    stems = {n.rpartition(".")[0] for n in os.listdir(CORPUS) if n.endswith((".legacy", ".iptnft", ".nft"))}
    assert stems == set(OUTCOMES), "run tests/corpus_record.py as root after changing the corpus"
    assert len(stems) >= 40


@pytest.mark.parametrize("stem", sorted(OUTCOMES))
def test_static_verdict_agrees_with_recorded_packets(stem):
    outcome = OUTCOMES[stem]
    m = model(stem)
    peers = [outcome["peer"]] if outcome["peer"] else []
    for direction, key in ((Direction.IN, "in"), (Direction.OUT, "out")):
        verdict = judge_peers(m, VrrpRule(direction, "eth1", "224.0.0.18"), peers, LOCAL)
        arrived, count = outcome[key], outcome["count"]
        record(stem, key, verdict.state.value, arrived, count)
        said = f"{stem} {key}: {verdict.state.value} but {arrived}/{count}: {verdict.detail}"
        if verdict.state in PASSING:
            assert arrived == count, said
        elif verdict.state in BLOCKED:
            assert arrived == 0, said
        else:
            assert verdict.state is Runtime.UNCERTAIN, verdict.state
