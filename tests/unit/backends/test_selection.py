import pytest

from vrrpfw.backends import registry
from vrrpfw.backends.base import Options
from vrrpfw.errors import BackendUnavailable, InputError
from vrrpfw.host.hostscan import HostScan, NftChain, parse_nft_ruleset

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

RULESET = {
    "nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"table": {"family": "ip", "name": "filter", "handle": 1}},
        {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1,
                   "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
        {"chain": {"family": "inet", "table": "t", "name": "out", "handle": 2,
                   "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "t", "chain": "out", "handle": 3,
                  "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": 112}},
                           {"reject": None}]}},
        {"chain": {"family": "inet", "table": "t", "name": "fwd", "handle": 4,
                   "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
        {"chain": {"family": "inet", "table": "t", "name": "quiet", "handle": 5,
                   "type": "filter", "hook": "input", "prio": 10, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "t", "chain": "quiet", "handle": 6,
                  "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"accept": None}]}},
        {"table": {"family": "inet", "name": "firewalld", "handle": 9}},
        {"chain": {"family": "inet", "table": "firewalld", "name": "filter_INPUT", "handle": 1,
                   "type": "filter", "hook": "input", "prio": 10, "policy": "accept"}},
    ]
}


def test_parse_nft_ruleset_finds_filtering_chains():
    chains, firewalld = parse_nft_ruleset(RULESET)
    by_name = {c.name: c for c in chains}
    assert set(by_name) == {"INPUT", "out", "quiet"}  # forward hook and firewalld excluded
    assert by_name["INPUT"].filters and by_name["out"].filters and not by_name["quiet"].filters
    assert firewalld == ["inet firewalld"]


def scan(**kw):
    return HostScan(**kw)


def test_auto_picks_iptables_where_legacy_filters():
    names, reason = registry.choose_auto(scan(legacy_tables=["filter"], iptables_variant="nf_tables"))
    assert names == ["iptables"] and "legacy" in reason


def test_auto_opens_every_layer_that_filters():
    chain = NftChain("ip", "filter", "INPUT", "input", "drop", 0, False)
    names, reason = registry.choose_auto(scan(legacy_tables=["filter"], nft_chains=[chain]))
    assert names == ["iptables", "nftables"]
    assert "ip filter INPUT" in reason


def test_auto_with_nothing_filtering_changes_nothing_and_says_what_it_saw():
    quiet = NftChain("inet", "t", "in", "input", "accept", 1, False)
    names, reason = registry.choose_auto(scan(iptables_variant="legacy", nft_chains=[quiet]))
    assert names == [] and "legacy iptables tables: none" in reason


def test_auto_refuses_a_silent_firewalld():
    with pytest.raises(BackendUnavailable, match="firewalld"):
        registry.choose_auto(scan(firewalld_tables=["inet firewalld"]))


def test_unknown_backend_is_bad_input():
    with pytest.raises(InputError, match="choose one of: auto, iptables, nftables, firewalld"):
        registry.select("pf", Options(), scan())


def test_auto_prefers_firewalld_when_it_answers_on_the_bus():
    names, reason = registry.choose_auto(scan(firewalld_bus=True, legacy_tables=["filter"],
                                              firewalld_tables=["inet firewalld"]))
    assert names == ["firewalld"] and "system bus" in reason


def test_firewalld_table_without_bus_says_so():
    with pytest.raises(BackendUnavailable, match="does not answer on the system bus"):
        registry.choose_auto(scan(firewalld_tables=["inet firewalld"]))
