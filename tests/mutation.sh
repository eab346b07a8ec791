#!/usr/bin/env bash
# Mutation testing of the pure path model and evaluator (vrrpfw/chaineval.py,
# netpath.py, nftconv.py, iptrule.py) against tests/unit, without root.
# The corpus test alone only kills mutants that turn a verdict definitely
# wrong; this score shows what the unit tests pin besides.  Configuration:
# [tool.mutmut] in pyproject.toml.  mutmut lives in its own venv
# (.venv-mutmut, made here when missing) so it never reaches the project's
# requirements.  Prints killed/total, the percentage and the survivors;
# exits 1 below MIN_SCORE percent (default 90).  About 8 to 12 minutes on 2 cores.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv-mutmut"
MIN_SCORE="${MIN_SCORE:-90}"

if [ ! -x "$VENV/bin/mutmut" ]; then
    python3 -m venv "$VENV"
    # vrrpfw itself is not installed: mutmut puts its mutated copy first on
    # sys.path, and an installed copy could shadow it.  Its dependencies are.
    deps="$("$VENV/bin/python" -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet mutmut pytest $deps
fi

# A fresh run every time: mutmut keeps results in mutants/, and a stale
# result would hide what a new test kills (or no longer kills).
rm -rf mutants
mkdir mutants
start=$(date +%s)
if ! "$VENV/bin/mutmut" run > mutants/run.log 2>&1; then
    tr '\r' '\n' < mutants/run.log | tail -n 40
    echo "mutation.sh: mutmut run failed (log: mutants/run.log)" >&2
    exit 2
fi
elapsed=$(( $(date +%s) - start ))

"$VENV/bin/mutmut" results --all true > mutants/results.txt
"$VENV/bin/python" - "$MIN_SCORE" "$elapsed" <<'EOF'
import collections
import sys

min_score, elapsed = float(sys.argv[1]), int(sys.argv[2])
status = {}
with open("mutants/results.txt") as f:
    for line in f:
        name, sep, state = line.strip().rpartition(": ")
        if sep:
            status[name] = state
counts = collections.Counter(status.values())
# A mutant that makes the tests hang (an endless loop) is detected too.
killed = counts["killed"] + counts["timeout"]
total = len(status)
score = 100.0 * killed / total if total else 0.0
print(f"mutation: {dict(sorted(counts.items()))}")
for name, state in sorted(status.items()):
    if state not in ("killed", "timeout"):
        print(f"  {state}: {name}")
print(f"mutation score: {killed}/{total} killed ({score:.1f} %), minimum {min_score:g} %, "
      f"{elapsed // 60} min {elapsed % 60} s; show one with: {sys.prefix}/bin/mutmut show NAME")
sys.exit(0 if total and score >= min_score else 1)
EOF
