"""Pure plan logic of ``open``'s pins (vrrpfw.backends.base Backend._pins and
each backend's pins_in): where a filter chain of the admin's lets VRRP
through only by its ACCEPT policy, open still puts vrrpfw's rule there;
check (pin off) plans nothing; chains of other types, other programs' and
other tables stay untouched; where no such chain exists, a note says so."""

from __future__ import annotations

import pytest

from vrrpfw.backends.base import Options
from vrrpfw.backends.iptables import IptablesBackend
from vrrpfw.backends.nftables import NftablesBackend
from vrrpfw.judge.path_model import ChainId, PathModel
from vrrpfw.judge.read.saved import legacy_chains, nft_chains
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.results import Action, Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth1", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth1", "224.0.0.18")

ACCEPT_LEGACY = """*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
COMMIT
"""


def legacy(pin, text=ACCEPT_LEGACY):
    b = IptablesBackend(Options(persist=False, layers=("iptables",), pin=pin))
    return b, b.path_statuses(PathModel(legacy_chains(text)), [IN, OUT])


def test_open_pins_in_legacy_filter_input_and_output_only():
    b, (i, o) = legacy(pin=True)
    assert i.state is o.state is Runtime.ALLOWED_BY_POLICY  # the verdict itself is unchanged
    assert i.needs == [ChainId("legacy", "ip", "filter", "INPUT")]  # not mangle INPUT
    assert o.needs == [ChainId("legacy", "ip", "filter", "OUTPUT")]
    assert [(c.action, c.handle.name) for c in b.plan([i, o], "open")] == [
        (Action.INSERT, "INPUT"), (Action.INSERT, "OUTPUT")]
    assert b.pin_notes() == []


def test_check_and_close_pin_nothing():
    b, (i, o) = legacy(pin=False)
    assert i.needs == o.needs == []
    assert b.plan([i, o], "open") == [] and b.plan([i, o], "close") == []


def test_a_chain_where_a_rule_accepts_is_not_pinned_again():
    """vrrpfw's own rule (idempotent open) or the admin's allowance."""
    ours = ACCEPT_LEGACY.replace("-A INPUT -i lo -j ACCEPT",
                                 "-A INPUT -d 224.0.0.18/32 -i eth1 -p vrrp"
                                 " -m comment --comment vrrpfw -j ACCEPT\n"
                                 "-A OUTPUT -p 112 -j ACCEPT")
    b, (i, o) = legacy(True, ours)
    assert i.state is Runtime.ALLOWED and o.state is Runtime.ALLOWED_BY_OTHER
    assert i.needs == o.needs == [] and b.plan([i, o], "open") == []


def test_a_dropping_chain_is_still_opened_and_the_policy_chain_pinned():
    text = ACCEPT_LEGACY.replace("COMMIT\n*filter", "-A PREROUTING -p 112 -j DROP\nCOMMIT\n*filter")
    b, (i, _) = legacy(True, text)
    assert i.state is Runtime.MISSING
    assert i.needs == [ChainId("legacy", "ip", "mangle", "PREROUTING"),
                       ChainId("legacy", "ip", "filter", "INPUT")]


