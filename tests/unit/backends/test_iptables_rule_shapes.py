"""Issue 10 in the legacy iptables backend, without root: every VrrpRule
shape as a saved line (written as iptables-save prints it, and read back
into the same key), the IPv6 file beside rules.v4, the one-family
--persist-file, the reader's ttl/hl decoding, and the chooser of how the
strict rules' ttl match is built (both probe outcomes)."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace

import pytest

from vrrpfw.backends.base import Options
from vrrpfw.errors import BackendError, InputError
from vrrpfw.judge.read import iptc_loader, iptc_rules
from vrrpfw.judge.rules import Match, vrrpfw_key
from vrrpfw.model import Direction, Family, VrrpRule, make_specs, rules_for
from vrrpfw.persist import iptables_save as ips
from vrrpfw.persist import iptables_store, locations
from vrrpfw.persist.saved import FileSet

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN, OUT = Direction.IN, Direction.OUT
V6 = Family.IPV6

# Every shape, with the line vrrpfw writes for it (the order iptables-save
# and ip6tables-save 1.8.9 print, checked in a namespace by
# tests/integration/iptables/test_iptables_every_shape.py).
SHAPES = [
    (VrrpRule(IN, "eth0", "224.0.0.18"),
     "-A INPUT -d 224.0.0.18/32 -i eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(OUT, "eth0", "224.0.0.18"),
     "-A OUTPUT -d 224.0.0.18/32 -o eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(IN, "eth0", "ff02::12", V6),
     "-A INPUT -d ff02::12/128 -i eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(IN, "eth0", "ff02::12", V6, strict=True),
     "-A INPUT -d ff02::12/128 -i eth0 -p 112 -m hl --hl-eq 255 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(OUT, "eth0", "ff02::12", V6),
     "-A OUTPUT -d ff02::12/128 -o eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(IN, "eth0", "192.0.2.2", local="192.0.2.1"),
     "-A INPUT -s 192.0.2.2/32 -d 192.0.2.1/32 -i eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(OUT, "eth0", "192.0.2.2", local="192.0.2.1"),
     "-A OUTPUT -s 192.0.2.1/32 -d 192.0.2.2/32 -o eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(IN, "eth0", "192.0.2.2", proto=51, local="192.0.2.1", strict=True),
     "-A INPUT -s 192.0.2.2/32 -d 192.0.2.1/32 -i eth0 -p 51 -m ttl --ttl-eq 255 "
     "-m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(IN, "eth0", "224.0.0.18", proto=51),
     "-A INPUT -d 224.0.0.18/32 -i eth0 -p 51 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(IN, "eth0", "224.0.0.18", strict=True),
     "-A INPUT -d 224.0.0.18/32 -i eth0 -p 112 -m ttl --ttl-eq 255 -m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(IN, "eth1", "fd00::2", V6, local="fd00::1", strict=True),
     "-A INPUT -s fd00::2/128 -d fd00::1/128 -i eth1 -p 112 -m hl --hl-eq 255 "
     "-m comment --comment vrrpfw -j ACCEPT"),
    (VrrpRule(OUT, "eth1", "fd00::2", V6, local="fd00::1"),
     "-A OUTPUT -s fd00::1/128 -d fd00::2/128 -o eth1 -p 112 -m comment --comment vrrpfw -j ACCEPT"),
]


@pytest.mark.parametrize("rule,line", SHAPES)
def test_rule_line_renders_every_shape_and_reads_back_to_its_key(rule, line):
    assert ips.rule_line(rule) == line
    assert ips.vrrpfw_line_key(line) == rule.key
    assert VrrpRule.from_key(ips.vrrpfw_line_key(line)) == rule
    moved = line.replace(f"-A {rule.chain}", "-A helper")
    assert ips.vrrpfw_line_key(moved) is None and ips.vrrpfw_line_key(moved, anywhere=True) == rule.key


@pytest.mark.parametrize("rule,line", SHAPES)
def test_what_iptables_save_prints_is_recognised(rule, line):
    """iptables-save names protocols from /etc/protocols (-p vrrp, -p ah)."""
    printed = line.replace("-p 112", "-p vrrp").replace("-p 51", "-p ah")
    assert ips.vrrpfw_line_key(printed) == rule.key


def test_lines_of_other_forms_are_not_ours():
    strict = SHAPES[9][1]
    assert ips.vrrpfw_line_key(strict.replace("--ttl-eq 255", "--ttl-eq 64")) is None
    assert ips.vrrpfw_line_key(strict.replace("--ttl-eq 255", "--ttl-gt 254")) is None
    assert ips.vrrpfw_line_key(strict.replace("-m ttl --ttl-eq 255", "-m ttl ! --ttl-eq 255")) is None
    out_strict = SHAPES[1][1].replace("-p 112", "-p 112 -m ttl --ttl-eq 255")
    assert ips.vrrpfw_line_key(out_strict) is None  # strict exists inbound only
    unicast = SHAPES[5][1]
    assert ips.vrrpfw_line_key(unicast.replace("-s 192.0.2.2/32", "! -s 192.0.2.2/32")) is None
    assert ips.vrrpfw_line_key(unicast.replace("-p 112", "-p 50")) is None
    assert ips.vrrpfw_line_key(unicast.replace("-s 192.0.2.2/32", "-s fd00::2/128")) is None  # mixed families
    # a unicast destination without a source is no shape vrrpfw writes
    assert ips.vrrpfw_line_key(unicast.replace("-s 192.0.2.2/32 ", "")) is None


def test_old_vrrpfw_lines_keep_their_key():
    old = "-A INPUT -d 224.0.0.18/32 -i eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"
    assert ips.vrrpfw_line_key(old) == ("in", "eth0", "224.0.0.18")


V6_SAVED = (
    "# Generated by ip6tables-save v1.8.9\n"
    "*filter\n"
    ":INPUT DROP [0:0]\n"
    ":FORWARD DROP [0:0]\n"
    ":OUTPUT DROP [0:0]\n"
    "-A INPUT -i lo -j ACCEPT\n"
    "-A INPUT -p ipv6-icmp -j ACCEPT\n"
    "COMMIT\n"
)


def test_ipv6_rules_round_trip_through_an_ip6tables_save_file():
    rules = rules_for(make_specs(["eth0"], ["ff02::12"], strict=True)[0])
    new, unplaced = ips.add_rules(ips.parse(V6_SAVED), rules)
    assert unplaced == []
    lines = new.splitlines()
    assert lines[lines.index(":OUTPUT DROP [0:0]") + 1] == ips.rule_line(rules[0])
    doc = ips.parse(new)
    assert all(ips.is_persisted(doc, r) for r in rules)
    assert {k for _, k in ips.filter_keys(doc)} == {r.key for r in rules}
    assert ips.add_rules(doc, rules)[0] == new  # idempotent
    assert ips.remove_rules(doc, None) == V6_SAVED


def test_unicast_two_peers_and_ah_round_trip():
    spec = make_specs(["eth0"], peers=["192.0.2.2", "192.0.2.3"], local="192.0.2.1", ah=True, strict=True)[0]
    rules = rules_for(spec)
    assert len(rules) == 8
    text = V6_SAVED.replace("ipv6-icmp", "icmp")
    new, _ = ips.add_rules(ips.parse(text), rules)
    doc = ips.parse(new)
    assert sorted(k for _, k in ips.filter_keys(doc)) == sorted(r.key for r in rules)
    assert ips.remove_rules(doc, [rules[0].key]).count("--comment vrrpfw") == 7
    assert ips.remove_rules(doc, None) == text


# -- the reader's view of python-iptables rules ---------------------------------


class FakeMatch:
    """What python-iptables hands the reader: a name, parameters through
    libxtables' save, and the struct (``_ptr``) with the match's data."""

    def __init__(self, name, data=b"", params=None):
        header = iptc_loader_header()
        self._buf = ctypes.create_string_buffer(ctypes.sizeof(header) + 8)
        ctypes.memmove(ctypes.addressof(self._buf) + ctypes.sizeof(header), data, len(data))
        self._ptr = ctypes.cast(self._buf, ctypes.POINTER(header))
        self.name = name
        self.params = params or {}

    def get_all_parameters(self):
        return self.params


def iptc_loader_header():
    class XtEntryMatch(ctypes.Structure):  # struct xt_entry_match: 32 bytes of header
        _fields_ = [("u", ctypes.c_uint8 * 32)]

    return XtEntryMatch


def fake_rule(matches, src="::/0", dst="ff02::12/128", proto="112"):
    return SimpleNamespace(matches=matches, protocol=proto, src=src, dst=dst, in_interface="eth0",
                           out_interface=None, target=SimpleNamespace(name="ACCEPT", goto=False))


def test_reader_decodes_ttl_and_hl_from_the_struct_not_from_libxtables():
    """On iptables 1.8.11 libxtables' ttl option handling broke; the struct
    does not change, so the reader decodes it (the save output is ignored)."""
    hl = FakeMatch("hl", bytes((0, 255)), params={"bogus": ["x"]})
    comment = FakeMatch("comment", params={"comment": ["vrrpfw"]})
    fw = iptc_rules.to_fwrule("INPUT", fake_rule([hl, comment]))
    assert fw.matches[0] == Match("hl", (("hl-eq", ("255",)),))
    assert fw.dst == "ff02::12/128" and fw.src is None
    assert vrrpfw_key(fw) == VrrpRule(IN, "eth0", "ff02::12", V6, strict=True).key
    assert "-m hl --hl-eq 255" in fw.text
    ttl = FakeMatch("ttl", bytes((3, 64)))  # mode 3 is gt
    fw4 = iptc_rules.to_fwrule("INPUT", fake_rule([ttl, comment], "192.0.2.2/255.255.255.255",
                                                  "192.0.2.1/255.255.255.255"))
    assert fw4.matches[0] == Match("ttl", (("ttl-gt", ("64",)),))
    assert fw4.src == "192.0.2.2/32" and vrrpfw_key(fw4) is None


def test_could_match_vrrp_knows_ah_and_ip6tables_protocol_flag():
    assert iptc_rules.could_match_vrrp(51, 0) and iptc_rules.could_match_vrrp(112, 0)
    assert not iptc_rules.could_match_vrrp(6, 0)
    assert iptc_rules.could_match_vrrp(112, iptc_rules.IPT_INV_PROTO)  # ! -p vrrp matches AH
    assert iptc_rules.could_match_vrrp(6, 0, flags=0)  # ip6tables ignores proto without IP6T_F_PROTO
    assert not iptc_rules.could_match_vrrp(6, 0, flags=iptc_rules.IP6T_F_PROTO)


# -- how the ttl match is built: chosen by probing --------------------------------


def test_choose_way_takes_the_parser_where_it_works():
    way, why = iptc_loader.choose_way([("parse", lambda: True), ("raw", lambda: True)])
    assert (way, why) == ("parse", [])


def test_choose_way_falls_back_to_raw_bytes_where_the_parser_fails():
    def broken():
        raise RuntimeError("ttl: no such parameter ttl-eq")

    way, why = iptc_loader.choose_way([("parse", broken), ("raw", lambda: True)])
    assert way == "raw" and why == ["parse: ttl: no such parameter ttl-eq"]
    way, why = iptc_loader.choose_way([("parse", lambda: False), ("raw", lambda: False)])
    assert way is None and len(why) == 2


def test_ttl_way_probes_once_and_refuses_clearly_when_nothing_works(monkeypatch):
    calls = []

    def probe(iptc, six, way):
        calls.append(way)
        if way == "parse":
            raise ValueError("no such parameter")
        return False

    monkeypatch.setattr(iptc_loader, "_probe", probe)
    monkeypatch.setattr(iptc_loader, "_WAYS", {})
    with pytest.raises(BackendError, match="cannot build the ttl match.*no such parameter"):
        iptc_loader.ttl_way(object(), False)
    with pytest.raises(BackendError):
        iptc_loader.ttl_way(object(), False)
    assert calls == ["parse", "raw"]  # cached per process


# -- the store: two files, or one family per --persist-file -------------------------


class FakeBackend:
    def __init__(self, options):
        self.options = options
        self.files = FileSet()

    def saved_files(self):
        return self.files


def debian_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text("ID=debian\n")
    (tmp_path / "etc/iptables").mkdir()
    v4 = V6_SAVED.replace("ipv6-icmp", "icmp")
    (tmp_path / "etc/iptables/rules.v4").write_text(v4)
    (tmp_path / "etc/iptables/rules.v6").write_text(V6_SAVED)
    return v4


def test_each_rule_goes_to_its_familys_distribution_file(tmp_path):
    v4 = debian_root(tmp_path)
    store = iptables_store.saved_iptables_file(FakeBackend(Options(root=str(tmp_path))), "legacy")
    assert store.path.endswith("rules.v4 and " + str(tmp_path / "etc/iptables/rules.v6"))
    store.load()
    rules = (rules_for(make_specs(["eth0"])[0]) + rules_for(make_specs(["eth0"], ["ff02::12"])[0]))
    plan = store.plan("open", rules)
    store.commit(plan)
    texts = {fam: part.saved.text for fam, part in store.parts.items()}
    assert "ff02::12" not in texts[Family.IPV4] and "224.0.0.18" not in texts[Family.IPV6]
    assert texts[Family.IPV6].count("--comment vrrpfw") == 2
    assert store.persisted(rules) == {r.key for r in rules}
    assert sorted(r.key for r in store.discover()) == sorted(r.key for r in rules)
    assert store.parts[Family.IPV4].saved.text != v4


def test_rhel_ipv6_file_and_restorer_labels(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID="rocky"\nID_LIKE="rhel centos fedora"\n')
    six = locations.choose(None, str(tmp_path), "ip6tables")
    assert six.path == str(tmp_path / "etc/sysconfig/ip6tables")
    assert locations.choose(None, str(tmp_path)).path == str(tmp_path / "etc/sysconfig/iptables")
    from vrrpfw.persist import restorers

    r6 = restorers.iptables("legacy", "ip6")
    assert r6 is None or (r6.label == "ip6tables-legacy-restore" and r6.argv[1:] == ["--test", "--wait=5"])
    nft6 = restorers.iptables("nft", "ip6")
    assert nft6 is None or nft6.label == "ip6tables-nft-restore"


@pytest.mark.parametrize("name,content,family", [
    ("rules.v4", None, Family.IPV4),
    ("rules.v6", None, Family.IPV6),
    ("my-ipv6.rules", None, Family.IPV6),
    ("ip6tables", None, Family.IPV6),
    ("firewall.save", "*filter\n-A INPUT -s fd00::7/128 -j ACCEPT\nCOMMIT\n", Family.IPV6),
    ("rules.v6", "*filter\n-A INPUT -d 192.0.2.9/32 -j ACCEPT\nCOMMIT\n", Family.IPV4),  # content wins
    ("v46.save", None, Family.IPV4),
])
def test_custom_file_family_from_content_then_name(tmp_path, name, content, family):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert iptables_store.custom_family(str(path)) is family


def test_persist_file_refuses_the_other_family(tmp_path):
    path = str(tmp_path / "rules.v4")
    (tmp_path / "rules.v4").write_text(V6_SAVED.replace("ipv6-icmp", "icmp"))
    store = iptables_store.saved_iptables_file(FakeBackend(Options(persist_file=path)), "legacy")
    assert list(store.parts) == [Family.IPV4]
    v6 = rules_for(make_specs(["eth0"], ["ff02::12"])[0])
    with pytest.raises(InputError, match="holds IPv4 rules.*IPv6 rules need their own file") as e:
        store.plan("open", v6)
    assert e.value.exit_code == 2
    assert store.plan("open", rules_for(make_specs(["eth0"])[0])).changed


# -- saved texts as a path model: ip6tables-save chains have family ip6 ----------


def test_offline_ip6tables_text_judges_ipv6_rules_only():
    from vrrpfw.judge.netpath import judge
    from vrrpfw.judge.read.saved import model_from_texts
    from vrrpfw.results import Runtime

    rule6 = VrrpRule(IN, "eth0", "ff02::12", V6, strict=True)
    rule4 = VrrpRule(IN, "eth0", "224.0.0.18")
    closed6 = V6_SAVED
    model = model_from_texts(legacy6=closed6)
    assert {c.id.family for c in model.chains} == {"ip6"}
    assert judge(model, rule6).state is Runtime.MISSING
    assert judge(model, rule4).state is Runtime.ALLOWED_BY_POLICY  # IPv6's DROP is not on an IPv4 path
    opened = ips.add_rules(ips.parse(closed6), [rule6])[0]
    assert judge(model_from_texts(legacy6=opened), rule6).state is Runtime.ALLOWED
    # a rule for another hop limit lets no strict advert in
    other = opened.replace("--hl-eq 255", "--hl-eq 64")
    assert judge(model_from_texts(legacy6=other), rule6).state is Runtime.MISSING
