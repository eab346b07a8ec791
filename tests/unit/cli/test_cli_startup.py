"""Start-up: ``vrrpfw --help`` and ``--version`` import neither the API nor
its backends, path model, rich, dbus or iptc.  What this costs in time is
measured by tests/bench/bench_startup.py, never asserted here."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import vrrpfw

REPO = os.path.dirname(os.path.dirname(vrrpfw.__file__))
HEAVY = ("vrrpfw.api", "vrrpfw.run", "vrrpfw.request", "vrrpfw.recorder", "vrrpfw.backends",
         "vrrpfw.backends.base", "vrrpfw.backends.registry",
         "vrrpfw.judge.chaineval", "vrrpfw.judge.netpath", "vrrpfw.model", "vrrpfw.results",
         "vrrpfw.cli.render", "vrrpfw.host.hostscan",
         "rich", "dbus", "iptc", "pydantic")


def loaded_after(code: str) -> list:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout.strip().splitlines()[-1])  # a list literal we printed


@pytest.mark.parametrize("code", [
    "import vrrpfw",
    "import vrrpfw.cli.entry",
    "from vrrpfw import __version__",
    "from vrrpfw.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "from vrrpfw.cli import main\nmain(['--version'])",
    "from vrrpfw.cli import main\nmain([])",
    # each command's help names this host's saved files and the backends' names
    *[f"from vrrpfw.cli import main\nmain([{c!r}, '--help'])" for c in ("open", "check", "close", "prove")],
    # a completion answer, on every TAB
    "import os\nos.environ.update(_VRRPFW_COMPLETE='bash_complete', COMP_WORDS='vrrpfw open --backend ', "
    "COMP_CWORD='3')\nfrom vrrpfw.cli import main\nmain([])",
])
def test_nothing_heavy_is_imported(code):
    assert loaded_after(code) == []


# What only writing a file needs (tempfile: with shutil, bz2, lzma, random) or
# only reading legacy rules through python-iptables (ctypes, whose ctypes.util
# imports shutil and tempfile): 4 to 6 ms of a start on Python 3.13.
WRITE_ONLY = ("tempfile", "shutil", "ctypes", "ctypes.util", "bz2", "lzma", "random")
# The modules allowed to import them at the top: the legacy iptables backend
# and its python-iptables loader, prove/ and listen/ (seconds of work), and
# the typer commands (never on the typer-free path of check/open/close).
WRITE_ONLY_ALLOWED = ("vrrpfw.backends.iptables", "vrrpfw.judge.read.iptc_loader", "vrrpfw.prove",
                      "vrrpfw.listen", "vrrpfw.cli.commands")

EVERY_MODULE = f"""
import gc, importlib, pkgutil, sys
import vrrpfw
state = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count())
for m in pkgutil.walk_packages(vrrpfw.__path__, "vrrpfw."):
    if not m.name.startswith({WRITE_ONLY_ALLOWED!r}) and not m.name.endswith("__main__"):
        importlib.import_module(m.name)
assert (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()) == state, "importing vrrpfw changed gc"
print(sorted(m for m in {WRITE_ONLY!r} if m in sys.modules))
"""


def test_reading_the_firewall_imports_nothing_only_writing_needs():
    """Every module of check's path (every backend but legacy iptables, the
    stores, the readers, the judge, the API and the typer-free CLI) imports
    tempfile, shutil and ctypes only where a file is written or a legacy rule
    is read: ``check`` on nftables, firewalld or ufw writes no file.  And
    importing them leaves the process's garbage collector as it was."""
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", EVERY_MODULE], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_command_still_loads_the_api_when_it_runs():
    assert "vrrpfw.api" in loaded_after("import vrrpfw\nvrrpfw.open")


def test_public_names_resolve_lazily_to_the_real_objects():
    import vrrpfw.api
    import vrrpfw.errors
    import vrrpfw.results

    assert vrrpfw.open is vrrpfw.api.open and vrrpfw.close is vrrpfw.api.close
    assert vrrpfw.InputError is vrrpfw.errors.InputError
    assert vrrpfw.Runtime is vrrpfw.results.Runtime
    for name in vrrpfw.__all__:
        assert getattr(vrrpfw, name) is not None, name
        assert name in dir(vrrpfw)
    with pytest.raises(AttributeError, match="no attribute 'opne'"):
        vrrpfw.opne  # noqa: B018
    namespace: dict = {}
    exec("from vrrpfw import *", namespace)
    assert set(vrrpfw.__all__) <= set(namespace)


