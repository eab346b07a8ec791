"""A wide corpus of bad inputs refused before any firewall is read (issue
18, item 10): every command, every option, the Python API.  Each row
asserts the documented exit code (README "Exit codes"; API: the typed
error of vrrpfw/errors.py and its exit code), exactly one line on stderr
(no traceback), and that nothing changed: the backend selection, the
replay's capture of this host and the listener are replaced by functions
that fail the test, and the files the rows name are compared byte for
byte (and by mtime) before and after.

Inputs that get past validation (saved files, keepalived.conf contents,
namespaces, environment variables) are in
tests/integration/cli/test_bad_inputs_corpus.py, against a loaded ruleset."""

from __future__ import annotations

import math
import os
import stat
from typing import Any, Dict, List, Tuple

import pytest

from vrrpfw import api
from vrrpfw.backends import registry
from vrrpfw.cli import entry as cli
from vrrpfw.errors import EXIT_ENVIRONMENT, EXIT_USAGE, EnvironmentProblem, InputError, VrrpfwError
from vrrpfw.listen import listener
from vrrpfw.prove import proof as prove

WHERE = {"files": ""}  # this worker's directory (pytest's tmp_path_factory), set by the module fixture
AT = "@F"  # in the rows (the same on every xdist worker): WHERE["files"], substituted when run


def _files() -> Dict[str, bytes]:
    return {
        "rules.v4": b"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
        "state.json": b'{"version": 1, "allowances": []}\n',
        "ka.conf": b"vrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\n",
    }


@pytest.fixture(autouse=True)
def nothing_is_touched(monkeypatch, _files_dir):
    """Refusal comes before backend selection, the replay's capture and the
    listener; the files the rows name keep their bytes and mtimes."""
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a bad input got past validation")

    monkeypatch.setattr(registry, "select_layers", refuse)
    monkeypatch.setattr(prove, "capture_rules", refuse)
    monkeypatch.setattr(listener, "listen", refuse)
    # Never the host's firewalld, whatever a row asks for.
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/vrrpfw-test-bus")
    for name, data in _files().items():
        with open(os.path.join(WHERE["files"], name), "wb") as f:
            f.write(data)
    before = _snapshot()
    yield
    assert _snapshot() == before, "a refused input changed a file"


