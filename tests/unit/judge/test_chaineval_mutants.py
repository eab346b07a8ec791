"""The chain evaluator (vrrpfw.judge.chaineval) function by function: three-valued
matching of every field and extension, set membership, and the walk
through a chain with its jumps, gotos, returns, doubts and policy.

Written against mutation testing (tests/mutation.sh): each test pins one
piece of netfilter semantics the corpus test cannot see, because there a
wrong answer often only turns a verdict ``uncertain``."""

import pytest

from vrrpfw.judge.chaineval import MAX_DEPTH, _could_drop, evaluate
from vrrpfw.judge.matches import (
    _negated,
    _split_neg,
    match_address,
    match_extension,
    match_iface,
    match_protocol,
    match_rule,
)
from vrrpfw.judge.packet_values import _flip, addr_in, match_set, member, packet_value
from vrrpfw.judge.rules import FwRule, Match, Outcome, Packet, Tri, _number, vrrpfw_key
from vrrpfw.model import Direction

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

Y, M, N = Tri.YES, Tri.MAYBE, Tri.NO
IN = Packet(Direction.IN, "eth0", "224.0.0.18")
OUT = Packet(Direction.OUT, "eth0", "224.0.0.18", src="192.0.2.1")
NOWHERE = lambda name: None  # noqa: E731


def ext(name, **params):
    return Match(name, tuple((k.replace("_", "-"), tuple(v.split())) for k, v in params.items()))


def sett(key, *values, neg=False, mask=None, unknown=False):
    params = [("key", (key,)), ("values", tuple(values))]
    if neg:
        params.append(("neg", ("!",)))
    if mask is not None:
        params.append(("mask", (mask,)))
    if unknown:
        params.append(("unknown", ("yes",)))
    return Match("set", tuple(params))


def R(target="", chain="INPUT", **kw):
    return FwRule(chain, target=target, **kw)


MAYBE_SRC = {"src": "198.51.100.7/32"}  # the peer's address is unknown on IN


# --- small helpers --------------------------------------------------------

def test_split_neg():
    assert _split_neg(None) == (False, None)
    assert _split_neg(" eth0 ") == (False, "eth0")
    assert _split_neg(" ! eth0") == (True, "eth0")
    assert _split_neg("!eth0") == (True, "eth0")


def test_flip():
    assert _flip(Y, False) is Y and _flip(N, False) is N
    assert _flip(Y, True) is N and _flip(N, True) is Y
    assert _flip(M, True) is M and _flip(M, False) is M


def test_negated_words():
    assert _negated(None) == (False, [])
    assert _negated(()) == (False, [])
    assert _negated(("!", "NEW,ESTABLISHED")) == (True, ["NEW", "ESTABLISHED"])
    assert _negated(("a", "b c,d")) == (False, ["a", "b", "c", "d"])


def test_number():
    assert _number(" TCP ") == 6 and _number("vrrp") == 112 and _number("ipv6-icmp") == 58
    assert _number("0x10") == 16 and _number("17") == 17
    assert _number("nope") is None


# --- fields ---------------------------------------------------------------

@pytest.mark.parametrize("value,want", [
    (None, Y), ("", Y), ("all", Y), ("ALL", Y), ("0", Y), ("ip", Y), ("!all", N),
    ("vrrp", Y), ("VRRP", Y), ("112", Y), ("!vrrp", N), ("! 112", N),
    ("tcp", N), ("!tcp", Y), ("17", N), ("!", N),
])
def test_match_protocol(value, want):
    assert match_protocol(value) is want


@pytest.mark.parametrize("value,addr,within,want", [
    ("192.0.2.1-192.0.2.9", "192.0.2.1", None, Y),
    ("192.0.2.1-192.0.2.9", "192.0.2.9", None, Y),
    ("192.0.2.1 - 192.0.2.9", "192.0.2.5", None, Y),
    ("192.0.2.1-192.0.2.9", "192.0.2.10", None, N),
    ("192.0.2.1-192.0.2.9", "192.0.2.0", None, N),
    ("192.0.2.1-192.0.2.9", None, None, M),
    ("192.0.2.0-192.0.2.15", None, "192.0.2.0/28", Y),
    ("192.0.2.0-192.0.2.15", None, "192.0.2.3/28", Y),
    ("192.0.2.1-192.0.2.15", None, "192.0.2.0/28", M),
    ("192.0.2.0-192.0.2.14", None, "192.0.2.0/28", M),
    ("192.0.2.16-192.0.2.20", None, "192.0.2.0/28", N),
    ("192.0.2.15-192.0.2.20", None, "192.0.2.0/28", M),
    ("192.0.1.0-192.0.1.255", None, "192.0.2.0/28", N),
    ("192.0.1.0-192.0.2.0", None, "192.0.2.0/28", M),
    ("10.0.0.0/8", "10.1.2.3", None, Y),
    ("10.0.0.1/8", "10.1.2.3", None, Y),  # host bits set, as iptables accepts
    ("10.0.0.0/8", "11.0.0.1", None, N),
    ("10.0.0.1", "10.0.0.1", None, Y),
    ("0.0.0.0/0", None, None, Y),
    ("10.0.0.0/8", None, None, M),
    ("192.0.0.0/16", None, "192.0.2.0/24", Y),
    ("192.0.2.0/24", None, "192.0.2.9/24", Y),
    ("10.0.0.0/8", None, "192.0.2.0/24", N),
    ("192.0.2.128/25", None, "192.0.2.0/24", M),
    ("not-an-address", "192.0.2.1", None, M),
    ("bogus", "192.0.2.1", None, M),
])
def test_addr_in(value, addr, within, want):
    assert addr_in(value, addr, within) is want


