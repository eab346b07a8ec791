"""The pure parts of ``vrrpfw prove``: ruleset splitting, peer addresses,
limits, open's output, results and their rendering.  No root, no namespaces."""

from __future__ import annotations

import pytest

from vrrpfw.cli import entry as cli
from vrrpfw.errors import InputError
from vrrpfw.prove.addresses import neighbour_in, plan_peers
from vrrpfw.prove.proof import Ask, InterfaceProof, OpenRun, ProofResult, _local, parse_open_output, prove
from vrrpfw.prove.replica import Delivery, PathResult, save_tables, without_owner_flag
from vrrpfw.prove.snapshot import Snapshot, compatible, snapshot_from_files, split_tables, static_limits
from vrrpfw.prove.traffic import Counts, Shape, advert, on_wire

RULESET = """table ip filter {
\tchain INPUT {
\t\ttype filter hook input priority filter; policy drop;
\t\tmeta l4proto vrrp xt match recent counter packets 0 bytes 0 accept
\t}
}
# Warning: table ip filter is managed by iptables-nft, do not touch!
table inet firewalld {
\tflags owner,persist
\tchain filter_INPUT {
\t\ttype filter hook input priority filter + 10; policy accept;
\t}
}
"""


def test_split_tables_keeps_each_table_whole():
    tables = split_tables(RULESET)
    assert [(t.family, t.name) for t in tables] == [("ip", "filter"), ("inet", "firewalld")]
    assert tables[0].text.startswith("table ip filter {") and tables[0].text.endswith("}\n")
    assert "xt match recent" in tables[0].text and "Warning" not in tables[1].text


def test_save_tables():
    assert save_tables("# x\n*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\nCOMMIT\n") == {"raw", "filter"}
    assert save_tables(None) == set()


def test_owner_flag_is_dropped_other_flags_kept():
    text = without_owner_flag(RULESET)
    assert "\tflags persist\n" in text and "owner" not in text
    assert without_owner_flag("table ip t {\n\tflags owner\n}\n") == "table ip t {\n\n}\n"


def test_peer_is_host_plus_one_or_next_free():
    assert plan_peers("eth1", ["10.0.0.1/24"], []).peer_cidrs == ["10.0.0.2/24"]
    plan = plan_peers("eth1", ["10.0.0.254/24", "10.0.0.1/24"], [])
    assert plan.peer_cidrs == ["10.0.0.2/24"] and plan.sources == ["10.0.0.2"]
    assert plan_peers("eth1", ["10.0.0.0/31"], []).peer_cidrs == ["10.0.0.1/31"]


def test_given_peers_on_the_subnet_or_a_host_route_with_a_limit():
    plan = plan_peers("eth1", ["10.0.0.1/24"], ["10.0.0.9", "10.1.0.9"])
    assert plan.peer_cidrs == ["10.0.0.9/24", "10.1.0.9/32"]
    assert plan.sources == ["10.0.0.9", "10.1.0.9"]
    assert any("10.1.0.9" in x and "rp_filter" in x for x in plan.limits)


@pytest.mark.parametrize("peer", ["x", "10.0.0.1", "224.0.0.18", "::1"])
def test_bad_peers_are_input_errors(peer):
    with pytest.raises(InputError):
        plan_peers("eth1", ["10.0.0.1/24"], [peer])


def test_no_address_gets_a_stand_in_and_says_so():
    plan = plan_peers("eth1", [], [])
    assert plan.host_cidrs == ["192.0.2.1/24"] and plan.peer_cidrs == ["192.0.2.2/24"]
    assert any("no IPv4 address" in x for x in plan.limits)


