"""The house rules of /work/shared/ARCHITECTURE.md that a parser can check,
read from the source with ``ast`` (no vrrpfw module is imported, so a
broken rule fails here, fast, and names the offending module and line).

Every import counts: at module level, inside functions (a function-level
import is a dependency all the same) and under ``if TYPE_CHECKING:``.
Imports by string (``importlib.import_module``: the lazy public names of
``vrrpfw/__init__.py``, the backend registry, ``cli_help``) are not seen.

- no import cycle among vrrpfw's modules;
- ``persist/`` imports nothing from ``backends/`` (a store gets options,
  files and a placement callback);
- the judge (``judge/``) imports no backend, nothing of ``persist/``, and not
  the api, the run, the request or the CLI; outside ``judge/read/`` (which
  reads the kernel) it is pure and imports nothing of ``host/``, the code
  that runs processes (nor ``hostscan``, wherever it lives);
- only ``host/`` runs processes: no other module imports ``subprocess`` or
  calls ``os.system`` / ``os.popen`` / ``os.exec*`` / ``os.spawn*`` /
  ``os.posix_spawn*``.  Allow-list: empty;
- ``api.py`` is a facade of at most 300 lines, and no module is over 600
  (past about 500 a module is usually two: split it along its jobs);
- every import of a vrrpfw module names one that exists.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

PACKAGE = Path(__file__).resolve().parents[2] / "vrrpfw"
# Modules outside host/ allowed to run a process themselves, and why (keep it empty).
SUBPROCESS_ALLOWED: Dict[str, str] = {}
API_MAX_LINES = 300
MODULE_MAX_LINES = 600

Import = Tuple[str, int, str]  # (importing module, line, imported module or name)


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _modules() -> Dict[str, Path]:
    return {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(module: str, path: Path, node: ast.AST, modules: Dict[str, Path]) -> Iterator[str]:
    """What one import statement imports, as module names (``from X import
    y`` is module ``X.y`` where that is a module, else ``X``)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
        return
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".")
        if path.name != "__init__.py":
            base = base[:-1]
        if node.level - 1 >= len(base):  # above vrrpfw: an ImportError when run
            yield f"vrrpfw.<{'.' * node.level}{node.module or ''} climbs above the package>"
            return
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        yield sub if sub in modules else source


@functools.cache
def _imports() -> List[Import]:
    modules = _modules()
    out: List[Import] = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out += [(module, node.lineno, t) for t in _targets(module, path, node, modules)]
    return out