def test_no_filter_table_says_so():
    b, (i, o) = legacy(True, "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    assert i.needs == o.needs == [] and b.plan([i, o], "open") == []
    notes = b.warnings()
    assert any("no filter chain of the admin's for VRRP in on eth1" in n and "legacy filter INPUT" in n
               for n in notes), notes
    assert any("VRRP out on eth1" in n for n in notes)


def chain(family, table, name, hook, kind="filter", policy="accept", prio=0):
    return {"chain": {"family": family, "table": table, "name": name, "type": kind, "hook": hook,
                      "prio": prio, "policy": policy}}


def nft(pin, *items):
    b = NftablesBackend(Options(persist=False, layers=("nftables",), pin=pin))
    tables = {(c["chain"]["family"], c["chain"]["table"]) for c in items}
    doc = {"nftables": [{"table": {"family": f, "name": t}} for f, t in sorted(tables)] + list(items)}
    return b, b.path_statuses(PathModel(nft_chains(doc)), [IN, OUT])


def test_nft_pins_in_the_admins_filter_tables_not_in_other_types_or_owners():
    b, (i, o) = nft(True,
                    chain("inet", "filter", "input", "input"),
                    chain("inet", "filter", "output", "output"),
                    chain("ip", "mine", "in", "input", prio=10),
                    chain("ip", "mine", "route_out", "output", kind="route"),
                    chain("ip", "mangle", "INPUT", "input", prio=-150),  # iptables-nft's mangle table
                    chain("ip", "filter", "INPUT", "input"),  # iptables-nft's filter table
                    chain("ip", "kube-proxy", "filter-input", "input", prio=-110),
                    chain("inet", "filter", "pre", "prerouting"))
    assert i.state is o.state is Runtime.ALLOWED_BY_POLICY
    assert {(c.table, c.name) for c in i.needs} == {("filter", "input"), ("mine", "in"), ("filter", "INPUT")}
    assert [(c.table, c.name) for c in o.needs] == [("filter", "output")]
    assert b.pin_notes() == []


def test_nft_with_only_anothers_table_or_none_pins_nothing_and_says_so():
    b, (i, o) = nft(True, chain("ip", "kube-proxy", "filter-input", "input", prio=-110))
    assert i.needs == o.needs == [] and b.plan([i, o], "open") == []
    assert [n.split(" (")[0] for n in b.warnings()] == [
        "nftables: no filter chain of the admin's for VRRP in on eth1",
        "nftables: no filter chain of the admin's for VRRP out on eth1"]
    b, (i, o) = nft(True)
    assert b.plan([i, o], "open") == [] and len(b.warnings()) == 2
    b, _ = nft(False)
    assert b.warnings() == []  # check and close do not pin: nothing to say


# -- firewalld: a zone that accepts by its target alone ----------------------

class ZoneFw:
    """firewalld's read calls for one layer: eth1 in ``zone`` with ``target``
    and the allowances in ``have`` ((zone, kind, value))."""

    def __init__(self, zone, target, have=(), direct=()):
        self.zone, self._target, self.have, self.direct = zone, target, set(have), list(direct)

    def zone_of(self, layer, iface):
        return self.zone

    def target(self, layer, zone):
        return self._target

    def has(self, layer, zone, kind, value):
        return (zone, kind, value) in self.have

    def rich_rules(self, layer, zone):
        return [v for z, k, v in self.have if z == zone and k == "rich"]

    def zone_services(self, layer, zone):
        return [v for z, k, v in self.have if z == zone and k == "service"]

    def service_settings(self, layer, name):
        return {"protocols": ["vrrp"]} if name == "vrrp" else {"ports": [("22", "tcp")]}

    def direct_rules(self, layer):
        return self.direct


def zone_layer(tmp_path, fw, mode="zone"):
    from vrrpfw.backends.firewalld.layer import _Layer
    from vrrpfw.persist.state import StateFile

    st = StateFile(str(tmp_path / "state.json"))
    st.load()
    return _Layer(fw, st, mode, "runtime", None)  # type: ignore[arg-type]


def test_firewalld_pins_where_the_zone_target_alone_accepts(tmp_path):
    for zone, target in (("trusted", "ACCEPT"), ("internal", "ACCEPT")):
        for mode in ("zone", "direct"):
            layer = zone_layer(tmp_path, ZoneFw(zone, target), mode)
            assert layer.only_target(zone, IN) and layer.pins(IN), (zone, mode)
            assert not layer.pins(OUT)  # zones do not filter outbound


def test_firewalld_does_not_pin_over_the_admins_allowance_or_a_rejecting_zone(tmp_path):
    assert not zone_layer(tmp_path, ZoneFw("public", "default")).pins(IN)  # missing: opened as before
    layer = zone_layer(tmp_path, ZoneFw("trusted", "ACCEPT", [("trusted", "protocol", "vrrp")]))
    assert not layer.only_target("trusted", IN) and not layer.pins(IN)
    layer = zone_layer(tmp_path, ZoneFw("trusted", "ACCEPT", [("trusted", "service", "vrrp")]))
    assert not layer.only_target("trusted", IN) and not layer.pins(IN)  # a service that covers VRRP
    layer = zone_layer(tmp_path, ZoneFw("trusted", "ACCEPT", [("trusted", "service", "ssh")]))
    assert layer.only_target("trusted", IN) and layer.pins(IN)  # one that does not: pinned
    seed = ("ipv4", "filter", "INPUT", 0, ["-i", "eth1", "-d", "224.0.0.18", "-p", "vrrp", "-j", "ACCEPT"])
    layer = zone_layer(tmp_path, ZoneFw("trusted", "ACCEPT", direct=[seed]), "direct")
    assert not layer.pins(IN)  # the admin's direct rule lets it in
