"""Import python-iptables without its start-up tax.

Measured on Debian 12: ``import iptc`` takes ~0.2 s, of which ~0.14 s is
``distutils.sysconfig`` (pulled in for one fallback path) and most of the
rest is ``ctypes.util.find_library`` running ``ldconfig -p`` and even
``gcc`` for every library name it tries, plus an ``ldconfig`` run to find
``XTABLES_LIBDIR``.  During the import only, we answer those questions from
the standard library directories; anything we cannot answer falls back to
the original, slow path, so behaviour is unchanged where our guess misses.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import sysconfig
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple


@functools.lru_cache(maxsize=1)
def _lib_dirs() -> List[str]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = os.environ.get("LD_LIBRARY_PATH", "").split(":")
    dirs += [f"/usr/lib/{multiarch}", f"/lib/{multiarch}"] if multiarch else []
    dirs += ["/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/lib"]
    return [d for d in dirs if d and os.path.isdir(d)]


@functools.cache
def _entries(directory: str) -> List[str]:
    """A library directory's names, sorted, read once (a glob per library
    name re-reads /usr/lib/<multiarch>: 45 ms of start-up on Python 3.13)."""
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


@functools.cache
def _first_by_name(directory: str) -> Dict[str, str]:
    """``name`` -> the first of ``directory``'s sorted entries that starts
    with ``lib<name>.so.``, for every name an entry could answer: one pass
    over the listing instead of one per library asked (~2,000 entries in
    /usr/lib/<multiarch>; 9 names asked per start: ~2 ms)."""
    first: Dict[str, str] = {}
    for entry in _entries(directory):
        if not entry.startswith("lib"):
            continue
        at = entry.find(".so.", 3)
        while at != -1:  # lib<name>.so. for every ".so." the entry holds
            first.setdefault(entry[3:at], entry)
            at = entry.find(".so.", at + 1)
    return first


def _fast_find_library(original: Callable[[str], Optional[str]]) -> Callable[[str], Optional[str]]:
    essential = {"ip4tc", "ip6tc", "iptc", "xtables", "c"}
    memo: Dict[str, Optional[str]] = {}

    def find(name: str) -> Optional[str]:
        if name in memo:
            return memo[name]
        found: Optional[str] = None
        for d in _lib_dirs():
            hit = _first_by_name(d).get(name)
            if hit is not None:
                found = hit
                break
        if found is None and name in essential:
            found = original(name)
        memo[name] = found
        return found

    return find


def xtables_libdir() -> Optional[str]:
    for d in _lib_dirs() + ["/usr/libexec"]:
        candidate = os.path.join(d, "xtables")
        if os.path.exists(os.path.join(candidate, "libxt_comment.so")):
            return candidate
    return None


# python-iptables is optional at import: only the legacy iptables backend (and
# reading legacy tables beside another backend) needs it.  The RPM cannot
# require it (neither Fedora nor EPEL packages it), and RHEL 8+ and Fedora
# run iptables-nft and firewalld, which vrrpfw handles without libiptc.  Where
# it is missing, what needs it says what to install, in one line.
IPTC_MISSING = ("python-iptables is not installed (the legacy iptables backend needs it: "
                "apt-get install python3-iptables, or pip install python-iptables; "
                "on iptables-nft or firewalld hosts use --backend nftables or firewalld)")


class _FinderWhileImporting:
    """``ctypes.util.find_library`` answered by :func:`_fast_find_library`
    while python-iptables is imported (it asks only then, at the top of its
    modules), put back as it was by :meth:`restore`.

    Where ``ctypes.util`` is not imported yet, a stand-in module that holds
    only ``find_library`` takes its place (``sys.modules`` and the ``ctypes``
    package's attribute) for that moment: ctypes.util imports shutil and
    tempfile (with bz2, lzma and random), 2.9 ms (Python 3.11) to 4.3 ms
    (3.13) of every start that reads legacy rules, for the one function
    vrrpfw answers itself.  A library the index cannot answer goes to the
    real finder, as before: ctypes.util is imported then, and stays."""

    def __init__(self) -> None:
        self.real: Optional[types.ModuleType] = sys.modules.get("ctypes.util")
        self.stand_in: Optional[types.ModuleType] = None
        if self.real is not None:
            self.saved = self.real.find_library
            self.real.find_library = _fast_find_library(self.saved)  # type: ignore[attr-defined]
            return
        self.stand_in = types.ModuleType("ctypes.util")
        self.stand_in.find_library = _fast_find_library(self._standard)  # type: ignore[attr-defined]
        self._put("ctypes.util", self.stand_in)

    @staticmethod
    def _put(name: str, module: Optional[types.ModuleType]) -> None:
        if module is None:
            sys.modules.pop(name, None)
            if "util" in vars(ctypes):
                delattr(ctypes, "util")
        else:
            sys.modules[name] = module
            setattr(ctypes, "util", module)  # noqa: B010 - what `import ctypes.util` binds

    def _standard(self, name: str) -> Optional[str]:
        """The real ``ctypes.util.find_library(name)``."""
        if self.real is None:
            import importlib

            self._put("ctypes.util", None)
            try:
                self.real = importlib.import_module("ctypes.util")
            finally:
                self._put("ctypes.util", self.stand_in)  # until restore(), as iptc's import began
        found: Optional[str] = self.real.find_library(name)
        return found

    def restore(self) -> None:
        if self.stand_in is None:
            self.real.find_library = self.saved  # type: ignore[union-attr]
        elif sys.modules.get("ctypes.util") is self.stand_in:
            self._put("ctypes.util", self.real)


def load_iptc() -> Any:
    """Return the ``iptc`` module, importing it quickly the first time.
    ``ModuleNotFoundError`` (:data:`IPTC_MISSING`) where python-iptables is
    not installed."""
    if "iptc" in sys.modules:
        return sys.modules["iptc"]
    stubs: List[str] = []
    if "distutils.sysconfig" not in sys.modules:
        dist = types.ModuleType("distutils")
        dsys = types.ModuleType("distutils.sysconfig")
        purelib = sysconfig.get_paths()["purelib"]
        dsys.get_python_lib = lambda *a, **k: purelib  # type: ignore[attr-defined]
        dist.sysconfig = dsys  # type: ignore[attr-defined]
        if "distutils" not in sys.modules:
            sys.modules["distutils"] = dist
            stubs.append("distutils")
        sys.modules["distutils.sysconfig"] = dsys
        stubs.append("distutils.sysconfig")
    set_libdir = "XTABLES_LIBDIR" not in os.environ
    if set_libdir:
        libdir = xtables_libdir()
        if libdir:
            os.environ["XTABLES_LIBDIR"] = libdir
        else:
            set_libdir = False
    finder = _FinderWhileImporting()
    try:
        import iptc  # noqa: PLC0415 - the point of this module
    except ModuleNotFoundError as e:
        if e.name != "iptc":
            raise
        raise ModuleNotFoundError(IPTC_MISSING, name="iptc") from None
    finally:
        finder.restore()
        for name in stubs:
            sys.modules.pop(name, None)
        if set_libdir:
            # python-iptables read it at import; don't leak it to children.
            os.environ.pop("XTABLES_LIBDIR", None)
    _only_existing_tables(iptc)
    return iptc


def _only_existing_tables(iptc: Any) -> None:
    """python-iptables decides whether a target is a chain by asking *every*
    table (``Rule.tables``, ``Rule6.tables`` for ip6tables), and asking
    creates the table: reading one INPUT rule would instantiate legacy nat,
    mangle, raw and security tables on the admin's host.  Those new Table
    objects default to autocommit, so when collected they would write back
    their stale snapshot.  Only tables that already exist can hold a chain,
    so we ask only those, and never with autocommit."""
    iptc.Rule.tables = property(_existing(iptc.Table, "/proc/net/ip_tables_names"))
    if hasattr(iptc, "Rule6") and hasattr(iptc, "Table6"):
        iptc.Rule6.tables = property(_existing(iptc.Table6, "/proc/net/ip6_tables_names"))


def _existing(table_cls: Any, proc: str) -> Callable[[Any], List[Any]]:
    cache = getattr(table_cls, "_cache", None)

    def existing(rule: Any) -> List[Any]:
        tables = []
        for name in _existing_table_names(proc):  # read once per process
            if name not in table_cls.ALL:
                continue
            if isinstance(cache, dict) and name in cache:
                tables.append(table_cls(name))
            else:
                tables.append(table_cls(name, autocommit=False))
        return tables

    return existing


@functools.lru_cache(maxsize=2)
def _existing_table_names(proc: str = "/proc/net/ip_tables_names") -> List[str]:
    from ...host.hostscan import legacy_table_names

    return legacy_table_names(proc) or ["filter"]


# -- the ttl / hl match of strict rules ----------------------------------------
#
# python-iptables sets a match's options through libxtables' parser, and
# with iptables 1.8.11 that fails for ttl ("ttl: no such parameter ttl-eq",
# python-iptables issue #353).  The match's data is kernel ABI, stable
# across versions (struct ipt_ttl_info / ip6t_hl_info: u8 mode, u8 value;
# mode 0 is "eq"), so where the parser fails vrrpfw writes the two bytes
# itself and leaves that match out of python-iptables' final check (which
# would re-parse it).  Which way works is found by trying both on a
# throwaway rule, never from a version number.

TTL_EQ = 0
PARSE, RAW = "parse", "raw"


def ttl_match_name(six: bool) -> str:
    return "hl" if six else "ttl"


def match_data(match: Any) -> bytes:
    """The match's two data bytes (mode, value), read from its struct."""
    ptr = match._ptr
    return ctypes.string_at(ctypes.addressof(ptr[0]) + ctypes.sizeof(ptr[0]), 2)


def _set_raw(match: Any, value: int) -> None:
    ptr = match._ptr
    ctypes.memmove(ctypes.addressof(ptr[0]) + ctypes.sizeof(ptr[0]), bytes((TTL_EQ, value)), 2)
    object.__setattr__(match, "_vrrpfw_raw", True)  # plain setattr would parse it as an option


def _build(iptc: Any, rule: Any, six: bool, value: int, way: str) -> Any:
    name = ttl_match_name(six)
    match = rule.create_match(name)
    if way == PARSE:
        match.parse(f"{name}-eq", str(value))
        match.final_check()  # what insert_rule runs: re-parses the options
    else:
        _set_raw(match, value)
    return match


def _probe(iptc: Any, six: bool, way: str) -> bool:
    """Build the match on a throwaway rule and read its bytes back."""
    rule = iptc.Rule6() if six else iptc.Rule()
    rule.protocol = "112"
    return match_data(_build(iptc, rule, six, 255, way)) == bytes((TTL_EQ, 255))


def choose_way(probes: Sequence[Tuple[str, Callable[[], bool]]]) -> Tuple[Optional[str], List[str]]:
    """The first way whose probe says yes, and why the others failed."""
    why: List[str] = []
    for way, probe in probes:
        try:
            if probe():
                return way, why
            why.append(f"{way}: read back other bytes")
        except Exception as e:  # XTablesError, AttributeError, ValueError from python-iptables
            why.append(f"{way}: {e}")
    return None, why


_WAYS: Dict[bool, Tuple[Optional[str], List[str]]] = {}


def ttl_way(iptc: Any, six: bool) -> str:
    """How this python-iptables + libxtables builds the ttl (hl) match:
    through the extension's parser, else by its raw bytes (probed once per
    process)."""
    if six not in _WAYS:
        _WAYS[six] = choose_way([(w, functools.partial(_probe, iptc, six, w)) for w in (PARSE, RAW)])
    way, why = _WAYS[six]
    if way is None:
        from ...errors import BackendError

        raise BackendError(f"python-iptables cannot build the {ttl_match_name(six)} match of --strict "
                           f"here ({'; '.join(why)}); use another backend or leave out --strict")
    return way


def add_ttl_match(iptc: Any, rule: Any, six: bool, value: int) -> Any:
    """``-m ttl --ttl-eq VALUE`` (``-m hl --hl-eq VALUE``) on ``rule``."""
    return _build(iptc, rule, six, value, ttl_way(iptc, six))


def delete(chain: Any, rule: Any) -> None:
    """``chain.delete_rule`` for a rule read from the kernel, except that a
    ttl / hl match skips python-iptables' final check: it re-parses the
    options read back, and with iptables 1.8.11 that parse fails ("hl: no
    such parameter hl-eq") although the rule's bytes are right as read."""
    ttl = {ttl_match_name(False), ttl_match_name(True)}
    if not any(m.name in ttl for m in rule.matches):
        chain.delete_rule(rule)
        return
    if rule.target:
        rule.target.final_check()
    for m in rule.matches:
        if m.name not in ttl:
            m.final_check()
    chain.table.delete_entry(chain.name, rule.rule, rule.mask)


def insert(chain: Any, rule: Any, position: int = 0) -> None:
    """``chain.insert_rule``, except that a match whose bytes vrrpfw wrote
    skips python-iptables' final check (it would re-parse, and fail, where
    the parser is what failed)."""
    if not any(getattr(m, "_vrrpfw_raw", False) for m in rule.matches):
        chain.insert_rule(rule, position)
        return
    if rule.target:
        rule.target.final_check()
    for m in rule.matches:
        if not getattr(m, "_vrrpfw_raw", False):
            m.final_check()
    chain.table.insert_entry(chain.name, rule.rule, position)
