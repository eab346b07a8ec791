#!/usr/bin/env python3
"""Time vrrpfw against iptables-legacy -C (and nft) on an already-open namespace.

Run as root with the interpreter of the environment to measure, e.g.
``.venv-debian/bin/python tests/bench/bench_iptables.py``.  Everything
happens in throw-away network namespaces.  Prints medians and ratios; it
asserts nothing (speed is measured, not tested).

Scenarios: an empty filter table; 50,000 foreign rules in the filter table
outside INPUT/OUTPUT (FORWARD and a user chain), where cost should not
grow; and 5,000 foreign rules in INPUT itself, where it must.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from netns import namespace  # noqa: E402


def vrrpfw_cmd(python: str = "") -> List[str]:
    """The installed entry script beside ``python`` (default: this
    interpreter), else ``python -m vrrpfw``."""
    python = python or sys.executable
    script = os.path.join(os.path.dirname(python), "vrrpfw")
    return [script] if os.path.exists(script) else [python, "-m", "vrrpfw"]


def bytecode_note() -> str:
    """Without up-to-date bytecode every run recompiles vrrpfw (~50 ms here),
    which no installed package does: say so rather than report that cost."""
    import importlib.util

    import vrrpfw
    pkg = os.path.dirname(os.path.abspath(vrrpfw.__file__))
    stale = [name for name in sorted(os.listdir(pkg)) if name.endswith(".py")
             and not os.path.exists(importlib.util.cache_from_source(os.path.join(pkg, name)))]
    if not stale:
        return ""
    return (f"  NOTE: no bytecode for {len(stale)} vrrpfw modules (PYTHONDONTWRITEBYTECODE?): "
            "times include recompiling them; run packaging/setup.sh")


def time_once(argv: List[str], expect: int = 0, env: Optional[Dict[str, str]] = None) -> float:
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env)
    elapsed = time.perf_counter() - t
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[:300]}")
    return elapsed


def median_time(argv: List[str], runs: int, expect: int = 0, env: Optional[Dict[str, str]] = None) -> float:
    return statistics.median(time_once(argv, expect, env) for _ in range(runs))


VRRPFW_RULE = ["INPUT", "-d", "224.0.0.18/32", "-i", "bv0", "-p", "112", "-m", "comment",
               "--comment", "vrrpfw", "-j", "ACCEPT"]


def jumped_chain(n: int) -> str:
    """INPUT (policy DROP) jumps to a user chain of ``n`` foreign rules: the
    host of issue 20's ratio (vrrpfw's rule lands on top of INPUT)."""
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":FOREIGN - [0:0]", "-A INPUT -j FOREIGN"]
    for i in range(n):
        lines.append(f"-A FOREIGN -s 198.19.{(i // 250) % 250}.{i % 250 + 1}/32 -p udp "
                     f"--dport {1024 + i % 60000} -j ACCEPT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def show(name: str, res: Dict[str, float], base_label: str) -> Dict[str, float]:
    print(f"\n{name}")
    base = res[base_label]
    for label, secs in res.items():
        print(f"  {label:<34} {secs * 1000:8.1f} ms   {secs / base:5.1f}x {base_label}")
    return res


def ruleset(other: int, in_input: int) -> str:
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT DROP [0:0]",
             ":FOREIGN - [0:0]"]
    for i in range(in_input):
        # Half tcp rules (skipped by the protocol prefilter), half protocol-less
        # rules that must be decoded: the worst realistic mix.
        proto = f"-p tcp --dport {1024 + i}" if i % 2 else ""
        lines.append(f"-A INPUT -s 198.18.{i // 250}.{i % 250 + 1}/32 {proto} -j ACCEPT")
    for i in range(other):
        chain = "FORWARD" if i % 2 else "FOREIGN"
        lines.append(f"-A {chain} -s 198.19.{(i // 250) % 250}.{i % 250 + 1}/32 -p udp "
                     f"--dport {1024 + i % 60000} -j ACCEPT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def scenario(name: str, rules: str, runs: int) -> Dict[str, float]:
    with namespace("vrbench") as ns:
        ns.run("ip", "link", "add", "bv0", "type", "veth", "peer", "name", "bv1")
        ns.run("iptables-legacy-restore", stdin=rules)
        exec_ns = ["ip", "netns", "exec", ns.name]
        cmd = exec_ns + vrrpfw_cmd()
        subprocess.run(cmd + ["open", "--iface", "bv0", "--no-persist"], check=True, capture_output=True)
        res = {
            "iptables-legacy -C": median_time(exec_ns + ["iptables-legacy", "-C", *VRRPFW_RULE], runs),
            "vrrpfw check": median_time(cmd + ["check", "--iface", "bv0", "--no-persist"], runs),
            "vrrpfw check --backend iptables": median_time(
                cmd + ["check", "--iface", "bv0", "--no-persist", "--backend", "iptables"], runs),
            "vrrpfw open (already open)": median_time(cmd + ["open", "--iface", "bv0", "--no-persist"], runs),
        }
    return show(name, res, "iptables-legacy -C")


def nft_ruleset(other: int) -> str:
    lines = ["table inet filter {",
             "  chain input { type filter hook input priority 0; policy drop; }",
             "  chain output { type filter hook output priority 0; policy drop; }",
             "}", "table inet big {", "  chain sink {"]
    for i in range(other):
        addr = f"198.19.{(i // 250) % 250}.{i % 250 + 1}"
        lines.append(f"    ip saddr {addr} udp dport {1024 + i % 60000} accept")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def nft_scenario(name: str, other: int, runs: int) -> Dict[str, float]:
    with namespace("vrbench") as ns:
        ns.run("ip", "link", "add", "bv0", "type", "veth", "peer", "name", "bv1")
        ns.run("nft", "-f", "-", stdin=nft_ruleset(other))
        exec_ns = ["ip", "netns", "exec", ns.name]
        cmd = exec_ns + vrrpfw_cmd()
        subprocess.run(cmd + ["open", "--iface", "bv0", "--no-persist"], check=True, capture_output=True)
        res = {
            "nft list chain inet filter input": median_time(
                exec_ns + ["nft", "list", "chain", "inet", "filter", "input"], runs),
            "nft list ruleset": median_time(exec_ns + ["nft", "list", "ruleset"], runs),
            "vrrpfw check": median_time(cmd + ["check", "--iface", "bv0", "--no-persist"], runs),
            "vrrpfw check --backend nftables": median_time(
                cmd + ["check", "--iface", "bv0", "--no-persist", "--backend", "nftables"], runs),
            "vrrpfw open (already open)": median_time(cmd + ["open", "--iface", "bv0", "--no-persist"], runs),
        }
    return show(name, res, "nft list chain inet filter input")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--rules", type=int, default=50000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_iptables.py needs root (network namespaces)")
    print(f"python {sys.version.split()[0]}, {' '.join(vrrpfw_cmd())}, median of {args.runs} runs")
    note = bytecode_note()
    if note:
        print(note)
    help_s = median_time(vrrpfw_cmd() + ["--help"], args.runs)
    print(f"  vrrpfw --help                      {help_s * 1000:8.1f} ms   (target <= 150 ms)")
    with tempfile.TemporaryDirectory():
        scenario("empty filter table", ruleset(0, 0), args.runs)
        big = scenario(f"{args.rules} foreign rules outside INPUT/OUTPUT", ruleset(args.rules, 0), args.runs)
        scenario(f"INPUT jumps to a user chain of {args.rules} foreign rules", jumped_chain(args.rules),
                 args.runs)
        scenario("5000 foreign rules in INPUT (half of them tcp)", ruleset(0, 5000), max(3, args.runs // 3))
        nft_scenario("nftables: empty ruleset but the two drop chains", 0, args.runs)
        nft_scenario(f"nftables: {args.rules} rules in another table", args.rules, args.runs)
    ratio = big["vrrpfw check"] / big["iptables-legacy -C"]
    print(f"\nvrrpfw check at {args.rules} rules: {ratio:.1f}x iptables-legacy -C (target <= 4x)")


if __name__ == "__main__":
    main()
