"""Throw-away network namespaces: the only place ``vrrpfw prove`` (and the
integration tests) ever write firewall rules.

Why this module is this careful: a namespace left behind keeps its rules,
interfaces and processes, and its name shadows nothing but clutters
``ip netns list`` forever.  Every name is registered *before* it is created
and removed on every way out: the context manager's ``finally``, SIGINT and
SIGTERM (``guard_signals``) and ``atexit``.  Names carry our pid and a
counter, so two runs (or a run and a test) never pick the same one.

Work inside a namespace runs as a child process (``ip netns exec NAME ...``);
this process never enters one, so it can never leave its own namespace's
firewall changed by accident.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set

from vrrpfw.record import field, record

from ..errors import EnvironmentProblem
from ..host import run as runner
from ..host.run import CompletedProcess, Popen

# The directory holding the ``vrrpfw`` package: children find it through PYTHONPATH.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_counter = itertools.count()
_lock = threading.RLock()  # re-entrant: a signal handler may run while the main thread holds it
_live: List[str] = []
_children: Set[Popen] = set()
_aborting = threading.Event()


class CommandFailed(EnvironmentProblem):
    """A command inside (or about) a namespace failed; the message is its
    first line of stderr, which is what an admin needs to see."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"{argv[0]} failed ({returncode}): {first_line(stderr or stdout)}")


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no output)"


def unique(prefix: str) -> str:
    """``prefix`` + pid + counter, with a separator so that pid 12 counter 34
    and pid 123 counter 4 differ; short enough for an interface name."""
    name = f"{prefix}{os.getpid() % 100000}-{next(_counter)}"
    if len(name) > 15:
        raise ValueError(f"namespace prefix {prefix!r} is too long")
    return name


def _child_env(extra: Optional[Dict[str, str]]) -> Dict[str, str]:
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + old if old else "")
    env.update(extra or {})
    return env


def _spawn(argv: Sequence[str], env: Dict[str, str], stdin: bool) -> Popen:
    proc = runner.spawn(argv, env, stdin=runner.PIPE if stdin else runner.DEVNULL)
    with _lock:
        _children.add(proc)
    return proc


def _forget(proc: Popen) -> None:
    with _lock:
        _children.discard(proc)


def run_cmd(argv: Sequence[str], stdin: Optional[str] = None, check: bool = True, timeout: float = 60.0,
            env: Optional[Dict[str, str]] = None) -> CompletedProcess:
    """vrrpfw.host.run.run, but the child is registered so a signal can kill it."""
    if _aborting.is_set():
        raise EnvironmentProblem("interrupted")
    proc = _spawn(argv, _child_env(env), stdin is not None)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except runner.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise EnvironmentProblem(f"{argv[0]} did not finish within {timeout:g} s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _forget(proc)
    done = CompletedProcess(list(argv), proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, out, err)
    return done


@record
class Namespace:
    """A named network namespace and how to run things in it."""

    name: str
    env: Dict[str, str] = field(default_factory=dict)

    def command(self, argv: Sequence[str]) -> List[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], stdin: Optional[str] = None, check: bool = True,
            timeout: float = 60.0, env: Optional[Dict[str, str]] = None) -> CompletedProcess:
        return run_cmd(self.command(argv), stdin, check, timeout, {**self.env, **(env or {})})

    def popen(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None,
              stdin: bool = False) -> Popen:
        """A registered child (killed by ``cleanup_all``); call ``release``
        when done with it."""
        if _aborting.is_set():
            raise EnvironmentProblem("interrupted")
        return _spawn(self.command(argv), _child_env({**self.env, **(env or {})}), stdin)

    def ip(self, *args: str, check: bool = True) -> CompletedProcess:
        """``ip -n NAME ...``: no exec of a shell-like wrapper, so cheaper."""
        return run_cmd(["ip", "-n", self.name, *args], check=check)

    def ip_batch(self, lines: Sequence[str]) -> None:
        """Several ``ip`` commands in one process (one fork instead of many)."""
        if lines:
            run_cmd(["ip", "-n", self.name, "-batch", "-"], stdin="\n".join(lines) + "\n")


def release(proc: Popen) -> None:
    """Kill (if still running) and forget a child from ``Namespace.popen``."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(Exception):
        proc.communicate(timeout=5)
    _forget(proc)


def _delete(name: str) -> None:
    runner.run(["ip", "netns", "del", name], timeout=None, errors="replace").raised()
    with _lock:
        if name in _live:
            _live.remove(name)


def create(prefix: str) -> Namespace:
    """A new namespace with a unique name, registered before it exists."""
    for _ in range(5):
        if _aborting.is_set():
            raise EnvironmentProblem("interrupted")
        name = unique(prefix)
        with _lock:
            _live.append(name)
        ran = runner.run(["ip", "netns", "add", name], timeout=None).raised()
        if ran.code == 0:
            return Namespace(name)
        with _lock:
            _live.remove(name)  # not ours: never delete a namespace we did not create
        if "exists" not in ran.err:
            raise EnvironmentProblem(f"cannot create network namespace {name}: {first_line(ran.err)}")
    raise EnvironmentProblem(f"cannot find a free network namespace name for prefix {prefix}")


@contextlib.contextmanager
def namespace(prefix: str = "vrfw") -> Iterator[Namespace]:
    """A fresh namespace with ``lo`` up, deleted on the way out whatever happens."""
    ns = create(prefix)
    try:
        ns.ip("link", "set", "lo", "up")
        yield ns
    finally:
        _delete(ns.name)


def veth(a: Namespace, a_if: str, b: Namespace, b_if: str) -> None:
    """A veth pair created directly inside the two namespaces, so either end
    may carry a name this namespace already uses (the host's own ``eth1``)."""
    run_cmd(["ip", "link", "add", "name", a_if, "netns", a.name, "type", "veth",
             "peer", "name", b_if, "netns", b.name])


def add_addresses(ns: Namespace, ifname: str, cidrs: Sequence[str]) -> None:
    ns.ip_batch([f"addr add {c} dev {ifname}" for c in cidrs])


def link_up(ns: Namespace, ifname: str) -> None:
    ns.ip("link", "set", ifname, "up")


def wait_operstate_up(ns: Namespace, ifname: str, timeout: float = 3.0) -> None:
    """A veth transmits into a no-op qdisc until the kernel's link watcher
    has activated it; packets sent before that vanish, so wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        out = ns.ip("-o", "link", "show", "dev", ifname).stdout
        if "state UP" in out:
            return
        if time.monotonic() > deadline:
            raise EnvironmentProblem(f"{ifname} in {ns.name} did not come up within {timeout:g} s")
        time.sleep(0.01)


def live_names() -> List[str]:
    with _lock:
        return list(_live)


def cleanup_all() -> None:
    """Kill every child we started and delete every namespace we created."""
    with _lock:
        children, names = list(_children), list(_live)
    for proc in children:
        with contextlib.suppress(Exception):
            if proc.poll() is None:
                proc.kill()
    for name in names:
        _delete(name)


atexit.register(cleanup_all)


@contextlib.contextmanager
def guard_signals() -> Iterator[None]:
    """For its duration SIGINT and SIGTERM clean up (children killed,
    namespaces deleted) and then exit 130 / 143 through SystemExit, so
    ``finally`` blocks still run.  Outside the main thread signals cannot be
    handled here; the caller's own handling and ``atexit`` remain."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        _aborting.set()
        cleanup_all()
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
