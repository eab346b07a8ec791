"""Two real keepalived nodes in network namespaces, each behind a real
firewall closed the way that firewall is closed in real life: the harness
for the end-to-end tests that decide whether vrrpfw really ends split brain.

Why a harness of its own: the question "does the backup step down after
``vrrpfw open``" can only be answered by keepalived itself, on both nodes,
with the firewall each node really runs.  ``Pair(firewall, scenario, root)``
builds everything (two namespaces joined by a veth, IPv4 and IPv6 addresses,
each node's firewall closed, keepalived configured for the scenario) and
tears it all down again even when a test fails: keepalived, firewalld, its
private D-Bus and both namespaces.

The pair runs two VRRP instances with opposite priorities, so each node is
master of one and both nodes send adverts: only then can ``check --listen``
hear its peer on *both* nodes (a backup is silent).

Firewalls (FIREWALLS): legacy iptables, iptables-nft, native nftables, and
firewalld on its nftables and iptables backends (default zone).
Scenarios (SCENARIOS): IPv4 multicast (the baseline), VRRPv3 over IPv6,
IPv4 unicast peers, IPv4 with AH.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

from fwharness import FirewalldHost, private_bus, wait_gone, write_firewalld_config
from netns import Netns, namespace, ns_names, unique
from netns import Pair as NetnsPair

from vrrpfw.prove import netns as _netns

FIREWALLS = ("legacy", "iptables-nft", "nftables", "firewalld-nftables", "firewalld-iptables")
POLL = 0.2  # seconds between two looks at who holds a virtual address
T = TypeVar("T")


@dataclass(frozen=True)
class Scenario:
    """How the pair talks VRRP: the family of its virtual addresses, unicast
    peers instead of the multicast group, AH authentication."""

    name: str
    family: str = "ipv4"
    unicast: bool = False
    ah: bool = False

    @property
    def vips(self) -> Tuple[str, str]:
        """One virtual address per instance (see INSTANCES)."""
        if self.family == "ipv6":
            return ("fd00::100", "fd00::101")
        return ("192.0.2.100", "192.0.2.101")

    @property
    def prefix(self) -> int:
        return 64 if self.family == "ipv6" else 24


SCENARIOS: Dict[str, Scenario] = {s.name: s for s in (
    Scenario("ipv4-multicast"),
    Scenario("ipv6", family="ipv6"),
    Scenario("ipv4-unicast", unicast=True),
    Scenario("ipv4-ah", ah=True),
)}

# (VRID, priority of node a, priority of node b): b masters the first, a the second.
INSTANCES = ((51, 100, 200), (52, 200, 100))
ADDR4 = {"a": "192.0.2.1", "b": "192.0.2.2"}
ADDR6 = {"a": "fd00::1", "b": "fd00::2"}

# "Closed" as an admin closes a host: default-drop input, loopback and
# established traffic accepted, ICMPv6 accepted (neighbour discovery).
XTABLES_CLOSED = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
{icmp6}COMMIT
"""
# Unicast only: conntrack tracks VRRP/AH between two unicast addresses as one
# flow (the generic tracker keys on addresses alone), so once both nodes have
# sent, a stateful firewall accepts each peer's adverts as ESTABLISHED replies
# and no split brain ever shows, whatever vrrpfw does.  Untracking VRRP and AH
# takes the adverts out of conntrack, so only a rule for them (vrrpfw's)
# lets them in, as on a firewall whose state rule does not cover them.
NFT_NOTRACK = """table inet kapair_notrack {
\tchain prerouting {
\t\ttype filter hook prerouting priority raw; policy accept;
\t\tmeta l4proto { 51, 112 } notrack
\t}
\tchain output {
\t\ttype filter hook output priority raw; policy accept;
\t\tmeta l4proto { 51, 112 } notrack
\t}
}
"""
NFT_CLOSED = """table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiif "lo" accept
\t\tct state established,related accept
\t\tmeta l4proto ipv6-icmp accept
\t}
}
"""


def parallel(fn: Callable[[Node], T], nodes: Sequence[Node]) -> List[T]:
    """``fn`` on every node at once (two vrrpfw or firewalld start-ups take
    the time of one); the first exception is raised after all finished."""
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        futures = [pool.submit(fn, n) for n in nodes]
    return [f.result() for f in futures]


