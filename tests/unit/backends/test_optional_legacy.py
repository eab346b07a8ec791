"""python-iptables is optional at import.

The RPM cannot require it (neither Fedora nor EPEL packages it), so vrrpfw
must import, print its version and help, and run every other backend without
it, and the legacy backend must refuse in one line naming what to install.
Each case runs in a fresh interpreter where ``import iptc`` fails as it does
where the library is absent (a meta-path finder refuses it, whatever
site-packages hold), so a module that imports iptc at the top again fails here.
The installed .deb with python3-iptables removed is proven with packets in
tests/integration/packages/test_deb_install.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import List

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

BLOCK = textwrap.dedent("""
    import sys

    class NoIptc:
        # as where python-iptables is not installed
        def find_spec(self, name, path=None, target=None):
            if name == "iptc" or name.startswith("iptc."):
                raise ModuleNotFoundError("No module named 'iptc'", name="iptc")
            return None

    sys.modules.pop("iptc", None)
    sys.meta_path.insert(0, NoIptc())
""")


def without_iptc(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO, NO_COLOR="1", COLUMNS="100")
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def cli(*args: str) -> subprocess.CompletedProcess:
    return without_iptc("""
        sys.argv[0] = "vrrpfw"
        from vrrpfw.cli import main
        sys.exit(main())
    """, *args)


def test_the_blocker_really_hides_iptc() -> None:
    proc = without_iptc("import iptc")
    assert proc.returncode != 0 and "No module named 'iptc'" in proc.stderr


def test_every_module_imports_without_python_iptables() -> None:
    proc = without_iptc("""
        import json, pkgutil, importlib
        import vrrpfw
        names = [m.name for m in pkgutil.walk_packages(vrrpfw.__path__, "vrrpfw.")
                 if not m.name.endswith(".__main__")]  # vrrpfw's and vrrpfw.cli's run the CLI
        failed = {}
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as e:
                failed[name] = repr(e)
        print(json.dumps({"names": names, "failed": failed, "iptc": "iptc" in sys.modules}))
    """)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "vrrpfw.backends.iptables" in out["names"] and "vrrpfw.judge.read.legacy" in out["names"]
    assert out["failed"] == {}
    assert out["iptc"] is False


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["open", "--help"], ["check", "--help"],
                                  ["close", "--help"], ["backends", "--help"]])
def test_cli_runs_without_python_iptables(args: List[str]) -> None:
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip()


def test_load_iptc_names_what_to_install() -> None:
    proc = without_iptc("""
        from vrrpfw.judge.read.iptc_loader import load_iptc
        try:
            load_iptc()
        except ModuleNotFoundError as e:
            print(e.name, "|", e)
        else:
            print("loaded")
    """)
    assert proc.returncode == 0, proc.stderr
    name, _, message = proc.stdout.partition(" | ")
    assert name == "iptc"
    assert "apt-get install python3-iptables" in message and "pip install python-iptables" in message
    assert "--backend nftables" in message
    assert "\n" not in message.strip()


def test_iptables_backend_unavailable_with_one_line() -> None:
    """As root (geteuid stood in for), the legacy backend is unusable, and
    selecting it is BackendUnavailable: the CLI's one line, exit 3."""
    proc = without_iptc("""
        import os
        os.geteuid = lambda: 0
        from vrrpfw.backends.iptables import IptablesBackend
        from vrrpfw.backends import registry
        from vrrpfw.backends.base import Options
        from vrrpfw.errors import BackendUnavailable
        avail = IptablesBackend.availability()
        print(avail.usable)
        print(avail.reason)
        from vrrpfw.host.hostscan import HostScan
        # a host whose legacy tables are in use: auto needs the legacy backend
        scan = HostScan(legacy_tables=["filter"], iptables_variant="legacy")
        for name in ("iptables", "auto"):
            try:
                registry.select_layers(name, Options(), scan)
            except BackendUnavailable as e:
                print(e.exit_code, e)
    """)
    assert proc.returncode == 0, proc.stderr
    usable, reason, explicit, auto = proc.stdout.splitlines()
    assert usable == "False"
    assert "python3-iptables" in reason
    for line in (explicit, auto):
        assert line.startswith("3 backend iptables is not usable: ") and "python3-iptables" in line
