"""Interface names: every name some backend or saved format would not
represent exactly is refused (InputError, exit 2, one line naming the
character and what vrrpfw accepts) by the API and by every CLI command,
before anything is read or changed.

Nothing here can reach a firewall: the orchestration (``run.run``) and
prove's capture are replaced by functions that fail the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import vrrpfw
from vrrpfw.cli import entry as cli
from vrrpfw.errors import EXIT_USAGE, InputError
from vrrpfw.model import validate_interface

ACCEPTS = "vrrpfw accepts ASCII letters, digits, '.', '_' and '-' (not first), at most 15 bytes"

# (name, words the one-line refusal must contain)
BAD_NAMES = [
    # wildcards: iptables/firewalld '+', nft '*'
    ("eth+", "'+'"), ("+", "'+'"), ("+eth0", "'+'"), ("e+th0", "'+'"),
    ("eth*", "'*'"), ("*", "'*'"), ("*eth", "'*'"), ("e*h0", "'*'"),
    # negation
    ("!eth0", "negation"), ("eth!0", "'!'"), ("!", "'!'"), ("eth0!", "'!'"),
    # quotes and backslashes
    ('eth0"', "quote"), ('"eth0"', "quote"), ("eth0'", "quote"), ("'eth0'", "quote"),
    ('a"b', "'\"'"), ("a'b", "\"'\""), ("`eth0`", "'`'"),
    ("eth\\0", "backslash"), ("\\", "backslash"), ("eth0\\", "backslash"),
    # a leading '-': iptables reads an option
    ("-eth0", "starts with '-'"), ("-", "starts with '-'"), ("--", "starts with '-'"),
    ("-i", "starts with '-'"), ("--iface", "starts with '-'"), ("-0", "starts with '-'"),
    # not ASCII
    ("ethé0", "not ASCII"), ("é", "not ASCII"), ("eth0\u00a0", "not ASCII"), ("eth\u200b0", "not ASCII"),
    ("\uff45\uff54\uff48\uff10", "not ASCII"), ("eth\u0430", "not ASCII"),
    ("eth\udce9", "not ASCII"),  # a Latin-1 byte in argv, as Python decodes it
    ("eth0\u2028", "not ASCII"), ("\U0001f600", "not ASCII"),
    # control characters and whitespace
    ("eth\x00", "Linux does not allow"), ("\x00", "Linux does not allow"),
    ("eth\x01", "control character"), ("eth\x7f", "control character"),
    ("eth\x1b[0m", "control character"), ("eth\n0", "Linux does not allow"),
    ("eth0\r", "Linux does not allow"), ("eth\t0", "Linux does not allow"),
    (" eth0", "Linux does not allow"), ("eth0 ", "Linux does not allow"), ("eth 0", "Linux does not allow"),
    ("eth\x0b0", "Linux does not allow"), ("eth\x0c0", "Linux does not allow"),
    # what Linux itself refuses
    ("eth/0", "'/'"), ("/", "'/'"), ("eth:0", "':'"), (":", "':'"),
    (".", "not allowed by Linux"), ("..", "not allowed by Linux"),
    ("all", "not allowed by Linux"), ("default", "not allowed by Linux"),
    # too long (IFNAMSIZ - 1 = 15 bytes)
    ("x" * 16, "at most 15"), ("eth0.1000000000x", "at most 15"), ("é" * 8, "at most 15"),
    ("a" * 100, "at most 15"),
    # nft and iptables-save syntax
    ("eth#0", "comment"), ("#", "comment"), ("eth$0", "variable"), ("$iface", "variable"),
    ("@set", "set reference"), ("eth;0", "statement"), ("eth{", "set"), ("}", "set"),
    ("eth[0]", "bracket"), ("eth,0", "','"), ("eth|0", "'|'"), ("eth&0", "'&'"), ("eth(0)", "'('"),
    ("eth<0", "'<'"), ("eth>0", "'>'"), ("eth=0", "'='"), ("eth%0", "'%'"), ("eth^0", "'^'"),
    ("eth~0", "'~'"), ("eth?0", "'?'"),
    # empty
    ("", "empty"),
]
IDS = [ascii(n) for n, _ in BAD_NAMES]

GOOD_NAMES = ["eth0", "a.b", "a_b", "a-b", "x" * 15, "a.b_c-d0123456x", "0", ".a", "a.", "a--b",
              "enp0s31f6", "br-lan.100", "wg_0", "A-Z_9.x", "bond0.4094", "veth1a2b3c4"]


def test_the_list_is_long_and_distinct():
    names = [n for n, _ in BAD_NAMES]
    assert len(set(names)) == len(names) >= 60


@pytest.mark.parametrize("name, words", BAD_NAMES, ids=IDS)
def test_model_refuses(name, words):
    with pytest.raises(InputError) as e:
        validate_interface(name)
    msg = str(e.value)
    assert e.value.exit_code == EXIT_USAGE
    assert words in msg and "\n" not in msg
    assert msg.startswith("interface name")
    bad = [ch for ch in name if not (ch.isascii() and (ch.isalnum() or ch in "._-"))]
    if bad and len(name.encode("utf-8", "surrogateescape")) <= 15 and words != "empty":
        assert repr(bad[0]) in msg and ACCEPTS in msg, msg  # names the character and the rule


@pytest.mark.parametrize("name, words", BAD_NAMES, ids=IDS)
def test_api_refuses_before_anything(name, words, no_firewall, tmp_path):
    saved = tmp_path / "rules.v4"
    for call in (lambda: vrrpfw.open([name], persist_file=str(saved)),
                 lambda: vrrpfw.open(["eth0", name], persist_file=str(saved)),
                 lambda: vrrpfw.check([name], persist_file=str(saved)),
                 lambda: vrrpfw.close([name], persist_file=str(saved))):
        with pytest.raises(InputError, match=re.escape(words)):
            call()
    assert not saved.exists()


@pytest.mark.parametrize("name, words", BAD_NAMES, ids=IDS)
@pytest.mark.parametrize("command", ["open", "check", "close", "prove"])
def test_cli_refuses_with_one_line(command, name, words, no_firewall, tmp_path, capsys):
    saved = tmp_path / "rules.v4"
    argv = [command, "--iface", name] + ([] if command == "prove" else ["--persist-file", str(saved)])
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: interface name"), err
    assert words in lines[0]
    assert not saved.exists()


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_accepted(name):
    assert validate_interface(name) == name


def test_json_error_names_the_character(no_firewall, capsys):
    import json

    assert cli.main(["open", "--iface", "eth*", "--json", "--no-persist"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 2 and "contains '*', which nftables reads as a wildcard" in doc["error"]


@pytest.mark.parametrize("raw", [b"eth\xe9", b"eth\xc3\xa90", b"eth*", b"-eth0", b'eth0"'])
def test_real_process_refuses_raw_bytes(raw, tmp_path):
    """argv as bytes, the way a shell hands a Latin-1 name over.  --dry-run
    and --no-persist: even a wrong acceptance could change nothing."""
    argv = [sys.executable.encode(), b"-m", b"vrrpfw", b"open", b"--dry-run", b"--no-persist",
            b"--iface", raw]
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(vrrpfw.__file__)))
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=str(tmp_path))
    assert proc.returncode == 2, proc
    lines = proc.stderr.decode("utf-8", "replace").splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: interface name"), lines
    assert proc.stdout == b""