def wait_for(predicate: Callable[[], bool], seconds: float) -> Optional[float]:
    """The monotonic time ``predicate`` first held, polling every POLL
    seconds; None if it never held within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL)


# --- firewalls -------------------------------------------------------------------------------

class Firewall:
    """One node's firewall: how it is closed, and the vrrpfw options that
    address it.  ``setup`` may start daemons; it registers their stop on
    ``stack``."""

    backend = "auto"

    def setup(self, node: Node, stack: contextlib.ExitStack) -> None:
        raise NotImplementedError

    def args(self, node: Node) -> List[str]:
        return ["--backend", self.backend, "--no-persist"]


class Xtables(Firewall):
    """iptables and ip6tables, ``legacy`` or ``nft`` (iptables-nft, which
    vrrpfw drives through its nftables backend)."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.backend = "iptables" if variant == "legacy" else "nftables"

    def setup(self, node: Node, stack: contextlib.ExitStack) -> None:
        node.ns.run(f"iptables-{self.variant}-restore", stdin=XTABLES_CLOSED.format(icmp6=""))
        node.ns.run(f"ip6tables-{self.variant}-restore",
                    stdin=XTABLES_CLOSED.format(icmp6="-A INPUT -p ipv6-icmp -j ACCEPT\n"))


class Nftables(Firewall):
    backend = "nftables"

    def setup(self, node: Node, stack: contextlib.ExitStack) -> None:
        node.ns.run("nft", "-f", "-", stdin=NFT_CLOSED)


class Firewalld(Firewall):
    """firewalld with FirewallBackend=``fw_backend`` on a private bus, its
    configuration under the node's directory; closed by its default zone,
    which rejects VRRP."""

    backend = "firewalld"

    def __init__(self, fw_backend: str) -> None:
        self.fw_backend = fw_backend
        self.daemon: Optional[FirewalldHost] = None

    def setup(self, node: Node, stack: contextlib.ExitStack) -> None:
        root = os.path.join(node.root, "firewalld")
        os.makedirs(root)
        write_firewalld_config(root, self.fw_backend)
        address = stack.enter_context(private_bus(root))
        node.ns.env = {**(node.ns.env or {}), "DBUS_SYSTEM_BUS_ADDRESS": address}
        self.daemon = FirewalldHost(NetnsPair(node.ns, node.peer_ns, node.iface, node.peer_iface),
                                    root, self.fw_backend)
        stack.callback(self.daemon.stop)
        self.daemon.start()

    def args(self, node: Node) -> List[str]:
        assert self.daemon is not None
        return ["--backend", "firewalld", "--state-file", self.daemon.state_file]


def make_firewall(name: str) -> Firewall:
    if name in ("legacy", "iptables-nft"):
        return Xtables("legacy" if name == "legacy" else "nft")
    if name == "nftables":
        return Nftables()
    if name.startswith("firewalld-"):
        return Firewalld(name.split("-", 1)[1])
    raise ValueError(f"unknown firewall {name}")


# --- keepalived ------------------------------------------------------------------------------

GLOBAL_DEFS = """global_defs {{
  router_id {name}
  enable_script_security
}}
"""


def instance_conf(scenario: Scenario, node: Node, vrid: int, prio: int, vip: str) -> str:
    """One vrrp_instance as an admin writes it for ``scenario``."""
    lines = [f"vrrp_instance VI_{vrid} {{", "  state BACKUP", f"  interface {node.iface}",
             f"  virtual_router_id {vrid}", f"  priority {prio}", "  advert_int 1"]
    if scenario.family == "ipv6":
        lines += ["  native_ipv6", "  version 3"]
    if scenario.unicast:
        lines += [f"  unicast_src_ip {node.addr4}", "  unicast_peer {", f"    {node.peer_addr4}", "  }"]
    if scenario.ah:
        lines += ["  authentication {", "    auth_type AH", "    auth_pass x", "  }"]
    lines += ["  virtual_ipaddress {", f"    {vip}/{scenario.prefix}", "  }", "}", ""]
    return "\n".join(lines)


