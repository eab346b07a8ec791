"""What ``vrrpfw open`` saved survives a reboot, and what ``close`` removed
stays removed: per backend, with real adverts.

Each test builds a host whose firewall drops VRRP by default (INPUT policy
DROP, nft ``policy drop``, firewalld's default zone, ufw's default deny
incoming), its saved files in the test's temporary directory, and a peer
that sends keepalived's adverts (TOS 0xc0, TTL / hop limit 255) over a veth.
It counts what the host's raw socket receives before ``open`` (none) and
after (all).  Then it "reboots": the namespaces are deleted and FRESH ones
are made (same interface names, same addresses), and the saved files are
restored into them the way the distribution's boot unit does it:

- netfilter-persistent (Debian's iptables-persistent): its plugins
  ``15-ip4tables`` and ``25-ip6tables`` run, with Debian's default
  ``IPTABLES_TEST_RULESET=yes``, ``iptables-restore --test < rules.v4`` then
  ``iptables-restore < rules.v4`` (and ``ip6tables-restore`` with
  rules.v6), where ``iptables-restore`` is the alternative: the legacy or
  the nf_tables variant, whichever the host runs;
- nftables.service: ``ExecStart=/usr/sbin/nft -f /etc/nftables.conf`` (the
  test's copy of the file);
- firewalld: a new firewalld on the same permanent configuration
  directories (``--system-config``), on the private bus;
- ufw.service: ``ExecStart=/lib/ufw/ufw-init start quiet``, seeing the
  test's copies of /etc/ufw and /etc/default/ufw (tests/ufwharness.py's
  private mount namespace).

The adverts must arrive there.  Then ``close`` (same saved-file options) on
the rebooted host, a second reboot and restore: the adverts must be dropped
again.  Each test prints its counts (``pytest -s``):
before, after open, after restore, after close, after close + restore.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import pytest
from fwharness import FirewalldHost, private_bus, write_firewalld_config
from lockdirs import private_lock_dir
from netns import HOST_ADDR, PEER_ADDR, Netns, Pair, add_ipv6, namespace, ns_names, unique
from ufwharness import UfwHost, fingerprint, private_copies

from vrrpfw.prove import netns as _netns
from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

COUNT = 20
GROUPS = {"ipv4": "224.0.0.18", "ipv6": "ff02::12"}
# Adverts to a group vrrpfw was not asked to open: the restored firewall
# must still drop them, so "after restore" counts the restored ruleset, not
# an empty one.
OTHER_GROUPS = {"ipv4": "224.0.0.19", "ipv6": "ff02::13"}
PHASES = ("before", "after open", "after restore", "after close", "after close+restore")
PREFIX = "vrbt"


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    yield
    mine = tuple(f"{PREFIX}{side}{os.getpid() % 100000}-" for side in "hp")  # netns.unique's names
    assert not [n for n in ns_names() if n.startswith(mine)], "namespaces left behind"


@contextlib.contextmanager
def booted(host_if: str, peer_if: str, firewall: Callable[[Pair], None],
           shutdown: Callable[[], None]) -> Iterator[Pair]:
    """A freshly booted host and its peer: new namespaces (an empty
    firewall); ``firewall`` loads the host's firewall before its network
    is up, as the boot units do (netfilter-persistent, nftables, firewalld
    and ufw all run before network-pre.target); then the veth between them
    under the names the host had before, with the same IPv4 and IPv6
    addresses.  ``shutdown`` ends the boot, whatever happened, before the
    namespaces are deleted."""
    with namespace(PREFIX + "h") as host, namespace(PREFIX + "p") as peer:
        p = Pair(host, peer, host_if, peer_if)
        try:
            firewall(p)
            _netns.veth(host.ns, host_if, peer.ns, peer_if)
            _netns.add_addresses(host.ns, host_if, [HOST_ADDR])
            _netns.add_addresses(peer.ns, peer_if, [PEER_ADDR])
            for side, ifname in ((host, host_if), (peer, peer_if)):
                _netns.link_up(side.ns, ifname)
            for side, ifname in ((host, host_if), (peer, peer_if)):
                _netns.wait_operstate_up(side.ns, ifname)
            add_ipv6(p)
            yield p
        finally:
            shutdown()


class Record:
    """The delivered counts of one backend, per family and phase."""

    def __init__(self, name: str, families: Sequence[str]) -> None:
        self.name = name
        self.families = list(families)
        self.counts: Dict[str, Dict[str, int]] = {f: {} for f in families}
        self.verdicts: Dict[str, Tuple[int, dict]] = {}

    def measure(self, p: Pair, phase: str) -> Dict[str, int]:
        """Adverts from the peer to the host, per family; every one must
        have reached the host's interface (the link works), so a count
        below COUNT is the host's firewall."""
        got = {}
        for family in self.families:
            c = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, COUNT, GROUPS[family]).to_dict()
            assert c["wire"] == COUNT, (self.name, family, phase, c)
            got[family] = self.counts[family][phase] = c["delivered"]
        return got

    def other_group_dropped(self, p: Pair) -> None:
        """The restored firewall drops by default: adverts to a group
        nobody opened reach the interface and none is delivered."""
        for family in self.families:
            c = exchange(p.peer.ns, p.peer_if, p.host.ns, p.host_if, COUNT, OTHER_GROUPS[family]).to_dict()
            assert c["wire"] == COUNT and c["delivered"] == 0, (self.name, family, "other group", c)

    def report(self) -> List[str]:
        return [f"reboot survival | {self.name} | {family} | "
                + ", ".join(f"{ph} {self.counts[family].get(ph, '-')}/{COUNT}" for ph in PHASES)
                for family in self.families]

    def assert_survived(self) -> None:
        want = {"before": 0, "after open": COUNT, "after restore": COUNT, "after close": 0,
                "after close+restore": 0}
        for family in self.families:
            assert self.counts[family] == want, (self.name, family, self.counts[family])
        # ``check`` on the rebooted host says what the adverts did, of the
        # restored runtime and of the saved configuration the next boot loads.
        for phase, (rc, runtime, persisted) in {"after restore": (0, "allowed", "present"),
                                                "after close+restore": (1, "missing", "missing")}.items():
            got_rc, out = self.verdicts[phase]
            inbound = {r["family"]: (r["runtime"], r["persisted"])
                       for r in out["rules"] if r["direction"] == "in"}
            assert (got_rc, inbound) == (rc, dict.fromkeys(self.families, (runtime, persisted))), \
                (self.name, phase, got_rc, out)


