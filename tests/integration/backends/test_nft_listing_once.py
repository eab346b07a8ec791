"""A run lists nft's chains once: the host scan's ``nft -j list chains`` is
what the path readers start from (backends.base.Backend.scan_heads), until
the run changes the firewall; the verdicts stay the kernel's.  Every ``nft``
vrrpfw runs is counted through a logging ``nft`` first on PATH, in
namespaces with a legacy filter table and, for the second case, an nft table
that drops VRRP."""

from __future__ import annotations

import os
import shutil

import pytest
from netns import namespace

pytestmark = pytest.mark.integration

DROP_VRRP_NFT = """table inet blocker {
  chain input { type filter hook input priority 0; policy accept; ip protocol 112 drop; }
}
"""


@pytest.fixture
def counting_nft(tmp_path):
    """(env putting a logging ``nft`` first on PATH, a reader of its log)."""
    real = shutil.which("nft")
    assert real is not None
    bindir, log = tmp_path / "bin", tmp_path / "nft.log"
    bindir.mkdir()
    wrapper = bindir / "nft"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def calls():
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return lines
    return env, calls


def legacy_host(ns):
    ns.run("ip", "link", "add", "lv0", "type", "veth", "peer", "name", "lv1")
    ns.run("iptables-legacy-restore", stdin="*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n"
           ":OUTPUT ACCEPT [0:0]\n:FOREIGN - [0:0]\n-A INPUT -j FOREIGN\n"
           "-A FOREIGN -p udp --dport 5000 -j ACCEPT\nCOMMIT\n")


def runtimes(out):
    return {r["direction"]: r["runtime"] for r in out["rules"]}


def test_check_on_a_legacy_host_lists_nft_chains_once(counting_nft):
    env, calls = counting_nft
    with namespace("vrnl") as ns:
        legacy_host(ns)
        rc, out = ns.vrrpfw_json("check", "--iface", "lv0", "--no-persist", env=env)
        assert rc == 1 and runtimes(out) == {"in": "missing", "out": "allowed-by-policy"}, out
        assert calls() == ["-j list chains"]
        rc, out = ns.vrrpfw_json("open", "--iface", "lv0", "--no-persist", env=env)
        assert rc == 0 and {r["runtime"] for r in out["rules"]} == {"allowed"}, out
        # the read-back after the change lists the kernel afresh
        assert calls() == ["-j list chains", "-j list chains"]
        rc, out = ns.vrrpfw_json("check", "--iface", "lv0", "--no-persist", env=env)
        assert rc == 0 and {r["runtime"] for r in out["rules"]} == {"allowed"}, out
        assert calls() == ["-j list chains"]


def test_nft_table_on_the_path_is_judged_from_the_scans_listing(counting_nft):
    """The legacy layer's check sees the nft table that drops VRRP (read
    from the scan's chain listing, then listed whole), with one chain listing."""
    env, calls = counting_nft
    with namespace("vrnl") as ns:
        legacy_host(ns)
        ns.run("nft", "-f", "-", stdin=DROP_VRRP_NFT)
        ns.run("iptables-legacy", "-I", "INPUT", "-p", "112", "-i", "lv0", "-j", "ACCEPT")
        rc, out = ns.vrrpfw_json("check", "--iface", "lv0", "--no-persist", "--backend", "iptables",
                                 env=env)
        assert rc == 1 and runtimes(out) == {"in": "missing", "out": "allowed-by-policy"}, out
        assert out["blockers"][0].startswith("nft inet blocker input: dropped by ip protocol vrrp drop"), out
        listed = calls()
        assert listed.count("-j list chains") == 1, listed
        assert "-j list table inet blocker" in listed, listed
