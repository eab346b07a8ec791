#!/usr/bin/env python3
"""Time the CLI's start-up: ``vrrpfw --help``, ``vrrpfw --version`` and
``vrrpfw open --help``, median of N runs each, in every environment given
(default: .venv-debian and .venv-newest, where present), beside the bare
interpreter's start-up; then ``python -X importtime -c "import vrrpfw.cli.entry"``
and its top offenders (cumulative and self time).

Prints numbers; asserts nothing (speed is measured, not tested).  The budget
the issue sets is 0.15 s for ``vrrpfw --help`` on both ends.

    python3 tests/bench/bench_startup.py [--runs 10] [--venv .venv-debian ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from typing import Dict, List, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUDGET = 0.15


def timed(argv: Sequence[str], runs: int, env: Dict[str, str]) -> Tuple[float, float, int]:
    """(median, min, exit code of the last run) over ``runs`` runs, after one warm-up."""
    subprocess.run(argv, capture_output=True, env=env)
    times: List[float] = []
    rc = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        rc = subprocess.run(argv, capture_output=True, env=env).returncode
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), rc


def importtime(python: str, env: Dict[str, str]) -> Tuple[List[Tuple[int, int, str]], int]:
    """Rows (self us, cumulative us, module) of ``import vrrpfw.cli.entry`` and the total."""
    proc = subprocess.run([python, "-X", "importtime", "-c", "import vrrpfw.cli.entry"],
                          capture_output=True, text=True, env=env)
    rows: List[Tuple[int, int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:"):].split("|")
        self_us, cum_us, name = int(parts[0]), int(parts[1]), parts[2]
        rows.append((self_us, cum_us, name.rstrip()))
    total = sum(r[0] for r in rows)
    return rows, total


def libs(python: str, env: Dict[str, str]) -> str:
    code = ("import sys, typer\n"
            "try:\n import click; c = click.__version__\n"
            "except Exception:\n"
            " try:\n  from typer import _click; c = 'vendored ' + getattr(_click, '__version__', '?')\n"
            " except Exception: c = '?'\n"
            "print('Python %d.%d.%d' % sys.version_info[:3], 'typer', typer.__version__, 'click', c)")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    return proc.stdout.strip() or proc.stderr.strip().splitlines()[-1]


def venv_cli(venv: str) -> Tuple[str, List[str], Dict[str, str]]:
    """(python, vrrpfw command, environment) of an environment directory,
    running this checkout's vrrpfw with up-to-date bytecode."""
    python = os.path.join(venv, "bin", "python")
    script = os.path.join(venv, "bin", "vrrpfw")
    cmd = [script] if os.path.exists(script) else [python, "-m", "vrrpfw"]
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = REPO + (os.pathsep + old if old else "")
    # Compile once so that no run pays for bytecode an installed package ships.
    subprocess.run([python, "-m", "compileall", "-q", os.path.join(REPO, "vrrpfw")], capture_output=True)
    return python, cmd, env


def default_venvs() -> List[str]:
    return [os.path.join(REPO, v) for v in (".venv-debian", ".venv-newest")
            if os.path.exists(os.path.join(REPO, v, "bin", "python"))]


def help_time(cmd: Sequence[str], runs: int, env: Dict[str, str]) -> float:
    """Median wall time of ``vrrpfw --help``."""
    med, _, rc = timed([*cmd, "--help"], runs, env)
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} --help exited {rc}")
    return med


def bench(venv: str, runs: int, top: int) -> None:
    python, cmd, env = venv_cli(venv)
    print(f"== {venv}: {libs(python, env)}")
    base, _, _ = timed([python, "-c", "pass"], runs, env)
    site, _, _ = timed([python, "-c", "import vrrpfw.cli.entry"], runs, env)
    print(f"  {'python -c pass':<28} median {base * 1000:6.1f} ms")
    print(f"  {'python -c import vrrpfw.cli.entry':<28} median {site * 1000:6.1f} ms")
    for args in (["--help"], ["--version"], ["open", "--help"], ["check", "--help"]):
        med, lo, rc = timed(cmd + args, runs, env)
        mark = "" if args != ["--help"] else ("  within 0.15 s" if med < BUDGET else "  OVER 0.15 s")
        print(f"  {'vrrpfw ' + ' '.join(args):<28} median {med * 1000:6.1f} ms  min {lo * 1000:6.1f} ms"
              f"  exit {rc}{mark}")
    rows, total = importtime(python, env)
    print(f"  import vrrpfw.cli.entry: {total / 1000:.1f} ms of imports (self times summed),"
          " top cumulative:")
    for self_us, cum_us, name in sorted(rows, key=lambda r: -r[1])[:top]:
        print(f"    {cum_us / 1000:7.1f} ms cum  {self_us / 1000:6.1f} ms self  {name}")
    print("  top self:")
    for self_us, _cum, name in sorted(rows, key=lambda r: -r[0])[:top]:
        print(f"    {self_us / 1000:7.1f} ms self  {name.strip()}")
    probe = ("import sys, vrrpfw.cli.entry\n"
             "print(' '.join(m for m in ('vrrpfw.api', 'vrrpfw.backends.base', 'rich', 'dbus', 'iptc',"
             " 'pydantic') if sys.modules.get(m) is not None))")
    heavy = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env).stdout.split()
    print(f"  heavy modules imported by import vrrpfw.cli.entry: {', '.join(heavy) if heavy else 'none'}")

def main() -> None:
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--venv", action="append", help="environment directory (repeatable)")
    args = ap.parse_args()
    venvs = args.venv or default_venvs()
    for venv in venvs:
        bench(venv, args.runs, args.top)


if __name__ == "__main__":
    main()
