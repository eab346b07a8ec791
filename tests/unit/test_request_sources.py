"""--from ADDR (``sources=`` in the API): the multicast peers' addresses.
Validated like --peer and --src (one line, exit 2, before any firewall is
read), carried by the request to the judge (Options.peers), and never
turned into unicast rules: the rules --from opens are the multicast ones."""

from __future__ import annotations

import pytest
from refusals import cli_refuses

from vrrpfw import api
from vrrpfw.errors import InputError
from vrrpfw.host import ifaddr
from vrrpfw.model import Family, make_specs, rules_for
from vrrpfw.request import Ask, from_options

NO_IF = "vrfwnoif0"  # no such interface: this host's own addresses play no part


def test_from_keeps_the_multicast_rules_and_names_the_sources():
    specs = make_specs(["eth0"], sources=["192.0.2.2", "192.0.2.3", "192.0.2.2"])
    assert [(s.group, s.family, s.sources, s.peers) for s in specs] == [
        ("224.0.0.18", Family.IPV4, ("192.0.2.2", "192.0.2.3"), ())]
    assert [r.selector for r in rules_for(specs[0])] == ["224.0.0.18", "224.0.0.18"]
    assert rules_for(specs[0]) == rules_for(make_specs(["eth0"])[0])  # the same rules as without --from


def test_from_names_the_family_where_nothing_else_does():
    specs = make_specs(["eth0"], sources=["fe80::2"])
    assert [(s.group, s.sources) for s in specs] == [("ff02::12", ("fe80::2",))]
    specs = make_specs(["eth0"], family="both", sources=["192.0.2.2", "fe80::2"])
    assert [(s.group, s.sources) for s in specs] == [
        ("224.0.0.18", ("192.0.2.2",)), ("ff02::12", ("fe80::2",))]


@pytest.mark.parametrize("kwargs, words", [
    ({"sources": ["224.0.0.18"]}, "--from address '224.0.0.18' is not a unicast address"),
    ({"sources": ["255.255.255.255"]}, "is not a unicast address"),
    ({"sources": ["127.0.0.1"]}, "is not a unicast address"),
    ({"sources": ["0.0.0.0"]}, "is not a unicast address"),
    ({"sources": ["nonsense"]}, "is not an IPv4 or IPv6 address"),
    ({"sources": ["fe80::2%eth0"]}, "leave out the %scope"),
    ({"sources": ["192.0.2.2"], "peers": ["192.0.2.3"]}, "--peer means unicast"),
    ({"sources": ["fe80::2"], "family": "ipv4"}, "--from fe80::2 is not of the family opened (ipv4)"),
    ({"sources": ["192.0.2.2"], "groups": ["ff02::12"]}, "--from 192.0.2.2 is not of the family opened"),
    ({"sources": ["192.0.2.2"], "family": "both"}, "no ipv6 --from address given"),
    ({"sources": ["::ffff:192.0.2.2"]},
     "--from address '::ffff:192.0.2.2' is an IPv4-mapped IPv6 address; give the IPv4 address 192.0.2.2"),
    ({"peers": ["::ffff:192.0.2.2"]}, "peer '::ffff:192.0.2.2' is an IPv4-mapped IPv6 address"),
])
def test_bad_from_is_refused(kwargs, words):
    with pytest.raises(InputError) as e:
        make_specs(["eth0"], **kwargs)
    assert words in str(e.value)


def test_a_broadcast_address_of_the_subnet_is_no_source(monkeypatch):
    monkeypatch.setattr(ifaddr, "broadcasts", lambda iface: [("192.0.2.255", "192.0.2.0/24")])
    with pytest.raises(InputError) as e:
        from_options([NO_IF], sources=["192.0.2.255"])
    assert str(e.value) == (f"--from 192.0.2.255 is the broadcast address of 192.0.2.0/24 on {NO_IF}, not a "
                            "node's address: no peer sends adverts from it")
    assert from_options([NO_IF], sources=["192.0.2.0"]).sources == ("192.0.2.0",)  # the first: as --peer


def test_the_request_gives_the_judge_the_sources(monkeypatch):
    monkeypatch.setattr(ifaddr, "broadcasts", lambda iface: [])
    req = from_options([NO_IF], sources=["192.0.2.2"])
    assert req.judged_sources() == ("192.0.2.2",)
    assert all(not r.unicast for r in req.rules)
    assert from_options([NO_IF]).judged_sources() == ()


