"""A saved file vrrpfw could not replace is refused before the runtime
changes: no free inodes in its filesystem, the immutable or append-only
flag (``chattr +i`` / ``+a``) on the file or on its directory, a read-only
(bind) mount.  vrrpfw exits 3 with one line naming the file and the reason
("nothing was changed"); the namespace's firewall and the file are as
they were.

Every mount is made in a private mount namespace (``unshare --mount``) on
a directory of the test's own, and vanishes with it; the flags are set on
a tmpfs there (tmpfs keeps them since Linux 6.0) and cleared before it is
unmounted.  The firewall changes only inside the test's network namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from netns import namespace

pytestmark = pytest.mark.integration

NFTABLES_CONF = """#!/usr/sbin/nft -f
flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiifname "lo" accept
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t}
}
"""

# $1: mount point, $2: the saved file to copy in, $3: output directory,
# $4: the fault; the rest: the vrrpfw command (with FILE for the file's path).
SETUP = r"""
set -u
mnt=$1 src=$2 out=$3 how=$4; shift 4
dir=$mnt
case $how in
read-only-bind)
    mkdir -p "$out/bound" && cp -p "$src" "$out/bound/" || exit 90
    mount --bind "$out/bound" "$mnt" && mount -o remount,bind,ro "$mnt" || exit 91
    trap 'umount "$mnt"' EXIT
    if touch "$mnt/probe" 2>/dev/null; then exit 92; fi ;;
no-inodes)
    mount -t tmpfs -o size=1m,nr_inodes=8,mode=0755 vrrpfw-precheck "$mnt" || exit 90
    trap 'umount "$mnt"' EXIT
    cp -p "$src" "$mnt/" || exit 91
    i=0; while [ $i -lt 20 ] && touch "$mnt/filler$i" 2>/dev/null; do i=$((i+1)); done
    if touch "$mnt/probe" 2>/dev/null; then exit 92; fi ;;
*)
    mount -t tmpfs -o size=1m,mode=0755 vrrpfw-precheck "$mnt" || exit 90
    trap 'chattr -R -i -a "$mnt" 2>/dev/null; umount "$mnt"' EXIT
    dir=$mnt/d; mkdir "$dir" && cp -p "$src" "$dir/" || exit 91
    case $how in
    immutable-file) chattr +i "$dir"/* ;;
    append-only-file) chattr +a "$dir"/* ;;
    immutable-dir) chattr +i "$dir" ;;
    append-only-dir) chattr +a "$dir" ;;
    esac || exit 93
    if mv "$dir"/* "$dir/probe" 2>/dev/null; then exit 94; fi ;;
esac
file=$dir/$(basename "$src")
for run in 1 2; do  # 2: a dry run predicts the same refusal
    set --; for a in $ARGS; do [ "$a" = FILE ] && a=$file; set -- "$@" "$a"; done
    [ $run = 2 ] && set -- "$@" --dry-run
    "$@" >"$out/stdout$run" 2>"$out/stderr$run"
    echo $? >"$out/rc$run"
    ls -A "$dir" >"$out/listing$run"
done
cp "$file" "$out/after"
echo "$file" >"$out/path"
"""

CASES = [
    ("read-only-bind", "read-only filesystem"),
    ("no-inodes", "no free inodes"),
    ("immutable-file", "immutable"),
    ("append-only-file", "append-only"),
    ("immutable-dir", "immutable"),
    ("append-only-dir", "append-only"),
]


def _refused(tmp_path, ns, how, name, content, vrrpfw_args, rc="3"):
    """Run vrrpfw (and its dry run) on the faulty file; both refuse with
    one line (``rc`` "0": both succeed without a word on stderr); return
    the refusal's line."""
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    src = tmp_path / name
    src.write_bytes(content)
    os.chmod(src, 0o640)
    argv = ["ip", "netns", "exec", ns.name, sys.executable, "-m", "vrrpfw", "open", *vrrpfw_args]
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", SETUP, "sh",
                           str(mnt), str(src), str(out), how],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ARGS": " ".join(argv)})
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert os.listdir(mnt) == []  # never visible outside its mount namespace
    assert (out / "after").read_bytes() == content
    path = (out / "path").read_text().strip()
    for run in (1, 2):
        listing = sorted((out / f"listing{run}").read_text().split())
        assert listing == sorted(set(listing)) and name in listing
        assert not [f for f in listing if f.startswith(".")], listing  # no temp file left
        stderr = (out / f"stderr{run}").read_text()
        assert (out / f"rc{run}").read_text().strip() == rc, stderr
        if rc == "0":
            assert stderr == "", stderr
            continue
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and path in lines[0] and "nothing was changed" in lines[0], lines
        assert "Traceback" not in stderr
    return lines[0] if rc != "0" else ""


@pytest.mark.parametrize("how,why", CASES)
def test_an_unreplaceable_rules_v4_is_refused_before_the_firewall_changes(tmp_path, how, why):
    with namespace("vrpc") as ns:
        ns.ipt("-P", "INPUT", "DROP")
        ns.ipt("-P", "OUTPUT", "DROP")
        ns.ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
        saved = ns.run("iptables-legacy-save").stdout.encode()
        before = ns.legacy_save()
        line = _refused(tmp_path, ns, how, "rules.v4", saved,
                        ["--iface", "lo", "--backend", "iptables", "--persist-file", "FILE"])
        assert why in line, line
        assert ns.legacy_save() == before


@pytest.mark.parametrize("how,why", [c for c in CASES if c[0] in ("no-inodes", "immutable-file",
                                                                   "append-only-dir")])
def test_an_unreplaceable_nftables_conf_is_refused_before_the_firewall_changes(tmp_path, how, why):
    with namespace("vrpn") as ns:
        conf = tmp_path / "loaded.conf"
        conf.write_text(NFTABLES_CONF)
        ns.run("nft", "-f", str(conf))
        before = ns.run("nft", "list", "ruleset").stdout
        line = _refused(tmp_path, ns, how, "nftables.conf", NFTABLES_CONF.encode(),
                        ["--iface", "lo", "--backend", "nftables", "--persist-file", "FILE"])
        assert why in line, line
        assert ns.run("nft", "list", "ruleset").stdout == before


@pytest.mark.parametrize("how", ["immutable-file", "read-only-bind"])
def test_a_run_that_changes_nothing_does_not_need_to_replace_the_file(tmp_path, how):
    """The rules are open and saved already, then the admin made the file
    immutable (or mounted it read-only): open changes nothing, so it
    succeeds (exit 0), as it did before the check existed."""
    with namespace("vrpi") as ns:
        ns.ipt("-P", "INPUT", "DROP")
        ns.ipt("-P", "OUTPUT", "DROP")
        first = tmp_path / "first.v4"
        first.write_text(ns.run("iptables-legacy-save").stdout)
        args = ["--iface", "lo", "--backend", "iptables", "--persist-file"]
        assert ns.vrrpfw("open", *args, str(first)).returncode == 0
        saved = first.read_bytes()
        assert saved.count(b"vrrpfw") == 2
        before = ns.legacy_save()
        _refused(tmp_path, ns, how, "rules.v4", saved, args + ["FILE"], rc="0")
        assert ns.legacy_save() == before
