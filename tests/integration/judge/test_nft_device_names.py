"""A netdev chain bound to a device whose name is not UTF-8 (Linux allows
any bytes but '/', ':' and whitespace): nft's JSON leaves the device out,
its text listing (judge/read/nft.py reads the devices from it) prints the
raw bytes.  The nf_tables layer is then unread (the nftables backend,
which must read it, says so: exit 3), never a crash (exit 4) nor a guess."""

from __future__ import annotations

import pytest
from netns import namespace

pytestmark = pytest.mark.integration

ODD = "v\udcffa"  # b"v\xffa" through the file system encoding (surrogateescape)


def test_device_name_that_is_not_utf8_makes_nf_tables_unread():
    with namespace("vrdn") as ns:
        ns.run("ip", "link", "add", "vd0", "type", "veth", "peer", "name", "vd1")
        ns.run("ip", "link", "add", "name", ODD, "type", "veth", "peer", "name", "vd2")
        ns.run("nft", "add", "table", "netdev", "t")
        ns.run("nft", "add", "chain", "netdev", "t", "c",
               "{ type filter hook ingress device \"" + ODD + "\" priority 0 ; }")
        rc, out = ns.vrrpfw_json("check", "--iface", "vd0", "--backend", "nftables", "--no-persist")
    assert rc == 3, out
    assert out["error"].startswith("cannot read nf_tables (nft's chain listing has a shape vrrpfw does not "
                                   "know: UnicodeDecodeError("), out
