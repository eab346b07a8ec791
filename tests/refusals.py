"""Shared by the tests of refused requests: a refusal is one line on stderr,
exit 2, no traceback, nothing on stdout."""

from __future__ import annotations

from typing import List

import pytest

from vrrpfw.cli import entry as cli


def cli_refuses(capsys: pytest.CaptureFixture, argv: List[str]) -> str:
    """Run the command line; assert it refused in one line; that line."""
    assert cli.main(argv) == 2, argv
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: "), err
    assert "Traceback" not in err and out == ""
    return lines[0]