Check = Callable[[Pair], Tuple[int, dict]]


def lifecycle(rec: Record, setup: Callable[[Pair], None], open_: Callable[[Pair], None],
              restore: Callable[[Pair], None], close: Callable[[Pair], None], check: Check,
              shutdown: Callable[[], None] = lambda: None) -> None:
    """First boot: ``setup`` (the admin's DROP-by-default firewall and its
    saved files), adverts, ``open_``, adverts.  Reboot: ``restore``,
    adverts (and adverts to a group nobody opened), ``close``, adverts.
    Reboot: ``restore``, adverts.  ``setup`` and ``restore`` run before the
    network is up; ``shutdown`` ends each boot."""
    host_if, peer_if = unique("rbh"), unique("rbp")
    try:
        with booted(host_if, peer_if, setup, shutdown) as p:
            assert rec.measure(p, "before") == dict.fromkeys(rec.families, 0), \
                "the host's firewall must drop VRRP before open"
            open_(p)
            rec.measure(p, "after open")
        with booted(host_if, peer_if, restore, shutdown) as p:
            rec.measure(p, "after restore")
            rec.other_group_dropped(p)
            rec.verdicts["after restore"] = check(p)
            close(p)
            rec.measure(p, "after close")
        with booted(host_if, peer_if, restore, shutdown) as p:
            rec.measure(p, "after close+restore")
            rec.verdicts["after close+restore"] = check(p)
    finally:
        for line in rec.report():
            print(line)
        for phase, (rc, out) in rec.verdicts.items():
            print("check", phase, rc, [(r.get("direction"), r.get("family"), r.get("runtime"),
                                        r.get("persisted")) for r in out.get("rules", [])])
    rec.assert_survived()


# --- netfilter-persistent: legacy iptables and iptables-nft ----------------

API = """
import json, sys, vrrpfw
cmd, iface, root, backend = sys.argv[1:]
r = getattr(vrrpfw, cmd)([iface], family="both", backend=backend, root=root)
print(json.dumps(r.to_dict()))
"""


