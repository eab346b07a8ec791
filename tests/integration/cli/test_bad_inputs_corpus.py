"""Bad inputs that get past input validation (issue 18, item 10): saved
files, keepalived.conf contents, namespaces and environment variables,
against a real firewall.  One network namespace for the module holds a
legacy iptables ruleset (IPv4 and IPv6) and an nftables ruleset that drop
VRRP, so an input that wrongly goes through changes them.  Each row asserts
the documented exit code, exactly one line on stderr (no traceback), and
that nothing changed: ``iptables-legacy-save``, ``ip6tables-legacy-save``
and ``nft list ruleset`` of the namespace, and every file of the row's
directory (bytes, mtime, mode, symlink targets), before and after.

Most rows run vrrpfw in this process (``cli.main`` with ``--netns``, every
row gives ``--persist-file`` or ``--no-persist``); rows that set an
environment variable, or that would hang or exhaust memory without vrrpfw's
read limits, run ``python -m vrrpfw`` under a memory limit and a timeout.
`check` on a saved file that only its restorer rejects is a verdict, not a
refusal (check skips the restorer, as documented): those rows assert exit 1
and that nothing changed.  tests/unit/cli/test_bad_inputs_wide.py has the rows
refused before any firewall is read."""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import pytest
from netns import namespace

from vrrpfw.cli import entry as cli

pytestmark = pytest.mark.integration

NS, D = "@NS", "@D"  # placeholders in the rows (identical on every xdist worker)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NO_NS = "vrrpfw-bad-inputs-no-such-ns"  # never created
BUS = "unix:path=/nonexistent/vrrpfw-test-bus"  # never the host's firewalld

RULES4 = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
          "-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j DROP\n-A OUTPUT -p 112 -j DROP\nCOMMIT\n")
RULES6 = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
          "-A INPUT -p ipv6-icmp -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n")
NFT = ("table inet admin {\n"
       " chain input { type filter hook input priority 0; policy drop; tcp dport 22 accept; }\n"
       " chain output { type filter hook output priority 0; policy accept; meta l4proto 112 drop; }\n}\n")

KA_OK = "vrrp_instance A {\n interface va\n virtual_router_id 5\n}\n"