def _owner(target: str, modules: Dict[str, Path]) -> str:
    """The vrrpfw module an imported name lives in (``vrrpfw.a.b.NAME`` -> ``vrrpfw.a.b``)."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _graph() -> Tuple[Dict[str, Set[str]], Dict[Tuple[str, str], int]]:
    modules = _modules()
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    lines: Dict[Tuple[str, str], int] = {}
    for module, line, target in _imports():
        if not _within(target, "vrrpfw"):
            continue
        dep = _owner(target, modules)
        if dep != module and dep in modules and dep != "vrrpfw":  # the package itself: its lazy names
            graph[module].add(dep)
            lines.setdefault((module, dep), line)
    return graph, lines


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    graph, lines = _graph()
    problems = []
    for comp in _cycles(graph):
        edges = [f"{a}:{lines[(a, b)]} imports {b}" for a in comp for b in sorted(graph[a]) if b in comp]
        problems.append("cycle among " + ", ".join(comp) + " (" + "; ".join(edges) + ")")
    assert not problems, "\n".join(problems)


def _forbidden(importer: str, banned: Tuple[str, ...]) -> List[str]:
    modules = _modules()
    return [f"{module}:{line} imports {_owner(target, modules)}" for module, line, target in _imports()
            if _within(module, importer) and any(_within(_owner(target, modules), b) for b in banned)]


def test_persist_imports_nothing_from_backends():
    bad = _forbidden("vrrpfw.persist", ("vrrpfw.backends",))
    assert not bad, "persist/ must not import backends/:\n" + "\n".join(bad)


def test_judge_imports_no_backend_store_or_orchestration():
    bad = _forbidden("vrrpfw.judge", ("vrrpfw.backends", "vrrpfw.persist", "vrrpfw.api", "vrrpfw.run",
                                      "vrrpfw.request", "vrrpfw.cli"))
    assert not bad, "judge/ must not import these:\n" + "\n".join(bad)


def test_pure_judge_runs_no_process():
    bad = [b for b in _forbidden("vrrpfw.judge", ("vrrpfw.host", "vrrpfw.hostscan"))
           if not b.startswith("vrrpfw.judge.read")]
    assert not bad, "judge/ outside judge/read/ is pure: no host/ (process) imports:\n" + "\n".join(bad)


def _process_call(name: str) -> bool:
    return name in ("system", "popen") or name.startswith(("exec", "spawn", "posix_spawn"))


def _runs_process(path: Path) -> Iterator[Tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _within(a.name, "subprocess") or a.name == "asyncio.subprocess":
                    yield node.lineno, f"import {a.name}"
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if _within(node.module, "subprocess") or (node.module == "asyncio" and any(
                    a.name.startswith(("subprocess", "create_subprocess")) for a in node.names)):
                yield node.lineno, f"from {node.module} import ..."
            elif node.module == "os" and any(_process_call(a.name) for a in node.names):
                yield node.lineno, "from os import a process call"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and _process_call(node.attr):
            yield node.lineno, f"os.{node.attr}"


def test_only_host_runs_processes():
    bad = [f"{module}:{line}: {what}" for module, path in _modules().items()
           if not _within(module, "vrrpfw.host") and module not in SUBPROCESS_ALLOWED
           for line, what in _runs_process(path)]
    assert not bad, "only vrrpfw/host/ runs processes (use vrrpfw.host.run):\n" + "\n".join(bad)


def test_every_vrrpfw_import_names_a_module():
    """``from .x import y`` where ``.x`` is no module (a relative import
    left behind by a move) fails only when run: mypy here ignores missing
    imports, and every rule above would read it as the package."""
    modules = _modules()
    bad = [f"{module}:{line} imports {target}" for module, line, target in _imports()
           if _within(target, "vrrpfw") and target not in modules and target.rsplit(".", 1)[0] not in modules]
    assert not bad, "imports of no vrrpfw module:\n" + "\n".join(bad)


def test_api_is_a_facade():
    lines = len((PACKAGE / "api.py").read_text(encoding="utf-8").splitlines())
    assert lines <= API_MAX_LINES, f"vrrpfw/api.py has {lines} lines (at most {API_MAX_LINES}: a facade)"


def test_no_module_is_over_600_lines():
    long = [f"vrrpfw/{path.relative_to(PACKAGE)}: {n} lines"
            for path in _modules().values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MODULE_MAX_LINES]
    assert not long, f"over {MODULE_MAX_LINES} lines (split along their jobs):\n" + "\n".join(long)


def test_the_checks_see_the_package():
    """A rule that sees no module cannot fail: the parser must find the
    package and its imports."""
    modules = _modules()
    assert {"vrrpfw.api", "vrrpfw.host.run"} <= set(modules) and len(modules) > 50, sorted(modules)
    graph, _ = _graph()
    assert "vrrpfw.model" in graph["vrrpfw.judge.rules"]
    assert any(_runs_process(PACKAGE / "host" / "run.py"))


@pytest.mark.parametrize(("module", "relpath", "source"), [
    # vrrpfw/judge/x.py: "..." is beyond vrrpfw (ImportError when run), "...." too
    ("vrrpfw.judge.chaineval", "judge/chaineval.py", "from ...backends import registry"),
    ("vrrpfw.judge.chaineval", "judge/chaineval.py", "from ....backends import registry"),
    ("vrrpfw.judge.read.nft", "judge/read/nft.py", "from ....host import run"),
    ("vrrpfw.api", "api.py", "from .. import model"),
    ("vrrpfw.judge", "judge/__init__.py", "from ... import model"),
])
def test_a_relative_import_beyond_the_package_is_no_vrrpfw_module(module, relpath, source):
    """A relative import that climbs above ``vrrpfw`` (a module moved up a
    level with its dots left as they were) fails only when run: the rule
    that every vrrpfw import names a module must see it, not read it as an
    outside module (three dots in judge/) or as some vrrpfw module (four)."""
    node = ast.parse(source).body[0]
    modules = _modules()
    targets = list(_targets(module, PACKAGE / relpath, node, modules))
    assert targets and all(_within(t, "vrrpfw") and t not in modules and t.rsplit(".", 1)[0] not in modules
                           for t in targets), targets


@pytest.mark.parametrize(("module", "relpath", "source", "want"), [
    ("vrrpfw.judge.chaineval", "judge/chaineval.py", "from ..model import Key", "vrrpfw.model"),
    ("vrrpfw.judge.chaineval", "judge/chaineval.py", "from . import rules", "vrrpfw.judge.rules"),
    ("vrrpfw.judge.read.nft", "judge/read/nft.py", "from ...host import run", "vrrpfw.host.run"),
    ("vrrpfw.judge", "judge/__init__.py", "from .. import model", "vrrpfw.model"),
    ("vrrpfw.api", "api.py", "from . import run", "vrrpfw.run"),
])
def test_relative_imports_within_the_package_resolve(module, relpath, source, want):
    node = ast.parse(source).body[0]
    assert list(_targets(module, PACKAGE / relpath, node, _modules())) == [want]


@pytest.mark.parametrize(("source", "want"), [
    ("import vrrpfw.backends", "vrrpfw.backends"),
    ("import vrrpfw.backends.registry as r", "vrrpfw.backends.registry"),
    ("from vrrpfw import backends", "vrrpfw.backends"),
    ("from vrrpfw.backends import registry", "vrrpfw.backends.registry"),
    ("from vrrpfw.backends.base import Backend", "vrrpfw.backends.base"),
    ("from .. import backends", "vrrpfw.backends"),
])
def test_persist_importing_a_backend_is_seen_however_spelled(source, want):
    """Absolute or relative, the module or a name from it: persist/'s rule
    sees an import of backends/ (``__import__`` and importlib strings are
    not imports to this parser: see the module's docstring)."""
    modules = _modules()
    node = ast.parse(source).body[0]
    targets = list(_targets("vrrpfw.persist.store", PACKAGE / "persist" / "store.py", node, modules))
    assert [_owner(t, modules) for t in targets] == [want]
    assert all(_within(_owner(t, modules), "vrrpfw.backends") for t in targets)