def test_static_limits_name_firewalld_and_dynamic_sets():
    dynamic = "table ip t {\n\tset s {\n\t\tflags dynamic,timeout\n\t}\n}\n"
    snap = Snapshot("eth1", nft_ruleset=RULESET + dynamic)
    limits = static_limits(snap)
    assert any("conntrack" in x for x in limits)
    assert any("firewalld" in x for x in limits)
    assert any("dynamic set" in x for x in limits)
    assert not any("firewalld" in x for x in static_limits(Snapshot("eth1")))


def test_snapshot_from_files(tmp_path):
    path = tmp_path / "r.nft"
    path.write_text(RULESET)
    snap = snapshot_from_files(nft=str(path), iface="eth7", addrs=["10.0.0.1/24"])
    assert snap.nft_ruleset == RULESET and snap.legacy_save is None and snap.iface == "eth7"
    with pytest.raises(InputError):
        snapshot_from_files(iface="bad/name")


def test_parse_open_output():
    out = '{"backend": "iptables", "changed": true, "planned": ["iptables-legacy -I INPUT 1 ..."], ' \
          '"warnings": ["w"], "blockers": ["nft inet t input"]}'
    run = parse_open_output(1, out, "")
    assert run.backend == "iptables" and run.changed and run.planned == ["iptables-legacy -I INPUT 1 ..."]
    assert run.notes == ["w", "still blocked by nft inet t input"] and run.error is None
    failed = parse_open_output(3, '{"error": "no bus", "exit_code": 3}', "vrrpfw: error: no bus\n")
    assert failed.error == "no bus" and failed.exit_code == 3
    crashed = parse_open_output(1, "", "Traceback\nNameError: x\n")
    assert crashed.error == "NameError: x"


def delivery(inbound: int, outbound: int, count: int = 20) -> Delivery:
    return Delivery({"10.0.0.2": PathResult(inbound, count, Counts(count, 0, count, inbound))},
                    PathResult(outbound, count, Counts(count, 0, outbound, outbound)))


def test_exit_codes_and_plain_lines():
    good = InterfaceProof("eth1", 20, delivery(0, 20), delivery(20, 20), OpenRun(0, planned=["x"]),
                          ["a limit"])
    result = ProofResult("224.0.0.18", "auto", 20, [good])
    assert result.exit_code == 0
    assert result.plain().splitlines()[0] == (
        "eth1: inbound today 0/20, after open 20/20; outbound today 20/20, after open 20/20")
    assert "limits:\n  - a limit\n" in result.plain()
    assert result.to_dict()["interfaces"][0]["after"]["ok"] is True
    half = InterfaceProof("eth2", 20, delivery(0, 20), delivery(0, 20), OpenRun(1))
    assert ProofResult("224.0.0.18", "auto", 20, [good, half]).exit_code == 1
    unmeasured = InterfaceProof("eth3", 20, delivery(0, 20), None, OpenRun(3, error="no bus"))
    assert ProofResult("224.0.0.18", "auto", 20, [unmeasured]).exit_code == 1
    assert "after open not measured" in unmeasured.lines()[0]
    broken = InterfaceProof("eth4", 20, error="replica: nft -f failed")
    assert ProofResult("224.0.0.18", "auto", 20, [good, broken]).exit_code == 3


@pytest.mark.parametrize("argv", [
    ["prove"],
    ["prove", "--iface", "a/b"],
    ["prove", "--iface", "eth0", "--group", "10.0.0.1"],
    ["prove", "--iface", "eth0", "--backend", "pf"],
    ["prove", "--iface", "eth0", "--count", "0"],
    ["prove", "--iface", "eth0", "--peer", "nope"],
])
def test_prove_bad_usage_is_one_line_and_exit_2(argv, capsys, monkeypatch):
    # Input is validated before any replica is built; capture (root) is stubbed.
    monkeypatch.setattr("vrrpfw.prove.proof.capture_rules", lambda: Snapshot(""))
    monkeypatch.setattr("vrrpfw.prove.proof.capture_iface",
                        lambda snap, iface: Snapshot(iface, ["10.0.0.1/24"]))
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("vrrpfw: error: ")


