"""Which firewalld services are the admin's allowance for VRRP (pure, a
fake D-Bus client): any service in the zone, shipped or the admin's,
whose definition (or a service it includes) lets the rule's adverts in."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from vrrpfw.backends.base import Options
from vrrpfw.backends.firewalld import layer as firewalld_layer
from vrrpfw.backends.firewalld.layer import _Layer
from vrrpfw.backends.firewalld.owner import Ownership
from vrrpfw.errors import InputError
from vrrpfw.model import AH_PROTO, Direction, Family, VrrpRule
from vrrpfw.persist.state import StateFile

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

V4 = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
V6 = VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6)
AH = VrrpRule(Direction.IN, "eth0", "224.0.0.18", Family.IPV4, AH_PROTO)


class FakeFw:
    def __init__(self, services: Dict[str, Dict[str, Any]], zone: List[str]) -> None:
        self.services, self.zone, self.reads = services, zone, []

    def target(self, layer, zone):
        return "default"

    def zone_services(self, layer, zone):
        return list(self.zone)

    def service_settings(self, layer, name):
        self.reads.append(name)
        if name not in self.services:
            raise InputError(f"firewalld: INVALID_SERVICE: {name}")
        return self.services[name]

    def has(self, layer, zone, kind, value):
        return False

    def rich_rules(self, layer, zone):
        return []

    def policy_settings(self, layer, policy):
        return {"services": list(self.zone), "protocols": [], "rich_rules": []}


def other(services, zone, rule=V4):
    fw = FakeFw(services, zone)
    return _Layer(fw, StateFile("/nonexistent/state.json"), "zone", "runtime", None).other_allowance(
        "public", rule)  # type: ignore[arg-type]


@pytest.mark.parametrize("settings, rule, allowed", [
    ({"protocols": ["vrrp"]}, V4, True),
    ({"protocols": ["vrrp"]}, V6, True),
    ({"protocols": ["112"]}, V4, True),
    ({"protocols": ["VRRP"]}, V4, True),
    ({"protocols": ["vrrp"], "destination": {"ipv4": "224.0.0.18"}}, V4, True),
    ({"protocols": ["vrrp"], "destination": {"ipv4": "224.0.0.0/24"}}, V4, True),
    ({"protocols": ["vrrp"], "destination": {"ipv4": "224.0.0.19"}}, V4, False),
    ({"protocols": ["vrrp"], "destination": {"ipv4": "224.0.0.18"}}, V6, False),  # not applied to IPv6
    ({"protocols": ["vrrp"], "destination": {"ipv6": "ff02::12"}}, V6, True),
    ({"protocols": ["ah"]}, AH, True),
    ({"protocols": ["vrrp"]}, AH, False),
    ({"protocols": ["ah"]}, V4, False),
    ({"ports": [("112", "tcp")]}, V4, False),
])
def test_a_custom_service_counts_by_its_definition(settings, rule, allowed):
    found = other({"ha": settings, "ssh": {"ports": [("22", "tcp")]}}, ["ssh", "ha"], rule)
    assert found == ("service ha in zone public" if allowed else None)


def test_a_service_counts_through_the_services_it_includes_and_a_loop_ends():
    services = {"outer": {"includes": ["middle"]}, "middle": {"includes": ["outer", "inner"]},
                "inner": {"protocols": ["vrrp"]}, "loop": {"includes": ["loop"]}}
    assert other(services, ["loop", "outer"]) == "service outer in zone public"
    assert other({k: v for k, v in services.items() if k != "inner"}, ["outer"]) is None  # include unknown


def test_a_zone_naming_an_undefined_service_is_not_an_allowance():
    assert other({}, ["gone"]) is None


def test_each_service_is_read_once_per_layer():
    fw = FakeFw({"ha": {"includes": ["ha"]}, "ssh": {}}, ["ssh", "ha"])
    layer = _Layer(fw, StateFile("/nonexistent/state.json"), "zone", "runtime", None)  # type: ignore[arg-type]
    for _ in range(3):
        assert layer.other_allowance("public", V4) is None
    assert sorted(fw.reads) == ["ha", "ssh"]


def test_a_policy_service_or_protocol_is_listed():
    fw = FakeFw({"ha": {"protocols": ["vrrp"]}}, ["ha"])
    layers = {n: _Layer(fw, StateFile("/nonexistent/state.json"), "zone", n, None)  # type: ignore[arg-type]
              for n in ("runtime", "permanent")}
    own = Ownership(fw, StateFile("/nonexistent/state.json"), Options(), layers.__getitem__)  # type: ignore[arg-type]
    out = VrrpRule(Direction.OUT, "eth0", "224.0.0.18")
    assert own.listed("policy:allow-host-out", out)
    fw.services = {"ha": {"protocols": ["ah"]}}
    layers["runtime"]._service_memo.clear()
    assert not own.listed("policy:allow-host-out", out)


class FakeFwRich(FakeFw):
    def __init__(self, rich: List[str], target: str = "default") -> None:
        super().__init__({"keepalived": {"protocols": ["vrrp"]}}, ["keepalived"])
        self.rich, self.zone_target = rich, target

    def target(self, layer, zone):
        return self.zone_target

    def rich_rules(self, layer, zone):
        return list(self.rich)


def unshadowed(rich, rule=V4, target="default"):
    """The allowance the iptables backend's direct mode sees (it judges the
    zone by its configuration, not by the kernel's path)."""
    layer = _Layer(FakeFwRich(rich, target), StateFile("/nonexistent/state.json"), "direct", "runtime",
                   None)  # type: ignore[arg-type]
    return layer._other_allowance("public", rule, unshadowed=True)


