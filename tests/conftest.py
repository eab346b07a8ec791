"""Integration tests need root, ``ip netns`` and the netfilter tools.

Every integration test needs the base tools (BASE_TOOLS); a test needs more
only where it uses more: ``@pytest.mark.needs("firewalld", "keepalived")``
names tool groups (TOOL_GROUPS) or plain commands, on a test or as a
module's ``pytestmark``, and MODULE_NEEDS adds them for modules by file name.
So a host without keepalived still runs every iptables test.

Where a needed tool is missing the test skips, except when
VRRPFW_REQUIRE_INTEGRATION=1 (set by tests/run.sh under CI): then the
would-be skip is a failure, and any skip at all fails the session, so CI can
never go green on a suite that did not really run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Dict, Iterable, List, Optional, Tuple

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import one_end_guard  # noqa: E402

REQUIRE = os.environ.get("VRRPFW_REQUIRE_INTEGRATION") == "1"
# vrrpfw's per-file locks (vrrpfw.persist.lock) go to a directory of this
# session, inherited by every vrrpfw the tests start, not to /run/vrrpfw.
# Not below /tmp: vrrpfw refuses a lock directory below one that others can
# write to (sticky or not), so root's session directory goes in /run, a
# user's in their runtime directory (tests/lockdirs.py gives each test one).
LOCK_BASE = next((d for d in ("/run" if os.geteuid() == 0 else "", os.environ.get("XDG_RUNTIME_DIR", ""),
                              os.path.expanduser("~")) if d and os.access(d, os.W_OK | os.X_OK)), None)
LOCK_DIR = tempfile.mkdtemp(prefix="vrrpfw-test-locks-", dir=LOCK_BASE)
os.environ.setdefault("VRRPFW_LOCK_DIR", LOCK_DIR)
# The xtables lock of this process (each parallel worker has its own): the
# tests' iptables commands (restore without -w) and vrrpfw's lock are taken
# in namespaces only this worker touches, so workers must not make each
# other fail with "Another app is currently holding the xtables lock".
# Tests that exercise the lock set their own XTABLES_LOCKFILE.
os.environ["XTABLES_LOCKFILE"] = os.path.join(LOCK_DIR, "xtables.lock")
# No test reaches the machine's system bus: the bus is not per network
# namespace, so a vrrpfw that `auto` sends to firewalld from inside a test's
# namespace would change the machine's own firewalld.  Tests that need
# firewalld start their own bus (tests/fwharness.py) and name it in their
# namespace's environment, which overrides this.
os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/vrrpfw-tests-start-their-own-bus"
# The corpus verdicts of every parallel worker, for the summary (corpus_stats.py).
# Set here, in the controlling process, before xdist starts the workers; a
# worker keeps the value it inherits, and only the process that made the
# directory removes it (in pytest_unconfigure: after the summary is printed).
STATS_DIR: Optional[str] = None
if "VRRPFW_CORPUS_STATS" not in os.environ:
    STATS_DIR = tempfile.mkdtemp(prefix="vrrpfw-test-stats-")
    os.environ["VRRPFW_CORPUS_STATS"] = os.path.join(STATS_DIR, "corpus-verdicts.jsonl")
BASE_TOOLS = ("ip", "iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore", "nft", "setpriv")
TOOL_GROUPS: Dict[str, Tuple[str, ...]] = {
    "firewalld": ("firewalld", "firewall-cmd", "dbus-daemon"),
    "keepalived": ("keepalived",),
    "iptables-nft": ("iptables-nft", "iptables-nft-save", "iptables-nft-restore"),
}
# Modules other tests' owners edit: their needs, declared here by file name.
MODULE_NEEDS: Dict[str, Tuple[str, ...]] = {
    "test_firewalld.py": ("firewalld",),
    "test_prove.py": ("iptables-nft",),
    "test_property.py": ("iptables-nft",),
    "test_corpus.py": ("iptables-nft",),
    "test_corpus_ttl.py": ("iptables-nft",),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(*tools): an integration test that needs these tools beyond the base set; each is a "
        f"group ({', '.join(TOOL_GROUPS)}) or a command name or path",
    )
    one_end_guard.configure(config)


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    one_end_guard.check_visible(items)


def needed_tools(needs: Iterable[str]) -> List[str]:
    """The base tools, then every tool of each group or command in ``needs``."""
    tools = list(BASE_TOOLS)
    for need in needs:
        for tool in TOOL_GROUPS.get(need, (need,)):
            if tool not in tools:
                tools.append(tool)
    return tools


def integration_missing(needs: Iterable[str] = ()) -> Optional[str]:
    if os.geteuid() != 0:
        return "integration tests need root (network namespaces, netfilter)"
    for tool in needed_tools(needs):
        if shutil.which(tool) is None:
            return f"this integration test needs {tool}"
    return None


def item_needs(item: pytest.Item) -> List[str]:
    """What ``item`` needs beyond the base tools: its module's entry in
    MODULE_NEEDS, then every ``needs`` marker on it, its class and module."""
    needs = list(MODULE_NEEDS.get(os.path.basename(str(item.fspath)), ()))
    for mark in item.iter_markers("needs"):
        needs.extend(mark.args)
    return needs


@pytest.fixture(autouse=True)
def _integration_gate(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration") is None:
        return
    reason = integration_missing(item_needs(request.node))
    if reason:
        if REQUIRE:
            pytest.fail(f"{reason} (VRRPFW_REQUIRE_INTEGRATION=1: skipping is not allowed)")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _invoked_by_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as root by root, even when the suite itself runs under sudo:
    messages quote files only where the invoking user (SUDO_UID) may read
    them, and the tests that assert quoted text expect root's view.  The
    tests of that rule set SUDO_UID themselves.  The audience is reset too
    (the Ansible module's run sets it to "anyone" for the process)."""
    from vrrpfw.host import invoker

    monkeypatch.delenv("SUDO_UID", raising=False)
    monkeypatch.delenv("SUDO_GID", raising=False)
    monkeypatch.setattr(invoker, "_audience", invoker.invoking_user)