def test_a_global_ipv6_source_is_judged_with_a_note_about_link_local(monkeypatch):
    """keepalived sends IPv6 multicast adverts from the link-local address:
    a global --from is judged as given, and the result says so."""
    monkeypatch.setattr(ifaddr, "broadcasts", lambda iface: [])
    req = from_options([NO_IF], sources=["fd00::2"])
    assert req.judged_sources() == ("fd00::2",)
    assert req.notes == ["--from fd00::2: keepalived sends IPv6 multicast adverts from the peer's link-local "
                         "address (fe80::/10) unless its mcast_src_ip names another; the verdict is for "
                         "adverts from fd00::2 only"]
    assert from_options([NO_IF], sources=["fe80::2"]).notes == []
    assert from_options([NO_IF], sources=["192.0.2.2"]).notes == []


@pytest.mark.parametrize("argv, words", [
    (["open", "--iface", "eth0", "--from", "224.0.0.18", "--no-persist"], "not a unicast address"),
    (["check", "--iface", "eth0", "--from", "192.0.2.2", "--peer", "192.0.2.3"], "--peer means unicast"),
    (["check", "--from", "192.0.2.2"], "give --iface too"),
    (["open", "--iface", "eth0", "--from", "fe80::2", "--family", "ipv4", "--no-persist"],
     "not of the family opened"),
    (["check", "--iface", "eth0", "--from", "192.0.2.2", "--listen", "1"], "not --from"),
])
def test_the_command_line_refuses_bad_from_in_one_line(capsys, no_backends, argv, words):
    assert words in cli_refuses(capsys, argv)


def test_from_beside_a_keepalived_conf_is_refused(tmp_path, no_backends):
    conf = tmp_path / "keepalived.conf"
    conf.write_text("vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n"
                    " 192.0.2.10\n }\n}\n")
    with pytest.raises(InputError) as e:
        api.open(keepalived_conf=str(conf), sources=["192.0.2.2"], persist=False)
    assert "--from goes with --iface" in str(e.value)


def test_the_api_checks_sources_before_any_firewall(no_backends):
    with pytest.raises(InputError):
        api.check(["eth0"], sources="192.0.2.2x")
    with pytest.raises(InputError):
        api.open(["eth0"], sources=[5], persist=False)
    ask = Ask.checked(["eth0"], None, None, (), None, False, False, None, None, need_rules=True,
                      sources=["192.0.2.2"])
    assert ask.sources == ("192.0.2.2",)


def test_prove_gives_open_in_the_replica_the_named_sources():
    from vrrpfw.prove.proof import Ask as ProveAsk
    from vrrpfw.prove.traffic import Shape

    shape = Shape("ipv4", 112, False)
    named = ProveAsk(shape, "224.0.0.18", ("192.0.2.2", "192.0.2.3"), named=True)
    assert named.open_args() == ["--group", "224.0.0.18", "--from", "192.0.2.2", "--from", "192.0.2.3"]
    # peers the replay made up or prove's API was given without --from: open judges the subnet
    assert ProveAsk(shape, "224.0.0.18", ("192.0.2.2",)).open_args() == ["--group", "224.0.0.18"]


@pytest.mark.parametrize("kwargs, words", [
    ({"sources": ["192.0.2.2"], "peers": ["192.0.2.3"], "unicast": True}, "--peer means unicast"),
    ({"sources": ["fe80::2"]}, "--from fe80::2 is not of the group 224.0.0.18's family"),
    ({"sources": ["224.0.0.1"]}, "not a unicast address"),
])
def test_prove_refuses_bad_from_before_reading_anything(monkeypatch, kwargs, words):
    from vrrpfw.prove import proof as prove

    monkeypatch.setattr(prove, "capture_rules", lambda: (_ for _ in ()).throw(AssertionError("read")))
    with pytest.raises(InputError) as e:
        prove.prove(["eth0"], **kwargs)
    assert words in str(e.value)


def test_this_hosts_own_address_is_no_peer():
    with pytest.raises(InputError) as e:
        make_specs(["eth0"], sources=["192.0.2.1"], local_of=lambda i, f: "192.0.2.1")
    assert str(e.value) == "--from 192.0.2.1 is this host's own address (eth0); list the other nodes only"
    assert make_specs(["eth0"], sources=["192.0.2.2"], local_of=lambda i, f: "192.0.2.1")[0].sources == (
        "192.0.2.2",)
