"""nft JSON into the evaluator's model (vrrpfw.judge.nft), one expression kind
at a time: values, selectors, conditions, verdicts, verdict maps, compat
expressions, statements with side effects, sets and whole tables.  What the
converter cannot decide must come out as a named maybe-match
(``nft-<what>``), never as a silent yes or no; see tests/mutation.sh."""

import pytest

from vrrpfw.judge.chaineval import evaluate
from vrrpfw.judge.matches import match_rule
from vrrpfw.judge.nft import (
    NftSet,
    _condition,
    _field_value,
    _key,
    _set_dynamic,
    _set_elements,
    _show,
    _stateful_update,
    _Unknown,
    _value,
    _verdict,
    _vmap_entries,
    convert_rule,
    convert_table,
    rule_text,
)
from vrrpfw.judge.rules import FwRule, Match, Outcome, Packet, Tri
from vrrpfw.model import Direction

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

PKT = Packet(Direction.IN, "eth0", "224.0.0.18")
META = lambda key: {"meta": {"key": key}}  # noqa: E731
IP = lambda field: {"payload": {"protocol": "ip", "field": field}}  # noqa: E731
CT = lambda key: {"ct": {"key": key}}  # noqa: E731
SETS = {
    "groups": NftSet("groups", ["224.0.0.18", {"prefix": {"addr": "239.0.0.0", "len": 8}}]),
    "dyn": NftSet("dyn", None),
    "m": NftSet("m", [["eth0", {"accept": None}], ["eth1", {"drop": None}]], is_map=True),
}


