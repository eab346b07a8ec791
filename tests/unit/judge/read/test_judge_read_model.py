"""vrrpfw/judge/read/model.py: which layers the path model is built from, and
why one is named unread (then a verdict is uncertain, never a false "allowed").

The host facts (the legacy table names, the euid, python-iptables, ``ip``)
are replaced by fakes here: what is tested is the decision made from them.
One test reads the real interface groups of this namespace.
"""

from __future__ import annotations

import json
import os
from typing import Any, List

import pytest

from vrrpfw.host.run import Ran
from vrrpfw.judge.read import model as read_model
from vrrpfw.judge.read.nft import NftLayer

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


@pytest.fixture
def tables(monkeypatch):
    """Fake /proc/net/ip{,6}_tables_names: set ``names[path]``."""
    names: dict = {}
    calls: List[tuple] = []

    def legacy_table_names(*args: Any):
        calls.append(args)
        path = args[0] if args else "/proc/net/ip_tables_names"
        return names.get(path, [])

    monkeypatch.setattr(read_model, "legacy_table_names", legacy_table_names)
    names["calls"] = calls
    return names


class FakeLegacy:
    made: List[FakeLegacy] = []

    def __init__(self, iptc: Any, names: List[str], names6: List[str]) -> None:
        self.iptc, self.names, self.names6 = iptc, names, names6
        self.opened: List[str] = []
        FakeLegacy.made.append(self)

    def open(self) -> None:
        self.opened.append("4")

    def open_ip6(self) -> None:
        self.opened.append("6")


@pytest.fixture
def iptc(monkeypatch):
    """python-iptables loads (as a marker object) and LegacyTables is a fake."""
    from vrrpfw.judge.read import iptc_loader, legacy

    marker = object()
    monkeypatch.setattr(iptc_loader, "load_iptc", lambda: marker)
    monkeypatch.setattr(legacy, "LegacyTables", FakeLegacy)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    FakeLegacy.made = []
    return marker


def test_table_names_unreadable_is_unread_not_empty(tables):
    tables["/proc/net/ip_tables_names"] = None
    assert read_model.read_legacy() == (None, "legacy iptables (/proc/net/ip_tables_names needs root)")


def test_reads_both_families_names(tables, iptc):
    tables["/proc/net/ip_tables_names"] = ["filter"]
    read_model.read_legacy()
    assert tables["calls"] == [(), (read_model.IP6_NAMES,)]
    assert read_model.IP6_NAMES == "/proc/net/ip6_tables_names"


@pytest.mark.parametrize("v4, v6", [([], []), (["nat"], []), ([], ["nat"]), (["nat"], None)])
def test_no_table_on_the_path_is_no_layer(tables, iptc, v4, v6):
    """nat is not on VRRP's path (no LEGACY_TABLES entry): nothing to read,
    and nothing unread."""
    tables["/proc/net/ip_tables_names"] = v4
    tables[read_model.IP6_NAMES] = v6
    assert read_model.read_legacy() == (None, None)
    assert FakeLegacy.made == []


@pytest.mark.parametrize("v4, v6", [(["filter"], []), ([], ["raw"]), (["nat", "mangle"], ["nat"]),
                                    (["security"], None)])
def test_any_table_on_the_path_is_read(tables, iptc, v4, v6):
    tables["/proc/net/ip_tables_names"] = v4
    tables[read_model.IP6_NAMES] = v6
    legacy, why = read_model.read_legacy()
    assert why is None
    assert FakeLegacy.made == [legacy]
    assert legacy.iptc is iptc
    assert (legacy.names, legacy.names6) == (v4, v6 or [])
    assert legacy.opened == ["4", "6"]


@pytest.mark.parametrize("euid", [1, 1000])
def test_not_root_is_unread(tables, iptc, monkeypatch, euid):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    tables["/proc/net/ip_tables_names"] = ["filter"]
    assert read_model.read_legacy() == (None, "legacy iptables (reading it needs root)")
    assert FakeLegacy.made == []


def test_python_iptables_failing_is_unread_with_the_reason(tables, iptc, monkeypatch):
    from vrrpfw.judge.read import iptc_loader

    def broken():
        raise ImportError("no module named iptc")

    monkeypatch.setattr(iptc_loader, "load_iptc", broken)
    tables["/proc/net/ip_tables_names"] = ["filter", "nat"]
    tables[read_model.IP6_NAMES] = ["raw"]
    why = "legacy iptables tables filter, nat, raw (no module named iptc)"
    assert read_model.read_legacy() == (None, why)