def test_match_address():
    assert match_address(None, None) is Y
    assert match_address("224.0.0.18/32", "224.0.0.18") is Y
    assert match_address("!224.0.0.18/32", "224.0.0.18") is N
    assert match_address("!10.0.0.0/8", "224.0.0.18") is Y
    assert match_address("!10.0.0.0/8", None) is M
    assert match_address("!10.0.0.0/8", None, "192.0.2.0/24") is Y
    assert match_address("192.0.2.0/24", None, "192.0.2.0/24") is Y


@pytest.mark.parametrize("pattern,iface,want", [
    (None, "eth0", Y), ("", "eth0", Y), ("+", "eth0", Y), ("!+", "eth0", N), ("!", "eth0", N),
    ("+", "", Y), ("eth0", None, M), ("!eth0", None, M),
    ("eth0", "", N), ("!eth0", "", Y), ("eth+", "", N),
    ("eth0", "eth0", Y), ("eth0", "eth01", N), ("eth01", "eth0", N), ("!eth0", "eth0", N),
    ("eth+", "eth0", Y), ("eth+", "eth", Y), ("eth+", "wlan0", N), ("!eth+", "eth0", N),
    ("!wlan+", "eth0", Y),
])
def test_match_iface(pattern, iface, want):
    assert match_iface(pattern, iface) is want


# --- extensions -----------------------------------------------------------

def test_fixed_extensions():
    assert match_extension(Match("comment"), IN) is Y
    assert match_extension(Match("always"), IN) is Y
    assert match_extension(Match("never"), IN) is N
    for name in ("tcp", "udp", "icmp", "multiport", "esp", "gre", "sctp"):
        assert match_extension(Match(name), IN) is N
    assert match_extension(Match("limit", (("limit", ("5/s",)),)), IN) is M
    assert match_extension(Match("set", (("key", ("daddr",)), ("values", ("224.0.0.18",)))), IN) is Y


def test_pkttype():
    assert match_extension(ext("pkttype", pkt_type="multicast"), IN) is Y
    assert match_extension(Match("pkttype", (("pkt_type", ("multicast",)),)), IN) is Y
    assert match_extension(ext("pkttype", pkt_type="MULTICAST"), IN) is Y
    assert match_extension(ext("pkttype", pkt_type="unicast"), IN) is N
    assert match_extension(ext("pkttype", pkt_type="! unicast"), IN) is Y
    assert match_extension(ext("pkttype", pkt_type="! multicast"), IN) is N
    assert match_extension(ext("pkttype", pkt_type="unicast multicast"), IN) is N  # the first word counts
    # Outbound the skb is not classified yet.
    assert match_extension(ext("pkttype", pkt_type="multicast"), OUT) is M
    assert match_extension(Match("pkttype"), IN) is M


def test_addrtype():
    assert match_extension(ext("addrtype", dst_type="MULTICAST"), IN) is Y
    assert match_extension(Match("addrtype", (("dst_type", ("multicast",)),)), IN) is Y
    assert match_extension(ext("addrtype", dst_type="LOCAL,MULTICAST"), IN) is Y
    assert match_extension(ext("addrtype", dst_type="LOCAL"), IN) is N
    assert match_extension(ext("addrtype", dst_type="! MULTICAST"), IN) is N
    assert match_extension(ext("addrtype", dst_type="! LOCAL"), IN) is Y
    assert match_extension(ext("addrtype", src_type="LOCAL", dst_type="MULTICAST"), IN) is M
    assert match_extension(Match("addrtype", (("src_type", ("LOCAL",)),)), IN) is M
    assert match_extension(Match("addrtype"), IN) is M


