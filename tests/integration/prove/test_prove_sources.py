"""``prove --from ADDR`` (and ``check --from ADDR --prove``): the replay
sends multicast adverts from exactly the peers named, and ``open`` in the
replica gets the same --from.  Held against real adverts from that address
in the namespace the test owns."""

from __future__ import annotations

import json
import sys

import pytest
from fwharness import firewalld_host
from netns import pair

from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

BOUND = "192.0.2.2"  # the peer end's address
OTHER = "192.0.2.3"  # another address on the link


def prove_json(host, iface, *args):
    proc = host.run(sys.executable, "-m", "vrrpfw", "prove", "-i", iface, "--json", "--count", "5", *args,
                    check=False)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON from prove: {proc.stdout}\n{proc.stderr}") from None


def test_prove_from_replays_the_named_source_and_open_from_lets_it_in():
    """nftables: the admin's chain drops adverts from 192.0.2.2 only.
    Real adverts from it: 0 delivered; the replay from it: 0/5 today, 5/5
    after `open --from 192.0.2.2` in the replica, and the real open --from
    then lets them in."""
    with pair("vrps") as p:
        p.host.run("nft", "add table inet filter; add chain inet filter input { type filter hook input "
                   "priority 0; policy accept; }; add rule inet filter input ip saddr 192.0.2.2 drop")
        real = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 5, "224.0.0.18", source=BOUND)
        assert (real.wire, real.delivered) == (5, 0), real
        rc, out = prove_json(p.host, p.host_if, "--from", BOUND)
        (result,) = out["interfaces"]
        assert list(result["today"]["inbound"]) == [BOUND], result
        assert result["today"]["inbound"][BOUND]["arrived"] == 0, result
        assert result["after"]["inbound"][BOUND]["arrived"] == 5, result
        assert rc == 0, out
        opened = p.host.vrrpfw("open", "--iface", p.host_if, "--from", BOUND, "--no-persist")
        assert opened.returncode == 0, opened.stdout + opened.stderr
        real = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 5, "224.0.0.18", source=BOUND)
        assert real.delivered == 5, real


def test_prove_from_through_a_source_bound_firewalld_zone(tmp_path):
    """firewalld (nftables): public lets VRRP in, internal (bound to
    192.0.2.2) does not.  The replay of firewalld's table agrees with real
    adverts from each source named with --from: 0 from 192.0.2.2, all from
    192.0.2.3 (public); after open is not measured (firewalld does not run
    in the replica) and prove says so; check --from --prove agrees."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--add-protocol=vrrp")
        fw.cmd("--zone=internal", f"--add-source={BOUND}/32")
        p = fw.pair
        p.peer.run("ip", "addr", "add", f"{OTHER}/24", "dev", p.peer_if)
        for source, want in ((BOUND, 0), (OTHER, 5)):
            real = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 5, "224.0.0.18", source=source)
            assert (real.wire, real.delivered) == (5, want), (source, real)
            rc, out = prove_json(fw.host, iface, "--from", source)
            (result,) = out["interfaces"]
            assert list(result["today"]["inbound"]) == [source], result
            assert result["today"]["inbound"][source]["arrived"] == want, result
            assert result["after"] is None and rc == 1, out
            assert any("firewalld itself does not run" in x for x in out["limits"]), out["limits"]
        proc = fw.vrrpfw("check", "--iface", iface, "--from", BOUND, "--prove")
        assert proc.returncode == 1 and "runtime missing" in proc.stdout, proc.stdout
        assert f"{iface}: inbound today 0/20" in proc.stdout, proc.stdout
        proc = fw.vrrpfw("check", "--iface", iface, "--from", OTHER, "--prove")
        assert "runtime allowed-by-other" in proc.stdout, proc.stdout
        assert f"{iface}: inbound today 20/20" in proc.stdout, proc.stdout
