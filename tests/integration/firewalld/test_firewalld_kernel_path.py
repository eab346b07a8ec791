"""firewalld's iptables backend: the kernel's iptables path is judged, not
only firewalld's configuration over D-Bus.  A passthrough or a plain
iptables rule dropping VRRP at the top of INPUT shows nowhere in the
configuration; before, ``check`` said "allowed" (exit 0) while real adverts
were dropped.  Real firewalld in a namespace on a private bus, real
adverts; the same firewalld first shows the plain case (allowed, 20/20)."""

from __future__ import annotations

import pytest
from fwharness import firewalld_host, inbound
from test_firewalld_services import both, define_services, inbound_rule

pytestmark = [pytest.mark.integration, pytest.mark.needs("firewalld")]

DROP = ("-I", "INPUT", "1", "-p", "vrrp", "-j", "DROP")


@pytest.mark.parametrize("how", ["passthrough", "iptables"])
def test_a_drop_above_firewalld_chains_is_not_allowed(tmp_path, how):
    with firewalld_host(tmp_path, "iptables") as fw:
        iface = fw.pair.host_if
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0, out
        assert inbound_rule(out)["runtime"] == "allowed"
        assert inbound(fw)["delivered"] == 20  # the kernel agrees: no false alarm in the plain case
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 0 and inbound_rule(out)["runtime"] == "allowed", out

        if how == "passthrough":
            fw.cmd("--direct", "--passthrough", "ipv4", *DROP)
        else:
            fw.pair.host.run("iptables", *DROP)  # the tables firewalld writes (its IPTables command)
        got = inbound(fw)
        assert got["wire"] == 20 and got["delivered"] == 0, got

        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        rule = inbound_rule(out)
        assert rc == 1, out
        assert rule["runtime"] == "shadowed", rule  # vrrpfw's direct rule is there, the drop runs first
        assert "filter INPUT" in rule["detail"] and "drop" in rule["detail"], rule
        # open cannot fix it (vrrpfw writes only firewalld's direct rules): exit 1, the rule named
        assert any("filter INPUT" in b and "vrrp drop" in b for b in out["blockers"]), out["blockers"]
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 1, out
        assert inbound_rule(out)["runtime"] == "shadowed", out
        assert any("vrrp drop" in b for b in out["blockers"]), out["blockers"]
        assert inbound(fw)["delivered"] == 0


def test_the_admins_direct_drop_of_a_lower_priority_is_named_as_a_blocker(tmp_path):
    """The admin's direct rule at priority -1 runs before vrrpfw's (priority
    0) in INPUT_direct: open cannot let the adverts past it, so it names the
    rule as what still blocks them (exit 1, 0/20)."""
    with firewalld_host(tmp_path, "iptables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--direct", "--add-rule", "ipv4", "filter", "INPUT", "-1", "-p", "vrrp", "-j", "DROP")
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 1, out
        assert inbound_rule(out)["runtime"] != "allowed", out
        assert any("INPUT_direct" in b and "vrrp drop" in b for b in out["blockers"]), out["blockers"]
        got = inbound(fw)
        assert got["wire"] == 20 and got["delivered"] == 0, got


def test_a_drop_inside_firewalld_chains_is_opened_and_a_legacy_drop_is_named(tmp_path):
    """A plain iptables drop in firewalld's zone chain (IN_public), after
    INPUT_direct: the zone's service allows VRRP by the configuration, the
    kernel drops it: check says missing (exit 1), and open's direct rule
    runs first and lets the adverts in (20/20, exit 0).  Then a drop in the
    legacy filter table (another layer; the kernel runs both): shadowed,
    exit 1, named as a blocker."""
    with firewalld_host(tmp_path, "iptables") as fw:
        iface = fw.pair.host_if
        define_services(fw, "keepalived")
        both(fw, "--add-service=keepalived")
        fw.pair.host.run("iptables", "-I", "IN_public", "1", "-p", "vrrp", "-j", "DROP")
        got = inbound(fw)
        assert got["wire"] == 20 and got["delivered"] == 0, got
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        rule = inbound_rule(out)
        assert rc == 1 and rule["runtime"] == "missing", out
        assert "IN_public" in rule["detail"] and "service keepalived" in rule["detail"], rule
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and inbound_rule(out)["runtime"] == "allowed", out
        assert inbound(fw)["delivered"] == 20

        fw.pair.host.run("iptables-legacy", *DROP)
        assert inbound(fw)["delivered"] == 0
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and inbound_rule(out)["runtime"] == "shadowed", out
        assert any(b.startswith("legacy filter INPUT: dropped by -A INPUT -p vrrp -j DROP")
                   for b in out["blockers"]), out["blockers"]
