"""The pure parts of prove's interface coverage: which interfaces a ruleset
names, what on an interface's path makes a replay "cannot tell", flowtables
left out, and how prove reports "cannot tell".  No root, no namespaces."""

from __future__ import annotations

from vrrpfw.errors import EXIT_ENVIRONMENT
from vrrpfw.prove.proof import InterfaceProof, ProofResult
from vrrpfw.prove.replica import named_links_commands, without_flowtables
from vrrpfw.prove.replica_ifaces import (
    LinkFacts,
    bridge_tables,
    hook_devices,
    ipset_names,
    judge_stack,
    named_interfaces,
    nft_names,
    save_names,
    valid_name,
)
from vrrpfw.prove.snapshot import Snapshot

# as `nft list ruleset` (1.0.6) prints it
NFT = """table inet f {
\tset ifs {
\t\ttype ifname
\t\telements = { "wg0",
\t\t\t     "eth3" }
\t}

\tset idx {
\t\ttype iface_index
\t\telements = { "lo", "eth0" }
\t}

\tmap m {
\t\ttype iface_index . ipv4_addr : verdict
\t\telements = { "eth9" . 1.2.3.4 : accept }
\t}

\tset addrs {
\t\ttype ipv4_addr
\t\telements = { 1.2.3.4 comment "notaniface" }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiif "eth1" accept
\t\tiif { "lo", "tap7" } accept
\t\tiifname "veth*" accept
\t\tiifname != "mgmt0" drop
\t\tiifname @ifs accept
\t\toif vmap { "wg1" : accept, "wg2" : drop }
\t\tmeta nfproto ipv6 fib saddr . mark . iif oif missing drop
\t\tip protocol vrrp counter accept comment "from eth5"
\t}
}
table netdev n {
\tchain i {
\t\ttype filter hook ingress device "ens3" priority filter; policy accept;
\t}

\tchain j {
\t\ttype filter hook ingress devices = { bond0, br-1a2b3c } priority filter; policy accept;
\t}
}
table bridge b {
\tchain i {
\t\ttype filter hook input priority 0; policy accept;
\t\tip protocol vrrp drop
\t}
}
table bridge nohook {
\tset s {
\t\ttype ipv4_addr
\t}
}
"""


def test_nft_names_covers_index_name_sets_vmaps_and_hook_devices():
    assert nft_names(NFT) == {"wg0", "eth3", "lo", "eth0", "eth9", "eth1", "tap7", "mgmt0", "wg1", "wg2",
                              "ens3", "bond0", "br-1a2b3c"}


def test_hook_devices_and_bridge_tables():
    assert hook_devices(NFT) == {"ens3", "bond0", "br-1a2b3c"}
    assert bridge_tables(NFT) == ["b"]
    assert bridge_tables(None) == []


def test_save_and_ipset_names_skip_wildcards():
    save = ("*filter\n:INPUT DROP [0:0]\n-A INPUT -i eth0 -j ACCEPT\n-A INPUT ! -i docker0 -o br-x -j DROP\n"
            "-A FORWARD -i eth+ -j ACCEPT\n-A INPUT -m physdev --physdev-in vnet0 -j DROP\n"
            "-A INPUT -p tcp -m comment --comment \"-i nosuch\" -j ACCEPT\nCOMMIT\n")
    assert save_names(save) - {"nosuch"} == {"eth0", "docker0", "br-x", "vnet0"}
    ipset = ("create s hash:net,iface family inet\nadd s 10.0.0.0/8,eth2\nadd s 10.1.0.0/16,physdev:vnet1\n"
             "add s 10.2.0.0/16,tap+\ncreate n hash:net family inet\nadd n 10.3.0.0/16\n")
    assert ipset_names(ipset) == {"eth2", "vnet1"}


def test_valid_names_are_what_the_kernel_takes():
    assert valid_name("eth0.100") and valid_name("a" * 15)
    assert not valid_name("a" * 16) and not valid_name("") and not valid_name("..")
    assert not valid_name("a/b") and not valid_name("a:1") and not valid_name("a b")


def test_named_interfaces_without_lo_and_the_tested_one():
    assert named_interfaces(["-A INPUT -i eth0 -j ACCEPT\n"], 'iif "lo" accept\noif "eth1" drop\n', None,
                            ["eth1"]) == ["eth0"]


