"""backends/firewalld/bus.py sends the reads a run will make ahead, together
(Firewalld.prefetch / ahead), and each read takes its answer rather than
asking again.  Compared here, against a real firewalld whose runtime and
permanent configuration differ (changes not reloaded yet, runtime-only
bindings, an interface in no zone, source bindings), on both of firewalld's
backends: every prefetched read answers as the same read asked alone (the
proxy call it replaces), an error answer raises the same error, a change
drops what is in flight; and a whole ``check`` reports byte for byte what it
reports with prefetching switched off."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from fwharness import firewalld_host

pytestmark = pytest.mark.integration

RICH = 'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
RUNTIME_ONLY = 'rule family="ipv4" source address="198.51.100.9" protocol value="vrrp" accept'
PERMANENT_ONLY = 'rule family="ipv4" source address="198.51.100.10" protocol value="vrrp" accept'

READS = textwrap.dedent("""
    import json, sys
    from vrrpfw.backends.firewalld.bus import Firewalld
    from vrrpfw.errors import VrrpfwError

    iface, lone, runtime_only, permanent_only = sys.argv[1:5]
    keys = [("backend",), ("lockdown",), ("active",), ("default", "runtime"), ("direct", "runtime"),
            ("direct", "permanent"), ("zone_paths",)]
    for zone in ("work", "internal", "dmz", "public", "nosuchzone"):
        keys += [("zone_path", zone), ("target", "runtime", zone)]
    for name in (iface, lone, "nosuchif0"):
        keys.append(("zone_of", "permanent", name))
    for layer in ("runtime", "permanent"):
        for zone in ("work", "public", "nosuchzone"):
            for kind, value in (("rich", runtime_only), ("rich", permanent_only), ("service", "ssh"),
                                ("service", "nosuchservice"), ("protocol", "vrrp"), ("rich", "not a rule")):
                keys.append(("has", layer, zone, kind, value))

    def ask(fw, key):
        # The public read each key stands for (see Firewalld.ahead).
        what = key[0]
        if what == "backend":
            return fw.backend()
        if what == "lockdown":
            return fw.lockdown()
        if what == "active":
            return fw.active_zones()
        if what == "default":
            return fw.default_zone(key[1])
        if what == "direct":
            return fw.direct_rules(key[1])
        if what == "zone_paths":
            return sorted(fw.source_bindings("permanent").items())
        if what == "zone_path":
            return str(fw.zone_cfg(key[1]).object_path)
        if what == "target":
            return fw.target(key[1], key[2])
        if what == "zone_of":
            return fw.zone_of(key[1], key[2])
        return fw.has(*key[1:])

    def answers(prefetch):
        fw = Firewalld()
        sent = set()
        if prefetch:
            fw.ahead(keys)
            sent |= set(fw._pending)
            for zone in ("work", "public"):
                fw.zone_cfg(zone)  # the permanent has() are sent once their zone's path is known
            fw.ahead(keys)
            sent |= set(fw._pending)
        else:
            fw.prefetch = lambda reads: None
        out = []
        for key in keys:
            try:
                out.append(["ok", json.loads(json.dumps(ask(fw, key)))])
            except VrrpfwError as e:
                out.append([type(e).__name__, str(e)])
        return out, [k for k in keys if k not in sent], len(fw._pending)

    new, sent, left = answers(True)
    old, _, _ = answers(False)

    # A change drops the reads in flight: the read after it is firewalld's new answer.
    fw = Firewalld()
    key = ("has", "runtime", "work", "rich", sys.argv[5])
    fw.ahead([key])
    in_flight = key in fw._pending
    fw.change("runtime", True, "work", "rich", sys.argv[5])
    after_add = fw.has(*key[1:])
    fw.ahead([key])
    fw.change("runtime", False, "work", "rich", sys.argv[5])
    after_remove = fw.has(*key[1:])
    print(json.dumps({"keys": keys, "new": new, "old": old, "sent": sent, "left": left,
                      "forget": [in_flight, after_add, after_remove]}))
""")

NO_PREFETCH = textwrap.dedent("""
    import sys
    from vrrpfw.backends.firewalld.bus import Firewalld
    Firewalld.prefetch = lambda self, reads: None
    sys.argv = ["vrrpfw"] + sys.argv[1:]
    from vrrpfw.cli.entry import main
    sys.exit(main())
