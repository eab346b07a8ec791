"""auto must see layers that filter only IPv6: an ip6 nft chain or a
legacy ip6tables table can drop VRRPv3 adverts on their own."""

from vrrpfw.hostscan import HostScan, parse_nft_ruleset


def test_an_ip6_filter_chain_counts():
    doc = {"nftables": [
        {"chain": {"family": "ip6", "table": "t", "name": "in", "hook": "input", "policy": "drop"}},
        {"chain": {"family": "bridge", "table": "b", "name": "in", "hook": "input", "policy": "drop"}},
    ]}
    chains, _ = parse_nft_ruleset(doc)
    assert [(c.family, c.filters) for c in chains] == [("ip6", True)]


def test_a_legacy_ip6_filter_table_counts():
    assert HostScan(legacy_tables=["ip6 filter"]).legacy_filter
    assert not HostScan(legacy_tables=["ip6 nat", "nat"]).legacy_filter