FILES: Dict[str, bytes] = {
    # saved iptables files vrrpfw (or its restorer) must refuse
    "ok.v4": b"*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
    "garbage.v4": b"garbage here\n",
    "no-commit.v4": b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n",
    "commit-only.v4": b"COMMIT\n",
    "unknown-table.v4": b"*bogus\nCOMMIT\n",
    "nul.v4": b"*filter\n\0\0\0COMMIT\n",
    "bad-utf8.v4": b"*filter\n\xff\xfe\x80\nCOMMIT\n",
    "overlong.v4": b"*filter\n-A INPUT " + b"x" * 200000 + b"\nCOMMIT\n",
    "binary.v4": bytes(range(256)) * 16,
    "nft-syntax.v4": b"table inet t { chain c { type filter hook input priority 0; } }\n",
    "bad-target.v4": b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p vrrp -j NOSUCHTARGET\nCOMMIT\n",
    "bad-option.v4": b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT --bogus-opt\nCOMMIT\n",
    "bad-policy.v4": b"*filter\n:INPUT BOGUS [0:0]\nCOMMIT\n",
    "rule-outside.v4": b"-A INPUT -j ACCEPT\n*filter\nCOMMIT\n",
    "chain-outside.v4": b":INPUT ACCEPT [0:0]\n*filter\nCOMMIT\n",
    "no-chain.v4": b"*filter\n-A NOSUCHCHAIN -j ACCEPT\nCOMMIT\n",
    "nested-table.v4": b"*filter\n*nat\nCOMMIT\nCOMMIT\n",
    "garbage.v6": b"garbage here\n",
    "v4-rule.v6": b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.1/32 -j ACCEPT\nCOMMIT\n",
    # saved nftables files
    "missing-include.nft": b'include "/nonexistent/x.nft"\n',
    "unbalanced.nft": b"table inet t {\n",
    "garbage.nft": b"flush ruleset\nfoo bar\n",
    "bad-hook.nft": b"table inet t {\n chain c { type filter hook nosuchhook priority 0; }\n}\n",
    "bad-family.nft": b"table bogus t {\n}\n",
    # keepalived configurations
    "ka-ok.conf": KA_OK.encode(),
    "ka-unbalanced.conf": b"vrrp_instance A {\n interface va\n virtual_router_id 51\n",
    "ka-closes-nothing.conf": b"}}}}\n",
    "ka-open-brace.conf": b"{\n",
    "ka-vrid0.conf": b"vrrp_instance A {\n interface va\n virtual_router_id 0\n}\n",
    "ka-vrid256.conf": b"vrrp_instance A {\n interface va\n virtual_router_id 256\n}\n",
    "ka-vrid-abc.conf": b"vrrp_instance A {\n interface va\n virtual_router_id abc\n}\n",
    "ka-no-interface.conf": b"vrrp_instance A {\n virtual_router_id 5\n}\n",
    "ka-no-vrid.conf": b"vrrp_instance A {\n interface va\n}\n",
    "ka-no-name.conf": b"vrrp_instance {\n interface va\n virtual_router_id 5\n}\n",
    "ka-missing-include.conf": b"include /nonexistent/inc.conf\n" + KA_OK.encode(),
    "ka-self-include.conf": b"include ka-self-include.conf\n" + KA_OK.encode(),
    "ka-quote.conf": b'vrrp_instance A {\n interface "va\n virtual_router_id 5\n}\n',
    "ka-bad-peer.conf": KA_OK[:-2].encode() + b" unicast_peer {\n 300.1.1.1\n }\n}\n",
    "ka-mcast-peer.conf": KA_OK[:-2].encode() + b" unicast_peer {\n 224.0.0.18\n }\n}\n",
    "ka-mixed-peers.conf": (b"vrrp_instance A {\n interface va\n virtual_router_id 5\n unicast_peer {\n"
                           b" 192.0.2.2\n fd00::2\n }\n}\n"),
    "ka-bad-src.conf": (b"vrrp_instance A {\n interface va\n virtual_router_id 5\n unicast_src_ip x\n"
                        b" unicast_peer {\n 192.0.2.2\n }\n}\n"),
    "ka-bad-group.conf": b"global_defs {\n vrrp_mcast_group4 10.0.0.1\n}\n" + KA_OK.encode(),
    "ka-v6-group4.conf": b"global_defs {\n vrrp_mcast_group4 ff02::12\n}\n" + KA_OK.encode(),
    "ka-version9.conf": b"global_defs {\n vrrp_version 9\n}\n" + KA_OK.encode(),
    "ka-ah-v3.conf": (b"vrrp_instance A {\n interface va\n virtual_router_id 5\n version 3\n"
                      b" authentication {\n auth_type AH\n }\n}\n"),
    "ka-auth-xx.conf": KA_OK[:-2].encode() + b" authentication {\n auth_type XX\n }\n}\n",
    "ka-dup-name.conf": (KA_OK + "vrrp_instance A {\n interface va\n virtual_router_id 6\n}\n").encode(),
    "ka-no-instance.conf": b"global_defs {\n router_id x\n}\n",
    "ka-nul.conf": b"\0\0\0\0",
    "ka-seq.conf": b"~SEQ(i, 1, 3)\n" + KA_OK.encode(),
    "ka-bad-iface.conf": b"vrrp_instance A {\n interface ../va\n virtual_router_id 5\n}\n",
    "ka-netns-other.conf": b"net_namespace other\n" + KA_OK.encode(),
    "ka-top-netns.conf": b"net_namespace vrrpfw-bad-inputs-no-such-ns\n" + KA_OK.encode(),
    "ka-dup-vrid.conf": (KA_OK + "vrrp_instance B {\n interface va\n virtual_router_id 5\n}\n").encode(),
    "ka-include-zero.conf": b"include /dev/zero\n" + KA_OK.encode(),
    "ka-include-fifo.conf": b"include fifo\n" + KA_OK.encode(),
    "ka-fan.conf": b"include fan0.conf\n",
    "state-garbage.json": b'{"garbage',
    "lock-target": b"keep me\n",
}
for _i in range(25):  # each includes the next twice: 2^25 reads without a cap
    FILES[f"fan{_i}.conf"] = f"include fan{_i + 1}.conf\ninclude fan{_i + 1}.conf\n".encode()
