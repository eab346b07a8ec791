"""The ``recent`` match judged from ``/proc/net/xt_recent``, against real
lists and real adverts in namespaces: ``check``'s verdict for the peer's
unicast adverts must be what the packets do."""

from __future__ import annotations

import pytest
from netns import adverts, pair

from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

PEER, HOST = "192.0.2.2", "192.0.2.1"
UNICAST = ("--peer", PEER, "--src", HOST)
SSH_SET = "-p tcp --dport 22 -m recent --set --name L"

# rules (";"-separated, appended to INPUT), addresses put in list L before
# the check (one hit each), the peer's verdict, and what 10 adverts do
# ("all", "none", "some": fewer than all).
SHAPES = {
    # The ssh brute-force shape: the list is filled by ssh only, and empty.
    "ssh-list-empty": (f"{SSH_SET}; -m recent --update --name L --seconds 60 --hitcount 4 -j DROP", "",
                       "allowed-by-policy", "all"),
    "rcheck-peer-listed": (f"{SSH_SET}; -m recent --rcheck --name L --seconds 60 -j DROP", PEER,
                           "missing", "none"),
    "rcheck-other-listed": (f"{SSH_SET}; -m recent --rcheck --name L -j DROP", "192.0.2.99",
                            "allowed-by-policy", "all"),
    # One hit of four: the advert never adds one (update only refreshes a match).
    "update-hitcount-short": (f"{SSH_SET}; -m recent --update --name L --seconds 60 --hitcount 2 -j DROP",
                              PEER, "allowed-by-policy", "all"),
    "rdest-host-listed": (f"{SSH_SET}; -m recent --rcheck --name L --rdest -j DROP", HOST, "missing", "none"),
    "negated-rcheck": (f"{SSH_SET}; -m recent ! --rcheck --name L -j DROP", "", "missing", "none"),
    # A packet of the peer's with TTL 64 listed it; keepalived's adverts have TTL 255.
    "rttl-mismatch": ("-m ttl --ttl-eq 64 -m recent --set --name L; "
                      "-m recent --rcheck --name L --rttl -j DROP", "TTL64", "allowed-by-policy", "all"),
    "rttl-by-hand": (f"{SSH_SET}; -m recent --rcheck --name L --rttl -j DROP", PEER, "missing", "none"),
    # Filled by every packet: the third advert within a minute is dropped.
    "set-by-adverts": ("-m recent --set --name L; "
                       "-m recent --rcheck --name L --seconds 60 --hitcount 3 -j DROP", "",
                       "uncertain", "some"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_recent_verdict_is_what_adverts_do(shape):
    rules, listed, runtime, delivered = SHAPES[shape]
    with pair("dyr") as p:
        for rule in rules.split(";"):
            p.host.run("iptables-legacy", "-w", "-A", "INPUT", *rule.split())
        for addr in listed.split():
            if addr == "TTL64":
                got = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 1, HOST, ttl=64)
                assert got.wire == 1, got
            else:
                p.host.run("sh", "-c", f"echo +{addr} > /proc/net/xt_recent/L")
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
        rule = [r for r in out["rules"] if r["direction"] == "in"][0]
        assert rule["runtime"] == runtime, rule
        assert rc == (0 if runtime.startswith("allowed") else 1), out
        assert "depends on recent list L" in rule["detail"], rule
        got = adverts(p.peer, p.peer_if, p.host, p.host_if, 10, group=HOST)
        assert got["wire"] == 10, got
        want = {"all": got["delivered"] == 10, "none": got["delivered"] == 0,
                "some": 0 < got["delivered"] < 10}
        assert want[delivered], got


def test_ssh_recent_list_on_iptables_nft_is_judged_from_the_kernel():
    """iptables-nft keeps recent in a compat expression: read through
    iptables-nft -S, judged from the same /proc list."""
    with pair("dyn") as p:
        p.host.run("iptables-nft", "-A", "INPUT", *SSH_SET.split())
        p.host.run("iptables-nft", "-A", "INPUT", *"-m recent --update --name L --seconds 60 -j DROP".split())
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 0, out  # empty, and only ssh fills it: multicast adverts from anyone pass
        assert adverts(p.peer, p.peer_if, p.host, p.host_if, 10)["delivered"] == 10
        p.host.run("sh", "-c", f"echo +{PEER} > /proc/net/xt_recent/L")
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert rc == 1 and out["rules"][0]["runtime"] == "uncertain", out  # the peer may be the listed one
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *UNICAST, "--no-persist")
        assert rc == 1 and [r for r in out["rules"] if r["direction"] == "in"][0]["runtime"] == "missing", out
        got = adverts(p.peer, p.peer_if, p.host, p.host_if, 10, group=HOST)
        assert got["wire"] == 10 and got["delivered"] == 0, got
