"""Multicast adverts from a peer whose address a firewalld zone binds as a
source: that zone, not the interface's, judges them.  Real firewalld in a
namespace on a private bus, real adverts from the bound source (and from
another address on the link), counted before open, after open and after
close.

Without --from, open opens every zone whose bound sources (addresses,
ipsets) overlap the interface's subnet, and the interface's zone for the
rest of the link; --from ADDR judges exactly the peers named."""

from __future__ import annotations

from typing import List

import pytest
from fwharness import FirewalldHost, firewalld_host
from netns import add_ipv6

from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

BOUND = "192.0.2.2"  # the peer's address, bound to zone internal
OTHER = "192.0.2.3"  # another peer on the link, bound to no zone
RICH = 'rule priority="-32768" family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
COUNT = 10


def delivered(fw: FirewalldHost, source: str) -> int:
    """Multicast adverts from ``source`` (an address of the peer's end)."""
    p = fw.pair
    got = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, COUNT, "224.0.0.18", source=source)
    assert got.wire == COUNT, got  # the link carried them: a shortfall below is the firewall's
    return got.delivered


def both_layers(fw: FirewalldHost, *args: str) -> None:
    for layer in ([], ["--permanent"]):
        fw.cmd(*layer, *args)


def rich(fw: FirewalldHost, zone: str, permanent: bool = False) -> List[str]:
    layer = ["--permanent"] if permanent else []
    return fw.cmd(*layer, f"--zone={zone}", "--list-rich-rules").splitlines()


def second_peer(fw: FirewalldHost) -> None:
    fw.pair.peer.run("ip", "addr", "add", f"{OTHER}/24", "dev", fw.pair.peer_if)


def test_open_without_options_opens_the_source_bound_zone_and_says_so(tmp_path):
    """The measured problem: eth in public, 192.0.2.2/32 bound to internal.
    Before, open exited 1 advising --peer (unicast). Now open opens
    internal (its source overlaps the subnet) and public (the rest of the
    link), names internal in a note, and the adverts of both peers arrive;
    close takes both allowances away again, runtime and permanent."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        second_peer(fw)
        both_layers(fw, "--zone=internal", f"--add-source={BOUND}/32")
        assert delivered(fw, BOUND) == 0 and delivered(fw, OTHER) == 0

        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and out["rules"][0]["runtime"] == "uncertain", out["rules"]
        advice = [w for w in out["warnings"] if w.startswith("zone internal: its bound source")]
        assert advice and "--peer" not in " ".join(out["warnings"]), out["warnings"]

        proc = fw.vrrpfw("open", "--iface", iface, "--dry-run")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for zone in ("internal", "public"):
            assert f"runtime: zone {zone}: add rich rule {RICH}" in proc.stdout, proc.stdout
            assert rich(fw, zone) == []

        rc, out = fw.vrrpfw_json("open", "--iface", iface)  # following the advice
        assert rc == 0 and out["changed"] is True, out
        assert any(w.startswith("zone internal: its bound source") and f"{BOUND}" in w and "192.0.2.0/24" in w
                   for w in out["warnings"]), out["warnings"]
        assert out["rules"][0]["runtime"] == "allowed", out["rules"]
        for zone in ("internal", "public"):
            assert rich(fw, zone) == [RICH] and rich(fw, zone, permanent=True) == [RICH], zone
        assert delivered(fw, BOUND) == COUNT and delivered(fw, OTHER) == COUNT

        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["changed"] is False, out
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 0 and out["rules"][0]["runtime"] == "allowed", out["rules"]

        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is True, out
        for zone in ("internal", "public"):
            assert rich(fw, zone) == [] and rich(fw, zone, permanent=True) == [], zone
        assert delivered(fw, BOUND) == 0 and delivered(fw, OTHER) == 0


def test_from_judges_and_opens_exactly_the_named_peers(tmp_path):
    """--from 192.0.2.2: its zone (internal) is judged and opened, and
    nothing else: the interface's zone stays shut for a peer not named."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        second_peer(fw)
        both_layers(fw, "--zone=internal", f"--add-source={BOUND}/32")
        rc, out = fw.vrrpfw_json("check", "--iface", iface, "--from", BOUND)
        assert rc == 1 and out["rules"][0]["runtime"] == "missing", out["rules"]
        assert "zone internal" in out["rules"][0]["detail"]

        rc, out = fw.vrrpfw_json("open", "--iface", iface, "--from", BOUND)
        assert rc == 0 and out["changed"] is True, out
        assert rich(fw, "internal") == [RICH] and rich(fw, "internal", permanent=True) == [RICH]
        assert rich(fw, "public") == [] and rich(fw, "public", permanent=True) == []
        assert delivered(fw, BOUND) == COUNT
        assert delivered(fw, OTHER) == 0  # not named: not opened
        rc, out = fw.vrrpfw_json("check", "--iface", iface, "--from", BOUND)
        assert rc == 0, out
        # --from is not remembered: without it the whole link is judged, and 192.0.2.3 is shut out
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and out["rules"][0]["runtime"] == "uncertain", out["rules"]

        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert rich(fw, "internal") == [] and rich(fw, "internal", permanent=True) == []
        assert delivered(fw, BOUND) == 0