def debian_root(tmp_path) -> Tuple[str, str, str]:
    """A root for vrrpfw's ``root``: a Debian os-release, netfilter-persistent's
    plugins (so vrrpfw finds the file's restorer), and where rules.v4 and
    rules.v6 go."""
    root = tmp_path / "root"
    (root / "etc" / "iptables").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    plugins = root / "usr" / "share" / "netfilter-persistent" / "plugins.d"
    plugins.mkdir(parents=True)
    for name in ("15-ip4tables", "25-ip6tables"):
        (plugins / name).write_text("#!/bin/sh\n")
    return str(root), str(root / "etc" / "iptables" / "rules.v4"), str(root / "etc" / "iptables" / "rules.v6")


def netfilter_persistent_start(host: Netns, variant: str, rules4: str, rules6: str) -> None:
    """What ``netfilter-persistent start`` runs at boot with Debian's
    /etc/default/netfilter-persistent (IPTABLES_TEST_RULESET=yes, no
    NOFLUSH): per plugin, ``iptables-restore --test < FILE`` and, if that
    passes, ``iptables-restore < FILE``; ``iptables-restore`` being the
    alternative of ``variant`` (legacy or nft)."""
    for tool, path in ((f"iptables-{variant}-restore", rules4), (f"ip6tables-{variant}-restore", rules6)):
        with open(path) as f:
            text = f.read()
        host.run(tool, "--test", stdin=text)
        host.run(tool, stdin=text)


def api(p: Pair, cmd: str, root: str, backend: str, tmp_path) -> dict:
    proc = p.host.run(sys.executable, "-c", API, cmd, p.host_if, root, backend, check=False,
                      env={"VRRPFW_LOCK_DIR": private_lock_dir(tmp_path)})
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON from vrrpfw.{cmd}: {proc.stdout}\n{proc.stderr}") from None
    return out


BACKEND_OF = {"legacy": "iptables", "nft": "nftables"}  # vrrpfw's backend for each variant's tables


