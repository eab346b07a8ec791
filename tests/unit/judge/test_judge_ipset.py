"""The ipset match judged from ``ipset save`` text (vrrpfw.judge.dynamic):
pure membership logic.  The integration tests (test_ipset_path.py) hold the
same shapes against the kernel with real adverts."""

from __future__ import annotations

import pytest

from vrrpfw.judge.dynamic import DynState, ipset_match, parse_ipset_save
from vrrpfw.judge.iptables import parse_rule
from vrrpfw.judge.matches import match_extension, match_rule
from vrrpfw.judge.rules import Match, Packet, Tri
from vrrpfw.model import Direction

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

SAVE = """\
create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600 bucketsize 12 initval 0xb6dacbb8
add f2b-sshd 192.0.2.2 timeout 99
create p hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xc46b9fc0
add p 192.0.2.2,tcp:22
add p 192.0.2.3,vrrp:0
create n hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xec809177
add n 192.0.2.0/24
add n 192.0.2.2 nomatch
create b bitmap:ip range 192.0.2.0-192.0.2.255
add b 192.0.2.4
create i hash:net,iface family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xbf5bcd3f
add i 192.0.2.0/24,eth0
create m hash:ip family inet hashsize 1024 maxelem 65536 netmask 24 bucketsize 12 initval 0x4e94bd7b
add m 192.0.2.0
create v6 hash:ip family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0xbf0756d9
add v6 fd00::2
create c hash:ip family inet hashsize 1024 maxelem 65536 counters comment bucketsize 12 initval 0xdfd0e890
add c 192.0.2.9 packets 0 bytes 0 comment "x, y"
create empty hash:ip family inet hashsize 1024 maxelem 65536
create big hash:net family inet hashsize 1024 maxelem 65536
add big 192.0.0.0/16
create bp bitmap:port range 0-1024
add bp 0
create bs bitmap:port range 0-1024
add bs 22
create l list:set size 8
add l f2b-sshd
add l n
"""
SETS = parse_ipset_save(SAVE)


def pkt(src="192.0.2.2", src_net="192.0.2.0/24", state=None, direction=Direction.IN, iface="eth0",
        group="224.0.0.18"):
    return Packet(direction, iface, group, src, src_net=src_net,
                  state=DynState(ipsets=SETS) if state is None else state)


def ipset(words, **kw):
    return ipset_match(Match("set", (("match-set", tuple(words)),) + tuple(
        (k.replace("_", "-"), ()) for k in kw)), pkt(**{k: v for k, v in kw.items() if k == "src"}))


def test_save_parses_types_flags_and_quoted_comments():
    assert SETS["f2b-sshd"].type == "hash:ip" and SETS["f2b-sshd"].timeouts
    assert SETS["n"].entries[1].nomatch and not SETS["n"].entries[0].nomatch
    assert SETS["p"].dimensions == ("ip", "port")
    assert SETS["m"].netmask == 24 and SETS["v6"].family == "inet6" and SETS["b"].family is None
    assert SETS["c"].entries[0].dims == ("192.0.2.9",)
    assert [e.dims for e in SETS["l"].entries] == [("f2b-sshd",), ("n",)]


@pytest.mark.parametrize("words,src,want", [
    (("f2b-sshd", "src"), "192.0.2.2", Tri.YES),
    (("f2b-sshd", "src"), "192.0.2.3", Tri.NO),
    (("!", "f2b-sshd", "src"), "192.0.2.2", Tri.NO),
    (("!", "f2b-sshd", "src"), "192.0.2.3", Tri.YES),
    (("f2b-sshd", "dst"), "192.0.2.2", Tri.NO),  # dst is the group
    (("f2b-sshd", "src,dst"), "192.0.2.2", Tri.YES),  # more flags than dimensions: the first counts
    (("p", "src,dst"), "192.0.2.2", Tri.NO),  # tcp:22: an advert has no tcp port
    (("p", "src,dst"), "192.0.2.3", Tri.YES),  # vrrp:0 is how ipset stores a portless protocol
    (("p", "src"), "192.0.2.3", Tri.NO),  # fewer flags than dimensions: the kernel never matches
    (("n", "src"), "192.0.2.2", Tri.NO),  # the most specific entry is nomatch
    (("n", "src"), "192.0.2.7", Tri.YES),
    (("b", "src"), "192.0.2.4", Tri.YES),
    (("bp", "src"), "192.0.2.4", Tri.NO),  # bitmap:port: tcp and udp only, not even port 0
    (("bs", "dst"), "192.0.2.4", Tri.NO),
    (("m", "src"), "192.0.2.77", Tri.YES),  # netmask 24 stores the network
    (("i", "src,src"), "192.0.2.7", Tri.YES),  # iface dimension with src: the input interface
    (("i", "src,dst"), "192.0.2.7", Tri.NO),  # dst: the output interface, none inbound
    (("v6", "src"), "192.0.2.2", Tri.NO),  # an IPv6 set never matches an IPv4 advert
    (("l", "src"), "192.0.2.2", Tri.YES),
    (("l", "src"), "192.0.2.3", Tri.YES),  # in n's /24
    (("l", "src"), "10.0.0.1", Tri.NO),
    (("missing", "src"), "192.0.2.2", Tri.MAYBE),
])
def test_membership_of_a_known_source(words, src, want):
    assert ipset(words, src=src) is want


