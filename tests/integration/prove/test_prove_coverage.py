"""``vrrpfw prove`` gives a result wherever it can, and never a false one.

* Rulesets that name other interfaces by index (nft ``iif``/``oif``, sets of
  ``iface_index``) or bind a netdev hook to another device load only where
  those devices exist: the replica makes them, and prove's numbers are what
  real adverts do in the test's own namespace (its "host").
* A bridge is rebuilt in the replica (its port towards the peer, its nft
  bridge tables, br_netfilter's switch set in the replica's namespace only):
  prove's numbers are the packets', where main's prove said "today 5/5"
  while 0/5 arrived.
* Where the host's path holds something the replica does not replay (a
  bridge port, VLAN filtering, a tc filter), prove says "cannot tell" and
  exits 3 (README's exit code table), with no "today N/N"; the test shows
  that real adverts are dropped there, so a number would have been a lie.

prove runs *inside* the test's host namespace, so it replays that namespace,
never the machine's own firewall.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Tuple

import pytest
from netns import HOST_ADDR, Pair, adverts, ns_names, pair

from vrrpfw.prove.netns import release

pytestmark = pytest.mark.integration

XDP_DROP = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "xdp_drop.py")

COUNT = 5


def prove_json(p: Pair, iface: str) -> Tuple[int, dict, int]:
    proc = p.host.popen(sys.executable, "-m", "vrrpfw", "prove", "-i", iface, "--json", "--count", str(COUNT))
    stdout, stderr = proc.communicate(timeout=180)
    try:
        return proc.returncode, json.loads(stdout), proc.pid
    except ValueError:
        raise AssertionError(f"no JSON from prove: {stdout}\n{stderr}") from None


def left_behind(pid: int) -> List[str]:
    mark = f"{pid % 100000}-"
    return [n for n in ns_names() if n.startswith(("vph", "vpp")) and n[3:].startswith(mark)]


def truth(p: Pair, iface: str) -> Dict[str, int]:
    return {"inbound": adverts(p.peer, p.peer_if, p.host, iface, COUNT)["delivered"],
            "outbound": adverts(p.host, iface, p.peer, p.peer_if, COUNT)["wire"]}


def seen(side: dict) -> Dict[str, int]:
    (inbound,) = side["inbound"].values()
    return {"inbound": inbound["arrived"], "outbound": side["outbound"]["arrived"]}


def others(p: Pair, *names: str) -> None:
    """Idle interfaces of the host that the ruleset names (a veth each)."""
    for n in names:
        p.host.run("ip", "link", "add", n, "type", "veth", "peer", "name", f"{n}x")


# Rulesets naming other devices by index; "HOST" is the tested interface.
BY_INDEX = {
    # policy drop; the loopback and a management interface are let in by index: adverts on
    # the tested interface are dropped (and the ruleset loads only where eth0 exists).
    "iif-lo-eth0-accept": """table inet filter {
  chain input { type filter hook input priority 0; policy drop;
    iif "lo" accept
    iif "eth0" accept
  }
  chain output { type filter hook output priority 0; policy accept;
    oif "wg0" drop
  }
}
""",
    # the tested interface by index, an output drop on another one, a set of
    # iface_index and a netdev chain bound to another device.
    "iif-host-accept-oif-other-drop": """table inet filter {
  set mgmt { type iface_index; elements = { "eth0", "lo" } }
  chain input { type filter hook input priority 0; policy drop;
    iif @mgmt accept
    iif "HOST" ip protocol vrrp accept
  }
  chain output { type filter hook output priority 0; policy accept;
    oif "wg0" drop
    oif { "eth0", "wg0" } ip protocol vrrp drop
  }
}
table netdev nd {
  chain ing { type filter hook ingress device "eth0" priority 0; policy drop; }
}
""",
    # the output drop names the tested interface by index.
    "oif-host-drop": """table ip filter {
  chain output { type filter hook output priority 0; policy accept;
    oif "HOST" ip protocol vrrp drop
    oif "wg0" accept
  }
}
""",
}


@pytest.mark.parametrize("case", sorted(BY_INDEX))
def test_rulesets_naming_other_interfaces_by_index_give_the_kernels_result(case: str) -> None:
    with pair("vrpc") as p:
        others(p, "eth0", "wg0")
        p.host.run("nft", "-f", "-", stdin=BY_INDEX[case].replace("HOST", p.host_if))
        today = truth(p, p.host_if)
        rc, out, pid = prove_json(p, p.host_if)
        assert not left_behind(pid)
        (result,) = out["interfaces"]
        assert result["error"] is None and result["cannot_tell"] == [], result
        assert seen(result["today"]) == today, (result, today)
        assert rc in (0, 1), out
        assert any("wg0" in x and "stand-ins" in x for x in out["limits"]), out["limits"]


def bridged(p: Pair) -> str:
    """The host's address moves to a bridge br0 whose port is the veth to
    the peer (keepalived on br0, eth-like port below it)."""
    p.host.run("ip", "link", "add", "br0", "type", "bridge")
    p.host.run("ip", "link", "set", p.host_if, "master", "br0")
    p.host.run("ip", "addr", "del", HOST_ADDR, "dev", p.host_if)
    p.host.run("ip", "addr", "add", HOST_ADDR, "dev", "br0")
    p.host.run("ip", "link", "set", "br0", "up")  # STP is off: the port forwards at once
    return "br0"


def br_netfilter(p: Pair, on: bool) -> None:
    """br_netfilter's switch in the test's namespace only (per namespace on
    this kernel). Never loads the module: a test that needs it on skips
    where the module is not there (loading it would change the machine's
    root namespace)."""
    if not os.path.isdir("/proc/sys/net/bridge"):
        if on:
            pytest.skip("br_netfilter is not loaded here (this test never loads it)")
        return
    value = "1" if on else "0"
    p.host.run("sysctl", "-q", "-w", f"net.bridge.bridge-nf-call-iptables={value}",
               f"net.bridge.bridge-nf-call-ip6tables={value}")


def assert_cannot_tell(p: Pair, iface: str, words: str) -> None:
    rc, out, pid = prove_json(p, iface)
    assert not left_behind(pid)
    (result,) = out["interfaces"]
    assert rc == 3, out
    assert result["today"] is None and result["after"] is None, result
    assert result["cannot_tell"] and any(words in x for x in result["cannot_tell"]), result
    plain = p.host.run(sys.executable, "-m", "vrrpfw", "prove", "-i", iface, "--count", "2", check=False)
    assert plain.returncode == 3 and f"{iface}: cannot tell: " in plain.stdout, plain.stdout + plain.stderr
    assert "today" not in plain.stdout, plain.stdout


def proved_equals_packets(p: Pair, iface: str) -> dict:
    """prove's numbers for ``iface`` are what real adverts do; the proof."""
    today = truth(p, iface)
    rc, out, pid = prove_json(p, iface)
    assert not left_behind(pid)
    (result,) = out["interfaces"]
    assert result["cannot_tell"] == [] and result["error"] is None, result
    assert seen(result["today"]) == today, (result, today)
    return out


