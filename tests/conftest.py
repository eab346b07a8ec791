"""Integration tests need root, ``ip netns`` and the netfilter tools.

Where they are missing the tests skip, except when VRRPFW_REQUIRE_INTEGRATION=1
(set by tests/run.sh under CI): then the would-be skip is a failure, and
any skip at all fails the session, so CI can never go green on a suite that
did not really run.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Optional

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REQUIRE = os.environ.get("VRRPFW_REQUIRE_INTEGRATION") == "1"
TOOLS = ("ip", "iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore", "nft",
         "firewalld", "firewall-cmd", "dbus-daemon", "keepalived", "setpriv")


def integration_missing() -> Optional[str]:
    if os.geteuid() != 0:
        return "integration tests need root (network namespaces, netfilter)"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"integration tests need {tool}"
    return None


@pytest.fixture(autouse=True)
def _integration_gate(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration") is None:
        return
    reason = integration_missing()
    if reason:
        if REQUIRE:
            pytest.fail(f"{reason} (VRRPFW_REQUIRE_INTEGRATION=1: skipping is not allowed)")
        pytest.skip(reason)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
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
