"""The one way vrrpfw runs a host tool: argv in, (exit code, stdout,
stderr) out, with a tool that could not start and a time-out told apart
from a failure, so callers map each to their own message instead of
catching OSError and SubprocessError everywhere.

The one error mapping, whatever the tool (nft, iptables-restore, ipset,
ip, unshare, ...):

- the tool could not start: ``missing`` (not installed: ENOENT, exit 127)
  or ``Ran.exc`` the OSError (exit 126: not executable, ...);
- it ran and failed: ``code`` non-zero, its complaint in ``err``;
- it did not finish in time: ``timed_out`` (killed; exit 124).

``Ran.exc`` keeps the exception itself, so a caller that words its
message from it (``str(exc)``, ``exc.strerror``) says what it said before.
:func:`spawn` starts a long-running child (a capture, a listener in a
namespace) the same way; ``vrrpfw.netns`` registers those it must kill.
"""

from __future__ import annotations

import subprocess
from typing import IO, Dict, Optional, Sequence, Union

from vrrpfw.record import field, record

# What a child's standard stream is connected to (subprocess.PIPE, DEVNULL, a file, None: ours).
Stream = Union[None, int, IO]


@record(frozen=True)
class Ran:
    """What a tool did.  ``missing``: not installed (nothing ran);
    ``timed_out``: killed after the time-out; ``exc``: the exception that
    stopped it from starting or finishing (None where it ran to its end)."""

    code: int
    out: str = ""
    err: str = ""
    missing: bool = False
    timed_out: bool = False
    exc: Optional[BaseException] = field(default=None, compare=False, repr=False)

    @property
    def started(self) -> bool:
        """Did the tool run (to an exit code or to its time-out)?"""
        return self.exc is None or self.timed_out

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.exc is None

    def raised(self) -> Ran:
        """Self where the tool ran to its exit; else raise what stopped it,
        for callers that let it propagate: the OSError it could not start
        with, or TimeoutError (an OSError) worded as subprocess words it."""
        if isinstance(self.exc, OSError):
            raise self.exc
        if self.timed_out:
            raise TimeoutError(str(self.exc))
        return self


def run(argv: Sequence[str], stdin: Optional[str] = None, timeout: Optional[float] = 60.0,
        env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None, errors: str = "strict") -> Ran:
    """Run ``argv`` (its first word looked up on PATH) in this process's
    namespaces; never raises for a tool that cannot start or a time-out
(``timeout`` None: wait as long as it takes).
    ``errors``: how undecodable output is decoded (``"replace"``: never
    fails on a byte that is not UTF-8)."""
    try:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=cwd, errors=errors)
    except subprocess.TimeoutExpired as e:
        return Ran(124, timed_out=True, exc=e)
    except FileNotFoundError as e:
        return Ran(127, missing=True, exc=e)
    except OSError as e:
        return Ran(126, err=str(e), exc=e)
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def spawn(argv: Sequence[str], env: Optional[Dict[str, str]] = None, stdin: Stream = subprocess.DEVNULL,
          stdout: Stream = subprocess.PIPE, stderr: Stream = subprocess.PIPE) -> subprocess.Popen:
    """Start ``argv`` and return at once (text streams); the caller waits,
    kills or reads it.  Raises OSError where it cannot start."""
    return subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=stderr, text=True, env=env)


class Started:
    r"""A short tool started now through :func:`spawn` and waited for later
    (:meth:`result`), with :func:`run`'s error mapping and time-out: the
    tool may run at most ``timeout`` seconds from its start, however late
    it is collected.  Whoever starts one collects it or :meth:`close`\ s
    it (kill and reap: no zombie, no child left behind)."""

    def __init__(self, argv: Sequence[str], timeout: float = 60.0) -> None:
        import time

        self.argv = list(argv)
        self.timeout = timeout
        self.proc: Optional[subprocess.Popen] = None
        self._ran: Optional[Ran] = None
        self._clock = time.monotonic
        self._deadline = time.monotonic() + timeout
        try:
            self.proc = spawn(self.argv)
        except FileNotFoundError as e:
            self._ran = Ran(127, missing=True, exc=e)
        except OSError as e:
            self._ran = Ran(126, err=str(e), exc=e)

    def result(self) -> Ran:
        """What the tool did (waiting for it to end, or killing it at its
        time-out); the same answer on every call."""
        if self._ran is not None:
            return self._ran
        proc = self.proc
        assert proc is not None
        left = self._deadline - self._clock()
        try:
            out, err = proc.communicate(timeout=left if left > 0 or proc.poll() is None else None)
        except subprocess.TimeoutExpired:
            self.close()
            self._ran = Ran(124, timed_out=True, exc=subprocess.TimeoutExpired(self.argv, self.timeout))
            return self._ran
        except BaseException:
            self.close()
            raise
        self._ran = Ran(proc.returncode, out, err)
        return self._ran

    def close(self) -> None:
        """Kill the tool where it still runs and reap it."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# For the code that waits on a spawned child itself (vrrpfw.netns): the
# names it needs, so that only this module imports subprocess.
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
Popen = subprocess.Popen
CompletedProcess = subprocess.CompletedProcess
TimeoutExpired = subprocess.TimeoutExpired
