#!/usr/bin/env bash
# The Debian 13 end: unit tests and the legacy iptables, nftables and
# iptables-nft integration tests, run by Debian 13's own python3 (3.13) with
# Debian 13's python3-iptables, typer and rich, against its iptables 1.8.11
# and nft 1.1, in a debootstrapped root (packaging/debroot.sh), whatever
# release this machine runs.  The checkout is bind-mounted at /src and run
# from there (no install); the tests make their namespaces inside the root.
# The checkout's venvs are built on the host's pythons and cannot run there
# (VRRPFW_NO_VENVS=1, tests/venvs.py): Debian 13's own python3 with its typer
# 0.15 and click 8.2 is what every CLI test runs on.
#
# Usage: bash tests/debian13.sh [pytest args...]   (as root; default: the set below)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/debian13.sh: run as root (debootstrap, chroot, namespaces)" >&2
    exit 3
fi

# What a Debian 13 server has: netbase (iptables-save prints `-p vrrp` from
# /etc/protocols) and procps (sysctl) are not in a minbase root.
# groff, man, mandoc and zsh: the man page and completion tests (test_gen_docs.py).
PACKAGES=(python3 python3-iptables python3-typer python3-rich python3-pytest python3-pytest-xdist
          python3-hypothesis iptables nftables iproute2 netbase procps groff-base man-db mandoc zsh conntrack)
root="$(bash packaging/debroot.sh ensure trixie "${PACKAGES[@]}")"
echo "== Debian 13 root $root: $(chroot "$root" python3 --version)," \
     "$(chroot "$root" iptables --version), $(chroot "$root" nft --version)"

if [ "$#" -eq 0 ]; then
    # test_cli_pairs and test_cli_help_venvs are about those venvs only.
    set -- tests/unit --ignore=tests/unit/cli/test_cli_pairs.py --ignore=tests/unit/cli/test_cli_help_venvs.py \
        tests/integration/iptables/test_iptables_legacy.py tests/integration/iptables/test_iptables_every_shape.py \
        tests/integration/nftables/test_nftables.py tests/integration/nftables/test_nftables_every_shape.py \
        tests/integration/persist/test_saved_files.py tests/integration/backends/test_close_conntrack.py \
        tests/integration/persist/test_reboot_survival.py::test_netfilter_persistent_restores_what_open_saved_and_close_removed \
        tests/integration/persist/test_reboot_survival.py::test_nftables_service_restores_what_open_saved_and_close_removed \
        tests/integration/judge/test_ipv6_exthdr_path.py
fi

exec bash packaging/debroot.sh run trixie --bind "$REPO:/src" \
    --env PYTHONPATH=/src --env PYTHONDONTWRITEBYTECODE=1 \
    --env "VRRPFW_REQUIRE_INTEGRATION=${VRRPFW_REQUIRE_INTEGRATION:-1}" \
    --env "VRRPFW_WORKERS=${VRRPFW_WORKERS:-4}" \
    --env VRRPFW_NO_VENVS=1 \
    -- sh -c 'cd /src && exec python3 -m pytest -q -rs -p no:cacheprovider -n "$VRRPFW_WORKERS" "$@"' \
    pytest "$@"
