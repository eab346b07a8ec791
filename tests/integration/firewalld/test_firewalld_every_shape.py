"""The firewalld backend for every rule shape of issue 10 (IPv6 multicast,
IPv4 unicast with two peers, AH, strict TTL 255), against real firewalld
on both of its backends, in a namespace on a private D-Bus bus, with real
adverts of each shape (vrrpfw.prove.traffic sends them with raw sockets)."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Dict, List, Optional

import pytest
from fwharness import FirewalldHost, firewalld_host

from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

BACKENDS = ["nftables", "iptables"]
HOST6, PEER6 = "fd00::1", "fd00::2"
PEER2 = "192.0.2.3"  # a second peer, also on the peer's end of the link


def v6_ready(fw: FirewalldHost) -> None:
    """Global IPv6 addresses on both ends (no DAD), and the link-local
    addresses past DAD: a tentative address cannot send."""
    p = fw.pair
    p.host.run("ip", "-6", "addr", "add", f"{HOST6}/64", "dev", p.host_if, "nodad")
    p.peer.run("ip", "-6", "addr", "add", f"{PEER6}/64", "dev", p.peer_if, "nodad")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not any(side.run("ip", "-6", "addr", "show", "tentative").stdout.strip()
                   for side in (p.host, p.peer)):
            return
        time.sleep(0.1)
    raise AssertionError("IPv6 addresses still tentative after 10 s")


def inbound(fw: FirewalldHost, dst: str, source: str = "", proto: int = 112,
            ttl: Optional[int] = None) -> Dict[str, int]:
    """Adverts of one shape from the peer's end to the host's (``ttl`` None: keepalived's)."""
    p = fw.pair
    return exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 20, dst, source=source or None,
                    proto=proto, ttl=ttl).to_dict()


def delivered(fw: FirewalldHost, dst: str, **kw) -> int:
    got = inbound(fw, dst, **kw)
    assert got["wire"] == 20, got  # the link carried them: a 0 below is the firewall's
    return got["delivered"]


def permanent_zone(fw: FirewalldHost, zone: str = "public") -> str:
    """The zone's XML in firewalld's (temporary) configuration directory."""
    path = os.path.join(fw.sys_dir, "zones", f"{zone}.xml")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def direct_xml(fw: FirewalldHost) -> str:
    path = os.path.join(fw.sys_dir, "direct.xml")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def rich_lines(fw: FirewalldHost, *flags: str) -> List[str]:
    return [line for line in fw.cmd(*flags, "--list-rich-rules").splitlines() if line]


def done(rc: int, out: Dict[str, Any]) -> bool:
    """Exit 0.  firewalld's IPv6 reverse path filter (``fib saddr . mark .
    iif oif missing drop`` in filter_PREROUTING) is judged: the advert's
    link-local source has a route back through the interface."""
    return rc == 0


def open_check_close(fw: FirewalldHost, args: List[str]) -> None:
    """open twice (the second changes nothing), check (done), close."""
    iface = fw.pair.host_if
    rc, out = fw.vrrpfw_json("open", "--iface", iface, *args)
    assert done(rc, out) and out["changed"] is True, json.dumps(out, indent=1)
    rc, again = fw.vrrpfw_json("open", "--iface", iface, *args)
    assert done(rc, again) and again["changed"] is False, json.dumps(again, indent=1)
    rc, check = fw.vrrpfw_json("check", "--iface", iface, *args)
    assert done(rc, check), json.dumps(check, indent=1)


