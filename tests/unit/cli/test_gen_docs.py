"""packaging/gen_docs.py (issue 11, item 8): the man page is the CLI's own
help, walked from the command tree (every command, option, choice and
exit code, nothing written twice), renders without a warning in groff,
man and mandoc where they are installed, and is the same whatever typer
builds it; the bash and zsh completion files really complete subcommands,
options and choices, calling back the vrrpfw under test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Dict, List

import pytest
from venvs import built_here, python_path

from vrrpfw.backends import registry
from vrrpfw.cli import entry as cli
from vrrpfw.cli import help_text as cli_help

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
GEN = os.path.join(REPO, "packaging", "gen_docs.py")
REQUIRE = os.environ.get("VRRPFW_REQUIRE_INTEGRATION") == "1"
EPOCH = "1700000000"  # 2023-11-14


def generate(outdir: str, python: str = sys.executable, cwd: str = REPO) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and not k.startswith("_VRRPFW")}
    env.update(SOURCE_DATE_EPOCH=EPOCH, PYTHONPATH=REPO)
    return subprocess.run([python, GEN, outdir], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> str:
    outdir = str(tmp_path_factory.mktemp("docs") / "out")
    proc = generate(outdir)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert sorted(os.listdir(outdir)) == ["_vrrpfw", "vrrpfw.8", "vrrpfw.bash"]
    return outdir


@pytest.fixture(scope="module")
def page(out) -> str:
    with open(os.path.join(out, "vrrpfw.8"), encoding="utf-8") as f:
        return f.read()


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def rendered(page_path: str) -> str:
    proc = subprocess.run([tool("groff"), "-man", "-Tutf8", "-ww", page_path], capture_output=True,
                          text=True, env={**os.environ, "LC_ALL": "C.UTF-8", "GROFF_NO_SGR": "1"}, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    # overstrike bold/underline (groff 1.23, Debian 13, writes SGR escapes unless GROFF_NO_SGR)
    return re.sub(r".\x08", "", proc.stdout)


def flat(text: str) -> str:
    return " ".join(text.replace("\u2010", "-").replace("\u2212", "-").split())


def unhyphen(text: str) -> str:
    """groff breaks long words at hyphenation points (``in‐ terface``);
    `code` is set in bold, without the backquotes."""
    return re.sub(r"(\w)[\u2010-] (\w)", r"\1\2", flat(text.replace("`", "")))


# ---------------------------------------------------------------- the man page

def test_page_is_section_8_with_the_usual_sections_in_order(page):
    assert page.startswith('.TH VRRPFW 8 "2023-11-14" "vrrpfw ')
    sections = re.findall(r"^\.SH (.+)$", page, re.M)
    assert sections == ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "EXIT STATUS", "FILES",
                        "ENVIRONMENT", "SEE ALSO"]


def test_groff_renders_it_without_a_warning(out):
    text = rendered(os.path.join(out, "vrrpfw.8"))
    assert "EXIT STATUS" in text and "vrrpfw open [OPTIONS]" in text


def test_man_renders_it(out):
    proc = subprocess.run([tool("man"), "-l", os.path.join(out, "vrrpfw.8")], capture_output=True, text=True,
                          env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MANPAGER": "cat",
                               "PAGER": "cat"}, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "VRRPFW(8)" in proc.stdout


def test_mandoc_lint_is_clean(out):
    proc = subprocess.run([tool("mandoc"), "-T", "lint", "-W", "style", os.path.join(out, "vrrpfw.8")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def test_every_command_option_choice_and_default_is_the_clis(out):
    """Walked from the same tree --help prints: each option's line and help."""
    text = unhyphen(rendered(os.path.join(out, "vrrpfw.8")))
    group = cli.build_command()
    for name, command in group.commands.items():
        assert f"vrrpfw {name} [OPTIONS]" in text
        assert unhyphen(command.help or "") in text
        ctx = command.context_class(command, info_name=name)
        for param in command.get_params(ctx):
            decl, help_text = param.get_help_record(ctx)
            assert decl in text, (name, decl)
            assert unhyphen(help_text) in text, (name, decl)
    assert f"--backend {'|'.join(registry.NAMES)}" in text
    assert "--mode auto|direct|zone" in text and "[default: auto]" in text