def test_bridge_with_an_nft_bridge_table_is_replayed_as_a_bridge() -> None:
    with pair("vrpc") as p:
        br = bridged(p)
        br_netfilter(p, False)
        p.host.run("nft", "add table bridge b; add chain bridge b i { type filter hook input priority 0; }; "
                          "add rule bridge b i ip protocol vrrp drop")
        assert truth(p, br)["inbound"] == 0  # main's prove said "today 5/5" here
        out = proved_equals_packets(p, br)
        assert any(f"bridge with port {p.host_if}" in x for x in out["limits"]), out["limits"]


def test_bridge_with_br_netfilter_physdev_drop_is_replayed_as_a_bridge() -> None:
    with pair("vrpc") as p:
        br = bridged(p)
        br_netfilter(p, True)
        p.host.run("iptables-legacy", "-w", "-A", "INPUT", "-m", "physdev", "--physdev-in", p.host_if,
                   "-p", "112", "-j", "DROP")
        assert truth(p, br)["inbound"] == 0  # main's prove said "today 5/5" here
        proved_equals_packets(p, br)
        br_netfilter(p, False)  # br_netfilter off: iptables no longer sees bridged frames
        assert truth(p, br)["inbound"] == COUNT
        proved_equals_packets(p, br)
        # ... unless the bridge itself asks for it (a per-bridge option, on with the sysctls off)
        p.host.run("ip", "link", "set", br, "type", "bridge", "nf_call_iptables", "1")
        assert truth(p, br)["inbound"] == 0
        proved_equals_packets(p, br)


