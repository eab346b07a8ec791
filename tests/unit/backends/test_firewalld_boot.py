"""Where vrrpfw's permanent firewalld allowance must be when the interface's
runtime zone differs from the zone firewalld's permanent configuration
gives it (the zone after a reload or reboot)."""

from __future__ import annotations

import pytest

from vrrpfw.backends.firewalld.boot import permanent_targets, source_note, zone_note

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def test_same_zone_adds_nothing():
    assert permanent_targets(["internal"], "internal", "internal", False) == ["internal"]


def test_boot_zone_added_where_it_does_not_allow():
    assert permanent_targets(["internal"], "internal", "public", False) == ["internal", "public"]


def test_boot_zone_that_allows_already_is_left_alone():
    assert permanent_targets(["internal"], "internal", "public", True) == ["internal"]


def test_boot_zone_added_when_the_runtime_needs_nothing():
    assert permanent_targets([], "internal", "public", False) == ["public"]


def test_policies_kept_and_no_duplicates():
    got = permanent_targets(["policy_p", "public", "internal"], "internal", "public", False)
    assert got == ["policy_p", "public", "internal"]


def test_no_boot_zone_adds_nothing():
    assert permanent_targets(["internal"], "internal", "", False) == ["internal"]


def test_note_names_both_zones_and_network_manager():
    assert zone_note("eth0", "public", "public", True) is None
    plain = zone_note("eth0", "internal", "public", False)
    assert plain is not None and plain.startswith("eth0 is in zone internal now, in public after a reload")
    assert "NetworkManager" not in plain
    nm = zone_note("eth0", "internal", "public", True)
    assert nm is not None and "connection.zone" in nm


def test_same_source_bindings_say_nothing():
    assert source_note({"trusted": ["192.0.2.2"]}, {"trusted": ["192.0.2.2"]}) is None
    assert source_note({}, {}) is None


def test_differing_source_bindings_are_named_both_ways():
    note = source_note({"trusted": ["192.0.2.2/32"]}, {"dmz": ["198.51.100.0/24"]})
    assert note is not None
    assert "bound at runtime only: 192.0.2.2/32 -> zone trusted" in note
    assert "bound in the permanent configuration only: 198.51.100.0/24 -> zone dmz" in note
    assert "persisted 'uncertain' at best" in note
