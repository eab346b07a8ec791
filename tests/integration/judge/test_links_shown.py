"""One ``ip -j -d -N link show`` for the path model's bridges and interface
groups (judge/read/bridges.links_shown), against the two listings it
replaces, in a namespace with bridges, ports and interface groups: what
each reader takes from it is what it took from its own listing."""

from __future__ import annotations

import json
import sys

import pytest
from netns import namespace

# one_end: reaches no typer, rich, iptc or dbus (tests/one_end_guard.py)
pytestmark = [pytest.mark.integration, pytest.mark.one_end]

READERS = """
import json
from vrrpfw.judge.read import bridges, model
shown = bridges.links_shown()
def plain(found):
    return None if found is None else {k: [b.name, list(b.ports), b.call_iptables, b.call_ip6tables]
                                       for k, b in sorted(found.items())}
print(json.dumps({"one": [plain(bridges.read(shown)), model.interface_groups(shown)],
                  "own": [plain(bridges.read()), model.interface_groups()]}))
"""


def listing(ns, *flags):
    return {link["ifname"]: link for link in json.loads(ns.run("ip", "-j", *flags, "link", "show").stdout)}


def test_one_listing_reads_what_the_two_did():
    with namespace("vrls") as ns:
        ns.run("ip", "link", "add", "br0", "type", "bridge", "nf_call_iptables", "1")
        ns.run("ip", "link", "add", "br1", "type", "bridge", "nf_call_ip6tables", "1")
        ns.run("ip", "link", "add", "vp0", "type", "veth", "peer", "name", "vp1")
        ns.run("ip", "link", "add", "vg0", "type", "veth", "peer", "name", "vg1")
        ns.run("ip", "link", "set", "vp0", "master", "br0")
        ns.run("ip", "link", "set", "vg0", "group", "7")
        ns.run("ip", "link", "set", "vp1", "group", "65535")
        both, details, numeric = listing(ns, "-d", "-N"), listing(ns, "-d"), listing(ns, "-N")
        assert set(both) == set(details) == set(numeric)
        for name, link in both.items():  # the fields the readers take, each as its own listing has it
            info, own_info = (x.get("linkinfo", {}) for x in (link, details[name]))
            assert link.get("master") == details[name].get("master")
            assert info.get("info_kind") == own_info.get("info_kind")
            data, own = (x.get("info_data") or {} for x in (info, own_info))
            assert (data.get("nf_call_iptables"), data.get("nf_call_ip6tables")) == \
                (own.get("nf_call_iptables"), own.get("nf_call_ip6tables"))
            assert link["group"] == numeric[name]["group"]
        out = json.loads(ns.run(sys.executable, "-c", READERS).stdout)
        assert out["one"] == out["own"]
        found, groups = out["one"]
        assert found["br0"][:2] == ["br0", ["vp0"]] and found["br1"][:2] == ["br1", []]
        assert set(found) == {"br0", "br1"}
        assert groups["vg0"] == 7 and groups["vp1"] == 65535 and groups["lo"] == 0
