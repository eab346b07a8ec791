"""README's Security section names every environment variable vrrpfw reads
(admins write sudoers rules from it), and the read limits it states are
the code's."""

from __future__ import annotations

import os
import re

import pytest

from vrrpfw.cli.completion import COMPLETE_VAR
from vrrpfw.errors import TRACEBACK_ENV
from vrrpfw.keepalived import reader as keepalived_reader
from vrrpfw.persist import files, nft_conf

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def security_section() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return text.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]


def variables_read() -> set:
    names = {TRACEBACK_ENV, COMPLETE_VAR, "SUDO_UID", "SUDO_GID", "PATH"}
    for top, _, fnames in os.walk(os.path.join(ROOT, "vrrpfw")):
        for fname in fnames:
            if fname.endswith(".py"):
                with open(os.path.join(top, fname), encoding="utf-8") as f:
                    src = f.read()
                names |= set(re.findall(r"""os\.environ(?:\.get\(|\[|\.pop\()\s*["']([A-Z_]+)["']""", src))
                names |= set(re.findall(r"""["']([A-Z_]+)["'] (?:not )?in os\.environ""", src))
                # Names kept in constants (vrrpfw/environment.py: DBUS_TIMEOUT_VAR = "...").
                names |= set(re.findall(r"""^[A-Z_]+_(?:VAR|ENV)\s*=\s*["']([A-Z_]+)["']""", src, re.M))
    return names


def test_every_variable_is_in_the_security_section() -> None:
    section = security_section()
    missing = sorted(n for n in variables_read() if f"`{n}`" not in section)
    assert not missing
    assert {"VRRPFW_DBUS_TIMEOUT", "VRRPFW_LOCK_DIR", "XTABLES_LOCKFILE", "DBUS_SYSTEM_BUS_ADDRESS",
            "LD_LIBRARY_PATH", "XTABLES_LIBDIR"} <= variables_read()


def test_the_limits_stated_are_the_codes() -> None:
    section = " ".join(security_section().split())
    assert keepalived_reader.MAX_FILE_BYTES == 1 << 20 and "larger than 1 MiB" in section
    assert keepalived_reader.MAX_TOTAL_BYTES == 8 << 20 and "larger than 8 MiB" in section
    assert keepalived_reader.MAX_READS == 256 and "more than 256 file reads" in section
    assert keepalived_reader.MAX_GLOB_MATCHES == 256 and "more than 256 files" in section
    assert files.MAX_READ_BYTES == 64 << 20 and "larger than 64 MiB" in section
    assert nft_conf.MAX_INCLUDE_READS == 256
