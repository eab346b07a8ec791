"""firewalld's words for every rule shape of issue 10 (IPv6 multicast,
unicast peers, AH, strict TTL 255), their recognition, and the state file
that records selectors: pure, no D-Bus."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from vrrpfw.backends.firewalld.backend import FirewalldBackend
from vrrpfw.backends.firewalld.layer import entry_fits
from vrrpfw.backends.firewalld.owner import asked_rule
from vrrpfw.backends.firewalld.rules import (
    direct_args,
    direct_rule_of,
    ipv_of,
    is_seed_direct,
    rich_allows,
    rich_rule,
    rich_rule_of,
    service_covers,
    service_is_vrrpfws,
    top_rich_rule,
)
from vrrpfw.errors import InputError, PersistFileError
from vrrpfw.model import AH_PROTO, Direction, Family, VrrpRule, make_specs, rules_for
from vrrpfw.persist.state import Entry, StateFile

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN, OUT = Direction.IN, Direction.OUT
V6 = VrrpRule(IN, "eth0", "ff02::12", Family.IPV6)
V6_OUT = VrrpRule(OUT, "eth0", "ff02::12", Family.IPV6)
V4 = VrrpRule(IN, "eth0", "224.0.0.18")
UNI_IN = VrrpRule(IN, "eth0", "192.0.2.2", local="192.0.2.1")
UNI_OUT = VrrpRule(OUT, "eth0", "192.0.2.2", local="192.0.2.1")
UNI_IN_3 = VrrpRule(IN, "eth0", "192.0.2.3", local="192.0.2.1")
AH_IN = VrrpRule(IN, "eth0", "224.0.0.18", proto=AH_PROTO)
AH_UNI = VrrpRule(IN, "eth0", "192.0.2.2", proto=AH_PROTO, local="192.0.2.1")
STRICT = VrrpRule(IN, "eth0", "224.0.0.18", strict=True)
STRICT6 = VrrpRule(IN, "eth0", "ff02::12", Family.IPV6, strict=True)
UNI6 = VrrpRule(IN, "eth0", "fd00::2", Family.IPV6, local="fd00::1")

SHAPES = [V4, V6, V6_OUT, UNI_IN, UNI_OUT, UNI_IN_3, AH_IN, AH_UNI, UNI6]


@pytest.mark.parametrize("rule, text", [
    (V6, 'rule family="ipv6" destination address="ff02::12" protocol value="vrrp" accept'),
    (UNI_IN, 'rule family="ipv4" source address="192.0.2.2" destination address="192.0.2.1" '
             'protocol value="vrrp" accept'),
    (UNI_OUT, 'rule family="ipv4" source address="192.0.2.1" destination address="192.0.2.2" '
              'protocol value="vrrp" accept'),
    (AH_IN, 'rule family="ipv4" destination address="224.0.0.18" protocol value="ah" accept'),
    (AH_UNI, 'rule family="ipv4" source address="192.0.2.2" destination address="192.0.2.1" '
             'protocol value="ah" accept'),
    (UNI6, 'rule family="ipv6" source address="fd00::2" destination address="fd00::1" '
           'protocol value="vrrp" accept'),
])
def test_rich_rule_of_every_shape(rule, text):
    assert rich_rule(rule) == text
    assert top_rich_rule(rule) == text.replace("rule ", 'rule priority="-32768" ', 1)


@pytest.mark.parametrize("rule", SHAPES)
def test_each_shape_is_recognised_only_by_its_own_rich_rule(rule):
    for other in SHAPES:
        same = (other.family, other.proto, other.src, other.dst) == (
            rule.family, rule.proto, rule.src, rule.dst)
        assert rich_allows(rich_rule(other), rule) is same, (other, rule)
        assert rich_allows(top_rich_rule(other), rule) is same, (other, rule)
    assert rich_rule_of(top_rich_rule(rule), rule.direction, "eth0") == rule
    assert rich_rule_of(rich_rule(rule), rule.direction, "eth0") == rule


@pytest.mark.parametrize("text, rule, allows", [
    ('rule protocol value="vrrp" accept', V6, True),  # no family, no address: both families
    ('rule protocol value="vrrp" accept', UNI_IN, True),
    ('rule protocol value="vrrp" accept', AH_IN, False),  # VRRP is not AH
    ('rule protocol value="51" accept', AH_UNI, True),
    ('rule family="ipv4" protocol value="ah" accept', AH_IN, True),
    ('rule family="ipv4" protocol value="vrrp" accept', V6, False),
    ('rule family="ipv6" destination address="ff02::12/128" protocol value="vrrp" accept', V6, True),
    ('rule family="ipv6" destination address="ff02::/16" protocol value="vrrp" accept', V6, False),
    ('rule family="ipv4" source address="192.0.2.2/32" protocol value="vrrp" accept', UNI_IN, True),
    ('rule family="ipv4" source address="192.0.2.0/24" protocol value="vrrp" accept', UNI_IN, False),
    ('rule family="ipv4" source not address="192.0.2.9" protocol value="vrrp" accept', UNI_IN, False),
    ('rule family="ipv4" source address="192.0.2.2" protocol value="vrrp" accept', V4, False),
    ('rule family="ipv4" destination address="192.0.2.1" protocol value="vrrp" accept', UNI_IN, True),
    ('rule family="ipv4" destination address="192.0.2.1" protocol value="vrrp" accept', UNI_OUT, False),
])
def test_rich_allows_foreign_shapes(text, rule, allows):
    assert rich_allows(text, rule) is allows


def test_rich_rule_of_refuses_what_vrrpfw_never_writes():
    assert rich_rule_of('rule family="ipv4" destination address="192.0.2.1" protocol value="vrrp" accept',
                        IN, "eth0") is None  # unicast destination without a peer
    assert rich_rule_of('rule family="ipv4" destination address="224.0.0.18" protocol value="tcp" accept',
                        IN, "eth0") is None
    assert rich_rule_of('rule family="ipv4" protocol value="vrrp" accept', IN, "eth0") is None


@pytest.mark.parametrize("rule, args", [
    (V6, ["-i", "eth0", "-d", "ff02::12", "-p", "112"]),
    (UNI_IN, ["-i", "eth0", "-s", "192.0.2.2", "-d", "192.0.2.1", "-p", "112"]),
    (UNI_OUT, ["-o", "eth0", "-s", "192.0.2.1", "-d", "192.0.2.2", "-p", "112"]),
    (AH_IN, ["-i", "eth0", "-d", "224.0.0.18", "-p", "51"]),
    (STRICT, ["-i", "eth0", "-d", "224.0.0.18", "-p", "112", "-m", "ttl", "--ttl-eq", "255"]),
    (STRICT6, ["-i", "eth0", "-d", "ff02::12", "-p", "112", "-m", "hl", "--hl-eq", "255"]),
])
def test_direct_rules_of_every_shape_round_trip(rule, args):
    full = args + ["-m", "comment", "--comment", "vrrpfw", "-j", "ACCEPT"]
    assert direct_args(rule) == full
    assert ipv_of(rule) == ("ipv6" if rule.family is Family.IPV6 else "ipv4")
    assert direct_rule_of(rule.chain, full) == rule
    assert direct_rule_of(rule.chain, args + ["-j", "ACCEPT"]) is None  # no comment: not ours
    assert direct_rule_of("FORWARD", full) is None


def test_old_direct_rule_is_still_read_as_ipv4_multicast():
    old = ["-o", "eth1", "-d", "224.0.0.18", "-p", "112", "-m", "comment", "--comment", "vrrpfw",
           "-j", "ACCEPT"]
    assert direct_rule_of("OUTPUT", old) == VrrpRule(OUT, "eth1", "224.0.0.18")


def test_seed_direct_must_fit_the_shape():
    seed = ["-i", "eth0", "-p", "vrrp", "-j", "ACCEPT"]
    assert is_seed_direct(seed, UNI_IN) and is_seed_direct(seed, V6)
    assert not is_seed_direct(seed, AH_IN)
    assert is_seed_direct(["-i", "eth0", "-p", "51", "-j", "ACCEPT"], AH_IN)
    assert not is_seed_direct(["-i", "eth0", "-s", "192.0.2.9", "-p", "vrrp", "-j", "ACCEPT"], UNI_IN)
    assert is_seed_direct(["-i", "eth0", "-s", "192.0.2.2/32", "-p", "vrrp", "-j", "ACCEPT"], UNI_IN)
    assert not is_seed_direct(["-i", "eth0", "-d", "224.0.0.19", "-p", "vrrp", "-j", "ACCEPT"], V4)


# firewalld 2.1's vrrp service (tests/fwharness.VRRP_SERVICE) and a family-less one
SVC21: Dict[str, Any] = {"protocols": ["vrrp"], "destination": {"ipv4": "224.0.0.18", "ipv6": "ff02::12"}}
SVC_ANY: Dict[str, Any] = {"protocols": ["vrrp"], "destination": {}}


@pytest.mark.parametrize("settings, rule, covers", [
    (SVC21, V4, True), (SVC21, V6, True), (SVC21, UNI_IN, False), (SVC21, AH_IN, False),
    (SVC21, VrrpRule(IN, "eth0", "224.0.0.19"), False),
    (SVC_ANY, UNI_IN, True), (SVC_ANY, UNI6, True), (SVC_ANY, AH_IN, False),
    ({"protocols": ["vrrp"], "destination": {"ipv4": "224.0.0.18"}}, V6, False),
    ({"protocols": ["ah", "vrrp"]}, AH_UNI, True),
])
def test_service_covers_by_its_definition(settings, rule, covers):
    assert service_covers(settings, rule) is covers


def test_vrrpfw_adds_the_service_for_ipv4_default_multicast_only():
    assert service_is_vrrpfws(V4)
    assert not any(service_is_vrrpfws(r) for r in (V6, UNI_IN, AH_IN, STRICT))
    svc = Entry("runtime", "public", "service", "vrrp", ["eth0"])
    assert entry_fits(svc, V4) and not entry_fits(svc, V6) and not entry_fits(svc, AH_IN)
    rich = Entry("runtime", "public", "rich", top_rich_rule(UNI_IN), ["eth0"])
    assert entry_fits(rich, UNI_IN) and not entry_fits(rich, UNI_IN_3) and not entry_fits(rich, UNI_OUT)


def test_asked_rule_drops_strict_outbound():
    assert asked_rule(IN, "eth0", "ff02::12 ttl 255") == STRICT6
    assert asked_rule(OUT, "eth0", "ff02::12 ttl 255") == V6_OUT
    assert asked_rule(OUT, "eth0", "peer 192.0.2.2 local 192.0.2.1") == UNI_OUT


def _state(tmp_path, text=None) -> StateFile:
    path = tmp_path / "state.json"
    if text is not None:
        path.write_text(text)
    st = StateFile(str(path))
    st.load()
    return st


def test_state_keeps_version_2_while_it_holds_only_ipv4_groups(tmp_path):
    st = _state(tmp_path)
    st.ask("eth0", "224.0.0.18")
    st.save()
    doc = json.loads((tmp_path / "state.json").read_text())
    assert doc["version"] == 2 and doc["interfaces"] == [{"interface": "eth0", "group": "224.0.0.18"}]


def test_state_writes_selectors_as_version_3_and_reads_them_back(tmp_path):
    st = _state(tmp_path)
    selectors = [r.selector for r in (V6, UNI_IN, AH_UNI, STRICT)]
    for sel in selectors:
        st.ask("eth0", sel)
    st.save()
    doc = json.loads((tmp_path / "state.json").read_text())
    assert doc["version"] == 3
    assert [a["selector"] for a in doc["interfaces"]] == selectors
    assert _state(tmp_path).asked == [("eth0", s) for s in selectors]


def test_old_version_2_state_keeps_working(tmp_path):
    rich = top_rich_rule(V4)
    v2 = {"version": 2, "interfaces": [{"interface": "eth0", "group": "224.0.0.18"}],
          "firewalld": [{"layer": "runtime", "zone": "public", "kind": "rich", "value": rich,
                         "interfaces": ["eth0"], "generation": "g"}]}
    st = _state(tmp_path, json.dumps(v2))
    assert st.asked == [("eth0", "224.0.0.18")]
    assert asked_rule(IN, *st.asked[0]) == V4
    assert entry_fits(st.entries[0], V4) and not entry_fits(st.entries[0], V6)


@pytest.mark.parametrize("bad", ["peer 192.0.2.2", "224.0.0.18 tcp", "", 7])
def test_bad_selector_in_state_is_refused(tmp_path, bad):
    doc = {"version": 3, "interfaces": [{"interface": "eth0", "selector": bad}], "firewalld": []}
    with pytest.raises(PersistFileError, match="not a vrrpfw state file"):
        _state(tmp_path, json.dumps(doc))


@pytest.mark.parametrize("mode, refused", [("zone", True), ("direct", False)])
def test_strict_is_refused_outside_direct_mode(mode, refused):
    backend = FirewalldBackend.__new__(FirewalldBackend)
    backend.mode = mode
    rules: List[VrrpRule] = [r for s in make_specs(["eth0"], strict=True) for r in rules_for(s)]
    assert any(r.strict for r in rules)
    if refused:
        with pytest.raises(InputError, match="no TTL / hop-limit match"):
            backend.refuse_strict(rules)
    else:
        backend.refuse_strict(rules)
    backend.refuse_strict([V4, V6])  # without strict: never refused
