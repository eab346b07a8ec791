#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests on Debian's
# library versions and on the newest from PyPI (and unit tests on Python 3.9
# where set up).  Run packaging/setup.sh first.  As root, integration tests
# are required: a skipped test fails the run.
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

echo "== ruff"
.venv-newest/bin/ruff check vrrpfw tests
echo "== mypy"
.venv-newest/bin/mypy

if [ -x .venv-py39/bin/python ]; then
    echo "== unit tests, $(.venv-py39/bin/python --version), newest libraries for it"
    .venv-py39/bin/python -m pytest -q -p no:cacheprovider tests/unit
fi

echo "== all tests, Debian 12 libraries ($(.venv-debian/bin/python --version))"
.venv-debian/bin/python -m pytest -q -rs -p no:cacheprovider tests

echo "== all tests, newest libraries ($(.venv-newest/bin/python --version))"
.venv-newest/bin/python -m pytest -q -rs -p no:cacheprovider tests
