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

import ctypes.util
import functools
import os
import sys
import sysconfig
import types
from typing import Any, Callable, Dict, List, Optional


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


def _fast_find_library(original: Callable[[str], Optional[str]]) -> Callable[[str], Optional[str]]:
    essential = {"ip4tc", "ip6tc", "iptc", "xtables", "c"}
    memo: Dict[str, Optional[str]] = {}

    def find(name: str) -> Optional[str]:
        if name in memo:
            return memo[name]
        found: Optional[str] = None
        prefix = f"lib{name}.so."
        for d in _lib_dirs():
            hits = [e for e in _entries(d) if e.startswith(prefix)]
            if hits:
                found = hits[0]
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


def load_iptc() -> Any:
    """Return the ``iptc`` module, importing it quickly the first time."""
    if "iptc" in sys.modules:
        return sys.modules["iptc"]
    saved_find = ctypes.util.find_library
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
    ctypes.util.find_library = _fast_find_library(saved_find)  # type: ignore[assignment]
    try:
        import iptc  # noqa: PLC0415 - the point of this module
    finally:
        ctypes.util.find_library = saved_find
        for name in stubs:
            sys.modules.pop(name, None)
        if set_libdir:
            # python-iptables read it at import; don't leak it to children.
            os.environ.pop("XTABLES_LIBDIR", None)
    _only_existing_tables(iptc)
    return iptc


def _only_existing_tables(iptc: Any) -> None:
    """python-iptables decides whether a target is a chain by asking *every*
    table (``Rule.tables``), and asking creates the table: reading one INPUT
    rule would instantiate legacy nat, mangle, raw and security tables on
    the admin's host.  Those new Table objects default to autocommit, so
    when collected they would write back their stale snapshot.  Only tables
    that already exist can hold a chain, so we ask only those, and never
    with autocommit."""
    table_cls = iptc.Table
    cache = getattr(table_cls, "_cache", None)

    def existing(rule: Any) -> List[Any]:
        tables = []
        for name in _existing_table_names():  # read once per process
            if name not in table_cls.ALL:
                continue
            if isinstance(cache, dict) and name in cache:
                tables.append(table_cls(name))
            else:
                tables.append(table_cls(name, autocommit=False))
        return tables

    iptc.Rule.tables = property(existing)


@functools.lru_cache(maxsize=1)
def _existing_table_names() -> List[str]:
    from ..hostscan import legacy_table_names

    return legacy_table_names() or ["filter"]