def test_conntrack_state():
    untracked = Packet(Direction.IN, "eth0", "224.0.0.18", ct_state=None)
    for name, opt in (("conntrack", "ctstate"), ("state", "state")):
        assert match_extension(Match(name, ((opt, ("NEW",)),)), IN) is Y
        assert match_extension(Match(name, ((opt, ("new",)),)), IN) is Y
        assert match_extension(Match(name, ((opt, ("ESTABLISHED,RELATED",)),)), IN) is N
        assert match_extension(Match(name, ((opt, ("!", "NEW")),)), IN) is N
        assert match_extension(Match(name, ((opt, ("!", "INVALID")),)), IN) is Y
        assert match_extension(Match(name, ((opt, ("NEW",)),)), untracked) is M
    assert match_extension(Match("conntrack"), IN) is M
    two = Match("conntrack", (("ctstate", ("NEW",)), ("ctstatus", ("SEEN_REPLY",))))
    assert match_extension(two, IN) is M


def test_mark():
    def mk(name, *words, mark=0):
        pkt = Packet(Direction.IN, "eth0", "224.0.0.18", mark=mark)
        return match_extension(Match(name, (("mark", words),)), pkt)

    assert mk("mark", "0x0") is Y and mk("connmark", "0") is Y
    assert mk("mark", "0x1") is N and mk("mark", "1", mark=1) is Y
    assert mk("mark", "!", "0x1") is Y and mk("mark", "!", "0") is N
    assert mk("mark", "0x4/0x4", mark=5) is Y
    assert mk("mark", "0x1/0x4", mark=5) is N
    assert mk("mark", "0x2/0x1", mark=2) is N
    assert mk("mark", "0xffffffff", mark=0xFFFFFFFF) is Y
    assert mk("mark", "0x0", mark=None) is M
    assert mk("mark", "1", "2") is M
    assert mk("mark") is M
    assert mk("mark", "zz") is M and mk("mark", "1/zz") is M


# --- what the advert carries ---------------------------------------------

def test_packet_value_inbound():
    pkt = Packet(Direction.IN, "eth0", "224.0.0.18", src="192.0.2.7", ct_state="new", mark=3)
    want = {"iifname": "eth0", "oifname": "", "l4proto": "112", "protocol": "112",
            "daddr": "224.0.0.18", "saddr": "192.0.2.7", "pkttype": "multicast", "nfproto": "ipv4",
            "ethertype": "ip", "ct_state": "new", "mark": "3", "fib_daddr_type": "multicast",
            "ttl": "255", "ct_status": "", "frag_off": "0", "nonsense": None}
    assert {k: packet_value(pkt, k) for k in want} == want


def test_packet_value_outbound():
    assert packet_value(OUT, "iifname") == "" and packet_value(OUT, "oifname") == "eth0"
    assert packet_value(OUT, "pkttype") is None and packet_value(OUT, "saddr") == "192.0.2.1"
    assert packet_value(Packet(Direction.OUT, "eth0", "g", mark=None), "mark") is None
    assert packet_value(OUT, "fib_rpf") is None


def test_reverse_path_lookup():
    def rpf(src, net):
        return packet_value(Packet(Direction.IN, "eth0", "224.0.0.18", src=src, src_net=net), "fib_rpf")

    assert rpf(None, None) is None
    assert rpf(None, "192.0.2.0/24") == "present"
    assert rpf("192.0.2.9", "192.0.2.0/24") == "present"
    assert rpf("198.51.100.1", "192.0.2.0/24") is None
    assert packet_value(Packet(Direction.OUT, "eth0", "g", src_net="192.0.2.0/24"), "fib_rpf") is None


# --- set membership -------------------------------------------------------

@pytest.mark.parametrize("key,value,actual,want", [
    ("iifname", "eth0", None, M),
    ("iifname", "eth*", "eth0", Y), ("iifname", "eth*", "wlan0", N),
    ("iifname", "*", "eth0", Y), ("oifname", "*", "", N),
    ("iifname", "eth\\*", "eth*", Y), ("iifname", "eth\\*", "eth0", N),
    ("oifname", "eth0", "eth0", Y), ("oifname", "eth0", "eth1", N),
    ("daddr", "224.0.0.0/4", "224.0.0.18", Y), ("saddr", "10.0.0.0/8", "192.0.2.1", N),
    ("l4proto", "112", "112", Y), ("l4proto", "vrrp", "112", Y), ("protocol", "tcp", "112", N),
    ("l4proto", "100-120", "112", Y), ("l4proto", "112-120", "112", Y), ("l4proto", "1-112", "112", Y),
    ("l4proto", "113-120", "112", N), ("l4proto", "1-111", "112", N),
    ("l4proto", "ipv6-icmp", "112", N), ("l4proto", "a-b", "112", M), ("l4proto", "1-b", "112", M),
    ("l4proto", "1-200", "x", M), ("l4proto", "frob", "112", M), ("l4proto", "112", "x", M),
    ("mark", "0x10", "16", Y), ("ttl", "255", "255", Y), ("ttl", "1", "255", N), ("frag_off", "0", "0", Y),
    ("ct_state", "NEW", "new", Y), ("ct_state", "established", "new", N),
    ("ct_status", "snat", "", N), ("ct_status", "SNAT", "dnat,snat", Y), ("ct_status", "snat", "dnat", N),
    ("pkttype", "MULTICAST", "multicast", Y), ("pkttype", "broadcast", "multicast", N),
])
def test_member(key, value, actual, want):
    assert member(key, value, actual) is want


