"""Record, for every corpus case, what the kernel does and how nft lists
it, so that unit tests (no root) can hold the static verdict against real
packets.  Run as root after adding or changing a case:

    .venv-debian/bin/python tests/corpus_record.py

Writes tests/corpus/json/STEM.json (``nft -j list ruleset`` of the loaded
case, and the devices of its ingress/egress chains) and
tests/corpus/outcomes.json (adverts that arrived, of COUNT, each way).
Everything happens in throwaway namespaces (vrrpfw.replica).
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from vrrpfw.readers.nft import parse_devices  # noqa: E402
from vrrpfw.replica import replica, snapshot_from_files  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
COUNT = 10


def cases() -> dict:
    found: dict = {}
    for name in sorted(os.listdir(CORPUS)):
        stem, _, suffix = name.rpartition(".")
        if suffix in ("legacy", "iptnft", "nft"):
            found.setdefault(stem, {})[suffix] = os.path.join(CORPUS, name)
    return found


def peer_of(files: dict):
    for path in files.values():
        with open(path) as f:
            for line in f:
                if line.startswith("# peer:"):
                    return line.split(":", 1)[1].strip()
    return None


def main() -> None:
    os.makedirs(os.path.join(CORPUS, "json"), exist_ok=True)
    outcomes = {}
    for stem, files in cases().items():
        peer = peer_of(files)
        snap = snapshot_from_files(legacy=files.get("legacy"), iptnft=files.get("iptnft"),
                                   nft=files.get("nft"), iface="eth1", addrs=["192.0.2.1/24"])
        with replica(snap, [peer] if peer else []) as r:
            doc = json.loads(r.host.run(["nft", "-j", "list", "ruleset"]).stdout or "{}")
            doc["nftables"] = [i for i in doc.get("nftables", []) if "metainfo" not in i]
            devices = parse_devices(r.host.run(["nft", "list", "chains"]).stdout)
            d = r.measure(count=COUNT, seconds=1.0)
        with open(os.path.join(CORPUS, "json", f"{stem}.json"), "w") as f:
            json.dump({"ruleset": doc, "devices": [[*k, list(v)] for k, v in devices.items()]}, f,
                      indent=1, sort_keys=True)
            f.write("\n")
        outcomes[stem] = {"in": min(p.arrived for p in d.inbound.values()), "out": d.outbound.arrived,
                          "count": COUNT, "peer": peer}
        print(stem, outcomes[stem], flush=True)
    with open(os.path.join(CORPUS, "outcomes.json"), "w") as f:
        json.dump(outcomes, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
