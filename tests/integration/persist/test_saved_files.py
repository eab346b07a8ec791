"""Saved files are never lost, corrupted or misreported (issue 9), against
real iptables-legacy, iptables-nft and nft in namespaces: what the restorer
would refuse is refused before anything changes, open + close gives a file
back byte for byte, paths vrrpfw must not write are usage errors, a run
that fails half-way says what each layer did, and a dry run predicts the
real run.  Every file lives in the test's temporary directory."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
from lockdirs import private_lock_dir
from netns import adverts, pair

pytestmark = pytest.mark.integration

OURS = "--comment vrrpfw"


def env(tmp_path):
    return {"XTABLES_LOCKFILE": str(tmp_path / "xtables.lock"), "VRRPFW_LOCK_DIR": private_lock_dir(tmp_path)}


def drop_and_save(ns, path=None):
    """An admin's host: INPUT/OUTPUT drop everything but loopback, saved
    where netfilter-persistent would restore it."""
    ns.ipt("-P", "INPUT", "DROP")
    ns.ipt("-P", "OUTPUT", "DROP")
    ns.ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    saved = ns.run("iptables-legacy-save").stdout
    if path is not None:
        path.write_text(saved)
    return saved


def ours_at_runtime(ns):
    return [line for line in ns.run("iptables-legacy-save").stdout.splitlines() if OURS in line]


def one_error_line(proc):
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


NO_FILTER = [
    pytest.param(None, id="absent"),
    pytest.param(b"", id="empty"),
    pytest.param(b"# saved by hand\n", id="comment-only"),
    pytest.param(b"*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n", id="nat-only"),
]


@pytest.mark.parametrize("content", NO_FILTER)
def test_a_file_without_filter_table_is_never_given_one(tmp_path, content):
    """The old code added `*filter :INPUT ACCEPT ...`: restoring the file
    after open + close flushed the filter table and set ACCEPT.  Now the
    file stays byte for byte (absent stays absent) and open says it could
    not persist (exit 1) and why."""
    path = tmp_path / "rules.v4"
    if content is not None:
        path.write_bytes(content)
    with pair() as p:
        drop_and_save(p.host)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(path),
                                     env=env(tmp_path))
        assert rc == 1, out
        assert {r["runtime"] for r in out["rules"]} == {"allowed"}
        assert {r["persisted"] for r in out["rules"]} == {"missing"}
        note = out["persist"][0]["note"]
        assert ("does not exist" in note) if content is None else ("no *filter section" in note), note
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--persist-file", str(path),
                                     env=env(tmp_path))
        assert rc == 0, out
    assert (path.read_bytes() if path.exists() else None) == content
    left = ["xtables.lock"] + (["rules.v4"] if content is not None else [])  # locks: private_lock_dir
    assert sorted(os.listdir(tmp_path)) == sorted(left)


def test_open_close_gives_the_admin_file_back_byte_for_byte(tmp_path):
    """Odd bytes, a last line without newline, counters and comments: the
    admin's text is never rewritten, only vrrpfw's lines come and go."""
    path = tmp_path / "rules.v4"
    with pair() as p:
        saved = drop_and_save(p.host)
        original = (saved.replace("# Generated", "# \xe9dited by h\xe4nd; generated")
                    + "# last line without newline").encode("latin-1")
        path.write_bytes(original)
        mode = 0o640
        os.chmod(path, mode)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(path),
                                     env=env(tmp_path))
        assert rc == 0, out
        text = path.read_bytes()
        assert text.count(OURS.encode()) == 2 and text.endswith(b"# last line without newline")
        p.host.run("iptables-legacy-restore", "--test", stdin=text.decode("latin-1"))
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--persist-file", str(path),
                                     env=env(tmp_path))
        assert rc == 0, out
        assert path.read_bytes() == original
        assert stat.S_IMODE(path.stat().st_mode) == mode


REJECTED = [
    pytest.param(lambda s: s.replace("\n", "\r\n"), "carriage return", id="crlf"),
    pytest.param(lambda s: s.replace("COMMIT\n", "  # indented comment\nCOMMIT\n", 1), "indented",
                 id="indented-comment"),
    pytest.param(lambda s: s.replace("COMMIT\n", "  COMMIT  \n"), "indented", id="commit-with-spaces"),
    pytest.param(lambda s: s + s[s.index("*filter"):], "second *filter", id="two-filter-sections"),
    # vrrpfw's parser takes this; iptables-legacy-restore --test does not:
    pytest.param(lambda s: s.replace("COMMIT\n", "-A INPUT -m nosuchmatch --foo -j ACCEPT\nCOMMIT\n"),
                 "does not load with iptables-legacy-restore", id="unknown-match"),
]


@pytest.mark.parametrize("spoil, words", REJECTED)
def test_a_file_the_restorer_refuses_is_refused_before_anything_changes(tmp_path, spoil, words):
    path = tmp_path / "rules.v4"
    with pair() as p:
        bad = spoil(drop_and_save(p.host))
        path.write_bytes(bad.encode("latin-1"))
        mtime = path.stat().st_mtime_ns
        before = p.host.legacy_save()
        proc = p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(path),
                                     env=env(tmp_path))
        assert proc.returncode == 3, proc.stdout + proc.stderr
        line = one_error_line(proc)
        assert words in line and str(path) in line, line
        assert path.read_bytes() == bad.encode("latin-1") and path.stat().st_mtime_ns == mtime
        assert p.host.legacy_save() == before
        assert ours_at_runtime(p.host) == []


def test_a_file_that_would_not_restore_with_our_line_is_never_written(tmp_path):
    """The candidate is tested by the restorer before it replaces the old
    file: here an `iptables-legacy-restore` that rejects any file holding
    vrrpfw's comment stands in for a restorer vrrpfw's line upsets."""
    path = tmp_path / "rules.v4"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real = "/usr/sbin/iptables-legacy-restore"
    fake = bindir / "iptables-legacy-restore"
    fake.write_text(f"#!/bin/sh\nfor a; do f=$a; done\nif grep -q 'comment vrrpfw' \"$f\"; then\n"
                    f"  echo 'iptables-restore: line 7 failed' >&2; exit 1\nfi\nexec {real} \"$@\"\n")
    fake.chmod(0o755)
    with pair() as p:
        original = drop_and_save(p.host, path).encode()
        e = {**env(tmp_path), "PATH": f"{bindir}:{os.environ['PATH']}"}
        # The dry run asks the restorer too, and predicts the real run's exit 1.
        rc, dry = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(path), "--dry-run",
                                     env=e)
        assert rc == 1 and "persisting would fail" in dry["persist"][0]["error"], dry
        assert dry["layers"][0]["saved"] == "failed" and ours_at_runtime(p.host) == []
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(path), env=e)
        assert rc == 1, out
        error = out["persist"][0]["error"]
        assert "line 7 failed" in error and "left untouched" in error
        assert out["layers"] == [{"backend": "iptables", "runtime": "changed", "saved": "failed",
                                  "error": None}]
        assert {r["persisted"] for r in out["rules"]} == {"missing"}
        assert path.read_bytes() == original
        assert sorted(os.listdir(tmp_path)) == ["bin", "rules.v4", "xtables.lock"]


def test_paths_vrrpfw_must_not_write_are_usage_errors(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = {
        "": "is empty",
        "/dev/null": "character device",
        str(fifo): "FIFO",
        str(tmp_path): "directory",
        str(tmp_path / "no" / "such" / "dir" / "rules.v4"): "does not exist",
    }
    with pair() as p:
        drop_and_save(p.host)
        before = p.host.legacy_save()
        for path, words in cases.items():
            for cmd in ("open", "close", "check"):
                extra = ["--iface", p.host_if] if cmd != "close" else []
                proc = p.host.vrrpfw(cmd, *extra, "--persist-file", path, env=env(tmp_path), timeout=20)
                assert proc.returncode == 2, (path, cmd, proc.stdout, proc.stderr)
                assert words in one_error_line(proc), (path, proc.stderr)
        assert p.host.legacy_save() == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not (tmp_path / "no").exists()


def test_a_symlinked_file_is_edited_where_it_points_and_stays_a_link(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "rules.v4"
    link = tmp_path / "rules.v4"
    link.symlink_to(target)
    with pair() as p:
        original = drop_and_save(p.host, target)
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(link),
                                     env=env(tmp_path))
        assert rc == 0, out
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert target.read_text().count(OURS) == 2
        assert os.listdir(real_dir) == ["rules.v4"]
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--persist-file", str(link),
                                     env=env(tmp_path))
        assert rc == 0 and link.is_symlink() and target.read_text() == original


HYBRID = """
import json, sys, vrrpfw
print(json.dumps(vrrpfw.{cmd}([sys.argv[1]], root=sys.argv[2]).to_dict()))
"""


@pytest.mark.needs("iptables-nft")
def test_two_layers_of_one_run_share_one_read_and_one_write(tmp_path):
    """A hybrid host: legacy iptables and iptables-nft both drop, so auto
    opens both, and both keep lines in rules.v4.  Each layer used to write
    the file from its own earlier copy, and the second write dropped the
    first's lines while open said ok."""
    root = tmp_path / "root"
    (root / "etc" / "iptables").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    rules = root / "etc" / "iptables" / "rules.v4"
    with pair() as p:
        original = drop_and_save(p.host, rules)
        p.host.run("iptables-nft", "-P", "INPUT", "DROP")
        p.host.run("iptables-nft", "-P", "OUTPUT", "DROP")
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 0
        out = json.loads(p.host.run(sys.executable, "-c", HYBRID.format(cmd="open"), p.host_if, str(root),
                                    env=env(tmp_path)).stdout)
        assert out["backend"] == "iptables+nftables" and out["exit_code"] == 0, out
        # The iptables-nft layer needs the same lines, already staged by the legacy layer.
        assert [la["saved"] for la in out["layers"]] == ["changed", "unchanged"]
        saved = rules.read_text()
        assert saved.count(f"-A INPUT -d 224.0.0.18/32 -i {p.host_if} -p 112") == 1
        assert saved.count(f"-A OUTPUT -d 224.0.0.18/32 -o {p.host_if} -p 112") == 1
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        out = json.loads(p.host.run(sys.executable, "-c", HYBRID.format(cmd="check"), p.host_if, str(root),
                                    env=env(tmp_path)).stdout)
        assert out["exit_code"] == 0 and {r["persisted"] for r in out["rules"]} == {"present"}, out
        out = json.loads(p.host.run(sys.executable, "-c", HYBRID.format(cmd="close"), p.host_if, str(root),
                                    env=env(tmp_path)).stdout)
        assert out["exit_code"] == 0, out
        assert rules.read_text() == original