def m(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def conv(*expr, chain="input", comment=None, handle=None, sets=SETS):
    r = {"expr": list(expr)}
    if comment is not None:
        r["comment"] = comment
    if handle is not None:
        r["handle"] = handle
    return convert_rule(chain, r, sets)


def one(*expr, **kw):
    rules = conv(*expr, **kw)
    assert len(rules) == 1
    return rules[0]


def names(fw):
    return [x.name for x in fw.matches]


# --- values ---------------------------------------------------------------

def test_values():
    assert _value(5, {}) == ["5"] and _value(5.9, {}) == ["5"] and _value("eth0", {}) == ["eth0"]
    assert _value(["a", 1, {"set": ["b"]}], {}) == ["a", "1", "b"]
    assert _value({"set": "x"}, {}) == ["x"]
    assert _value({"prefix": {"addr": "10.0.0.0", "len": 8}}, {}) == ["10.0.0.0/8"]
    assert _value({"range": [1, 9]}, {}) == ["1-9"]
    assert _value({"range": ["10.0.0.1", "10.0.0.9"]}, {}) == ["10.0.0.1-10.0.0.9"]
    assert _value({"elem": {"val": "eth0", "timeout": 5}}, {}) == ["eth0"]
    assert _value({"concat": ["eth0", "224.0.0.18"]}, {}) == ["eth0 . 224.0.0.18"]
    assert _value("@groups", SETS) == ["224.0.0.18", "239.0.0.0/8"]
    assert _value("@m", SETS) == ["eth0", "eth1"]  # a map's keys
    plain = {"s": NftSet("s", [["a", "b"]])}  # a set of lists is not a map: every value
    assert _value("@s", plain) == ["a", "b"]


@pytest.mark.parametrize("bad,why", [
    (True, "bool"), ("@nosuch", "set @nosuch"), ("@dyn", "set @dyn"),
    ({"concat": [{"set": ["a", "b"]}, "c"]}, "concat of sets"), ({"weird": 1}, "value {'weird': 1}"),
    (None, "value None"),
])
def test_values_not_decided(bad, why):
    with pytest.raises(_Unknown) as e:
        _value(bad, SETS)
    assert str(e.value) == why


# --- selectors ------------------------------------------------------------

@pytest.mark.parametrize("left,want", [
    (META("iifname"), "iifname"), (META("oifname"), "oifname"), (META("l4proto"), "l4proto"),
    (META("nfproto"), "nfproto"), (META("pkttype"), "pkttype"), (META("mark"), "mark"),
    (META("protocol"), "ethertype"),
    (IP("protocol"), "l4proto"), (IP("saddr"), "saddr"), (IP("daddr"), "daddr"), (IP("ttl"), "ttl"),
    (IP("frag-off"), "frag_off"),
    ({"payload": {"protocol": "ip6", "field": "daddr"}}, "daddr"),
    ({"payload": {"protocol": "ip6", "field": "nexthdr"}}, "l4proto"),
    ({"payload": {"protocol": "ip6", "field": "hoplimit"}}, "hoplimit"),
    ({"payload": {"protocol": "arp", "field": "op"}}, "never"),
    ({"payload": {"protocol": "tcp", "field": "dport"}}, "never"),
    ({"payload": {"protocol": "igmp", "field": "type"}}, "never"),
    ({"payload": {"protocol": "ether", "field": "type"}}, "ethertype"),
    (CT("state"), "ct_state"), (CT("status"), "ct_status"),
    ({"fib": {"result": "type", "flags": ["daddr"]}}, "fib_daddr_type"),
    ({"fib": {"result": "oif", "flags": ["saddr", "iif"]}}, "fib_rpf"),
    ({"fib": {"result": "oif", "flags": ["iif", "saddr"]}}, "fib_rpf"),
    ({"concat": [META("iifname"), IP("daddr")]}, "iifname . daddr"),
    ({"concat": [META("iifname"), {"payload": {"protocol": "ip6", "field": "daddr"}}]}, "iifname . daddr"),
    ({"concat": [META("iifname"), {"payload": {"protocol": "arp", "field": "op"}}]}, "never"),
])
def test_selectors(left, want):
    assert _key(left) == (want, None)


def test_masked_selectors():
    assert _key({"&": [META("mark"), 255]}) == ("mark", "255")
    assert _key({"&": [CT("state"), 8]}) == ("ct_state", "8")
    assert _key({"&": [IP("frag-off"), 16383]}) == ("frag_off", "16383")


@pytest.mark.parametrize("left,why", [
    ("iifname", "left"), (META("cpu"), "meta cpu"),
    (IP("length"), "payload ip length"),
    ({"payload": {"protocol": "ether", "field": "saddr"}}, "payload ether saddr"),
    ({"payload": {"protocol": "vlan", "field": "id"}}, "payload vlan id"),
    ({"ct": {"key": "state", "dir": "original"}}, "ct state"), (CT("mark"), "ct mark"),
    ({"fib": {"result": "type", "flags": ["saddr"]}}, "fib"),
    ({"fib": {"result": "oif", "flags": ["daddr", "iif"]}}, "fib"),
    ({"fib": {"result": "type", "flags": ["daddr", "iif"]}}, "fib"),
    ({"&": [META("mark"), "0xff"]}, "bitwise"), ({"&": [META("iifname"), 1]}, "bitwise"),
    ({"&": [META("cpu"), 1]}, "meta cpu"),
    ({"numgen": {"mode": "inc"}}, "numgen"), ({}, "left"),
])
def test_selectors_not_decided(left, why):
    with pytest.raises(_Unknown) as e:
        _key(left)
    assert str(e.value) == why


def test_field_values():
    assert _field_value("iifname", "eth*") == "eth+"
    assert _field_value("oifname", "eth\\*") == "eth\\*"
    assert _field_value("oifname", "eth0") == "eth0"
    assert _field_value("saddr", "10.0.0.1") == "10.0.0.1/32"
    assert _field_value("daddr", "10.0.0.0/8") == "10.0.0.0/8"
    assert _field_value("daddr", "10.0.0.1-10.0.0.9") == "10.0.0.1-10.0.0.9"
    assert _field_value("l4proto", "vrrp") == "vrrp"
    assert _field_value("ttl", "eth*") == "eth*"


# --- conditions -----------------------------------------------------------

def test_condition_fields():
    fields = {}
    assert _condition(m(META("iifname"), "eth*")["match"], {}, fields) is None
    assert _condition(m(IP("daddr"), "224.0.0.18", "!=")["match"], {}, fields) is None
    assert _condition(m(META("l4proto"), {"set": ["vrrp"]}, "in")["match"], {}, fields) is None
    assert _condition(m(IP("saddr"), "10.0.0.1")["match"], {}, fields) is None
    assert _condition(m(META("oifname"), "eth1")["match"], {}, fields) is None
    assert fields == {"in_iface": "eth+", "dst": "!224.0.0.18/32", "protocol": "vrrp", "src": "10.0.0.1/32",
                      "out_iface": "eth1"}


def test_condition_sets():
    fields = {"in_iface": "eth0"}
    got = _condition(m(META("iifname"), "eth1")["match"], {}, fields)  # the field is taken
    assert got == Match("set", (("key", ("iifname",)), ("values", ("eth1",))))
    got = _condition(m(META("iifname"), {"set": ["a", "b"]}, "!=")["match"], {}, {})
    assert got == Match("set", (("key", ("iifname",)), ("values", ("a", "b")), ("neg", ("!",))))
    got = _condition(m(META("l4proto"), {"range": [100, 120]})["match"], {}, {})
    assert got == Match("set", (("key", ("l4proto",)), ("values", ("100-120",))))
    got = _condition(m({"&": [META("mark"), 255]}, 1)["match"], {}, {})
    assert got == Match("set", (("key", ("mark",)), ("values", ("1",)), ("mask", ("255",))))
    got = _condition(m(META("mark"), 1, "!=")["match"], {}, {})
    assert got == Match("set", (("key", ("mark",)), ("values", ("1",)), ("neg", ("!",))))
    got = _condition(m(CT("state"), ["established", "related"], "in")["match"], {}, {})
    assert got == Match("set", (("key", ("ct_state",)), ("values", ("established", "related"))))
    got = _condition({"left": META("pkttype"), "right": "multicast"}, {}, {})  # op defaults to ==
    assert got == Match("set", (("key", ("pkttype",)), ("values", ("multicast",))))


def test_condition_special_cases():
    arp = {"payload": {"protocol": "arp", "field": "op"}}
    assert _condition(m(arp, 1)["match"], {}, {}) == Match("never")
    assert _condition(m(arp, 1, "!=")["match"], {}, {}) == Match("always")
    ip6 = {"payload": {"protocol": "ip6", "field": "daddr"}}
    fields: dict = {}
    assert _condition(m(ip6, "ff02::12")["match"], {}, fields) is None and fields == {"dst": "ff02::12/128"}
    rpf = {"fib": {"result": "oif", "flags": ["saddr", "iif"]}}
    assert _condition(m(rpf, True)["match"], {}, {}).param("values") == ("present",)
    assert _condition(m(rpf, False)["match"], {}, {}).param("values") == ("missing",)
    with pytest.raises(_Unknown) as e:
        _condition(m(IP("ttl"), 5, "<")["match"], {}, {})
    assert str(e.value) == "op <"
    with pytest.raises(_Unknown):
        _condition(m(IP("ttl"), True)["match"], {}, {})


def test_conditions_judged():
    assert match_rule(one(m(CT("state"), "new", "!="), {"drop": None}), PKT) is Tri.NO
    assert match_rule(one(m(CT("state"), ["new"], "in"), {"drop": None}), PKT) is Tri.YES
    assert match_rule(one(m(META("pkttype"), "multicast"), {"drop": None}), PKT) is Tri.YES
    assert match_rule(one(m(IP("ttl"), 255), {"drop": None}), PKT) is Tri.YES
    assert match_rule(one(m(IP("daddr"), "@groups"), {"drop": None}), PKT) is Tri.YES
    assert match_rule(one(m(IP("daddr"), "@dyn"), {"drop": None}), PKT) is Tri.MAYBE


# --- verdicts -------------------------------------------------------------

def test_verdicts():
    assert _verdict({"jump": {"target": "sub"}}) == ("sub", False)
    assert _verdict({"goto": {"target": "sub"}}) == ("sub", True)
    assert _verdict({"accept": None}) == ("ACCEPT", False)
    assert _verdict({"drop": None}) == ("DROP", False)
    assert _verdict({"reject": {"type": "icmp"}}) == ("REJECT", False)
    assert _verdict({"return": None}) == ("RETURN", False)
    assert _verdict({"queue": {"num": 1}}) == ("NFQUEUE", False)
    assert _verdict({"continue": None}) == ("", False)
    assert _verdict("accept") == ("ACCEPT", False) and _verdict("drop") == ("DROP", False)
    assert _verdict("bogus") == ("UNKNOWN-VERDICT", False)
    assert _verdict({"bogus": None}) == ("UNKNOWN-VERDICT", False)
    assert _verdict(7) == ("UNKNOWN-VERDICT", False)


def test_statement_verdicts():
    fw = one({"jump": {"target": "sub"}})
    assert (fw.target, fw.goto) == ("sub", False)
    fw = one({"goto": {"target": "sub"}})
    assert (fw.target, fw.goto) == ("sub", True)
    assert one({"reject": None}).target == "REJECT"
    assert one({"counter": None}).target == ""
    for stmt, target in (("fwd", "FWD"), ("tproxy", "TPROXY"), ("synproxy", "SYNPROXY")):
        assert one({stmt: {}}).target == target


# --- verdict maps ---------------------------------------------------------

def test_vmap_entries():
    assert _vmap_entries("@m", SETS) == [("eth0", {"accept": None}), ("eth1", {"drop": None})]
    data = {"set": [[{"set": ["a", "b"]}, "accept"], ["c", {"jump": {"target": "x"}}]]}
    assert _vmap_entries(data, {}) == [("a", "accept"), ("b", "accept"), ("c", {"jump": {"target": "x"}})]
    for bad, why in (("@nosuch", "map @nosuch"), ("@dyn", "map @dyn"), ("m", "vmap data"),
                     ({"x": 1}, "vmap data"),
                     ({"set": ["a"]}, "vmap element"), ({"set": [["a", "b", "c"]]}, "vmap element")):
        with pytest.raises(_Unknown) as e:
            _vmap_entries(bad, SETS)
        assert str(e.value) == why


def test_vmap_expands_into_one_rule_per_element():
    vmap = {"vmap": {"key": META("iifname"), "data": {"set": [["eth0", {"accept": None}],
                                                                ["eth1", {"goto": {"target": "x"}}]]}}}
    rules = conv(m(META("l4proto"), "vrrp"), vmap, comment="c", handle=9)
    assert [(r.target, r.goto) for r in rules] == [("ACCEPT", False), ("x", True)]
    for r, value in zip(rules, ("eth0", "eth1")):
        assert r.protocol == "vrrp" and r.handle == 9 and r.chain == "input" and r.comment == "c"
        assert r.matches[-1] == Match("set", (("key", ("iifname",)), ("values", (value,))))
    assert evaluate(rules, "DROP", PKT, lambda n: None).rule is rules[0]
    masked = {"vmap": {"key": {"&": [META("mark"), 255]}, "data": {"set": [[1, "drop"]]}}}
    want = Match("set", (("key", ("mark",)), ("values", ("1",)), ("mask", ("255",))))
    assert conv(masked)[0].matches[-1] == want
    ip6_daddr = {"payload": {"protocol": "ip6", "field": "daddr"}}
    ip6 = {"vmap": {"key": ip6_daddr, "data": {"set": [["::1", "drop"]]}}}
    assert conv(ip6)[0].matches[-1] == Match("set", (("key", ("daddr",)), ("values", ("::1",))))
    assert match_rule(conv(ip6)[0], PKT) is Tri.NO  # an IPv4 advert never reaches an ip6 map


def test_unreadable_vmap_is_not_judged():
    fw = one({"vmap": {"key": META("iifname"), "data": "@dyn"}})
    assert fw.target == "UNJUDGED-VMAP" and names(fw) == ["nft-map"]
    fw = one({"vmap": {"key": META("cpu"), "data": "@m"}})
    assert fw.target == "UNJUDGED-VMAP" and names(fw) == ["nft-meta"]
    assert evaluate([fw, one({"accept": None})], "DROP", PKT, lambda n: None).outcome is Outcome.UNCERTAIN


# --- other statements -----------------------------------------------------

def test_undecided_expressions_become_named_maybes():
    fw = one(m(IP("ttl"), 5, "<"), m(META("cpu"), 1), m("x", 1), m(IP("daddr"), "@dyn"),
             {"limit": {"rate": 1}}, {"quota": {}}, {"meter": {}}, {"connlimit": {}},
             {"set": {"op": "add", "elem": "x", "set": "@s", "stmt": [{"limit": {}}]}},
             {"map": {"op": "update", "stmt": [{"counter": None}]}}, {"accept": None})
    assert names(fw) == ["nft-op", "nft-meta", "nft-left", "nft-set", "nft-rate", "nft-rate", "nft-rate",
                         "nft-rate", "nft-rate", "nft-rate"]
    assert fw.target == "ACCEPT"
    assert match_rule(fw, PKT) is Tri.MAYBE


def test_stateful_update():
    assert _stateful_update({"set": {"stmt": [{"limit": {}}]}})
    assert _stateful_update({"map": {"stmt": [{"counter": None}]}})
    assert not _stateful_update({"set": {"op": "add", "stmt": []}})
    assert not _stateful_update({"set": {"op": "add"}})
    assert not _stateful_update({"set": "x"})
    assert not _stateful_update({"counter": None})
    fw = one({"set": {"op": "add", "set": "@s"}}, {"log": {}}, {"counter": None}, {"accept": None})
    assert fw.matches == () and fw.target == "ACCEPT"


def test_side_effects():
    mark = {"mangle": {"key": META("mark"), "value": 1}}
    ctmark = {"mangle": {"key": CT("mark"), "value": 1}}
    other = {"mangle": {"key": {"payload": {"protocol": "ip", "field": "ttl"}}, "value": 1}}
    prio = {"mangle": {"key": META("priority"), "value": 1}}
    # ct mark set: the connection's mark (not the packet's); ip ttl set: the TTL later rules read
    assert one(mark).effects == ("MARK",) and one(ctmark).effects == ("CONNMARK",)
    assert one(other).effects == ("TTL",)
    assert one(prio).effects == () and one({"mangle": {}}).effects == ()
    assert one({"notrack": None}).effects == ("NOTRACK",)
    assert one({"notrack": None}, mark).effects == ("NOTRACK", "MARK")


def test_compat_expressions():
    fw = one({"xt": {"type": "match", "name": "comment"}}, {"xt": {"type": "target", "name": "log"}})
    assert names(fw) == ["comment"] and fw.target == "LOG"
    assert names(one({"xt": {"type": "match"}})) == ["xt"]
    assert one({"xt": {"type": "target"}}).target == "XT"


def test_rule_identity():
    fw = one(m(META("iifname"), "eth0"), {"accept": None}, chain="c", comment="vrrpfw", handle=4)
    assert (fw.chain, fw.in_iface, fw.target, fw.handle, fw.is_vrrpfw) == ("c", "eth0", "ACCEPT", 4, True)
    assert fw.text == 'meta iifname eth0 accept comment "vrrpfw" (handle 4)'
    assert one({"accept": None}, comment="").matches == ()
    assert one({"accept": None}).handle is None


# --- text -----------------------------------------------------------------

def test_show():
    assert _show(META("iifname")) == "meta iifname"
    assert _show(IP("daddr")) == "ip daddr"
    assert _show(CT("state")) == "ct state"
    assert _show({"fib": {"flags": ["saddr", "iif"], "result": "oif"}}) == "fib saddr . iif oif"
    assert _show({"fib": {"result": "type"}}) == "fib  type"
    assert _show({"set": ["a", 1]}) == "{ a, 1 }"
    assert _show({"set": "a"}) == "{ a }"
    assert _show({"prefix": {"addr": "10.0.0.0", "len": 8}}) == "10.0.0.0/8"
    assert _show({"range": [1, 5]}) == "1-5"
    assert _show({"concat": [META("iifname"), IP("daddr")]}) == "meta iifname . ip daddr"
    assert _show({"&": [META("mark"), 255]}) == "meta mark & 255"
    assert _show({"numgen": {}}) == "numgen"
    assert _show({}) == "?"
    assert _show(["a", "b"]) == "a, b"
    assert _show("eth0") == "eth0" and _show("@set") == "@set" and _show(7) == "7"
    assert _show("eth*") == '"eth*"' and _show("224.0.0.18") == '"224.0.0.18"'


def test_rule_text():
    r = {"expr": [m(META("iifname"), "eth0"), m(IP("daddr"), "1.2.3.4", "!="),
                  m(CT("state"), ["new"], "in"), {"counter": None}, {"jump": {"target": "a"}}]}
    assert rule_text(r) == 'meta iifname eth0 ip daddr != "1.2.3.4" ct state new jump a'
    r = {"expr": [{"goto": {"target": "b"}}], "handle": 3}
    assert rule_text(r) == "goto b (handle 3)"
    r = {"expr": [{"vmap": {"key": META("iifname"), "data": {"set": [["eth0", "accept"]]}}}]}
    assert rule_text(r) == "meta iifname vmap { eth0, accept }"
    r = {"expr": [{"xt": {"type": "match", "name": "comment"}}, {"notrack": None}, {}], "comment": "x y"}
    assert rule_text(r) == 'xt match comment notrack comment "x y"'
    assert rule_text({}) == ""


# --- sets and tables ------------------------------------------------------

def test_set_elements():
    assert _set_elements({"elem": ["a", "b"]}) == ["a", "b"]
    assert _set_elements({}) == []
    assert _set_elements({"flags": ["interval"], "elem": ["a"]}) == ["a"]
    assert _set_elements({"flags": "constant", "elem": ["a"]}) == ["a"]
    assert not _set_dynamic({"flags": ["interval"], "elem": ["a"]})
    assert not _set_dynamic({"flags": "constant", "elem": ["a"]})
    # Sets packets or timeouts change: the elements are the kernel's current
    # ones (judged with the rules that may add to them), marked dynamic.
    assert _set_elements({"flags": ["dynamic"], "elem": ["a"]}) == ["a"]
    assert _set_dynamic({"flags": ["dynamic"], "elem": ["a"]})
    assert _set_dynamic({"flags": ["interval", "timeout"], "elem": ["a"]})
    assert _set_dynamic({"flags": "timeout", "elem": ["a"]})
    assert _set_dynamic({"flags": "dynamic"}) and _set_elements({"flags": "dynamic"}) == []
    assert _set_dynamic({"timeout": 30, "elem": ["a"]})


def table_items():
    return [
        {"table": {"family": "inet", "name": "t"}},
        {"set": {"name": "ifs", "elem": ["eth0"]}},
        {"map": {"name": "vm", "elem": [["eth0", {"drop": None}]]}},
        {"chain": {"name": "input", "hook": "input", "prio": 0, "policy": "accept"}},
        {"chain": {"name": "sub"}},
        {"rule": {"chain": "input", "handle": 5,
                   "expr": [m(META("iifname"), "@ifs"), {"jump": {"target": "sub"}}]}},
        {"rule": {"chain": "sub", "handle": 6,
                   "expr": [{"xt": {"type": "match", "name": "foo"}}, {"drop": None}]}},
        {"rule": {"chain": "input", "handle": 7,
                   "expr": [{"vmap": {"key": META("iifname"), "data": "@vm"}}]}},
        {"rule": {"chain": "input", "handle": 8, "expr": [{"xt": {"type": "target", "name": "x"}}]}},
        {"rule": {"chain": "late", "handle": 9, "expr": [{"accept": None}]}},
    ]


def test_convert_table():
    t = convert_table("inet", "t", table_items())
    assert (t.family, t.name, t.iptables_nft) == ("inet", "t", False)
    assert set(t.sets) == {"ifs", "vm"}
    assert t.sets["vm"].is_map and not t.sets["ifs"].is_map and t.sets["ifs"].elements == ["eth0"]
    assert list(t.headers) == ["input"] and t.headers["input"]["policy"] == "accept"
    assert set(t.chains) == {"input", "sub", "late"}
    assert [r.handle for r in t.chains["input"]] == [5, 7, 8]
    first = t.chains["input"][0]
    assert first.in_iface == "eth0" and first.matches == () and first.target == "sub"
    second = t.chains["input"][1]
    assert second.matches[-1].param("values") == ("eth0",) and second.target == "DROP"
    assert t.chains["sub"][0].matches == (Match("foo"),) and t.chains["late"][0].target == "ACCEPT"


def test_convert_table_with_compat_resolver():
    asked = []
    decoded = FwRule("sub", protocol="vrrp", target="DROP", text="-A sub -p vrrp -j DROP", handle="x")

    def resolver(chain, pos):
        asked.append((chain, pos))
        return decoded if chain == "sub" else None

    t = convert_table("ip", "filter", table_items(), resolver)
    assert asked == [("sub", 0), ("input", 2)]  # positions count every rule of the chain
    assert t.iptables_nft
    got = t.chains["sub"][0]
    assert got.protocol == "vrrp" and got.text == decoded.text and got.handle == 6
    assert t.chains["input"][2].target == "X"  # not decoded: converted as it is
    items = [i for i in table_items() if "rule" not in i or i["rule"]["chain"] == "input"]
    assert not convert_table("ip", "filter", items, lambda c, p: None).iptables_nft


def test_more_conversion_edges():
    with pytest.raises(_Unknown):
        _key({"fib": {"result": "type"}})
    with pytest.raises(_Unknown):
        _key({"fib": {"result": "oif"}})
    assert _field_value("oifname", "eth*") == "eth+"
    assert _show({"set": "ab"}) == "{ ab }"
    with pytest.raises(_Unknown) as e:
        _value({"weird": "x" * 100}, {})
    assert len(str(e.value)) == 60
    groups = ["224.0.0.18", "239.0.0.0/8"]
    assert _value(["@groups"], SETS) == groups and _value({"set": "@groups"}, SETS) == groups
    assert _value({"elem": {"val": "@groups"}}, SETS) == groups
    one_set = {"a": NftSet("a", ["x"]), "b": NftSet("b", ["y"])}
    assert _value({"concat": ["@a", "@b"]}, one_set) == ["x . y"]
    assert _value({"range": ["@a", "@b"]}, one_set) == ["x-y"]
    assert _vmap_entries({"set": [["@a", "accept"]]}, one_set) == [("x", "accept")]
    assert convert_rule("c", {}, {})[0].target == ""


def test_convert_table_more():
    t = convert_table("inet", "t", table_items())
    assert t.sets["ifs"].name == "ifs" and t.chains["late"][0].chain == "late"
    decoded = FwRule("x", target="DROP")
    items = [{"rule": {"chain": "new", "handle": 1, "expr": [{"xt": {"type": "match", "name": "foo"}}]}},
             {"rule": {"chain": "new", "handle": 2}}]
    t = convert_table("ip", "filter", items, lambda c, p: decoded)
    assert [r.handle for r in t.chains["new"]] == [1, 2]
