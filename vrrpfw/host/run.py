"""The one way vrrpfw runs a host tool: argv in, (exit code, stdout,
stderr) out, with a missing tool and a time-out told apart from a failure,
so callers map each to their own message instead of catching OSError
everywhere."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Ran:
    """What a tool did.  ``missing``: not installed (nothing ran);
    ``timed_out``: killed after the time-out."""

    code: int
    out: str = ""
    err: str = ""
    missing: bool = False
    timed_out: bool = False


def run(argv: Sequence[str], stdin: Optional[str] = None, timeout: float = 60.0) -> Ran:
    """Run ``argv`` (its first word looked up on PATH) in this process's
    namespaces; never raises for a missing tool or a time-out."""
    path = shutil.which(argv[0])
    if path is None:
        return Ran(127, missing=True)
    try:
        proc = subprocess.run([path, *argv[1:]], input=stdin, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return Ran(124, timed_out=True)
    except OSError as e:
        return Ran(126, err=str(e))
    return Ran(proc.returncode, proc.stdout, proc.stderr)
