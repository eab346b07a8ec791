"""vrrpfw.host.invoker: who the invoking user is, and whether a message may
show them a file's bytes (the permission bits of the file and every
directory above it, for that uid, gid and groups)."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Iterator

import pytest

from vrrpfw.host import invoker
from vrrpfw.host.invoker import User, may_quote, may_read, quote

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

NOBODY = User(65534, 65534, frozenset({65534}))


def _tree(tmp_path: object, dir_mode: int, file_mode: int, text: str = "secret\n") -> str:
    d = f"{tmp_path}/d"
    os.mkdir(d)
    p = f"{d}/f"
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, file_mode)
    os.chmod(d, dir_mode)
    os.chmod(str(tmp_path), 0o755)
    return p


@pytest.fixture()
def pub() -> Iterator[str]:
    """A directory "others" can reach (pytest's base temp dir is 0700)."""
    d = tempfile.mkdtemp(prefix="vrrpfw-invoker-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d)


def test_root_reads_everything(tmp_path: object) -> None:
    p = _tree(tmp_path, 0o700, 0o600)
    assert may_read(p, User(0, 0, frozenset({0})))


def test_others_bits(pub: str) -> None:
    p = _tree(pub, 0o755, 0o600)
    assert not may_read(p, NOBODY)
    os.chmod(p, 0o644)
    assert may_read(p, NOBODY)
    assert may_read(p, None)  # "anyone": world bits


def test_a_closed_directory_above_hides_a_world_readable_file(pub: str) -> None:
    p = _tree(pub, 0o700, 0o644)
    assert not may_read(p, NOBODY)
    os.chmod(os.path.dirname(p), 0o711)  # search is enough, listing is not needed
    assert may_read(p, NOBODY)


def test_owner_and_group_bits(pub: str) -> None:
    p = _tree(pub, 0o755, 0o640)
    os.chown(p, 1234, 4321)
    assert may_read(p, User(1234, 1, frozenset({1})))
    assert may_read(p, User(999, 1, frozenset({1, 4321})))
    assert not may_read(p, User(999, 1, frozenset({1})))
    os.chmod(p, 0o044)  # the owner's own bits rule for the owner, as in the kernel
    assert not may_read(p, User(1234, 4321, frozenset({4321})))


def test_symlink_to_a_hidden_file_is_hidden(pub: str) -> None:
    p = _tree(pub, 0o700, 0o644)
    link = f"{pub}/link"
    os.symlink(p, link)
    assert not may_read(link, NOBODY)


def test_unsure_means_no(tmp_path: object) -> None:
    assert not may_read(f"{tmp_path}/does-not-exist", NOBODY)


def test_invoking_user_is_sudo_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 0)
    monkeypatch.setenv("SUDO_UID", "65534")
    monkeypatch.setenv("SUDO_GID", "65534")
    u = invoker.invoking_user()
    assert (u.uid, u.gid) == (65534, 65534)
    for bad in ("", "abc", "-1", "1e3", "99999999999", "4294967295", "٣"):
        monkeypatch.setenv("SUDO_UID", bad)
        assert invoker.invoking_user().uid == 0, bad
    monkeypatch.setenv("SUDO_UID", "65534")
    monkeypatch.delenv("SUDO_GID")
    assert invoker.invoking_user().uid == 65534


def test_sudo_uid_counts_only_under_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # A user who sets SUDO_UID=0 themselves gains nothing.
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setenv("SUDO_UID", "0")
    assert invoker.invoking_user().uid == 1000


def test_quote(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _tree(tmp_path, 0o700, 0o600)
    monkeypatch.setattr(invoker, "_audience", lambda: NOBODY)
    assert quote(p, "root:$6$x") == invoker.NOT_SHOWN
    assert quote("<text>", "mine") == "'mine'"  # text the caller handed in
    monkeypatch.setattr(invoker, "_audience", lambda: User(0, 0, frozenset()))
    assert quote(p, "root:$6$x") == "'root:$6$x'"
    assert may_quote(p)
