#!/usr/bin/env bash
# Mutation testing against tests/unit, without root, of the core pure modules,
# one module at a time or in groups:
#   judge  the path model and evaluator (vrrpfw/judge/): chaineval, rules,
#          packet_values, matches, netpath, path_model, notrack, nft,
#          iptables, read_model (judge/read/model.py); the corpus test
#          alone only kills mutants that turn a verdict definitely wrong; this
#          score shows what the unit tests pin besides.
#   saved  the saved formats: iptables_save, nft_conf, ufw_rules
#          (vrrpfw/persist/).
#   core   results, model (vrrpfw/), keepalived_conf (vrrpfw/keepalived/conf.py),
#          keepalived_reader (vrrpfw/keepalived/reader.py), vrrp_packet
#          (vrrpfw/listen/packet.py).
#   all    the three groups (the default).
# Usage: tests/mutation.sh [all|judge|saved|core|MODULE] where MODULE is one of
# the short names above (e.g. `tests/mutation.sh chaineval`), or set MODULES
# to dotted module names (MODULES="vrrpfw.model vrrpfw.results").  MAX_CHILDREN
# caps mutmut's parallel test runs (default: mutmut's, the number of CPUs).
# Configuration: [tool.mutmut] in pyproject.toml (only_mutate lists every
# module; a group run passes mutmut the group's mutant names; also_copy lists
# what tests/unit reads besides vrrpfw/).  mutmut lives in its own venv
# (.venv-mutmut, made here when missing) so it never reaches the project's
# requirements.  Prints killed/total and the percentage per module and in all,
# and the survivors; exits 1 when any module is below MIN_SCORE percent
# (default 90).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv-mutmut"
MIN_SCORE="${MIN_SCORE:-90}"
GROUP="${1:-${MUTATE:-all}}"
JUDGE="vrrpfw.judge.chaineval vrrpfw.judge.rules vrrpfw.judge.packet_values vrrpfw.judge.matches
vrrpfw.judge.netpath vrrpfw.judge.path_model vrrpfw.judge.notrack vrrpfw.judge.nft vrrpfw.judge.iptables
vrrpfw.judge.read.model"
SAVED="vrrpfw.persist.iptables_save vrrpfw.persist.nft_conf vrrpfw.persist.ufw_rules"
CORE="vrrpfw.results vrrpfw.model vrrpfw.keepalived.conf vrrpfw.keepalived.reader vrrpfw.listen.packet"
if [ -z "${MODULES:-}" ]; then
    case "$GROUP" in
        all) MODULES="$JUDGE $SAVED $CORE" ;;
        judge) MODULES="$JUDGE" ;;
        saved) MODULES="$SAVED" ;;
        core) MODULES="$CORE" ;;
        chaineval|rules|packet_values|matches|netpath|path_model|notrack|nft|iptables) MODULES="vrrpfw.judge.$GROUP" ;;
        read_model) MODULES="vrrpfw.judge.read.model" ;;
        iptables_save|nft_conf|ufw_rules) MODULES="vrrpfw.persist.$GROUP" ;;
        results|model) MODULES="vrrpfw.$GROUP" ;;
        keepalived_conf) MODULES="vrrpfw.keepalived.conf" ;;
        keepalived_reader) MODULES="vrrpfw.keepalived.reader" ;;
        vrrp_packet) MODULES="vrrpfw.listen.packet" ;;
        *)
            echo "usage: $0 [all|judge|saved|core|chaineval|rules|packet_values|matches|netpath|path_model|notrack|nft|iptables|read_model|iptables_save|nft_conf|ufw_rules|results|model|keepalived_conf|keepalived_reader|vrrp_packet]" >&2
            exit 2 ;;
    esac
fi
PATTERNS=()
for m in $MODULES; do
    PATTERNS+=("$m.*")
done

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
mkdir mutants mutants/locks
# mutmut runs pytest several times in one process, and tests/conftest.py
# removes the directories it made for these at the end of the first run:
# give them ones that stay (the corpus verdicts are not summed up here).
export VRRPFW_CORPUS_STATS=/dev/null VRRPFW_LOCK_DIR="$REPO/mutants/locks"
start=$(date +%s)
CHILDREN=()
if [ -n "${MAX_CHILDREN:-}" ]; then
    CHILDREN=(--max-children "$MAX_CHILDREN")
fi
if ! "$VENV/bin/mutmut" run ${CHILDREN[@]+"${CHILDREN[@]}"} ${PATTERNS[@]+"${PATTERNS[@]}"} > mutants/run.log 2>&1; then
    tr '\r' '\n' < mutants/run.log | tail -n 40
    echo "mutation.sh: mutmut run failed (log: mutants/run.log)" >&2
    exit 2
fi
elapsed=$(( $(date +%s) - start ))

"$VENV/bin/mutmut" results --all true > mutants/results.txt
# shellcheck disable=SC2086
"$VENV/bin/python" - "$MIN_SCORE" "$elapsed" $MODULES <<'EOF'
import collections
import sys

min_score, elapsed, modules = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
status = {}
with open("mutants/results.txt") as f:
    for line in f:
        name, sep, state = line.strip().rpartition(": ")
        # A group run lists the other group's mutants too, never run.
        if sep and (not modules or name.rpartition(".")[0] in modules):
            status[name] = state
by_module = collections.defaultdict(collections.Counter)
for name, state in status.items():
    by_module[name.rpartition(".")[0]][state] += 1


def score(counts):
    # A mutant that makes the tests hang (an endless loop) is detected too.
    killed = counts["killed"] + counts["timeout"]
    total = sum(counts.values())
    return killed, total, (100.0 * killed / total if total else 0.0)


counts = collections.Counter(status.values())
print(f"mutation: {dict(sorted(counts.items()))}")
for name, state in sorted(status.items()):
    if state not in ("killed", "timeout"):
        print(f"  {state}: {name}")
low = []
for module in sorted(by_module):
    killed, total, pct = score(by_module[module])
    print(f"  {module}: {killed}/{total} killed ({pct:.1f} %)")
    if pct < min_score:
        low.append(module)
for module in modules:
    if module not in by_module:
        print(f"  {module}: no mutants (is it in only_mutate?)")
        low.append(module)
killed, total, pct = score(counts)
print(f"mutation score: {killed}/{total} killed ({pct:.1f} %), minimum {min_score:g} % per module"
      f"{' (below: ' + ', '.join(low) + ')' if low else ''}, "
      f"{elapsed // 60} min {elapsed % 60} s; show one with: {sys.prefix}/bin/mutmut show NAME")
sys.exit(0 if total and not low else 1)
EOF