@pytest.mark.parametrize("variant,boot", [
    ("legacy", "legacy"),
    pytest.param("nft", "nft", marks=pytest.mark.needs("iptables-nft")),
    # Tables in legacy at runtime, the iptables alternative on nft (Debian's
    # default since 10): netfilter-persistent restores the file into nf_tables.
    pytest.param("legacy", "nft", marks=pytest.mark.needs("iptables-nft")),
])
def test_netfilter_persistent_restores_what_open_saved_and_close_removed(tmp_path, variant, boot):
    """INPUT policy DROP in iptables and ip6tables (the ``variant`` the host
    runs), saved to rules.v4 and rules.v6 with iptables-save, as
    ``netfilter-persistent save`` does; restored at boot by ``boot``'s
    iptables-restore (the alternative); closed on the rebooted host by the
    backend of the tables it then runs."""
    root, rules4, rules6 = debian_root(tmp_path)
    name = f"iptables-{variant}" + (f", restored by iptables-{boot}-restore" if boot != variant else "")
    rec = Record(f"{name} (netfilter-persistent, rules.v4/rules.v6)", ["ipv4", "ipv6"])

    def setup(p: Pair) -> None:
        for tool, path in (("iptables", rules4), ("ip6tables", rules6)):
            p.host.run(f"{tool}-{variant}", "-w", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
            p.host.run(f"{tool}-{variant}", "-w", "-P", "INPUT", "DROP")
            with open(path, "w") as f:
                f.write(p.host.run(f"{tool}-{variant}-save").stdout)

    def open_(p: Pair) -> None:
        out = api(p, "open", root, BACKEND_OF[variant], tmp_path)
        assert out["exit_code"] == 0 and out["changed"] is True, out
        for path, group in ((rules4, "224.0.0.18/32"), (rules6, "ff02::12/128")):
            with open(path) as f:
                assert f"-A INPUT -d {group} -i {p.host_if} -p 112 -m comment --comment vrrpfw -j ACCEPT" \
                    in f.read().splitlines(), path

    def close(p: Pair) -> None:
        out = api(p, "close", root, BACKEND_OF[boot], tmp_path)
        assert out["exit_code"] == 0 and out["changed"] is True, out
        for path in (rules4, rules6):
            with open(path) as f:
                assert "vrrpfw" not in f.read(), path

    def check(p: Pair) -> Tuple[int, dict]:
        out = api(p, "check", root, BACKEND_OF[boot], tmp_path)
        return out["exit_code"], out

    lifecycle(rec, setup, open_, lambda p: netfilter_persistent_start(p.host, boot, rules4, rules6), close,
              check)


# --- nftables.service --------------------------------------------------------

NFTABLES_CONF = """#!/usr/sbin/nft -f

flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iifname "lo" accept
		ct state established,related accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}
"""


def nftables_service_start(host: Netns, conf: str) -> None:
    """nftables.service's ExecStart: ``/usr/sbin/nft -f /etc/nftables.conf``."""
    host.run("nft", "-f", conf)


def test_nftables_service_restores_what_open_saved_and_close_removed(tmp_path):
    conf = str(tmp_path / "nftables.conf")
    with open(conf, "w") as f:
        f.write(NFTABLES_CONF)
    rec = Record("nftables (nftables.service, nftables.conf)", ["ipv4", "ipv6"])
    env = {"VRRPFW_LOCK_DIR": private_lock_dir(tmp_path)}

    def vrrpfw(p: Pair, cmd: str) -> Tuple[int, dict]:
        return p.host.vrrpfw_json(cmd, "--iface", p.host_if, "--family", "both", "--backend", "nftables",
                                  "--persist-file", conf, env=env)

    def run(p: Pair, cmd: str) -> dict:
        rc, out = vrrpfw(p, cmd)
        assert rc == 0, (cmd, out)
        return out

    def open_(p: Pair) -> None:
        assert run(p, "open")["changed"] is True
        with open(conf) as f:
            assert f.read().count('comment "vrrpfw"') >= 2  # an IPv4 and an IPv6 rule at least

    def close(p: Pair) -> None:
        assert run(p, "close")["changed"] is True
        with open(conf) as f:
            assert f.read() == NFTABLES_CONF  # open then close gives the file back byte for byte

    lifecycle(rec, lambda p: nftables_service_start(p.host, conf), open_,
              lambda p: nftables_service_start(p.host, conf), close, lambda p: vrrpfw(p, "check"))


# --- firewalld ---------------------------------------------------------------

@pytest.mark.needs("firewalld")
@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_firewalld_started_on_its_permanent_configuration_keeps_what_open_added(tmp_path, backend):
    """The interface in firewalld's default zone (public: rejects VRRP).
    A reboot is a new firewalld process, in a new namespace, on the same
    permanent configuration directories and state file."""
    root = str(tmp_path)
    write_firewalld_config(root, backend)
    rec = Record(f"firewalld ({backend} backend, permanent configuration)", ["ipv4", "ipv6"])
    running: List[FirewalldHost] = []

    def start(p: Pair) -> None:
        p.host.env = {"DBUS_SYSTEM_BUS_ADDRESS": address}
        fw = FirewalldHost(p, root, backend)
        running.append(fw)
        fw.start()

    def stop() -> None:
        while running:
            running.pop().stop()

    def vrrpfw(p: Pair, cmd: str) -> Tuple[int, dict]:
        fw = running[-1]
        assert fw.pair is p
        return fw.vrrpfw_json(cmd, "--iface", p.host_if, "--family", "both")

    def run(p: Pair, cmd: str) -> None:
        rc, out = vrrpfw(p, cmd)
        assert rc == 0 and out["backend"] == "firewalld" and out["changed"] is True, (cmd, out)

    with private_bus(root) as address:
        lifecycle(rec, start, lambda p: run(p, "open"), start, lambda p: run(p, "close"),
                  lambda p: vrrpfw(p, "check"), shutdown=stop)


# --- ufw ---------------------------------------------------------------------

@pytest.mark.needs("ufw", "unshare", "iptables-nft")
@pytest.mark.parametrize("variant", ["nft", "legacy"])
def test_ufw_init_loads_what_open_saved_in_before_rules(tmp_path, variant):
    """ufw enabled with its defaults (deny incoming) on private copies of
    its files.  A reboot is ufw.service's ``/lib/ufw/ufw-init start quiet``
    in a new namespace, seeing the same files."""
    real_files = fingerprint()
    root = str(tmp_path)
    mounts = private_copies(root, variant)
    env = {"VRRPFW_LOCK_DIR": private_lock_dir(root)}
    rec = Record(f"ufw ({variant}, before.rules/before6.rules)", ["ipv4", "ipv6"])

    def host(p: Pair) -> UfwHost:
        return UfwHost(p.host.name, env, root=root, mounts=mounts)

    def vrrpfw(p: Pair, cmd: str) -> Tuple[int, dict]:
        proc = host(p).run(sys.executable, "-m", "vrrpfw", cmd, "--iface", p.host_if, "--family", "both",
                           "--backend", "ufw", "--json", check=False, timeout=180)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"no JSON from vrrpfw {cmd}: {proc.stdout}\n{proc.stderr}") from None

    def run(p: Pair, cmd: str) -> None:
        rc, out = vrrpfw(p, cmd)
        assert rc == 0 and out.get("changed") is True, (cmd, out)

    def setup(p: Pair) -> None:
        assert "active" in host(p).ufw("--force", "enable")

    def open_(p: Pair) -> None:
        run(p, "open")
        h = host(p)
        for name in ("before.rules", "before6.rules"):
            assert b"--comment vrrpfw" in h.read(name), name

    def close(p: Pair) -> None:
        run(p, "close")
        h = host(p)
        for name in ("before.rules", "before6.rules"):
            assert b"vrrpfw" not in h.read(name), name

    def restore(p: Pair) -> None:
        host(p).run("/lib/ufw/ufw-init", "start", "quiet")

    originals = {}
    etc = os.path.join(root, "etc-ufw")
    for name in ("before.rules", "before6.rules"):
        with open(os.path.join(etc, name), "rb") as f:
            originals[name] = f.read()

    lifecycle(rec, setup, open_, restore, close, lambda p: vrrpfw(p, "check"))
    for name, data in originals.items():
        with open(os.path.join(etc, name), "rb") as f:
            assert f.read() == data, f"close must give {name} back byte for byte"
    assert fingerprint() == real_files, "the test changed the real /etc/ufw or /etc/default/ufw"