def test_set_basics():
    assert match_set(sett("daddr", "224.0.0.18"), IN) is Y
    assert match_set(sett("daddr", "224.0.0.18", neg=True), IN) is N
    assert match_set(sett("daddr", "10.0.0.1"), IN) is N
    assert match_set(sett("daddr", "10.0.0.1", neg=True), IN) is Y
    assert match_set(sett("daddr"), IN) is N  # an empty set matches nothing
    assert match_set(sett("daddr", neg=True), IN) is Y
    assert match_set(sett("daddr", "224.0.0.18", unknown=True), IN) is M
    assert match_set(sett("daddr", "224.0.0.18", neg=True, unknown=True), IN) is M
    assert match_set(Match("set", (("values", ("x",)),)), IN) is M  # no key: an unknown selector


def test_set_elements_any_matches():
    maybe, no, yes = "198.51.100.7", "10.0.0.1", "224.0.0.18"
    assert match_set(sett("saddr", maybe, no), IN) is M
    assert match_set(sett("saddr", no, maybe), IN) is M
    assert match_set(sett("daddr", no, yes), IN) is Y
    assert match_set(sett("iifname . daddr", "eth1 . " + yes, "eth0 . " + yes), IN) is Y
    assert match_set(sett("iifname . daddr", "eth0 . " + no, "eth0 . " + yes), IN) is Y
    assert match_set(sett("iifname . daddr", "eth0 . " + no), IN) is N
    assert match_set(sett("iifname . daddr", "eth0"), IN) is M  # the element does not fit the key
    assert match_set(sett("iifname . daddr", "eth0", "eth0 . " + yes), IN) is Y
    assert match_set(sett("iifname . saddr", "eth0 . " + maybe, "eth0 . " + no), IN) is M
    assert match_set(sett("saddr . iifname", maybe + " . eth1"), IN) is N


def test_set_with_unknown_source_uses_the_subnet():
    pkt = Packet(Direction.IN, "eth0", "224.0.0.18", src_net="192.0.2.0/24")
    assert match_set(sett("saddr", "192.0.2.0/24"), pkt) is Y
    assert match_set(sett("saddr", "10.0.0.0/8"), pkt) is N
    assert match_set(sett("saddr", "192.0.2.0/25"), pkt) is M
    assert match_set(sett("saddr . iifname", "192.0.2.0/24 . eth0"), pkt) is Y
    assert match_set(sett("saddr . iifname", "192.0.2.0/25 . eth0"), pkt) is M
    assert match_set(sett("saddr . iifname", "192.0.2.0/25 . eth1"), pkt) is N
    assert match_set(sett("saddr . iifname", "10.0.0.0/8 . eth0"), pkt) is N
    assert match_set(sett("iifname . saddr", "eth0 . 192.0.2.0/24"), pkt) is Y
    assert match_set(sett("iifname . saddr", "eth0 . 192.0.2.0/25"), pkt) is M
    assert match_set(sett("iifname . saddr", "eth1 . 192.0.2.0/24"), pkt) is N
    assert match_set(sett("saddr", "192.0.2.0/24"), IN) is M  # no subnet known


def test_set_masks():
    assert match_set(sett("frag_off", "0", mask="0x3fff"), IN) is Y
    assert match_set(sett("frag_off", "0", mask="0x1fff"), IN) is Y
    assert match_set(sett("frag_off", "0", mask="0x3fff", neg=True), IN) is N
    # keepalived's adverts have DF clear: the whole field is 0.
    assert match_set(sett("frag_off", "0", mask="0x7fff"), IN) is Y
    assert match_set(sett("frag_off", "0", mask="0x4000"), IN) is Y
    assert match_set(sett("frag_off", "16384", mask="0x4000"), IN) is N  # DF set: not keepalived's
    assert match_set(sett("frag_off", "0", mask="zz"), IN) is M
    assert match_set(sett("frag_off", "0"), IN) is Y
    assert match_set(sett("frag_off", "16384"), IN) is N
    marked = Packet(Direction.IN, "eth0", "224.0.0.18", mark=0x105)
    assert match_set(sett("mark", "5", mask="0xff"), marked) is Y
    assert match_set(sett("mark", "0x105", mask="0xff"), marked) is N
    assert match_set(sett("mark", "0x105"), marked) is Y
    assert match_set(sett("mark", "5", mask="zz"), marked) is M
    assert match_set(sett("ct_state", "new", mask="8"), IN) is M  # not a number: not judged
    assert match_set(sett("mark", "0", mask="0xff"), Packet(Direction.IN, "e", "g", mark=None)) is M