def test_opening_failing_is_unread(tables, iptc, monkeypatch):
    def refuse(self):
        raise OSError("Permission denied")

    monkeypatch.setattr(FakeLegacy, "open_ip6", refuse)
    tables["/proc/net/ip_tables_names"] = ["filter"]
    assert read_model.read_legacy() == (None, "legacy iptables tables filter (Permission denied)")


# ------------------------------------------------------------ build_model

class Legacy:
    def __init__(self, chains: List[Any]) -> None:
        self.chains = chains

    def base_chains(self) -> List[Any]:
        return list(self.chains)


@pytest.fixture
def host(monkeypatch):
    """The bridges, interface groups and dynamic state, as fakes."""
    from vrrpfw.judge.read import bridges

    seen: dict = {"listings": 0}
    shown = [{"ifname": "br0"}]

    def links_shown():
        seen["listings"] += 1
        return shown

    def read(links=None):
        assert links is shown  # the one listing, not a second `ip link show`
        return {"br0": "bridge br0"}

    def interface_groups(links=None):
        assert links is shown
        return {"eth0": 3}

    monkeypatch.setattr(bridges, "links_shown", links_shown)
    monkeypatch.setattr(bridges, "read", read)
    monkeypatch.setattr(read_model, "interface_groups", interface_groups)

    def lazy_state(model):
        seen["chains"] = list(model.chains)
        seen["groups"] = dict(model.iface_groups)
        return "dynamic state"

    monkeypatch.setattr(read_model, "lazy_state", lazy_state)
    return seen


def test_model_holds_every_layer_legacy_first(host):
    nft = NftLayer(chains=["nft chain"])
    model = read_model.build_model(Legacy(["legacy raw", "legacy filter"]), nft)
    assert model.chains == ["legacy raw", "legacy filter", "nft chain"]
    assert model.unread == []
    assert model.bridges == {"br0": "bridge br0"}
    assert model.iface_groups == {"eth0": 3}
    assert model.dynamic == "dynamic state"
    # the dynamic state is read for the rules of every layer, with the groups known
    assert host == {"chains": ["legacy raw", "legacy filter", "nft chain"], "groups": {"eth0": 3},
                    "listings": 1}


def test_model_names_every_unread_layer(host):
    nft = NftLayer(chains=["nft chain"], unread="nf_tables (needs root)")
    model = read_model.build_model(None, nft, legacy_unread="legacy iptables (needs root)")
    assert model.chains == ["nft chain"]
    assert model.unread == ["legacy iptables (needs root)", "nf_tables (needs root)"]


def test_model_without_unread_layers(host):
    model = read_model.build_model(None, NftLayer(), legacy_unread="")
    assert (model.chains, model.unread) == ([], [])
    model = read_model.build_model(None, NftLayer(unread=""), legacy_unread=None)
    assert (model.chains, model.unread) == ([], [])


# ------------------------------------------------------------ interface_groups

def fake_ip(monkeypatch, code: int, out: str) -> List[tuple]:
    calls: List[tuple] = []

    def run(argv, timeout=60.0):
        calls.append((list(argv), timeout))
        return Ran(code, out)

    monkeypatch.setattr(read_model, "run", run)
    return calls


def test_interface_groups_by_number(monkeypatch):
    links = [{"ifname": "lo", "group": 0}, {"ifname": "eth1", "group": "default"},  # a name: no -N
             {"ifname": "eth2"}, {"group": 4}, {"ifname": "eth3", "group": None},
             {"ifname": "eth0", "group": "7"}]  # links after one without a number still count
    calls = fake_ip(monkeypatch, 0, json.dumps(links))
    assert read_model.interface_groups() == {"lo": 0, "eth0": 7}
    assert calls == [(["ip", "-j", "-N", "link", "show"], 20)]


@pytest.mark.parametrize("code, out", [(1, json.dumps([{"ifname": "lo", "group": 0}])),
                                       (0, "not json"), (0, json.dumps({"ifname": "lo", "group": 0})),
                                       (0, "")])
def test_interface_groups_unknown_is_empty(monkeypatch, code, out):
    fake_ip(monkeypatch, code, out)
    assert read_model.interface_groups() == {}


def test_interface_groups_of_this_namespace():
    """The real ``ip``: the loopback is in group 0 (default) everywhere."""
    groups = read_model.interface_groups()
    assert groups.get("lo") == 0
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in groups.items())