def test_named_links_are_veths_or_bridges_with_ports_as_on_the_host():
    snap = Snapshot(iface="eth1", nft_ruleset='iif "eth0" accept\niif "br0" accept\niif "eth2" drop\n',
                    links={"br0": ("bridge", None), "eth0": ("veth", "br0"), "eth2": ("veth", "br9")})
    cmds = named_links_commands(snap, "vpp1-2")
    assert cmds == [
        ["link", "add", "name", "br0", "type", "bridge"],
        ["link", "add", "name", "eth0", "type", "veth", "peer", "name", "vpx1", "netns", "vpp1-2"],
        ["link", "add", "name", "eth2", "type", "veth", "peer", "name", "vpx2", "netns", "vpp1-2"],
        ["link", "set", "dev", "eth0", "master", "br0"],
    ]
    assert named_links_commands(Snapshot(iface="eth1"), "x") == []
    # a name every new namespace has where its module is loaded is kept, not made again
    tunnels = Snapshot(iface="eth1", nft_ruleset='iif "sit0" drop\niif "eth0" accept\n')
    assert named_links_commands(tunnels, "p", ["lo", "sit0", "eth1"]) == [
        ["link", "add", "name", "eth0", "type", "veth", "peer", "name", "vpx0", "netns", "p"]]
    # the tested interface is a rebuilt bridge: a named port of it joins it; its peer port is made anyway
    rebuilt = Snapshot(iface="br0", nft_ruleset='iif "eth0" accept\niif "tap0" accept\n', bridge_port="eth0",
                       links={"eth0": ("veth", "br0"), "tap0": ("veth", "br0")})
    assert named_links_commands(rebuilt, "p") == [
        ["link", "add", "name", "tap0", "type", "veth", "peer", "name", "vpx0", "netns", "p"],
        ["link", "set", "dev", "tap0", "master", "br0"],
    ]


def test_flowtables_are_left_out_with_their_flow_statements():
    table = ("table inet f {\n\tflowtable ft {\n\t\thook ingress priority filter\n"
             "\t\tdevices = { eth0, eth1 }\n\t}\n\n\tchain fwd {\n"
             "\t\ttype filter hook forward priority filter; policy accept;\n"
             "\t\tip protocol tcp flow add @ft\n\t\tct state established accept\n\t}\n}\n")
    out = without_flowtables(table)
    assert "flowtable" not in out and "flow add" not in out and "devices" not in out
    assert "\t\tip protocol tcp\n\t\tct state established accept\n" in out and out.endswith("}\n")


def plain(name: str, **kw) -> LinkFacts:
    return LinkFacts(name, **kw)


def test_plain_interface_is_replayed():
    found = judge_stack("eth1", [plain("eth1", kind="veth")], NFT, {"bridge-nf-call-iptables": "1"})
    assert found.cannot_tell == [] and found.limits == []


def test_bridge_port_is_cannot_tell():
    stack = [plain("eth0", master="br0", port=True),
             plain("br0", kind="bridge", bridge=True, lowers=["eth0"])]
    found = judge_stack("eth0", stack, "", {"bridge-nf-call-iptables": "0"})
    assert any("port of bridge br0" in x for x in found.cannot_tell), found


def bridge(*ports: LinkFacts, **kw) -> list:
    return [plain("br0", kind="bridge", bridge=True, lowers=[p.name for p in ports], **kw), *ports]


def port(name: str, **kw) -> LinkFacts:
    return plain(name, master="br0", port=True, **kw)


OFF = {"bridge-nf-call-iptables": "0", "bridge-nf-call-ip6tables": "0"}


def test_a_bridge_with_one_port_is_rebuilt_whatever_filters_it():
    for nft, sysctls in ((NFT, OFF), ("", {**OFF, "bridge-nf-call-iptables": "1"}), ("", OFF)):
        found = judge_stack("br0", bridge(port("eth0")), nft, sysctls)
        assert found.cannot_tell == [] and found.bridge_port == "eth0", found
        assert any("bridge with port eth0 (its only port" in x for x in found.limits), found


def test_a_bridge_with_several_ports_is_rebuilt_on_its_one_nic():
    found = judge_stack("br0", bridge(port("tap0"), port("eno1", physical=True), port("veth9")), NFT, OFF)
    assert found.cannot_tell == [] and found.bridge_port == "eno1", found
    assert any("its only NIC port" in x for x in found.limits)