# --- a whole rule ---------------------------------------------------------

def test_match_rule_conjunction():
    assert match_rule(R("DROP"), IN) is Y
    assert match_rule(R("DROP", protocol="tcp", **MAYBE_SRC), IN) is N  # NO beats MAYBE
    assert match_rule(R("DROP", **MAYBE_SRC), IN) is M
    assert match_rule(R("DROP", matches=(Match("limit"), Match("never"))), IN) is N
    assert match_rule(R("DROP", matches=(Match("limit"),)), IN) is M
    assert match_rule(R("DROP", dst="224.0.0.18/32"), IN) is Y
    assert match_rule(R("DROP", dst="224.0.0.19/32"), IN) is N
    on_subnet = Packet(Direction.IN, "e", "g", src_net="192.0.2.0/24")
    assert match_rule(R("DROP", src="192.0.2.0/24"), on_subnet) is Y
    assert match_rule(R("DROP", src="192.0.2.1/32"), OUT) is Y
    assert match_rule(R("DROP", in_iface="eth0"), IN) is Y
    assert match_rule(R("DROP", in_iface="eth0"), OUT) is N
    assert match_rule(R("DROP", in_iface="!eth0"), OUT) is Y
    assert match_rule(R("DROP", out_iface="eth0"), IN) is N
    assert match_rule(R("DROP", out_iface="!eth0"), IN) is Y
    assert match_rule(R("DROP", out_iface="eth0"), OUT) is Y


# --- walking a chain ------------------------------------------------------

MAYBE_ACCEPT = R("ACCEPT", text="maybe-accept", **MAYBE_SRC)
MAYBE_DROP = R("DROP", text="maybe-drop", **MAYBE_SRC)
ACCEPT = R("ACCEPT", text="accept")
DROP = R("DROP", text="drop")


def ev(rules, policy="DROP", pkt=IN, **user):
    return evaluate(rules, policy, pkt, user.get)


def test_accept_and_drop():
    d = ev([R("LOG"), R("MARK"), ACCEPT, DROP])
    assert (d.outcome, d.rule, d.reason, d.policy, d.doubts) == \
        (Outcome.ACCEPT, ACCEPT, "accepted", "DROP", [])
    assert d.accepted
    d = ev([DROP, ACCEPT], "ACCEPT")
    assert (d.outcome, d.rule, d.reason, d.doubts) == (Outcome.DROP, DROP, "dropped", [])
    assert not d.accepted
    for target in ("SNAT", "DNAT", "MASQUERADE", "REDIRECT", "NETMAP"):
        assert ev([R(target)]).outcome is Outcome.ACCEPT
    assert ev([R("REJECT")], "ACCEPT").outcome is Outcome.DROP


def test_policy():
    d = ev([R("LOG")], "DROP")
    assert (d.outcome, d.rule, d.policy, d.reason, d.doubts) == \
        (Outcome.POLICY, None, "DROP", "chain policy DROP", [])
    assert not d.accepted
    d = ev([], "ACCEPT")
    assert d.accepted and d.reason == "chain policy ACCEPT"
    d = ev([R("RETURN"), DROP], "ACCEPT")  # RETURN in a base chain: the policy decides
    assert d.outcome is Outcome.POLICY and d.accepted


def test_maybe_accept_is_a_doubt():
    d = ev([MAYBE_ACCEPT], "DROP")
    assert (d.outcome, d.rule, d.hinge, d.policy, d.reason, d.doubts) == (
        Outcome.UNCERTAIN, None, MAYBE_ACCEPT, "DROP",
        "let through only where this rule applies, else policy DROP", [MAYBE_ACCEPT])
    d = ev([MAYBE_ACCEPT], "ACCEPT")
    assert (d.outcome, d.reason, d.doubts) == (Outcome.POLICY, "chain policy ACCEPT", [MAYBE_ACCEPT])
    assert d.accepted
    # An accept after a maybe-accept still certainly accepts.
    d = ev([MAYBE_ACCEPT, ACCEPT])
    assert (d.outcome, d.rule, d.doubts) == (Outcome.ACCEPT, ACCEPT, [MAYBE_ACCEPT])
    d = ev([MAYBE_ACCEPT, DROP], "ACCEPT")
    assert (d.outcome, d.rule, d.reason) == \
        (Outcome.UNCERTAIN, DROP, "dropped unless an earlier rule accepted it")


def test_maybe_drop_ends_in_doubt():
    d = ev([MAYBE_DROP, ACCEPT])
    assert (d.outcome, d.rule, d.reason, d.doubts) == (Outcome.UNCERTAIN, MAYBE_DROP,
                                                       "a rule that may match drops it", [MAYBE_DROP])


