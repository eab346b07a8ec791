"""The .deb, installed the way an admin installs it, proven with packets.

``packaging/build.sh deb`` builds it from this working tree (into a directory
of the test's own), unless VRRPFW_TEST_DEB names a .deb to test instead (CI
after ``build.sh all``).  For Debian 12 and 13 it is installed with
``apt-get install ./vrrpfw_*.deb`` into a fresh overlay of a bare minbase root
(packaging/debroot.sh), so only Debian's python3 and Debian's own typer, rich
and python-iptables are there.  Then, chrooted in that root and inside a
namespace of a veth pair, the installed vrrpfw opens a host whose legacy
INPUT drops protocol 112: 0 adverts arrive before, all after open, 0 after
close.

The same root, with python3-iptables removed (dpkg --force-depends: the
library is absent, as on Fedora/RHEL), proves the legacy backend is optional:
an nft-only host is opened and closed by ``auto``, and the legacy backend
refuses in one line, exit 3, naming what to install.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
from typing import Iterator, List, Optional

import pytest
from netns import Pair, blocked_inbound, inbound, ns_names, pair

# One worker builds and installs once (a module fixture runs in every worker that gets a test of it).
# once: the .deb runs on the Debian roots' own python, whatever venv runs pytest.
pytestmark = [pytest.mark.integration, pytest.mark.needs("debootstrap"), pytest.mark.xdist_group("deb"),
              pytest.mark.once]

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(HERE))
DEBROOT = os.path.join(REPO, "packaging", "debroot.sh")
BUILD = os.path.join(REPO, "packaging", "build.sh")
SUITES = ("bookworm", "trixie")
COUNT = 20


def _run(argv: List[str], timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def deb() -> Iterator[str]:
    """The .deb under test: VRRPFW_TEST_DEB, else one built now from this tree."""
    given = os.environ.get("VRRPFW_TEST_DEB")
    if given:
        assert os.path.isfile(given), f"VRRPFW_TEST_DEB={given} is not a file"
        yield os.path.abspath(given)
        return
    out = tempfile.mkdtemp(prefix="vrrpfw-test-deb-")
    try:
        env = dict(os.environ, VRRPFW_DIST=out)
        proc = subprocess.run(["bash", BUILD, "deb"], capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, f"build.sh deb failed:\n{proc.stdout}\n{proc.stderr}"
        debs = [f for f in os.listdir(out) if f.startswith("vrrpfw_") and f.endswith("_all.deb")]
        assert len(debs) == 1, debs
        yield os.path.join(out, debs[0])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_deb_metadata(deb: str) -> None:
    """Debian's own libraries as Depends, the firewall tools as fits, and the
    man page and completions in the package."""
    fields = {k: _run(["dpkg-deb", "-f", deb, k]).stdout.strip() for k in ("Package", "Architecture",
                                                                             "Depends", "Recommends")}
    assert fields["Package"] == "vrrpfw" and fields["Architecture"] == "all"
    depends = [d.strip().split(" ")[0] for d in fields["Depends"].split(",")]
    for name in ("python3-typer", "python3-rich", "python3-iptables", "iptables", "nftables", "python3:any"):
        assert name in depends, fields["Depends"]
    recommends = [d.strip().split(" ")[0] for d in fields["Recommends"].split(",")]
    assert {"python3-dbus"} <= set(recommends), fields["Recommends"]
    files = _run(["dpkg-deb", "-c", deb]).stdout
    for path in ("./usr/bin/vrrpfw", "./usr/share/man/man8/vrrpfw.8.gz",
                 "./usr/share/bash-completion/completions/vrrpfw",
                 "./usr/share/zsh/vendor-completions/_vrrpfw",
                 "./usr/lib/python3/dist-packages/vrrpfw/cli/commands.py"):
        assert f" {path}\n" in files + "\n", f"{path} not in the .deb:\n{files}"
    assert os.path.basename(deb).startswith("vrrpfw_") and deb.endswith("_all.deb")
    # the generated ones (packaging/gen_docs.py), not placeholders
    with tempfile.TemporaryDirectory() as tree:
        _run(["dpkg-deb", "-x", deb, tree])
        with gzip.open(os.path.join(tree, "usr/share/man/man8/vrrpfw.8.gz"), "rt") as f:
            page = f.read()
        assert ".TH VRRPFW 8" in page.upper() and "vrrpfw open" in page.replace("\\", "")
        with open(os.path.join(tree, "usr/share/zsh/vendor-completions/_vrrpfw")) as f:
            assert f.readline().startswith("#compdef vrrpfw")
        with open(os.path.join(tree, "usr/share/bash-completion/completions/vrrpfw")) as f:
            assert "complete " in f.read()


class Root:
    """One Debian root overlay (the cached minbase root below, this test's
    changes in ``upper``), where commands run chrooted, optionally inside a
    network namespace."""

    def __init__(self, suite: str, upper: str) -> None:
        self.suite, self.upper = suite, upper

    def run(self, *cmd: str, netns: Optional[str] = None, binds: tuple = (), check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
        argv = ["bash", DEBROOT, "run", self.suite, "--upper", self.upper]
        if netns:
            argv += ["--netns", netns]
        for b in binds:
            argv += ["--bind", b]
        return _run(argv + ["--", *cmd], timeout=timeout, check=check)

    def vrrpfw(self, netns: str, *args: str) -> subprocess.CompletedProcess:
        return self.run("vrrpfw", *args, netns=netns, check=False, timeout=120)


@pytest.fixture(scope="module", params=SUITES)
def root(request: pytest.FixtureRequest, deb: str) -> Iterator[Root]:
    """A fresh overlay of the suite's root with the .deb installed by apt."""
    suite = request.param
    _run(["bash", DEBROOT, "ensure", suite], timeout=900)
    upper = tempfile.mkdtemp(prefix=f"vrrpfw-test-deb-{suite}-")
    try:
        r = Root(suite, upper)
        debdir = os.path.dirname(deb)
        r.run("sh", "-c", "cd /mnt/deb && apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
              f"apt-get install -y -qq ./{os.path.basename(deb)} >/dev/null && apt-get clean",
              binds=(f"{debdir}:/mnt/deb",), timeout=900)
        yield r
    finally:
        shutil.rmtree(upper, ignore_errors=True)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return lines[0]


