"""vrrpfw.host.conntrack's pure parts: which flows a closed rule had, and
how conntrack's report of deletions is read."""

from __future__ import annotations

import pytest

from vrrpfw.host import conntrack
from vrrpfw.host.conntrack import Flow, flows
from vrrpfw.host.run import Ran
from vrrpfw.results import Action, Persisted, RuleReport, Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def test_multicast_rule_is_one_flow_to_the_group_from_anyone():
    assert flows("224.0.0.18") == [Flow(112, None, "224.0.0.18")]
    assert flows("ff02::12 ttl 255") == [Flow(112, None, "ff02::12")]
    assert flows("224.0.0.18 ah") == [Flow(51, None, "224.0.0.18")]


def test_unicast_rule_is_both_directions_between_peer_and_local():
    assert flows("peer 192.0.2.2 local 192.0.2.1 ah") == [
        Flow(51, "192.0.2.2", "192.0.2.1"), Flow(51, "192.0.2.1", "192.0.2.2")]


def test_unreadable_selector_gives_no_flow():
    assert flows("") == [] and flows("peer x local y") == [] and flows("peer 192.0.2.2") == []


def test_argv_names_family_protocol_and_addresses():
    assert Flow(112, None, "ff02::12").argv() == [
        "conntrack", "-D", "-f", "ipv6", "-p", "112", "-d", "ff02::12"]
    assert Flow(51, "192.0.2.2", "192.0.2.1").argv() == [
        "conntrack", "-D", "-f", "ipv4", "-p", "51", "-s", "192.0.2.2", "-d", "192.0.2.1"]


def test_count_reads_the_deleted_entries():
    assert conntrack._count("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n") == 3
    assert conntrack._count("") == 0


def _report(group, action):
    return RuleReport("in", "eth1", group, "INPUT", "", Runtime.ABSENT, Persisted.ABSENT, action)


def test_only_rules_removed_at_runtime_are_forgotten():
    reports = [_report("224.0.0.18", Action.DELETE), _report("ff02::12", Action.NONE),
               _report("224.0.0.18", Action.DELETE)]
    assert conntrack.closed_selectors(reports) == ["224.0.0.18"]


def test_missing_tool_says_what_is_left(monkeypatch):
    monkeypatch.setattr(conntrack, "run", lambda argv, timeout: Ran(127, missing=True))
    deleted, warnings = conntrack.forget(["224.0.0.18"])
    assert deleted == 0 and len(warnings) == 1 and "not installed" in warnings[0]
