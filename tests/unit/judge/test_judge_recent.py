"""The ``recent`` match judged from ``/proc/net/xt_recent`` text
(vrrpfw.judge.dynamic): pure logic.  test_recent_path.py holds the shapes
against the kernel with real adverts."""

from __future__ import annotations

import pytest

from vrrpfw.judge.dynamic import DynState, parse_xt_recent, recent_match
from vrrpfw.judge.iptables import parse_rule
from vrrpfw.judge.rules import Packet, Tri
from vrrpfw.model import Direction

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

NOW = 4_295_000_000
PROC = f"""\
src=192.0.2.2 ttl: 64 last_seen: {NOW - 100} oldest_pkt: 3 {NOW - 100_000}, {NOW - 5_000}, {NOW - 100}
src=192.0.2.9 ttl: 0 last_seen: {NOW - 10} oldest_pkt: 1 {NOW - 10}
src=fd00::2 ttl: 255 last_seen: {NOW} oldest_pkt: 1 {NOW}
"""
ENTRIES = parse_xt_recent(PROC)


def recent(text, src="192.0.2.2", entries=None, fillers=None, jiffies=NOW, src_net="192.0.2.0/24"):
    rule = parse_rule(f"-A INPUT -m recent {text} -j DROP")
    assert rule is not None
    state = DynState(recent={"L": ENTRIES if entries is None else entries}, jiffies=jiffies,
                     fillers=fillers or {})
    pkt = Packet(Direction.IN, "eth0", "224.0.0.18", src, src_net=src_net, state=state)
    return recent_match(rule.matches[0], pkt)


def test_proc_lines_parse_with_stamps_and_ttl():
    assert [e.addr for e in ENTRIES] == ["192.0.2.2", "192.0.2.9", "fd00::2"]
    assert ENTRIES[0].ttl == 64 and len(ENTRIES[0].stamps) == 3 and ENTRIES[0].stamps[-1] == NOW - 100


@pytest.mark.parametrize("text,src,want", [
    ("--rcheck --name L", "192.0.2.2", Tri.YES),
    ("--rcheck --name L", "192.0.2.3", Tri.NO),
    ("! --rcheck --name L", "192.0.2.3", Tri.YES),
    ("--update --name L --hitcount 3", "192.0.2.2", Tri.YES),
    ("--update --name L --hitcount 4", "192.0.2.2", Tri.NO),  # an update only refreshes a match
    # 5,000 jiffies is 5 s at HZ 1000 and 50 s at HZ 100: within 60 s either way.
    ("--rcheck --name L --seconds 60 --hitcount 2", "192.0.2.2", Tri.YES),
    # 100,000 jiffies: 100 s at HZ 1000, 1000 s at HZ 100: outside 60 s either way.
    ("--rcheck --name L --seconds 60 --hitcount 3", "192.0.2.2", Tri.NO),
    # 5,000 jiffies within 10 s at HZ 1000 (5 s) but not at HZ 100 (50 s): unknown.
    ("--rcheck --name L --seconds 10 --hitcount 2", "192.0.2.2", Tri.MAYBE),
    ("--rcheck --name L --rttl", "192.0.2.2", Tri.NO),  # listed with TTL 64, adverts have 255
    ("--rcheck --name L --rttl", "192.0.2.9", Tri.YES),  # added by hand: TTL 0 matches any
    ("--rcheck --name L --rdest", "192.0.2.2", Tri.NO),  # the group is not listed
    ("--rcheck --name L --mask 255.255.255.0", "192.0.2.77", Tri.YES),
    ("--remove --name L", "192.0.2.9", Tri.YES),
    ("--set --name L", "192.0.2.3", Tri.YES),  # always matches (and lists the source)
    ("--rcheck --name OTHER", "192.0.2.2", Tri.MAYBE),  # not read
])
def test_list_entries_decide(text, src, want):
    assert recent(text, src) is want


def test_time_unknown_makes_a_windowed_test_a_maybe():
    assert recent("--rcheck --name L --seconds 60", jiffies=None) is Tri.MAYBE
    assert recent("--rcheck --name L") is Tri.YES  # no window: the entry decides


def test_unknown_peer_on_the_subnet():
    assert recent("--rcheck --name L", src=None) is Tri.MAYBE  # 192.0.2.2 or .9 may be the peer
    assert recent("--rcheck --name L", src=None, entries=[]) is Tri.NO
    assert recent("--rcheck --name L", src=None, src_net="198.51.100.0/24") is Tri.NO


def test_a_list_filled_by_adverts_is_a_maybe_unless_the_filler_never_matches_them():
    every = parse_rule("-A INPUT -m recent --set --name L")
    ssh = parse_rule("-A INPUT -p tcp --dport 22 -m recent --set --name L")
    assert every is not None and ssh is not None
    assert recent("--update --name L --seconds 60 --hitcount 4", "192.0.2.3", entries=[],
                  fillers={"recent list L": [ssh]}) is Tri.NO
    assert recent("--update --name L --seconds 60 --hitcount 4", "192.0.2.3", entries=[],
                  fillers={"recent list L": [every]}) is Tri.MAYBE
    # An outbound rule can fill it too (with the group as --rdest, say).
    out = parse_rule("-A OUTPUT -o eth0 -m recent --set --name L")
    assert out is not None
    assert recent("--rcheck --name L", "192.0.2.3", entries=[], fillers={"recent list L": [out]}) is Tri.MAYBE


def test_rttl_with_the_adverts_hop_limit_unknown_is_a_maybe():
    """keepalived's IPv6 unicast adverts carry the kernel's default hop
    limit, not known here: an entry listed with another TTL may match."""
    rule = parse_rule("-A INPUT -m recent --rcheck --name L --rttl -j DROP")
    assert rule is not None
    pkt = Packet(Direction.IN, "eth0", "192.0.2.1", "192.0.2.2", ttl=None,
                 state=DynState(recent={"L": ENTRIES}, jiffies=NOW))
    assert recent_match(rule.matches[0], pkt) is Tri.MAYBE
