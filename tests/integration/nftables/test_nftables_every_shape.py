"""Issue 10 in the nftables backend, against real nf_tables in namespaces
with real packets: IPv6 multicast (VRRPv3 to ff02::12), IPv4 unicast with
two peers, AH (IP protocol 51), strict TTL / hop limit 255, each opened,
checked, idempotent and closed; a drop in another table blocks IPv6 alone;
nftables.conf carries every shape and ``nft -f`` loads it back.

The adverts are vrrpfw.prove.traffic's (keepalived's headers, every shape; see
tests/integration/prove/test_advert_fidelity.py)."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, Iterator, List, Optional

import pytest
from netns import Netns, Pair, named_protocols, pair

from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

HOST6, PEER6 = "fd00::1", "fd00::2"
HOST4, PEER4, PEER4B, STRANGER4 = "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"

def send_adverts(sender: Netns, send_if: str, receiver: Netns, recv_if: str, dst: str,
                 proto: int = 112, ttl: Optional[int] = None, src: Optional[str] = None, count: int = 10
                 ) -> Dict[str, int]:
    """Adverts of ``proto`` to ``dst`` with ``ttl`` (None: keepalived's):
    what the sender's kernel refused, what reached the receiver's interface
    (``wire``) and what its raw socket got (``delivered``, i.e. what
    netfilter let in)."""
    return exchange(sender.ns, send_if, receiver.ns, recv_if, count, dst, 1.5, src, proto, ttl).to_dict()


def delivered(*args, **kw) -> int:
    got = send_adverts(*args, **kw)
    assert got["sent"] + got["refused"] == kw.get("count", 10)
    return got["delivered"]


def blocked_in(p: Pair, dst: str, **kw) -> bool:
    """The baseline of every "delivered" assertion: on the host's wire, none
    delivered."""
    got = send_adverts(p.peer, p.peer_if, p.host, p.host_if, dst, **kw)
    return got["wire"] == got["sent"] == 10 and got["delivered"] == 0


def wait_no_tentative(ns: Netns, ifname: str) -> None:
    """IPv6 link-local addresses go through DAD after link up; multicast
    from a tentative address is not sent."""
    for _ in range(60):
        if not ns.run("ip", "-6", "addr", "show", "dev", ifname, "tentative").stdout.strip():
            return
        time.sleep(0.1)
    raise AssertionError(f"{ifname} keeps a tentative IPv6 address")


@pytest.fixture
def p() -> Iterator[Pair]:
    """A namespace pair with IPv4 and IPv6 addresses, every address usable."""
    with pair() as link:
        link.host.run("ip", "-6", "addr", "add", f"{HOST6}/64", "dev", link.host_if, "nodad")
        link.peer.run("ip", "-6", "addr", "add", f"{PEER6}/64", "dev", link.peer_if, "nodad")
        for extra in (PEER4B, STRANGER4):
            link.peer.run("ip", "addr", "add", f"{extra}/24", "dev", link.peer_if)
        wait_no_tentative(link.host, link.host_if)
        wait_no_tentative(link.peer, link.peer_if)
        yield link


# Closed to everything but loopback and ICMPv6 (neighbour discovery, which
# IPv6 unicast needs, as every real IPv6 ruleset allows).
CLOSED = """table inet filter {
  chain input { type filter hook input priority 0; policy drop;
    iifname "lo" accept; icmpv6 type != echo-request accept; }
  chain output { type filter hook output priority 0; policy drop;
    oifname "lo" accept; meta l4proto ipv6-icmp accept; }
}
"""


def ours(ns: Netns) -> List[str]:
    listing = ns.run("nft", "list", "ruleset").stdout
    return [line.strip() for line in listing.splitlines() if '"vrrpfw"' in line]


def vrrpfw(p: Pair, *args: str):
    return p.host.vrrpfw_json(*args, "--iface", p.host_if, "--backend", "nftables", "--no-persist")


def in_out(p: Pair, dst_in: str, dst_out: Optional[str] = None, **kw) -> tuple:
    return (delivered(p.peer, p.peer_if, p.host, p.host_if, dst_in, **kw),
            delivered(p.host, p.host_if, p.peer, p.peer_if, dst_out or dst_in, **kw))


def test_ipv6_multicast_open_check_close_and_a_drop_in_another_table(p):
    p.host.run("nft", "-f", "-", stdin=CLOSED)
    assert blocked_in(p, "ff02::12") and blocked_in(p, "224.0.0.18")
    rc, out = vrrpfw(p, "open", "--family", "both")
    assert rc == 0 and out["changed"] is True, out
    assert in_out(p, "ff02::12") == (10, 10) and in_out(p, "224.0.0.18") == (10, 10)
    want = f'iifname "{p.host_if}" ip6 daddr ff02::12 meta l4proto vrrp counter packets'
    assert want in " ".join(ours(p.host))
    assert len(ours(p.host)) == 4
    rc, out = vrrpfw(p, "open", "--family", "both")
    assert rc == 0 and out["changed"] is False and len(ours(p.host)) == 4, out
    # Another table drops IPv6 VRRP before vrrpfw's accept: IPv6 is missing, IPv4 stays open.
    p.host.run("nft", "-f", "-", stdin="table ip6 t {\n chain c {\n type filter hook input priority -10;\n"
                                       " ip6 nexthdr vrrp drop\n }\n}\n")
    assert blocked_in(p, "ff02::12") and delivered(p.peer, p.peer_if, p.host, p.host_if, "224.0.0.18") == 10
    rc, out = vrrpfw(p, "check", "--family", "both")
    state = {r["group"]: (r["direction"], r["runtime"]) for r in out["rules"] if r["direction"] == "in"}
    assert rc == 1 and state == {"ff02::12": ("in", "missing"), "224.0.0.18": ("in", "allowed")}, out
    assert "ip6 t c" in next(r["detail"] for r in out["rules"] if r["group"] == "ff02::12"
                             and r["direction"] == "in")
    rc, out = vrrpfw(p, "open", "--group", "ff02::12")
    assert rc == 0 and out["changed"] is True, out
    assert delivered(p.peer, p.peer_if, p.host, p.host_if, "ff02::12") == 10
    assert any(line.strip().startswith("iifname") for line in
               p.host.run("nft", "list", "chain", "ip6", "t", "c").stdout.splitlines()
               if '"vrrpfw"' in line)
    rc, out = vrrpfw(p, "close", "--family", "both")
    assert rc == 0 and ours(p.host) == [], out
    assert blocked_in(p, "ff02::12") and blocked_in(p, "224.0.0.18")


def test_ipv4_unicast_two_peers(p):
    p.host.run("nft", "-f", "-", stdin=CLOSED)
    for src in (PEER4, PEER4B):
        assert blocked_in(p, HOST4, src=src)
    rc, out = vrrpfw(p, "open", "--peer", PEER4, "--peer", PEER4B, "--src", HOST4)
    assert rc == 0 and out["changed"] is True, out
    assert {r["group"] for r in out["rules"]} == {f"peer {peer} local {HOST4}" for peer in (PEER4, PEER4B)}
    for src in (PEER4, PEER4B):
        assert delivered(p.peer, p.peer_if, p.host, p.host_if, HOST4, src=src) == 10
        assert delivered(p.host, p.host_if, p.peer, p.peer_if, src) == 10
    assert blocked_in(p, HOST4, src=STRANGER4)  # narrowed to the peers
    assert blocked_in(p, "224.0.0.18")  # no multicast rule
    rc, out = vrrpfw(p, "open", "--peer", PEER4, "--peer", PEER4B, "--src", HOST4)
    assert rc == 0 and out["changed"] is False and len(ours(p.host)) == 4, out
    rc, out = vrrpfw(p, "check", "--peer", PEER4, "--peer", PEER4B, "--src", HOST4)
    assert rc == 0 and {r["runtime"] for r in out["rules"]} == {"allowed"}, out
    rc, out = vrrpfw(p, "close")
    assert rc == 0 and ours(p.host) == [], out
    assert blocked_in(p, HOST4, src=PEER4)


def test_ah_multicast(p):
    p.host.run("nft", "-f", "-", stdin=CLOSED)
    assert blocked_in(p, "224.0.0.18", proto=51)
    rc, out = vrrpfw(p, "open", "--ah")
    assert rc == 0 and out["changed"] is True, out
    assert in_out(p, "224.0.0.18", proto=51) == (10, 10)
    assert in_out(p, "224.0.0.18", proto=112) == (10, 10)
    rc, out = vrrpfw(p, "open", "--ah")
    assert rc == 0 and out["changed"] is False, out
    rc, out = vrrpfw(p, "check", "--ah")
    assert rc == 0 and len(out["rules"]) == 4, out
    assert p.host.vrrpfw("close", "--iface", p.host_if, "--no-persist").returncode == 0
    assert ours(p.host) == [] and blocked_in(p, "224.0.0.18", proto=51)


def test_strict_both_families(p):
    p.host.run("nft", "-f", "-", stdin=CLOSED)
    rc, out = vrrpfw(p, "open", "--family", "both", "--strict")
    assert rc == 0 and out["changed"] is True, out
    for group in ("224.0.0.18", "ff02::12"):
        assert delivered(p.peer, p.peer_if, p.host, p.host_if, group) == 10
        assert blocked_in(p, group, ttl=64)  # not 255: the strict rule does not let it in
        assert delivered(p.host, p.host_if, p.peer, p.peer_if, group, ttl=64) == 10  # outbound: any TTL
    rc, out = vrrpfw(p, "check", "--family", "both", "--strict")
    assert rc == 0 and out["changed"] is False, out
    rc, out = vrrpfw(p, "open", "--family", "both", "--strict")
    assert rc == 0 and out["changed"] is False, out
    # Without --strict the inbound rule is another one; the strict rule lets
    # keepalived's adverts (TTL 255) in, so they are allowed by another rule.
    rc, out = vrrpfw(p, "check", "--family", "both")
    inbound = {r["runtime"] for r in out["rules"] if r["direction"] == "in"}
    assert rc == 0 and inbound == {"allowed-by-other"}, out
    rc, out = vrrpfw(p, "close")
    assert rc == 0 and ours(p.host) == [], out


@pytest.mark.needs("iptables-nft")
def test_strict_in_iptables_nft_chains_stays_readable(p):
    p.host.run("iptables-nft", "-P", "INPUT", "DROP")
    p.host.run("ip6tables-nft", "-P", "INPUT", "DROP")
    assert blocked_in(p, "ff02::12") and blocked_in(p, "224.0.0.18")
    rc, out = vrrpfw(p, "open", "--family", "both", "--strict")
    assert rc == 0 and out["changed"] is True, out
    v4 = p.host.run("iptables-nft", "-S", "INPUT")
    v6 = p.host.run("ip6tables-nft", "-S", "INPUT")
    rules4, rules6 = named_protocols(v4.stdout), named_protocols(v6.stdout)
    tail = "-m comment --comment vrrpfw -j ACCEPT"
    assert f"-A INPUT -d 224.0.0.18/32 -i {p.host_if} -p vrrp -m ttl --ttl-eq 255 {tail}" in rules4
    assert f"-A INPUT -d ff02::12/128 -i {p.host_if} -p vrrp -m hl --hl-eq 255 {tail}" in rules6
    assert v4.stderr == v6.stderr == ""  # no "incompatible" or other warning
    for group in ("224.0.0.18", "ff02::12"):
        assert delivered(p.peer, p.peer_if, p.host, p.host_if, group) == 10
        assert blocked_in(p, group, ttl=64)
    rc, out = vrrpfw(p, "open", "--family", "both", "--strict")
    assert rc == 0 and out["changed"] is False, out
    rc, out = vrrpfw(p, "close")
    assert rc == 0 and "vrrpfw" not in p.host.run("ip6tables-nft", "-S").stdout, out
    assert "vrrpfw" not in p.host.run("iptables-nft", "-S").stdout


def test_nftables_conf_carries_every_shape_and_loads(p, tmp_path):
    conf = tmp_path / "nftables.conf"
    original = "flush ruleset\n" + CLOSED
    conf.write_text(original)
    p.host.run("nft", "-f", str(conf))
    opens = [("--family", "both", "--strict"), ("--ah",),
             ("--peer", PEER4, "--src", HOST4, "--ah", "--strict"),
             ("--peer", PEER6, "--src", HOST6, "--strict")]
    for args in opens:
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--backend", "nftables",
                                     "--persist-file", str(conf), *args)
        assert rc == 0 and all(r["persisted"] for r in out["rules"]), out
    text = conf.read_text()
    assert "ip6 daddr ff02::12 ip6 hoplimit 255 meta l4proto vrrp" in text
    assert f"ip saddr {PEER4} ip daddr {HOST4} ip ttl 255 ip protocol ah" in text
    p.host.run("nft", "-c", "-f", str(conf))
    # The file alone, loaded at boot, gives the same runtime verdicts.
    live = sorted(ours(p.host))
    p.host.run("nft", "flush", "ruleset")
    p.host.run("nft", "-f", str(conf))
    assert sorted(ours(p.host)) == live
    assert delivered(p.peer, p.peer_if, p.host, p.host_if, HOST6, src=PEER6) == 10
    assert delivered(p.peer, p.peer_if, p.host, p.host_if, HOST4, src=PEER4, proto=51) == 10
    for args in opens:
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--backend", "nftables",
                                     "--persist-file", str(conf), *args)
        # (a strict rule below the plain one for the same group is allowed by that one)
        assert rc == 0 and {r["runtime"] for r in out["rules"]} <= {"allowed", "allowed-by-other"}, out
        assert all(r["persisted"] for r in out["rules"]), out
    rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--backend", "nftables",
                                 "--persist-file", str(conf))
    assert rc == 0 and ours(p.host) == [], out
    assert conf.read_text() == original
    assert os.path.exists(conf)


LAYERED = """
import json, sys, vrrpfw
print(json.dumps(vrrpfw.open([sys.argv[1]], group="ff02::12", strict=True, root=sys.argv[2],
                             backend="nftables").to_dict()))
"""


@pytest.mark.needs("iptables-nft")
def test_ip6tables_nft_and_native_ip6_chains_persist_to_their_own_files(p, tmp_path):
    """Distribution defaults (under a temporary root): ip6tables-nft's chain
    goes to /etc/iptables/rules.v6 (with its hl match), a native ip6 chain to
    /etc/nftables.conf; both restored, IPv6 adverts get in."""
    root = tmp_path / "root"
    (root / "etc" / "iptables").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    conf = root / "etc" / "nftables.conf"
    original = ("flush ruleset\ntable ip6 native {\n  chain in {\n"
                "    type filter hook input priority 5; policy drop;\n    meta l4proto ipv6-icmp accept\n"
                "  }\n}\n")
    conf.write_text(original)
    p.host.run("nft", "-f", str(conf))
    p.host.run("ip6tables-nft", "-P", "INPUT", "DROP")
    p.host.run("ip6tables-nft", "-A", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT")
    assert blocked_in(p, "ff02::12")
    for tool, name in (("iptables-nft-save", "rules.v4"), ("ip6tables-nft-save", "rules.v6")):
        (root / "etc" / "iptables" / name).write_text(p.host.run(tool).stdout)
    out = json.loads(p.host.run(sys.executable, "-c", LAYERED, p.host_if, str(root)).stdout)
    assert out["exit_code"] == 0 and out["rules"][0]["persisted"] == "present", out
    assert delivered(p.peer, p.peer_if, p.host, p.host_if, "ff02::12") == 10
    saved = (root / "etc" / "iptables" / "rules.v6").read_text()
    assert f"-A INPUT -d ff02::12/128 -i {p.host_if} -p 112 -m hl --hl-eq 255 -m comment --comment vrrpfw" \
        in saved.replace("-I INPUT 1", "-A INPUT")
    text = conf.read_text()
    assert "insert rule ip6 native in" in text and "ip6 filter" not in text
    # A boot: both files restored into a host without vrrpfw's runtime rules.
    p.host.run("nft", "flush", "ruleset")
    p.host.run("nft", "-f", str(conf))
    p.host.run("ip6tables-nft-restore", stdin=saved)
    assert delivered(p.peer, p.peer_if, p.host, p.host_if, "ff02::12") == 10
    assert blocked_in(p, "ff02::12", ttl=64)


@pytest.mark.needs("iptables-nft")
def test_strict_rule_for_an_iptables_nft_chain_is_not_saved_as_native_ttl(p, tmp_path):
    """nftables.conf defines iptables-nft's ip filter INPUT: vrrpfw's strict
    rule there is iptables-nft's own (xt ttl) at runtime, and a native 'ip
    ttl 255' line in the file would come back as another rule, so it is left
    out and said; the plain outbound rule is saved."""
    conf = tmp_path / "nftables.conf"
    conf.write_text("flush ruleset\n")
    p.host.run("iptables-nft", "-P", "INPUT", "DROP")
    p.host.run("iptables-nft", "-P", "OUTPUT", "DROP")
    conf.write_text("flush ruleset\n" + p.host.run("nft", "list", "ruleset").stdout)
    rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--backend", "nftables", "--strict",
                                 "--persist-file", str(conf))
    assert "-m ttl --ttl-eq 255" in p.host.run("iptables-nft", "-S", "INPUT").stdout
    text = conf.read_text()
    assert "insert rule ip filter OUTPUT" in text and "ip ttl" not in text
    assert rc == 1 and "iptables-nft would read" in json.dumps(out), out
