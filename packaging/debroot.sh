#!/usr/bin/env bash
# Debian roots for tests that must run on a Debian release other than the
# machine's own: the .deb install test (Debian 12 and 13) and the Debian 13
# runs of the integration tests (iptables 1.8.11, nft 1.1, Python 3.13).
#
#   debroot.sh ensure SUITE [PKG...]
#       Create (debootstrap --variant=minbase) or reuse the cached root of
#       SUITE (bookworm, trixie), install PKG into it (apt, no recommends),
#       and print its path.  The cache is ${VRRPFW_ROOTS:-/var/cache/vrrpfw/roots};
#       a root is used only once complete (a marker file), so an interrupted
#       debootstrap is redone, never half-used.  A run never depends on the
#       cache existing: it is only quicker when it does.
#
#   debroot.sh run SUITE [--upper DIR] [--netns NS] [--bind SRC:DST]... [--env K=V]... -- CMD...
#       Run CMD chrooted in an overlay of the cached root: changes go to DIR
#       (kept, so one call can install and the next use it) or to a
#       throw-away directory, never to the cache.  /proc, /sys, /dev, /run and
#       /tmp are mounted inside, in a private mount namespace, so nothing
#       stays mounted afterwards.  With --netns, CMD runs in that network
#       namespace (its /sys shows that namespace's links); without it, the
#       machine's network is there (apt-get works).
#
# Why overlays: a test must start from a fresh root, and a fresh debootstrap
# costs ~35-45 s a suite; the cached base plus an overlay is fresh each run.
set -euo pipefail

ROOTS="${VRRPFW_ROOTS:-/var/cache/vrrpfw/roots}"
MIRROR="${VRRPFW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "debroot.sh: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and mounts need it)"

check_suite() {
    case "$1" in
        bookworm|trixie) ;;
        *) die "unknown suite '$1' (bookworm or trixie)" ;;
    esac
}

# A lock per suite: two test workers asking for the same root wait for one build.
with_lock() {
    local suite="$1"; shift
    mkdir -p "$ROOTS"
    exec 9>"$ROOTS/.$suite.lock"
    flock 9
    "$@"
    exec 9>&-
}

build_root() {
    local suite="$1" root="$ROOTS/$1"
    if [ ! -e "$root/.vrrpfw-complete" ]; then
        command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
        # --one-file-system: never into a mount an interrupted debootstrap left.
        rm -rf --one-file-system "$root" "$root.partial"
        echo "debroot.sh: debootstrap --variant=minbase $suite (about 40 s)" >&2
        # In a private mount namespace: the proc/sys mounts debootstrap makes
        # vanish with it, even when it is killed half-way.
        unshare -m --propagation private \
            debootstrap --variant=minbase "$suite" "$root.partial" "$MIRROR" >"$ROOTS/$suite.debootstrap.log" 2>&1 \
            || { tail -20 "$ROOTS/$suite.debootstrap.log" >&2; die "debootstrap $suite failed"; }
        # Never start a service inside the root (a package's postinst would try).
        printf '#!/bin/sh\nexit 101\n' > "$root.partial/usr/sbin/policy-rc.d"
        chmod 755 "$root.partial/usr/sbin/policy-rc.d"
        echo 'APT::Install-Recommends "false";' > "$root.partial/etc/apt/apt.conf.d/90vrrpfw-norecommends"
        touch "$root.partial/.vrrpfw-complete"
        mv "$root.partial" "$root"
    fi
}

install_into_root() {
    local suite="$1"; shift
    local root="$ROOTS/$suite" missing=() p
    [ "$#" -gt 0 ] || return 0
    for p in "$@"; do
        chroot "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    echo "debroot.sh: installing into $suite: ${missing[*]}" >&2
    run_in "$suite" - "" -- sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null' \
        sh "${missing[@]}" 1>&2 || die "apt-get install into $suite failed"
}