# ------------------------------------------- issue 10: shapes, IPv6, unicast

def test_ipv6_plan_gives_both_ends_link_local_and_a_global_address():
    plan = plan_peers("eth1", ["10.0.0.1/24"], [], ["fe80::1/64", "2001:db8::1/64"])
    assert plan.host_cidrs6 == ["fe80::1/64", "2001:db8::1/64"]
    assert plan.peer_cidrs6 == ["fe80::2/64", "2001:db8::2/64"]
    assert plan.sources6 == ["fe80::2"] and not plan.given6  # multicast from the link-local address
    assert plan.local("ipv6") == "2001:db8::1" and plan.local("ipv4") == "10.0.0.1"
    assert plan.limits == []  # IPv6 was not asked for: its stand-ins are no limit of the answer


def test_ipv6_stand_ins_and_given_ipv6_peers():
    plan = plan_peers("eth1", ["10.0.0.1/24"], ["fd00::7", "10.0.0.9"], [])
    assert plan.host_cidrs6 == ["fe80::1/64", "fd00::1/64"]
    assert plan.sources == ["10.0.0.9"] and plan.sources6 == ["fd00::7"] and plan.given6
    assert "fd00::7/64" in plan.peer_cidrs6 and "fe80::2/64" in plan.peer_cidrs6
    assert any("no IPv6 link-local" in x for x in plan.limits)  # asked for: said


@pytest.mark.parametrize("peer", ["fe80::1", "ff02::12", "::"])
def test_bad_ipv6_peers_are_input_errors(peer):
    with pytest.raises(InputError):
        plan_peers("eth1", ["10.0.0.1/24"], [peer], ["fe80::1/64"])


def test_neighbour_in_picks_the_same_prefix():
    assert neighbour_in(["fe80::2/64", "fd00::2/64"], "fd00::1") == "fd00::2"
    assert neighbour_in(["fe80::2/64", "fd00::2/64"], "fe80::1") == "fe80::2"
    assert neighbour_in(["fe80::2/64"], "2001:db8::1") == "fe80::2"


@pytest.mark.parametrize("text", ["ipv4", "ipv6", "ipv4 ah", "ipv6 unicast ttl 7", "ipv4 unicast ah ttl 1",
                                  "ipv4 v3", "ipv4 unicast v3 ttl 2", "ipv6 unicast ttl 255"])
def test_shape_text_round_trips(text):
    assert Shape.parse(text).name == text


@pytest.mark.parametrize("text", ["", "ipv5", "ipv6 ah", "ipv4 ttl 0", "ipv4 ttl 256", "ipv4 ttl", "ipv4 foo",
                                  "ipv4 ah unicast", "ipv4 v3 ah", "ipv6 v3", "ipv6 v2", "ipv4 v2",
                                  "ipv4 ah v3"])
def test_bad_shapes_are_refused(text):
    with pytest.raises(ValueError):
        Shape.parse(text)


def test_keepalived_ttl_has_one_name():
    """TTL 255 is keepalived's own except for IPv6 unicast, where keepalived
    leaves the hop limit to the kernel: there 255 is another advert."""
    assert Shape.parse("ipv4 ttl 255") == Shape() and Shape(ttl=255).name == "ipv4"
    assert Shape().hop_limit == 255 and Shape("ipv6").hop_limit == 255
    assert Shape("ipv6", unicast=True).hop_limit is None
    assert Shape("ipv6", unicast=True, ttl=255).name == "ipv6 unicast ttl 255"
    assert Shape().version == 2 and Shape("ipv6").version == 3 and Shape("ipv6").name == "ipv6"