def _open_check_close(r: Root, p: Pair, *extra: str) -> None:
    """0 adverts in before, all after open, 0 after close: the installed vrrpfw."""
    host = p.host.name
    assert blocked_inbound(p, COUNT), "the host's firewall did not drop the adverts to begin with"
    opened = r.vrrpfw(host, "open", "--iface", p.host_if, "--no-persist", *extra)
    assert opened.returncode == 0, f"open: {opened.stdout}\n{opened.stderr}"
    got = inbound(p, COUNT)
    assert got["delivered"] == COUNT, got
    checked = r.vrrpfw(host, "check", "--iface", p.host_if, "--no-persist", *extra)
    assert checked.returncode == 0, f"check: {checked.stdout}\n{checked.stderr}"
    closed = r.vrrpfw(host, "close", "--iface", p.host_if, "--no-persist", *extra)
    assert closed.returncode == 0, f"close: {closed.stdout}\n{closed.stderr}"
    assert blocked_inbound(p, COUNT), "adverts still arrive after close"


def test_deb_installs_and_opens(root: Root) -> None:
    """Installed by apt into a bare Debian root, run by the system python3 on
    Debian's libraries, it opens a legacy DROP for the adverts and closes it."""
    where = root.run("python3", "-c", "import iptc, rich, typer, vrrpfw; "
                     "print(vrrpfw.__file__, typer.__file__, rich.__file__, iptc.__file__)").stdout.split()
    assert all(w.startswith("/usr/lib/python3/dist-packages/") for w in where), where
    # the installed bash completion asks the installed vrrpfw
    completed = root.run("bash", "-c", "source /usr/share/bash-completion/completions/vrrpfw; "
                         "COMP_WORDS=(vrrpfw op); COMP_CWORD=1; _vrrpfw_completion vrrpfw; "
                         'printf "%s\\n" "${COMPREPLY[@]}"').stdout.split()
    assert completed == ["open"], completed
    with pair("vdeb") as p:
        version = root.vrrpfw(p.host.name, "--version")
        assert version.returncode == 0 and version.stdout.startswith("vrrpfw "), version
        p.host.ipt("-A", "INPUT", "-p", "112", "-j", "DROP")
        _open_check_close(root, p)
        saved = p.host.legacy_save()
        assert "-A INPUT -p vrrp -j DROP" in saved and "vrrpfw" not in saved, saved
    mine = tuple(f"vdeb{side}{os.getpid() % 100000}-" for side in "hp")  # this worker's (netns.unique)
    assert not [n for n in ns_names() if n.startswith(mine)]


def test_deb_without_python_iptables(root: Root) -> None:
    """python-iptables absent (as on Fedora/RHEL): nft-only hosts work, the
    legacy backend says in one line what to install (exit 3)."""
    root.run("sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null "
             "&& apt-get clean && dpkg --remove --force-depends python3-iptables >/dev/null 2>&1")
    gone = root.run("python3", "-c", "import iptc", check=False)
    assert gone.returncode != 0 and "iptc" in gone.stderr
    with pair("vdeb") as p:
        host = p.host.name
        assert root.vrrpfw(host, "--version").returncode == 0
        assert root.vrrpfw(host, "--help").returncode == 0
        p.host.run("nft", "-f", "-", stdin=(
            "table inet vrrpfwtest {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
            "  meta l4proto 112 drop\n }\n}\n"))
        _open_check_close(root, p)
        _open_check_close(root, p, "--backend", "nftables")
        refused = root.vrrpfw(host, "check", "--iface", p.host_if, "--no-persist", "--backend", "iptables")
        assert refused.returncode == 3, refused
        assert "python3-iptables" in _one_line(refused)
        # auto on a host whose legacy tables are in use needs the legacy backend
        p.host.ipt("-A", "INPUT", "-p", "112", "-j", "DROP")
        auto = root.vrrpfw(host, "open", "--iface", p.host_if, "--no-persist")
        assert auto.returncode == 3, auto
        assert "python3-iptables" in _one_line(auto)
        assert blocked_inbound(p, COUNT), "a refused open changed something"