@pytest.mark.parametrize("rich, rule, allowed", [
    # firewalld's zone chain: rich rules of priority < 0, deny rules, then
    # services / protocols / accepts, then priority > 0, then the target.
    ([], V4, True),
    (['rule priority="-10" family="ipv4" protocol value="vrrp" drop'], V4, False),
    (['rule family="ipv4" protocol value="vrrp" reject'], V4, False),
    (['rule family="ipv4" source address="192.0.2.7" drop'], V4, False),  # a peer on the link may be it
    (['rule family="ipv4" source address="192.0.0.0/16" reject'], V4, False),
    (['rule family="ipv4" source address="198.51.100.0/24" drop'], V4, True),  # off the link: no peer there
    (['rule family="ipv4" source not address="198.51.100.0/24" drop'], V4, False),
    (['rule family="ipv4" source ipset="blocked" drop'], V4, False),
    (['rule family="ipv4" service name="keepalived" drop'], V4, False),
    (['rule protocol value="vrrp" drop limit value="1/m"'], V4, False),
    (['rule priority="5" family="ipv4" protocol value="vrrp" drop'], V4, True),  # after the service
    (['rule family="ipv6" protocol value="vrrp" drop'], V4, True),
    (['rule family="ipv4" protocol value="tcp" drop'], V4, True),
    (['rule family="ipv4" port port="22" protocol="tcp" reject'], V4, True),
    (['rule family="ipv4" icmp-block name="echo-request" drop'], V4, True),
    (['rule family="ipv4" destination address="224.0.0.19" protocol value="vrrp" drop'], V4, True),
    (['rule family="ipv4" destination not address="224.0.0.18" drop'], V4, True),
    (['rule family="ipv4" destination not address="224.0.0.19" drop'], V4, False),
    (['rule family="ipv4" log prefix="drop" accept'], V4, True),  # a quoted "drop" is no action
])
def test_a_deny_rich_rule_that_runs_first_shadows_the_admin_s_allowance(rich, rule, allowed, monkeypatch):
    monkeypatch.setattr(firewalld_layer.ifaddr, "subnets", lambda iface, family: ["192.0.2.0/24"])
    assert (unshadowed(rich, rule) is not None) is allowed


def test_a_rich_accept_before_the_deny_still_counts_and_the_target_runs_last():
    deny = 'rule priority="-10" family="ipv4" protocol value="vrrp" drop'
    first = 'rule priority="-20" family="ipv4" protocol value="vrrp" accept'
    later = 'rule priority="-5" family="ipv4" protocol value="vrrp" accept'
    assert unshadowed([deny, first]) == f"rich rule '{first}' in zone public"
    assert unshadowed([deny, later]) is None
    assert unshadowed(['rule priority="5" protocol value="vrrp" drop'], target="ACCEPT") \
        == "service keepalived in zone public"  # the service runs before the priority-5 deny
    fw = FakeFwRich(['rule priority="5" protocol value="vrrp" drop'], "ACCEPT")
    fw.zone = []
    layer = _Layer(fw, StateFile("/nonexistent/state.json"), "direct", "runtime", None)  # type: ignore[arg-type]
    assert layer._other_allowance("public", V4, unshadowed=True) is None  # the target runs after it
    assert layer.other_allowance("public", V4) == "zone public (target ACCEPT)"  # unchanged for the owners


class FakeFwDirect(FakeFwRich):
    def __init__(self, direct) -> None:
        super().__init__([])
        self.direct = direct

    def direct_rules(self, layer):
        return list(self.direct)

    def zone_of(self, layer, iface):
        return "public"


OURS = ["-i", "eth0", "-d", "224.0.0.18", "-p", "112", "-m", "comment", "--comment", "vrrpfw", "-j", "ACCEPT"]
SEED = ["-i", "eth0", "-p", "vrrp", "-j", "ACCEPT"]


def direct_status(*rules):
    fw = FakeFwDirect([("ipv4", "filter", "INPUT", prio, args) for prio, args in rules])
    layer = _Layer(fw, StateFile("/nonexistent/state.json"), "direct", "runtime", None)  # type: ignore[arg-type]
    return layer.status(V4)[0].value


@pytest.mark.parametrize("args, drops", [
    (["-p", "vrrp", "-j", "DROP"], True),
    (["-j", "REJECT"], True),
    (["-p", "112", "-j", "admin_chain"], True),  # a chain that may drop
    (["-i", "eth+", "-p", "all", "-j", "DROP"], True),
    (["!", "-s", "192.0.2.0/24", "-j", "DROP"], True),
    (["-p", "tcp", "--dport", "22", "-j", "DROP"], False),
    (["-i", "eth1", "-j", "DROP"], False),
    (["-d", "224.0.0.19", "-j", "DROP"], False),
    (["-p", "vrrp", "-j", "LOG"], False),
    (["-p", "vrrp", "-j", "ACCEPT"], False),
])
def test_direct_rules_that_may_drop_an_advert(args, drops):
    assert direct_status((0, OURS), (-1, args)) == ("uncertain" if drops else "allowed")
    # the zone's service comes after every direct rule
    assert direct_status((-1, args)) == ("missing" if drops else "allowed-by-other")
    assert direct_status((0, SEED), (-1, args)) == ("missing" if drops else "allowed-by-other")


def test_a_direct_drop_after_vrrpfw_s_rule_leaves_it_deciding():
    drop = ["-p", "vrrp", "-j", "DROP"]
    assert direct_status((0, OURS), (5, drop)) == "allowed"
    assert direct_status((0, OURS), (0, drop)) == "uncertain"  # one priority: the order added decides
    assert direct_status((0, SEED), (5, drop)) == "allowed-by-other"
    assert direct_status() == "allowed-by-other"  # the zone's service, nothing before it