def test_return_nomatch_inverts_net_types_only():
    m = Match("set", (("match-set", ("n", "src")), ("return-nomatch", ())))
    assert ipset_match(m, pkt(src="192.0.2.2")) is Tri.YES
    assert ipset_match(m, pkt(src="192.0.2.7")) is Tri.NO
    m = Match("set", (("match-set", ("f2b-sshd", "src")), ("return-nomatch", ()),
                      ("update-counters", ("!",))))
    assert ipset_match(m, pkt(src="192.0.2.2")) is Tri.YES  # hash:ip has no nomatch: no effect


@pytest.mark.parametrize("name,want", [
    ("f2b-sshd", Tri.MAYBE),  # one banned address on the peer's /24
    ("empty", Tri.NO),
    ("v6", Tri.NO),
    ("big", Tri.YES),  # the whole /24 lies in the /16
    ("n", Tri.MAYBE),  # the /24 matches, the peer may be the nomatch address
])
def test_unknown_peer_lies_on_the_subnet(name, want):
    assert ipset_match(Match("set", (("match-set", (name, "src")),)), pkt(src=None)) is want


def test_unread_ipsets_and_counter_conditions_are_maybe():
    unread = pkt(state=DynState(ipsets=None, ipset_unread="ipset is not installed"))
    assert ipset_match(Match("set", (("match-set", ("f2b-sshd", "src")),)), unread) is Tri.MAYBE
    no_state = Packet(Direction.IN, "eth0", "224.0.0.18", "192.0.2.2")
    assert ipset_match(Match("set", (("match-set", ("empty", "src")),)), no_state) is Tri.MAYBE
    m = Match("set", (("match-set", ("f2b-sshd", "src")), ("packets-gt", ("5",))))
    assert ipset_match(m, pkt()) is Tri.MAYBE


def test_a_set_filled_from_packets_the_advert_matches_is_a_maybe():
    filler = parse_rule("-A INPUT -j SET --add-set empty src")
    assert filler is not None and "fills:ipset empty" in filler.effects
    state = DynState(ipsets=SETS, fillers={"ipset empty": [filler]})
    m = Match("set", (("match-set", ("empty", "src")),))
    assert ipset_match(m, pkt(state=state)) is Tri.MAYBE
    ssh_only = parse_rule("-A INPUT -p tcp --dport 22 -j SET --add-set empty src")
    assert ssh_only is not None
    state = DynState(ipsets=SETS, fillers={"ipset empty": [ssh_only]})
    assert ipset_match(m, pkt(state=state)) is Tri.NO  # ssh never fills it from an advert
    # Members present decide "yes" whoever fills.
    state = DynState(ipsets=SETS, fillers={"ipset f2b-sshd": [filler]})
    assert ipset_match(Match("set", (("match-set", ("f2b-sshd", "src")),)), pkt(state=state)) is Tri.YES


def test_fail2ban_rule_text_reaches_the_ipset_match_not_nft_sets():
    rule = parse_rule("-A INPUT -p tcp -m multiport --dports 22 -m set --match-set f2b-sshd src "
                      "-j REJECT --reject-with icmp-port-unreachable")
    assert rule is not None and match_rule(rule, pkt()) is Tri.NO  # tcp only
    rule = parse_rule("-A INPUT -m set --match-set f2b-sshd src -j REJECT")
    assert rule is not None and match_rule(rule, pkt()) is Tri.YES
    assert match_rule(rule, pkt(src="192.0.2.3")) is Tri.NO
    # nft's own membership tests keep their evaluator.
    nft = Match("set", (("key", ("saddr",)), ("values", ("192.0.2.2/32",))))
    assert match_extension(nft, pkt()) is Tri.YES


def test_outbound_adverts_test_our_own_address():
    out = pkt(src="192.0.2.2", direction=Direction.OUT)
    assert ipset_match(Match("set", (("match-set", ("i", "src,dst")),)), out) is Tri.YES
    assert ipset_match(Match("set", (("match-set", ("i", "src,src")),)), out) is Tri.NO


def test_the_verdict_names_what_it_depends_on_and_what_was_not_read():
    from vrrpfw.judge.chaineval import evaluate
    from vrrpfw.judge.rules import Outcome

    rule = parse_rule("-A INPUT -m set --match-set f2b-sshd src -j REJECT")
    assert rule is not None
    d = evaluate([rule], "ACCEPT", pkt(), lambda name: None)
    assert d.outcome is Outcome.DROP and d.depends == ["ipset f2b-sshd"]
    d = evaluate([rule], "ACCEPT", pkt(src="192.0.2.3"), lambda name: None)
    assert d.outcome is Outcome.POLICY and d.depends == ["ipset f2b-sshd"]
    unread = pkt(state=DynState(ipsets=None, ipset_unread="ipset is not installed"))
    d = evaluate([rule], "ACCEPT", unread, lambda name: None)
    assert d.outcome is Outcome.UNCERTAIN
    assert d.depends == ["ipset f2b-sshd [not read: ipset is not installed]"]
    ssh = parse_rule("-A INPUT -p tcp --dport 22 -m set --match-set f2b-sshd src -j REJECT")
    assert ssh is not None and evaluate([ssh], "ACCEPT", pkt(), lambda name: None).depends == []
