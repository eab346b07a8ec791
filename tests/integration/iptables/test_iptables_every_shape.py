"""Issue 10 in the legacy iptables backend, against real iptables-legacy /
ip6tables-legacy in namespaces, with real adverts: VRRPv3 over IPv6, IPv4
unicast peers, AH and strict TTL / hop limit 255.  Each open is checked
with packets, repeated (the second changes nothing), checked and closed.
Nothing touches the root namespace: every call names a temporary
--persist-file or --no-persist."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Iterator

import pytest
from netns import Netns, Pair, named_protocols, namespace

from vrrpfw.model import make_specs, rules_for
from vrrpfw.persist import iptables_save
from vrrpfw.prove import netns as _netns
from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

HOST4, PEER4, PEER4B, STRANGER4 = "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"
HOST6, PEER6 = "fd00::1", "fd00::2"
GROUP6 = "ff02::12"


@contextlib.contextmanager
def pair46() -> Iterator[Pair]:
    """Two namespaces joined by a veth pair with IPv4 and IPv6 addresses
    (DAD off, so the addresses, link-local included, work at once); the
    peer also holds a second peer's and a stranger's IPv4 address."""
    with namespace("vi10h") as host, namespace("vi10p") as peer:
        host_if, peer_if = _netns.unique("vh"), _netns.unique("vp")
        for side in (host, peer):
            side.run("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
        _netns.veth(host.ns, host_if, peer.ns, peer_if)
        host.ns.ip_batch([f"addr add {HOST4}/24 dev {host_if}", f"addr add {HOST6}/64 dev {host_if} nodad"])
        peer.ns.ip_batch([f"addr add {a}/24 dev {peer_if}" for a in (PEER4, PEER4B, STRANGER4)]
                         + [f"addr add {PEER6}/64 dev {peer_if} nodad"])
        for side, ifname in ((host, host_if), (peer, peer_if)):
            _netns.link_up(side.ns, ifname)
        for side, ifname in ((host, host_if), (peer, peer_if)):
            _netns.wait_operstate_up(side.ns, ifname)
        yield Pair(host, peer, host_if, peer_if)


def drop_all(ns: Netns, cmd: str) -> None:
    """INPUT/OUTPUT policy DROP (loopback allowed) in one family's legacy filter table."""
    ns.run(cmd, "-w", "-P", "INPUT", "DROP")
    ns.run(cmd, "-w", "-P", "OUTPUT", "DROP")
    ns.run(cmd, "-w", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")


def saved(ns: Netns, cmd: str) -> str:
    """``CMD-save`` without comments and counters, for equality."""
    out = named_protocols(ns.run(cmd).stdout)
    return "\n".join(line.split(" [")[0] for line in out.splitlines() if not line.startswith("#"))


C = "-m comment --comment vrrpfw -j ACCEPT"  # how each vrrpfw line ends


def ours(ns: Netns, cmd: str) -> list:
    return [line for line in saved(ns, cmd).splitlines() if "--comment vrrpfw" in line]


def inbound(p: Pair, dst: str, **kw) -> dict:
    return exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, 10, dst, 2.0, **kw).to_dict()


def outbound(p: Pair, dst: str, **kw) -> dict:
    return exchange(p.host.ns, p.host_if, p.peer.ns, p.peer_if, 10, dst, 2.0, **kw).to_dict()


def vrrpfw(ns: Netns, *args: str) -> dict:
    rc, out = ns.vrrpfw_json(*args, "--backend", "iptables")
    out["rc"] = rc
    return out


def open_twice(p: Pair, args: list, save_cmd: str, persist: str) -> str:
    """open, then open again: the second changes neither the runtime nor
    the saved file.  Returns the ruleset after the first."""
    first = vrrpfw(p.host, "open", "--iface", p.host_if, *args, "--persist-file", persist)
    assert first["rc"] == 0, first
    after = saved(p.host, save_cmd)
    with open(persist) as f:
        file_after = f.read()
    second = vrrpfw(p.host, "open", "--iface", p.host_if, *args, "--persist-file", persist)
    assert second["rc"] == 0 and not second.get("changed"), second
    assert saved(p.host, save_cmd) == after
    with open(persist) as f:
        assert f.read() == file_after
    check = vrrpfw(p.host, "check", "--iface", p.host_if, *args, "--persist-file", persist)
    assert check["rc"] == 0, check
    return after


