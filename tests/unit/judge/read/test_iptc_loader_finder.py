"""vrrpfw/judge/read/iptc_loader.py: python-iptables is imported with
vrrpfw's library finder standing in for ctypes.util (which imports shutil
and tempfile), and loads the libraries the standard finder names.  Each
case runs in a fresh interpreter (it imports iptc, so both library ends
run it: no one_end mark)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import vrrpfw

REPO = os.path.dirname(os.path.dirname(vrrpfw.__file__))


def child(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


LIBS = """
        import iptc.ip4tc, iptc.ip6tc, iptc.xtables
        libs = [iptc.ip4tc._libiptc._name, iptc.ip6tc._libiptc._name, iptc.xtables._lib_xtables._name]
"""


def test_loads_iptc_without_ctypes_util_and_the_same_libraries():
    out = child("""
        import ctypes, sys
        from vrrpfw.judge.read.iptc_loader import load_iptc
        load_iptc()
        loaded = sorted(m for m in ("ctypes.util", "shutil", "tempfile", "distutils") if m in sys.modules)
        bound = "util" in vars(ctypes)
    """ + LIBS + """
        import ctypes.util  # the standard finder, asked now
        want = [ctypes.util.find_library(n) for n in ("ip4tc", "ip6tc", "xtables")]
        print(loaded, bound, libs == want, libs)
    """)
    assert out.startswith("[] False True"), out


def test_a_library_the_index_misses_goes_to_the_standard_finder():
    """The index answering nothing (no library directory): the essential
    libraries come from the real ctypes.util, imported then, and left
    imported as a normal import leaves it."""
    out = child("""
        import ctypes, sys
        from vrrpfw.judge.read import iptc_loader as L
        L._lib_dirs = lambda: []
        L.load_iptc()
        real = sys.modules["ctypes.util"]
        print(real.__file__.endswith("util.py"), ctypes.util is real, hasattr(real, "find_loaded_library")
              or hasattr(real, "_findLib_ld"))
    """)
    assert out == "True True True", out


def test_an_imported_ctypes_util_is_used_and_left_as_it_was():
    out = child("""
        import ctypes.util, sys
        module, finder = ctypes.util, ctypes.util.find_library
        from vrrpfw.judge.read.iptc_loader import load_iptc
        load_iptc()
        print(sys.modules["ctypes.util"] is module, ctypes.util is module, ctypes.util.find_library is finder)
    """)
    assert out == "True True True", out
