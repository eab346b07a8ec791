"""Network-namespace harness: every firewall change a test makes happens in
a namespace the test created, and every namespace is deleted afterwards,
even when the test fails or the run is interrupted.

Test code itself stays in the root namespace and never touches its
firewall; work inside a namespace runs as a child process through
``ip netns exec``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TRAFFIC = os.path.join(HERE, "vrrp_traffic.py")
GROUP = "224.0.0.18"
# TEST-NET-1 (RFC 5737): documentation addresses, used only inside our namespaces.
HOST_ADDR = "192.0.2.1/24"
PEER_ADDR = "192.0.2.2/24"

_counter = itertools.count()
_live: List[str] = []


def _cleanup_all() -> None:
    for name in list(_live):
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        _live.remove(name)


atexit.register(_cleanup_all)


def unique(prefix: str) -> str:
    """Short unique names (veth names must fit in 15 bytes)."""
    return f"{prefix}{os.getpid() % 100000}{next(_counter)}"


@dataclass
class Netns:
    name: str
    env: Optional[Dict[str, str]] = None

    def run(self, *argv: str, check: bool = True, timeout: float = 120,
            env: Optional[Dict[str, str]] = None, stdin: Optional[str] = None
            ) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(self.env or {})
        full_env.update(env or {})
        proc = subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=timeout, env=full_env, input=stdin)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed in {self.name} ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *argv: str, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(self.env or {})
        full_env.update(env or {})
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=full_env)

    def ipt(self, *args: str) -> str:
        return self.run("iptables-legacy", "-w", *args).stdout

    def vrrpfw(self, *args: str, env: Optional[Dict[str, str]] = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
        # Never let a test fall back to the host's saved ruleset or state in /etc, /var.
        if not any(a.startswith(("--persist-file", "--no-persist", "--state-file")) for a in args) \
                and "--help" not in args:
            raise AssertionError(f"test ran vrrpfw {args} without --persist-file or --no-persist")
        return self.run(sys.executable, "-m", "vrrpfw", *args, check=False, env=env, timeout=timeout)

    def vrrpfw_json(self, *args: str, env: Optional[Dict[str, str]] = None) -> Tuple[int, dict]:
        proc = self.vrrpfw(*args, "--json", env=env)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"no JSON from vrrpfw {args}: {proc.stdout}\n{proc.stderr}") from None

    def legacy_save(self) -> str:
        """iptables-legacy-save without comment lines and counters, for equality."""
        out = self.run("iptables-legacy-save").stdout
        return "\n".join(line.split(" [")[0] for line in out.splitlines() if not line.startswith("#"))


@contextlib.contextmanager
def namespace(prefix: str = "vrfw") -> Iterator[Netns]:
    name = unique(prefix)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    _live.append(name)
    try:
        ns = Netns(name)
        ns.run("ip", "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        if name in _live:
            _live.remove(name)


@dataclass
class Pair:
    host: Netns
    peer: Netns
    host_if: str
    peer_if: str


@contextlib.contextmanager
def pair(prefix: str = "vrfw") -> Iterator[Pair]:
    """Two namespaces joined by a veth pair, addressed from TEST-NET-1."""
    with namespace(prefix + "h") as host, namespace(prefix + "p") as peer:
        host_if, peer_if = unique("vh"), unique("vp")
        subprocess.run(["ip", "link", "add", host_if, "netns", host.name, "type", "veth",
                        "peer", "name", peer_if, "netns", peer.name], check=True, capture_output=True)
        host.run("ip", "addr", "add", HOST_ADDR, "dev", host_if)
        peer.run("ip", "addr", "add", PEER_ADDR, "dev", peer_if)
        host.run("ip", "link", "set", host_if, "up")
        peer.run("ip", "link", "set", peer_if, "up")
        yield Pair(host, peer, host_if, peer_if)


def adverts(sender: Netns, send_if: str, receiver: Netns, recv_if: str,
            count: int = 20, group: str = GROUP, seconds: float = 2.5) -> Dict[str, int]:
    """Send ``count`` adverts; return what reached the wire and what the
    receiver's raw socket got (``wire``, ``delivered``) plus ``sent``."""
    nonce = uuid.uuid4().hex
    rx = receiver.popen(sys.executable, TRAFFIC, "recv", recv_if, group, nonce, str(seconds), str(count))
    try:
        assert rx.stdout is not None
        line = rx.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"receiver did not start: {line} {rx.stderr.read() if rx.stderr else ''}")
        tx = sender.run(sys.executable, TRAFFIC, "send", send_if, group, nonce, str(count))
        out, err = rx.communicate(timeout=seconds + 30)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    result = json.loads(out.strip().splitlines()[-1])
    result.update(json.loads(tx.stdout.strip().splitlines()[-1]))
    return result


def ns_names() -> Sequence[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]
