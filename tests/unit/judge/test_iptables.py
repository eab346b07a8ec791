"""iptables rule text (``iptables-save``, ``iptables -S``) into the
evaluator's model (vrrpfw.judge.iptables): options, negation, matches and their
parameters, targets, gotos, counters, and whole saved tables; see
tests/mutation.sh."""

import pytest

from vrrpfw.judge.iptables import _address, parse_rule, parse_save
from vrrpfw.judge.matches import match_rule
from vrrpfw.judge.rules import FwRule, Match, Packet, Tri, vrrpfw_key
from vrrpfw.model import Direction

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = Packet(Direction.IN, "eth0", "224.0.0.18")


def test_address():
    assert _address("10.0.0.1") == "10.0.0.1/32"
    assert _address("10.0.0.0/8") == "10.0.0.0/8"


def test_vrrpfw_rule():
    line = '-A INPUT -d 224.0.0.18/32 -i eth0 -p vrrp -m comment --comment vrrpfw -j ACCEPT'
    fw = parse_rule(line)
    assert fw == FwRule("INPUT", protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0",
                        matches=(Match("comment", (("comment", ("vrrpfw",)),)),), target="ACCEPT", text=line)
    assert vrrpfw_key(fw) == ("in", "eth0", "224.0.0.18")


def test_long_options_and_plain_addresses():
    fw = parse_rule("--append OUTPUT --source 192.0.2.1 --destination 224.0.0.18 --out-interface eth1 "
                    "--protocol 112 --jump ACCEPT")
    assert (fw.chain, fw.src, fw.dst, fw.out_iface, fw.protocol, fw.target, fw.goto) == \
        ("OUTPUT", "192.0.2.1/32", "224.0.0.18/32", "eth1", "vrrp", "ACCEPT", False)
    fw = parse_rule("-A INPUT --in-interface eth0 -s 10.0.0.0/8 -j DROP")
    assert (fw.in_iface, fw.src) == ("eth0", "10.0.0.0/8")


def test_negation():
    fw = parse_rule("-A INPUT ! -s 10.0.0.1 ! -i eth0 ! -p tcp -d 224.0.0.18 -j DROP")
    assert (fw.src, fw.in_iface, fw.protocol, fw.dst) == ("!10.0.0.1/32", "!eth0", "!tcp", "224.0.0.18/32")
    fw = parse_rule("-A INPUT ! -p 112 -j DROP")
    assert fw.protocol == "!vrrp"
    assert parse_rule("-A INPUT -p 6 -j DROP").protocol == "6"
    fw = parse_rule("-A INPUT -m conntrack ! --ctstate NEW,RELATED -m mark --mark 0x1/0xff -j DROP")
    assert fw.matches == (Match("conntrack", (("ctstate", ("!", "NEW,RELATED")),)),
                          Match("mark", (("mark", ("0x1/0xff",)),)))
    assert match_rule(fw, IN) is Tri.NO


def test_match_parameters():
    fw = parse_rule('-A INPUT -m addrtype --src-type LOCAL --dst-type MULTICAST '
                    '-m comment --comment "two words" -m set --match-set blk src -j DROP')
    assert fw.matches == (
        Match("addrtype", (("src-type", ("LOCAL",)), ("dst-type", ("MULTICAST",)))),
        Match("comment", (("comment", ("two words",)),)),
        Match("set", (("match-set", ("blk", "src")),)),
    )
    assert fw.comment == "two words"
    fw = parse_rule("-A INPUT --match limit --limit 5/sec -j ACCEPT")
    assert fw.matches == (Match("limit", (("limit", ("5/sec",)),)),)
    # An option before any match names no match: dropped.
    assert parse_rule("-A INPUT --dport 5 -j ACCEPT").matches == ()
    # A match directly followed by an address option is closed by it.
    fw = parse_rule("-A INPUT -m pkttype --pkt-type multicast -d 224.0.0.18 -m limit -j ACCEPT")
    assert fw.matches == (Match("pkttype", (("pkt-type", ("multicast",)),)), Match("limit"))
    assert fw.dst == "224.0.0.18/32"


def test_targets_and_target_options():
    fw = parse_rule("-A INPUT -g FOO")
    assert (fw.target, fw.goto) == ("FOO", True)
    fw = parse_rule("-A INPUT --goto FOO")
    assert (fw.target, fw.goto) == ("FOO", True)
    fw = parse_rule("-A INPUT -j LOG --log-prefix x -p tcp")  # after the target: target options
    assert (fw.target, fw.protocol, fw.matches) == ("LOG", None, ())
    fw = parse_rule("-A PREROUTING -p vrrp -j CT --notrack")
    assert (fw.target, fw.effects) == ("CT", ("NOTRACK",))
    assert parse_rule("-A PREROUTING -j CT --zone 1").effects == ()
    assert parse_rule("-A PREROUTING -j NOTRACK").effects == ()  # the target itself says it
    assert parse_rule("-A INPUT -m comment --comment x").target == ""


