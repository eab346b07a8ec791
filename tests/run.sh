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
# workers' load would skew.  Tests marked one_end run with Debian's
# libraries only, under a guard (below).
#
# At the end, whether the run passed or a stage failed, a table gives each
# stage's minutes and seconds and the total (tests/stages.sh; under .ci/run
# it lists the setup and the builds too).
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

# shellcheck source=tests/stages.sh
source tests/stages.sh
# At the end, even when a stage fails: every stage's minutes and the total.
trap stage_finish EXIT

WORKERS="${VRRPFW_WORKERS:-4}"
PAIRS=tests/integration/keepalived/test_keepalived_pairs.py

stage "ruff" .venv-newest/bin/ruff check vrrpfw tests
stage "mypy" .venv-newest/bin/mypy
stage "tests mirror the package (tests/layout.py)" .venv-newest/bin/python tests/layout.py

if [ -x .venv-py39/bin/python ]; then
    stage "unit tests, $(.venv-py39/bin/python --version), newest libraries for it" \
        .venv-py39/bin/python -m pytest -q -p no:cacheprovider -n "$WORKERS" tests/unit
fi

pass() {
    local venv="$1"; shift
    "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider -n "$WORKERS" --dist loadgroup --ignore="$PAIRS" \
        --durations=12 "$@" tests
}
# Library ends.  A test that never reaches typer (nor click), rich,
# python-iptables or dbus-python, in its process or in a child it starts,
# is marked one_end in its file: it runs once, with Debian's libraries,
# in a pass of its own under tests/one_end_guard.py, which fails it if it
# reaches any of them.  Every other test runs on both ends.  The packages
# (.deb in Debian roots, RPM, wheel) and the Ansible module run with their
# own pythons whatever venv runs pytest: once is enough (marker "once").
DEB="Debian 12 libraries ($(.venv-debian/bin/python --version)), $WORKERS workers"
guarded() { VRRPFW_ONE_END_GUARD=1 "$@"; }
stage "one_end tests, $DEB, under the one_end guard" guarded pass .venv-debian -m one_end
stage "all other tests, $DEB" pass .venv-debian -m "not one_end"
# The keepalived pairs measure failover between two real keepalived with
# vrrpfw's rules; what vrrpfw writes is the same on both ends (the backend
# tests check both), so they run once, alone, with Debian's libraries.
stage "keepalived pairs, Debian 12 libraries, one at a time (failover seconds are measured)" \
    .venv-debian/bin/python -m pytest -q -rs -p no:cacheprovider --durations=12 "$PAIRS"
stage "tests not marked once or one_end, newest libraries ($(.venv-newest/bin/python --version)), $WORKERS workers" \
    pass .venv-newest -m "not once and not one_end"

if [ "$(id -u)" -eq 0 ]; then
    stage "Debian 13 root: unit tests and the legacy/nft/iptables-nft integration tests" \
        env VRRPFW_WORKERS="$WORKERS" bash tests/debian13.sh
fi