FILES["fan25.conf"] = KA_OK.encode()

SYMLINKS = {"to-null": "/dev/null", "to-zero": "/dev/zero", "loop1": "loop2", "loop2": "loop1",
            "to-dir": "subdir", "to-mem": "/proc/self/mem", "to-lock-target": "lock-target"}


def build(d: str) -> None:
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "subdir"))
    for name, data in FILES.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    for name, target in SYMLINKS.items():
        os.symlink(target, os.path.join(d, name))
    os.mkfifo(os.path.join(d, "fifo"))
    os.mkdir(os.path.join(d, "world-writable"))
    os.chmod(os.path.join(d, "world-writable"), 0o777)
    os.mkdir(os.path.join(d, "world-writable", "locks"), 0o700)


def files_of(d: str) -> Dict[str, Tuple[object, ...]]:
    """Every entry under ``d`` by lstat: a regular file's bytes, mtime and
    mode, a symlink's target, a FIFO or directory as such (never opened)."""
    out: Dict[str, Tuple[object, ...]] = {}
    for root, dirs, names in os.walk(d):
        for name in sorted(dirs + names):
            p = os.path.join(root, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[p] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[p] = ("file", f.read(), st.st_mtime_ns, stat.S_IMODE(st.st_mode))
            else:
                out[p] = ("other", stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
    return out


class Host:
    def __init__(self, ns, d: str) -> None:
        self.ns, self.d = ns, d
        self.baseline: Tuple[object, ...] = ()

    def load(self) -> None:
        self.ns.run("iptables-legacy-restore", stdin=RULES4)
        self.ns.run("ip6tables-legacy-restore", stdin=RULES6)
        self.ns.run("nft", "flush", "ruleset")
        self.ns.run("nft", "-f", "-", stdin=NFT)

    def rules(self) -> Tuple[str, ...]:
        def save(cmd: str) -> str:
            out = self.ns.run(cmd).stdout
            return "\n".join(line.split(" [")[0] for line in out.splitlines() if not line.startswith("#"))

        return (save("iptables-legacy-save"), save("ip6tables-legacy-save"),
                self.ns.run("nft", "list", "ruleset").stdout)

    def state(self) -> Tuple[object, ...]:
        return self.rules(), files_of(self.d)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("bad-inputs"))
    build(d)
    with namespace("vrbi") as ns:
        ns.run("ip", "link", "add", "va", "type", "veth", "peer", "name", "vb")
        for link in ("va", "vb"):
            ns.run("sysctl", "-q", "-w", f"net/ipv6/conf/{link}/accept_dad=0")
            ns.run("ip", "link", "set", link, "up")
        ns.run("ip", "addr", "add", "192.0.2.1/24", "dev", "va")
        ns.run("ip", "addr", "add", "fd00::1/64", "dev", "va", "nodad")
        h = Host(ns, d)
        h.load()
        h.baseline = h.state()
        yield h


def _here(argv: List[str], h: Host) -> List[str]:
    return [a.replace(NS, h.ns.name).replace(D, h.d) for a in argv]


def _guard(argv: List[str]) -> None:
    """A row must never reach the host's own firewall or saved files."""
    assert "--netns" in argv, argv
    assert any(a in ("--persist-file", "--no-persist", "--listen") for a in argv), argv


# Rows that would read forever without vrrpfw's read limits run in a process
# under a memory limit (_limits) and a timeout, like every real-process row:
# ROW_TIMEOUT is long enough for a loaded machine, so only a real hang fails.
ROW_TIMEOUT = 30


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run_row(h: Host, argv: List[str], env: Optional[Dict[str, str]], sub: bool,
            capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Tuple[Optional[int], str, str]:
    argv = _here(argv, h)
    _guard(argv)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", BUS)
    if not sub:
        code = cli.main(argv)
        out, err = capsys.readouterr()
        return code, out, err
    full_env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": BUS, "PYTHONPATH": REPO,
                **{k: v.replace(D, h.d) for k, v in (env or {}).items()}}
    timeout = ROW_TIMEOUT
    try:
        proc = subprocess.run([sys.executable, "-m", "vrrpfw", *argv], capture_output=True, text=True,
                              env=full_env, timeout=timeout, preexec_fn=_limits)
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout} s"
    return proc.returncode, proc.stdout, proc.stderr


