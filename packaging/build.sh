#!/usr/bin/env bash
# Build vrrpfw's artefacts into dist/:
#
#   bash packaging/build.sh deb|rpm|wheel|ansible|all
#
#   wheel    dist/vrrpfw-VERSION-py3-none-any.whl and dist/vrrpfw-VERSION.tar.gz
#            (python -m build, PyPI's newest setuptools in build's isolation)
#   deb      dist/vrrpfw_VERSION_all.deb, the Debian way (dpkg-buildpackage,
#            dh-python's pybuild with Debian's own setuptools)
#   rpm      dist/vrrpfw-VERSION-1.noarch.rpm (rpmbuild -bb from the sdist,
#            packaging/rpm/vrrpfw.spec; for RHEL 9's python3.9, or the
#            Python VRRPFW_RPM_PYTHON names, e.g. 3.13 for Fedora 41)
#   ansible  dist/<namespace>-<name>-VERSION.tar.gz (ansible-galaxy collection
#            build of the collection under packaging/ansible/)
#   all      all four
#
# Build tools are installed on demand: Debian packages with apt-get (as root,
# no service started), PyPI ones (build, ansible-core) into venvs under
# ${VRRPFW_BUILD_CACHE:-/var/cache/vrrpfw/build} (~/.cache/vrrpfw/build when
# not root), never into the system.
# Every build runs on an export of the tree in a temporary directory (the
# tracked files, plus new ones not ignored, of the paths a build reads), so
# the checkout gets nothing but dist/.  Exit: 0 built, 2 bad usage, 3 a tool
# could not be had (not root, apt-get failed), 1 a build failed.
set -euo pipefail
shopt -s inherit_errexit  # set -e inside $(...) too (pypi_venv runs in one)

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="${VRRPFW_DIST:-$REPO/dist}"  # tests build into a directory of their own
if [ "$(id -u)" -eq 0 ]; then DEFAULT_CACHE=/var/cache/vrrpfw/build
else DEFAULT_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/vrrpfw/build"; fi  # wheel and ansible need no root
CACHE="${VRRPFW_BUILD_CACHE:-$DEFAULT_CACHE}"
HOST_PYTHON="${VRRPFW_BUILD_PYTHON:-/usr/bin/python3}"

say() { echo "build.sh: $*" >&2; }
die() { local code="$1"; shift; say "$*"; exit "$code"; }

usage() { die 2 "usage: bash packaging/build.sh deb|rpm|wheel|ansible|all"; }
[ "$#" -eq 1 ] || usage
TARGET="$1"
case "$TARGET" in deb|rpm|wheel|ansible|all) ;; *) usage ;; esac

VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/vrrpfw/_version.py")"
[ -n "$VERSION" ] || die 1 "cannot read the version from vrrpfw/_version.py"

# The .deb and the RPM build with the system's python3 and its packages, never
# with another python3 earlier on PATH (pyenv's, a venv's).
DEBIAN_PATH=/usr/sbin:/usr/bin:/sbin:/bin

WORK="$(mktemp -d /tmp/vrrpfw-build.XXXXXX)"
POLICY_MADE=""  # a policy-rc.d this run created: removed on any exit, Ctrl-C included
cleanup() {
    [ -z "$POLICY_MADE" ] || rm -f "$POLICY_MADE"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$DIST"
DIST="$(cd "$DIST" && pwd)"

# -- tools -----------------------------------------------------------------

# apt_tools PKG...: install the Debian packages that are missing.
# Two builds at once (parallel test workers) take turns: dpkg has one lock,
# and policy-rc.d must stay until the last install is done.
APT_LOCK=/run/lock/vrrpfw-build-apt.lock

apt_tools() {
    local missing=() p lock=""
    if [ "$(id -u)" -eq 0 ]; then exec {lock}>"$APT_LOCK"; flock "$lock"; fi
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        [ -z "$lock" ] || exec {lock}>&-
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die 3 "missing build tools: ${missing[*]} (run as root, or apt-get install them)"
    say "apt-get install ${missing[*]}"
    # No service may start on this machine while installing (policy-rc.d).
    local policy=/usr/sbin/policy-rc.d had=1
    [ -e "$policy" ] || { had=0; POLICY_MADE="$policy"; printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; }
    local rc=0
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; } || rc=$?
    [ "$had" -eq 1 ] || { rm -f "$policy"; POLICY_MADE=""; }
    exec {lock}>&-  # root here: the lock was taken
    [ "$rc" -eq 0 ] || die 3 "apt-get install ${missing[*]} failed"
}

# pypi_venv NAME PKG...: a venv under the cache with PKG installed; prints its python.
pypi_venv() {
    local name="$1"; shift
    local venv="$CACHE/$name" lock
    mkdir -p "$CACHE"
    exec {lock}>"$CACHE/.$name.lock"  # released when this $(...) subshell ends
    flock "$lock"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        apt_tools python3-venv
        rm -rf "$venv"
        "$HOST_PYTHON" -m venv "$venv" || die 3 "cannot create a venv at $venv"
    fi
    if [ ! -e "$venv/.ok-$*" ]; then
        "$venv/bin/pip" install --disable-pip-version-check -q --upgrade pip "$@" >&2 \
            || die 3 "pip install $* into $venv failed"
        rm -f "$venv"/.ok-*
        touch "$venv/.ok-$*"
    fi
    echo "$venv/bin/python"
}

# -- the source export -----------------------------------------------------

