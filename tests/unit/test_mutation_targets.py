"""tests/mutation.sh and pyproject.toml's [tool.mutmut] name the same
modules, each one that exists, and a module split in two by a pure move
stays mutation-tested in both halves (mutmut mutates only the files
``only_mutate`` lists: a half left out is silently no longer tested)."""

from __future__ import annotations

import os
import re

import pytest

pytestmark = pytest.mark.one_end  # reads files only: tests/one_end_guard.py

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(name: str) -> str:
    with open(os.path.join(REPO, name), encoding="utf-8") as f:
        return f.read()


def only_mutate() -> set:
    """pyproject.toml's only_mutate, as dotted module names (no tomllib: 3.9 lacks it)."""
    block = re.search(r"^only_mutate = \[(.*?)\]", _read("pyproject.toml"), re.M | re.S)
    assert block, "no only_mutate in pyproject.toml"
    return {p[:-3].replace("/", ".") for p in re.findall(r'"([^"]+\.py)"', block.group(1))}


def groups() -> dict:
    """tests/mutation.sh's JUDGE, SAVED and CORE module lists."""
    text = _read("tests/mutation.sh")
    return {g: set(re.search(rf'^{g}="([^"]*)"', text, re.M).group(1).split())  # type: ignore[union-attr]
            for g in ("JUDGE", "SAVED", "CORE")}


def test_every_module_mutmut_mutates_exists():
    missing = [m for m in only_mutate() if not os.path.isfile(os.path.join(REPO, *m.split(".")) + ".py")]
    assert not missing


def test_the_groups_are_what_mutmut_mutates():
    grouped = set().union(*groups().values())
    assert grouped == only_mutate(), (grouped ^ only_mutate())


@pytest.mark.parametrize(("whole", "parts"), [
    # issue 20's splits (pure moves): the rule model, values and per-match
    # tests came out of chaineval; the path model and notrack out of netpath;
    # the file reader and lexer out of keepalived.conf
    ("vrrpfw.judge.chaineval", ("vrrpfw.judge.rules", "vrrpfw.judge.packet_values", "vrrpfw.judge.matches")),
    ("vrrpfw.judge.netpath", ("vrrpfw.judge.path_model", "vrrpfw.judge.notrack")),
    ("vrrpfw.keepalived.conf", ("vrrpfw.keepalived.reader",)),
])
def test_a_split_module_is_mutated_in_every_part(whole, parts):
    mutated = only_mutate()
    assert whole in mutated
    assert not [p for p in parts if p not in mutated]
