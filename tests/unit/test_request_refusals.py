"""What a run is asked for, refused with one line and exit 2 before any
firewall is looked at, where vrrpfw used to accept it: a family spelt
otherwise than the command line spells it, a ``root`` that is no directory,
``--state-file`` beside a backend that keeps no state file, ``--family
both`` with one group, a unicast peer that is a broadcast address of the
interface's subnet, and two keepalived instances that keepalived itself
refuses for sharing a VRID.  And what is still accepted, as keepalived
accepts it."""

from __future__ import annotations

import os

import pytest
from refusals import cli_refuses
from vrid_clashes import VRID_CLASHES, VRID_SHARED_BUT_ACCEPTED

from vrrpfw import api
from vrrpfw.backends import registry
from vrrpfw.cli import entry as cli
from vrrpfw.errors import InputError
from vrrpfw.host import ifaddr
from vrrpfw.keepalived.conf import parse_text
from vrrpfw.model import Family, make_specs
from vrrpfw.request import from_conf, from_options

# ---------------------------------------------------------------- family: as the CLI spells it

@pytest.mark.parametrize("family", ["IPv4", "IPV4", "IPv6", "Both", "BOTH", " ipv4", "ipv6 ", "ipv4\n"])
@pytest.mark.parametrize("call", ["open", "check", "close"])
def test_the_api_refuses_a_family_the_cli_refuses(no_backends, family, call):
    with pytest.raises(InputError, match="unknown family") as e:
        getattr(api, call)(["eth0"], family=family)
    assert e.value.exit_code == 2


@pytest.mark.parametrize("family", ["IPv4", "IPV4"])
def test_the_cli_refuses_them_too(capsys, no_backends, family):
    line = cli_refuses(capsys, ["open", "--iface", "eth0", "--family", family])
    assert "'--family'" in line and "'ipv4', 'ipv6', 'both'" in line


# ---------------------------------------------------------------- root

@pytest.mark.parametrize("root", ["/nonexistent", "/nonexistent/x", "relative", "", "/etc/hostname"])
@pytest.mark.parametrize("call", ["open", "check", "close"])
def test_a_root_that_is_not_a_directory_is_refused(no_backends, root, call):
    if root == "/etc/hostname" and not os.path.isfile(root):
        root = __file__
    with pytest.raises(InputError, match="root") as e:
        getattr(api, call)(["eth0"], root=root)
    assert e.value.exit_code == 2 and "\n" not in str(e.value)


def test_an_existing_root_directory_is_taken(monkeypatch, tmp_path):
    seen = []

    def pick(_name, options):
        seen.append(options.root)
        return [], "nothing filters"

    monkeypatch.setattr(registry, "select_layers", pick)
    api.check(["eth0"], root=str(tmp_path))
    api.open(["eth0"], root=tmp_path, dry_run=True)
    assert seen == [str(tmp_path)] * 2


# ---------------------------------------------------------------- --state-file beside another backend

@pytest.mark.parametrize("backend", ["iptables", "nftables", "ufw"])
@pytest.mark.parametrize("command", ["open", "check", "close"])
def test_state_file_with_a_backend_that_keeps_none_is_refused(capsys, no_backends, tmp_path, backend,
                                                              command):
    state = tmp_path / "state.json"
    line = cli_refuses(capsys, [command, "--iface", "eth0", "--backend", backend,
                                "--state-file", str(state)])
    assert "--state-file applies to firewalld only" in line and backend in line
    assert not state.exists()


@pytest.mark.parametrize("backend", ["auto", "firewalld"])
def test_state_file_with_auto_or_firewalld_passes_the_check(monkeypatch, capsys, tmp_path, backend):
    chosen = []

    def pick(name, _options):
        chosen.append(name)
        return [], "nothing filters"

    monkeypatch.setattr(registry, "select_layers", pick)
    cli.main(["check", "--iface", "eth0", "--backend", backend, "--state-file", str(tmp_path / "s.json")])
    assert chosen == [backend]


def test_the_ansible_module_refuses_state_file_beside_another_backend():
    from ansible_stub import _load  # the module with Ansible stubbed out

    module = _load()
    params = {name: spec.get("default") for name, spec in module.ARGUMENT_SPEC.items()}
    params.update(interfaces=["eth0"], backend="iptables", state_file="/var/lib/x.json")
    assert module.refusal(params) == "state_file applies to firewalld only, not to backend=iptables"
    params["backend"] = "firewalld"
    assert module.refusal(params) is None


# ---------------------------------------------------------------- --family both with one group

@pytest.mark.parametrize("group, missing", [("224.0.0.18", "ipv6"), ("224.0.0.19", "ipv6"),
                                            ("ff02::12", "ipv4"), ("ff02::13", "ipv4")])