# export_tree DIR: the files a build reads, as they are in the working tree.
SOURCE_PATHS=(pyproject.toml setup.cfg LICENSE README.md vrrpfw packaging)
export_tree() {
    local dest="$1"
    mkdir -p "$dest"
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z -co --exclude-standard -- "${SOURCE_PATHS[@]}" \
            | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
            | xargs -0 cp --parents -p -t "$dest")
    else
        (cd "$REPO" && cp -rp --parents -t "$dest" "${SOURCE_PATHS[@]}")
        find "$dest" -name __pycache__ -prune -exec rm -rf {} +
    fi
    [ -e "$dest/packaging/gen_docs.py" ] \
        || die 1 "packaging/gen_docs.py is missing (it writes the man page and completions)"
}

SRC="$WORK/src/vrrpfw-$VERSION"
export_tree "$SRC"

# -- targets ---------------------------------------------------------------

SDIST=""
build_wheel() {
    local py
    py="$(pypi_venv build-venv build)"
    say "python -m build (sdist and wheel)"
    rm -f "$DIST/vrrpfw-$VERSION.tar.gz" "$DIST/vrrpfw-$VERSION-py3-none-any.whl"
    "$py" -m build --outdir "$DIST" "$SRC" >"$WORK/build.log" 2>&1 \
        || { tail -30 "$WORK/build.log" >&2; die 1 "python -m build failed"; }
    # A deprecation (the license table was one) is the packaging's to fix: show it.
    grep -i -A3 "deprecat" "$WORK/build.log" >&2 || true
    SDIST="$DIST/vrrpfw-$VERSION.tar.gz"
    say "wrote $SDIST and $DIST/vrrpfw-$VERSION-py3-none-any.whl"
}

build_deb() {
    apt_tools build-essential dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools \
        python3-typer python3-rich
    local tree="$WORK/deb/vrrpfw-$VERSION"
    mkdir -p "$WORK/deb"
    cp -rp "$SRC" "$tree"
    cp -rp "$REPO/packaging/debian" "$tree/debian"
    say "dpkg-buildpackage -b (dh-python, Debian's setuptools)"
    (cd "$tree" && env PATH="$DEBIAN_PATH" dpkg-buildpackage -us -uc -b) >"$WORK/deb.log" 2>&1 \
        || { tail -40 "$WORK/deb.log" >&2; die 1 "dpkg-buildpackage failed"; }
    local deb
    deb="$(ls "$WORK"/deb/vrrpfw_*_all.deb)"
    rm -f "$DIST"/vrrpfw_*_all.deb
    cp "$deb" "$DIST/"
    say "wrote $DIST/$(basename "$deb")"
}

build_rpm() {
    apt_tools rpm python3-pip python3-setuptools python3-wheel python3-typer python3-rich
    if [ -z "$SDIST" ]; then  # rpm alone: an sdist of its own, dist/ keeps its wheel
        local py
        py="$(pypi_venv build-venv build)"
        "$py" -m build --sdist --outdir "$WORK/sdist" "$SRC" >"$WORK/build.log" 2>&1 \
            || { tail -30 "$WORK/build.log" >&2; die 1 "python -m build --sdist failed"; }
        SDIST="$WORK/sdist/vrrpfw-$VERSION.tar.gz"
    fi
    local top="$WORK/rpmbuild"
    mkdir -p "$top/SOURCES" "$top/SPECS"
    cp "$SDIST" "$top/SOURCES/"
    cp "$SRC/packaging/gen_docs.py" "$top/SOURCES/gen_docs.py"
    cp "$REPO/packaging/rpm/vrrpfw.spec" "$top/SPECS/"
    say "rpmbuild -bb packaging/rpm/vrrpfw.spec"
    # Off Fedora/RHEL the spec names no BuildRequires (Debian's packages
    # above are what the build uses; rpm's database here is empty).
    # The target's Python: the spec's default is RHEL 9's 3.9; VRRPFW_RPM_PYTHON=3.13 for Fedora 41.
    local target=()
    [ -z "${VRRPFW_RPM_PYTHON:-}" ] || target=(--define "python3_version $VRRPFW_RPM_PYTHON")
    env PATH="$DEBIAN_PATH" rpmbuild -bb --define "_topdir $top" "${target[@]}" "$top/SPECS/vrrpfw.spec" >"$WORK/rpm.log" 2>&1 \
        || { tail -40 "$WORK/rpm.log" >&2; die 1 "rpmbuild failed"; }
    local rpm
    rpm="$(ls "$top"/RPMS/noarch/vrrpfw-*.noarch.rpm)"
    rm -f "$DIST"/vrrpfw-*.noarch.rpm
    cp "$rpm" "$DIST/"
    say "wrote $DIST/$(basename "$rpm")"
}

build_ansible() {
    local galaxy dir py
    galaxy="$(cd "$SRC" && find packaging/ansible -name galaxy.yml 2>/dev/null | sort | head -1)"
    [ -n "$galaxy" ] || die 1 "no galaxy.yml under packaging/ansible (the Ansible collection)"
    dir="$SRC/$(dirname "$galaxy")"
    py="$(pypi_venv ansible-venv ansible-core)"
    say "ansible-galaxy collection build $(dirname "$galaxy")"
    "$(dirname "$py")/ansible-galaxy" collection build "$dir" --output-path "$DIST" --force \
        >"$WORK/ansible.log" 2>&1 || { tail -30 "$WORK/ansible.log" >&2; die 1 "ansible-galaxy collection build failed"; }
    say "$(grep -i 'created collection' "$WORK/ansible.log" || echo "wrote the collection into $DIST")"
}

case "$TARGET" in
    wheel) build_wheel ;;
    deb) build_deb ;;
    rpm) build_rpm ;;
    ansible) build_ansible ;;
    all) build_wheel; build_deb; build_rpm; build_ansible ;;
esac
