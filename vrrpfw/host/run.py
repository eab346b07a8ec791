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

import signal
import subprocess
from typing import IO, Dict, List, Optional, Sequence, Union

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


# The most a started tool may print on stdout or on stderr (its RLIMIT_FSIZE,
# set by _limit): far beyond any listing vrrpfw can judge (parsing it would take
# gigabytes), and a bound on what a runaway tool costs while nobody collects it.
MOST_OUTPUT = 256 << 20


def _spool() -> IO[bytes]:
    """An unnamed file in memory (memfd) a started tool writes one stream
    into: unlike a pipe it never fills, so the tool never waits for vrrpfw to
    read.  Raises OSError (or AttributeError: no ``os.memfd_create``) where
    there is none."""
    import os

    return open(os.memfd_create("vrrpfw-tool", os.MFD_CLOEXEC), "r+b")


def _limit(pid: int, most: int) -> None:
    """Stop ``pid`` at ``most`` bytes written to a file (SIGXFSZ), best effort:
    its output goes to files in memory, not to a pipe that would hold it."""
    import resource

    try:
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        if soft == resource.RLIM_INFINITY or soft > most:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (most, hard))
    except (OSError, ValueError):  # already reaped, or not ours to limit: unbounded
        pass


def _below(most: int) -> bool:
    """Is the file-size limit a tool would inherit from vrrpfw (``ulimit
    -f``, systemd's LimitFSIZE=) below ``most``?  Then its output goes to
    pipes, which that limit never cut, rather than to files in memory it
    would cut (a listing vrrpfw read whole before, lost).  Raising it for
    the tool would race the tool (prlimit after its start) or every
    thread's writes (setrlimit on vrrpfw around the spawn)."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return soft != resource.RLIM_INFINITY and soft < most


def _wait(proc: subprocess.Popen, timeout: Optional[float]) -> None:
    """``proc.wait(timeout)``, woken the moment the child ends (a pidfd, as
    ``communicate`` is by its pipes' end) rather than by ``wait``'s polling
    every few milliseconds."""
    import os

    if timeout is None:
        proc.wait()
        return
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (before Linux 5.3): wait() polls
        proc.wait(timeout)
        return
    import select

    try:
        poll = select.poll()
        poll.register(pidfd, select.POLLIN)
        ended = poll.poll(max(0, int(timeout * 1000 + 0.999)))
    finally:
        os.close(pidfd)
    if not ended:
        raise subprocess.TimeoutExpired(proc.args, timeout)
    proc.wait()


class Started:
    r"""A short tool started now through :func:`spawn` and waited for later
    (:meth:`result`), with :func:`run`'s error mapping and time-out: the
    tool may run at most ``timeout`` seconds from its start, however late
    it is collected.  Whoever starts one collects it or :meth:`close`\ s
    it (kill and reap: no zombie, no child left behind).

    Its stdout and stderr go to files in memory (:func:`_spool`), not to
    pipes: a tool printing more than a pipe holds (64 KiB: a large ``nft -j
    list table``) would otherwise stop at the full pipe until vrrpfw reads
    it, and, collected after its time-out because vrrpfw was busy judging,
    be killed as "timed out" although it only waited for vrrpfw.  So the
    time-out counts the tool's own time, as :func:`run`'s does: a tool
    still running at its deadline really ran (or hung) that long, and is
    killed as soon as it is collected, never later than :meth:`result`
    finds it so.  Each stream is bounded at ``most`` bytes (the tool is
    stopped there, see :func:`_limit`, and answers as a failure with no
    output), where a pipe bounded what a runaway tool could cost.  Where
    the system has no memfd, or a file-size limit (``ulimit -f``) below
    ``most`` would cut its output there, pipes as before (that defect
    included)."""

    def __init__(self, argv: Sequence[str], timeout: float = 60.0, most: int = MOST_OUTPUT) -> None:
        import time

        self.argv = list(argv)
        self.timeout = timeout
        self.most = most
        self.proc: Optional[subprocess.Popen] = None
        self._ran: Optional[Ran] = None
        self._clock = time.monotonic
        self._deadline = time.monotonic() + timeout
        self._spools: List[IO[bytes]] = []
        try:
            if not _below(most):
                for _ in range(2):  # one at a time: a failed second one closes the first
                    self._spools.append(_spool())
        except (AttributeError, OSError):
            self._close_spools()
        self._piped = not self._spools
        out, err = self._spools or (subprocess.PIPE, subprocess.PIPE)
        try:
            self.proc = spawn(self.argv, stdout=out, stderr=err)
        except FileNotFoundError as e:
            self._ran = Ran(127, missing=True, exc=e)
        except OSError as e:
            self._ran = Ran(126, err=str(e), exc=e)
        if self.proc is None:
            self._close_spools()
        elif self._spools:
            _limit(self.proc.pid, most)

    def result(self) -> Ran:
        """What the tool did (waiting for it to end, or killing it at its
        time-out); the same answer on every call.  A tool found still
        running past its deadline is killed at once: with nothing to wait
        for but itself, it has had its whole time-out."""
        if self._ran is not None:
            return self._ran
        proc = self.proc
        assert proc is not None
        left = self._deadline - self._clock()
        wait = left if left > 0 or proc.poll() is None else None
        try:
            if self._piped:
                out, err = proc.communicate(timeout=wait)
            else:
                _wait(proc, wait)
                out, err = (self._read(f, proc) for f in self._spools)
        except subprocess.TimeoutExpired:
            self.close()
            self._ran = Ran(124, timed_out=True, exc=subprocess.TimeoutExpired(self.argv, self.timeout))
            return self._ran
        except BaseException:
            self.close()
            raise
        self._close_spools()
        if out is None or err is None:  # ``most`` bytes or more
            code = proc.returncode or -signal.SIGXFSZ  # as when SIGXFSZ stopped it
            why = f"{self.argv[0]}: output reached {self.most} bytes, the most read: stopped"
            self._ran = Ran(code, err=why)
        else:
            self._ran = Ran(proc.returncode, out, err)
        return self._ran

    def _read(self, spool: IO[bytes], proc: subprocess.Popen) -> Optional[str]:
        """A stream's whole text, decoded as ``subprocess`` decodes a text
        pipe (a TextIOWrapper with Popen's encoding and errors: universal
        newlines); None where the tool reached ``most`` bytes (its output cut)."""
        import io
        import os

        if os.fstat(spool.fileno()).st_size >= self.most:
            return None
        spool.seek(0)
        text = io.TextIOWrapper(spool, encoding=getattr(proc, "encoding", None),
                                errors=getattr(proc, "errors", None))
        try:
            return text.read()
        finally:
            text.detach()

    def _close_spools(self) -> None:
        for spool in self._spools:
            spool.close()
        self._spools = []

    def close(self) -> None:
        """Kill the tool where it still runs and reap it."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            if proc.poll() is None:
                proc.kill()
            if self._piped:
                proc.communicate()
            else:
                proc.wait()
        self._close_spools()


# For the code that waits on a spawned child itself (vrrpfw.netns): the
# names it needs, so that only this module imports subprocess.
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
Popen = subprocess.Popen
CompletedProcess = subprocess.CompletedProcess
TimeoutExpired = subprocess.TimeoutExpired