def test_ipv6_multicast_open_check_close_with_real_adverts(tmp_path):
    persist = str(tmp_path / "rules.v6")
    with pair46() as p:
        drop_all(p.host, "ip6tables-legacy")
        before = saved(p.host, "ip6tables-legacy-save")
        with open(persist, "w") as f:
            f.write(p.host.run("ip6tables-legacy-save").stdout)
        with open(persist) as f:
            file_before = f.read()
        blocked_in, blocked_out = inbound(p, GROUP6), outbound(p, GROUP6)
        assert blocked_in["wire"] == 10 and blocked_in["delivered"] == 0, blocked_in
        assert blocked_out["wire"] == 0, blocked_out

        dry = p.host.vrrpfw("open", "--iface", p.host_if, "--group", GROUP6, "--backend", "iptables",
                            "--persist-file", persist, "--dry-run")
        assert f"ip6tables-legacy -t filter -I INPUT 1 -d ff02::12/128 -i {p.host_if} -p 112" in dry.stdout

        open_twice(p, ["--group", GROUP6], "ip6tables-legacy-save", persist)
        lines = ours(p.host, "ip6tables-legacy-save")
        assert lines == [f"-A INPUT -d ff02::12/128 -i {p.host_if} -p vrrp {C}",
                         f"-A OUTPUT -d ff02::12/128 -o {p.host_if} -p vrrp {C}"]
        assert ours(p.host, "iptables-legacy-save") == []  # nothing in the IPv4 tables
        with open(persist) as f:
            text = f.read()
        assert f"-A INPUT -d ff02::12/128 -i {p.host_if} -p 112 {C}\n" in text
        assert inbound(p, GROUP6)["delivered"] == 10
        assert outbound(p, GROUP6)["wire"] == 10

        closed = vrrpfw(p.host, "close", "--iface", p.host_if, "--group", GROUP6, "--persist-file", persist)
        assert closed["rc"] == 0, closed
        assert saved(p.host, "ip6tables-legacy-save") == before
        with open(persist) as f:
            assert f.read() == file_before
        assert inbound(p, GROUP6)["delivered"] == 0


def test_ipv4_unicast_two_peers(tmp_path):
    persist = str(tmp_path / "rules.v4")
    with pair46() as p:
        drop_all(p.host, "iptables-legacy")
        with open(persist, "w") as f:
            f.write(p.host.run("iptables-legacy-save").stdout)
        assert inbound(p, HOST4, source=PEER4)["delivered"] == 0
        args = ["--peer", PEER4, "--peer", PEER4B, "--src", HOST4]
        open_twice(p, args, "iptables-legacy-save", persist)
        i = p.host_if
        assert ours(p.host, "iptables-legacy-save") == [
            f"-A INPUT -s {PEER4B}/32 -d {HOST4}/32 -i {i} -p vrrp -m comment --comment vrrpfw -j ACCEPT",
            f"-A INPUT -s {PEER4}/32 -d {HOST4}/32 -i {i} -p vrrp -m comment --comment vrrpfw -j ACCEPT",
            f"-A OUTPUT -s {HOST4}/32 -d {PEER4B}/32 -o {i} -p vrrp -m comment --comment vrrpfw -j ACCEPT",
            f"-A OUTPUT -s {HOST4}/32 -d {PEER4}/32 -o {i} -p vrrp -m comment --comment vrrpfw -j ACCEPT",
        ]
        assert inbound(p, HOST4, source=PEER4)["delivered"] == 10
        assert inbound(p, HOST4, source=PEER4B)["delivered"] == 10
        assert inbound(p, HOST4, source=STRANGER4)["delivered"] == 0  # not a peer
        assert inbound(p, "224.0.0.18", source=PEER4)["delivered"] == 0  # no multicast rule
        assert outbound(p, PEER4)["wire"] == 10

        # close without options: what vrrpfw finds of its own (discover reads every shape back)
        closed = vrrpfw(p.host, "close", "--iface", p.host_if, "--persist-file", persist)
        assert closed["rc"] == 0, closed
        assert ours(p.host, "iptables-legacy-save") == []
        assert "vrrpfw" not in open(persist).read()
        assert inbound(p, HOST4, source=PEER4)["delivered"] == 0


def test_ah_and_strict_ipv4(tmp_path):
    persist = str(tmp_path / "rules.v4")
    with pair46() as p:
        drop_all(p.host, "iptables-legacy")
        with open(persist, "w") as f:
            f.write(p.host.run("iptables-legacy-save").stdout)
        assert inbound(p, "224.0.0.18", proto=51)["delivered"] == 0
        open_twice(p, ["--ah", "--strict"], "iptables-legacy-save", persist)
        i = p.host_if
        assert ours(p.host, "iptables-legacy-save") == [
            f"-A INPUT -d 224.0.0.18/32 -i {i} -p ah -m ttl --ttl-eq 255 {C}",
            f"-A INPUT -d 224.0.0.18/32 -i {i} -p vrrp -m ttl --ttl-eq 255 {C}",
            f"-A OUTPUT -d 224.0.0.18/32 -o {i} -p ah -m comment --comment vrrpfw -j ACCEPT",
            f"-A OUTPUT -d 224.0.0.18/32 -o {i} -p vrrp -m comment --comment vrrpfw -j ACCEPT",
        ]
        text = open(persist).read()
        assert f"-A INPUT -d 224.0.0.18/32 -i {i} -p 51 -m ttl --ttl-eq 255 {C}\n" in text
        assert inbound(p, "224.0.0.18", proto=51)["delivered"] == 10
        assert inbound(p, "224.0.0.18")["delivered"] == 10
        assert inbound(p, "224.0.0.18", ttl=1)["delivered"] == 0  # strict: TTL 1 is not let in
        assert inbound(p, "224.0.0.18", proto=51, ttl=64)["delivered"] == 0
        assert outbound(p, "224.0.0.18", proto=51)["wire"] == 10

        closed = vrrpfw(p.host, "close", "--iface", i, "--persist-file", persist)
        assert closed["rc"] == 0, closed
        assert ours(p.host, "iptables-legacy-save") == []
        assert inbound(p, "224.0.0.18", proto=51)["delivered"] == 0


