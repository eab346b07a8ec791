import pytest

from vrrpfw.backends import registry
from vrrpfw.backends.base import Options
from vrrpfw.errors import BackendUnavailable, InputError
from vrrpfw.hostscan import HostScan, NftChain, parse_nft_ruleset

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
    name, reason = registry.choose_auto(scan(legacy_tables=["filter"], iptables_variant="nf_tables"))
    assert name == "iptables" and "legacy" in reason


def test_auto_picks_iptables_where_the_command_is_legacy():
    assert registry.choose_auto(scan(iptables_variant="legacy"))[0] == "iptables"


def test_auto_refuses_nft_filtering_and_names_chains():
    chain = NftChain("ip", "filter", "INPUT", "input", "drop", 0, False)
    with pytest.raises(BackendUnavailable) as e:
        registry.choose_auto(scan(legacy_tables=["filter"], nft_chains=[chain]))
    assert "ip filter INPUT" in str(e.value) and "legacy iptables tables: filter" in str(e.value)


def test_auto_refuses_firewalld_and_empty_hosts_saying_what_it_saw():
    with pytest.raises(BackendUnavailable, match="firewalld"):
        registry.choose_auto(scan(firewalld_tables=["inet firewalld"]))
    with pytest.raises(BackendUnavailable) as e:
        registry.choose_auto(scan(iptables_variant="nf_tables"))
    assert "legacy iptables tables: none" in str(e.value)
    assert "--backend iptables" in str(e.value)


def test_unknown_backend_is_bad_input():
    with pytest.raises(InputError, match="choose one of: auto, iptables"):
        registry.select("pf", Options(), scan())


def test_auto_prefers_firewalld_when_it_answers_on_the_bus():
    name, reason = registry.choose_auto(scan(firewalld_bus=True, legacy_tables=["filter"],
                                             firewalld_tables=["inet firewalld"]))
    assert name == "firewalld" and "system bus" in reason


def test_firewalld_table_without_bus_says_so():
    with pytest.raises(BackendUnavailable, match="does not answer on the system bus"):
        registry.choose_auto(scan(firewalld_tables=["inet firewalld"]))
