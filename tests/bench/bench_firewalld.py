#!/usr/bin/env python3
"""Time ``vrrpfw check`` on firewalld against one ``firewall-cmd`` query.

Run as root with the interpreter of the environment to measure, e.g.
``.venv-debian/bin/python tests/bench/bench_firewalld.py``.  A firewalld
(nftables backend by default, ``--backend iptables`` for the other) runs in
a throw-away network namespace on a private D-Bus system bus with temporary
configuration directories (tests/fwharness.py): the host's firewalld,
/etc/firewalld, system bus and root namespace are never touched.  The
namespace's interface is bound to a zone (runtime and permanent), and
``vrrpfw open --iface X`` adds vrrpfw's allowance; then, alternately, N runs
of ``vrrpfw check --iface X`` and of ``firewall-cmd --zone Z
--query-rich-rule=RULE`` for the rich rule vrrpfw added (the system's
firewall-cmd, on the private bus), and the medians.

Both commands run in the namespace, entered with setns(2) between fork and
exec (``--ip-netns-exec``: through ``ip netns exec``, which adds its own
cost to both sides).  vrrpfw runs from the environment's entry script (or
``python -m vrrpfw``) with its bytecode compiled first, as installed.

``--profile`` adds where the time goes: the cProfile of one check (top
functions by cumulative time, and how many firewalld D-Bus calls it made),
the processes it spawns (strace -f -e trace=execve), and ``-X importtime``.

Prints a table; the LAST stdout line is
``RESULT {"vrrpfw_s": ..., "firewall_cmd_s": ..., "ratio": ...}`` (parsed
by tests/bench/ratios.py).  Asserts nothing but that both commands answer
as expected (speed is measured, not tested).
"""

from __future__ import annotations

import argparse
import compileall
import ctypes
import ctypes.util
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fwharness import FirewalldHost, firewalld_host  # noqa: E402

CLONE_NEWNET = 0x40000000
ZONE = "work"  # not the default zone: the interface is bound to it explicitly


def vrrpfw_cmd() -> List[str]:
    script = os.path.join(os.path.dirname(sys.executable), "vrrpfw")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "vrrpfw"]


def compile_vrrpfw() -> str:
    """Bytecode for the vrrpfw this interpreter imports (PYTHONPATH
    honoured), as an installed package has it; returns its directory."""
    import vrrpfw
    pkg = os.path.dirname(os.path.abspath(vrrpfw.__file__))
    compileall.compile_dir(pkg, quiet=1)
    return pkg