def test_strict_ipv6_hop_limit(tmp_path):
    with pair46() as p:
        drop_all(p.host, "ip6tables-legacy")
        out = vrrpfw(p.host, "open", "--iface", p.host_if, "--family", "ipv6", "--strict", "--no-persist")
        assert out["rc"] == 0, out
        strict = f"-A INPUT -d ff02::12/128 -i {p.host_if} -p vrrp -m hl --hl-eq 255 {C}"
        assert strict in ours(p.host, "ip6tables-legacy-save")
        assert inbound(p, GROUP6)["delivered"] == 10
        assert inbound(p, GROUP6, ttl=1)["delivered"] == 0
        again = vrrpfw(p.host, "open", "--iface", p.host_if, "--family", "ipv6", "--strict", "--no-persist")
        assert again["rc"] == 0 and not again.get("changed"), again
        closed = vrrpfw(p.host, "close", "--iface", p.host_if, "--no-persist")
        assert closed["rc"] == 0 and ours(p.host, "ip6tables-legacy-save") == []


# The raw-bytes way of building the ttl / hl match (where libxtables' parser
# fails, iptables 1.8.11), forced in a child inside the namespace: the kernel
# must get the same rule the parser builds, and check must recognise it.
FORCED_RAW = """
import json, sys
from vrrpfw import run
from vrrpfw.judge.read import iptc_loader
from vrrpfw.backends.base import Options
from vrrpfw.model import make_specs, rules_for
iptc_loader._WAYS.update({False: ("raw", ["parse: forced"]), True: ("raw", ["parse: forced"])})
rules = [r for fam in ("ipv4", "ipv6") for s in make_specs([sys.argv[1]], family=fam, strict=True)
         for r in rules_for(s)]
res = run.run("open", rules, None, None, "iptables", Options(persist=False))
print(json.dumps({"changed": res.changed, "ways": {str(k): v[0] for k, v in iptc_loader._WAYS.items()}}))
"""


def test_forced_raw_ttl_match_builds_the_same_kernel_rule(tmp_path):
    with pair46() as p:
        drop_all(p.host, "iptables-legacy")
        drop_all(p.host, "ip6tables-legacy")
        proc = p.host.run(sys.executable, "-c", FORCED_RAW, p.host_if)
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got == {"changed": True, "ways": {"False": "raw", "True": "raw"}}, proc.stdout + proc.stderr
        i = p.host_if
        assert f"-A INPUT -d 224.0.0.18/32 -i {i} -p vrrp -m ttl --ttl-eq 255 -m comment --comment vrrpfw " \
            "-j ACCEPT" in ours(p.host, "iptables-legacy-save")
        assert f"-A INPUT -d ff02::12/128 -i {i} -p vrrp -m hl --hl-eq 255 -m comment --comment vrrpfw " \
            "-j ACCEPT" in ours(p.host, "ip6tables-legacy-save")
        for fam in ("ipv4", "ipv6"):  # read back through the parser-free reader: recognised
            check = vrrpfw(p.host, "check", "--iface", i, "--family", fam, "--strict", "--no-persist")
            assert check["rc"] == 0, check
        assert inbound(p, "224.0.0.18")["delivered"] == 10 and inbound(p, GROUP6)["delivered"] == 10
        assert inbound(p, "224.0.0.18", ttl=2)["delivered"] == 0


def test_old_rules_are_closed_and_mixed_families_refused_for_one_file(tmp_path):
    persist = str(tmp_path / "rules.v4")
    with pair46() as p:
        i = p.host_if
        old = iptables_save.rule_line(rules_for(make_specs([i])[0])[0])  # an older vrrpfw's line
        p.host.run("iptables-legacy", "-w", *old.split())
        with open(persist, "w") as f:
            f.write(p.host.run("iptables-legacy-save").stdout)
        before = saved(p.host, "ip6tables-legacy-save")
        proc = p.host.vrrpfw("open", "--iface", i, "--family", "both", "--backend", "iptables",
                             "--persist-file", persist)
        assert proc.returncode == 2 and "IPv6 rules need their own file" in proc.stderr, proc.stderr
        assert saved(p.host, "ip6tables-legacy-save") == before  # refused before anything changed
        closed = vrrpfw(p.host, "close", "--iface", i, "--persist-file", persist)
        assert closed["rc"] == 0, closed
        assert ours(p.host, "iptables-legacy-save") == [] and "vrrpfw" not in open(persist).read()
