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
from replaycheck import (
    case_peers,
    case_snapshot,
    corpus_cases,
    shaped,
    static_shape_agrees,
)

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
        static_shape_agrees(r, stem, name, shape, peers, COUNT)