def closed(fw: FirewalldHost, args: List[str]) -> None:
    """close finds vrrpfw's rules of the interface (every shape) itself:
    from the record and the direct rules' comment."""
    iface = fw.pair.host_if
    rc, out = fw.vrrpfw_json("close", "--iface", iface)
    assert rc == 0 and out["changed"] is True, json.dumps(out, indent=1)
    assert rich_lines(fw) == rich_lines(fw, "--permanent") == []
    assert fw.cmd("--direct", "--get-all-rules") == fw.cmd("--permanent", "--direct", "--get-all-rules") == ""
    assert "vrrp" not in permanent_zone(fw) and "vrrpfw" not in direct_xml(fw)
    assert not os.path.exists(fw.state_file)  # holding nothing after close, it is removed
    assert fw.vrrpfw("check", "--iface", iface, *args).returncode == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_ipv6_multicast(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        v6_ready(fw)
        iface = fw.pair.host_if
        assert delivered(fw, "ff02::12") == 0
        open_check_close(fw, ["--group", "ff02::12"])
        assert (tmp_path / "vrrpfw-state.json").exists()
        assert delivered(fw, "ff02::12") == 20
        assert delivered(fw, "224.0.0.18") == 0  # IPv6 only: IPv4 stays closed
        if backend == "nftables":
            want = ('rule priority="-32768" family="ipv6" destination address="ff02::12" '
                    'protocol value="vrrp" accept')
            assert rich_lines(fw) == rich_lines(fw, "--permanent") == [want]
            assert 'family="ipv6"' in permanent_zone(fw) and 'address="ff02::12"' in permanent_zone(fw)
        else:
            direct = fw.cmd("--direct", "--get-all-rules")
            assert (f"ipv6 filter INPUT 0 -i {iface} -d ff02::12 -p 112 -m comment --comment vrrpfw "
                    "-j ACCEPT") in direct
            assert fw.cmd("--permanent", "--direct", "--get-all-rules") == direct
            assert 'ipv="ipv6"' in direct_xml(fw)
        rc, out = fw.vrrpfw_json("check")  # without --iface: what open was asked for
        assert done(rc, out) and {r["interface"] for r in out["rules"]} == {iface}, out
        closed(fw, ["--group", "ff02::12"])
        assert delivered(fw, "ff02::12") == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_ipv4_unicast_two_peers(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        fw.pair.peer.run("ip", "addr", "add", f"{PEER2}/24", "dev", fw.pair.peer_if)
        args = ["--peer", "192.0.2.2", "--peer", PEER2, "--src", "192.0.2.1"]
        for src in ("192.0.2.2", PEER2):
            assert delivered(fw, "192.0.2.1", source=src) == 0
        open_check_close(fw, args)
        for src in ("192.0.2.2", PEER2):
            assert delivered(fw, "192.0.2.1", source=src) == 20, src
        assert delivered(fw, "224.0.0.18") == 0  # unicast: no multicast rule
        if backend == "nftables":
            rules = sorted(rich_lines(fw))
            assert sorted(rich_lines(fw, "--permanent")) == rules
            for peer in ("192.0.2.2", PEER2):
                assert (f'rule priority="-32768" family="ipv4" source address="{peer}" destination '
                        'address="192.0.2.1" protocol value="vrrp" accept') in rules
            assert len(rules) == 2, rules  # outbound is not filtered by firewalld zones
            assert permanent_zone(fw).count('protocol value="vrrp"') == 2
        else:
            direct = fw.cmd("--direct", "--get-all-rules")
            for peer in ("192.0.2.2", PEER2):
                assert f"-s {peer} -d 192.0.2.1 -p 112" in direct
                assert f"-s 192.0.2.1 -d {peer} -p 112" in direct
        # closing one peer keeps the other's allowance
        iface = fw.pair.host_if
        rc, out = fw.vrrpfw_json("close", "--iface", iface, "--group", PEER2)
        assert rc == 0 and out["changed"] is True, json.dumps(out, indent=1)
        assert delivered(fw, "192.0.2.1", source="192.0.2.2") == 20
        assert delivered(fw, "192.0.2.1", source=PEER2) == 0
        closed(fw, args)
        assert delivered(fw, "192.0.2.1", source="192.0.2.2") == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_ah(tmp_path, backend):
    with firewalld_host(tmp_path, backend) as fw:
        assert delivered(fw, "224.0.0.18", proto=51) == 0
        open_check_close(fw, ["--ah"])
        assert delivered(fw, "224.0.0.18", proto=51) == 20
        assert delivered(fw, "224.0.0.18") == 20
        if backend == "nftables":
            rules = sorted(rich_lines(fw))
            assert ('rule priority="-32768" family="ipv4" destination address="224.0.0.18" '
                    'protocol value="ah" accept') in rules
            assert sorted(rich_lines(fw, "--permanent")) == rules
            assert 'protocol value="ah"' in permanent_zone(fw)
        else:
            assert "-d 224.0.0.18 -p 51 -m comment --comment vrrpfw" in fw.cmd("--direct", "--get-all-rules")
            assert re.search(r'ipv="ipv4".*-p.*51', direct_xml(fw).replace("\n", " "))
        closed(fw, ["--ah"])
        assert delivered(fw, "224.0.0.18", proto=51) == 0


def test_strict_is_refused_on_the_nftables_backend(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        proc = fw.vrrpfw("open", "--iface", fw.pair.host_if, "--strict")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "no TTL / hop-limit match" in proc.stdout + proc.stderr
        assert rich_lines(fw) == rich_lines(fw, "--permanent") == []
        assert fw.cmd("--direct", "--get-all-rules") == ""


def test_strict_direct_rules_on_the_iptables_backend(tmp_path):
    """Direct rules take iptables' TTL match: TTL 255 passes, TTL 1 not."""
    with firewalld_host(tmp_path, "iptables") as fw:
        open_check_close(fw, ["--strict"])
        assert delivered(fw, "224.0.0.18") == 20
        assert delivered(fw, "224.0.0.18", ttl=1) == 0
        assert "-m ttl --ttl-eq 255" in fw.cmd("--permanent", "--direct", "--get-all-rules")
        closed(fw, ["--strict"])
        assert delivered(fw, "224.0.0.18") == 0


def test_old_state_file_keeps_working(tmp_path):
    """A version 2 state.json and the rich rule an older vrrpfw added:
    check finds it from the record, close removes it."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        rich = ('rule priority="-32768" family="ipv4" destination address="224.0.0.18" '
                'protocol value="vrrp" accept')
        fw.cmd("--add-rich-rule", rich)
        fw.cmd("--permanent", "--add-rich-rule", rich)
        doc = {"version": 2, "interfaces": [{"interface": iface, "group": "224.0.0.18"}],
               "firewalld": [{"layer": layer, "zone": "public", "kind": "rich", "value": rich,
                              "interfaces": [iface], "generation": None} for layer in ("permanent",)]}
        with open(fw.state_file, "w") as f:
            json.dump(doc, f)
        rc, out = fw.vrrpfw_json("check")
        assert rc == 0 and {r["interface"] for r in out["rules"]} == {iface}, out
        rc, out = fw.vrrpfw_json("close", "--iface", iface)
        assert rc == 0 and out["changed"] is True, json.dumps(out, indent=1)
        assert rich_lines(fw, "--permanent") == []