def test_ah_advert_is_an_ah_header_then_vrrp():
    plain, wrapped = advert(b"Nonc"), advert(b"Nonc", 51, src="192.0.2.2")
    assert wrapped[0] == 112 and wrapped[1] == 4  # next header VRRP; (24 bytes / 4) - 2
    assert wrapped[4:8] == bytes([192, 0, 2, 2])  # SPI: the source address, as keepalived's
    assert len(wrapped) == 24 + len(plain)
    assert wrapped[24 + 4] == 2 and plain[4] == 0  # VRRPv2 auth type: AH behind AH, none without


def test_on_wire_reads_the_protocol_of_either_family():
    eth = b"\0" * 12
    v4 = eth + b"\x08\x00" + bytes([0x45]) + bytes(8) + bytes([51]) + bytes(10) + advert(b"Nonc", 51)
    v6 = eth + b"\x86\xdd" + bytes(6) + bytes([112]) + bytes(33) + advert(b"Nonc", family="ipv6")
    assert on_wire(v4, 51, b"Nonc") and not on_wire(v4, 112, b"Nonc") and not on_wire(v4, 51, b"Othr")
    assert on_wire(v6, 112, b"Nonc") and not on_wire(v6, 51, b"Nonc") and not on_wire(v6, 112, b"Othr")
    assert not on_wire(eth + b"\x08\x06" + bytes(20) + advert(b"Nonc"), 112, b"Nonc")  # ARP


def test_open_options_follow_the_shape():
    assert Ask(Shape(), "224.0.0.19").open_args() == ["--group", "224.0.0.19"]
    assert Ask(Shape("ipv6"), "ff02::12", strict=True).open_args() == ["--group", "ff02::12", "--strict"]
    uni = Ask(Shape(proto=51, unicast=True), "224.0.0.18", ("192.0.2.2", "192.0.2.3"), "192.0.2.1")
    assert uni.open_args() == ["--peer", "192.0.2.2", "--peer", "192.0.2.3", "--src", "192.0.2.1", "--ah"]


@pytest.mark.parametrize("kwargs", [{"unicast": True}, {"ah": True, "group": "ff02::12"},
                                    {"unicast": True, "peers": ["192.0.2.2", "fd00::2"]},
                                    {"unicast": True, "peers": ["fd00::2"], "ah": True}])
def test_prove_refuses_shapes_keepalived_cannot_send(kwargs, monkeypatch):
    monkeypatch.setattr("vrrpfw.prove.proof.capture_rules", lambda: Snapshot(""))
    with pytest.raises(InputError):
        prove(["eth0"], **kwargs)


def test_unicast_local_is_what_open_takes():
    snap = Snapshot("eth1", ["10.0.0.1/24"], addrs6=["2001:db8::1/64", "fe80::1/64"])
    assert _local(snap, Shape(unicast=True), None) == "10.0.0.1"
    assert _local(snap, Shape("ipv6", unicast=True), None) == "fe80::1"  # open's default: link-local
    assert _local(snap, Shape("ipv6", unicast=True), "2001:db8::1") == "2001:db8::1"
    assert _local(snap, Shape("ipv6"), None) is None


def test_incompatible_iptables_nft_tables_are_left_to_nft():
    save = ("# Table `filter' contains incompatible base-chains, use 'nft' tool to list them.\n"
            "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")
    raw = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DROP\nCOMMIT\n"
    assert compatible(save + raw) == raw
    assert compatible(save) == ""
    assert compatible("*filter\n:INPUT DROP [0:0]\nCOMMIT\n") == "*filter\n:INPUT DROP [0:0]\nCOMMIT\n"