def test_an_ipset_bound_source_that_overlaps_the_subnet_is_opened(tmp_path):
    """internal bound to ipset:peers (hash:net 192.0.2.0/28, holding the
    peer): the set overlaps the /24, so open opens internal too.  work,
    bound to a network the link does not hold (198.51.100.0/24), judges no
    advert from a peer on the link: open leaves it shut."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--permanent", "--new-ipset=vrrppeers", "--type=hash:net")
        fw.cmd("--permanent", "--ipset=vrrppeers", "--add-entry=192.0.2.0/28")
        fw.cmd("--permanent", "--zone=internal", "--add-source=ipset:vrrppeers")
        fw.cmd("--permanent", "--zone=work", "--add-source=198.51.100.0/24")
        fw.cmd("--reload")
        assert delivered(fw, BOUND) == 0
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0, out
        assert any(w.startswith("zone internal: its bound source") and "@vrrppeers" in w
                   for w in out["warnings"]), out["warnings"]
        assert rich(fw, "internal") == [RICH] and rich(fw, "public") == [RICH]
        assert rich(fw, "work") == [] and not any(w.startswith("zone work:") for w in out["warnings"]), out
        assert delivered(fw, BOUND) == COUNT
        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert rich(fw, "internal") == [] and rich(fw, "public") == []
        assert delivered(fw, BOUND) == 0


def test_iptables_backend_direct_rule_lets_the_bound_source_in(tmp_path):
    """firewalld's iptables backend: vrrpfw's direct rule in INPUT comes
    before the zone dispatch, so the bound source's adverts arrive too."""
    with firewalld_host(tmp_path, "iptables") as fw:
        iface = fw.pair.host_if
        both_layers(fw, "--zone=internal", f"--add-source={BOUND}/32")
        assert delivered(fw, BOUND) == 0
        rc, out = fw.vrrpfw_json("open", "--iface", iface, "--from", BOUND)
        assert rc == 0, out
        assert delivered(fw, BOUND) == COUNT
        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert delivered(fw, BOUND) == 0


def test_ipv6_a_zone_bound_to_the_peers_link_local_address_is_opened(tmp_path):
    """VRRPv3 over IPv6 comes from the peer's link-local address: a zone
    bound to it (fe80::2) overlaps the interface's fe80::/64, so open
    --family ipv6 opens it too, and the adverts to ff02::12 arrive."""
    rich6 = ('rule priority="-32768" family="ipv6" destination address="ff02::12" protocol value="vrrp" '
             'accept')
    with firewalld_host(tmp_path, "nftables") as fw:
        iface, p = fw.pair.host_if, fw.pair
        add_ipv6(p)
        both_layers(fw, "--zone=internal", "--add-source=fe80::2")

        def got() -> int:
            counts = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, COUNT, "ff02::12")
            assert counts.wire == COUNT, counts
            return counts.delivered

        assert got() == 0
        rc, out = fw.vrrpfw_json("open", "--iface", iface, "--family", "ipv6")
        assert rc == 0, out
        assert any(w.startswith("zone internal: its bound source") and "fe80::/64" in w
                   for w in out["warnings"]), out["warnings"]
        assert rich(fw, "internal") == [rich6] and rich(fw, "public") == [rich6]
        assert got() == COUNT
        assert fw.vrrpfw("close", "--iface", iface).returncode == 0
        assert rich(fw, "internal") == [] and got() == 0