def setns_into(name: str) -> Callable[[], None]:
    """A preexec_fn that moves the child into network namespace ``name``."""
    path = os.path.join("/run/netns", name)
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def enter() -> None:
        fd = os.open(path, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            os._exit(126)
        os.close(fd)
    return enter


class Runner:
    def __init__(self, fw: FirewalldHost, via_ip: bool) -> None:
        self.ns = fw.host.name
        self.env = dict(os.environ, **(fw.host.env or {}))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.via_ip = via_ip
        self.enter = setns_into(self.ns)

    def argv(self, argv: Sequence[str]) -> List[str]:
        return (["ip", "netns", "exec", self.ns] if self.via_ip else []) + list(argv)

    def run(self, argv: Sequence[str], expect: Optional[int] = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.argv(argv), capture_output=True, text=True, env=self.env,
                              preexec_fn=None if self.via_ip else self.enter)
        if expect is not None and proc.returncode != expect:
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode} (expected {expect}):\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return proc

    def timed(self, argv: Sequence[str]) -> Tuple[float, float]:
        """(wall seconds, CPU seconds of the command and its children)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        self.run(argv)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def setup(fw: FirewalldHost, r: Runner) -> str:
    """Bind the interface to ZONE (runtime and permanent), open; the rich rule vrrpfw added."""
    iface = fw.pair.host_if
    for layer in ([], ["--permanent"]):
        r.run(["firewall-cmd", *layer, f"--zone={ZONE}", f"--change-interface={iface}"])
    opened = r.run(vrrpfw_cmd() + ["open", "--iface", iface, "--state-file", fw.state_file, "--json"])
    if json.loads(opened.stdout).get("changed") is not True:
        raise SystemExit(f"vrrpfw open changed nothing: {opened.stdout}")
    if fw.backend != "nftables":
        return ""
    listed = r.run(["firewall-cmd", f"--zone={ZONE}", "--list-rich-rules"]).stdout
    rich = [line for line in listed.splitlines() if line.strip()]
    if len(rich) != 1:
        raise SystemExit(f"expected one rich rule in zone {ZONE} after open, found {rich}")
    return rich[0]


def check_argv(fw: FirewalldHost) -> List[str]:
    return vrrpfw_cmd() + ["check", "--iface", fw.pair.host_if, "--state-file", fw.state_file]


def query_argv(fw: FirewalldHost, rich: str) -> List[str]:
    if rich:
        return ["firewall-cmd", f"--zone={ZONE}", f"--query-rich-rule={rich}"]
    # iptables backend: vrrpfw adds direct rules; query the inbound one.
    iface = fw.pair.host_if
    return ["firewall-cmd", "--direct", "--query-rule", "ipv4", "filter", "INPUT", "0", "-i", iface,
            "-d", "224.0.0.18", "-p", "112", "-m", "comment", "--comment", "vrrpfw", "-j", "ACCEPT"]


def measure(r: Runner, sides: Dict[str, List[str]], runs: int) -> Dict[str, Tuple[float, float]]:
    """Medians (wall, CPU), the sides run alternately (load changes slow
    both alike); one warm-up each.  The CPU time (user + system, the
    command's own process tree; firewalld's answering is not in it) says
    what the command costs where the wall clock says how loaded the
    machine was."""
    samples: Dict[str, List[Tuple[float, float]]] = {k: [] for k in sides}
    for argv in sides.values():
        r.run(argv)
    for _ in range(runs):
        for label, argv in sides.items():
            samples[label].append(r.timed(argv))
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in samples.items()}


def profile(fw: FirewalldHost, r: Runner, top: int) -> None:
    """cProfile of one check, D-Bus calls counted, processes spawned, import time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "check.prof")
        args = check_argv(fw)[len(vrrpfw_cmd()):]
        argv = [sys.executable, "-m", "cProfile", "-o", out, "-m", "vrrpfw"] + args
        r.run(argv)
        import pstats
        st = pstats.Stats(out)
        print(f"\ncProfile of one check (top {top} by cumulative time)")
        st.sort_stats("cumulative").print_stats(top)
        calls = {f"{os.path.basename(k[0])}:{k[2]}": v[1] for k, v in st.stats.items()  # type: ignore[attr-defined]
                 if k[2] in ("call", "_nft_json", "run_nft", "nft_json") or "firewalld/bus" in k[0]}
        print("  calls:", ", ".join(f"{k} x{n}" for k, n in sorted(calls.items()) if n))
        if shutil.which("strace"):
            trace = os.path.join(tmp, "strace.txt")
            r.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", trace] + check_argv(fw))
            with open(trace) as f:
                execs = [m.group(1) for m in re.finditer(r'execve\("([^"]+)"', f.read())]
            print(f"\nprocesses spawned by one check: {len(execs) - 1}: {', '.join(execs[1:]) or '-'}")
        imp = r.run([sys.executable, "-X", "importtime", "-m", "vrrpfw"] + check_argv(fw)[len(vrrpfw_cmd()):])
        rows = []
        for line in imp.stderr.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                s, c, name = line[len("import time:"):].split("|")
                rows.append((int(c), int(s), name.rstrip()))
        total = sum(s for _, s, _ in rows)
        print(f"\nimports of one check: {len(rows)} modules, {total / 1000:.1f} ms self in total; "
              "top level by cumulative time:")
        for c, _, name in sorted((x for x in rows if not x[2].startswith("  ")), reverse=True)[:top]:
            print(f"  {c / 1000:7.1f} ms  {name.strip()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--backend", choices=["nftables", "iptables"], default="nftables",
                    help="firewalld's FirewallBackend (default nftables)")
    ap.add_argument("--ip-netns-exec", action="store_true",
                    help="run both commands through `ip netns exec` rather than setns(2)")
    ap.add_argument("--profile", action="store_true",
                    help="also profile one check (cProfile, strace, importtime)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_firewalld.py needs root (network namespaces, firewalld)")
    pkg = compile_vrrpfw()
    print(f"python {sys.version.split()[0]}, {' '.join(vrrpfw_cmd())} (vrrpfw from {pkg}), "
          f"firewalld {args.backend} backend, median of {args.runs} alternating runs, load "
          f"{os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="vrrpfw-bench-fwd-") as root:
        with firewalld_host(root, args.backend) as fw:
            r = Runner(fw, args.ip_netns_exec)
            rich = setup(fw, r)
            check = r.run(check_argv(fw) + ["--json"])
            verdicts = [(x["direction"], x["runtime"]) for x in json.loads(check.stdout)["rules"]]
            query = query_argv(fw, rich)
            print(f"  check verdicts: {verdicts}")
            print(f"  query: {' '.join(query)}")
            res = measure(r, {"vrrpfw check": check_argv(fw), "firewall-cmd query": query}, args.runs)
            base, base_cpu = res["firewall-cmd query"]
            for label, (secs, cpu) in res.items():
                print(f"  {label:<22} {secs * 1000:8.1f} ms   {secs / base:5.2f}x firewall-cmd query   "
                      f"(CPU {cpu * 1000:6.1f} ms, {cpu / base_cpu:5.2f}x)")
            if args.profile:
                profile(fw, r, args.top)
    v, f = res["vrrpfw check"][0], res["firewall-cmd query"][0]
    print("RESULT " + json.dumps({"vrrpfw_s": round(v, 4), "firewall_cmd_s": round(f, 4),
                                  "ratio": round(v / f, 3)}))


if __name__ == "__main__":
    main()
