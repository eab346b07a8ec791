"""vrrpfw/host/which.py: which() finds what shutil.which finds, PATH by
PATH (it exists so that reading the firewall need not import shutil)."""

from __future__ import annotations

import os
import shutil

import pytest

from vrrpfw.host.which import which


@pytest.fixture
def dirs(tmp_path):
    """a/ holds a runnable ``tool`` and a plain file ``data``; b/ holds a
    directory named ``tool`` and a runnable ``other``; c/ a runnable ``tool``."""
    for d in "abc":
        (tmp_path / d).mkdir()
    for path, mode in (("a/tool", 0o755), ("a/data", 0o644), ("b/other", 0o755), ("c/tool", 0o755)):
        (tmp_path / path).write_text("#!/bin/sh\n")
        os.chmod(tmp_path / path, mode)
    (tmp_path / "b" / "tool").mkdir()
    return tmp_path


def paths(root):
    a, b, c = (str(root / d) for d in "abc")
    return [f"{a}:{b}", f"{b}:{a}", f"{b}:{c}:{a}", f"{c}:{c}:{a}", f"{b}:{b}", f"::{b}", f"{b}::",
            f"{root}/nowhere:{c}", f"{a}/:{c}", "", ":", str(root / "b" / "tool")]


@pytest.mark.parametrize("name", ["tool", "data", "other", "absent", "b/other", "a/tool", "a/data", "b/tool",
                                  "./a/tool"])
def test_same_answer_as_shutil_for_every_path(dirs, monkeypatch, name):
    monkeypatch.chdir(dirs)  # an empty PATH entry and a relative name mean the working directory
    answers = []
    for path in paths(dirs):
        monkeypatch.setenv("PATH", path)
        answers.append((path, which(name), shutil.which(name)))
    assert [(p, ours) for p, ours, _ in answers] == [(p, theirs) for p, _, theirs in answers]
    if name in ("tool", "other"):
        assert any(ours for _, ours, _ in answers)  # the grid finds something


def test_unset_path_is_the_systems_default(dirs, monkeypatch):
    monkeypatch.delenv("PATH", raising=False)
    for name in ("sh", "tool", "nft", "iptables-legacy", "absent-tool"):
        assert which(name) == shutil.which(name)
    assert which("sh") is not None


def test_finds_the_real_tools_as_shutil_does():
    for name in ("sh", "ip", "nft", "iptables", "iptables-legacy-restore", "ebtables-nft", "absent-tool"):
        assert which(name) == shutil.which(name)
