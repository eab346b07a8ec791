"""nft sets and maps that packets or timeouts change (``flags dynamic`` /
``timeout``), judged from their current elements and the rules that can
add to them, against real tables and real adverts in namespaces."""

from __future__ import annotations

import pytest
from netns import adverts, pair

pytestmark = pytest.mark.integration

PEER, HOST = "192.0.2.2", "192.0.2.1"
UNICAST = ("--peer", PEER, "--src", HOST)

TABLE = """table inet dyn {
  set blk { type ipv4_addr; flags dynamic,timeout; timeout 10m; }
  set tmo { type ipv4_addr; flags timeout; }
  map dm { type ipv4_addr : verdict; flags timeout; }
  chain input { type filter hook input priority 0; policy accept;
    RULES
  }
}
"""
SSH_FILLS = "tcp dport 22 ct state new add @blk { ip saddr }"

# rules, elements added (nft add element ... lines), the peer's verdict,
# what 10 unicast adverts do ("all", "none", "some-dropped": fewer than all).
SHAPES = {
    "filled-by-ssh-empty": (f"{SSH_FILLS}; ip saddr @blk drop", "", "allowed-by-policy", "all"),
    "filled-by-ssh-peer-in": (f"{SSH_FILLS}; ip saddr @blk drop", f"blk {{ {PEER} }}", "missing", "none"),
    "filled-by-ssh-other-in": (f"{SSH_FILLS}; ip saddr @blk drop", "blk { 192.0.2.99 }",
                               "allowed-by-policy", "all"),
    "timeout-set-peer-in": ("ip saddr @tmo drop", f"tmo {{ {PEER} timeout 5m }}", "missing", "none"),
    "negated-timeout-set": ("ip saddr != @tmo drop", f"tmo {{ {PEER} timeout 5m }}", "allowed-by-policy",
                            "all"),
    "timeout-vmap-peer-drop": ("ip saddr vmap @dm", f"dm {{ {PEER} timeout 5m : drop }}", "missing", "none"),
    "timeout-vmap-other": ("ip saddr vmap @dm", "dm { 192.0.2.99 timeout 5m : drop }", "allowed-by-policy",
                           "all"),
    # Every packet adds its source before the test: the advert drops itself.
    "filled-by-adverts": ("update @blk { ip saddr }; ip saddr @blk drop", "", "uncertain", "some-dropped"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_dynamic_set_verdict_is_what_adverts_do(shape):
    rules, elements, runtime, delivered = SHAPES[shape]
    with pair("dyd") as p:
        p.host.run("nft", "-f", "-", stdin=TABLE.replace("RULES", "\n    ".join(rules.split("; "))))
        if elements:
            p.host.run("sh", "-c", f"nft add element inet dyn {elements}")
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
        rule = [r for r in out["rules"] if r["direction"] == "in"][0]
        assert rule["runtime"] == runtime, rule
        assert rc == (0 if runtime.startswith("allowed") else 1), out
        assert "depends on nft set inet dyn @" in rule["detail"], rule
        got = adverts(p.peer, p.peer_if, p.host, p.host_if, 10, group=HOST)
        assert got["wire"] == 10, got
        want = {"all": got["delivered"] == 10, "none": got["delivered"] == 0,
                "some-dropped": got["delivered"] < 10}
        assert want[delivered], got


def test_unknown_peer_against_a_dynamic_set():
    """Multicast, no --peer: an empty set only ssh fills is certain; one
    address of the /24 in it is not."""
    with pair("dym") as p:
        p.host.run("nft", "-f", "-", stdin=TABLE.replace("RULES", f"{SSH_FILLS}\n    ip saddr @blk drop"))
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 0, out
        assert adverts(p.peer, p.peer_if, p.host, p.host_if, 10)["delivered"] == 10
        p.host.run("nft", "add", "element", "inet", "dyn", "blk", f"{{ {PEER} }}")
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 1 and out["rules"][0]["runtime"] == "uncertain", out
        assert adverts(p.peer, p.peer_if, p.host, p.host_if, 10)["delivered"] == 0


def test_open_goes_above_a_dynamic_set_drop():
    """nftables backend: ok today by the set's contents, open still puts
    VRRP's rule first, so the peer's later listing drops nothing."""
    with pair("dyo") as p:
        p.host.run("nft", "-f", "-", stdin=TABLE.replace("RULES", f"{SSH_FILLS}\n    ip saddr @blk drop"))
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, *UNICAST, "--no-persist")
        rule = [r for r in out["rules"] if r["direction"] == "in"][0]
        assert rc == 0 and rule["runtime"] == "allowed", out
        p.host.run("nft", "add", "element", "inet", "dyn", "blk", f"{{ {PEER} }}")
        got = adverts(p.peer, p.peer_if, p.host, p.host_if, 10, group=HOST)
        assert got["wire"] == 10 and got["delivered"] == 10, got
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--no-persist")
        assert rc == 0, out
        got = adverts(p.peer, p.peer_if, p.host, p.host_if, 10, group=HOST)
        assert got["wire"] == 10 and got["delivered"] == 0, got
