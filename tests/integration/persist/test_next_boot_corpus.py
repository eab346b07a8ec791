"""The next boot's nftables path, against the corpus's recorded packets:
every nft-only case file is read the way vrrpfw reads a saved nftables.conf
(``nft -f`` into an anonymous network namespace holding the interfaces
the cases name, listed there:
vrrpfw.persist.nextboot.nft_conf_model), judged for every recorded advert
shape, and a definite verdict must be what real packets did when the case
was recorded (tests/corpus/outcomes.json); it must also be the verdict the
static corpus test gives over the case's recorded ruleset."""

from __future__ import annotations

import json
import os
from typing import Dict

import pytest
from replaycheck import CORPUS, case_model, corpus_cases, static_verdict

from vrrpfw.judge.netpath import DROPPED, PASSING
from vrrpfw.model import Direction
from vrrpfw.persist.nextboot import nft_conf_model
from vrrpfw.prove.traffic import Shape
from vrrpfw.results import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.needs("unshare", "nft"), pytest.mark.one_end]

with open(os.path.join(CORPUS, "outcomes.json")) as f:
    OUTCOMES: Dict[str, dict] = json.load(f)
NFT_ONLY = sorted(stem for stem, files in corpus_cases().items()
                  if set(files) == {"nft"} and stem in OUTCOMES)


def recorded_model(stem):
    """The model of the ruleset nft listed when the case was recorded (as
    tests/unit/judge/test_corpus_static.py builds it)."""
    with open(os.path.join(CORPUS, "json", f"{stem}.json")) as f:
        saved = json.load(f)
    devices = {tuple(d[:3]): tuple(d[3]) for d in saved["devices"]}
    return case_model(nft_json=saved["ruleset"], devices=devices)


def test_there_are_nft_cases():
    assert len(NFT_ONLY) >= 40, NFT_ONLY


@pytest.mark.parametrize("stem", NFT_ONLY)
def test_saved_nft_file_judged_as_loaded_agrees_with_packets(stem):
    path = corpus_cases()[stem]["nft"]
    # the interfaces the corpus's cases name (the replica that recorded them had them)
    boot = nft_conf_model(stem, path, "(on disk)", on_disk=True, interfaces=("eth0", "eth1", "wg0"))
    assert boot.model is not None, boot.problem
    outcome = OUTCOMES[stem]
    peers = outcome.get("peers", [outcome["peer"]] if outcome["peer"] else [])
    recorded = recorded_model(stem)
    for name in [Shape().name, *sorted(outcome.get("shapes", {}))]:
        seen = outcome if name == Shape().name else outcome["shapes"][name]
        for direction, key in ((Direction.IN, "in"), (Direction.OUT, "out")):
            v = static_verdict(boot.model, Shape.parse(name), direction, peers)
            said = f"{stem} [{name}] {key}: {v.state.value} but {seen[key]}/{outcome['count']}: {v.detail}"
            if v.state in PASSING:
                assert seen[key] == outcome["count"], said
            elif v.state in DROPPED:
                assert seen[key] == 0, said
            else:
                assert v.state is Runtime.UNCERTAIN, said
            same = static_verdict(recorded, Shape.parse(name), direction, peers)
            assert v.state is same.state, f"{said}; the recorded ruleset's model says {same.state.value}"
