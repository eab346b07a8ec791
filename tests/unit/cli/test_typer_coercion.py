"""Options are converted without typer's pydantic adapters (100-200 ms of
start-up on typer 0.2x), and conversion still refuses bad values."""

import subprocess
import sys

import pytest

from vrrpfw.cli.typer_coercion import _base

PROBE = """
import sys
from vrrpfw.cli import entry as cli
rc = cli.main(sys.argv[1:])
print("adapters" if "typer._adapters" in sys.modules else "plain", rc)
"""


def run(*argv):
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
    return proc.stdout.split()[-2:], proc.stderr


@pytest.mark.parametrize("argv, rc", [
    (["open", "--help"], "0"),
    (["check", "--help"], "0"),
    (["open", "--iface", "eth0", "--lock-timeout", "soon"], "2"),
    (["prove", "--iface", "eth0", "--count", "x"], "2"),
])
def test_no_pydantic_adapter_and_bad_values_refused(argv, rc):
    (how, code), err = run(*argv)
    assert (how, code) == ("plain", rc), err
    if rc == "2":
        assert "is not a valid" in err and len(err.strip().splitlines()) == 1


def test_base_types():
    from typing import List, Optional
    assert _base(str) is str and _base(Optional[List[str]]) is str and _base(float) is float
    assert _base(Optional[int]) is int and _base(dict) is None
