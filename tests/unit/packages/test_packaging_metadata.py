"""The packaging files agree with each other and with the code.

One version everywhere (vrrpfw/_version.py, pyproject.toml, the Debian
changelog, the RPM spec), the same generated docs installed by both
packages, and python-iptables required where the distribution packages it
(Debian) and not where it does not (Fedora/EPEL).  Read as text: no build
tools needed.  The builds themselves are tests/integration/packages/test_deb_install.py
and test_rpm_build.py.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
from typing import Dict, List

import pytest

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PKG = os.path.join(REPO, "packaging")


def read(*parts: str) -> str:
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def code_version() -> str:
    m = re.search(r'^__version__ = "([^"]+)"$', read("vrrpfw", "_version.py"), re.M)
    assert m
    return m.group(1)


def control_fields(paragraph: str) -> Dict[str, str]:
    """deb822 fields of one paragraph, comment lines dropped, values joined."""
    fields: Dict[str, str] = {}
    key = ""
    for line in paragraph.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0] in " \t":
            fields[key] += " " + line.strip()
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def names(relation: str) -> List[str]:
    return [alt.strip().split(" ")[0] for alt in relation.split(",") if alt.strip()]


def test_one_version_everywhere() -> None:
    version = code_version()
    assert re.search(rf'^version = "{re.escape(version)}"$', read("pyproject.toml"), re.M)
    first = read("packaging", "debian", "changelog").splitlines()[0]
    assert first.startswith(f"vrrpfw ({version}) "), first  # native: vrrpfw_<version>_all.deb
    spec = read("packaging", "rpm", "vrrpfw.spec")
    assert re.search(rf"^Version:\s+{re.escape(version)}$", spec, re.M)
    changelog = spec.split("%changelog", 1)[1]
    assert f" - {version}-1" in changelog.splitlines()[1]


def test_license_from_setup_cfg_only() -> None:
    """Newest setuptools warns about a [project] license table and older ones
    refuse the SPDX string: the license is dynamic, from setup.cfg."""
    pyproject = read("pyproject.toml")
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^license\s*=", project, re.M)
    assert re.search(r'^dynamic = \[.*"license".*\]$', project, re.M)
    assert "License ::" not in pyproject  # license classifiers are deprecated too
    cfg = configparser.ConfigParser()
    cfg.read_string(read("setup.cfg"))
    assert cfg.sections() == ["metadata"] and dict(cfg["metadata"]) == {"license": "MIT"}
    assert read("LICENSE").startswith("MIT License")


def test_debian_control() -> None:
    source, binary = read("packaging", "debian", "control").strip().split("\n\n")
    src, pkg = control_fields(source), control_fields(binary)
    assert src["Source"] == pkg["Package"] == "vrrpfw" and pkg["Architecture"] == "all"
    for need in ("debhelper-compat", "dh-python", "pybuild-plugin-pyproject", "python3-typer"):
        assert need in names(src["Build-Depends"])
    depends = names(pkg["Depends"])
    for need in ("${python3:Depends}", "python3-typer", "python3-rich", "python3-iptables", "iptables",
                 "nftables"):
        assert need in depends
    assert {"python3-dbus", "ipset"} <= set(names(pkg["Recommends"]))  # ipset: `-m set` rules are judged


def test_debian_rules_generate_and_install_the_docs() -> None:
    rules = read("packaging", "debian", "rules")
    assert "--buildsystem=pybuild" in rules and "--with python3" in rules
    assert "python3 packaging/gen_docs.py $(DOCS)" in rules
    assert "/usr/share/bash-completion/completions/vrrpfw" in rules
    assert "/usr/share/zsh/vendor-completions/_vrrpfw" in rules
    assert read("packaging", "debian", "vrrpfw.manpages").split() == ["debian/gen-docs/vrrpfw.8"]
    assert read("packaging", "debian", "source", "format").strip() == "3.0 (native)"
    assert os.access(os.path.join(PKG, "debian", "rules"), os.X_OK)


def test_spec_requirements_are_what_fedora_and_epel_package() -> None:
    spec = read("packaging", "rpm", "vrrpfw.spec")
    body = [line for line in spec.splitlines() if not line.startswith("#")]
    requires = [line.split(":", 1)[1].strip() for line in body if line.startswith("Requires:")]
    assert "python3-typer >= 0.7" in requires and "python3-rich >= 13.3" in requires
    assert "nftables" in requires  # vrrpfw reads nf_tables through nft, iptables-nft's chains too
    assert not [r for r in requires if "iptables" in r and "nft" not in r]  # python-iptables: not packaged
    recommends = [line.split(":", 1)[1].strip() for line in body if line.startswith("Recommends:")]
    assert {"iptables-nft", "python3-dbus", "ipset"} <= set(recommends)
    # the wheel names python-iptables: the automatic python3dist() requirements are off
    assert "%{?python_disable_dependency_generator}" in body
    assert "%global __pythondist_requires %{nil}" in body
    assert "BuildArch:      noarch" in body


def test_spec_installs_the_generated_docs() -> None:
    spec = read("packaging", "rpm", "vrrpfw.spec")
    assert "packaging/gen_docs.py gen-docs" in spec
    files = spec.split("%files", 1)[1].split("%changelog", 1)[0].split()
    for path in ("%{_bindir}/vrrpfw", "%{_mandir}/man8/vrrpfw.8*",
                 "%{_datadir}/bash-completion/completions/vrrpfw",
                 "%{_datadir}/zsh/site-functions/_vrrpfw", "LICENSE"):
        assert path in files
    assert "%pyproject_wheel" in spec and "%pyproject_install" in spec  # Fedora's own macros there


def test_build_script_usage() -> None:
    """Bad usage: one line, exit 2, before anything is built or installed."""
    for args in ([], ["nope"], ["deb", "rpm"]):
        proc = subprocess.run(["bash", os.path.join(PKG, "build.sh"), *args], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 2, proc
        assert proc.stderr.strip().splitlines() == [
            "build.sh: usage: bash packaging/build.sh deb|rpm|wheel|ansible|all"]


def test_fedora_buildrequires_leave_runtime_dependencies_out():
    """On Fedora/RHEL, %pyproject_buildrequires adds the runtime dependencies
    to the build's by default, and python-iptables is packaged by neither
    Fedora nor EPEL: without -R the spec could not build there."""
    spec = read("packaging", "rpm", "vrrpfw.spec")
    calls = [line.split() for line in spec.splitlines() if line.startswith("%pyproject_buildrequires")]
    assert calls and all("-R" in call for call in calls), calls
