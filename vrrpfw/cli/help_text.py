"""What ``vrrpfw --help`` and the man page say, written once.

The help must teach without costing start-up time: nothing here imports
the API, the backends or the path model.  Three things need care:

- The ``--backend`` choices are :data:`vrrpfw.backends.registry.NAMES`, but
  importing the registry pulls in the backend contract and the path model
  (45-75 ms, more than the whole CLI).  :func:`backend_names` reads the
  registry's source instead (``ast``, which ``inspect`` has imported
  already), and imports it only when the source says something it cannot
  read.  A unit test holds the two equal, so a backend added to the
  registry shows up here without a change.
- Exit codes differ per command (close's 0 is "vrrpfw's rules are gone"),
  so each command's list lives in :data:`EXIT_CODES`, rendered into its
  ``--help`` epilog and into the man page's EXIT STATUS.
- ``--persist-file`` says which saved file is edited *on this host*: the
  distribution is read from os-release and each candidate is only looked
  at (exists or not), through :mod:`vrrpfw.persist.locations`, which knows
  the files per layer and family.  The man page, built on another host,
  gets the generic text and the FILES table instead.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
import textwrap
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..errors import (
    EXIT_ENVIRONMENT,
    EXIT_INTERNAL,
    EXIT_NOT_ALLOWED,
    EXIT_NOTHING_HEARD,
    EXIT_OK,
    EXIT_USAGE,
    TRACEBACK_ENV,
)

FAMILIES = ("ipv4", "ipv6", "both")
PROVE_FAMILIES = ("ipv4", "ipv6")  # a replay covers one family
MODES = ("auto", "direct", "zone")  # firewalld; request.MODES validates the same (tested)

_REGISTRY = "vrrpfw.backends.registry"


# ---------------------------------------------------------------- backends

@functools.cache
def backend_names() -> Tuple[str, ...]:
    """``registry.NAMES`` (``auto`` first), without importing the registry
    where its source can be read; read once per process."""
    loaded = sys.modules.get(_REGISTRY)
    if loaded is not None:
        return tuple(loaded.NAMES)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # vrrpfw/
    path = os.path.join(package, "backends", "registry.py")
    names: Optional[Tuple[str, ...]]
    try:
        with open(path, encoding="utf-8") as f:
            names = registry_names(f.read())
    except (OSError, SyntaxError, ValueError):
        names = None
    if names is None:  # a shape the reader does not know: ask the module itself
        import importlib

        return tuple(importlib.import_module(_REGISTRY).NAMES)
    return names


# Top-level lines that may follow the registry's tables without changing what
# names_in_source finds: definitions (and their decorators, closing brackets
# of their signatures), comments and blank lines.
_DEFINITIONS = ("def ", "async def ", "class ", "@", "#", ")", "]", "}")


def tables_head(source: str) -> Optional[str]:
    """The registry's source before its first top-level ``def`` or
    ``class``, where the rest can change nothing :func:`names_in_source`
    reads; None where it might (or there is no definition to cut at).

    The tables come before any function, and parsing the functions too
    cost ~1 ms per start (every run: the ``--backend`` choices are built at
    import).  Exact: names_in_source acts only on top-level assignments,
    and every top-level statement starts at column 0, so a rest whose
    column-0 lines are all definitions, comments or blank holds none (a
    column-0 line inside a string that looks otherwise only costs the whole
    parse); a cut inside a string or brackets leaves the head unparsable,
    and the caller then parses the whole source."""
    lines = source.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(("def ", "async def ", "class ", "@")):
            if all(not rest.strip() or rest.startswith(_DEFINITIONS) or rest[0] in " \t"
                   for rest in lines[i:]):
                return "".join(lines[:i])
            return None
    return None


def registry_names(source: str) -> Optional[Tuple[str, ...]]:
    """:func:`names_in_source` of the registry's :func:`tables_head` where
    that reads, else of the whole source."""
    head = tables_head(source)
    if head is not None:
        try:
            names = names_in_source(head)
        except (SyntaxError, ValueError):
            names = None
        if names is not None:
            return names
    return names_in_source(source)


def names_in_source(source: str) -> Optional[Tuple[str, ...]]:
    """``NAMES`` as the registry's source computes it from ``BACKENDS``,
    or None when it uses anything but literals, ``tuple()``/``list()``,
    ``+``, ``*x`` and the keys of ``BACKENDS`` (a dict literal, plus
    ``BACKENDS["x"] = ...`` lines)."""
    tree = ast.parse(source)
    backends: Optional[List[str]] = None
    names_expr: Optional[ast.expr] = None
    for node in tree.body:
        target, value = _assignment(node)
        if target == "BACKENDS" and isinstance(value, ast.Dict):
            keys = [_const(k) for k in value.keys]
            if any(k is None for k in keys):
                return None
            backends = [str(k) for k in keys]
        elif target == "BACKENDS":
            return None
        elif target == "NAMES":
            names_expr = value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            sub = node.targets[0]
            if (isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name)
                    and sub.value.id == "BACKENDS"):
                key = _const(sub.slice)  # an expression since Python 3.9
                if key is None or backends is None:
                    return None
                backends.append(str(key))
    if backends is None or names_expr is None:
        return None
    values = _evaluate(names_expr, backends)
    if values is None or not all(isinstance(v, str) for v in values):
        return None
    return tuple(values)


def _assignment(node: ast.stmt) -> Tuple[Optional[str], Optional[ast.expr]]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _const(node: Optional[ast.expr]) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _evaluate(node: ast.expr, backends: List[str]) -> Optional[List[Any]]:
    if isinstance(node, ast.Name) and node.id == "BACKENDS":
        return list(backends)
    if isinstance(node, (ast.Tuple, ast.List)):
        out: List[Any] = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                inner = _evaluate(elt.value, backends)
                if inner is None:
                    return None
                out += inner
            elif _const(elt) is not None:
                out.append(_const(elt))
            else:
                return None
        return out
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("tuple", "list")
            and len(node.args) == 1 and not node.keywords):
        return _evaluate(node.args[0], backends)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _evaluate(node.left, backends), _evaluate(node.right, backends)
        return None if left is None or right is None else left + right
    return None


def choices_metavar(values: Iterable[str]) -> str:
    """``auto|iptables|nftables``: the metavar of an option with a fixed set
    of values, the same on every typer (they print ``[a|b]``, ``<a|b>`` or,
    rebuilt for a new click, nothing)."""
    return "|".join(values)


# ---------------------------------------------------------------- exit codes

_INTERNAL = (EXIT_INTERNAL, "internal error (a vrrpfw bug): the state is unknown, run `vrrpfw check`; "
                            f"{TRACEBACK_ENV}=1 shows the traceback")
_USAGE = (EXIT_USAGE, "bad usage or input (an option, interface name, address, keepalived "
                      "configuration or --persist-file); nothing was changed")

# command -> its codes, in order.  The top-level help gets "vrrpfw".
EXIT_CODES: Dict[str, Tuple[Tuple[int, str], ...]] = {
    "vrrpfw": (
        (EXIT_OK, "VRRP allowed (open, check) or vrrpfw's rules gone (close)"),
        (EXIT_NOT_ALLOWED, "something missing, shadowed, uncertain, not persisted, or only partly done"),
        (EXIT_USAGE, "bad usage or input; nothing was changed"),
        (EXIT_ENVIRONMENT, "backend unavailable or environment problem (not root, lock timeout, a saved "
                           "file that does not parse); nothing was changed"),
        (EXIT_INTERNAL, f"internal error (a vrrpfw bug; {TRACEBACK_ENV}=1 shows the traceback)"),
        (EXIT_NOTHING_HEARD, "check --listen: no advert heard on any interface"),
    ),
    "open": (
        (EXIT_OK, "VRRP is allowed in and out and persisted (unless --no-persist), or nothing on this host "
                  "filters VRRP; with --dry-run: would be"),
        (EXIT_NOT_ALLOWED, "a rule is still missing, shadowed or uncertain, another firewall layer still "
                           "drops VRRP, a saved file cannot hold the rule (not persisted), or only part was "
                           "done: a layer or saved file failed after something else changed (the output "
                           "names what each layer did); with --dry-run --prove: the replay says adverts "
                           "would still be dropped"),
        _USAGE,
        (EXIT_ENVIRONMENT, "backend unavailable or environment problem (not root, a firewall vrrpfw cannot "
                           "read, lock timeout, a saved file that does not parse or restore, the replay "
                           "could not be built or cannot tell); nothing was changed"),
        _INTERNAL,
    ),
    "check": (
        (EXIT_OK, "every rule is allowed (by vrrpfw's rule, another rule or the chain policies) and "
                  "persisted (unless --no-persist); with --listen: every advert heard was delivered"),
        (EXIT_NOT_ALLOWED, "a rule is missing, shadowed, uncertain or not persisted, another firewall layer "
                           "drops VRRP, vrrpfw has no rules to check, or the --prove replay contradicts "
                           "the verdict; with --listen: adverts dropped here, TTL not 255, a wrong group, "
                           "a VRID conflict, fragmented adverts, a capture overflow, or an interface "
                           "heard nothing"),
        (EXIT_USAGE, "bad usage or input; nothing is changed anyway"),
        (EXIT_ENVIRONMENT, "cannot tell: not root, a firewall vrrpfw cannot read, backend unavailable, a "
                           "saved file that does not parse, the replay could not be built or cannot tell, "
                           "no such interface to listen on"),
        _INTERNAL,
        (EXIT_NOTHING_HEARD, "--listen only: no advert heard on any interface (the peer or the network; "
                             "a master hears nothing from silent backups)"),
    ),
    "close": (
        (EXIT_OK, "vrrpfw's rules are gone, at runtime and from the saved files (unless --no-persist), or "
                  "there were none: close is idempotent and never removes anyone else's rule; with "
                  "--dry-run: would be"),
        (EXIT_NOT_ALLOWED, "some of vrrpfw's rules are still there, at runtime or in a saved file: a layer "
                           "or saved file failed after something else changed (the output names what each "
                           "layer did)"),
        _USAGE,
        (EXIT_ENVIRONMENT, "backend unavailable or environment problem (not root, lock timeout, a saved "
                           "file that does not parse); nothing was changed"),
        _INTERNAL,
    ),
    "prove": (
        (EXIT_OK, "after open, every advert gets through both ways in the replica"),
        (EXIT_NOT_ALLOWED, "some do not, or after open could not be measured"),
        (EXIT_USAGE, "bad usage or input"),
        (EXIT_ENVIRONMENT, "not root, a tool missing, or an interface without a result: cannot tell "
                           "(its path holds what the replica does not rebuild: a bridge port, bridge "
                           "filtering on a bridge it cannot rebuild, tc or XDP) or the replica could "
                           "not be built; the host's firewall is only read"),
        _INTERNAL,
    ),
    "backends": (
        (EXIT_OK, "the report, and what auto would use"),
        (EXIT_USAGE, "bad usage"),
        (EXIT_ENVIRONMENT, "auto cannot decide: a firewall vrrpfw cannot read (not root), or firewalld's "
                           "table without firewalld on the bus"),
        _INTERNAL,
    ),
}

WIDTH = 78  # click's help is at most 80 columns wide


def exit_codes_epilog(command: str) -> str:
    """The ``Exit codes:`` block of a command's help: click's ``\\b``
    keeps it as laid out here (one code a line, hanging indent)."""
    lines = ["\b", "Exit codes:"]
    for code, text in EXIT_CODES[command]:
        lines += textwrap.wrap(text, WIDTH - 4, initial_indent=f"  {code}  ", subsequent_indent="     ")
    return "\n".join(lines)


# ---------------------------------------------------------------- environment

# variable -> what it does (the man page's ENVIRONMENT, the top-level help)
ENVIRONMENT: Tuple[Tuple[str, str], ...] = (
    (TRACEBACK_ENV, "set to 1 to print the traceback of an internal error (exit 4)"),
    ("VRRPFW_LOCK_DIR", "directory of vrrpfw's lock files, one per saved file: an absolute path that "
     "is no symlink, whose parents are all owned by root and writable by nobody else (not /tmp) "
     "(default /run/vrrpfw)"),
    ("VRRPFW_DBUS_TIMEOUT", "seconds to wait for each firewalld D-Bus call, at least 0.001 and at most "
     "3600 (default 15)"),
    ("XTABLES_LOCKFILE", "the xtables lock vrrpfw takes like iptables does: an absolute path, never "
     "followed if a symlink, a regular file owned by root (default /run/xtables.lock)"),
    ("DBUS_SYSTEM_BUS_ADDRESS", "the system bus firewalld is looked for on"),
)


def environment_epilog() -> str:
    lines = ["\b", "Environment:"]
    for name, text in ENVIRONMENT:
        lines.append(f"  {name}")
        lines += textwrap.wrap(text, WIDTH - 4, initial_indent="     ", subsequent_indent="     ")
    return "\n".join(lines)


# ---------------------------------------------------------------- saved files

# persist.locations kind -> what keeps its rules there
SAVED_KINDS: Dict[str, str] = {
    "iptables": "IPv4 iptables, legacy or iptables-nft",
    "ip6tables": "IPv6 ip6tables, legacy or iptables-nft",
    "nftables": "native nftables chains",
}
FIREWALLD_SAVED = "firewalld: its permanent configuration, through firewalld (no file)"
# ufw keeps vrrpfw's lines in its own files, on every distribution
# (vrrpfw.persist.ufw_rules.default_path; importing it would import the
# backend contract, too heavy for --help: a unit test holds them equal).
UFW_SAVED = (("/etc/ufw/before.rules", "ufw IPv4"), ("/etc/ufw/before6.rules", "ufw IPv6"))
UFW_ABSENT = "ufw's files are ufw's own: vrrpfw refuses to run without them (exit 3)"

# what each command does with the file (help) and with a default file that is absent
_VERBS = {
    "open": ("Saved ruleset to edit", "open does not create it: it reports the rules not persisted (exit 1)"),
    "check": ("Saved ruleset to check", "check reports the rules not persisted (exit 1)"),
    "close": ("Saved ruleset to remove vrrpfw's lines from", "close has nothing to remove from it"),
}


def _locations() -> Any:
    from ..persist import locations

    return locations


def _kinds() -> List[str]:
    """The kinds of saved file persist.locations knows (new ones included)."""
    return list(getattr(_locations(), "_KINDS", SAVED_KINDS))


def saved_files_here(root: str = "/") -> Tuple[Optional[str], List[Tuple[str, str, bool]]]:
    """(distribution family, [(path, what keeps rules there, exists)]) of
    the iptables and nftables files on this host; no family (and no files)
    when os-release is not one vrrpfw knows."""
    loc = _locations()
    family = loc.detect_family(root)
    if family is None:
        return None, []
    table = getattr(loc, "_KINDS", {})
    out = []
    for kind in _kinds():  # the path locations.choose(None, root, kind) takes, without its
        entry = table.get(kind, {}).get(family)  # restorer lookup (ufw's note imports hostscan)
        if entry is not None:
            path = os.path.join(root, entry[0].lstrip("/"))
            out.append((path, SAVED_KINDS.get(kind, kind), os.path.isfile(path)))
    return family, out


def ufw_files_here(root: str = "/") -> List[Tuple[str, str, bool]]:
    """ufw's files, where ufw is one of the backends and installed here
    (its /etc/ufw/ufw.conf exists): on a host without ufw they are noise."""
    if "ufw" not in backend_names() or not os.path.isfile(os.path.join(root, "etc/ufw/ufw.conf")):
        return []
    return [(path, what, os.path.isfile(path))
            for path, what in ((os.path.join(root, p.lstrip("/")), w) for p, w in UFW_SAVED)]


def saved_files_all() -> List[Tuple[str, str]]:
    """[(path, what keeps rules there and on which distributions)] for
    every distribution family persist.locations knows, and ufw's: the man
    page's FILES."""
    loc = _locations()
    table = getattr(loc, "_KINDS", {})
    out = []
    for kind in _kinds():
        for family, entry in table.get(kind, {}).items():
            out.append((entry[0], f"{SAVED_KINDS.get(kind, kind)} ({family} family)"))
    if "ufw" in backend_names():
        out += [(path, f"{what} (every distribution)") for path, what in UFW_SAVED]
    return out


