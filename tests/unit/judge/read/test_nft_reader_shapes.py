"""nft JSON of a shape vrrpfw does not know makes the layer unread (so no
verdict can be "ok"), never a traceback (issue 9: "bad nft JSON escaped
with a traceback and Python's exit 1")."""

import json

import pytest

from vrrpfw.host.run import Ran
from vrrpfw.judge.read import nft as reader

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

CHAINS = {"nftables": [{"chain": {"family": "inet", "table": "t", "name": "in", "hook": "input",
                                  "prio": 0, "policy": "drop", "type": "filter"}}]}


@pytest.mark.parametrize("table_doc", [
    {"nftables": [{"chain": {"family": "inet", "table": "t", "name": "in", "hook": "input",
                             "prio": "high", "policy": "drop"}}]},       # a priority that is no number
    {"nftables": [{"rule": {"family": "inet", "table": "t", "chain": "in", "expr": 5}}]},
    {"nftables": [{"rule": "not an object"}]},
    {"nftables": 7},
])
def test_unknown_table_shapes_make_the_table_unread(monkeypatch, table_doc):
    monkeypatch.setattr(reader, "which", lambda name: "/usr/sbin/nft")
    monkeypatch.setattr(reader, "nft_json", lambda args, timeout=60: CHAINS)

    class Listed:  # `nft -j list table` as read() starts it, printing table_doc
        def __init__(self, argv, timeout=60):
            assert argv[1:4] == ["-j", "list", "table"], argv

        def result(self):
            return Ran(0, json.dumps(table_doc))

        def close(self):
            pass
    monkeypatch.setattr(reader, "Started", Listed)
    layer = reader.read()
    assert layer.unread is not None and "inet t" in layer.unread and "does not know" in layer.unread


@pytest.mark.parametrize("chains_doc", [{"nftables": [{"chain": {"family": "inet"}}]}, {"nftables": "x"}])
def test_unknown_chain_listing_shapes_make_nf_tables_unread(monkeypatch, chains_doc):
    monkeypatch.setattr(reader, "which", lambda name: "/usr/sbin/nft")
    monkeypatch.setattr(reader, "nft_json", lambda args, timeout=60: chains_doc)
    layer = reader.read()
    assert layer.unread is not None and "does not know" in layer.unread
