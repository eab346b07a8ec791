"""The library finder python-iptables is imported with: the one-pass index
answers every name exactly as the first sorted entry starting with
``lib<name>.so.`` did (the per-name scan it replaced)."""

import itertools
import os

import pytest

from vrrpfw.judge.read import iptc_loader as L

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

ENTRIES = [
    "libip4tc.so.2", "libip4tc.so.2.0.0", "libip4tc.so", "libxtables.so.12", "libxtables.so.12.7.0",
    "libc.so.6", "libc.so", "libcap.so.2", "libc.so.so.1", "lib.so.3", "libfoo.so.bar.so.1",
    "libx.so", "ld-linux.so.2", "libnoso.a", "libz.so.1.2", "libz.so.1", "notalib.so.1",
    "lib", "libso.so.1", "libip6tc.so.2", "libfoo.so.bar.so.2",
]


def _linear(entries, name):
    hits = [e for e in sorted(entries) if e.startswith(f"lib{name}.so.")]
    return hits[0] if hits else None


def test_index_answers_every_name_as_the_linear_scan(tmp_path):
    for e in ENTRIES:
        (tmp_path / e).write_text("")
    names = {"", "c", "c.so", "ip4tc", "ip6tc", "xtables", "foo", "foo.so.bar", "z", "so", "x", "noso",
             "cap", "missing", "xtwrapper", "libc", "c.so.so"}
    # every prefix an entry could answer, too
    names |= {e[3:i] for e in ENTRIES for i in range(3, len(e) + 1)}
    index = L._first_by_name.__wrapped__(str(tmp_path))
    for name in sorted(names):
        assert index.get(name) == _linear(ENTRIES, name), name


def test_find_picks_the_first_directory_that_answers(tmp_path, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for d, names in ((one, ["libxtables.so.12"]), (two, ["libxtables.so.10", "libip4tc.so.2"])):
        for n in names:
            (d / n).write_text("")
    monkeypatch.setattr(L, "_lib_dirs", lambda: [str(one), str(two)])
    asked = []
    find = L._fast_find_library(lambda n: asked.append(n) or "from-original")
    assert find("xtables") == "libxtables.so.12"
    assert find("ip4tc") == "libip4tc.so.2"
    assert find("ip6tc") == "from-original"  # essential: the original finder is asked
    assert find("xtwrapper") is None and asked == ["ip6tc"]


def test_the_real_library_directories_answer_as_the_linear_scan():
    for d in L._lib_dirs():
        entries = L._entries(d)
        index = L._first_by_name(d)
        names = {e[3:e.find(".so.", 3)] for e in entries if e.startswith("lib") and ".so." in e[3:]}
        for name in itertools.islice(sorted(names | {"c", "xtables", "ip4tc", "ip6tc", "nope"}), 400):
            assert index.get(name) == _linear(entries, name), (d, name)
    assert os.path.isdir(L._lib_dirs()[0])
