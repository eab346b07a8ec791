"""The test layout of tests/README.md, checked, and the module -> tests map.

    python3 tests/layout.py          # check; print a `git mv` for each file out of place
    python3 tests/layout.py --map    # each vrrpfw module and the test files that import it

Rules it checks (exit 1 on any):
  * every test_*.py basename is unique under tests/ (pytest imports them by
    basename: no __init__.py, rootdir-relative "prepend" import mode);
  * no test file sits flat in tests/integration/: each goes in the directory
    of the behaviour it tests (see tests/README.md);
  * a test file in tests/unit/ itself tests a root module (vrrpfw/*.py): one
    that imports mostly from one subpackage goes to tests/unit/<subpackage>/
    (mirroring vrrpfw/, judge/read/ included), unless listed in UNIT_ROOT.
It suggests a directory from the file's imports (unit) or its name
(integration: INTEGRATION_BY_NAME, and judge/ for a kernel-path test
``*_path.py``); a suggestion is a starting point, not a verdict.
"""

from __future__ import annotations

import ast
import collections
import os
import sys
from typing import Dict, List, Set

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
# tests/unit/ files that drive the whole program (API + CLI) through a root module.
UNIT_ROOT = {"test_env_and_locks.py", "test_names.py", "test_security_doc.py"}
# tests/integration/<dir>/ by the start of a flat file's name (first match wins).
INTEGRATION_BY_NAME = [
    ("test_firewalld", "firewalld"), ("test_open_pins_firewalld", "firewalld"), ("test_ufw", "ufw"),
    ("test_open_pins_ufw", "ufw"), ("test_iptables", "iptables"), ("test_nftables", "nftables"),
    ("test_prove", "prove"), ("test_replay", "prove"), ("test_listen", "listen"),
    ("test_keepalived", "keepalived"), ("test_saved", "persist"), ("test_next_boot", "persist"),
    ("test_reboot", "persist"), ("test_deb", "packages"), ("test_rpm", "packages"),
    ("test_ansible", "packages"), ("test_corpus", "judge"), ("test_property", "judge"),
]


def test_files() -> List[str]:
    found = []
    for suite in ("unit", "integration"):
        for root, _dirs, files in os.walk(os.path.join(TESTS, suite)):
            found += [os.path.join(root, f) for f in files if f.startswith("test_") and f.endswith(".py")]
    return sorted(found)


def modules() -> Set[str]:
    out = set()
    for root, _dirs, files in os.walk(os.path.join(REPO, "vrrpfw")):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), REPO)[:-3].replace(os.sep, ".")
                out.add(rel[: -len(".__init__")] if rel.endswith(".__init__") else rel)
    return out


def imports(path: str, known: Set[str]) -> Dict[str, int]:
    """vrrpfw modules the file imports, with the number of names taken from each."""
    counts: Dict[str, int] = collections.Counter()
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vrrpfw":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                counts[full if full in known else node.module] += 1
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vrrpfw":
                    counts[alias.name] += 1
    return counts


def subpackage(module: str, known: Set[str]) -> str:
    """tests/unit/ subdirectory mirroring ``module`` ('' for a root module)."""
    parts = module.split(".")[1:]
    is_package = os.path.isdir(os.path.join(REPO, "vrrpfw", *parts))
    if parts and ".".join(["vrrpfw", *parts]) in known and not is_package:
        parts = parts[:-1]
    return "/".join(parts)


def check() -> int:
    known = modules()
    problems = 0
    seen: Dict[str, str] = {}
    for path in test_files():
        rel = os.path.relpath(path, REPO)
        base = os.path.basename(path)
        if base in seen:
            print(f"{rel}: basename also at {seen[base]} (pytest imports test files by basename)")
            problems += 1
        seen[base] = rel
        where = os.path.relpath(os.path.dirname(path), TESTS)
        if where == "integration":
            target = next((d for prefix, d in INTEGRATION_BY_NAME if base.startswith(prefix)),
                          "judge" if base.endswith("_path.py") else "<behaviour>")
            print(f"git mv {rel} tests/integration/{target}/{base}")
            problems += 1
        elif where == "unit" and base not in UNIT_ROOT:
            counts = imports(path, known)
            dirs: Dict[str, int] = collections.Counter()
            for module, n in counts.items():
                dirs[subpackage(module, known)] += n
            top = dirs.most_common(1)[0][0] if dirs else ""
            if top:
                print(f"git mv {rel} tests/unit/{top}/{base}   # imports mostly vrrpfw/{top}/")
                problems += 1
    return 1 if problems else 0


def print_map() -> None:
    known = modules()
    users: Dict[str, List[str]] = collections.defaultdict(list)
    for path in test_files():
        for module in imports(path, known):
            users[module].append(os.path.relpath(path, TESTS))
    for module in sorted(known):
        print(f"{module}: {' '.join(users.get(module, [])) or '-'}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--map"]:
        print_map()
    else:
        sys.exit(check())
