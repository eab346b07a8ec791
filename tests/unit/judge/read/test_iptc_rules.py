"""Pure helpers of the iptables backend (no libiptc needed)."""

import pytest

from vrrpfw.judge.read.iptc_rules import could_match_vrrp
from vrrpfw.judge.rules import FwRule, Match, vrrpfw_key

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

COMMENT = (Match("comment", (("comment", ("vrrpfw",)),)),)


def test_protocol_prefilter():
    assert could_match_vrrp(0, 0)  # any protocol
    assert could_match_vrrp(112, 0)
    assert not could_match_vrrp(6, 0)  # -p tcp
    assert could_match_vrrp(6, 0x40)  # ! -p tcp
    assert could_match_vrrp(112, 0x40)  # ! -p vrrp: matches AH
    assert not could_match_vrrp(0, 0x40)  # ! -p all


def test_vrrpfw_key_recognises_only_our_exact_shape():
    ours_in = FwRule("INPUT", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0",
                     matches=COMMENT, target="ACCEPT")
    assert vrrpfw_key(ours_in) == ("in", "eth0", "224.0.0.18")
    ours_out = FwRule("OUTPUT", protocol="112", dst="224.0.0.18/32", out_iface="eth0",
                      matches=COMMENT, target="ACCEPT")
    assert vrrpfw_key(ours_out) == ("out", "eth0", "224.0.0.18")
    for other in (
        FwRule("INPUT", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0", target="ACCEPT"),
        FwRule("INPUT", protocol="vrrp", dst="224.0.0.18/32", in_iface="!eth0", matches=COMMENT,
               target="ACCEPT"),
        FwRule("INPUT", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0", matches=COMMENT,
               target="DROP"),
        FwRule("INPUT", protocol="tcp", dst="224.0.0.18/32", in_iface="eth0", matches=COMMENT,
               target="ACCEPT"),
        FwRule("INPUT", protocol="vrrp", dst="224.0.0.0/4", in_iface="eth0", matches=COMMENT,
               target="ACCEPT"),
    ):
        assert vrrpfw_key(other) is None


def test_vrrpfw_key_anywhere_finds_our_rule_moved_into_another_chain():
    moved = FwRule("helper", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0",
                   matches=COMMENT, target="ACCEPT")
    assert vrrpfw_key(moved) is None  # it does not allow VRRP where vrrpfw looks
    assert vrrpfw_key(moved, anywhere=True) == ("in", "eth0", "224.0.0.18")
    out = FwRule("output", protocol="vrrp", dst="224.0.0.18/32", out_iface="eth0",
                 matches=COMMENT, target="ACCEPT")
    assert vrrpfw_key(out, anywhere=True) == ("out", "eth0", "224.0.0.18")
    both = FwRule("FORWARD", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0",
                  out_iface="eth1", matches=COMMENT, target="ACCEPT")
    assert vrrpfw_key(both, anywhere=True) is None  # not a shape vrrpfw writes