def _listed(files: List[Tuple[str, str, bool]]) -> str:
    return ", ".join(f"{path} ({what}{'' if exists else '; absent'})" for path, what, exists in files)


def persist_file_help(command: str, root: Optional[str] = "/") -> str:
    """``--persist-file``'s help: with ``root``, naming the files vrrpfw
    edits by default on that host; without, the generic text (man page)."""
    verb, absent = _VERBS[command]
    text = f"{verb} instead of this host's own"
    firewalld = "firewalld" in backend_names()
    if root is None:
        return (text + ": the distribution's saved rulesets, listed under FILES in vrrpfw(8) (`vrrpfw "
                f"{command} --help` names this host's)."
                + (" firewalld keeps its permanent configuration instead." if firewalld else ""))
    family, files = saved_files_here(root)
    ufw = ufw_files_here(root)
    if family is None:
        text += (". Default on this host: for iptables and nftables none known (os-release names no "
                 "distribution vrrpfw knows: give --persist-file FILE or --no-persist, else persisting "
                 "fails with exit 3)")
    else:
        text += f". Default on this host ({family} family): {_listed(files)}"
    if ufw:
        text += f"; ufw: {_listed(ufw)}"
    if firewalld:
        text += f"; {FIREWALLD_SAVED}"
    text += "."
    if not all(exists for _, _, exists in files):
        text += f" Where an iptables or nftables file is absent, {absent}."
    if not all(exists for _, _, exists in ufw):
        text += f" {UFW_ABSENT}."
    return text
