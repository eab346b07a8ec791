"""The CLI as root under sudo for an unprivileged user (SUDO_UID=nobody):
no message, on stderr or in --json, carries bytes of a file that user
cannot read (file:line and the reason only); the same run by root itself
still quotes (so each test can fail).  And no path option hangs on a FIFO
or reads /dev/zero without end.  Everything runs in a throw-away namespace;
every file lives in the test's temporary directory (0700: nobody cannot
reach it)."""

from __future__ import annotations

import json
import os

import pytest
from lockdirs import private_lock_dir
from netns import namespace

pytestmark = pytest.mark.integration

NOBODY = {"SUDO_UID": "65534", "SUDO_GID": "65534", "SUDO_USER": "nobody"}
SECRET = "root:$6$S3cr3tHash:19000:0:99999:7:::"
MARK = "S3cr3t"


def env(tmp_path, extra=None):
    out = {"XTABLES_LOCKFILE": str(tmp_path / "xtables.lock"), "VRRPFW_LOCK_DIR": private_lock_dir(tmp_path)}
    out.update(extra or {})
    return out


def hidden(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    os.chmod(p, 0o600)
    return str(p)


KA_INSTANCE = ("vrrp_instance VI_1 {\n interface lo\n virtual_router_id 7\n"
               " virtual_ipaddress {\n 192.0.2.9\n }\n}\n")

# (name, file name, content, argv builder, exit code, file:line + reason as a regex on stderr)
CASES = [
    ("iptables-save outside a table", "rules.v4", SECRET + "\n",
     lambda p: ["check", "-i", "lo", "--backend", "iptables", "--persist-file", p], 3,
     r"rules\.v4:1: .* is outside any table"),
    ("iptables-restore refuses a match", "rules.v4",
     f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m {MARK}mod -j ACCEPT\nCOMMIT\n",
     lambda p: ["open", "-i", "lo", "--backend", "iptables", "--persist-file", p], 3,
     r"rules\.v4 does not load with ip(6)?tables-.*-restore \(line 3: refused"),
    ("nft -c -f echoes the line", "vrrp.nft",
     f"table inet t {{\n chain c {{\n  ip saddr ${MARK}var accept\n }}\n}}\n",
     lambda p: ["open", "-i", "lo", "--backend", "nftables", "--persist-file", p], 3,
     r"vrrp\.nft does not load with nft -c -f \(.*vrrp\.nft:3: refused"),
    ("keepalived.conf unterminated quote", "keepalived.conf", KA_INSTANCE + f'"{SECRET}\n',
     lambda p: ["check", "--keepalived-conf", p, "--no-persist"], 2,
     r"keepalived\.conf:8: unterminated quote in"),
]


@pytest.mark.parametrize("name, fname, text, argv, rc, reason", CASES, ids=[c[0] for c in CASES])
def test_hidden_file_is_not_quoted(tmp_path, name, fname, text, argv, rc, reason):
    path = hidden(tmp_path, fname, text)
    with namespace() as ns:
        ns.run("ip", "link", "set", "lo", "up")
        for as_json in (False, True):
            args = argv(path) + (["--json"] if as_json else [])
            proc = ns.vrrpfw(*args, env=env(tmp_path, NOBODY))
            assert proc.returncode == rc, proc.stderr
            assert MARK not in proc.stdout + proc.stderr, (proc.stdout, proc.stderr)
            assert "Traceback" not in proc.stderr
            out = proc.stderr if not as_json else proc.stdout + proc.stderr
            assert __import__("re").search(reason, out), out
        # The control: root invoked it, root may see the file's bytes.
        proc = ns.vrrpfw(*argv(path), env=env(tmp_path))
        assert proc.returncode == rc and MARK in proc.stderr, proc.stderr


def test_hidden_include_of_a_readable_keepalived_conf(tmp_path):
    secret = hidden(tmp_path, "secret.conf", f'"{SECRET}\n')
    main = tmp_path / "keepalived.conf"
    main.write_text(KA_INSTANCE + f"include {secret}\n")
    with namespace() as ns:
        proc = ns.vrrpfw("check", "--keepalived-conf", str(main), "--no-persist", env=env(tmp_path, NOBODY))
        assert proc.returncode == 2
        assert MARK not in proc.stdout + proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"vrrpfw: error: {secret}:1: unterminated quote in (line not shown: the invoking user cannot "
            "read the file)"]


@pytest.mark.parametrize("option", ["--keepalived-conf", "--persist-file", "--state-file"])
@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_path_options_refuse_a_fifo_or_device_fast(tmp_path, option, target):
    if target == "fifo":
        target = str(tmp_path / "fifo")
        os.mkfifo(target)
    args = ["open", "-i", "lo", option, target]
    if option == "--keepalived-conf":
        args = ["open", option, target, "--no-persist"]
    elif option == "--state-file":
        args += ["--backend", "firewalld", "--no-persist"]
    with namespace() as ns:
        proc = ns.run(*ns_vrrpfw_argv(), *args, check=False, env=env(tmp_path), timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert "not a regular file" in proc.stderr or "a FIFO" in proc.stderr or "device" in proc.stderr


def test_keepalived_include_of_dev_zero_ends(tmp_path):
    main = tmp_path / "keepalived.conf"
    main.write_text(KA_INSTANCE + "include /dev/zero\n")
    with namespace() as ns:
        proc = ns.run(*ns_vrrpfw_argv(), "check", "--keepalived-conf", str(main), "--no-persist",
                      check=False, env=env(tmp_path), timeout=60)
        assert proc.returncode == 2
        assert proc.stderr.strip() == (f"vrrpfw: error: {main}:8: cannot read /dev/zero: it is a character "
                                       "device, not a regular file")


def ns_vrrpfw_argv():
    import sys

    return [sys.executable, "-m", "vrrpfw"]


def test_next_boot_names_the_included_files_error_and_hides_its_bytes(tmp_path):
    """check judges the next boot by loading nftables.conf into an empty
    namespace; where an included file breaks the load, the one line names
    that file's error (not nft's "In file included from" line), and under
    sudo for a user who cannot read it, only its file:line."""
    secret = hidden(tmp_path, "secret.nft", f"add rule inet filter input ip saddr ${MARK}var drop\n")
    conf = tmp_path / "nftables.conf"
    table = ("table inet filter {\n chain input { type filter hook input priority 0; policy accept; }\n"
             " chain output { type filter hook output priority 0; policy accept; }\n}\n")
    conf.write_text(f"flush ruleset\n{table}include \"{secret}\"\n")
    argv = ("check", "-i", "lo", "--backend", "nftables", "--persist-file", str(conf), "--json")
    with namespace() as ns:
        ns.run("ip", "link", "set", "lo", "up")
        (tmp_path / "runtime.nft").write_text(table)
        ns.run("nft", "-f", str(tmp_path / "runtime.nft"))
        for who, extra in (("root", None), ("nobody", NOBODY)):
            proc = ns.vrrpfw(*argv, env=env(tmp_path, extra))
            assert proc.returncode == 1, (who, proc.stdout, proc.stderr)
            notes = [w for w in json.loads(proc.stdout)["warnings"] if "next boot cannot be judged" in w]
            assert notes and all(f"{secret}:1" in n for n in notes), (who, notes)
            if who == "root":
                assert all("unknown identifier" in n and MARK in n for n in notes), notes
            else:
                assert MARK not in proc.stdout + proc.stderr, proc.stdout
                assert all("line not shown" in n for n in notes), notes
