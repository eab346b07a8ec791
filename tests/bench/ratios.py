#!/usr/bin/env python3
"""Issue 20's speed targets, measured side by side in one run on both library ends.

Run as root with any Python: ``python tests/bench/ratios.py``.  For each
environment (default: the checkout's .venv-debian and .venv-newest; ``--venv
DIR``, repeatable, points elsewhere) it runs this checkout's vrrpfw (its entry
script, with PYTHONPATH on the checkout and bytecode compiled) and prints one
table of medians, ratios and targets:

- ``vrrpfw check`` against ``iptables-legacy -C`` of vrrpfw's rule, on a
  legacy namespace whose INPUT (policy DROP) holds vrrpfw's rule on top and
  jumps to a user chain of 50,000 foreign rules; the two are timed
  alternately, so load slows both alike (target <= 3x);
- firewalld ``check`` against one ``firewall-cmd`` query, from
  tests/bench/bench_firewalld.py's last line ``RESULT {json}`` (target <= 0.6x);
- ``vrrpfw --help`` (target <= 0.1 s);
- ``vrrpfw prove`` on 50,000 legacy rules (target <= 1 s).

Everything happens in throw-away network namespaces.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.dirname(HERE), REPO]

import bench_iptables  # noqa: E402
import bench_prove  # noqa: E402
import bench_startup  # noqa: E402
from netns import namespace  # noqa: E402

FIREWALLD_BENCH = os.path.join(HERE, "bench_firewalld.py")


def check_ratios(venvs: Dict[str, Tuple[str, List[str], Dict[str, str]]], rules: int,
                 runs: int) -> Dict[str, Tuple[float, float]]:
    """Per environment: (median of vrrpfw check, median of iptables-legacy -C),
    each check run followed by one -C run."""
    with namespace("vrratio") as ns:
        ns.run("ip", "link", "add", "bv0", "type", "veth", "peer", "name", "bv1")
        ns.run("iptables-legacy-restore", stdin=bench_iptables.jumped_chain(rules))
        exec_ns = ["ip", "netns", "exec", ns.name]
        first = next(iter(venvs.values()))
        subprocess.run(exec_ns + first[1] + ["open", "--iface", "bv0", "--no-persist"], check=True,
                       capture_output=True, env=first[2])
        top = ns.run("iptables-legacy", "-S", "INPUT", "1").stdout
        if "vrrpfw" not in top or "FOREIGN" not in ns.run("iptables-legacy", "-S", "INPUT", "2").stdout:
            raise SystemExit(f"vrrpfw's rule is not on top of INPUT, before the jump:\n{top}")
        ipt_c = exec_ns + ["iptables-legacy", "-C", *bench_iptables.VRRPFW_RULE]
        checks: Dict[str, List[float]] = {name: [] for name in venvs}
        bases: Dict[str, List[float]] = {name: [] for name in venvs}
        for _py, cmd, env in venvs.values():  # warm-up: page cache, bytecode
            bench_iptables.time_once(exec_ns + cmd + ["check", "--iface", "bv0", "--no-persist"], env=env)
        for _ in range(runs):
            for name, (_py, cmd, env) in venvs.items():
                checks[name].append(bench_iptables.time_once(
                    exec_ns + cmd + ["check", "--iface", "bv0", "--no-persist"], env=env))
                bases[name].append(bench_iptables.time_once(ipt_c))
    return {name: (statistics.median(checks[name]), statistics.median(bases[name])) for name in venvs}


def firewalld_ratio(python: str, env: Dict[str, str]) -> dict:
    proc = subprocess.run([python, FIREWALLD_BENCH], capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("RESULT "):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:120]}"}
    result: dict = json.loads(lines[-1][len("RESULT "):])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--venv", action="append", help="environment directory (repeatable; default: "
                    "the checkout's .venv-debian and .venv-newest)")
    ap.add_argument("--runs", type=int, default=15, help="runs of check and --help (default 15)")
    ap.add_argument("--prove-runs", type=int, default=5, help="runs of prove (default 5)")
    ap.add_argument("--rules", type=int, default=50000, help="foreign rules (default 50000)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("ratios.py needs root (network namespaces)")
    dirs = args.venv or bench_startup.default_venvs()
    if not dirs:
        raise SystemExit("no environment: give --venv DIR (none at .venv-debian, .venv-newest)")
    venvs = {os.path.basename(os.path.normpath(d)).replace(".venv-", ""): bench_startup.venv_cli(d)
             for d in dirs}
    print(f"vrrpfw at {REPO}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} CPUs", flush=True)
    for name, (python, cmd, _env) in venvs.items():
        print(f"  {name}: {' '.join(cmd)} ({python})")

    rows: List[Tuple[str, Dict[str, str], str]] = []
    checks = check_ratios(venvs, args.rules, args.runs)
    rows.append((f"check vs iptables-legacy -C, {args.rules:,}-rule jumped chain",
                 {n: f"{c * 1000:.0f}/{b * 1000:.0f} ms = {c / b:.2f}x" for n, (c, b) in checks.items()},
                 "<= 3x"))
    fwd: Dict[str, str] = {}
    for name, (python, _cmd, env) in venvs.items():
        if not os.path.exists(FIREWALLD_BENCH):
            fwd = {"": "not measured (tests/bench/bench_firewalld.py missing)"}
            break
        r = firewalld_ratio(python, env)
        fwd[name] = (f"not measured ({r['error']})" if "error" in r else
                     f"{r['vrrpfw_s'] * 1000:.0f}/{r['firewall_cmd_s'] * 1000:.0f} ms = {r['ratio']:.2f}x")
    rows.append(("firewalld check vs one firewall-cmd query", fwd, "<= 0.6x"))
    rows.append(("vrrpfw --help", {n: f"{bench_startup.help_time(cmd, args.runs, env):.3f} s"
                                   for n, (_p, cmd, env) in venvs.items()}, "<= 0.1 s"))
    proves: Dict[str, str] = {}
    with bench_prove.prove_host(bench_prove.large(args.rules), "") as ns_name:
        for name, (python, _cmd, env) in venvs.items():
            proves[name] = f"{bench_prove.median_prove(ns_name, args.prove_runs, python, env):.2f} s"
    rows.append((f"prove at {args.rules:,} rules", proves, "<= 1 s"))

    width = max(len(r[0]) for r in rows)
    cols = {n: max([len(n)] + [len(r[1][n]) for r in rows if n in r[1]]) for n in venvs}
    print(f"\nmedians ({args.runs} runs; prove {args.prove_runs}), vrrpfw/baseline = ratio")
    print(f"{'':<{width}}  " + "  ".join(f"{n:<{cols[n]}}" for n in venvs) + "  target")
    for label, cells, target in rows:
        if "" in cells:  # one note for every environment
            print(f"{label:<{width}}  {cells['']}  {target}")
            continue
        print(f"{label:<{width}}  " + "  ".join(f"{cells[n]:<{cols[n]}}" for n in venvs) + f"  {target}")


if __name__ == "__main__":
    main()