def test_each_command_has_its_own_exit_status(out):
    text = unhyphen(rendered(os.path.join(out, "vrrpfw.8")))
    for name in cli.build_command().commands:
        start = text.index(f"Exit status of vrrpfw {name}:")
        ends = [i for i in (text.find(" [OPTIONS] ", start), text.find("OPTIONS --version", start)) if i > 0]
        block = text[start:min(ends)]
        for code, meaning in cli_help.EXIT_CODES[name]:
            assert f"{code} {unhyphen(meaning)}" in block, (name, code)
    summary = text[text.index("EXIT STATUS Each command"):text.index("FILES The saved rulesets")]
    for code, meaning in cli_help.EXIT_CODES["vrrpfw"]:
        assert f"{code} {unhyphen(meaning)}" in summary


def test_files_list_every_saved_ruleset_and_environment_every_variable(out):
    text = unhyphen(rendered(os.path.join(out, "vrrpfw.8")))
    files = text[text.index("FILES The saved rulesets"):text.index("ENVIRONMENT VRRPFW_")]
    paths = [p for p, _ in cli_help.saved_files_all()]
    assert "/etc/iptables/rules.v4" in paths and "/etc/sysconfig/nftables.conf" in paths
    for path, what in cli_help.saved_files_all():
        assert f"{path} {what}" in files
    from vrrpfw.persist.state import DEFAULT_STATE_FILE

    assert DEFAULT_STATE_FILE in files
    env = text[text.index("ENVIRONMENT VRRPFW_"):text.index("SEE ALSO")]
    for name, meaning in cli_help.ENVIRONMENT:
        assert f"{name} {unhyphen(meaning)}" in env


def test_the_page_names_no_file_of_the_build_host_as_the_default(page):
    assert "Default on this host" not in page
    assert "FILES in vrrpfw(8)" in page.replace("\\-", "-")


def test_escapes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_docs", GEN)
    gen = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(gen)
    assert gen.esc("--iface a\\b") == "\\-\\-iface a\\eb"
    assert gen.esc("see `vrrpfw check`") == "see \\fBvrrpfw check\\fR"
    assert gen.lines(".dot first\n'quote first") == ["\\&.dot first", "\\&'quote first"]
    assert all(len(line) <= 80 for line in gen.lines("word " * 100))
    assert gen.option_synopsis("-i, --iface IFACE") == "\\fB\\-i\\fR, \\fB\\-\\-iface\\fR \\fIIFACE\\fR"
    assert gen.option_synopsis("--mode auto|zone") == "\\fB\\-\\-mode\\fR \\fBauto\\fR|\\fBzone\\fR"
    assert gen.page_date({"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01"


def test_usage_error_is_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, GEN], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "usage: gen_docs.py OUTDIR" in proc.stderr


def test_runs_from_anywhere_and_writes_the_same(out, tmp_path):
    proc = generate(str(tmp_path / "again"), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for name in os.listdir(out):
        with open(os.path.join(out, name)) as a, open(str(tmp_path / "again" / name)) as b:
            assert a.read() == b.read(), name


PYTHONS = {
    **{venv: python_path(venv) for venv in built_here(
        (".venv-debian", ".venv-newest", ".venv-py39", ".venv-typer07-clicknew", ".venv-typer015-click82"))},
    "system python3 (python3-typer)": "/usr/bin/python3",
}


@pytest.mark.parametrize("which", sorted(PYTHONS))
def test_every_typer_writes_the_same_files(out, tmp_path, which):
    python = PYTHONS[which]
    has_typer = os.path.exists(python) and subprocess.run(
        [python, "-c", "import typer"], capture_output=True, timeout=60).returncode == 0
    if not has_typer:
        message = f"{which} is missing or has no typer: run packaging/setup.sh"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)
    proc = generate(str(tmp_path / "o"), python=python)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    for name in os.listdir(out):
        with open(os.path.join(out, name)) as a, open(str(tmp_path / "o" / name)) as b:
            assert a.read() == b.read(), (which, name)


# ---------------------------------------------------------------- completion

@pytest.fixture(scope="module")
def bindir(tmp_path_factory) -> str:
    """A ``vrrpfw`` on PATH that runs this checkout with this interpreter."""
    d = tmp_path_factory.mktemp("bin")
    wrapper = d / "vrrpfw"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m vrrpfw \"$@\"\n")
    wrapper.chmod(0o755)
    return str(d)


