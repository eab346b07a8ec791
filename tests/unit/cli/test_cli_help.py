"""Help that teaches (issue 11, item 9): every option says what it takes
(a word, or its fixed set of values, which are validated as choices),
each command's --help shows its own exit codes, and --persist-file names
the saved files vrrpfw edits by default on this host.  The option tree is
walked as click holds it (typer.main.get_command, and the command main()
runs); test_cli_help_venvs.py walks it on every venv."""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List

import pytest

from vrrpfw.backends import registry
from vrrpfw.cli import commands as cli
from vrrpfw.cli import entry, options
from vrrpfw.cli import help_text as cli_help
from vrrpfw.persist import locations

# what a metavar must never read: click's and typer's type names
TYPE_WORDS = re.compile(r"^(TEXT|INTEGER|FLOAT|BOOLEAN|PATH|FILENAME|<.*>|\[.*\]|.*list\[.*)$", re.I)
CHOICES = {
    "backend": registry.NAMES,
    "family": cli_help.FAMILIES,
    "mode": cli_help.MODES,
}
COMMANDS = ("open", "check", "close", "prove", "backends")


def flat(text: str) -> str:
    return " ".join(text.split())


def options_of(command: Any) -> List[Any]:
    return [p for p in command.params if getattr(p, "opts", None) and p.opts[0].startswith("-")]


@pytest.fixture(params=["typer", "main"])
def tree(request):
    """The command as typer builds it, and as main() runs it (made sound
    for the click beside typer, with completion attached)."""
    if request.param == "typer":
        return cli.typer.main.get_command(cli.app)
    return entry.build_command()


