"""The help and completion on every venv packaging/setup.sh builds (Debian
12's typer 0.7, the newest typer with its vendored click, Python 3.9, and
the odd typer/click pairs of test_cli_pairs.py): the click command tree
main() runs is walked in each, and must hold the same options with the
same metavars (words and choices, never a type name) and the same help
records; the completion protocol gives the same answers.  A missing venv
skips, except under VRRPFW_REQUIRE_INTEGRATION=1, where it fails (.venv-py39
only where setup.sh builds it: tests/venvs.py)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, List, Optional

import pytest
from venvs import REPO, built_here, python_of

from vrrpfw.backends import registry

VENVS = built_here((".venv-debian", ".venv-newest", ".venv-py39", ".venv-typer07-clicknew",
                    ".venv-typer015-click82"))

WALK = r"""
import json, warnings
warnings.simplefilter("ignore")
from vrrpfw.cli import commands as cli
from vrrpfw.cli import entry
for root in (%s):
    tree = {}
    for name, cmd in root.commands.items():
        ctx = cmd.context_class(cmd, info_name=name)
        tree[name] = [[p.opts, p.metavar, bool(p.is_flag), list(p.get_help_record(ctx))]
                      for p in cmd.params if getattr(p, "opts", None)]
    print(json.dumps(tree, sort_keys=True))
"""
# typer's own tree (get_command) where it builds sound options for the click
# beside it; on the odd pairs only main()'s tree (what _sound_command repairs).
SOUND_TYPER = built_here((".venv-debian", ".venv-newest", ".venv-py39"))


def run_in(venv: str, code: List[str], env: Optional[Dict[str, str]] = None) -> str:
    python = python_of(venv)
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and not k.startswith("_VRRPFW")}
    full.update(env or {}, PYTHONPATH=REPO)
    proc = subprocess.run([python, *code], capture_output=True, text=True, env=full, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def trees() -> Dict[str, Any]:
    return {}


@pytest.mark.parametrize("venv", VENVS)
def test_the_option_tree_is_the_same_and_speaks_in_words(venv, trees):
    roots = "entry.build_command(), cli.typer.main.get_command(cli.app)" if venv in SOUND_TYPER \
        else "entry.build_command(),"
    trees_here = [json.loads(line) for line in run_in(venv, ["-c", WALK % roots]).splitlines()]
    main_tree = trees_here[0]
    trees[venv] = main_tree
    for tree in trees_here:
        assert set(tree) == {"open", "check", "close", "prove", "backends"}
        for name, options in tree.items():
            for opts, metavar, is_flag, (decl, _help) in options:
                if is_flag:
                    assert metavar is None and decl == ", ".join(opts), (venv, name, opts)
                    continue
                assert metavar and metavar.upper() not in ("TEXT", "INTEGER", "FLOAT"), (venv, name, opts)
                assert decl.endswith(f" {metavar}") and all(o in decl for o in opts), (venv, name, decl)
                assert "<" not in metavar and "list[" not in metavar and "TEXT" not in decl
                if opts[0] == "--backend":
                    assert metavar == "|".join(registry.NAMES)
    first = next(iter(trees.values()))
    assert main_tree == first, f"{venv} builds other options or help than {next(iter(trees))}"


@pytest.mark.parametrize("venv", VENVS)
@pytest.mark.parametrize("words, cword, want", [
    ("vrrpfw op", 1, ["plain,open"]),
    ("vrrpfw open --backend ", 3, [f"plain,{n}" for n in registry.NAMES]),
    ("vrrpfw close --family i", 3, ["plain,ipv4", "plain,ipv6"]),
    ("vrrpfw prove --family ", 3, ["plain,ipv4", "plain,ipv6"]),
    ("vrrpfw check --mo", 2, ["plain,--mode"]),
    ("vrrpfw open --keepalived-conf /et", 3, ["file,/et"]),
    ("vrrpfw open -i l", 3, ["plain,lo"]),
])
def test_completion_answers_the_same_on_every_venv(venv, words, cword, want):
    out = run_in(venv, ["-m", "vrrpfw"], {"_VRRPFW_COMPLETE": "bash_complete", "COMP_WORDS": words,
                                          "COMP_CWORD": str(cword)})
    assert out.splitlines() == want


@pytest.mark.parametrize("venv", VENVS)
def test_choices_reach_the_command_as_plain_words_on_every_venv(venv):
    """typer hands an Enum member to the command; what it says must read
    ``nftables``, never ``Backend.nftables``."""
    python = python_of(venv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and not k.startswith("_VRRPFW")}
    env["PYTHONPATH"] = REPO
    proc = subprocess.run([python, "-m", "vrrpfw", "open", "-i", "eth0", "--backend", "nftables", "--mode",
                           "zone"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "vrrpfw: error: --mode applies to firewalld only, not to --backend nftables\n"