def test_insert_counters_and_fragments():
    fw = parse_rule("-I INPUT 3 -p vrrp -j ACCEPT")
    assert (fw.chain, fw.protocol, fw.target) == ("INPUT", "vrrp", "ACCEPT")
    fw = parse_rule("--insert INPUT -p vrrp -j ACCEPT")
    assert (fw.protocol, fw.target) == ("vrrp", "ACCEPT")
    fw = parse_rule("[12:3456] -A INPUT -j DROP")
    assert (fw.chain, fw.target, fw.text) == ("INPUT", "DROP", "-A INPUT -j DROP")
    fw = parse_rule("  -A INPUT -j DROP  ")
    assert fw.text == "-A INPUT -j DROP"
    assert parse_rule("-A INPUT -f -j DROP").matches == (Match("never"),)
    assert parse_rule("-A INPUT ! -f -j DROP").matches == (Match("always"),)
    fw = parse_rule("-A INPUT ! -f -s 10.0.0.1 -j DROP")  # the "!" belongs to -f only
    assert fw.src == "10.0.0.1/32"


def test_not_rules():
    for line in ("", "-A", "COMMIT", ":INPUT ACCEPT [0:0]", "-P INPUT DROP", "-N FOO", "-D INPUT 1",
                 '-A INPUT -m comment --comment "open', "# -A INPUT -j DROP"):
        assert parse_rule(line) is None, line
    assert parse_rule("-A INPUT") == FwRule("INPUT", text="-A INPUT")
    # A dangling option at the end is ignored rather than misread.
    assert parse_rule("-A INPUT -s").src is None
    assert parse_rule("-A INPUT -j").target == ""


SAVED = """# Generated by iptables-save
*raw
:PREROUTING ACCEPT [0:0]
-A PREROUTING -p vrrp -j NOTRACK
COMMIT
*filter
:INPUT DROP [10:20]
:FORWARD ACCEPT [0:0]
:FOO - [0:0]
-A INPUT -j FOO
[1:2] -A FOO -p vrrp -j ACCEPT
-A BAR -j DROP
-X not a rule

COMMIT
"""


def test_parse_save():
    t = parse_save(SAVED)
    assert set(t) == {"raw", "filter"}
    policy, rules = t["raw"]["PREROUTING"]
    assert policy == "ACCEPT" and [r.target for r in rules] == ["NOTRACK"]
    f = t["filter"]
    assert list(f) == ["INPUT", "FORWARD", "FOO", "BAR"]
    assert f["INPUT"][0] == "DROP" and f["FORWARD"] == ("ACCEPT", [])
    assert f["FOO"][0] is None and [r.target for r in f["FOO"][1]] == ["ACCEPT"]
    assert f["BAR"][0] is None and [r.target for r in f["BAR"][1]] == ["DROP"]  # a chain never declared
    assert [r.target for r in f["INPUT"][1]] == ["FOO"]
    assert parse_save("-A INPUT -j DROP\n:INPUT DROP\n") == {}  # outside a table
    assert parse_save("* nat \n:POSTROUTING ACCEPT\n") == {"nat": {"POSTROUTING": ("ACCEPT", [])}}
    assert parse_save("*filter\n:INPUT\n") == {"filter": {"INPUT": (None, [])}}


def test_more_parse_edges():
    assert parse_rule("-I INPUT") == FwRule("INPUT", text="-I INPUT")
    assert parse_rule('[1:2] -A INPUT -m comment --comment "x]y" -j DROP').comment == "x]y"
    assert parse_rule("-A INPUT -m").matches == ()
    assert parse_rule("-A INPUT -m limit").matches == (Match("limit"),)
    assert parse_rule("-A INPUT -s 10.0.0.1").src == "10.0.0.1/32"
    fw = parse_rule("-A INPUT -m a --x 1 ! --y 2")
    assert fw.matches == (Match("a", (("x", ("1",)), ("y", ("!", "2")))),)


def test_fragment_in_either_spelling_never_matches_an_advert():


    for spelling in ("-f", "--fragment"):
        assert parse_rule(f"-A INPUT {spelling} -j DROP").matches == (Match("never"),)
        assert parse_rule(f"-A INPUT ! {spelling} -j DROP").matches == (Match("always"),)


def test_restore_file_policy_lines():
    """iptables-restore takes ``-P CHAIN POLICY`` too (strongSwan's test
    hosts write their files so): the last word on a chain's policy wins, and
    the chain stays a built-in one with its rules."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-P INPUT DROP\n"
            "-P OUTPUT DROP\nCOMMIT\n")
    tables = parse_save(text)
    assert tables["filter"]["INPUT"][0] == "DROP" and len(tables["filter"]["INPUT"][1]) == 1
    assert tables["filter"]["OUTPUT"] == ("DROP", [])