# run_in SUITE UPPER NETNS [--bind S:D]... [--env K=V]... -- CMD...
# UPPER "" = throw-away; UPPER "-" = the cached root itself (installs into the cache).
run_in() {
    local suite="$1" upper="$2" netns="$3"; shift 3
    local root="$ROOTS/$suite" binds=() envs=()
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --bind) binds+=("$2"); shift 2 ;;
            --env) envs+=("$2"); shift 2 ;;
            --) shift; break ;;
            *) die "run: unexpected '$1' (options go before --)" ;;
        esac
    done
    [ "$#" -gt 0 ] || die "run: no command after --"
    local work merged scratch="" rc=0
    work="$(mktemp -d /tmp/vrrpfw-root.XXXXXX)"
    # The overlay's work dir and a throw-away upper go on any exit (the
    # mounts are gone with the mount namespace already).
    trap 'rm -rf --one-file-system "$work"' EXIT
    trap 'exit 130' INT TERM
    merged="$work/merged"
    mkdir -p "$merged"
    if [ "$upper" = "-" ]; then
        merged="$root"
    else
        if [ -z "$upper" ]; then scratch="$work/upper"; upper="$scratch"; fi
        mkdir -p "$upper" "$work/ovl-work"
    fi
    # The inner script runs in a private mount namespace (unshare -m, or the
    # one `ip netns exec` makes), so every mount below vanishes with it.
    local inner='set -e
        merged="$1"; root="$2"; upper="$3"; ovlwork="$4"; shift 4
        mount --make-rprivate /
        if [ "$merged" != "$root" ]; then
            mount -t overlay overlay -o "lowerdir=$root,upperdir=$upper,workdir=$ovlwork" "$merged"
        fi
        mount -t proc proc "$merged/proc"
        mount -t sysfs sysfs "$merged/sys"
        mount --rbind /dev "$merged/dev"
        # /run as a booted Debian has it (owned by root, 0755; a bare tmpfs is 1777, which
        # vrrpfw rightly refuses above its lock directory); /tmp sticky as usual.
        mount -t tmpfs -o mode=0755 tmpfs "$merged/run"
        mount -t tmpfs -o mode=1777 tmpfs "$merged/tmp"
        cp -L /etc/resolv.conf "$merged/etc/resolv.conf" 2>/dev/null || true
        nb="$1"; shift
        while [ "$nb" -gt 0 ]; do
            src="${1%%:*}"; dst="${1#*:}"; shift; nb=$((nb - 1))
            mkdir -p "$merged$dst"
            mount --rbind "$src" "$merged$dst"
        done
        exec chroot "$merged" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"'
    local cmd=(sh -c "$inner" inner "$merged" "$root" "$upper" "$work/ovl-work" "${#binds[@]}")
    [ "${#binds[@]}" -eq 0 ] || cmd+=("${binds[@]}")
    [ "${#envs[@]}" -eq 0 ] || cmd+=("${envs[@]}")
    cmd+=("$@")
    if [ -n "$netns" ]; then
        ip netns exec "$netns" unshare -m "${cmd[@]}" || rc=$?
    else
        unshare -m "${cmd[@]}" || rc=$?
    fi
    rm -rf --one-file-system "$work"
    trap - EXIT
    return "$rc"
}

[ "$#" -ge 2 ] || die "usage: debroot.sh ensure SUITE [PKG...] | run SUITE [--upper DIR] [--netns NS] [--bind SRC:DST]... [--env K=V]... -- CMD..."
action="$1" suite="$2"; shift 2
check_suite "$suite"
case "$action" in
    ensure)
        with_lock "$suite" build_root "$suite"
        with_lock "$suite" install_into_root "$suite" "$@"
        echo "$ROOTS/$suite"
        ;;
    run)
        [ -e "$ROOTS/$suite/.vrrpfw-complete" ] || with_lock "$suite" build_root "$suite"
        upper="" netns=""
        while [ "$#" -gt 0 ]; do
            case "$1" in
                --upper) upper="$2"; shift 2 ;;
                --netns) netns="$2"; shift 2 ;;
                *) break ;;
            esac
        done
        [ "$upper" != "-" ] || die "run: --upper - is not allowed (the cache is changed only by ensure)"
        run_in "$suite" "$upper" "$netns" "$@"
        ;;
    *) die "unknown action '$action' (ensure or run)" ;;
esac
