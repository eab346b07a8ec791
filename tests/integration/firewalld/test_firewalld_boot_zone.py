"""firewalld with the interface in one zone at runtime and another in the
permanent configuration (bound with ``--add-interface`` but not
``--permanent``): ``check``'s persisted verdict is about the zone the
interface is in after firewalld restarts, and the restart proves it with
real adverts."""

from __future__ import annotations

import sys

import pytest
from fwharness import firewalld_host, inbound

from vrrpfw.prove.netns import release

pytestmark = [pytest.mark.integration, pytest.mark.needs("firewalld")]

RICH = 'rule priority="-32768" family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
NM_STAND_IN = ("import dbus, time; bus = dbus.SystemBus(); "
               "assert bus.request_name('org.freedesktop.NetworkManager') == 1; "
               "print('owned', flush=True); time.sleep(60)")
ADMIN = 'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'


def verdict(out):
    return next(r for r in out["rules"] if r["direction"] == "in")


def test_persisted_follows_the_zone_after_a_restart(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--zone=internal", "--add-interface", iface)  # runtime only: public after a restart
        # The admin allowed VRRP in internal, runtime and permanent: it
        # passes now, and the permanent configuration has it, in the wrong zone.
        fw.cmd("--zone=internal", "--add-rich-rule", ADMIN)
        fw.cmd("--permanent", "--zone=internal", "--add-rich-rule", ADMIN)
        assert inbound(fw)["delivered"] == 20
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        before = verdict(out)
        assert rc == 1 and before["persisted"] == "missing", (rc, before)

        fw.restart()  # the verdict was true: after a restart the adverts are dropped
        assert fw.cmd("--get-default-zone") == "public"  # iface is in no zone: the default one
        assert inbound(fw)["delivered"] == 0

        fw.cmd("--zone=internal", "--change-interface", iface)  # runtime only, again
        fw.cmd("--zone=internal", "--remove-rich-rule", ADMIN)  # runtime: nothing allows VRRP now
        assert inbound(fw)["delivered"] == 0
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["changed"] is True, out
        note = out["persist"][0]["note"] or ""
        assert f"{iface} is in zone internal now, in public after a reload" in note, out["persist"]
        assert fw.cmd("--permanent", "--zone=public", "--list-rich-rules") == RICH
        assert fw.cmd("--zone=public", "--list-rich-rules") == ""  # the runtime zone is internal
        assert fw.cmd("--zone=internal", "--list-rich-rules") == RICH
        assert inbound(fw)["delivered"] == 20
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 0 and verdict(out)["persisted"] == "present", (rc, out)

        fw.restart()  # "present" was true: after a restart the adverts pass
        assert fw.cmd("--get-default-zone") == "public"  # iface is in no zone: the default one
        assert inbound(fw)["delivered"] == 20

        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0, out
        assert fw.cmd("--permanent", "--zone=public", "--list-rich-rules") == ""
        assert ADMIN in fw.cmd("--permanent", "--zone=internal", "--list-rich-rules")  # not vrrpfw's
        # The runtime allowance came from the permanent one at the restart:
        # not in vrrpfw's record of the runtime, so it goes at the next restart.
        fw.restart()
        assert inbound(fw)["delivered"] == 0


def test_open_in_runtime_zone_allows_both_zones_permanently(tmp_path):
    """Nothing allows VRRP: open adds the runtime allowance to the runtime
    zone and the permanent one to both; close removes all it added."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--zone=internal", "--add-interface", iface)
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and verdict(out)["persisted"] == "missing", (rc, out)
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0, out
        assert fw.cmd("--zone=internal", "--list-rich-rules") == RICH
        assert fw.cmd("--permanent", "--zone=internal", "--list-rich-rules") == RICH
        assert fw.cmd("--permanent", "--zone=public", "--list-rich-rules") == RICH
        assert inbound(fw)["delivered"] == 20
        # A stand-in owns NetworkManager's bus name: the note says that NM's
        # connection.zone decides the zone at boot, which firewalld cannot show.
        nm = fw.host.popen(sys.executable, "-c", NM_STAND_IN)
        try:
            assert nm.stdout is not None and nm.stdout.readline().strip() == "owned"
            rc, out = fw.vrrpfw_json("check", "--iface", iface)
        finally:
            release(nm)
        assert rc == 0 and verdict(out)["persisted"] == "present", (rc, out)
        note = out["persist"][0]["note"] or ""
        assert "NetworkManager runs" in note and "connection.zone" in note, out["persist"]
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert "NetworkManager" not in (out["persist"][0]["note"] or ""), out["persist"]
        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0, out
        for args in (("--zone=internal",), ("--permanent", "--zone=internal"),
                     ("--permanent", "--zone=public")):
            assert fw.cmd(*args, "--list-rich-rules") == "", args
        assert inbound(fw)["delivered"] == 0


def test_source_bound_at_runtime_only_is_not_called_persisted(tmp_path):
    """The peer's address bound to zone trusted at runtime only: the adverts
    pass now; after a restart the interface's zone judges them and drops
    them, so check must not call them persisted."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--zone=trusted", "--add-source", "192.0.2.2/32")  # no --permanent
        assert inbound(fw)["delivered"] == 20
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        persisted = verdict(out)["persisted"]
        assert persisted != "present", out
        assert rc == 1, out
        note = out["persist"][0]["note"] or ""
        assert "bound at runtime only: 192.0.2.2/32 -> zone trusted" in note, out["persist"]
        fw.restart()  # the verdict was true: after a restart the adverts are dropped
        assert inbound(fw)["delivered"] == 0


def test_source_bound_in_the_permanent_configuration_only_is_not_called_persisted(tmp_path):
    """The peer's address bound to zone drop in the permanent configuration
    only: vrrpfw's allowance in the interface's zone works now, but after a
    restart zone drop judges the peer's adverts, so check must not call
    them persisted: "uncertain" (vrrpfw does not match peers against the
    bindings)."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--permanent", "--zone=drop", "--add-source", "192.0.2.2/32")
        fw.vrrpfw_json("open", "--iface", iface)
        assert fw.cmd("--permanent", "--zone=public", "--list-rich-rules") == RICH
        assert inbound(fw)["delivered"] == 20
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and verdict(out)["persisted"] == "uncertain", (rc, out)
        note = out["persist"][0]["note"] or ""
        assert "bound in the permanent configuration only: 192.0.2.2/32 -> zone drop" in note, out["persist"]
        fw.restart()  # the verdict was true: after a restart zone drop drops the adverts
        assert inbound(fw)["delivered"] == 0


@pytest.mark.parametrize("mode", ["auto", "zone"])
def test_iptables_backend_with_a_runtime_only_zone_survives_a_restart(tmp_path, mode):
    """firewalld's iptables backend: direct rules (auto) do not depend on
    zones; zone mode writes the permanent allowance into the zone the
    permanent configuration gives the interface.  Either way "present"
    must survive a restart."""
    with firewalld_host(tmp_path, "iptables") as fw:
        iface = fw.pair.host_if
        fw.cmd("--zone=internal", "--add-interface", iface)  # runtime only
        assert inbound(fw)["delivered"] == 0
        rc, out = fw.vrrpfw_json("open", "--iface", iface, "--mode", mode)
        assert rc == 0, out
        rc, out = fw.vrrpfw_json("check", "--iface", iface, "--mode", mode)
        assert rc == 0 and verdict(out)["persisted"] == "present", (rc, out)
        fw.restart()
        assert inbound(fw)["delivered"] == 20
