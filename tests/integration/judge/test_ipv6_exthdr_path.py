"""ip6tables' extension-header matches (``-m rt``, ``-m frag``, ``-m hbh``,
``-m dst``) against real IPv6 adverts: each needs its header, which
keepalived's adverts never carry, so a DROP behind one never drops an
advert, inverted options included.  ufw puts ``-m rt --rt-type 0 -j DROP``
in every IPv6 chain of before6.rules; ``check`` called the path
``uncertain`` there while every advert got through."""

from __future__ import annotations

import pytest
from netns import add_ipv6, pair

from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

GROUP6 = "ff02::12"
DROPS = ["-m rt --rt-type 0", "-m rt ! --rt-type 0", "-m frag --fragmore", "-m frag ! --fragid 0",
         "-m hbh --hbh-len 0", "-m dst ! --dst-len 8"]


@pytest.mark.parametrize("variant", ["legacy", pytest.param("nft", marks=pytest.mark.needs("iptables-nft"))])
def test_extension_header_drops_pass_every_advert_and_check_says_so(variant):
    backend = "iptables" if variant == "legacy" else "nftables"
    with pair("vrxh") as p:
        add_ipv6(p)
        for chain in ("INPUT", "OUTPUT"):
            for match in DROPS:
                p.host.run(f"ip6tables-{variant}", "-w", "-A", chain, *match.split(), "-j", "DROP")
        got_in = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 20, GROUP6).to_dict()
        got_out = exchange(p.host.ns, p.host_if, p.peer.ns, p.peer_if, 20, GROUP6).to_dict()
        assert got_in["delivered"] == 20 and got_out["delivered"] == 20, (got_in, got_out)
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--family", "ipv6", "--backend", backend,
                                     "--no-persist")
        verdicts = {r["direction"]: r["runtime"] for r in out["rules"]}
        assert verdicts == {"in": "allowed-by-policy", "out": "allowed-by-policy"}, out
        assert rc == 0, out
