"""CLI exit codes and output, without touching any firewall: every case
here fails validation before a backend is selected."""

import json
import subprocess
import sys

import pytest

from vrrpfw.cli import entry as cli
from vrrpfw.cli import render
from vrrpfw.results import Action, Persisted, PersistReport, Result, RuleReport, Runtime


def rule(runtime=Runtime.ALLOWED, persisted=Persisted.PRESENT, action=Action.NONE):
    return RuleReport("in", "eth0", "224.0.0.18", "INPUT", "-A INPUT ...", runtime, persisted, action)


@pytest.mark.parametrize(
    "argv",
    [
        ["open"],
        ["open", "--iface", ""],
        ["open", "--iface", "a/b"],
        ["open", "--iface", "x" * 16],
        ["open", "--iface", "eth0", "--group", "10.0.0.1"],
        ["open", "--iface", "eth0", "--backend", "pf"],
        ["open", "--iface", "eth0", "--lock-timeout", "soon"],
        ["open", "--iface", "eth0", "--bogus"],
        ["check", "--iface", "eth 0"],
        ["close", "--group", "ff02::12x"],
        ["frobnicate"],
    ],
)
def test_bad_usage_is_one_line_and_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: ")
    assert "Traceback" not in err


def test_json_error_object(capsys):
    assert cli.main(["open", "--iface", "a:b", "--json"]) == 2
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert doc["exit_code"] == 2
    assert doc["error"].startswith("interface name 'a:b' contains ':', which Linux does not allow; "
                                   "vrrpfw accepts ASCII letters, digits, '.', '_' and '-' (not first)")


def test_help_documents_exit_codes(capsys):
    assert cli.main(["open", "--help"]) == 0
    out, _ = capsys.readouterr()
    for words in ("--iface", "--dry-run", "--json", "--no-persist", "--persist-file", "Exit codes:\n"):
        assert words in out
    for code in range(5):  # one line per code, as the help lays it out
        assert f"\n    {code}  " in out


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip().startswith("vrrpfw ")


def test_cli_import_loads_no_firewall_library_and_not_the_api():
    """``vrrpfw --help`` imports vrrpfw.cli.entry: not the API, its backends, rich,
    dbus or iptc (start-up time; tests/bench/bench_startup.py measures it)."""
    heavy = ("vrrpfw.api", "vrrpfw.backends.base", "vrrpfw.backends.registry", "vrrpfw.judge.chaineval",
             "rich", "dbus", "iptc")
    code = f"import sys, vrrpfw.cli.entry; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_exit_codes_follow_state():
    assert Result("open", "iptables", rules=[rule()]).exit_code == 0
    assert Result("check", "iptables", rules=[rule(Runtime.SHADOWED)]).exit_code == 1
    assert Result("check", "iptables", rules=[rule(persisted=Persisted.MISSING)]).exit_code == 1
    assert Result("check", "iptables", rules=[rule(persisted=Persisted.SKIPPED)]).exit_code == 0
    assert Result("check", "iptables", rules=[]).exit_code == 1
    partial = Result("open", "iptables", rules=[rule()], persist=[PersistReport("/x", error="disk full")])
    assert partial.exit_code == 1
    assert Result("open", "iptables", rules=[rule()], blockers=["nft"]).exit_code == 1
    assert Result("close", "iptables", rules=[rule(Runtime.ABSENT, Persisted.ABSENT)]).exit_code == 0
    assert Result("check", "none", nothing_filters=True).exit_code == 0


def test_plain_output_is_stable_words():
    r = Result("open", "iptables", changed=True, rules=[rule(action=Action.INSERT)],
               persist=[PersistReport("/etc/iptables/rules.v4", changed=True,
                                      note="nothing on this host restores it at boot")],
               warnings=["w1"])
    text = render.plain(r)
    assert text.splitlines()[0] == "vrrpfw open: ok, changed (backend iptables)"
    assert "runtime allowed (inserted), persisted present" in text
    assert "persist: /etc/iptables/rules.v4 updated" in text
    assert "note: nothing on this host restores it at boot" in text
    assert "warning: w1" in text
    d = json.loads(render.as_json(r))
    assert d["changed"] is True and d["rules"][0]["action"] == "insert" and d["exit_code"] == 0
