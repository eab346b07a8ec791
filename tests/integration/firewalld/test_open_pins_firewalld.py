"""``open`` pins its allowance in the interface's firewalld zone where the
zone lets VRRP in by its target alone (trusted, target ACCEPT): runtime and
permanent, so a later target change keeps VRRP flowing.  Real firewalld
(both FirewallBackend values: a rich rule on nftables, a direct rule on
iptables) on a private bus in namespaces, real adverts."""

from __future__ import annotations

import pytest
from fwharness import firewalld_host, inbound

pytestmark = pytest.mark.integration

RICH = 'rule priority="-32768" family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'


def pinned(fw, backend, *permanent):
    """vrrpfw's inbound allowance, as firewalld lists it (runtime, or with
    "--permanent" the permanent configuration)."""
    if backend == "nftables":
        return fw.cmd(*permanent, "--zone=trusted", "--list-rich-rules") == RICH
    ours = f"ipv4 filter INPUT 0 -i {fw.pair.host_if} -d 224.0.0.18 -p 112 -m comment --comment vrrpfw"
    return ours in fw.cmd(*permanent, "--direct", "--get-all-rules")


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_zone_accepting_by_target_gets_vrrpfws_allowance_pinned(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        fw.cmd("--zone=trusted", "--add-interface", iface)
        fw.cmd("--permanent", "--zone=trusted", "--add-interface", iface)
        assert inbound(fw)["delivered"] == 20

        rc, out = fw.vrrpfw_json("open", "--iface", iface, "--family", "ipv4")
        assert rc == 0 and out["changed"] is True, out
        rin = next(r for r in out["rules"] if r["direction"] == "in")
        assert (rin["runtime"], rin["persisted"]) == ("allowed", "present"), out
        assert pinned(fw, backend) and pinned(fw, backend, "--permanent")

        rc, out = fw.vrrpfw_json("open", "--iface", iface, "--family", "ipv4")
        assert rc == 0 and out["changed"] is False, out
        rc, out = fw.vrrpfw_json("check", "--iface", iface, "--family", "ipv4")
        rin = next(r for r in out["rules"] if r["direction"] == "in")
        assert rc == 0 and rin["runtime"] == "allowed", out

        fw.cmd("--permanent", "--zone=trusted", "--set-target=DROP")
        fw.cmd("--reload")
        assert inbound(fw)["delivered"] == 20, "the pinned allowance must keep VRRP in"

        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is True, out
        assert not pinned(fw, backend) and not pinned(fw, backend, "--permanent")
        assert fw.cmd("--zone=trusted", "--list-rich-rules") == ""
        assert fw.cmd("--permanent", "--zone=trusted", "--list-rich-rules") == ""
        assert "vrrpfw" not in fw.cmd("--permanent", "--direct", "--get-all-rules")
        got = inbound(fw)
        assert got["wire"] == 20 and got["delivered"] == 0