def test_named_follows_the_snapshot_it_is_asked_of() -> None:
    """named() keeps its last answer (reading 50,000 rules is slow), but
    never a stale one: a changed text, another interface or a copy made with
    replace() gives the names of what the snapshot holds then."""
    from vrrpfw.record import replace

    snap = Snapshot("eth1", legacy_save="*filter\n-A INPUT -i eth2 -j ACCEPT\n"
                                        "-A INPUT -o eth1 -j DROP\nCOMMIT\n")
    assert snap.named() == ["eth2"]
    assert snap.named() == ["eth2"]
    snap.named().append("junk")  # callers get a copy
    assert snap.named() == ["eth2"]
    snap.legacy_save = "*filter\n-A INPUT -i eth3 -j ACCEPT\nCOMMIT\n"
    assert snap.named() == ["eth3"]
    snap.iptnft_save = "*filter\n-A INPUT --physdev-in eth4 -j ACCEPT\nCOMMIT\n"
    assert snap.named() == ["eth3", "eth4"]
    assert replace(snap, iface="eth3").named() == ["eth4"]
    snap.legacy_save = ("*filter\n-A INPUT -s 192.0.2.1 --out-interface eth5 -j ACCEPT\n"
                        "-A INPUT -i eth+ -j ACCEPT\nCOMMIT\n")
    assert snap.named() == ["eth4", "eth5"]


def test_what_the_prestarted_open_preloads_exists() -> None:
    """OPEN_PRELOAD only speeds `vrrpfw open` in the replica up (a name that
    does not import is skipped): so that it does not rot unseen, every
    vrrpfw module and function it names exists."""
    import importlib
    import importlib.util

    from vrrpfw.prove.proof import OPEN_PRELOAD, OPEN_PRELOAD_LEGACY

    for name in OPEN_PRELOAD + OPEN_PRELOAD_LEGACY:
        module, _, call = name.partition(":")
        if not module.startswith("vrrpfw."):
            continue
        assert importlib.util.find_spec(module) is not None, name
        if call:
            assert callable(getattr(importlib.import_module(module), call)), name


def test_the_prestarted_open_preloads_python_iptables_only_for_legacy_tables() -> None:
    """An nft-only replica's `open` never loads python-iptables, and no
    replica has a bus: preloading either would make every prove reach them
    (and the corpus's nft-only cases run on both library ends for it)."""
    from vrrpfw.prove.proof import open_preload

    nft_only = Snapshot(iface="eth1")
    legacy = Snapshot(iface="eth1", legacy_save="*filter\nCOMMIT\n")
    legacy6 = Snapshot(iface="eth1", legacy6_save="*filter\nCOMMIT\n")
    for preload in (open_preload(nft_only, "auto"), open_preload(nft_only, "nftables")):
        assert not [n for n in preload if "iptc" in n or n.split(".")[0] == "dbus"], preload
    for snap, backend in ((legacy, "auto"), (legacy6, "auto"), (nft_only, "iptables")):
        assert "vrrpfw.judge.read.iptc_loader:load_iptc" in open_preload(snap, backend)
        assert "dbus" not in open_preload(snap, backend)


def test_legacy_tables_load_while_the_links_are_made(monkeypatch) -> None:
    """The ipsets and legacy tables need no interface: the replica loads
    them side by side with making the links and addresses (stand-ins
    here for the namespaces and commands)."""
    import contextlib
    import threading

    from vrrpfw.prove import replica as rep
    from vrrpfw.prove.netns import Namespace

    loading = threading.Event()

    @contextlib.contextmanager
    def fake_namespace(prefix: str):
        yield Namespace(f"{prefix}-stand-in")

    def build(host, peer, snap, plan):
        assert loading.wait(5), "the legacy tables were not loading while the links were made"
        return []

    monkeypatch.setattr(rep, "namespace", fake_namespace)
    monkeypatch.setattr(rep, "_build", build)
    monkeypatch.setattr(rep, "_load_legacy", lambda host, snap: loading.set())
    monkeypatch.setattr(rep, "wait_operstate_up", lambda ns, ifname: None)
    snap = Snapshot("eth1", addrs=["192.0.2.1/24"], legacy_save="*filter\nCOMMIT\n")
    with rep.replica(snap) as r:
        assert r.host.name == "vph-stand-in" and r.host.env["XTABLES_LOCKFILE"].endswith("/xtables.lock")