def _snapshot() -> Dict[str, Tuple[bytes, int, int]]:
    out = {}
    for name in sorted(os.listdir(WHERE["files"])):
        p = os.path.join(WHERE["files"], name)
        st = os.lstat(p)
        with open(p, "rb") as f:
            out[name] = (f.read(), st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return out


@pytest.fixture(scope="module", autouse=True)
def _files_dir(tmp_path_factory):
    WHERE["files"] = str(tmp_path_factory.mktemp("bad-inputs-wide"))
    yield


IF = ["-i", "eth0"]
PF = ["--persist-file", f"{AT}/rules.v4"]
SF = ["--state-file", f"{AT}/state.json"]
KA = ["--keepalived-conf", f"{AT}/ka.conf"]

BAD_GROUPS = ("", " ", "224.0.0", "224.0.0.256", "10.0.0.1", "239.255.255.256", "0.0.0.0", "::",
              "ff02::12::", "ff02::12/128", "fe80::1", "2001:db8::1", "ff02::12%eth0", "0x e0.0.0.12",
              "224.000.000.018", "ff02:::12", "[ff02::12]",
              "224.0.0.18:112", "1" * 300)
BAD_ADDRS = ("", "x", "192.0.2.256", "192.0.2.1/32", "224.0.0.18", "255.255.255.255", "0.0.0.0", "::",
             "ff02::12", "fe80::1%eth0", "::1/128", "[fd00::2]", "192.0.2.-1", "2" * 300)
BAD_FAMILIES = ("", "ip4", "inet", "4", "ipv46", "bothh", "v6", "ipv4\x00")
BAD_BACKENDS = ("", "pf", "Iptables", "nft", "iptables-nft", "firewall", "ufw ", "auto,iptables")
BAD_NETNS = ("", ".", "..", "a/b", "-x", "n" * 65, "é", "a b", "ns\n", "ns;rm", "$(id)", "*")
BAD_ZONES = ("", "a b", "../public", "z" * 65, "public;drop", "é", "zone\n")
BAD_SECONDS = ("nan", "-1", "inf", "-inf", "soon", "", "1e999", "-0.5", "0x10", "1,5", "NaN", "+inf")
BAD_LISTEN = ("0", "-1", "nan", "inf", "3601", "soon", "", "1e9", "-0", "3600.5", "0x3", "1 s")
BAD_IFACES = ("", " ", "a" * 16, "eth0/1", "../eth0", "eth 0", "eth0\n", "eth0:", "-eth0", ".", "..",
              "all", "default", "é", "eth0\t")
BAD_FILES = ("", "   ", "/dev/null", "/dev/zero", "/dev/urandom", "/", "/proc", "/proc/self",
             "/nonexistent/dir/file", f"{AT}/", f"{AT}/nonexistent-dir/x", "/dev/stdin", "/dev/full",
             "/sys", "a\x00b")
# keepalived.conf paths safe to try in-process: the devices that read forever
# (/dev/zero, /dev/urandom, a FIFO) are the integration corpus's, in a
# subprocess under a memory limit and a timeout (owned by u18-files).
BAD_KA_FILES = tuple(p for p in BAD_FILES if not p.startswith("/dev/") or p == "/dev/null")

CLI_BAD: List[Tuple[List[str], int]] = [
    # groups: open, check, prove, close (close also takes a unicast peer's address)
    *[(["open", *IF, "--no-persist", "--group", g], 2) for g in BAD_GROUPS],
    *[(["check", *IF, "--no-persist", "--group", g], 2) for g in BAD_GROUPS[:10]],
    *[(["prove", *IF, "--group", g], 2) for g in BAD_GROUPS[:8]],
    *[(["close", "--no-persist", "--group", g], 2) for g in ("", "x", "192.0.2.256", "::/0", "1.2.3")],
    # peers and sources
    *[(["open", *IF, "--no-persist", "--peer", p], 2) for p in BAD_ADDRS],
    *[(["check", *IF, "--no-persist", "--peer", p], 2) for p in BAD_ADDRS[:8]],
    *[(["prove", *IF, "--peer", p], 2) for p in BAD_ADDRS[:8]],
    *[(["open", *IF, "--no-persist", "--peer", "192.0.2.2", "--src", s], 2) for s in BAD_ADDRS],
    (["open", *IF, "--no-persist", "--peer", "192.0.2.2", "--peer", "fd00::2"], 2),
    (["open", *IF, "--no-persist", "--peer", "fd00::2", "--src", "192.0.2.1"], 2),
    (["open", *IF, "--no-persist", "--peer", "192.0.2.2", "--family", "ipv6"], 2),
    (["open", *IF, "--no-persist", "--src", "fd00::1"], 2),
    (["check", "--no-persist", "--src", "192.0.2.1"], 2),
    (["check", "--no-persist", "--ah"], 2),
    (["close", "--no-persist", "--peer", "192.0.2.2"], 2),
    (["open", *IF, "--no-persist", "--ah", "--peer", "fd00::2"], 2),
    (["open", *IF, "--no-persist", "--ah", "--family", "both"], 2),
    (["prove", *IF, "--ah", "--family", "ipv6"], 2),
    # families
    *[(["open", *IF, "--no-persist", "--family", f], 2) for f in BAD_FAMILIES],
    *[(["check", *IF, "--no-persist", "--family", f], 2) for f in BAD_FAMILIES[:4]],
    *[(["close", "--no-persist", "--family", f], 2) for f in BAD_FAMILIES[:4]],
    *[(["prove", *IF, "--family", f], 2) for f in ("both", "", "ip6")],
    (["prove", *IF, "--family", "ipv4", "--group", "ff02::12"], 2),
    (["prove", *IF, "--family", "ipv6", "--group", "224.0.0.18"], 2),
    (["prove", *IF, "--family", "ipv6", "--group", "239.1.2.3"], 2),
    (["check", *IF, "--no-persist", "--family", "ipv4", "--group", "ff02::12"], 2),
    # backends and firewalld's options
    *[(["open", *IF, "--no-persist", "--backend", b], 2) for b in BAD_BACKENDS],
    *[(["check", *IF, "--no-persist", "--backend", b], 2) for b in BAD_BACKENDS[:3]],
    *[(["close", "--no-persist", "--backend", b], 2) for b in BAD_BACKENDS[:3]],
    *[(["prove", *IF, "--backend", b], 2) for b in ("", "pf", "ufw")],
    *[(["open", *IF, "--no-persist", "--mode", m], 2) for m in ("", "rich", "ZONE", "direct ", "both")],
    (["close", "--no-persist", "--mode", "rich"], 2),
    *[(["open", *IF, "--no-persist", "--zone", z], 2) for z in BAD_ZONES],
    *[(["close", "--no-persist", "--zone", z], 2) for z in BAD_ZONES[:3]],
    (["open", *IF, "--no-persist", "--backend", "iptables", "--zone", "public"], 2),
    (["open", *IF, "--no-persist", "--backend", "nftables", "--mode", "direct"], 2),
    (["open", *IF, "--no-persist", "--backend", "iptables", "--force"], 2),
    (["close", "--no-persist", "--backend", "nftables", "--remove-seed-rules"], 2),
    (["open", *IF, "--no-persist", "--backend", "ufw", "--zone", "public"], 2),
    # namespaces (a name that cannot be one; a well-formed name that does not exist: exit 3)
    *[(["open", *IF, "--no-persist", "--netns", n], 2) for n in BAD_NETNS],
    *[(["check", *IF, "--no-persist", "--netns", n], 2) for n in BAD_NETNS[:4]],
    *[(["close", "--no-persist", "--netns", n], 2) for n in BAD_NETNS[:4]],
    (["open", *IF, "--no-persist", "--netns", "vrrpfw-no-such-ns"], 3),
    (["check", *IF, "--no-persist", "--netns", "vrrpfw-no-such-ns"], 3),
    (["close", "--no-persist", "--netns", "vrrpfw-no-such-ns"], 3),
    # interfaces
    *[(["open", "-i", n, "--no-persist"], 2) for n in BAD_IFACES],
    *[(["check", "-i", n, "--no-persist"], 2) for n in BAD_IFACES[:5]],
    *[(["close", "-i", n, "--no-persist"], 2) for n in BAD_IFACES[:5]],
    *[(["prove", "-i", n], 2) for n in BAD_IFACES[:5]],
    *[(["check", "-i", n, "--listen", "1"], 2) for n in BAD_IFACES[:3]],
    # timeouts and durations
    *[(["open", *IF, "--no-persist", "--lock-timeout", t], 2) for t in BAD_SECONDS],
    *[(["close", "--no-persist", "--lock-timeout", t], 2) for t in BAD_SECONDS[:4]],
    (["check", *IF, "--lock-timeout", "1"], 2),
    *[(["check", *IF, "--listen", t], 2) for t in BAD_LISTEN],
    *[(["prove", *IF, "--count", c], 2) for c in (
        "0", "-1", "10001", "1e3", "abc", "", "99999999999999999999")],
    (["check", *IF, "--listen", "3", "--prove"], 2),
    *[(["check", *IF, "--listen", "3", *extra], 2) for extra in (
        ["--strict"], ["--group", "224.0.0.19"], ["--peer", "192.0.2.2"], ["--src", "192.0.2.1"], ["--ah"],
        ["--backend", "nftables"], ["--no-persist"], PF, ["--zone", "public"], ["--mode", "zone"], SF)],
    (["check", "--keepalived-conf", f"{AT}/ka.conf", "--listen", "3", "--group", "224.0.0.19"], 2),
    (["open", *IF, "--listen", "3"], 2),
    # saved files and state files
    *[(["open", *IF, "--persist-file", p], 2) for p in BAD_FILES],
    *[(["check", *IF, "--persist-file", p], 2) for p in BAD_FILES[:8]],
    *[(["close", "--persist-file", p], 2) for p in BAD_FILES[:8]],
    *[(["open", *IF, "--no-persist", "--state-file", p], 2) for p in BAD_FILES],
    *[(["close", "--no-persist", "--state-file", p], 2) for p in BAD_FILES[:4]],
    (["open", *IF, "--no-persist", *PF], 2),
    (["check", *IF, "--no-persist", *PF], 2),
    (["close", "--no-persist", *PF], 2),
    # keepalived.conf paths and its contradictions with the options
    *[(["open", "--no-persist", "--keepalived-conf", p], 2) for p in BAD_KA_FILES],
    *[(["check", "--no-persist", "--keepalived-conf", p], 2) for p in BAD_KA_FILES[:6]],
    *[(["close", "--no-persist", "--keepalived-conf", p], 2) for p in BAD_KA_FILES[:6]],
    (["open", "--no-persist", *KA, "--group", "224.0.0.19"], 2),
    (["open", "--no-persist", *KA, "--peer", "192.0.2.2"], 2),
    (["open", "--no-persist", *KA, "--src", "192.0.2.1"], 2),
    (["open", "--no-persist", *KA, "--ah"], 2),
    (["open", "--no-persist", *KA, "-i", "eth1"], 2),
    (["open", "--no-persist", *KA, "--family", "ipv6"], 2),
    (["check", "--no-persist", *KA, "-i", "eth9"], 2),
    (["open", "--dry-run", "--prove", "--no-persist", *KA], 2),
    # an option given twice (the last one would silently win)
    (["open", *IF, "--no-persist", "--group", "224.0.0.18", "--group", "224.0.0.19"], 2),
    (["open", *IF, "--no-persist", "--peer", "192.0.2.2", "--src", "192.0.2.1", "--src", "192.0.2.3"], 2),
    (["open", *IF, "--no-persist", "--family", "ipv4", "--family", "ipv6"], 2),
    (["open", *IF, "--no-persist", "--backend", "iptables", "--backend", "nftables"], 2),
    (["open", *IF, "--persist-file", f"{AT}/rules.v4", "--persist-file", f"{AT}/other.v4"], 2),
    (["check", *IF, "--no-persist", "--netns", "a", "--netns", "b"], 2),
    (["close", "--no-persist", "--lock-timeout", "1", "--lock-timeout", "2"], 2),
    (["check", "--no-persist", "--keepalived-conf", "/dev/null", "--group", "224.0.0.18"], 2),
    (["close", "--no-persist", *KA, "--family", "ipv6"], 2),
    (["check", "--no-persist", *KA, "--strict", "--family", "ipv6"], 2),
    # usage
    (["open"], 2),
    (["open", "--no-persist"], 2),
    (["open", "-i"], 2),
    (["open", *IF, "--no-persist", "--bogus"], 2),
    (["open", *IF, "--no-persist", "extra"], 2),
    (["open", *IF, "--no-persist", "--prove"], 2),
    (["open", *IF, "--no-persist", "--dry-run", "--prove", "--family", "both"], 2),
    (["check", *IF, "--no-persist", "--dry-run"], 2),
    (["close", "--no-persist", "--force"], 2),
    (["close", "--no-persist", "--strict"], 2),
    (["prove"], 2),
    (["prove", *IF, "--no-persist"], 2),
    (["prove", *IF, "--dry-run"], 2),
    (["backends", "--bogus"], 2),
    (["backends", "extra"], 2),
    (["backends", "-i", "eth0"], 2),
    (["frobnicate"], 2),
    # a --group of the other family than --family, where no rule is built from them (were accepted)
    (["check", "--no-persist", "--group", "224.0.0.18", "--family", "ipv6"], 2),
    (["close", "--no-persist", "--group", "ff02::12", "--family", "ipv4"], 2),
    (["close", "--no-persist", "--group", "192.0.2.2", "--family", "ipv6"], 2),
    (["close", "--no-persist", *KA, "--group", "ff02::12", "--family", "ipv4"], 2),
    # refused since u18-inputs (were accepted)
    (["open", *IF, "--no-persist", "--family", "both", "--group", "224.0.0.18"], 2),
    (["open", *IF, "--no-persist", "--family", "both", "--group", "ff02::12"], 2),
    (["open", *IF, "--no-persist", "--backend", "iptables", *SF], 2),
    (["close", "--no-persist", "--backend", "nftables", *SF], 2),
    (["Open", *IF], 2),
    (["--bogus"], 2),
    (["open", "--iface=", "--no-persist"], 2),
    (["open", *IF, "--no-persist", "--json", "--group", "x"], 2),
    (["check", *IF, "--json", "--listen", "0"], 2),
]



def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _here(value: Any) -> Any:
    """A row's value with its file placeholder replaced by this worker's directory."""
    if isinstance(value, str):
        return value.replace(AT, WHERE["files"])
    if isinstance(value, list):
        return [_here(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_here(v) for v in value)
    if isinstance(value, dict):
        return {k: _here(v) for k, v in value.items()}
    return value


def _cli_row(argv: List[str], code: int, capsys: pytest.CaptureFixture) -> None:
    argv = _here(argv)
    assert cli.main(argv) == code, (argv, capsys.readouterr())
    out, err = capsys.readouterr()
    line = _one_line(err)
    assert line.startswith("vrrpfw: error: "), err
    if "--json" in argv:
        import json

        assert json.loads(out)["exit_code"] == code
    else:
        assert out == ""


@pytest.mark.parametrize("argv, code", CLI_BAD, ids=lambda a: repr(a)[:70])
def test_bad_cli_input_is_refused_in_one_line(argv, code, capsys):
    _cli_row(argv, code, capsys)


E2 = InputError
E3 = EnvironmentProblem
NOPE = "vrrpfw-no-such-ns"  # never created
F = ["eth0"]

API_BAD: List[Tuple[str, tuple, dict, type]] = [
    # interfaces
    *[(fn, (v,), {}, E2) for fn in ("open", "check", "close", "listen")
      for v in ("eth0", b"eth0", 5, 1.5, (1, 2), [None], [b"eth0"], ["eth0", 3])],
    *[("open", ([n],), {}, E2) for n in BAD_IFACES],
    ("open", ([],), {}, E2), ("close", ([],), {}, E2), ("check", ([],), {}, E2), ("listen", ([],), {}, E2),
    ("open", (), {}, E2), ("listen", (), {}, E2),
    # groups, families, peers, sources
    *[("open", (F,), {"group": g}, E2) for g in BAD_GROUPS[:12]],
    *[("open", (F,), {"group": g}, E2) for g in (224, 18, b"224.0.0.18", ["224.0.0.18"], 224.0)],
    *[("close", (F,), {"group": g}, E2) for g in ("", "x", 5)],
    *[("open", (F,), {"family": f}, E2) for f in (*BAD_FAMILIES, 4, 6, b"ipv4", ["ipv4"], True)],
    *[("check", (F,), {"family": f}, E2) for f in ("ipv5", 4)],
    *[("close", (F,), {"family": f}, E2) for f in ("ipv5", 4)],
    *[("listen", (F,), {"family": f}, E2) for f in ("ipv5", 4, "")],
    *[("open", (F,), {"peers": p}, E2) for p in ("192.0.2.2", b"192.0.2.2", 5, [None], [5], ["192.0.2.300"],
                                                ["224.0.0.18"], ["0.0.0.0"], ["192.0.2.2", "fd00::2"])],
    ("close", (F,), {"peers": ["192.0.2.2"]}, E2),
    *[("open", (F,), {"peers": ["192.0.2.2"], "src": s}, E2) for s in (
        1, b"x", "", "x", "fd00::1", "224.0.0.18", "192.0.2.2")],
    ("open", (F,), {"src": "192.0.2.1"}, E2),
    # flags
    *[("open", (F,), {k: v}, E2) for k in ("ah", "strict", "persist", "dry_run", "force")
      for v in ("yes", 1, 0, None, "False")],
    *[("check", (F,), {k: v}, E2) for k in ("ah", "strict", "persist", "dry_run") for v in ("no", 1)],
    *[("close", (F,), {k: v}, E2) for k in ("persist", "dry_run", "remove_seed_rules") for v in ("true", 0)],
    # keepalived.conf and namespaces
    *[("open", (), {"keepalived_conf": p}, E2) for p in (
        3, b"/etc/keepalived/keepalived.conf", "", ["x"], "/nonexistent/keepalived.conf", "/dev/null", "/",
        "/proc")],
    ("open", (), {"keepalived_conf": "a\x00b"}, E2),
    ("check", (), {"keepalived_conf": 0}, E2), ("close", (), {"keepalived_conf": 0.5}, E2),
    ("listen", (), {"keepalived_conf": 3}, E2),
    ("open", (), {"keepalived_conf": f"{AT}/ka.conf", "group": "224.0.0.19"}, E2),
    ("open", (), {"keepalived_conf": f"{AT}/ka.conf", "peers": ["192.0.2.2"]}, E2),
    ("open", (["eth1"],), {"keepalived_conf": f"{AT}/ka.conf"}, E2),
    *[("open", (F,), {"netns": n}, E2) for n in (*BAD_NETNS, 3, b"ns", ["ns"])],
    ("listen", (F,), {"netns": "a/b"}, E2),
    ("open", (F,), {"netns": NOPE, "persist": False}, E3),
    ("check", (F,), {"netns": NOPE, "persist": False}, E3),
    ("close", (F,), {"netns": NOPE, "persist": False}, E3),
    ("listen", (F,), {"netns": NOPE}, E3),
    # backends, modes, zones
    *[("open", (F,), {"backend": b}, E2) for b in (*BAD_BACKENDS, None, 5, b"iptables", ["iptables"])],
    *[("check", (F,), {"backend": b}, E2) for b in ("pf", None)],
    *[("close", (F,), {"backend": b}, E2) for b in ("pf", None)],
    *[("open", (F,), {"mode": m}, E2) for m in ("", "rich", None, 5, "ZONE")],
    *[("open", (F,), {"zone": z}, E2) for z in (*BAD_ZONES, 5, b"public")],
    ("close", (F,), {"zone": 5}, E2), ("check", (F,), {"mode": "x"}, E2),
    # timeouts and durations
    *[("open", (F,), {"lock_timeout": t}, E2) for t in (
        "abc", "10", math.nan, math.inf, -math.inf, -1, -0.001, True, None, 10**400, [1], b"1")],
    *[("close", (F,), {"lock_timeout": t}, E2) for t in ("10", math.nan, -1)],
    *[("listen", (F, s), {}, E2) for s in (0, -1, math.nan, math.inf, 3601, True, "3", None, 10**400, [3])],
    # paths
    *[("open", (F,), {"persist_file": p}, E2) for p in (
        123, 0, True, b"/tmp/rules.v4", ["/tmp/x"], "", " ", "/dev/null", "/dev/zero", "/",
        "/nonexistent/rules.v4", "/tmp/", "a\x00b")],
    ("open", (F,), {"persist_file": f"{AT}/rules.v4", "persist": False}, E2),
    *[("check", (F,), {"persist_file": p}, E2) for p in (0, "", "/dev/null")],
    *[("close", (F,), {"persist_file": p}, E2) for p in (["/tmp/x"], "", "/proc")],
    *[("open", (F,), {"state_file": p}, E2) for p in (7, "", "/dev/null", "/", "/nonexistent/dir/state.json",
                                                      b"/tmp/s.json", "a\x00b")],
    *[("close", (F,), {"state_file": p}, E2) for p in (7, "", "/dev/null")],
    *[("open", (F,), {"root": r}, E2) for r in (None, 5, b"/", ["/"])],
    # refused since u18-inputs (were accepted)
    ("open", (F,), {"family": "IPV4"}, E2),
    ("open", (F,), {"family": " ipv4"}, E2),
    ("open", (F,), {"family": "IPv4"}, E2),
    ("check", (F,), {"family": "IPV6"}, E2),
    ("open", (F,), {"root": "/nonexistent"}, E2),
    ("check", (F,), {"root": "/nonexistent"}, E2),
    ("open", (F,), {"family": "both", "group": "224.0.0.18"}, E2),
]

def _api_row(fn: str, args: tuple, kwargs: dict, error: type) -> None:
    with pytest.raises(VrrpfwError) as e:
        getattr(api, fn)(*_here(args), **_here(kwargs))
    assert type(e.value) is error or isinstance(e.value, error), repr(e.value)
    assert e.value.exit_code == {InputError: EXIT_USAGE, EnvironmentProblem: EXIT_ENVIRONMENT}[error]
    message = str(e.value)
    assert message and "\n" not in message


@pytest.mark.parametrize("fn, args, kwargs, error", API_BAD, ids=lambda v: repr(v)[:50])
def test_bad_api_input_raises_its_typed_error(fn, args, kwargs, error):
    _api_row(fn, args, kwargs, error)


def _key(row: Any) -> str:
    return repr(row)


def test_the_wide_corpus_is_large_and_distinct():
    """Issue 18 asks for 250+ bad inputs; duplicates would inflate the count."""
    cli_rows = [_key(a) for a, _c in CLI_BAD]
    api_rows = [_key((f, a, k)) for f, a, k, _e in API_BAD]
    assert len(set(cli_rows)) == len(cli_rows), "a CLI row is listed twice"
    assert len(set(api_rows)) == len(api_rows), "an API row is listed twice"
    assert len(cli_rows) + len(api_rows) >= 250
