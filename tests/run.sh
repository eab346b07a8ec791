#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests on Debian's
# library versions and on the newest from PyPI (and unit tests on Python 3.9
# where set up), then the Debian 13 end in a debootstrapped root
# (tests/debian13.sh).  Run packaging/setup.sh first.  As root, integration
# tests are required: a skipped test fails the run.
#
# Tests run in VRRPFW_WORKERS parallel workers (pytest-xdist; default 4 on
# this 2-core machine: most of an integration test is waiting for packets
# and daemons).  Every namespace name carries its worker's pid, so workers
# never meet; a module whose fixture builds packages is kept on one worker
# (xdist_group, --dist loadgroup).  The keepalived pairs run alone
# afterwards: they measure failover seconds against a limit, which other
# workers' load would skew.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

if [ "$(id -u)" -eq 0 ]; then
    export VRRPFW_REQUIRE_INTEGRATION="${VRRPFW_REQUIRE_INTEGRATION:-1}"
fi
for venv in .venv-debian .venv-newest; do
    if [ ! -x "$venv/bin/python" ]; then
        echo "tests/run.sh: $venv is missing; run packaging/setup.sh first" >&2
        exit 3
    fi
done

START=$SECONDS
# Each stage's header says when it started (minutes into the run): the
# closing note of a session gives CI's stage times from these.
stage() { echo "== [$(( (SECONDS - START) / 60 )) min $(( (SECONDS - START) % 60 )) s] $*"; }

stage "ruff"
.venv-newest/bin/ruff check vrrpfw tests
stage "mypy"
.venv-newest/bin/mypy

WORKERS="${VRRPFW_WORKERS:-4}"
PAIRS=tests/integration/keepalived/test_keepalived_pairs.py

if [ -x .venv-py39/bin/python ]; then
    stage "unit tests, $(.venv-py39/bin/python --version), newest libraries for it"
    .venv-py39/bin/python -m pytest -q -p no:cacheprovider -n "$WORKERS" tests/unit
fi

suite() {
    local venv="$1" label="$2"; shift 2
    stage "all tests, $label ($("$venv/bin/python" --version)), $WORKERS workers $*"
    "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider -n "$WORKERS" --dist loadgroup --ignore="$PAIRS" \
        --durations=12 "$@" tests
}
suite .venv-debian "Debian 12 libraries"
# The keepalived pairs measure failover between two real keepalived with
# vrrpfw's rules; what vrrpfw writes is the same on both ends (the backend
# tests check both), so they run once, alone, with Debian's libraries.
stage "keepalived pairs, Debian 12 libraries, one at a time (failover seconds are measured)"
.venv-debian/bin/python -m pytest -q -rs -p no:cacheprovider "$PAIRS"
# The packages (.deb in Debian roots, RPM, wheel) and the Ansible module run
# with their own pythons whatever venv runs pytest: once is enough (marker
# "once"); the published corpus tests no library (marker "one_end").
suite .venv-newest "newest libraries" -m "not once and not one_end"

if [ "$(id -u)" -eq 0 ]; then
    stage "Debian 13 root: unit tests and the legacy/nft/iptables-nft integration tests"
    VRRPFW_WORKERS="$WORKERS" bash tests/debian13.sh
fi
stage "done"
