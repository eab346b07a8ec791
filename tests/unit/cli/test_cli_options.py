"""Contradictory and out-of-range options: exit 2, one line on stderr,
nothing read or changed (the orchestration is stubbed to fail the test if
it is reached).  With --json, the same line as one JSON object on stdout."""

from __future__ import annotations

import json

import pytest

from vrrpfw.cli import entry as cli

P = "/nonexistent-vrrpfw-test/rules.v4"

BAD = [
    # --no-persist and --persist-file
    (["open", "--iface", "eth0", "--no-persist", "--persist-file", P], "contradict"),
    (["check", "--persist-file", P, "--no-persist"], "contradict"),
    (["close", "--no-persist", f"--persist-file={P}"], "contradict"),
    # a one-value option given twice
    (["open", "--iface", "eth0", "--no-persist", "--group", "224.0.0.18", "--group", "224.0.0.19"],
     "--group given 2 times ('224.0.0.18', '224.0.0.19')"),
    (["check", "--no-persist", "--group=224.0.0.18", "--group", "224.0.0.18"], "--group given 2 times"),
    (["close", "--no-persist", "--group", "224.0.0.18", "--group", "224.0.0.19"], "--group given 2 times"),
    (["open", "-i", "eth0", "--no-persist", "--backend", "iptables", "--backend=nftables"],
     "--backend given 2 times"),
    (["open", "--iface", "eth0", "--persist-file", P, "--persist-file", P + "2"], "--persist-file given 2"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "1", "--lock-timeout", "2"],
     "--lock-timeout given 2"),
    (["prove", "--iface", "eth0", "--count", "5", "--count", "6"], "--count given 2 times"),
    (["open", "--iface", "eth0", "--no-persist", "--zone", "a", "--zone", "b"], "--zone given 2"),
    # empty interface names, however given
    (["open", "--iface", "", "--no-persist"], "empty"),
    (["open", "--iface", "eth0", "-i", "", "--no-persist"], "empty"),
    (["open", "--iface=", "--no-persist"], "empty"),
    (["close", "--iface", "", "--no-persist"], "empty"),
    (["check", "--iface", "", "--no-persist"], "empty"),
    (["prove", "--iface", ""], "empty"),
    # lock timeouts that are not a finite number of seconds >= 0
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "nan"], "not nan"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "NaN"], "not nan"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "-1"], "not -1"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout=-0.5"], "not -0.5"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "inf"], "not inf"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "-inf"], "not -inf"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "1e400"], "not inf"),
    (["close", "--no-persist", "--lock-timeout", "nan"], "not nan"),
    (["close", "--no-persist", "--lock-timeout", "-1"], "not -1"),
    (["open", "--iface", "eth0", "--no-persist", "--lock-timeout", "soon"], "lock-timeout"),
    # prove's count
    (["prove", "--iface", "eth0", "--count", "0"], "count 0"),
    (["prove", "--iface", "eth0", "--count", "-1"], "count -1"),
    (["prove", "--iface", "eth0", "--count", "10001"], "count 10001"),
    (["prove", "--iface", "eth0", "--count", "x"], "count"),
    # options that belong to another command or mode
    (["close", "--prove", "--no-persist"], "--prove"),
    (["close", "--iface", "eth0", "--prove"], "--prove"),
    (["check", "--dry-run", "--no-persist"], "--dry-run"),
    (["check", "--lock-timeout", "1", "--no-persist"], "--lock-timeout"),
    (["open", "--iface", "eth0", "--prove", "--no-persist"], "--prove goes with --dry-run"),
    (["open", "--iface", "eth0", "--remove-seed-rules", "--no-persist"], "--remove-seed-rules"),
    (["prove", "--iface", "eth0", "--no-persist"], "--no-persist"),
    (["backends", "--iface", "eth0"], "--iface"),
    # firewalld's options with another backend named
    (["open", "--iface", "eth0", "--no-persist", "--backend", "iptables", "--zone", "public"],
     "--zone applies to firewalld only, not to --backend iptables"),
    (["open", "--iface", "eth0", "--no-persist", "--backend", "nftables", "--mode", "direct"],
     "--mode applies to firewalld only"),
    (["open", "--iface", "eth0", "--no-persist", "--backend", "nftables", "--force", "--mode", "zone"],
     "--mode and --force apply to firewalld only"),
    (["check", "--no-persist", "--backend", "iptables", "--zone", "public"], "--zone applies"),
    (["open", "--iface", "eth0", "--no-persist", "--backend", "ufw", "--zone", "public"],
     "--zone applies to firewalld only, not to --backend ufw"),
    (["close", "--no-persist", "--backend", "nftables", "--remove-seed-rules"], "--remove-seed-rules"),
    (["open", "--iface", "eth0", "--no-persist", "--mode", "zone", "--force"], "--force applies to --mode"),
    # values and flags
    (["open", "--iface", "eth0", "--persist-file"], "--persist-file"),
    (["open", "--iface"], "--iface"),
    (["open", "--iface", "eth0", "--no-persist", "--dry-run=yes"], "--dry-run"),
    (["open", "--no-persist"], "--iface"),
    (["open", "--iface", "eth0", "--no-persist", "extra"], "extra"),
]


pytestmark = pytest.mark.usefixtures("no_firewall")  # tests/conftest.py


@pytest.mark.parametrize("argv, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_refused_with_one_line(argv, words, capsys):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: "), err
    assert words in lines[0]


@pytest.mark.parametrize("argv, words", BAD[:12], ids=[" ".join(a) for a, _ in BAD[:12]])
def test_json_error_object(argv, words, capsys):
    assert cli.main(argv + ["--json"]) == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["exit_code"] == 2 and words in doc["error"]
    assert err.strip() == f"vrrpfw: error: {doc['error']}"


@pytest.mark.parametrize("argv", [
    ["open", "--iface", "eth0", "--iface", "eth1", "-i", "eth2", "--peer", "192.0.2.2", "--peer",
     "192.0.2.3", "--dry-run", "--no-persist"],
    ["open", "--iface", "eth0", "--dry-run", "--dry-run", "--json", "--json", "--no-persist"],
    ["check", "--no-persist", "--", "--group"],
])
def test_repeatable_options_and_flags_are_not_contradictions(argv, monkeypatch, capsys):
    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        raise SystemExit("stop")  # not a firewall: proves the command got this far
    monkeypatch.setattr("vrrpfw.api.open", fake)
    monkeypatch.setattr("vrrpfw.api.check", fake)
    try:
        rc = cli.main(argv)
    except SystemExit:
        rc = None
    out, err = capsys.readouterr()
    if argv[-1] == "--group":  # after --, a value: click's own usage error, not "given twice"
        assert rc == 2 and "given" not in err
        return
    assert rc is None and seen, err
    if "--peer" in argv:
        assert seen["interfaces"] == ["eth0", "eth1", "eth2"] and list(seen["peers"]) == [
            "192.0.2.2", "192.0.2.3"]


@pytest.mark.parametrize("command", ["open", "check", "close", "prove", "backends"])
def test_every_command_has_help(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith(f"Usage: vrrpfw {command} [OPTIONS]")
    assert "--json" in out and "Show this message and exit." in out
    assert "vrrpfw 0." not in out  # --version did not fire


def test_top_level_help_and_no_arguments(capsys):
    assert cli.main(["--help"]) == 0
    out, _ = capsys.readouterr()
    assert "Commands:" in out and "Exit codes:" in out and "4  internal error" in out
    cli.main([])
    out, err = capsys.readouterr()
    assert "Commands:" in out + err
