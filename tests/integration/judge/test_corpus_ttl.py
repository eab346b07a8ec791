"""The differential corpus, for the advert shapes with another TTL (hop
limit) than keepalived's (``# shape: ipv4 ttl 1``, tests/corpus/README.md):
each case is replayed in throwaway namespaces (the replica ``vrrpfw prove``
uses), the shape's adverts are sent both ways, and vrrpfw's static verdict
over the replica's rules, as the kernel lists them (the save texts and
``nft -j``, read without python-iptables) and judged as netpath.judge does
with the packet's TTL changed, must be what the packets did: passing means
every advert arrived, ``missing``/``shadowed`` none; anything else must be
``uncertain``.

vrrpfw judges keepalived's own TTL only (``check`` has no option for
another), so the static verdict is all there is to ask it, and nothing here
reaches typer, rich, python-iptables or dbus-python: marker one_end
(tests/one_end_guard.py), one library end.  The other shapes, with
``vrrpfw check``, ``open``, ``close`` and ``prove``: test_corpus.py.
"""

from __future__ import annotations

from typing import Dict, Tuple

import pytest
from corpus_stats import record
from replaycheck import (
    agrees,
    case_peers,
    case_snapshot,
    corpus_cases,
    outcome,
    replica_model,
    shaped,
    static_verdict,
)

from vrrpfw.model import Direction
from vrrpfw.prove.replica import replica
from vrrpfw.prove.traffic import Shape

pytestmark = [pytest.mark.integration, pytest.mark.one_end]

COUNT = 5
CASES = corpus_cases()

# (stem, shape) where vrrpfw is wrong today: the reason names the bug; strict,
# so the entry must go once it is fixed.
KNOWN_GAPS: Dict[Tuple[str, str], str] = {
}


@pytest.mark.parametrize("stem,name", shaped(CASES, KNOWN_GAPS, ttl=True))
def test_shape_verdicts_are_the_kernels(stem: str, name: str) -> None:
    files, shape = CASES[stem], Shape.parse(name)
    peers = case_peers(files)
    with replica(case_snapshot(files), peers) as r:
        before = outcome(r.measure(count=COUNT, seconds=1.0, shape=shape))
        model = replica_model(r)
        judged = {d: static_verdict(model, shape, d, peers) for d in (Direction.IN, Direction.OUT)}
        for d, j in judged.items():  # both recorded before either is asserted (the summary counts them)
            record(stem, d.value, j.state.value, before[d.value], COUNT, name, reason=j.detail)
        for direction in (Direction.IN, Direction.OUT):
            verdict, arrived = judged[direction].state.value, before[direction.value]
            assert agrees(verdict, [arrived], COUNT), (
                f"{stem} [{name}] {direction.value}: static {verdict}, kernel {arrived}/{COUNT}")
