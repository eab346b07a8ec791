"""Interface names with every character vrrpfw accepts besides letters and
digits ('.', '_', '-') and the longest name Linux allows (15 bytes), taken
through open -> check -> close on every backend and saved format: legacy
iptables with an iptables-save file, iptables-nft with an iptables-save
file, native nftables with an nftables.conf, and firewalld (zone mode).

Real veth interfaces carry those names inside the test's namespaces; real
adverts show each rule matches its own interface.  '.' next to '_' and '-'
also catches a name used as a pattern anywhere: closing ``a.b`` must leave
``a_b`` and ``a-b`` open.  After close, the saved file is byte for byte
what it was before open.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Dict, Iterator, List, Tuple

import pytest
from netns import Netns, adverts, namespace

from vrrpfw.prove import netns as _netns

pytestmark = pytest.mark.integration

LONGEST = "v.1_2-3.4_5-6x7"
NAMES = ["a.b", "a_b", "a-b", LONGEST]
PEER_IFS = {name: f"peer{i}" for i, name in enumerate(NAMES)}
OURS = "vrrpfw"


@pytest.mark.one_end  # reaches no typer, rich, iptc or dbus (tests/one_end_guard.py)
def test_the_names_are_what_the_test_claims():
    assert len(LONGEST.encode()) == 15 and set(".-_") <= set(LONGEST)


@contextlib.contextmanager
def hosts() -> Iterator[Tuple[Netns, Netns]]:
    """A host namespace with one veth per name, each to its own end in a
    peer namespace, on its own /30 of TEST-NET-1."""
    with namespace("vrnh") as host, namespace("vrnp") as peer:
        for i, name in enumerate(NAMES):
            _netns.veth(host.ns, name, peer.ns, PEER_IFS[name])
            _netns.add_addresses(host.ns, name, [f"192.0.2.{4 * i + 1}/30"])
            _netns.add_addresses(peer.ns, PEER_IFS[name], [f"192.0.2.{4 * i + 2}/30"])
        for name in NAMES:
            _netns.link_up(host.ns, name)
            _netns.link_up(peer.ns, PEER_IFS[name])
        for name in NAMES:
            _netns.wait_operstate_up(host.ns, name)
            _netns.wait_operstate_up(peer.ns, PEER_IFS[name])
        yield host, peer


def delivered(host: Netns, peer: Netns, name: str) -> Tuple[int, int]:
    """(inbound, outbound) adverts on ``name``: the host's raw socket, the peer's."""
    inbound = adverts(peer, PEER_IFS[name], host, name, count=10)["delivered"]
    outbound = adverts(host, name, peer, PEER_IFS[name], count=10)["delivered"]
    return inbound, outbound


def iface_args(names: List[str]) -> List[str]:
    return [arg for name in names for arg in ("--iface", name)]


def rules_by_iface(out: dict) -> Dict[str, set]:
    found: Dict[str, set] = {}
    for r in out["rules"]:
        found.setdefault(r["interface"], set()).add((r["runtime"], r["persisted"]))
    return found


# --- the three firewalls with a saved file --------------------------------------------------

def legacy(host: Netns, tmp_path) -> Tuple[str, List[str]]:
    host.ipt("-P", "INPUT", "DROP")
    host.ipt("-P", "OUTPUT", "DROP")
    host.ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    path = tmp_path / "rules.v4"
    path.write_text(host.run("iptables-legacy-save").stdout)
    return str(path), ["--backend", "iptables"]


def iptables_nft(host: Netns, tmp_path) -> Tuple[str, List[str]]:
    host.run("iptables-nft", "-P", "INPUT", "DROP")
    host.run("iptables-nft", "-P", "OUTPUT", "DROP")
    host.run("iptables-nft", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    path = tmp_path / "rules.v4"
    path.write_text(host.run("iptables-nft-save").stdout)
    return str(path), ["--backend", "nftables"]


NFT_CONF = """#!/usr/sbin/nft -f
flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiifname "lo" accept
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t\toifname "lo" accept
\t}
}
"""


def native_nft(host: Netns, tmp_path) -> Tuple[str, List[str]]:
    path = tmp_path / "nftables.conf"
    path.write_text(NFT_CONF)
    host.run("nft", "-f", str(path))
    return str(path), ["--backend", "nftables"]


def runtime_lines(host: Netns, kind: str) -> List[str]:
    if kind == "legacy":
        text = host.run("iptables-legacy-save").stdout
    elif kind == "iptables-nft":
        text = host.run("iptables-nft-save").stdout
    else:
        text = host.run("nft", "list", "ruleset").stdout
    return [line.strip() for line in text.splitlines() if OURS in line]


SETUPS = [
    pytest.param("legacy", legacy, id="legacy-iptables-save"),
    pytest.param("iptables-nft", iptables_nft, id="iptables-nft-iptables-save",
                 marks=pytest.mark.needs("iptables-nft")),
    pytest.param("nft", native_nft, id="nftables-conf"),
]


@pytest.mark.parametrize("kind, setup", SETUPS)
def test_names_open_check_close(kind, setup, tmp_path):
    env = {"XTABLES_LOCKFILE": str(tmp_path / "xtables.lock")}
    with hosts() as (host, peer):
        persist, backend = setup(host, tmp_path)
        with open(persist, "rb") as f:
            before = f.read()
        assert delivered(host, peer, LONGEST) == (0, 0)  # blocked before open

        def vrrpfw(*args: str) -> Tuple[int, dict]:
            return host.vrrpfw_json(*args, *backend, "--persist-file", persist, env=env)

        rc, out = vrrpfw("open", *iface_args(NAMES))
        assert rc == 0 and out["changed"] is True, out
        assert rules_by_iface(out) == {name: {("allowed", "present")} for name in NAMES}, out
        for name in NAMES:
            assert delivered(host, peer, name) == (10, 10), name
        with open(persist) as f:
            saved = f.read()
        for name in NAMES:  # every name exactly as given, at runtime and in the file
            quoted = f'"{name}"' if kind == "nft" else name
            flag = "iifname" if kind == "nft" else "-i"
            assert f"{flag} {quoted} " in saved, saved
            assert any(f"{flag} {quoted} " in line for line in runtime_lines(host, kind)), name

        rc, out = vrrpfw("check", *iface_args(NAMES))
        assert rc == 0 and out["ok"] is True, out
        rc, out = vrrpfw("check")  # the names read back from the firewall and the file
        assert rc == 0 and set(rules_by_iface(out)) == set(NAMES), out

        rc, out = vrrpfw("open", *iface_args(NAMES))  # idempotent, also in the file
        assert rc == 0 and out["changed"] is False, out
        with open(persist) as f:
            assert f.read() == saved

        # Closing a.b leaves a_b and a-b (and the longest) alone.
        rc, out = vrrpfw("close", "--iface", "a.b")
        assert rc == 0 and out["changed"] is True, out
        assert delivered(host, peer, "a.b") == (0, 0)
        rc, out = vrrpfw("check", *iface_args(NAMES[1:]))
        assert rc == 0 and out["ok"] is True, out
        assert delivered(host, peer, "a_b") == (10, 10)
        rc, out = vrrpfw("check", "--iface", "a.b")
        assert rc == 1 and {r["runtime"] for r in out["rules"]} == {"missing"}, out

        rc, out = vrrpfw("close", *iface_args(NAMES))
        assert rc == 0, out
        assert runtime_lines(host, kind) == []
        with open(persist, "rb") as f:
            assert f.read() == before  # byte for byte
        assert delivered(host, peer, LONGEST) == (0, 0)


@pytest.mark.needs("firewalld")
def test_names_open_check_close_firewalld(tmp_path):
    """firewalld (nftables backend, zone mode): interfaces in no zone get the
    default zone's allowance; the permanent configuration after close lists
    what it listed before."""
    from fwharness import firewalld_host

    with firewalld_host(tmp_path, backend="nftables") as fw:
        host, peer = fw.host, fw.pair.peer
        for i, name in enumerate(NAMES):
            _netns.veth(host.ns, name, peer.ns, PEER_IFS[name])
            _netns.add_addresses(host.ns, name, [f"198.51.100.{4 * i + 1}/30"])
            _netns.add_addresses(peer.ns, PEER_IFS[name], [f"198.51.100.{4 * i + 2}/30"])
            _netns.link_up(host.ns, name)
            _netns.link_up(peer.ns, PEER_IFS[name])
        for name in NAMES:
            _netns.wait_operstate_up(host.ns, name)
            _netns.wait_operstate_up(peer.ns, PEER_IFS[name])
        permanent = fw.cmd("--permanent", "--list-all-zones")
        assert adverts(peer, PEER_IFS[LONGEST], host, LONGEST, count=10)["delivered"] == 0

        rc, out = fw.vrrpfw_json("open", *iface_args(NAMES))
        assert rc == 0 and out["changed"] is True, out
        assert set(rules_by_iface(out)) == set(NAMES)
        for name in NAMES:
            assert adverts(peer, PEER_IFS[name], host, name, count=10)["delivered"] == 10, name
        rc, out = fw.vrrpfw_json("check", *iface_args(NAMES))
        assert rc == 0 and out["ok"] is True, out
        with open(fw.state_file) as f:
            state = json.load(f)
        assert set(NAMES) <= set(json.dumps(state).replace('"', " ").split()), state

        rc, out = fw.vrrpfw_json("close", *iface_args(NAMES))
        assert rc == 0, out
        assert fw.cmd("--permanent", "--list-all-zones") == permanent
        assert adverts(peer, PEER_IFS[LONGEST], host, LONGEST, count=10)["delivered"] == 0


def test_the_cli_refuses_what_the_names_test_does_not_cover(tmp_path):
    """The refusal side, through a real process in a namespace: nothing changes."""
    with namespace("vrnr") as ns:
        ns.ipt("-P", "INPUT", "DROP")
        before = ns.legacy_save()
        for bad in ("eth*", "eth+", "-eth0", 'eth0"', "ethé0", "a\\b", "all"):
            proc = ns.run(sys.executable, "-m", "vrrpfw", "open", "--iface", bad, "--persist-file",
                          str(tmp_path / "rules.v4"), check=False)
            assert proc.returncode == 2, (bad, proc.stdout, proc.stderr)
            assert len(proc.stderr.strip().splitlines()) == 1 and "interface name" in proc.stderr
        assert ns.legacy_save() == before
        assert not (tmp_path / "rules.v4").exists()
