"""Network-namespace harness: every firewall change a test makes happens in
a namespace the test created, and every namespace is deleted afterwards,
even when the test fails or the run is interrupted.

Test code itself stays in the root namespace and never touches its
firewall; work inside a namespace runs as a child process through
``ip netns exec``.

A thin layer over :mod:`vrrpfw.prove.netns` and :mod:`vrrpfw.prove.traffic`, the same
harness ``vrrpfw prove`` ships, so the tests and prove measure alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Sequence, Tuple

from vrrpfw.prove import netns as _netns
from vrrpfw.prove.netns import CommandFailed, Namespace
from vrrpfw.prove.traffic import GROUP, exchange

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# TEST-NET-1 (RFC 5737): documentation addresses, used only inside our namespaces.
HOST_ADDR = "192.0.2.1/24"
PEER_ADDR = "192.0.2.2/24"

unique = _netns.unique
__all__ = ["GROUP", "HOST_ADDR", "PEER_ADDR", "Netns", "Pair", "adverts", "blocked_inbound",
           "named_protocols", "blocked_outbound", "inbound", "namespace", "ns_names", "outbound", "pair",
           "unique"]


@dataclass
class Netns:
    """The tests' view of a namespace: varargs ``run`` that fails the test
    with the command's output, and vrrpfw helpers that refuse to touch the
    host's saved ruleset."""

    name: str
    env: Optional[Dict[str, str]] = None

    @property
    def ns(self) -> Namespace:
        return Namespace(self.name, dict(self.env or {}))

    def run(self, *argv: str, check: bool = True, timeout: float = 120,
            env: Optional[Dict[str, str]] = None, stdin: Optional[str] = None
            ) -> subprocess.CompletedProcess:
        try:
            return self.ns.run(argv, stdin=stdin, check=check, timeout=timeout, env=env)
        except CommandFailed as e:
            raise AssertionError(
                f"{' '.join(argv)} failed in {self.name} ({e.returncode}):\n{e.stdout}\n{e.stderr}") from None

    def popen(self, *argv: str, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        return self.ns.popen(argv, env=env)

    def ipt(self, *args: str) -> str:
        return named_protocols(self.run("iptables-legacy", "-w", *args).stdout)

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
        out = named_protocols(self.run("iptables-legacy-save").stdout)
        return "\n".join(line.split(" [")[0] for line in out.splitlines() if not line.startswith("#"))


def named_protocols(listing: str) -> str:
    """iptables listings with VRRP's and AH's protocol by name, as 1.8.9
    prints them (``-p vrrp``, ``-p ah``); 1.8.11 (Debian 13) prints the
    numbers (``-p 112``) whatever /etc/protocols says.  For comparing texts
    across versions only: vrrpfw itself reads and writes both forms."""
    return re.sub(r"(-p|--protocol) (112|51)\b", lambda m: f"{m[1]} {PROTO_NAMES[m[2]]}", listing)


PROTO_NAMES = {"112": "vrrp", "51": "ah"}


@contextlib.contextmanager
def namespace(prefix: str = "vrfw") -> Iterator[Netns]:
    with _netns.namespace(prefix) as ns:
        yield Netns(ns.name)


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
        _netns.veth(host.ns, host_if, peer.ns, peer_if)
        _netns.add_addresses(host.ns, host_if, [HOST_ADDR])
        _netns.add_addresses(peer.ns, peer_if, [PEER_ADDR])
        ends = ((host, host_if), (peer, peer_if))
        for side, ifname in ends:
            _netns.link_up(side.ns, ifname)
        for side, ifname in ends:  # a veth end is only UP once both are
            _netns.wait_operstate_up(side.ns, ifname)
        yield Pair(host, peer, host_if, peer_if)


def adverts(sender: Netns, send_if: str, receiver: Netns, recv_if: str,
            count: int = 20, group: str = GROUP, seconds: float = 2.5) -> Dict[str, int]:
    """Send ``count`` adverts; return what reached the wire and what the
    receiver's raw socket got (``wire``, ``delivered``) plus ``sent`` and
    ``refused`` (see :func:`vrrpfw.prove.traffic.exchange`)."""
    return exchange(sender.ns, send_if, receiver.ns, recv_if, count, group, seconds).to_dict()


def inbound(p: Pair, count: int = 20) -> Dict[str, int]:
    """Adverts from the peer to the host (see :func:`adverts`)."""
    return adverts(p.peer, p.peer_if, p.host, p.host_if, count)


def outbound(p: Pair, count: int = 20) -> Dict[str, int]:
    """Adverts from the host to the peer (see :func:`adverts`)."""
    return adverts(p.host, p.host_if, p.peer, p.peer_if, count)


def blocked_inbound(p: Pair, count: int = 20) -> bool:
    """The "blocked" baseline a "delivered" assertion needs: the adverts
    reached the host's interface (so they were sent, and the link works) and
    the host's firewall kept every one from its raw socket."""
    got = inbound(p, count)
    return got["wire"] == count and got["delivered"] == 0


def blocked_outbound(p: Pair, count: int = 20) -> bool:
    """The host's firewall kept every advert it tried to send off the wire."""
    got = outbound(p, count)
    return got["wire"] == 0 and got["delivered"] == 0


def ns_names() -> Sequence[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


HOST_ADDRS6 = ("fe80::1/64", "fd00::1/64")
PEER_ADDRS6 = ("fe80::2/64", "fd00::2/64")


def add_ipv6(p: Pair) -> None:
    """IPv6 on a pair, usable at once: fixed link-local and ULA addresses
    without duplicate address detection (an auto link-local address would
    stay tentative for a second or more and be skipped as a source)."""
    for side, ifname, addrs in ((p.host, p.host_if, HOST_ADDRS6), (p.peer, p.peer_if, PEER_ADDRS6)):
        side.run("sysctl", "-q", "-w", f"net/ipv6/conf/{ifname}/accept_dad=0")
        _netns.add_addresses(side.ns, ifname, [f"{a} nodad" for a in addrs])