def test_family_both_with_one_group_is_refused_like_ipv4_with_an_ipv6_group(capsys, no_backends, group,
                                                                           missing):
    line = cli_refuses(capsys, ["open", "--iface", "eth0", "--family", "both", "--group", group])
    assert f"no {missing} group given" in line
    with pytest.raises(InputError, match=f"no {missing} group given"):
        api.open(["eth0"], family="both", group=group)
    with pytest.raises(InputError, match=f"no {missing} group given"):
        api.check(["eth0"], family="both", group=group)


def test_family_both_with_a_group_of_each_family_is_taken():
    specs = make_specs(["eth0"], ["224.0.0.19", "ff02::13"], family="both")
    assert [(s.family, s.group) for s in specs] == [(Family.IPV4, "224.0.0.19"), (Family.IPV6, "ff02::13")]
    specs = make_specs(["eth0"], family="both")
    assert [(s.family, s.group) for s in specs] == [(Family.IPV4, "224.0.0.18"), (Family.IPV6, "ff02::12")]


# ---------------------------------------------------------------- a peer that is a broadcast address

@pytest.fixture
def subnets(monkeypatch):
    """eth0: 192.0.2.1/24 (primary) and 198.51.100.1/30 (secondary); p2p0: a /31."""
    table = {"eth0": [("192.0.2.255", "192.0.2.0/24"), ("198.51.100.3", "198.51.100.0/30")], "p2p0": []}
    monkeypatch.setattr(ifaddr, "broadcasts", lambda iface: table.get(iface, []))
    monkeypatch.setattr("vrrpfw.request.local_address",
                        lambda iface, fam: {"eth0": "192.0.2.1", "p2p0": "203.0.113.0"}.get(iface)
                        if fam is Family.IPV4 else "fe80::1")


@pytest.mark.parametrize("peer, net", [("192.0.2.255", "192.0.2.0/24"), ("198.51.100.3", "198.51.100.0/30")])
def test_a_peer_that_is_a_broadcast_address_is_refused(subnets, peer, net):
    with pytest.raises(InputError) as e:
        from_options(["eth0"], peers=["192.0.2.2", peer])
    assert str(e.value) == (f"--peer {peer} is the broadcast address of {net} on eth0, not a node's "
                            "address: keepalived cannot send adverts to it")


@pytest.mark.parametrize("peer", ["192.0.2.0", "192.0.2.254", "198.51.100.0", "198.51.100.2", "10.0.0.255"])
def test_other_peers_are_taken_the_network_address_too(subnets, peer):
    """keepalived sends to a subnet's first address (Linux routes it as
    unicast and a host may hold it), so it is no broadcast here."""
    req = from_options(["eth0"], peers=[peer])
    assert {r.group for r in req.rules} == {peer}


def test_a_point_to_point_31_has_no_broadcast(subnets):
    req = from_options(["p2p0"], peers=["203.0.113.1"])
    assert {r.group for r in req.rules} == {"203.0.113.1"}


def test_a_broadcast_peer_in_keepalived_conf_is_refused_with_file_and_line(subnets):
    conf = parse_text("vrrp_instance VI {\n interface eth0\n virtual_router_id 5\n"
                      " unicast_peer {\n  192.0.2.255\n }\n virtual_ipaddress { 192.0.2.10 }\n}\n", "/k.conf")
    with pytest.raises(InputError, match=r"^/k.conf:1: vrrp_instance VI: unicast_peer 192.0.2.255 is the "
                                         r"broadcast address of 192.0.2.0/24 on eth0"):
        from_conf(conf)


def test_the_broadcast_check_is_before_any_firewall_through_the_api(subnets, no_backends):
    with pytest.raises(InputError, match="broadcast address"):
        api.open(["eth0"], peers=["192.0.2.255"])


def test_broadcasts_of_the_loopback_are_read_from_the_kernel():
    """The netlink reader itself, on the one interface every namespace has."""
    assert ("127.255.255.255", "127.0.0.0/8") in ifaddr.broadcasts("lo")
    assert ifaddr.broadcasts("no-such-if0") == []


# ---------------------------------------------------------------- one VRID twice in keepalived.conf

@pytest.mark.parametrize("name", sorted(VRID_CLASHES))
def test_two_instances_with_one_vrid_on_one_interface_and_family_are_refused(name):
    with pytest.raises(InputError) as e:
        parse_text(VRID_CLASHES[name], "/k.conf")
    message = str(e.value)
    assert message.startswith("/k.conf:")
    assert "vrrp_instance B and A" in message and "VRID 51" in message and "keepalived refuses" in message


@pytest.mark.parametrize("name", sorted(VRID_SHARED_BUT_ACCEPTED))
def test_a_shared_vrid_keepalived_accepts_is_accepted(name):
    assert [i.name for i in parse_text(VRID_SHARED_BUT_ACCEPTED[name], "/k.conf").instances] == ["A", "B"]


def test_a_vrid_clash_is_refused_through_the_cli_before_any_firewall(capsys, no_backends, tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_text(VRID_CLASHES["multicast"])
    line = cli_refuses(capsys, ["open", "--keepalived-conf", str(path)])
    assert f"{path}:" in line and "VRID 51" in line