def help_of(capsys, *args: str) -> str:
    assert entry.main([*args, "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


# ---------------------------------------------------------------- metavars and choices

def test_every_option_that_takes_a_value_says_what_in_a_word(tree):
    seen = 0
    for name in COMMANDS:
        for p in options_of(tree.commands[name]):
            if p.is_flag or p.count:
                continue
            seen += 1
            assert p.metavar, f"{name} {p.opts[0]} has no metavar"
            assert not TYPE_WORDS.match(p.metavar), f"{name} {p.opts[0]} reads {p.metavar}"
            assert p.metavar == p.metavar.strip() and (p.metavar.isupper() or "|" in p.metavar)
    assert seen >= 40


def test_options_with_a_fixed_set_of_values_show_their_choices(tree):
    for name in COMMANDS:
        for p in options_of(tree.commands[name]):
            want = CHOICES.get(p.name)
            if want is None:
                continue
            if name == "prove" and p.name == "family":
                want = cli_help.PROVE_FAMILIES
            assert p.metavar == "|".join(want), (name, p.name)


def test_backend_choices_are_the_registrys_names_auto_first():
    assert cli_help.backend_names() == tuple(registry.NAMES)
    assert cli_help.backend_names()[0] == "auto"
    assert options.BACKEND_METAVAR == "|".join(registry.NAMES)


@pytest.mark.parametrize("command", ["open", "check", "close", "prove"])
def test_help_shows_the_metavars_as_words(capsys, command):
    out = help_of(capsys, command)
    assert f"--backend {'|'.join(registry.NAMES)}" in out
    assert "--iface IFACE" in out
    for word in ("TEXT", "INTEGER", "FLOAT", "<list", "list[str]"):
        assert word not in out, word
    if command != "prove":
        assert "--family ipv4|ipv6|both" in out and "--netns NAME" in out
    else:
        assert "--family ipv4|ipv6 " in out and "--count N" in out
    if command in ("open", "check", "close"):
        for words in ("--mode auto|direct|zone", "--zone ZONE", "--persist-file FILE", "--state-file FILE"):
            assert words in out
    if command in ("open", "close"):
        assert "--lock-timeout SECONDS" in out
    if command == "check":
        assert "--listen SECONDS" in out


def test_names_in_source_reads_the_shapes_a_registry_may_take():
    read = cli_help.names_in_source
    assert read('BACKENDS = {"a": 1, "b": 2}\nNAMES = ("auto",) + tuple(BACKENDS)') == ("auto", "a", "b")
    added = 'BACKENDS: dict = {"a": 1}\nBACKENDS["u"] = 2\nNAMES = ("auto", *BACKENDS)'
    assert read(added) == ("auto", "a", "u")
    assert read('BACKENDS = {"a": 1}\nNAMES = ["auto"] + list(BACKENDS) + ["x"]') == ("auto", "a", "x")
    # anything it cannot read for sure: None (then the registry is imported)
    assert read('BACKENDS = dict(a=1)\nNAMES = ("auto",) + tuple(BACKENDS)') is None
    assert read('BACKENDS = {"a": 1}\nNAMES = ("auto",) + tuple(sorted(BACKENDS))') is None
    assert read('BACKENDS = {K: 1}\nNAMES = tuple(BACKENDS)') is None
    assert read('NAMES = ("auto",)') is None


def test_registry_names_parse_only_the_tables_before_the_first_definition():
    source = open(registry.__file__, encoding="utf-8").read()
    head = cli_help.tables_head(source)
    assert head is not None and len(head) < len(source) // 2 and "def " not in head
    assert cli_help.names_in_source(head) == tuple(registry.NAMES)
    assert cli_help.registry_names(source) == tuple(registry.NAMES)


TABLES = 'BACKENDS = {"a": 1}\nNAMES = ("auto",) + tuple(BACKENDS)\n\n\n'


@pytest.mark.parametrize("rest, names", [
    # definitions (decorated, multi-line signatures), comments: the head decides
    ('def f(\n    x,\n) -> None:\n    BACKENDS["z"] = 1\n\n\n@dec\nclass C:\n    pass\n# NAMES = ()\n',
     ("auto", "a")),
    # a top-level statement after a definition: the whole source decides
    ('def f():\n    pass\n\n\nBACKENDS["u"] = 2\nNAMES = ("auto", *BACKENDS)\n', ("auto", "a", "u")),
    ('def f():\n    pass\n\n\nx = 1; BACKENDS["u"] = 2\nNAMES = ("auto", *BACKENDS)\n', ("auto", "a", "u")),
    # the cut falls inside a string: the head does not parse, the whole source decides
    ('X = """\ndef f():\n"""\nBACKENDS["u"] = 2\nNAMES = ("auto", *BACKENDS)\n', ("auto", "a", "u")),
])
def test_registry_names_read_as_the_whole_source_does(rest, names):
    source = TABLES + rest
    assert cli_help.names_in_source(source) == names
    assert cli_help.registry_names(source) == names


def test_backend_names_imports_the_registry_only_when_its_source_is_unreadable(monkeypatch):
    monkeypatch.setattr(cli_help, "names_in_source", lambda _text: None)
    monkeypatch.delitem(__import__("sys").modules, "vrrpfw.backends.registry", raising=False)
    cli_help.backend_names.cache_clear()
    try:
        assert cli_help.backend_names() == tuple(registry.NAMES)
        assert "vrrpfw.backends.registry" in __import__("sys").modules
    finally:
        cli_help.backend_names.cache_clear()


@pytest.mark.parametrize("args, value", [
    (["open", "-i", "eth0", "--backend"], "pf"),
    (["open", "-i", "eth0", "--backend"], "IPTABLES"),
    (["check", "--backend"], "auto "),
    (["close", "--backend"], ""),
    (["prove", "-i", "eth0", "--backend"], "iptables,nftables"),
    (["open", "-i", "eth0", "--family"], "inet"),
    (["close", "--family"], "ip4"),
    (["check", "--family"], "IPV6"),
    (["prove", "-i", "eth0", "--family"], "both"),
    (["open", "-i", "eth0", "--mode"], "rich"),
    (["close", "--mode"], "ZONE"),
    (["check", "--mode"], ""),
])
def test_a_value_outside_the_choices_is_one_line_exit_2_naming_them(capsys, monkeypatch, args, value):
    def refuse(*_a, **_k):
        raise AssertionError("a bad choice reached backend selection")

    monkeypatch.setattr(registry, "select_layers", refuse)
    assert entry.main([*args, value]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("vrrpfw: error: "), err
    assert "Traceback" not in err
    assert f"'{args[-1]}'" in lines[0]
    choices = {"--backend": registry.NAMES, "--family": cli_help.FAMILIES, "--mode": cli_help.MODES}[args[-1]]
    if args[0] == "prove" and args[-1] == "--family":
        choices = cli_help.PROVE_FAMILIES
    assert ", ".join(repr(c) for c in choices) in lines[0]


def test_a_bad_choice_with_json_is_one_json_object(capsys):
    import json

    assert entry.main(["check", "--backend", "pf", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 2 and "'pf' is not one of" in doc["error"]


def test_choices_reach_the_api_as_plain_strings(monkeypatch):
    from vrrpfw import api

    got: Dict[str, Any] = {}

    def fake(**kwargs):
        got.update(kwargs)
        raise api.InputError("stop here")

    monkeypatch.setattr(api, "open", fake)
    args = ["open", "-i", "eth0", "--backend", "firewalld", "--family", "both", "--mode", "zone"]
    assert entry.main(args) == 2
    for key, value in (("backend", "firewalld"), ("family", "both"), ("mode", "zone")):
        assert got[key] == value and type(got[key]) is str, key
    monkeypatch.setattr(api, "close", fake)
    got.clear()
    assert entry.main(["close"]) == 2
    assert (got["backend"], got["mode"], got["family"]) == ("auto", "auto", None)
    assert type(got["backend"]) is str and type(got["mode"]) is str


def test_modes_are_the_apis():
    from vrrpfw import request

    assert cli_help.MODES == request.MODES


def test_every_backend_name_is_accepted_on_the_command_line(monkeypatch):
    """Each choice parses (the refusal comes from the fake API, exit 2)."""
    from vrrpfw import api

    seen = []

    def fake(**kwargs):
        seen.append(kwargs["backend"])
        raise api.InputError("stop")

    monkeypatch.setattr(api, "check", fake)
    for name in registry.NAMES:
        assert entry.main(["check", "--backend", name]) == 2
    assert seen == list(registry.NAMES)


# ---------------------------------------------------------------- exit codes

@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_shows_its_own_exit_codes(capsys, command):
    out = help_of(capsys, command)
    assert "Exit codes:\n" in out
    block = out[out.index("Exit codes:\n") + len("Exit codes:\n"):]
    shown = [(int(code), flat(meaning)) for code, meaning in
             re.findall(r"^    (\d)  (.*?)(?=^    \d  |\Z)", block, re.M | re.S)]
    assert shown == [(code, flat(meaning)) for code, meaning in cli_help.EXIT_CODES[command]]


def test_close_and_open_mean_different_things_by_0_and_1():
    open_codes, close_codes = dict(cli_help.EXIT_CODES["open"]), dict(cli_help.EXIT_CODES["close"])
    assert "allowed" in open_codes[0] and "gone" in close_codes[0] and "idempotent" in close_codes[0]
    assert "still there" in close_codes[1]
    assert 5 in dict(cli_help.EXIT_CODES["check"]) and 5 not in open_codes and 5 not in close_codes


def test_exit_codes_are_the_documented_constants():
    from vrrpfw import errors
    from vrrpfw.listen import report as listen_report

    assert listen_report.EXIT_NOTHING_HEARD == errors.EXIT_NOTHING_HEARD == 5
    for command, codes in cli_help.EXIT_CODES.items():
        numbers = [c for c, _ in codes]
        assert numbers == sorted(numbers, key=lambda c: (c == 5, c)), command
        assert {0, 2, 4} <= set(numbers), command


def test_top_level_help_summarises_codes_and_environment(capsys):
    out = help_of(capsys)
    assert "5  check --listen" in out and "Environment:" in out
    for name, _ in cli_help.ENVIRONMENT:
        assert f"\n    {name}\n" in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_environment_defaults_are_the_codes():
    from vrrpfw.backends import xtables_lock
    from vrrpfw.persist import lock, state

    text = dict(cli_help.ENVIRONMENT)
    assert f"default {lock.DEFAULT_LOCK_DIR})" in text["VRRPFW_LOCK_DIR"]
    assert f"default {xtables_lock.DEFAULT_LOCKFILE})" in text["XTABLES_LOCKFILE"]
    from vrrpfw import environment

    assert f"(default {environment.DEFAULT_DBUS_TIMEOUT:g})" in text["VRRPFW_DBUS_TIMEOUT"]
    assert environment.dbus_timeout.__name__ in open(os.path.join(  # the client takes it from there
        os.path.dirname(os.path.dirname(cli_help.__file__)), "backends", "firewalld", "bus.py")).read()
    assert f"(default {state.DEFAULT_STATE_FILE})" in options.STATE_HELP


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lines_fit_80_columns(capsys, command):
    out = help_of(capsys, command)
    long = [line for line in out.splitlines() if len(line) > 80 and "|" not in line]
    assert long == []


# ---------------------------------------------------------------- the saved file of this host

def make_root(tmp_path, os_id: str, present=()):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(f'ID={os_id}\nPRETTY_NAME="x"\n')
    for path in present:
        f = root / path.lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("*filter\nCOMMIT\n")
    return str(root)


def test_persist_help_names_this_hosts_files_and_which_are_absent(tmp_path):
    root = make_root(tmp_path, "ubuntu", present=["/etc/iptables/rules.v4"])
    text = cli_help.persist_file_help("open", root)
    v4 = locations.choose(None, root, "iptables").path
    v6 = locations.choose(None, root, "ip6tables").path
    nft = locations.choose(None, root, "nftables").path
    assert v4.endswith("/etc/iptables/rules.v4") and nft.endswith("/etc/nftables.conf")
    assert text.startswith("Saved ruleset to edit instead of this host's own. Default on this host "
                           "(debian family): ")
    assert f"{v4} (IPv4 iptables, legacy or iptables-nft)" in text
    assert f"{v6} (IPv6 ip6tables, legacy or iptables-nft; absent)" in text
    assert f"{nft} (native nftables chains; absent)" in text
    assert "firewalld: its permanent configuration" in text
    assert "ufw" not in text  # not installed here: its files would be noise
    assert text.endswith("Where an iptables or nftables file is absent, open does not create it: it reports "
                         "the rules not persisted (exit 1).")
    root = make_root(tmp_path / "ufw", "ubuntu", present=["/etc/iptables/rules.v4", "/etc/ufw/ufw.conf"])
    text = cli_help.persist_file_help("open", root)
    assert (f"ufw: {root}/etc/ufw/before.rules (ufw IPv4; absent), "
            f"{root}/etc/ufw/before6.rules (ufw IPv6; absent)") in text
    assert text.endswith("Where an iptables or nftables file is absent, open does not create it: it reports "
                         "the rules not persisted (exit 1). ufw's files are ufw's own: vrrpfw refuses to run "
                         "without them (exit 3).")


def test_persist_help_per_command_and_family(tmp_path):
    root = make_root(tmp_path, "rocky", present=["/etc/sysconfig/iptables", "/etc/sysconfig/ip6tables",
                                                 "/etc/sysconfig/nftables.conf", "/etc/ufw/before.rules",
                                                 "/etc/ufw/before6.rules"])
    text = cli_help.persist_file_help("close", root)
    assert text.startswith("Saved ruleset to remove vrrpfw's lines from instead of this host's own. "
                           "Default on this host (rhel family): ")
    assert "absent" not in text and "/etc/sysconfig/nftables.conf (native nftables chains)" in text
    check = cli_help.persist_file_help("check", make_root(tmp_path / "b", "alpine"))
    assert "(alpine family)" in check and "/etc/nftables.nft (native nftables chains; absent)" in check
    assert "check reports the rules not persisted (exit 1)." in check


def test_persist_help_on_an_unknown_distribution_says_what_to_give(tmp_path):
    root = make_root(tmp_path, "gentoo", present=["/etc/ufw/before.rules", "/etc/ufw/before6.rules",
                                                  "/etc/ufw/ufw.conf"])
    text = cli_help.persist_file_help("open", root)
    assert "for iptables and nftables none known" in text and "--persist-file FILE or --no-persist" in text
    assert "persisting fails with exit 3" in text and "absent" not in text
    assert f"; ufw: {root}/etc/ufw/before.rules (ufw IPv4), " in text  # ufw's do not depend on os-release
    with pytest.raises(locations.PersistFileError):  # what open really does there
        locations.choose(None, make_root(tmp_path / "c", "gentoo"))


def test_ufw_files_are_the_ufw_backends():
    from vrrpfw.model import Family
    from vrrpfw.persist import ufw_rules

    paths = [ufw_rules.default_path(f) for f in (Family.IPV4, Family.IPV6)]
    assert [p for p, _ in cli_help.UFW_SAVED] == paths
    assert ("/etc/ufw/before.rules", "ufw IPv4 (every distribution)") in cli_help.saved_files_all()


def test_persist_help_generic_for_the_man_page():
    text = cli_help.persist_file_help("open", None)
    assert "FILES in vrrpfw(8)" in text and "`vrrpfw open --help` names this host's" in text
    assert "/etc/" not in text


@pytest.mark.parametrize("command", ["open", "check", "close"])
def test_help_names_the_files_of_this_very_host(capsys, command):
    out = flat(help_of(capsys, command))
    family = locations.detect_family("/")
    if family is None:
        assert "Default on this host: none known" in out
        return
    assert f"Default on this host ({family} family):" in out
    for kind in ("iptables", "ip6tables", "nftables"):
        path = locations.choose(None, "/", kind).path
        assert path in out
        state = "; absent)" if not os.path.isfile(path) else ")"
        assert re.search(re.escape(path) + r" \([^()]*" + re.escape(state), out), (path, state)


def test_only_help_reads_the_hosts_files(monkeypatch):
    calls = []
    monkeypatch.setattr(cli_help, "persist_file_help", lambda *a: calls.append(a) or "x")
    entry.build_command()
    assert calls == []
    entry.build_command("/")
    assert sorted(c[0] for c in calls) == ["check", "close", "open"]