def check_row(h: Host, argv: List[str], code: int, env: Optional[Dict[str, str]], sub: bool,
              capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    got, out, err = run_row(h, argv, env, sub, capsys, monkeypatch)
    after = h.state()
    before = h.baseline
    if after != before:  # put the shared namespace and files back for the next row
        h.load()
        build(h.d)
        h.baseline = h.state()  # the rebuilt files have new mtimes
    assert after[0] == before[0], f"the ruleset changed: {argv}"
    assert after[1] == before[1], f"a file changed: {argv}"
    assert got == code, (got, out[-500:], err[-500:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpfw: error: "), err
    assert "Traceback" not in err
    if "--json" in argv:
        assert json.loads(out)["exit_code"] == code, out


IPT = ["-i", "va", "--backend", "iptables", "--family", "ipv4", "--netns", NS]
IPT6 = ["-i", "va", "--backend", "iptables", "--family", "ipv6", "--netns", NS]
NFTB = ["-i", "va", "--backend", "nftables", "--netns", NS]
IPT_NS = ["--backend", "iptables", "--netns", NS]
CMDS = ("open", "check", "close")


def ipt_file(cmd: str, name: str) -> List[str]:
    return [cmd, *IPT, "--persist-file", f"{D}/{name}"]


# Saved iptables files that do not parse: every command refuses them (exit 3).
UNPARSED_V4 = ("garbage.v4", "no-commit.v4", "commit-only.v4", "nul.v4", "bad-utf8.v4",
               "binary.v4", "nft-syntax.v4", "rule-outside.v4", "chain-outside.v4", "nested-table.v4")
# Parsed by vrrpfw, rejected by iptables-restore: open and close refuse them (exit 3).
UNRESTORABLE_V4 = ("bad-target.v4", "bad-option.v4", "bad-policy.v4", "overlong.v4", "no-chain.v4",
                   "unknown-table.v4")
# Paths vrrpfw must not write: exit 2 for every command; /proc/self/mem cannot be read: exit 3.
NOT_FILES = (("to-null", 2), ("to-zero", 2), ("loop1", 2), ("to-dir", 2), ("fifo", 2), ("subdir", 2),
             ("to-mem", 3), ("missing-dir/rules.v4", 2))
UNLOADABLE_NFT = ("missing-include.nft", "unbalanced.nft", "garbage.nft", "bad-hook.nft", "bad-family.nft",
                  "garbage.v4", "nul.v4", "bad-utf8.v4", "binary.v4", "overlong.v4")
# Read by nft -c on open and close; check does not parse an nftables file (below).
NFT_UNPARSED_BY_VRRPFW = ("nul.v4", "bad-utf8.v4")
NFT_UNCHECKED = ("missing-include.nft", "unbalanced.nft", "garbage.nft", "bad-hook.nft", "bad-family.nft",
                 "binary.v4")

KA_BAD = ("ka-unbalanced.conf", "ka-closes-nothing.conf", "ka-open-brace.conf", "ka-vrid0.conf",
          "ka-vrid256.conf", "ka-vrid-abc.conf", "ka-no-interface.conf", "ka-no-vrid.conf", "ka-no-name.conf",
          "ka-missing-include.conf", "ka-self-include.conf", "ka-quote.conf", "ka-bad-peer.conf",
          "ka-mcast-peer.conf", "ka-mixed-peers.conf", "ka-bad-src.conf", "ka-bad-group.conf",
          "ka-v6-group4.conf", "ka-version9.conf", "ka-ah-v3.conf", "ka-auth-xx.conf", "ka-dup-name.conf",
          "ka-no-instance.conf", "ka-nul.conf", "ka-seq.conf", "ka-bad-iface.conf", "binary.v4",
          "bad-utf8.v4", "overlong.v4", "nft-syntax.v4", "to-dir", "loop1", "to-null", "subdir",
          "missing-dir/x.conf")

Row = Tuple[List[str], int, Optional[Dict[str, str]], bool]
ROWS: List[Row] = [
    *[(ipt_file(c, n), 3, None, False) for c in CMDS for n in UNPARSED_V4],
    *[(ipt_file(c, n), 3, None, False) for c in ("open", "close") for n in UNRESTORABLE_V4],
    *[(ipt_file(c, n), code, None, False) for c in CMDS for n, code in NOT_FILES],
    *[([c, *IPT6, "--persist-file", f"{D}/{n}"], 3, None, False) for c in CMDS
      for n in ("garbage.v6", "nul.v4", "binary.v4")],
    # kernel files: not rulesets, and nothing can be created beside them (statvfs: 0 bytes free)
    *[([c, *IPT, "--persist-file", p], 3, None, False)
      for c in CMDS for p in ("/proc/version", "/proc/self/status")],
    *[(["open", *IPT, "--persist-file", p], 3, None, False) for p in ("/proc/sys/net/ipv4/vrrpfw-new",
                                                                       "/sys/kernel/vrrpfw-new")],
    *[(["open", *NFTB, "--persist-file", p], 3, None, False)
      for p in ("/proc/version", "/sys/kernel/vrrpfw-new")],
    # IPv4 rules in the IPv6 file: a usage error (each family has its own file)
    (["open", *IPT6, "--persist-file", f"{D}/v4-rule.v6"], 2, None, False),
    *[([c, *NFTB, "--persist-file", f"{D}/{n}"], 3, None, False)
      for c in ("open", "close") for n in UNLOADABLE_NFT],
    *[(["check", *NFTB, "--persist-file", f"{D}/{n}"], 3, None, False) for n in NFT_UNPARSED_BY_VRRPFW],
    *[([c, *NFTB, "--persist-file", f"{D}/{n}"], 2, None, False)
      for c in CMDS for n in ("to-null", "fifo", "to-dir")],
    # keepalived.conf: every command refuses a bad one, file:line, exit 2
    *[([c, "--keepalived-conf", f"{D}/{n}", *IPT_NS, "--no-persist"], 2, None, False)
      for c in CMDS for n in KA_BAD],
    *[([c, "--keepalived-conf", f"{D}/ka-netns-other.conf", "--netns", NS, "--no-persist"], 2, None, False)
      for c in CMDS],
    # keepalived's net_namespace is a top-level keyword (keepalived.conf(5)); one naming another
    # namespace than --netns is a contradiction
    *[([c, "--keepalived-conf", f"{D}/ka-top-netns.conf", *IPT_NS, "--no-persist"], 2, None, False)
      for c in CMDS],
    # reads are bounded: a device, a FIFO or an include fan-out end at once (run in a process under
    # a memory limit and a short timeout, in case they did not)
    *[([c, "--keepalived-conf", f"{D}/{n}", *IPT_NS, "--no-persist"], 2, None, True)
      for c, n in (("open", "ka-include-zero.conf"), ("check", "ka-include-fifo.conf"),
                   ("open", "ka-fan.conf"), ("open", "to-zero"), ("close", "fifo"))],
    (["open", "--keepalived-conf", f"{D}/ka-ok.conf", "-i", "vb", *IPT_NS, "--no-persist"], 2, None, False),
    (["open", "--keepalived-conf", f"{D}/ka-ok.conf", "--family", "ipv6", *IPT_NS, "--no-persist"], 2, None,
     False),
    # namespaces that do not exist: exit 3, nothing read
    *[([c, "-i", "va", "--netns", NO_NS, "--no-persist"], 3, None, False) for c in CMDS],
    (["check", "-i", "va", "--listen", "1", "--netns", NO_NS], 3, None, False),
    # an interface the listener cannot open (listening is not refusable by name alone)
    (["check", "-i", "nosuch0", "--listen", "1", "--netns", NS], 3, None, False),
    # unicast: this host has no address of the peer's family on the interface
    (["open", "-i", "vb", "--peer", "192.0.2.2", *IPT_NS, "--no-persist"], 2, None, False),
    (["open", "-i", "va", "--peer", "fd00::9", "--src", "fd00::1", "--backend", "iptables", "--netns", NS,
      "--no-persist", "--family", "ipv4"], 2, None, False),
    # environment: lock paths that are not what they must be
    (["open", *IPT, "--persist-file", f"{D}/ok.v4"], 3, {"VRRPFW_LOCK_DIR": f"{D}/lock-target"}, True),
    (["open", *IPT, "--persist-file", f"{D}/ok.v4"], 3, {"VRRPFW_LOCK_DIR": f"{D}/to-null"}, True),
    (["open", *IPT, "--persist-file", f"{D}/ok.v4"], 3, {"XTABLES_LOCKFILE": f"{D}/subdir"}, True),
    (["open", *IPT, "--persist-file", f"{D}/ok.v4"], 3, {"VRRPFW_LOCK_DIR": f"{D}/world-writable"}, True),
    # refused since u18-inputs (were accepted): one VRID twice on an interface, a broadcast peer,
    # VRRPFW_DBUS_TIMEOUT out of range, a symlinked xtables lock, a lock directory under a
    # world-writable one (the network address as a peer is taken, as keepalived takes it)
    *[([c, "--keepalived-conf", f"{D}/ka-dup-vrid.conf", *IPT_NS, "--no-persist"], 2, None, False)
      for c in ("open", "check")],
    (["open", "-i", "va", "--peer", "192.0.2.255", *IPT_NS, "--no-persist"], 2, None, False),
    *[(["open", "-i", "va", "--backend", "firewalld", "--netns", NS, "--no-persist", "--state-file",
        f"{D}/state-garbage.json"], 2, {"VRRPFW_DBUS_TIMEOUT": v}, True)
      for v in ("abc", "", "nan", "-1", "0", "inf", "1e9")],
    (["open", *IPT, "--persist-file", f"{D}/ok.v4"], 3, {"XTABLES_LOCKFILE": f"{D}/to-lock-target"}, True),
    (["open", *IPT, "--persist-file", f"{D}/ok.v4"], 3, {"VRRPFW_LOCK_DIR": f"{D}/world-writable/locks"},
     True),
    # the same refusals in a real process: one line on the real stderr
    # (with --json: one JSON object on stdout, the line on stderr)
    ([*ipt_file("open", "garbage.v4"), "--json"], 3, None, True),
    (["open", "--keepalived-conf", f"{D}/ka-quote.conf", "--netns", NS, "--no-persist", "--json"], 2, None,
     True),
    (["open", *NFTB, "--persist-file", f"{D}/unbalanced.nft", "--json"], 3, None, True),
]

# `check` does not run the restorer (README, Saved files: `nft -c -f` over a 50,000-rule
# file takes 0.5 s); it reads such a file with vrrpfw's own parser, finds no vrrpfw rule in it
# and says "persisted missing" (exit 1), as documented, where open and close refuse it (exit 3).
CHECK_UNRESTORED: List[Row] = [
    *[(["check", *IPT, "--persist-file", f"{D}/{n}"], 1, None, False) for n in UNRESTORABLE_V4],
    *[(["check", *NFTB, "--persist-file", f"{D}/{n}"], 1, None, False) for n in NFT_UNCHECKED],
]


def _id(row: Row) -> str:
    argv, code, env, sub = row
    env_s = ",".join(f"{k}={v}" for k, v in (env or {}).items())
    return (f"{'sub:' if sub else ''}{env_s + ' ' if env_s else ''}"
            f"{' '.join(a for a in argv if a not in (NS, '--netns'))[:90]}->{code}")


@pytest.mark.parametrize("argv, code, env, sub", ROWS, ids=[_id(r) for r in ROWS])
def test_bad_input_past_validation_is_refused_and_changes_nothing(host, argv, code, env, sub, capsys,
                                                                   monkeypatch):
    check_row(host, argv, code, env, sub, capsys, monkeypatch)


@pytest.mark.parametrize("argv, code, env, sub", CHECK_UNRESTORED, ids=[_id(r) for r in CHECK_UNRESTORED])
def test_check_reads_a_file_its_restorer_rejects_without_the_restorer(host, argv, code, env, sub, capsys,
                                                                      monkeypatch):
    got, out, err = run_row(host, argv, env, sub, capsys, monkeypatch)
    after = host.state()
    assert after == host.baseline, f"something changed: {argv}"
    assert got == code and "persisted missing" in out and "Traceback" not in err, (got, out[-500:], err)


def test_the_corpus_is_distinct():
    keys = [repr((r[0], r[2])) for r in ROWS] + [repr((r[0], r[2])) for r in CHECK_UNRESTORED]
    assert len(set(keys)) == len(keys), "a row is listed twice"
