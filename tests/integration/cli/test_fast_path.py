"""vrrpfw/cli/fast.py against real iptables-legacy in a namespace: the
console script's entry (``vrrpfw.cli.main``, in a child inside the
namespace, as provisioning runs it) gives byte for byte the same stdout,
stderr and exit code with the typer-free path as through typer, for
verdicts (missing, ok, --json), refusals from inside the library (a bad
address, an unknown interface, a missing keepalived.conf) and open/close
runs that change the firewall.  The switch is fast.ENABLED, set in the
child before main runs."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator, List, Tuple

import pytest
from netns import Netns, pair

from vrrpfw.cli import fast

pytestmark = pytest.mark.integration

BUS = "unix:path=/nonexistent/vrrpfw-test-bus"  # never the host's firewalld
CHILD = ("import sys\nimport vrrpfw.cli.fast as fast\nfast.ENABLED = sys.argv[1] == 'fast'\n"
         "from vrrpfw.cli import main\nsys.exit(main(sys.argv[2:]))")
RULES = ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
         "-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")


def _run(ns: Netns, path: str, argv: List[str]) -> Tuple[int, str, str]:
    assert any(a.startswith(("--persist-file", "--no-persist")) for a in argv), argv
    proc = ns.run(sys.executable, "-c", CHILD, path, *argv, check=False, env={"DBUS_SYSTEM_BUS_ADDRESS": BUS})
    return proc.returncode, proc.stdout, proc.stderr


def _both(ns: Netns, argv: List[str]) -> Tuple[int, str, str]:
    """The fast path's outcome, asserted equal to typer's; typer's runs
    second, so a path that changed the firewall differently shows."""
    assert fast.parse(argv) is not None, argv  # the row exercises the fast path
    fast_got = _run(ns, "fast", argv)
    typer_got = _run(ns, "typer", argv)
    assert fast_got == typer_got, argv
    return fast_got


@contextlib.contextmanager
def _host(tmp_path) -> Iterator[Tuple[Netns, str, str]]:
    with pair("vrfwfp") as p:
        p.host.run("iptables-legacy-restore", stdin=RULES)
        saved = tmp_path / "rules.v4"
        saved.write_text(RULES)
        yield p.host, p.host_if, str(saved)


def test_verdicts_are_the_same_bytes(tmp_path):
    with _host(tmp_path) as (ns, ifname, saved):
        keep = ["--persist-file", saved]
        code, out, _ = _both(ns, ["check", "-i", ifname, *keep])
        assert code == 1 and "missing" in out, out
        code, out, _ = _both(ns, ["check", "--iface", ifname, "--json", *keep])
        assert code == 1 and out.startswith("{"), out
        code, out, _ = _both(ns, ["open", "-i", ifname, "--dry-run", *keep])
        assert code == 0 and "would insert" in out, out
        assert ns.run("iptables-legacy-save").stdout.count("vrrpfw") == 0  # a dry run changed nothing
        # an interface this host does not have: a verdict (its rules are missing), not a refusal
        code, out, err = _both(ns, ["check", "-i", "nosuch0", "--no-persist", "--json"])
        assert code == 1 and "nosuch0" in out, (code, out, err)


def test_refusals_from_inside_the_library_are_the_same_bytes(tmp_path):
    with _host(tmp_path) as (ns, ifname, _):
        rows = [
            (["check", "-i", ifname, "--src", "192.0.2.999", "--peer", "192.0.2.2", "--no-persist"], 2),
            (["check", "--keepalived-conf", str(tmp_path / "missing.conf"), "--no-persist"], 2),
            (["check", "--keepalived-conf=" + str(tmp_path), "--no-persist", "--json"], 2),
            (["check", "-i", ifname, "--listen", "1", "--ah", "--no-persist"], 2),
            (["open", "-i", ifname, "--group", "10.0.0.1", "--no-persist", "--json"], 2),
            (["close", "-i", ifname, "--backend", "nftables", "--zone", "public", "--no-persist"], 2),
        ]
        for argv, want in rows:
            code, out, err = _both(ns, argv)
            assert code == want and err.startswith("vrrpfw: error:") and len(err.splitlines()) == 1, \
                (argv, code, out, err)


def test_open_check_close_change_the_same(tmp_path):
    """open, check and close that change the firewall and the saved file:
    each run on the fast path, then (after undoing it) through typer."""
    with _host(tmp_path) as (ns, ifname, saved):
        keep = ["--persist-file", saved]
        got = []
        for path in ("fast", "typer"):  # the fast path's runs, then typer's, from the same state
            before = (ns.run("iptables-legacy-save").stdout.count("vrrpfw"), open(saved).read())
            opened = _run(ns, path, ["open", "-i", ifname, *keep])
            checked = _run(ns, path, ["check", "-i", ifname, "--json", *keep])
            closed = _run(ns, path, ["close", "--iface=" + ifname, *keep])
            after = (ns.run("iptables-legacy-save").stdout.count("vrrpfw"), open(saved).read())
            assert before == after == (0, RULES)
            got.append((opened, checked, closed))
        assert got[0] == got[1]
        opened, checked, closed = got[0]
        assert opened[0] == 0 and "inserted" in opened[1], opened
        assert checked[0] == 0 and '"ok": true' in checked[1], checked
        assert closed[0] == 0 and "deleted" in closed[1], closed