def pytest_unconfigure(config: pytest.Config) -> None:
    if STATS_DIR is not None:
        shutil.rmtree(STATS_DIR, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(LOCK_DIR, ignore_errors=True)
    if not REQUIRE:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped:
        if reporter is not None:
            reporter.write_line(f"{skipped} test(s) skipped, which VRRPFW_REQUIRE_INTEGRATION=1 forbids")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    from corpus_stats import summary

    for line in summary():
        terminalreporter.write_line(line)


@pytest.fixture
def no_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused request must not get as far as choosing a firewall: any
    call to backend selection fails the test."""
    from vrrpfw.backends import registry

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a refused request reached backend selection")

    monkeypatch.setattr(registry, "select_layers", refuse)


@pytest.fixture
def no_firewall(no_backends: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing past validation: besides backend selection (no_backends), a
    run of open/check/close (vrrpfw.run.run), the firewall listing of
    ``backends`` (api.backends) and prove's reading of the host's rules
    fail the test.  A module whose every test is a refusal uses it as
    ``pytestmark = pytest.mark.usefixtures("no_firewall")``."""

    def reached(*_a: object, **_k: object) -> None:
        raise AssertionError("a refused request got past validation to the firewall")

    monkeypatch.setattr("vrrpfw.run.run", reached)
    monkeypatch.setattr("vrrpfw.api.backends", reached)
    monkeypatch.setattr("vrrpfw.prove.proof.capture_rules", reached)


@pytest.fixture
def as_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invoking user is nobody (uid 65534): messages may quote only what
    nobody could read."""
    from vrrpfw.host import invoker

    monkeypatch.setattr(invoker, "_audience", lambda: invoker.User(65534, 65534, frozenset({65534})))
