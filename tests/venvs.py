"""The virtual environments packaging/setup.sh builds, for the tests that run
vrrpfw under each of them (help, completion, man page, typer/click pairs).

setup.sh builds ``.venv-py39`` only where a Python 3.9 exists (pyenv on the
development image; a bare Debian 12 or 13 has none), so a test asks for it
only there.  Every other venv is always built: a missing one skips, except
under VRRPFW_REQUIRE_INTEGRATION=1 (tests/run.sh as root), where it fails.
VRRPFW_NO_VENVS=1 says the run has none by design: tests/debian13.sh runs the
suite with a Debian 13 root's own python3, where the checkout's venvs (built
on the host's pythons) cannot run.
"""

from __future__ import annotations

import glob
import os
from typing import Sequence, Tuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIRE = os.environ.get("VRRPFW_REQUIRE_INTEGRATION") == "1"
PY39 = ".venv-py39"
PY39_INTERPRETERS = "/root/.pyenv/versions/3.9*/bin/python3.9"  # where setup.sh looks for one
NO_VENVS = os.environ.get("VRRPFW_NO_VENVS") == "1"


def python_path(venv: str) -> str:
    return os.path.join(REPO, venv, "bin", "python")


def built_here(venvs: Sequence[str]) -> Tuple[str, ...]:
    """``venvs`` less .venv-py39 where setup.sh does not build it (none
    under VRRPFW_NO_VENVS=1)."""
    if NO_VENVS:
        return ()
    py39 = bool(glob.glob(PY39_INTERPRETERS)) or os.path.exists(python_path(PY39))
    return tuple(v for v in venvs if v != PY39 or py39)


def python_of(venv: str) -> str:
    """The venv's python; a missing venv skips (fails when required)."""
    python = python_path(venv)
    if not os.path.exists(python):
        message = f"{venv} is missing: run packaging/setup.sh"
        if REQUIRE:
            pytest.fail(f"{message} (VRRPFW_REQUIRE_INTEGRATION=1: skipping is not allowed)")
        pytest.skip(message)
    return python