def test_a_layer_that_fails_after_another_changed_is_a_partial_result(tmp_path):
    """auto on a hybrid host: the legacy layer opens, then nft refuses the
    second layer's change.  Exit 1 (not 3, which promises nothing changed),
    and the report names what each layer did."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "nft"
    fake.write_text("#!/bin/sh\nfor a; do [ \"$a\" = \"-j\" ] && j=1; [ \"$a\" = \"-\" ] && s=1; done\n"
                    "if [ -n \"$j\" ] && [ -n \"$s\" ]; then echo 'Error: Could not process rule: "
                    "Device or resource busy' >&2; exit 1; fi\nexec /usr/sbin/nft \"$@\"\n")
    fake.chmod(0o755)
    path = tmp_path / "rules.v4"
    with pair() as p:
        original = drop_and_save(p.host, path)
        p.host.run("nft", "add table inet fw; add chain inet fw in { type filter hook input priority 10; "
                   "policy drop; }")
        e = {**env(tmp_path), "PATH": f"{bindir}:{os.environ['PATH']}"}
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--persist-file", str(path), env=e)
        assert rc == 1, out
        assert out["layers"][0] == {"backend": "iptables", "runtime": "changed", "saved": "changed",
                                    "error": None}
        assert out["layers"][1]["backend"] == "nftables" and out["layers"][1]["runtime"] == "failed"
        assert "Device or resource busy" in out["layers"][1]["error"]
        assert len(ours_at_runtime(p.host)) == 2
        assert path.read_text().count(OURS) == 2
        # Again: the legacy layer has nothing left to do, so nothing changes: exit 3.
        again = p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(path), env=e)
        assert again.returncode == 3 and "Device or resource busy" in one_error_line(again)
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--persist-file", str(path),
                                     env=env(tmp_path))
        assert rc == 0, out
        assert path.read_text() == original
        plain = p.host.vrrpfw("open", "--iface", p.host_if, "--persist-file", str(path), env=e)
        assert plain.returncode == 1, plain.stdout + plain.stderr
        assert "layer iptables: runtime changed, saved changed" in plain.stdout
        assert "layer nftables: runtime failed, saved not run (nftables: nft -j -f - failed" in plain.stdout


def test_dry_run_predicts_changed_and_the_exit_code_of_the_real_run(tmp_path):
    path = tmp_path / "rules.v4"
    with pair() as p:
        original = drop_and_save(p.host, path)
        args = ("--iface", p.host_if, "--persist-file", str(path))
        rc, dry = p.host.vrrpfw_json("open", *args, "--dry-run",
                                     env=env(tmp_path))
        assert (rc, dry["changed"], dry["exit_code"]) == (0, True, 0), dry
        assert [la["runtime"] for la in dry["layers"]] == ["would change"]
        assert path.read_text() == original and ours_at_runtime(p.host) == []
        rc, real = p.host.vrrpfw_json("open", *args,
                                     env=env(tmp_path))
        assert (rc, real["changed"]) == (0, True)
        assert [(r["runtime"], r["persisted"]) for r in dry["rules"]] == \
               [(r["runtime"], r["persisted"]) for r in real["rules"]]
        rc, dry = p.host.vrrpfw_json("open", *args, "--dry-run",
                                     env=env(tmp_path))
        assert (rc, dry["changed"]) == (0, False)
        rc, dry = p.host.vrrpfw_json("close", *args, "--dry-run",
                                     env=env(tmp_path))
        assert (rc, dry["changed"]) == (0, True), dry
        assert len(ours_at_runtime(p.host)) == 2
        # Where the real run would exit 1 (an nft chain drops and only the
        # iptables backend is asked for), the dry run says 1 too.
        p.host.run("nft", "add table inet fw; add chain inet fw in { type filter hook input priority 10; "
                   "policy drop; }")
        rc, dry = p.host.vrrpfw_json("open", *args, "--backend", "iptables", "--dry-run",
                                     env=env(tmp_path))
        rc_real, real = p.host.vrrpfw_json("open", *args, "--backend", "iptables",
                                     env=env(tmp_path))
        assert rc == rc_real == 1 and dry["exit_code"] == real["exit_code"] == 1, (dry, real)


def test_nftables_backend_never_claims_an_iptables_save_file_keeps_native_chains(tmp_path):
    """An iptables-save file cannot restore `inet filter input`; the old
    code said `persisted present` for it."""
    path = tmp_path / "rules.v4"
    original = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    path.write_text(original)
    with pair() as p:
        p.host.run("nft", "add table inet filter; add chain inet filter input { type filter hook input "
                   "priority 0; policy drop; }")
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--backend", "nftables",
                                     "--persist-file", str(path),
                                     env=env(tmp_path))
        assert rc == 1, out
        inbound = [r for r in out["rules"] if r["direction"] == "in"][0]
        assert inbound["runtime"] == "allowed" and inbound["persisted"] == "missing"
        assert "inet filter input" in out["persist"][0]["note"], out["persist"]
        assert path.read_text() == original


def test_a_saved_line_below_a_drop_is_not_persisted_and_open_moves_it_first(tmp_path):
    """The file's own order decides after a restore: vrrpfw's line below the
    admin's DROP is shadowed there, so it is not "persisted present" until
    open moves it first; a fresh host restoring the file then hears VRRP."""
    path = tmp_path / "rules.v4"
    with pair() as p:
        drop_and_save(p.host)
        ours = f"-A INPUT -d 224.0.0.18/32 -i {p.host_if} -p 112 -m comment --comment vrrpfw -j ACCEPT\n"
        text = ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                "-A INPUT -i lo -j ACCEPT\n--append INPUT -p 112 -j DROP\n" + ours + "COMMIT\n")
        path.write_text(text)
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--backend", "iptables",
                                     "--persist-file", str(path), env=env(tmp_path))
        assert [r["persisted"] for r in out["rules"] if r["direction"] == "in"] == ["missing"], out
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--backend", "iptables",
                                     "--persist-file", str(path), env=env(tmp_path))
        assert rc == 0, out
        saved = path.read_text()
        assert saved.index(ours) < saved.index("-A INPUT -i lo -j ACCEPT") and saved.count(ours) == 1
    with pair() as fresh:
        restored = saved.replace(p.host_if, fresh.host_if)
        fresh.host.run("iptables-legacy-restore", stdin=restored)
        assert adverts(fresh.peer, fresh.peer_if, fresh.host, fresh.host_if)["delivered"] == 20
