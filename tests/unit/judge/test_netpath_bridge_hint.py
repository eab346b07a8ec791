"""netpath.bridge_hint: the advice `open` gives for a bridge-family chain
that blocks VRRP, a rule the admin can paste as is (the ebtables-nft form in
ebtables' own tables, which nft rules there would make unlistable)."""

import pytest

from vrrpfw.judge.netpath import bridge_hint
from vrrpfw.judge.path_model import BaseChain, ChainId, ChainState, ChainVerdict, Hook
from vrrpfw.judge.rules import Decision, FwRule, Outcome
from vrrpfw.model import AH_PROTO, Direction, Family, VrrpRule

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def dropped(table: str, name: str) -> ChainVerdict:
    chain = BaseChain(ChainId("nft", "bridge", table, name), Hook.INPUT, 0, "DROP", [])
    rule = FwRule(name, target="DROP", text="drop")
    return ChainVerdict(chain, ChainState.DROP, Decision(Outcome.DROP, rule, "DROP", ""), [])


TAIL = "; vrrpfw does not write nft bridge-family tables (their chains see the bridge port, not eth0): "


@pytest.mark.parametrize("table, name", [("filter", "INPUT"), ("nat", "PREROUTING"), ("broute", "BROUTING"),
                                         ("filter", "OUTPUT"), ("nat", "POSTROUTING")])
def test_ebtables_tables_get_an_ebtables_rule(table, name):
    cv = dropped(table, name)
    rule = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
    assert bridge_hint(cv, rule) == (
        f"{cv.text}{TAIL}accept VRRP there yourself, e.g. "
        f"`ebtables-nft -t {table} -I {name} -p IPv4 --ip-dst 224.0.0.18 --ip-proto vrrp -j ACCEPT`")


def test_ebtables_rule_for_ipv6_ah():
    cv = dropped("filter", "INPUT")
    rule = VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6, proto=AH_PROTO)
    assert bridge_hint(cv, rule).endswith(
        "e.g. `ebtables-nft -t filter -I INPUT -p IPv6 --ip6-dst ff02::12 --ip6-proto ah -j ACCEPT`")


@pytest.mark.parametrize("table, name", [("mybridge", "INPUT"), ("filter", "forward"), ("filter", "input")])
def test_other_bridge_tables_get_an_nft_rule(table, name):
    cv = dropped(table, name)
    rule = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
    assert bridge_hint(cv, rule) == (
        f"{cv.text}{TAIL}accept VRRP there yourself, e.g. "
        f"`nft insert rule bridge {table} {name} ip daddr 224.0.0.18 ip protocol vrrp accept`")


def test_nft_rule_for_ipv6_and_unicast():
    cv = dropped("br", "in")
    v6 = VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6)
    assert bridge_hint(cv, v6).endswith(
        "e.g. `nft insert rule bridge br in ip6 daddr ff02::12 meta l4proto vrrp accept`")
    ah = VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6, proto=AH_PROTO)
    assert bridge_hint(cv, ah).endswith(
        "e.g. `nft insert rule bridge br in ip6 daddr ff02::12 meta l4proto ah accept`")
    # unicast inbound: the destination is this host's address, not the peer's
    peer = VrrpRule(Direction.IN, "eth0", "192.0.2.2", local="192.0.2.1", proto=AH_PROTO)
    assert bridge_hint(cv, peer).endswith(
        "e.g. `nft insert rule bridge br in ip daddr 192.0.2.1 ip protocol ah accept`")