def test_bridge_whose_port_does_not_forward_is_cannot_tell() -> None:
    with pair("vrpc") as p:
        br = bridged(p)
        br_netfilter(p, False)
        p.host.run("bridge", "link", "set", "dev", p.host_if, "state", "2")  # learning: no forwarding
        assert truth(p, br) == {"inbound": 0, "outbound": 0}
        assert_cannot_tell(p, br, "state learning")


def test_bridge_that_prove_cannot_rebuild_is_cannot_tell() -> None:
    with pair("vrpc") as p:
        br = bridged(p)
        br_netfilter(p, False)
        # a second port (a VM's tap, say) and no NIC among them: which port the peers are
        # behind is unknown, and a bridge table filters by port.
        p.host.run("ip", "link", "add", "tap0", "type", "veth", "peer", "name", "tap0x")
        p.host.run("ip", "link", "set", "tap0", "master", br)
        p.host.run("nft", "add table bridge b; add chain bridge b i { type filter hook input priority 0; }; "
                          f"add rule bridge b i iifname {p.host_if} ip protocol vrrp drop")
        assert truth(p, br)["inbound"] == 0
        assert_cannot_tell(p, br, "nft bridge table b")


def test_bridge_port_is_cannot_tell() -> None:
    with pair("vrpc") as p:
        bridged(p)
        br_netfilter(p, False)
        assert_cannot_tell(p, p.host_if, "port of bridge br0")


def test_bridge_without_bridge_filtering_gives_the_kernels_result() -> None:
    with pair("vrpc") as p:
        br = bridged(p)
        br_netfilter(p, False)
        p.host.run("nft", "add table inet f; add chain inet f i { type filter hook input priority 0; "
                          "policy drop; }; add rule inet f i iifname br0 ip protocol vrrp accept")
        today = truth(p, br)
        rc, out, pid = prove_json(p, br)
        assert not left_behind(pid)
        (result,) = out["interfaces"]
        assert result["cannot_tell"] == [] and result["error"] is None, result
        assert seen(result["today"]) == today == {"inbound": COUNT, "outbound": COUNT}, (result, today)
        assert any(f"bridge with port {p.host_if}" in x for x in out["limits"]), out["limits"]


def test_tc_filter_on_the_interface_is_cannot_tell() -> None:
    with pair("vrpc") as p:
        # A drop as this kernel can build one (no act_gact here): VRRP redirected away to an
        # idle device. Where "action drop" is available it is used.
        p.host.run("ip", "link", "add", "sink0", "type", "veth", "peer", "name", "sink1")
        p.host.run("tc", "qdisc", "add", "dev", p.host_if, "clsact")
        match = ["tc", "filter", "add", "dev", p.host_if, "ingress", "protocol", "ip", "u32",
                 "match", "ip", "protocol", "112", "0xff", "action"]
        if p.host.run(*match, "drop", check=False).returncode != 0:
            p.host.run(*match, "mirred", "egress", "redirect", "dev", "sink0")
        assert truth(p, p.host_if)["inbound"] == 0
        assert_cannot_tell(p, p.host_if, "tc ingress filters")


def test_xdp_program_on_the_interface_is_cannot_tell() -> None:
    with pair("vrpc") as p:
        holder = p.host.ns.popen([sys.executable, XDP_DROP, p.host_if], stdin=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready", \
                holder.communicate(timeout=10)
            assert truth(p, p.host_if)["inbound"] == 0
            assert_cannot_tell(p, p.host_if, "XDP program")
        finally:
            release(holder)