""")


def differing(fw) -> tuple:
    """A firewalld whose runtime and permanent configuration differ in
    every way the prefetched reads can see; (bound interface, lone one)."""
    iface = fw.pair.host_if
    fw.cmd("--zone=work", "--change-interface", iface)  # runtime only: permanent leaves it in no zone
    fw.cmd("--permanent", "--zone=internal", "--add-interface=lone0")  # permanent only
    fw.cmd("--zone=internal", "--add-source=198.51.100.0/24")  # runtime only
    fw.cmd("--permanent", "--zone=dmz", "--add-source=192.0.2.128/25")  # permanent, not reloaded
    fw.cmd("--permanent", "--zone=work", "--set-target=DROP")  # permanent, not reloaded
    fw.cmd("--zone=work", f"--add-rich-rule={RUNTIME_ONLY}")
    fw.cmd("--permanent", "--zone=work", f"--add-rich-rule={PERMANENT_ONLY}")
    fw.cmd("--permanent", "--zone=public", "--add-protocol=vrrp")
    if fw.backend == "iptables":
        fw.cmd("--direct", "--add-rule", "ipv4", "filter", "INPUT", "0", "-p", "112", "-j", "ACCEPT")
        fw.cmd("--permanent", "--direct", "--add-rule", "ipv4", "filter", "OUTPUT", "1", "-p", "112",
               "-j", "ACCEPT")
    return iface, "lone0"


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_prefetched_reads_and_check_answer_as_without_prefetching(tmp_path, backend):
    """One firewalld per backend (starting it is most of the time): the
    reads one by one, then whole checks of interfaces in a zone at runtime
    only, in no zone (the default zone judges them), with sources bound
    differently after a reload and allowances recorded in the state file
    (its pruning reads them ahead)."""
    with firewalld_host(tmp_path, backend) as fw:
        iface, lone = differing(fw)
        reads_answer_as_alone(fw, backend, iface, lone)
        checks_answer_as_without_prefetching(fw, iface)


def reads_answer_as_alone(fw, backend: str, iface: str, lone: str) -> None:
    proc = fw.host.run(sys.executable, "-c", READS, iface, lone, RUNTIME_ONLY, PERMANENT_ONLY, RICH,
                       check=False)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for key, new, old in zip(got["keys"], got["new"], got["old"]):
        assert new == old, key
    # Every read was sent ahead (but a permanent zone's that does not exist), and every one taken.
    assert {tuple(k[:3]) for k in got["sent"]} == {("has", "permanent", "nosuchzone")}, got["sent"]
    assert len(got["sent"]) == 6 and got["left"] == 0
    answer = {tuple(k): a for k, a in zip(got["keys"], got["new"])}
    # The cases where runtime and permanent differ are seen as such.
    assert answer[("has", "runtime", "work", "rich", RUNTIME_ONLY)] == ["ok", True]
    assert answer[("has", "permanent", "work", "rich", RUNTIME_ONLY)] == ["ok", False]
    assert answer[("has", "permanent", "work", "rich", PERMANENT_ONLY)] == ["ok", True]
    assert answer[("has", "runtime", "public", "protocol", "vrrp")] == ["ok", False]
    assert answer[("has", "permanent", "public", "protocol", "vrrp")] == ["ok", True]
    assert answer[("has", "runtime", "work", "service", "nosuchservice")] == ["ok", False]
    assert answer[("has", "runtime", "nosuchzone", "rich", RUNTIME_ONLY)][0] == "InputError"
    assert answer[("zone_path", "nosuchzone")][0] == "InputError"
    assert answer[("zone_of", "permanent", iface)] == ["ok", ""]  # in no zone after a reload
    assert answer[("zone_of", "permanent", lone)] == ["ok", "internal"]
    assert answer[("target", "runtime", "work")] == ["ok", "default"]  # DROP only once reloaded
    assert answer[("zone_paths",)][1] == [["dmz", ["192.0.2.128/25"]]]
    assert answer[("active",)][1]["internal"]["sources"] == ["198.51.100.0/24"]
    assert answer[("default", "runtime")] == ["ok", "public"]
    if backend == "iptables":
        assert answer[("direct", "runtime")][1][0][2] == "INPUT"
        assert answer[("direct", "permanent")][1][0][2] == "OUTPUT"
    assert got["forget"] == [True, True, False]


def checks_answer_as_without_prefetching(fw, iface: str) -> None:
    fw.vrrpfw("open", "--iface", iface)
    fw.host.run("ip", "link", "add", "vx0", "type", "veth", "peer", "name", "vx1")  # in no zone
    fw.vrrpfw("open", "--iface", "vx0")
    fw.cmd("--zone=work", "--remove-interface", iface)  # runtime: iface now in the default zone
    for args in (["check", "--iface", iface], ["check"], ["check", "--iface", "vx0", "--json"],
                 ["check", "--iface", "vx1", "--json"]):
        argv = [*args, "--state-file", fw.state_file]
        new = fw.host.run(sys.executable, "-m", "vrrpfw", *argv, check=False)
        old = fw.host.run(sys.executable, "-c", NO_PREFETCH, *argv, check=False)
        assert (new.returncode, new.stdout, new.stderr) == (old.returncode, old.stdout, old.stderr), args
        assert new.stdout
