"""The sdist, the wheel and the RPM that packaging/build.sh makes.

``build.sh wheel`` (python -m build with PyPI's newest setuptools) and
``build.sh rpm`` (Debian's rpmbuild -bb of packaging/rpm/vrrpfw.spec from the
sdist) build into a directory of this module's own.  Then: the RPM requires
only what Fedora / RHEL 9 + EPEL package (no python-iptables) and ships the
CLI, the library, the man page and both completions, and its payload runs;
the wheel installs into a clean venv and runs; the license metadata is
written without a deprecation warning by the newest setuptools and by
Debian's older one (from the sdist, no isolation).

Integration: the RPM tools come from apt-get (root), the wheel's
dependencies and the newest setuptools from PyPI.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

# One worker builds once (a module fixture runs in every worker that gets a test of it).
# once: the RPM and the wheel are built and tried with their own pythons.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("rpm"), pytest.mark.once]

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "packaging", "build.sh")
with open(os.path.join(REPO, "vrrpfw", "_version.py")) as _f:
    VERSION = _f.read().split('__version__ = "', 1)[1].split('"', 1)[0]
# tarfile's "data" filter where this Python has it (3.12, and security backports)
SAFE: Dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
SITELIB = "/usr/lib/python3.9/site-packages"  # the spec's default target: RHEL 9's python3.9


def _run(argv: List[str], timeout: float = 900, **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def built() -> Iterator[Dict[str, str]]:
    """dist: the artefacts; wheel_log: what build.sh wheel said."""
    out = tempfile.mkdtemp(prefix="vrrpfw-test-rpm-")
    try:
        env = dict(os.environ, VRRPFW_DIST=out)
        wheel = _run(["bash", BUILD, "wheel"], env=env)
        _run(["bash", BUILD, "rpm"], env=env)
        yield {"dist": out, "wheel_log": wheel.stderr}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _artefact(built: Dict[str, str], name: str) -> str:
    path = os.path.join(built["dist"], name)
    assert os.path.isfile(path), f"{name} not built: {os.listdir(built['dist'])}"
    return path


def _rpm(built: Dict[str, str]) -> str:
    return _artefact(built, f"vrrpfw-{VERSION}-1.noarch.rpm")


def _query(built: Dict[str, str], *what: str) -> List[str]:
    return _run(["rpm", "-qp", *what, _rpm(built)]).stdout.splitlines()


def test_rpm_requires_what_fedora_and_epel_package(built: Dict[str, str]) -> None:
    requires = _query(built, "--requires")
    for need in ("python3-typer >= 0.7", "python3-rich >= 13.3", "nftables",
                 "python(abi) = 3.9"):
        assert need in requires, requires
    # python-iptables is packaged by neither Fedora nor EPEL: not required, by
    # name or by the python3dist() the wheel's metadata would generate
    assert not [r for r in requires if "iptables" in r and "nft" not in r], requires
    assert not [r for r in requires if "dist(" in r], requires
    assert {"iptables-nft", "python3-dbus"} <= set(_query(built, "--recommends"))
    assert _query(built, "--queryformat", "%{ARCH}\n") == ["noarch"]


def test_rpm_files(built: Dict[str, str]) -> None:
    files = set(_query(built, "-l"))
    for path in ("/usr/bin/vrrpfw", f"{SITELIB}/vrrpfw/cli/commands.py",
                 f"{SITELIB}/vrrpfw/backends/iptables.py",
                 f"{SITELIB}/vrrpfw-{VERSION}.dist-info/METADATA",
                 "/usr/share/bash-completion/completions/vrrpfw", "/usr/share/zsh/site-functions/_vrrpfw",
                 f"/usr/share/licenses/vrrpfw-{VERSION}/LICENSE"):
        assert path in files, sorted(files)
    assert files & {"/usr/share/man/man8/vrrpfw.8", "/usr/share/man/man8/vrrpfw.8.gz"}, sorted(files)


def test_rpm_payload_runs(built: Dict[str, str], tmp_path: Path) -> None:
    """The payload's /usr/bin/vrrpfw runs the payload's library."""
    rpm = shutil.copy(_rpm(built), tmp_path / "v.rpm")
    _run(["rpm2archive", str(rpm)])
    with tarfile.open(f"{rpm}.tgz") as tar:
        tar.extractall(tmp_path / "root", **SAFE)
    root = tmp_path / "root"
    env = dict(os.environ, PYTHONPATH=str(root) + SITELIB)
    proc = _run([sys.executable, str(root / "usr/bin/vrrpfw"), "--version"], env=env)
    assert proc.stdout.strip() == f"vrrpfw {VERSION}"
    page = gzip.decompress((root / "usr/share/man/man8/vrrpfw.8.gz").read_bytes()).decode()  # gen_docs.py's
    assert page.startswith(".TH VRRPFW 8") and ".B vrrpfw open" in page
    assert (root / "usr/share/zsh/site-functions/_vrrpfw").read_text().startswith("#compdef vrrpfw")


def test_wheel_installs_into_a_clean_venv(built: Dict[str, str], tmp_path: Path) -> None:
    wheel = _artefact(built, f"vrrpfw-{VERSION}-py3-none-any.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])  # no system site-packages
    _run([str(venv / "bin/pip"), "install", "--disable-pip-version-check", "-q", wheel])
    proc = _run([str(venv / "bin/vrrpfw"), "--version"])
    assert proc.stdout.strip() == f"vrrpfw {VERSION}"
    assert _run([str(venv / "bin/vrrpfw"), "--help"]).stdout.startswith("Usage: vrrpfw")


def _metadata(wheel: str) -> List[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.read(f"vrrpfw-{VERSION}.dist-info/METADATA").decode().split("\n\n", 1)[0].splitlines()


def test_license_metadata_without_deprecation_on_newest_setuptools(built: Dict[str, str]) -> None:
    assert "deprecat" not in built["wheel_log"].lower(), built["wheel_log"]
    meta = _metadata(_artefact(built, f"vrrpfw-{VERSION}-py3-none-any.whl"))
    assert "Metadata-Version: 2.4" in meta  # written by setuptools >= 77, where the warning was
    assert "License: MIT" in meta and "License-File: LICENSE" in meta
    assert "Requires-Dist: python-iptables>=1.0.1" in meta  # pip installs get the legacy backend
    with tarfile.open(_artefact(built, f"vrrpfw-{VERSION}.tar.gz")) as tar:
        names = tar.getnames()
    for name in ("LICENSE", "setup.cfg", "pyproject.toml", "README.md", "vrrpfw/cli/commands.py"):
        assert f"vrrpfw-{VERSION}/{name}" in names


def test_sdist_builds_with_debian_setuptools(built: Dict[str, str], tmp_path: Path) -> None:
    """Debian's python3 and setuptools (66 on Debian 12), no isolation: the
    way pybuild builds it."""
    debian_python = "/usr/bin/python3"
    old = _run([debian_python, "-c", "import setuptools; print(setuptools.__version__)"]).stdout.strip()
    assert int(old.split(".")[0]) < 77, f"not the old end: setuptools {old}"
    with tarfile.open(_artefact(built, f"vrrpfw-{VERSION}.tar.gz")) as tar:
        tar.extractall(tmp_path, **SAFE)
    src = tmp_path / f"vrrpfw-{VERSION}"
    out = tmp_path / "out"
    proc = _run([debian_python, "-W", "always", "-c",
                 "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))",
                 str(out)], cwd=str(src), env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert "deprecat" not in (proc.stdout + proc.stderr).lower(), proc.stderr
    meta = _metadata(str(out / proc.stdout.strip().splitlines()[-1]))
    assert "License: MIT" in meta and "License-File: LICENSE" in meta
