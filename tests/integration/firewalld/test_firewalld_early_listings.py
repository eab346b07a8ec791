"""The firewalld backend starts the kernel listings its verdict reads (the
tables on VRRP's path from the scan's heads, the links) before it asks
firewalld, and judge/read/nft.py lists tables side by side: the same layer
as the listings read one after another, on both of firewalld's backends
(the iptables backend: a dozen iptables-nft tables with compat expressions);
and whatever was started and not read is killed and reaped, also where the
run fails (no zombie, no child left behind)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from fwharness import firewalld_host

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from vrrpfw.backends.base import Options
    from vrrpfw.backends.firewalld.backend import FirewalldBackend
    from vrrpfw.errors import InputError
    from vrrpfw.host.hostscan import scan
    from vrrpfw.host.nft import nft_json
    from vrrpfw.judge.read import bridges
    from vrrpfw.judge.read import nft as reader
    from vrrpfw.model import Direction, VrrpRule, DEFAULT_GROUP4

    def children():
        out = []
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as f:
                out += f.read().split()
        return out

    def summary(layer):
        return {"chains": [[str(c.id), c.hook.value, c.priority, c.policy, [repr(r) for r in c.rules],
                            c.devices, c.owner, c.kind] for c in layer.chains],
                "tables": {" ".join(k): {n: [repr(r) for r in rules] for n, rules in t.chains.items()}
                           for k, t in layer.tables.items()},
                "handles": sorted(map(list, layer.handles.items())),
                "all": sorted(map(list, layer.all_chains)), "unread": layer.unread}

    out = {}
    heads = nft_json(["list", "chains"])
    serial = reader.PARALLEL
    reader.PARALLEL = 1  # one listing at a time, as before
    one = summary(reader.read(heads=heads))
    reader.PARALLEL = serial
    out["same"] = one == summary(reader.read(heads=heads)) == summary(
        reader.read(heads=heads, early=reader.start(heads)))
    out["rules"] = sum(len(c[4]) for c in one["chains"])
    out["tables"] = len(one["tables"])
    out["after_reads"] = children()
    # Started and not read: closed by read() (other sweep), or by close().
    reader.read(heads=heads, sweep=True, early=reader.start(heads))
    reader.start(heads).close()
    bridges.start_links(); bridges.drop_links()
    out["after_unread"] = children()
    # A run that fails while loading (no such zone) after the listings started.
    state = sys.argv[1]
    b = FirewalldBackend(Options(zone="no-such-zone", state_file=state), scan(firewalld_first=True))
    try:
        with b.session():
            pass
        out["failed"] = False
    except InputError as e:
        out["failed"] = str(e)
    out["after_failure"] = children()
    out["links_left"] = len(bridges._early)
    # A check that reads the listings, and one that never reads them (the
    # nftables backend's direct mode judges no kernel path).
    for mode in ("auto", "direct"):
        b = FirewalldBackend(Options(mode=mode, force=True, state_file=state), scan(firewalld_first=True))
        with b.session():
            b.runtime_status([VrrpRule(Direction.IN, sys.argv[2], DEFAULT_GROUP4)])
        out["after_" + mode] = children()
    out["links_left"] += len(bridges._early)
    print(json.dumps(out))
""")


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_early_and_side_by_side_listings(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        proc = fw.host.run(sys.executable, "-c", SCRIPT, fw.state_file, fw.pair.host_if, check=False)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
    assert out["same"] is True
    assert out["rules"] > 0 and out["tables"] >= (1 if backend == "nftables" else 6)
    assert out["failed"] and "no-such-zone" in out["failed"]
    for key in ("after_reads", "after_unread", "after_failure", "after_auto", "after_direct"):
        assert out[key] == [], key
    assert out["links_left"] == 0