@pytest.mark.needs("firewalld")
def test_firewalld_zone_bound_at_runtime_only_is_not_called_persisted_unless_it_survives(tmp_path):
    """What ``check`` says of the next boot must be what the next boot does:
    either the adverts arrive after firewalld restarts on its permanent
    configuration, or vrrpfw did not call the allowance persisted."""
    root = str(tmp_path)
    write_firewalld_config(root, "nftables")
    running: List[FirewalldHost] = []
    host_if, peer_if = unique("rbh"), unique("rbp")

    def start(p: Pair) -> None:
        p.host.env = {"DBUS_SYSTEM_BUS_ADDRESS": address}
        running.append(FirewalldHost(p, root, "nftables"))
        running[-1].start()

    def bound_at_runtime(p: Pair) -> None:
        start(p)
        running[-1].cmd("--zone=internal", "--add-interface", host_if)  # as NetworkManager or an admin would

    def stop() -> None:
        while running:
            running.pop().stop()

    with private_bus(root) as address:
        with booted(host_if, peer_if, bound_at_runtime, stop) as p:
            got = exchange(p.peer.ns, p.peer_if, p.host.ns, host_if, COUNT, GROUPS["ipv4"]).to_dict()
            assert got["wire"] == COUNT and got["delivered"] == 0, got
            rc, out = running[-1].vrrpfw_json("open", "--iface", host_if)
            assert rc == 0 and out["changed"] is True, out
            rc, out = running[-1].vrrpfw_json("check", "--iface", host_if)
            persisted = next(r["persisted"] for r in out["rules"] if r["direction"] == "in")
        with booted(host_if, peer_if, start, stop) as p:
            got = exchange(p.peer.ns, p.peer_if, p.host.ns, host_if, COUNT, GROUPS["ipv4"]).to_dict()
            print(f"reboot survival | firewalld (nftables), zone bound at runtime only | ipv4 | "
                  f"check after open: persisted {persisted}; after restore {got['delivered']}/{COUNT}")
            assert got["wire"] == COUNT
            assert got["delivered"] == COUNT or persisted != "present", (persisted, got)
