"""A run lists nft's chains once: the host scan's ``nft -j list chains`` is
what the path readers start from (backends.base.Backend.scan_heads), until
the run is about to change the firewall (open and close judge what they
change from a listing taken under their locks); the verdicts stay the kernel's.  Every ``nft``
vrrpfw runs is counted through a logging ``nft`` first on PATH, in
namespaces with a legacy filter table and, for the second case, an nft table
that drops VRRP."""

from __future__ import annotations

import json
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


LEGACY = ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:FOREIGN - [0:0]\n"
          "-A INPUT -j FOREIGN\n-A FOREIGN -p udp --dport 5000 -j ACCEPT\nCOMMIT\n")


def legacy_host(ns):
    ns.run("ip", "link", "add", "lv0", "type", "veth", "peer", "name", "lv1")
    ns.run("iptables-legacy-restore", stdin=LEGACY)


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
        # the scan's, the one open judges under its locks, the read-back after the change
        assert calls() == ["-j list chains", "-j list chains", "-j list chains"]
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


def test_open_waiting_for_the_store_lock_judges_the_chains_it_finds_then(counting_nft, tmp_path):
    """``open`` scans the host, then waits for the saved file's lock (another
    vrrpfw run holds it); a chain another tool adds meanwhile is on the path
    it judges: its "ok" is the kernel's once it holds the lock, never the
    scan's (the table that drops VRRP was missed: open said ok, exit 0, and
    the next check said NOT OK)."""
    import fcntl
    import subprocess
    import sys
    import time

    from lockdirs import private_lock_dir

    env, calls = counting_nft
    env["VRRPFW_LOCK_DIR"] = private_lock_dir(tmp_path)
    saved = str(tmp_path / "rules.v4")
    (tmp_path / "rules.v4").write_text(LEGACY)  # the host's saved ruleset
    args = ("open", "--iface", "lv0", "--backend", "iptables", "--persist-file", saved)
    with namespace("vrnl") as ns:
        legacy_host(ns)
        rc, out = ns.vrrpfw_json(*args, env=env)
        assert rc == 0, out
        lock = subprocess.run([sys.executable, "-c", f"from vrrpfw.persist.lock import lock_file;"
                               f"print(lock_file({saved!r}))"], env={**os.environ, **env},
                              capture_output=True, text=True, check=True).stdout.strip()
        calls()
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another run holds the saved file
            proc = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-m", "vrrpfw", *args,
                                     "--json"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 60
            log = tmp_path / "nft.log"
            while not (log.exists() and "-j list chains" in log.read_text()):  # it has scanned
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.02)
            ns.run("nft", "-f", "-", stdin=DROP_VRRP_NFT)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        stdout, stderr = proc.communicate(timeout=120)
        out = json.loads(stdout)
        assert proc.returncode == 1 and runtimes(out) == {"in": "missing", "out": "allowed"}, (out, stderr)
        assert out["blockers"][0].startswith("nft inet blocker input: dropped by ip protocol vrrp drop"), out
        rc, out = ns.vrrpfw_json("check", "--iface", "lv0", "--backend", "iptables", "--persist-file", saved,
                                 env=env)
        assert rc == 1 and runtimes(out) == {"in": "missing", "out": "allowed"}, out
