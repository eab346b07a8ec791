#!/usr/bin/env python3
"""Time ``vrrpfw prove`` end to end (CLI start-up included).

Run as root with the interpreter to measure, e.g.
``.venv-debian/bin/python tests/bench/bench_prove.py``.  Each scenario is a
namespace this script builds (a veth ``eth1`` with an address) and loads
with rules; prove runs *inside* it, so it replays that namespace, never
this machine's firewall.  Prints the median of 5 runs; asserts nothing.

Scenarios: an ordinary host (a few dozen legacy rules, INPUT policy DROP,
plus an nft table), and 50,000 legacy rules (half in INPUT, half in a user
chain), where capture and the two replica loads dominate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from netns import namespace  # noqa: E402

NFT_TABLE = """table inet filter {
  chain input { type filter hook input priority 0; policy accept; ip protocol vrrp drop; }
}
"""


def ordinary() -> str:
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
             "-A INPUT -i lo -j ACCEPT", "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    for port in (22, 80, 443, 5432, 6379, 8080, 9100, 9090):
        for src in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
            lines.append(f"-A INPUT -s {src} -p tcp --dport {port} -j ACCEPT")
    lines += ["-A INPUT -p icmp -j ACCEPT", "COMMIT"]
    return "\n".join(lines) + "\n"


def large(n: int) -> str:
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":FOREIGN - [0:0]", "-A INPUT -j FOREIGN"]
    for i in range(n):
        chain = "INPUT" if i % 2 else "FOREIGN"
        lines.append(f"-A {chain} -s 198.18.{(i // 250) % 250}.{i % 250 + 1}/32 -p tcp "
                     f"--dport {1024 + i % 60000} -j ACCEPT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def median_prove(ns_name: str, runs: int, python: str = "", env: Optional[Dict[str, str]] = None) -> float:
    argv = ["ip", "netns", "exec", ns_name, python or sys.executable, "-m", "vrrpfw", "prove", "-i", "eth1"]
    samples: List[float] = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        samples.append(time.perf_counter() - t)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"prove exited {proc.returncode}: {proc.stderr[:300]}")
    return statistics.median(samples)


@contextlib.contextmanager
def prove_host(legacy: str, nft: str) -> Iterator[str]:
    """A namespace with a veth ``eth1`` (10.9.0.1/24) and these rules: its name."""
    with namespace("vbp") as ns:
        ns.run("ip", "link", "add", "name", "eth1", "type", "veth", "peer", "name", "eth1p")
        ns.run("ip", "addr", "add", "10.9.0.1/24", "dev", "eth1")
        ns.run("ip", "link", "set", "eth1", "up")
        ns.run("ip", "link", "set", "eth1p", "up")
        ns.run("iptables-legacy-restore", stdin=legacy)
        if nft:
            ns.run("nft", "-f", "-", stdin=nft)
        yield ns.name


def scenario(label: str, legacy: str, nft: str, runs: int) -> None:
    with prove_host(legacy, nft) as name:
        print(f"  {label:<44} {median_prove(name, runs) * 1000:8.0f} ms  (median of {runs})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rules", type=int, default=50000)
    args = ap.parse_args()
    print(f"vrrpfw prove, {sys.executable} ({sys.version.split()[0]})")
    scenario("ordinary host (~30 legacy rules + nft table)", ordinary(), NFT_TABLE, args.runs)
    scenario(f"{args.rules:,} legacy rules", large(args.rules), "", args.runs)


if __name__ == "__main__":
    main()