@dataclass
class Node:
    """One side of the pair: its namespace, interface, firewall and keepalived."""

    name: str
    ns: Netns
    iface: str
    peer_ns: Netns
    peer_iface: str
    root: str
    firewall: Firewall
    keepalived: Optional[subprocess.Popen] = None

    @property
    def addr4(self) -> str:
        return ADDR4[self.name]

    @property
    def peer_addr4(self) -> str:
        return ADDR4["b" if self.name == "a" else "a"]

    @property
    def conf(self) -> str:
        return os.path.join(self.root, "keepalived.conf")

    @property
    def log_path(self) -> str:
        return os.path.join(self.root, "keepalived.log")

    @property
    def vrrp_pid_file(self) -> str:
        return os.path.join(self.root, "vrrp.pid")

    def write_conf(self, scenario: Scenario) -> None:
        parts = [GLOBAL_DEFS.format(name=self.name)]
        for (vrid, prio_a, prio_b), vip in zip(INSTANCES, scenario.vips):
            parts.append(instance_conf(scenario, self, vrid, prio_a if self.name == "a" else prio_b, vip))
        with open(self.conf, "w") as f:
            f.write("\n".join(parts))

    def holds(self, vip: str) -> bool:
        family = "-6" if ":" in vip else "-4"
        out = self.ns.run("ip", family, "addr", "show", "dev", self.iface).stdout
        return f" {vip}/" in out

    def held(self, vips: Sequence[str]) -> List[str]:
        return [v for v in vips if self.holds(v)]

    def start_keepalived(self) -> None:
        """keepalived in the foreground, VRRP only, logging to a file (a pipe
        nobody reads would fill up and stall it)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.vrrp_pid_file)
        argv = ["keepalived", "-n", "-l", "-P", "-G", "-f", self.conf,
                "-p", os.path.join(self.root, "k.pid"), "-r", self.vrrp_pid_file]
        proc = self.keepalived = self.ns.popen("sh", "-c", 'exec "$@" >>"$0" 2>&1', self.log_path, *argv)
        if wait_for(lambda: self.vrrp_pid() is not None or proc.poll() is not None, 10) is None \
                or proc.poll() is not None:
            raise AssertionError(f"keepalived did not start in {self.ns.name}:\n{self.log()}")

    def vrrp_pid(self) -> Optional[int]:
        try:
            with open(self.vrrp_pid_file) as f:
                return int(f.read().strip() or 0) or None
        except (FileNotFoundError, ValueError):
            return None

    def crash_keepalived(self) -> None:
        """The master dies without a word (no priority-0 advert): the VRRP
        child is frozen first, so the parent's death cannot make it say
        goodbye, then both are killed."""
        assert self.keepalived is not None
        child = self.vrrp_pid()
        if child:
            os.kill(child, signal.SIGSTOP)
        self.keepalived.kill()
        self.keepalived.wait()
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            wait_gone(child)
        _netns.release(self.keepalived)
        self.keepalived = None

    def stop_keepalived(self) -> None:
        proc, self.keepalived = self.keepalived, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _netns.release(proc)
        child = self.vrrp_pid()
        if child and not wait_gone(child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    def log(self, lines: int = 40) -> str:
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return "(no keepalived log)"

    def vrrpfw(self, *args: str) -> subprocess.CompletedProcess:
        """vrrpfw in this node's namespace, addressed at this node's firewall."""
        return self.ns.vrrpfw(*args, *self.firewall.args(self))

    def listen(self, seconds: float = 3) -> Tuple[int, dict, str]:
        """``vrrpfw check --listen`` here: exit code, its JSON and its text."""
        proc = self.ns.run(sys.executable, "-m", "vrrpfw", "check", "--listen", f"{seconds:g}",
                           "--iface", self.iface, "--json", check=False, timeout=seconds + 60)
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            report = {}
        return proc.returncode, report, proc.stdout + proc.stderr


# --- the pair --------------------------------------------------------------------------------

class Pair:
    """``with Pair(firewall, scenario, root) as p``: nodes ``p.a`` and ``p.b``
    with their firewalls closed and keepalived configured (not started).
    Node b is master of VIP 0 (VRID 51), node a of VIP 1 (VRID 52)."""

    def __init__(self, firewall: str, scenario: str, root: str, untrack_unicast: bool = True) -> None:
        self.untrack_unicast = untrack_unicast  # see NFT_NOTRACK
        self.firewall_name = firewall
        self.scenario = SCENARIOS[scenario]
        self.root = root
        self.nodes: List[Node] = []
        self.namespaces: List[str] = []
        self._stack = contextlib.ExitStack()

    @property
    def a(self) -> Node:
        return self.nodes[0]

    @property
    def b(self) -> Node:
        return self.nodes[1]

    @property
    def vips(self) -> Tuple[str, str]:
        return self.scenario.vips

    def __enter__(self) -> Pair:
        try:
            self._build()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _build(self) -> None:
        a_ns = self._stack.enter_context(namespace("vrka"))
        b_ns = self._stack.enter_context(namespace("vrkb"))
        self.namespaces = [a_ns.name, b_ns.name]
        a_if, b_if = unique("ka"), unique("kb")
        for ns in (a_ns, b_ns):  # before the links exist, so their link-local addresses need no DAD
            ns.run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        _netns.veth(a_ns.ns, a_if, b_ns.ns, b_if)
        for ns, ifname, name in ((a_ns, a_if, "a"), (b_ns, b_if, "b")):
            ns.ns.ip_batch([f"addr add {ADDR4[name]}/24 dev {ifname}",
                            f"addr add {ADDR6[name]}/64 dev {ifname} nodad", f"link set {ifname} up"])
        for ns, ifname in ((a_ns, a_if), (b_ns, b_if)):
            _netns.wait_operstate_up(ns.ns, ifname)
        for name, ns, ifname, peer, peer_if in (("a", a_ns, a_if, b_ns, b_if), ("b", b_ns, b_if, a_ns, a_if)):
            root = os.path.join(self.root, name)
            os.makedirs(root)
            ns.env = {"XTABLES_LOCKFILE": os.path.join(root, "xtables.lock")}
            self.nodes.append(Node(name, ns, ifname, peer, peer_if, root, make_firewall(self.firewall_name)))
        stacks = [self._stack.enter_context(contextlib.ExitStack()) for _ in self.nodes]
        parallel(lambda n: n.firewall.setup(n, stacks[self.nodes.index(n)]), self.nodes)
        if self.scenario.unicast and self.untrack_unicast:
            for node in self.nodes:
                node.ns.run("nft", "-f", "-", stdin=NFT_NOTRACK)
        for node in self.nodes:
            node.write_conf(self.scenario)
            self._stack.callback(node.stop_keepalived)

    def start(self) -> None:
        parallel(Node.start_keepalived, self.nodes)

    def holders(self) -> Dict[str, List[str]]:
        """Which node holds which virtual address right now."""
        return {n.name: n.held(self.vips) for n in self.nodes}

    def logs(self) -> str:
        return "\n".join(f"--- keepalived {n.name} ({n.ns.name}):\n{n.log()}" for n in self.nodes)

    def leftovers(self) -> List[str]:
        """After the ``with``: whatever this pair failed to remove, empty when
        the teardown was complete: its namespaces, and any process whose
        command line names a file of this pair (keepalived, firewalld and
        dbus-daemon all do)."""
        left = [f"namespace {name}" for name in self.namespaces if name in ns_names()]
        return left + [f"process {pid}: {cmd}" for pid, cmd in processes_naming(os.path.join(self.root, ""))]


def processes_naming(path: str) -> List[Tuple[int, str]]:
    """(pid, command line) of every process whose command line contains ``path``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if path in cmd:
            found.append((int(entry), cmd))
    return found


@contextlib.contextmanager
def keepalived_pair(firewall: str, scenario: str, root: str, untrack_unicast: bool = True) -> Iterator[Pair]:
    """A Pair whose teardown is checked: a leftover fails the test."""
    p = Pair(firewall, scenario, root, untrack_unicast)
    with p:
        yield p
    left = p.leftovers()
    assert not left, f"teardown left {left}"
