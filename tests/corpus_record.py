"""Record, for every corpus case, what the kernel does and how nft lists
it, so that unit tests (no root) can hold the static verdict against real
packets.  Run as root after adding or changing a case:

    .venv-debian/bin/python tests/corpus_record.py [STEM ...]

Writes tests/corpus/json/STEM.json (``nft -j list ruleset`` of the loaded
case, and the devices of its ingress/egress chains) and merges into
tests/corpus/outcomes.json the adverts that arrived, of COUNT, each way:
``in``/``out`` for the textbook IPv4 multicast advert, and under
``shapes`` the same for every other shape the case declares (``# shape:``).
Without STEMs every case is recorded again.  Everything happens in
throwaway namespaces (vrrpfw.prove.replica).
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from replaycheck import CORPUS, case_peers, case_shapes, case_snapshot, corpus_cases  # noqa: E402

from vrrpfw.judge.read.nft import parse_devices  # noqa: E402
from vrrpfw.prove.replica import replica  # noqa: E402
from vrrpfw.prove.traffic import Shape  # noqa: E402

COUNT = 10


def record(stem: str, files: dict) -> dict:
    peers = case_peers(files)
    with replica(case_snapshot(files), peers) as r:
        doc = json.loads(r.host.run(["nft", "-j", "list", "ruleset"]).stdout or "{}")
        doc["nftables"] = [i for i in doc.get("nftables", []) if "metainfo" not in i]
        devices = parse_devices(r.host.run(["nft", "list", "chains"]).stdout)
        outcome: dict = {"count": COUNT, "peer": next((p for p in peers if ":" not in p), None),
                         "peers": peers}
        for shape in case_shapes(files):
            d = r.measure(count=COUNT, seconds=1.0, shape=shape)
            seen = {"in": min(p.arrived for p in d.inbound.values()), "out": d.outbound.arrived}
            if shape == Shape():
                outcome.update(seen)
            else:
                outcome.setdefault("shapes", {})[shape.name] = seen
    with open(os.path.join(CORPUS, "json", f"{stem}.json"), "w") as f:
        json.dump({"ruleset": doc, "devices": [[*k, list(v)] for k, v in devices.items()]}, f,
                  indent=1, sort_keys=True)
        f.write("\n")
    return outcome


def main(stems: list) -> None:
    os.makedirs(os.path.join(CORPUS, "json"), exist_ok=True)
    path = os.path.join(CORPUS, "outcomes.json")
    outcomes = {}
    if stems and os.path.exists(path):
        with open(path) as f:
            outcomes = json.load(f)
    cases = corpus_cases()
    for stem in stems or sorted(cases):
        outcomes[stem] = record(stem, cases[stem])
        print(stem, outcomes[stem], flush=True)
    with open(path, "w") as f:
        json.dump(outcomes, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
