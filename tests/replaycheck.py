"""What the corpus and property tests share: running vrrpfw inside a
replica, the replica's ruleset as comparable text, and the rule a static
verdict must obey against the packets."""

from __future__ import annotations

import json
import sys
from typing import Sequence, Tuple

from vrrpfw.replica import Replica

PASSING = {"allowed", "allowed-by-other", "allowed-by-policy"}
BLOCKED = {"missing", "shadowed"}


def vrrpfw_json(r: Replica, iface: str, *args: str) -> Tuple[int, dict, str]:
    """``vrrpfw ARGS --iface IFACE --no-persist --json`` in the replica's host."""
    proc = r.host.run([sys.executable, "-m", "vrrpfw", *args, "--iface", iface, "--no-persist", "--json"],
                      check=False, timeout=120)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        raise AssertionError(f"vrrpfw {args}: no JSON: {proc.stdout}\n{proc.stderr}") from None


def ruleset(r: Replica) -> str:
    """Legacy and nft rules without counters, and without the elements of
    dynamic sets (traffic adds to them)."""
    legacy = r.host.run(["iptables-legacy-save"], check=False).stdout
    legacy = "\n".join(line.split(" [")[0] for line in legacy.splitlines() if not line.startswith("#"))
    nft = r.host.run(["nft", "-s", "list", "ruleset"]).stdout
    if "flags dynamic" in nft:
        nft = "\n".join(line for line in nft.splitlines() if "elements = " not in line)
    return legacy + "\n---\n" + nft


def agrees(verdict: str, arrived: Sequence[int], count: int) -> bool:
    """A definite verdict is what every measured source saw; anything else
    must say ``uncertain``."""
    if verdict in PASSING:
        return all(a == count for a in arrived)
    if verdict in BLOCKED:
        return all(a == 0 for a in arrived)
    return verdict == "uncertain"