def test_maybe_drop_then_certain_drop_is_a_drop():
    """Dropped by the rule that may match, or else by the one below: dropped."""
    d = ev([MAYBE_DROP, DROP])
    assert (d.outcome, d.rule) == (Outcome.DROP, DROP)
    d = ev([MAYBE_DROP, MAYBE_DROP], "DROP")
    assert d.outcome is Outcome.POLICY and not d.accepted
    d = ev([MAYBE_DROP], "ACCEPT")
    assert (d.outcome, d.rule, d.reason) == (Outcome.UNCERTAIN, MAYBE_DROP, "a rule that may match drops it")
    maybe_accept = R("ACCEPT", **MAYBE_SRC)
    assert ev([maybe_accept, MAYBE_DROP, DROP]).outcome is Outcome.UNCERTAIN
    assert ev([MAYBE_DROP, maybe_accept], "DROP").outcome is Outcome.UNCERTAIN


def test_maybe_return_may_drop_by_policy():
    maybe_return = R("RETURN", **MAYBE_SRC)
    d = ev([maybe_return, ACCEPT])
    assert (d.outcome, d.rule, d.reason, d.doubts) == \
        (Outcome.UNCERTAIN, ACCEPT, "an earlier rule may drop it", [maybe_return])
    d = ev([maybe_return, DROP], "ACCEPT")
    assert d.outcome is Outcome.UNCERTAIN and d.rule is DROP


def test_unknown_targets():
    queue = R("NFQUEUE")
    d = ev([queue, ACCEPT])
    assert (d.outcome, d.rule, d.reason) == \
        (Outcome.UNCERTAIN, queue, "target NFQUEUE is not judged by vrrpfw")
    maybe_queue = R("NFQUEUE", **MAYBE_SRC)
    d = ev([maybe_queue, ACCEPT])
    assert (d.outcome, d.rule, d.doubts) == (Outcome.UNCERTAIN, ACCEPT, [maybe_queue])


def test_could_drop():
    chains = {"SUB": [R("ACCEPT", chain="SUB")]}.get
    assert not _could_drop([], chains)
    assert not _could_drop([MAYBE_ACCEPT, R("SNAT")], chains)
    assert _could_drop([MAYBE_ACCEPT, R("RETURN")], chains)
    assert not _could_drop([R("SUB")], chains)  # a maybe-jump into a chain that accepts
    assert _could_drop([R("SUB", goto=True)], chains)
    assert _could_drop([R("NFQUEUE")], chains)


def test_unjudged_target_before_an_accept_policy_is_uncertain():
    """NFQUEUE with no listener drops: a rule that may queue the advert
    leaves even an ACCEPT policy undecided."""
    queue = FwRule("INPUT", src="198.51.100.0/24", target="NFQUEUE")
    d = evaluate([queue], "ACCEPT", Packet(Direction.IN, "eth0", "224.0.0.18"), lambda name: None)
    assert d.outcome is Outcome.UNCERTAIN and d.rule is queue


def test_maybe_jump_into_an_accepting_chain_then_accept_is_certain():
    sub = [FwRule("SUB", target="ACCEPT")]
    rules = [FwRule("INPUT", src="198.51.100.0/24", target="SUB"),
             FwRule("INPUT", target="ACCEPT", text="all")]
    d = evaluate(rules, "DROP", Packet(Direction.IN, "eth0", "224.0.0.18"), {"SUB": sub}.get)
    assert d.outcome is Outcome.ACCEPT and d.rule.text == "all"


def test_jump_and_return():
    jump = R("FOO")
    d = ev([jump, DROP], FOO=[R("RETURN", chain="FOO"), ACCEPT])
    assert (d.outcome, d.rule) == (Outcome.DROP, DROP)
    d = ev([jump, DROP], FOO=[R("LOG", chain="FOO")])  # falls off: back in the caller
    assert (d.outcome, d.rule) == (Outcome.DROP, DROP)
    sub_accept = R("ACCEPT", chain="FOO", text="sub")
    d = ev([jump, DROP], FOO=[sub_accept])
    assert (d.outcome, d.rule, d.reason) == (Outcome.ACCEPT, sub_accept, "accepted")
    # A doubt in the user chain stays a doubt in the caller.
    d = ev([jump, DROP], "ACCEPT", FOO=[MAYBE_ACCEPT])
    assert (d.outcome, d.rule, d.doubts) == (Outcome.UNCERTAIN, DROP, [MAYBE_ACCEPT])


