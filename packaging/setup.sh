#!/usr/bin/env bash
# Install everything vrrpfw and its test suite need on Debian 12, as root,
# and make `vrrpfw` runnable.  Idempotent: safe to run again.
#
# Two environments are built, because vrrpfw must work on both ends:
#   .venv-debian  Debian's own python3 and packages (typer 0.7, rich 13.3,
#                 python-iptables 1.0.1, dbus-python 1.3.2): what the .deb runs on.
#                 /usr/local/bin/vrrpfw points here.
#   .venv-newest  the newest Python on the machine with the newest releases from PyPI.
#   .venv-py39    Python 3.9 (the oldest supported), where an interpreter exists.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (apt-get, and the tests need network namespaces)" >&2
    exit 3
fi

export DEBIAN_FRONTEND=noninteractive
APT_PACKAGES=(
    python3 python3-venv python3-pip
    python3-typer python3-rich python3-iptables python3-dbus python3-pytest
    # integration tests run in parallel workers (each makes pid-unique namespaces)
    python3-pytest-xdist
    # the property test (tests/integration/judge/test_property.py) generates rulesets with it
    python3-hypothesis
    iptables nftables iproute2 util-linux
    # close deletes the closed flows' conntrack entries with it (tests/integration/backends/test_close_conntrack.py)
    conntrack
    # vrrpfw reads ipsets (`ipset save`) that `-m set` rules test; the ipset tests make real ones
    ipset
    # the firewalld and keepalived tests run these inside namespaces, on a private bus
    firewalld dbus keepalived tcpdump
    # the ufw backend's tests run Debian's ufw in namespaces, on a private /etc/ufw
    ufw
    # Debian 12 and 13 roots for the .deb install test and the Debian 13 runs
    debootstrap
    # the man page and completion tests (tests/unit/cli/test_gen_docs.py) render and lint
    # the page and run the completions: found missing by running this on a bare root
    groff-base man-db mandoc zsh
    # to build dbus-python from PyPI for the newest-release environment (a bare
    # Debian 13 has no compiler: found by running this script in a minbase root)
    libdbus-1-dev libglib2.0-dev pkg-config gcc python3-dev
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: apt-get install ${missing[*]}"
    apt-get update -qq
    # Installing firewalld or keepalived must not start them on this machine:
    # firewalld would take over the host's own firewall.  policy-rc.d forbids
    # service starts during the install; the units are disabled afterwards.
    policy=/usr/sbin/policy-rc.d
    had_policy=0; [ -e "$policy" ] && had_policy=1
    if [ "$had_policy" -eq 0 ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$had_policy" -eq 0 ]; then rm -f "$policy"; fi
    if command -v systemctl >/dev/null; then
        systemctl disable firewalld keepalived >/dev/null 2>&1 || true
    fi
fi

pip_quiet() { "$@" --disable-pip-version-check -q; }

# vrrpfw itself is installed editable, so the checkout is what runs, as a
# plain path entry (a .pth naming the checkout): setuptools' default editable
# mode instead installs an import finder that a .pth loads at EVERY
# interpreter start, importing pathlib and more (~20 imports, 8-10 ms per
# start; every vrrpfw process, every test's child, CI), which an installed
# wheel or .deb never pays.  Works with Debian 12's pip 23 / setuptools 66
# (no build isolation) and with the newest setuptools.
EDITABLE=(--no-deps --config-settings editable_mode=compat -e .)

# Debian end: system site-packages give Debian's typer/rich/iptc/dbus/pytest.
if [ ! -x .venv-debian/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv-debian
fi
pip_quiet .venv-debian/bin/pip install --no-build-isolation "${EDITABLE[@]}" 2>/dev/null \
    || pip_quiet .venv-debian/bin/pip install "${EDITABLE[@]}"

# Newest end: the newest interpreter we can find, newest libraries from PyPI.
newest=""
for cand in python3.14 python3.13 python3.12 python3.11 python3; do
    for dir in /root/.pyenv/versions/*/bin /usr/local/bin /usr/bin; do
        if [ -x "$dir/$cand" ]; then
            v="$("$dir/$cand" -c 'import sys; print("%d%02d" % sys.version_info[:2])')"
            if [ -z "$newest" ] || [ "$v" -gt "${newest%%:*}" ]; then newest="$v:$dir/$cand"; fi
        fi
    done
done
NEWEST_PY="${newest#*:}"
if [ ! -x .venv-newest/bin/python ]; then
    "$NEWEST_PY" -m venv .venv-newest
fi
pip_quiet .venv-newest/bin/pip install --upgrade pip
# hypothesis is pinned: it generates the property test's examples, and a new
# release draws other examples from the same seed, so CI would change by
# itself (6.170 drew the unicast case that close's conntrack fix answers).
# Fresh exploration runs outside CI (VRRPFW_PROPERTY_RANDOM=1, README).
HYPOTHESIS_PIN="hypothesis==6.170.27"
pip_quiet .venv-newest/bin/pip install --upgrade typer rich python-iptables dbus-python pytest pytest-xdist ruff mypy ansible-core
pip_quiet .venv-newest/bin/pip install "$HYPOTHESIS_PIN"
pip_quiet .venv-newest/bin/pip install "${EDITABLE[@]}"

# Oldest supported Python, where the machine has one (pyenv on this image).
PY39="$(ls /root/.pyenv/versions/3.9*/bin/python3.9 2>/dev/null | head -1 || true)"
if [ -n "$PY39" ]; then
    [ -x .venv-py39/bin/python ] || "$PY39" -m venv .venv-py39
    pip_quiet .venv-py39/bin/pip install --upgrade typer rich python-iptables pytest pytest-xdist
    # The newest hypothesis for Python 3.9 (6.170 needs 3.10), pinned for the same reason:
    # the parsers' and the packet decoder's property tests run here too.
    pip_quiet .venv-py39/bin/pip install "hypothesis==6.141.1"
    pip_quiet .venv-py39/bin/pip install "${EDITABLE[@]}"
fi

# typer/click pairs that pip resolves side by side (tests/unit/cli/test_cli_pairs.py):
# Debian's typer 0.7 beside the newest click (any other tool in the environment may
# pull it in; click 8.3+ turned every typer 0.7 option into a flag), and typer 0.15
# beside click 8.2 (subcommand --help crashed).  Small venvs without system
# site-packages, so that only the pair is there; a few seconds each.
pair_venv() {
    local dir="$1"; shift
    [ -x "$dir/bin/python" ] || /usr/bin/python3 -m venv "$dir"
    pip_quiet "$dir/bin/pip" install --upgrade "$@"
    pip_quiet "$dir/bin/pip" install --no-build-isolation "${EDITABLE[@]}" 2>/dev/null \
        || pip_quiet "$dir/bin/pip" install "${EDITABLE[@]}"
}
pair_venv .venv-typer07-clicknew "typer==0.7.0" click
pair_venv .venv-typer015-click82 "typer==0.15.3" "click==8.2.1"

# The editable install runs vrrpfw from this checkout, where nothing writes
# bytecode if PYTHONDONTWRITEBYTECODE is set (it is in some sandboxes): every
# run would recompile vrrpfw (~50 ms here).  A .deb (py3compile), an RPM and a
# pip install all ship bytecode, so compile it here too, per interpreter.
for venv in .venv-debian .venv-newest .venv-py39 .venv-typer07-clicknew .venv-typer015-click82; do
    if [ -x "$venv/bin/python" ]; then "$venv/bin/python" -m compileall -q vrrpfw >/dev/null; fi
done

ln -sf "$REPO/.venv-debian/bin/vrrpfw" /usr/local/bin/vrrpfw
echo "setup.sh: ready: $(/usr/local/bin/vrrpfw --version) at /usr/local/bin/vrrpfw" \
     "(newest env: $("$REPO/.venv-newest/bin/python" --version))"