def test_a_bridge_prove_cannot_rebuild_is_cannot_tell_when_it_filters():
    two = bridge(port("tap0"), port("tap1"))
    found = judge_stack("br0", two, NFT, OFF)
    assert any("nft bridge table b" in x for x in found.cannot_tell) and found.bridge_port is None, found
    by_brnf = judge_stack("br0", two, "", {**OFF, "bridge-nf-call-iptables": "1"})
    assert any("bridge-nf-call-iptables=1" in x for x in by_brnf.cannot_tell), by_brnf
    by_ebt = judge_stack("br0", bridge(port("eth0")), "", OFF, ["filter"])
    assert any("ebtables table filter" in x for x in by_ebt.cannot_tell), by_ebt
    vlanf = judge_stack("br0", bridge(port("eth0"), vlan_filtering=True), "", OFF)
    assert any("VLAN filtering" in x for x in vlanf.cannot_tell), vlanf
    stacked = judge_stack("br0", bridge(port("bond0", lowers=["eth0"]), plain("eth0", master="bond0")),
                          NFT, OFF)
    assert stacked.cannot_tell and stacked.bridge_port is None, stacked
    clean = judge_stack("br0", two, "", OFF)
    assert clean.cannot_tell == [] and any("without bridge filtering" in x for x in clean.limits), clean
    per_bridge = bridge(port("tap0"), port("tap1"), bridge_opts={"nf_call_iptables": 1})
    assert any("nf_call_iptables 1" in x for x in judge_stack("br0", per_bridge, "", OFF).cannot_tell)


def test_a_rebuilt_bridge_takes_its_options_along():
    opts = {"nf_call_iptables": 1, "nf_call_ip6tables": 0, "mcast_snooping": 0}
    eth0 = port("eth0", port_state="forwarding")
    found = judge_stack("br0", bridge(eth0, bridge_opts=opts), "", OFF)
    assert found.bridge_port == "eth0" and found.bridge_opts == opts, found


def test_a_bridge_whose_peer_port_does_not_forward_is_cannot_tell():
    found = judge_stack("br0", bridge(port("eth0", port_state="blocking")), "", OFF)
    assert found.bridge_port is None and any("state blocking" in x for x in found.cannot_tell), found


def test_tc_and_xdp_on_the_interface_or_below_are_cannot_tell():
    found = judge_stack("eth1", [plain("eth1", tc=["tc ingress filters"])], "", {})
    assert any("eth1 has tc ingress filters" in x for x in found.cannot_tell)
    stack = [plain("eth0.7", kind="vlan", lowers=["eth0"]), plain("eth0", xdp=True)]
    assert any("eth0 has an XDP program" in x for x in judge_stack("eth0.7", stack, "", {}).cannot_tell)


def test_a_netdev_hook_below_a_stacked_interface_is_cannot_tell():
    stack = [plain("vlan7", kind="vlan", lowers=["ens3"]), plain("ens3")]
    found = judge_stack("vlan7", stack, NFT, {})
    assert any("ens3, below vlan7, has a netdev hook" in x for x in found.cannot_tell), found
    clean = judge_stack("vlan7", [plain("vlan7", kind="vlan", lowers=["eth0"]), plain("eth0")], NFT, {})
    assert clean.cannot_tell == [] and any("sits on eth0" in x for x in clean.limits), clean


def test_cannot_tell_is_exit_3_and_says_no_numbers():
    proof = InterfaceProof("br0", 5, cannot_tell=["br0's path crosses a bridge"])
    result = ProofResult("224.0.0.18", "auto", 5, [proof])
    assert result.exit_code == EXIT_ENVIRONMENT and not proof.measured
    assert proof.lines() == ["br0: cannot tell: br0's path crosses a bridge"]
    doc = result.to_dict()
    assert doc["interfaces"][0]["cannot_tell"] == ["br0's path crosses a bridge"]
    assert doc["interfaces"][0]["today"] is None and doc["exit_code"] == 3


class _Checked:
    """A static ``check`` result that says ok (only what _emit_proved reads)."""

    command = "check"
    ok = True
    exit_code = 0

    def to_dict(self) -> dict:
        return {"command": "check", "warnings": []}


def test_check_prove_with_cannot_tell_is_exit_3_and_no_contradiction(capsys):
    import json

    import pytest
    import typer

    from vrrpfw.cli import commands as cli

    proof = ProofResult("224.0.0.18", "auto", 5, [InterfaceProof("br0", 5, cannot_tell=["why"])])
    with pytest.raises((typer.Exit, SystemExit)) as e:
        cli._emit_proved(_Checked(), proof, True)
    code = getattr(e.value, "exit_code", getattr(e.value, "code", None))
    doc = json.loads(capsys.readouterr().out)
    assert code == 3 and doc["exit_code"] == 3, doc
    assert not any("contradicts" in w for w in doc["warnings"]), doc["warnings"]