def test_goto_return_ends_the_calling_chain():
    goto = R("FOO", goto=True)
    d = ev([goto, ACCEPT], "DROP", FOO=[R("LOG", chain="FOO")])
    assert (d.outcome, d.policy, d.reason) == (Outcome.POLICY, "DROP", "chain policy DROP")
    d = ev([goto, DROP], "ACCEPT", FOO=[R("RETURN", chain="FOO")])
    assert d.outcome is Outcome.POLICY and d.accepted
    # Nested: a goto whose chain returns goes back to the chain that jumped.
    d = ev([R("A"), DROP], "ACCEPT", A=[R("B", chain="A", goto=True), ACCEPT], B=[])
    assert (d.outcome, d.rule) == (Outcome.DROP, DROP)


def test_maybe_jump():
    maybe_jump = R("FOO", **MAYBE_SRC)
    deep_drop = R("DROP", chain="FOO", text="deep")
    d = ev([maybe_jump, ACCEPT], FOO=[deep_drop])
    assert (d.outcome, d.rule, d.reason, d.doubts) == \
        (Outcome.UNCERTAIN, deep_drop, "jump to FOO may drop it", [maybe_jump])
    d = ev([maybe_jump, ACCEPT], FOO=[R("NFQUEUE", chain="FOO")])
    assert d.outcome is Outcome.UNCERTAIN and d.reason == "jump to FOO may drop it"
    # The sub-chain only doubts (falls off with a doubt): rule is the jump.
    d = ev([maybe_jump, ACCEPT], FOO=[MAYBE_ACCEPT])
    assert (d.outcome, d.rule, d.doubts) == (Outcome.UNCERTAIN, maybe_jump, [maybe_jump])
    # A maybe-jump to a chain that returns changes nothing.
    d = ev([maybe_jump, ACCEPT], FOO=[R("LOG", chain="FOO")])
    assert (d.outcome, d.rule, d.doubts) == (Outcome.ACCEPT, ACCEPT, [])
    d = ev([maybe_jump, DROP], "ACCEPT", FOO=[R("RETURN", chain="FOO")])
    assert (d.outcome, d.rule, d.doubts) == (Outcome.DROP, DROP, [])
    # A maybe-jump to a chain that accepts: a later drop is uncertain.
    d = ev([maybe_jump, DROP], FOO=[R("ACCEPT", chain="FOO")])
    assert (d.outcome, d.rule, d.doubts) == (Outcome.UNCERTAIN, DROP, [maybe_jump])
    # A maybe-goto to a chain that returns may end this chain.
    maybe_goto = R("FOO", goto=True, **MAYBE_SRC)
    d = ev([maybe_goto, ACCEPT], FOO=[])
    assert (d.outcome, d.rule, d.doubts) == (Outcome.UNCERTAIN, ACCEPT, [maybe_goto])


def test_loops_are_uncertain_at_the_looping_jump():
    ra, rb, rc = R("B", chain="A"), R("C", chain="B"), R("A", chain="C")
    d = ev([R("A")], "ACCEPT", A=[ra], B=[rb], C=[rc])
    assert (d.outcome, d.rule, d.reason) == (Outcome.UNCERTAIN, rc, "chain A nests too deep or loops")
    # A chain may be jumped to twice when it is not a loop.
    d = ev([R("A"), R("A"), ACCEPT], A=[R("LOG", chain="A")])
    assert d.outcome is Outcome.ACCEPT
    d = ev([R("A"), ACCEPT], A=[R("B", chain="A"), R("B", chain="A")], B=[])
    assert d.outcome is Outcome.ACCEPT


def nested(n):
    """A base chain jumping into C1, which jumps into C2 ... Cn, which accepts."""
    chains = {f"C{i}": [R(f"C{i + 1}", chain=f"C{i}")] for i in range(1, n)}
    chains[f"C{n}"] = [R("ACCEPT", chain=f"C{n}")]
    return ev([R("C1")], **chains)


def test_nesting_depth_limit():
    assert MAX_DEPTH == 32
    assert nested(MAX_DEPTH).outcome is Outcome.ACCEPT
    d = nested(MAX_DEPTH + 1)
    assert d.outcome is Outcome.UNCERTAIN and d.reason == f"chain C{MAX_DEPTH + 1} nests too deep or loops"


def test_maybe_jump_into_a_loop_is_uncertain():
    d = ev([R("A", **MAYBE_SRC), ACCEPT], A=[R("A", chain="A")])
    assert d.outcome is Outcome.UNCERTAIN


# --- vrrpfw's own rules ---------------------------------------------------

COMMENTED = (Match("comment", (("comment", ("vrrpfw",)),)),)


def ours(**kw):
    base = dict(protocol="vrrp", dst="224.0.0.18/32", in_iface="eth0", matches=COMMENTED, target="ACCEPT")
    base.update(kw)
    return FwRule(base.pop("chain", "INPUT"), **base)