def bash_complete(out: str, bindir: str, *words: str) -> Dict[str, List[str]]:
    """COMPREPLY (and compopt's options) for ``words``, the last one being
    completed, as bash's programmable completion calls the function."""
    script = f"""
source {out}/vrrpfw.bash
compopt() {{ local IFS=' '; echo "compopt $*"; }}   # a builtin only inside real completion
COMP_WORDS=({" ".join(_bash_quote(w) for w in words)})
COMP_CWORD={len(words) - 1}
_vrrpfw_completion vrrpfw "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf 'reply %s\\n' "${{COMPREPLY[@]}}"
complete -p vrrpfw
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("_VRRPFW")}
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([tool("bash"), "--norc", "-c", script], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "complete -o nosort -F _vrrpfw_completion vrrpfw"
    return {"reply": [line[6:] for line in lines if line.startswith("reply ") and line[6:]],
            "compopt": [line for line in lines if line.startswith("compopt")]}


def _bash_quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def test_bash_completes_subcommands(out, bindir):
    assert bash_complete(out, bindir, "vrrpfw", "op")["reply"] == ["open"]
    assert sorted(bash_complete(out, bindir, "vrrpfw", "")["reply"]) == sorted(cli.build_command().commands)


def test_bash_completes_options_and_choices(out, bindir):
    assert bash_complete(out, bindir, "vrrpfw", "open", "--backend", "")["reply"] == list(registry.NAMES)
    assert bash_complete(out, bindir, "vrrpfw", "check", "--family", "")["reply"] == ["ipv4", "ipv6", "both"]
    assert bash_complete(out, bindir, "vrrpfw", "close", "--mode", "d")["reply"] == ["direct"]
    assert bash_complete(out, bindir, "vrrpfw", "close", "--remove-s")["reply"] == ["--remove-seed-rules"]
    opts = bash_complete(out, bindir, "vrrpfw", "prove", "--")["reply"]
    assert "--iface" in opts and "--count" in opts and "--persist-file" not in opts


def test_bash_completes_interfaces_and_leaves_files_to_readline(out, bindir):
    assert "lo" in bash_complete(out, bindir, "vrrpfw", "open", "-i", "")["reply"]
    files = bash_complete(out, bindir, "vrrpfw", "open", "--persist-file", "/et")
    assert files == {"reply": [], "compopt": ["compopt -o default"]}


def zsh_complete(out: str, bindir: str, *words: str) -> List[str]:
    script = f"""
compdef() {{ print -r -- "compdef $*"; }}
fpath=({out} $fpath)
autoload -Uz _vrrpfw
compadd() {{ print -r -- "compadd $*"; }}
_files() {{ print -r -- _files; }}
words=({" ".join(_bash_quote(w) for w in words)})
CURRENT={len(words)}
_vrrpfw
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("_VRRPFW")}
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([tool("zsh"), "-f", "-c", script], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


def test_zsh_file_parses_and_completes(out, bindir):
    proc = subprocess.run([tool("zsh"), "-n", os.path.join(out, "_vrrpfw")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    with open(os.path.join(out, "_vrrpfw")) as f:
        assert f.readline() == "#compdef vrrpfw\n"
    assert zsh_complete(out, bindir, "vrrpfw", "cl") == ["compadd -Q -- close"]
    assert zsh_complete(out, bindir, "vrrpfw", "open", "--backend", "") == \
        ["compadd -Q -- " + " ".join(registry.NAMES)]
    assert zsh_complete(out, bindir, "vrrpfw", "open", "--keepalived-conf", "/etc/k") == ["_files"]


def test_zsh_file_registers_itself_when_sourced(out, bindir):
    script = f"compdef() {{ print -r -- \"compdef $*\"; }}\nsource {out}/_vrrpfw"
    proc = subprocess.run([tool("zsh"), "-f", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "compdef _vrrpfw vrrpfw\n" and proc.stderr == ""


def test_the_scripts_are_what_vrrpfw_prints_for_source(out, capsys, monkeypatch):
    for shell, name in (("bash", "vrrpfw.bash"), ("zsh", "_vrrpfw")):
        monkeypatch.setenv("_VRRPFW_COMPLETE", f"{shell}_source")
        assert cli.main([]) == 0
        with open(os.path.join(out, name)) as f:
            assert capsys.readouterr().out == f.read()


@pytest.mark.parametrize("instruction", ["fish_source", "bash", "bash_bogus", "source_bash",
                                         "powershell_complete"])
def test_an_unknown_completion_instruction_is_one_line_exit_2(capsys, monkeypatch, instruction):
    monkeypatch.setenv("_VRRPFW_COMPLETE", instruction)
    assert cli.main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "_VRRPFW_COMPLETE" in err


def test_a_bad_comp_cword_is_one_line_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("_VRRPFW_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "vrrpfw op")
    monkeypatch.setenv("COMP_CWORD", "x")
    assert cli.main([]) == 2
    assert "COMP_CWORD" in capsys.readouterr().err