def test_version_matches_pyproject():
    with open(os.path.join(REPO, "pyproject.toml")) as f:
        declared = re.search(r'^version = "([^"]+)"', f.read(), re.M)
    assert declared and declared.group(1) == vrrpfw.__version__


def test_backends_is_the_function_even_after_the_subpackage_is_imported():
    code = ("import vrrpfw\nimport vrrpfw.backends.registry\nimport vrrpfw.api\n"
            "from vrrpfw.backends import base\n"
            "assert vrrpfw.backends is vrrpfw.api.backends, vrrpfw.backends\n"
            "assert sys.modules['vrrpfw.backends'].__name__ == 'vrrpfw.backends'\n")
    loaded_after("import sys\n" + code)  # fails the test if an assertion in the child fails


def test_public_names_stay_the_apis_after_every_subpackage_is_imported():
    """A subpackage named like a public function (``backends``, ``listen``)
    must not replace the function when it is imported, before or after the API."""
    code = ("import importlib, pkgutil, vrrpfw\n"
            "for first in (False, True):\n"
            "    if first:\n"
            "        import vrrpfw.api\n"
            "    for m in pkgutil.iter_modules(vrrpfw.__path__):\n"
            "        if m.ispkg:\n"
            "            importlib.import_module('vrrpfw.' + m.name)\n"
            "    for name in vrrpfw.__all__:\n"
            "        if name != '__version__':\n"
            "            want = getattr(importlib.import_module('vrrpfw.' + vrrpfw._LAZY[name]), name)\n"
            "            assert getattr(vrrpfw, name) is want, (name, getattr(vrrpfw, name))\n"
            "            assert callable(vrrpfw.listen) and callable(vrrpfw.backends)\n")
    loaded_after(code)  # fails the test if an assertion in the child fails


@pytest.mark.parametrize("args", [["--version"], ["open", "--iface", "eth0", "--family", "ipv5"]])
def test_python_m_vrrpfw_cli_is_the_command(args):
    """``python -m vrrpfw.cli`` ran the command while the CLI was one module
    (its ``__main__`` guard); the cli/ package keeps it: the same output and
    exit code as ``python -m vrrpfw``."""
    env = dict(os.environ, PYTHONPATH=REPO)
    runs = [subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                           cwd="/") for module in ("vrrpfw", "vrrpfw.cli")]
    assert [(r.returncode, r.stdout, r.stderr) for r in runs[1:]] == [(runs[0].returncode, runs[0].stdout,
                                                                       runs[0].stderr)]
    assert runs[0].returncode in (0, 2) and (runs[0].stdout or runs[0].stderr)


# -- a run builds the command it names, alone --------------------------------------

def _help(command, *path: str) -> str:
    try:  # typer >= 0.26 vendors click
        from typer._click import Context
    except ImportError:
        from click import Context

    ctx = Context(command, info_name="vrrpfw")
    for name in path:
        command = command.commands[name]
        ctx = Context(command, info_name=name, parent=ctx)
    return command.get_help(ctx)


def _option(p) -> tuple:
    return (p.name, p.opts, p.secondary_opts, p.default, p.help, getattr(p, "is_flag", None),
            type(getattr(p, "type", None)).__name__)


@pytest.mark.parametrize("host_root", [None, "/"])
def test_one_command_built_alone_is_the_same_command(host_root):
    """build_command(only=NAME) (what main() runs for ``vrrpfw NAME ...``)
    holds NAME alone, with the same options, help and usage line as in the
    whole group; the group keeps its own options; an unknown name builds
    every command (click then names the unknown one)."""
    from vrrpfw.cli import entry

    whole = entry.build_command(host_root)
    assert sorted(whole.commands) == sorted(("open", "check", "close", "prove", "backends"))
    for name, sub in whole.commands.items():
        alone = entry.build_command(host_root, only=name)
        assert list(alone.commands) == [name]
        assert [p.opts for p in alone.params] == [p.opts for p in whole.params]
        one = alone.commands[name]
        assert [_option(p) for p in one.params] == [_option(p) for p in sub.params]
        assert _help(alone, name) == _help(whole, name)
    assert sorted(entry.build_command(host_root, only="chek").commands) == sorted(whole.commands)
    assert sorted(entry.build_command(host_root, only=None).commands) == sorted(whole.commands)