def test_comment_and_identity():
    assert ours().comment == "vrrpfw" and ours().is_vrrpfw
    assert FwRule("INPUT", matches=(Match("comment", (("comment", ("a", "b")),)),)).comment == "a b"
    assert FwRule("INPUT", matches=(Match("comment", (("comment", ()),)),)).comment is None
    assert FwRule("INPUT", matches=(Match("comment"), Match("x", (("comment", ("no",)),)))).comment is None
    assert not FwRule("INPUT", matches=(Match("comment", (("comment", ("other",)),)),)).is_vrrpfw
    assert Match("m", (("a", ("1",)), ("b", ("2",)))).param("b") == ("2",)
    assert Match("m").param("a") is None


def test_vrrpfw_key():
    assert vrrpfw_key(ours()) == ("in", "eth0", "224.0.0.18")
    assert vrrpfw_key(ours(chain="OUTPUT", in_iface=None, out_iface="eth1")) == ("out", "eth1", "224.0.0.18")
    assert vrrpfw_key(ours(protocol="112")) is not None
    assert vrrpfw_key(ours(matches=())) is None
    assert vrrpfw_key(ours(target="DROP")) is None
    assert vrrpfw_key(ours(protocol="tcp")) is None
    assert vrrpfw_key(ours(dst=None)) is None
    assert vrrpfw_key(ours(dst="!224.0.0.18/32")) is None
    assert vrrpfw_key(ours(dst="224.0.0.0/24")) is None
    assert vrrpfw_key(ours(in_iface=None)) is None
    assert vrrpfw_key(ours(in_iface="!eth0")) is None
    assert vrrpfw_key(ours(out_iface="eth1")) is None
    assert vrrpfw_key(ours(chain="OUTPUT")) is None  # an inbound rule in OUTPUT
    assert vrrpfw_key(ours(chain="FORWARD")) is None
    assert vrrpfw_key(ours(chain="FORWARD"), anywhere=True) == ("in", "eth0", "224.0.0.18")
    out = dict(in_iface=None, out_iface="eth1")
    assert vrrpfw_key(ours(chain="INPUT", **out)) is None
    assert vrrpfw_key(ours(chain="postrouting", **out), anywhere=True) == ("out", "eth1", "224.0.0.18")
    assert vrrpfw_key(ours(chain="OUTPUT", in_iface=None, out_iface="!eth1")) is None
    assert vrrpfw_key(ours(chain="OUTPUT", in_iface="eth0", out_iface="eth1"), anywhere=True) is None


def test_more_edges():
    assert match_extension(ext("addrtype", src_type="LOCAL", dst_type="MULTICAST"), IN) is M
    underscored = Match("addrtype", (("src_type", ("LOCAL",)), ("dst-type", ("MULTICAST",))))
    assert match_extension(underscored, IN) is M
    assert match_iface("eth+", "ewan0") is N and match_iface("eth+", "etx0") is N
    assert match_rule(R("DROP", in_iface="XX+"), OUT) is N  # no input interface at all on output
    assert match_rule(R("DROP", out_iface="XX+"), IN) is N
    for key, value, actual, want in (("iifname", "eth*", "etx0", N), ("oifname", "eth*", "eth0", Y),
                                     ("protocol", "vrrp", "112", Y), ("ttl", "0xff", "255", Y),
                                     ("frag_off", "0x0", "0", Y), ("l4proto", "1-2-3", "112", M)):
        assert member(key, value, actual) is want, (key, value)
    # A certain RETURN above a dropping policy, with a doubt: the doubt and the policy are the reason.
    d = ev([MAYBE_ACCEPT, R("RETURN")], "DROP")
    assert (d.outcome, d.rule, d.hinge, d.reason) == (
        Outcome.UNCERTAIN, None, MAYBE_ACCEPT, "let through only where this rule applies, else policy DROP")


def test_depth_counts_under_a_maybe_jump():
    def maybe_nested(n):
        chains = {f"C{i}": [R(f"C{i + 1}", chain=f"C{i}")] for i in range(1, n)}
        chains[f"C{n}"] = [R("ACCEPT", chain=f"C{n}")]
        return ev([R("C1", **MAYBE_SRC)], "ACCEPT", **chains)

    assert maybe_nested(MAX_DEPTH).outcome is Outcome.POLICY
    d = maybe_nested(MAX_DEPTH + 1)
    assert (d.outcome, d.reason) == (Outcome.UNCERTAIN, "jump to C1 may drop it")


def test_loop_under_a_maybe_jump_is_found_at_the_looping_jump():
    ra, rb, rc = R("B", chain="A"), R("C", chain="B"), R("A", chain="C")
    d = ev([R("A", **MAYBE_SRC)], "ACCEPT", A=[ra], B=[rb], C=[rc])
    assert (d.outcome, d.rule) == (Outcome.UNCERTAIN, rc)
