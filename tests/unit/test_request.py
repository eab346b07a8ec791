"""From options or a keepalived configuration to the rules a run opens
(pure: the interface addresses are stubbed)."""

from __future__ import annotations

import pytest

from vrrpfw import request
from vrrpfw.errors import EnvironmentProblem, InputError
from vrrpfw.host import enter_netns as namespace
from vrrpfw.keepalived.conf import parse_text
from vrrpfw.model import Family

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

CONF = """
global_defs {
  vrrp_mcast_group4 224.0.0.19
}
vrrp_instance MC4 {
  interface eth0
  virtual_router_id 10
  virtual_ipaddress {
    192.0.2.100/24
  }
}
vrrp_instance UNI {
  interface eth1
  virtual_router_id 11
  unicast_src_ip 198.51.100.1
  unicast_peer {
    198.51.100.2
    198.51.100.3
  }
  authentication {
    auth_type AH
    auth_pass secret
  }
  virtual_ipaddress {
    198.51.100.100/24
  }
}
vrrp_instance V6 {
  interface eth0
  virtual_router_id 12
  virtual_ipaddress {
    fd00::100/64
  }
}
"""


@pytest.fixture(autouse=True)
def addresses(monkeypatch):
    table = {("eth0", Family.IPV4): "192.0.2.1", ("eth0", Family.IPV6): "fe80::1",
             ("eth1", Family.IPV4): "198.51.100.1"}
    monkeypatch.setattr(request, "local_address", lambda iface, fam: table.get((iface, fam)))


def selectors(req):
    return [(r.direction.value, r.interface, r.selector) for r in req.rules]


def test_each_instance_becomes_its_rules_with_the_derivation():
    req = request.from_conf(parse_text(CONF, "/etc/keepalived/keepalived.conf"))
    assert selectors(req) == [
        ("in", "eth0", "224.0.0.19"), ("out", "eth0", "224.0.0.19"),
        ("in", "eth1", "peer 198.51.100.2 local 198.51.100.1"),
        ("out", "eth1", "peer 198.51.100.2 local 198.51.100.1"),
        ("in", "eth1", "peer 198.51.100.2 local 198.51.100.1 ah"),
        ("out", "eth1", "peer 198.51.100.2 local 198.51.100.1 ah"),
        ("in", "eth1", "peer 198.51.100.3 local 198.51.100.1"),
        ("out", "eth1", "peer 198.51.100.3 local 198.51.100.1"),
        ("in", "eth1", "peer 198.51.100.3 local 198.51.100.1 ah"),
        ("out", "eth1", "peer 198.51.100.3 local 198.51.100.1 ah"),
        ("in", "eth0", "ff02::12"), ("out", "eth0", "ff02::12"),
    ]
    heads = [line for line in req.derivation if not line.startswith(" ")]
    assert heads[0].startswith("/etc/keepalived/keepalived.conf:5: vrrp_instance MC4 (VRID 10, VRRPv2, ipv4)")
    assert "VRRPv3, ipv6" in heads[2]


def test_interfaces_and_family_narrow_the_configuration():
    conf = parse_text(CONF, "k.conf")
    assert {r.interface for r in request.from_conf(conf, ["eth1"]).rules} == {"eth1"}
    assert {r.family for r in request.from_conf(conf, None, "ipv6").rules} == {Family.IPV6}
    strict = request.from_conf(conf, ["eth0"], "ipv4", strict=True).rules
    assert [r.strict for r in strict] == [True, False]


def test_an_interface_the_configuration_does_not_use_is_refused():
    with pytest.raises(InputError, match="no vrrp_instance of k.conf runs on it"):
        request.from_conf(parse_text(CONF, "k.conf"), ["eth9"])


def test_nothing_left_to_open_is_refused():
    conf = parse_text(CONF.replace("fd00::100/64", "192.0.2.101/24"), "k.conf")
    with pytest.raises(InputError, match="no vrrp_instance on eth0 of family ipv6"):
        request.from_conf(conf, ["eth0"], "ipv6")


def test_an_instance_without_a_source_address_names_the_instance(monkeypatch):
    monkeypatch.setattr(request, "local_address", lambda iface, fam: None)
    text = CONF.replace("  unicast_src_ip 198.51.100.1\n", "")
    with pytest.raises(InputError) as e:
        request.from_conf(parse_text(text, "k.conf"))
    assert str(e.value).startswith("k.conf:12: vrrp_instance UNI: interface eth1 has no ipv4 address")


def test_options_dedupe_rules():
    req = request.from_options(["eth0", "eth0"], family="both")
    assert selectors(req) == [("in", "eth0", "224.0.0.18"), ("out", "eth0", "224.0.0.18"),
                              ("in", "eth0", "ff02::12"), ("out", "eth0", "ff02::12")]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "-a", "x" * 65, "a b", "é", None, 3])
def test_bad_namespace_names(name):
    with pytest.raises(InputError):
        namespace.validate_name(name)


def test_a_missing_namespace_is_an_environment_problem(monkeypatch, tmp_path):
    monkeypatch.setattr(namespace, "NETNS_DIR", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="does not exist"):
        with namespace.entered("vrrpfw-no-such-ns"):
            pass


def test_no_namespace_is_a_no_op():
    with namespace.entered(None):
        pass
