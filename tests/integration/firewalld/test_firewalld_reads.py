"""backends/firewalld/bus.py reads firewalld with fewer round trips (check's speed):
the runtime's zone bindings from one getActiveZones, the permanent sources
by zone object path, each read once until vrrpfw changes something, and
the generation stamp from the listing the path model reads anyway.  Each
is compared here with the per-zone calls and the nft listing it replaces,
against a real firewalld whose runtime and permanent configuration differ
(a permanent change not reloaded yet, a runtime-only binding), on both of
firewalld's backends."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from fwharness import firewalld_host

pytestmark = pytest.mark.integration

READS = textwrap.dedent("""
    import json, sys
    from vrrpfw.backends.firewalld.bus import Firewalld
    from vrrpfw.backends.firewalld.owner import generation_marks, runtime_generation
    from vrrpfw.host.nft import nft_json
    from vrrpfw.judge.read.nft import read as nft_read

    fw = Firewalld()
    out = {"new": {}, "old": {}}
    for layer in ("runtime", "permanent"):
        out["new"][layer] = fw.source_bindings(layer)
    # The calls the new reads replace: per zone, by name.
    old_rt = {z: sorted(str(s) for s in fw.zone.getSources(z)) for z in fw.zone.getZones()}
    old_pm = {z: sorted(str(s) for s in fw.zone_cfg(z).getSources()) for z in fw.config.getZoneNames()}
    out["old"]["runtime"] = {z: v for z, v in old_rt.items() if v}
    out["old"]["permanent"] = {z: v for z, v in old_pm.items() if v}
    out["members"] = {z: [fw.interfaces("runtime", z), fw.sources("runtime", z)] for z in fw.zones("runtime")}
    out["members_old"] = {z: [[str(i) for i in fw.zone.getInterfaces(z)],
                              [str(s) for s in fw.zone.getSources(z)]] for z in fw.zone.getZones()}
    # Remembered reads follow vrrpfw's own changes.
    rich = 'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
    seen = [fw.has("runtime", "work", "rich", rich)]
    fw.change("runtime", True, "work", "rich", rich)
    seen.append(fw.has("runtime", "work", "rich", rich))
    fw.change("runtime", False, "work", "rich", rich)
    seen.append(fw.has("runtime", "work", "rich", rich))
    out["has"] = seen
    backend = fw.backend()
    heads = nft_json(["list", "chains"])
    marks = generation_marks(backend, nft_read(heads=heads), heads)
    out["generation"] = [runtime_generation(backend), runtime_generation(backend, marks)]
    print(json.dumps(out))
""")


def reads(fw) -> dict:
    proc = fw.host.run(sys.executable, "-c", READS, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_fewer_round_trips_read_what_the_per_zone_calls_read(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        fw.cmd("--zone=work", "--change-interface", iface)  # runtime only: permanent keeps it unbound
        fw.cmd("--zone=internal", "--add-source=198.51.100.0/24")  # runtime only
        fw.cmd("--permanent", "--zone=dmz", "--add-source=192.0.2.128/25")  # permanent, not reloaded
        for layer in ([], ["--permanent"]):
            fw.cmd(*layer, "--zone=work", "--add-source=198.51.100.7")
        got = reads(fw)
        assert got["new"] == got["old"], got
        assert got["new"]["runtime"] == {"internal": ["198.51.100.0/24"], "work": ["198.51.100.7"]}
        assert got["new"]["permanent"] == {"dmz": ["192.0.2.128/25"], "work": ["198.51.100.7"]}
        assert got["members"] == got["members_old"]
        assert got["members"]["work"] == [[iface], ["198.51.100.7"]]
        assert got["has"] == [False, True, False]
        before = got["generation"]
        assert before[0] == before[1], before
        assert before[0] is not None  # iptables backend: iptables-nft's INPUT_ZONES
        fw.cmd("--reload")  # a new generation: the table (or chain) made afresh
        after = reads(fw)["generation"]
        assert after[0] == after[1] and after[0] is not None and after[0] != before[0], (before, after)


SCANS = textwrap.dedent("""
    import json
    from vrrpfw.backends.registry import choose_auto
    from vrrpfw.host.hostscan import scan

    full, quick = scan(), scan(firewalld_first=True)
    print(json.dumps({name: [len(s.nft_chains), s.nft_rules_read, s.firewalld_tables, choose_auto(s)]
                      for name, s in (("full", full), ("quick", quick))}))
""")


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_a_scan_for_firewalld_skips_the_chains_rules_and_chooses_as_before(tmp_path, backend):
    """Where firewalld answers, choosing a backend looks at firewalld alone:
    run's scan (firewalld_first) lists no chain's rules (some thirty nft
    runs on the iptables backend over iptables-nft) and auto chooses what
    the full scan (`vrrpfw backends`) chooses."""
    with firewalld_host(tmp_path, backend) as fw:
        fw.host.run("nft", "add table inet admin { chain input { type filter hook input priority 10; "
                    "policy drop; }; }")  # a filter chain outside firewalld's tables
        proc = fw.host.run(sys.executable, "-c", SCANS, check=False)
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        n_full, read_full, tables_full, auto_full = got["full"]
        n_quick, read_quick, tables_quick, auto_quick = got["quick"]
        assert n_full >= 1 and read_full is True
        assert n_quick == 0 and read_quick is False
        assert tables_quick == tables_full and auto_quick == auto_full
        assert auto_full[0] == ["firewalld"]
