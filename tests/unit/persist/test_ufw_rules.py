"""vrrpfw's lines in ufw's before rules files: pure editing, and the store
on temporary copies of Debian's shipped files (no restorer: the
integration tests run ufw's own restorer in a namespace)."""

import os

import pytest

from vrrpfw.errors import InputError, PersistFileError
from vrrpfw.model import AH_PROTO, Direction, Family, VrrpRule
from vrrpfw.persist import ufw_rules as ur
from vrrpfw.persist.saved import FileSet

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

# Debian 12's ufw 0.36.2 before.rules, abridged (comments and layout kept where they matter).
BEFORE = (
    "#\n"
    "# rules.before\n"
    "#\n"
    "# Rules that should be run before the ufw command line added rules. Custom\n"
    "# rules should be added to one of these chains:\n"
    "#   ufw-before-input\n"
    "#   ufw-before-output\n"
    "#   ufw-before-forward\n"
    "#\n"
    "\n"
    "# Don't delete these required lines, otherwise there will be errors\n"
    "*filter\n"
    ":ufw-before-input - [0:0]\n"
    ":ufw-before-output - [0:0]\n"
    ":ufw-before-forward - [0:0]\n"
    ":ufw-not-local - [0:0]\n"
    "# End required lines\n"
    "\n"
    "\n"
    "# allow all on loopback\n"
    "-A ufw-before-input -i lo -j ACCEPT\n"
    "-A ufw-before-output -o lo -j ACCEPT\n"
    "\n"
    "# quickly process packets for which we already have a connection\n"
    "-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    "-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    "-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny\n"
    "-A ufw-before-input -m conntrack --ctstate INVALID -j DROP\n"
    "-A ufw-before-input -j ufw-not-local\n"
    "-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN\n"
    "-A ufw-not-local -j DROP\n"
    "\n"
    "# don't delete the 'COMMIT' line or these rules won't be processed\n"
    "COMMIT\n"
)
BEFORE6 = (
    "*filter\n"
    ":ufw6-before-input - [0:0]\n"
    ":ufw6-before-output - [0:0]\n"
    ":ufw6-before-forward - [0:0]\n"
    "# End required lines\n"
    "\n"
    "# allow all on loopback\n"
    "-A ufw6-before-input -i lo -j ACCEPT\n"
    "-A ufw6-before-output -o lo -j ACCEPT\n"
    "-A ufw6-before-input -p icmpv6 --icmpv6-type 130 -s fe80::/10 -j ACCEPT\n"
    "COMMIT\n"
)

IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth0", "224.0.0.18")
IN6 = VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6)
OUT6 = VrrpRule(Direction.OUT, "eth0", "ff02::12", Family.IPV6)
STRICT = VrrpRule(Direction.IN, "eth1", "224.0.0.18", strict=True)
STRICT6 = VrrpRule(Direction.IN, "eth1", "ff02::12", Family.IPV6, strict=True)
AH = VrrpRule(Direction.IN, "eth0", "224.0.0.18", proto=AH_PROTO)
UNI_IN = VrrpRule(Direction.IN, "eth0", "192.0.2.2", local="192.0.2.1")
UNI_OUT = VrrpRule(Direction.OUT, "eth0", "192.0.2.2", local="192.0.2.1")
UNI6_IN = VrrpRule(Direction.IN, "eth0", "fe80::2", Family.IPV6, local="fe80::1")
ALL4 = [IN, OUT, STRICT, AH, UNI_IN, UNI_OUT]
ALL6 = [IN6, OUT6, STRICT6, UNI6_IN]


def doc4(text=BEFORE):
    return ur.parse(text, "before.rules", Family.IPV4)


def doc6(text=BEFORE6):
    return ur.parse(text, "before6.rules", Family.IPV6)


def chain_lines(text, chain):
    return [line for line in text.splitlines() if line.startswith(f"-A {chain} ")]


def test_chains_per_family_and_direction():
    assert ur.chain_for(IN) == "ufw-before-input"
    assert ur.chain_for(OUT) == "ufw-before-output"
    assert ur.chain_for(IN6) == "ufw6-before-input"
    assert ur.chain_for(OUT6) == "ufw6-before-output"


def test_lines_are_the_iptables_save_format_with_vrrpfws_comment():
    new = ur.add_rules(doc4(), [IN, OUT])
    assert chain_lines(new, "ufw-before-input")[0] == (
        "-A ufw-before-input -d 224.0.0.18/32 -i eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT")
    assert chain_lines(new, "ufw-before-output")[0] == (
        "-A ufw-before-output -d 224.0.0.18/32 -o eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT")


@pytest.mark.parametrize("rules,doc,text", [(ALL4, doc4, BEFORE), (ALL6, doc6, BEFORE6)], ids=["v4", "v6"])
def test_every_shape_first_in_its_chain_idempotent_and_close_gives_the_bytes_back(rules, doc, text):
    once = ur.add_rules(doc(text), rules)
    assert once != text
    for r in rules:
        assert ur.is_persisted(doc(once), r), r
        assert ur.chain_for(r) in chain_lines(once, ur.chain_for(r))[0]
    assert ur.add_rules(doc(once), rules) == once
    fam = rules[0].family
    assert {key for _, key in ur.owned_lines(doc(once), fam)} == {r.key for r in rules}
    assert ur.remove_rules(doc(once), fam, None) == text
    assert ur.remove_rules(doc(once), fam, [r.key for r in rules]) == text


def test_strict_and_ah_and_unicast_lines():
    new = ur.add_rules(doc4(), [STRICT, AH, UNI_IN])
    lines = chain_lines(new, "ufw-before-input")
    assert "-A ufw-before-input -d 224.0.0.18/32 -i eth1 -p 112 -m ttl --ttl-eq 255 " \
           "-m comment --comment vrrpfw -j ACCEPT" in lines
    assert "-A ufw-before-input -d 224.0.0.18/32 -i eth0 -p 51 -m comment --comment vrrpfw -j ACCEPT" in lines
    assert "-A ufw-before-input -s 192.0.2.2/32 -d 192.0.2.1/32 -i eth0 -p 112 -m comment --comment vrrpfw " \
           "-j ACCEPT" in lines
    six = ur.add_rules(doc6(), [STRICT6])
    assert "-m hl --hl-eq 255" in chain_lines(six, "ufw6-before-input")[0]


def test_the_line_goes_above_ufws_comment_for_the_rule_below_it():
    new = ur.add_rules(doc4(), [IN])
    lines = new.splitlines()
    at = lines.index(ur.iptables_save.rule_line(IN, "ufw-before-input"))
    assert lines[at + 1] == "# allow all on loopback"
    assert lines[at - 1] == ""


def test_empty_chain_gets_the_line_before_commit():
    text = "*filter\n:ufw-before-input - [0:0]\n:ufw-before-output - [0:0]\nCOMMIT\n"
    new = ur.add_rules(doc4(text), [IN, OUT])
    assert new.splitlines()[-1] == "COMMIT"
    assert len(chain_lines(new, "ufw-before-input")) == 1
    assert ur.remove_rules(doc4(new), Family.IPV4, None) == text


def test_a_line_of_ours_below_another_rule_is_not_persisted_and_moves_up():
    ours = ur.iptables_save.rule_line(IN, "ufw-before-input")
    jump = "-A ufw-before-input -j ufw-not-local\n"
    low = BEFORE.replace(jump, f"{jump}{ours}\n")
    assert not ur.is_persisted(doc4(low), IN)
    new = ur.add_rules(doc4(low), [IN])
    assert chain_lines(new, "ufw-before-input")[0] == ours
    assert new.count(ours) == 1
    assert ur.remove_rules(doc4(new), Family.IPV4, None) == BEFORE


def test_close_removes_only_the_keys_asked_and_never_admins_lines():
    other = VrrpRule(Direction.IN, "eth1", "224.0.0.18")
    both = ur.add_rules(doc4(), [IN, other])
    only = ur.remove_rules(doc4(both), Family.IPV4, [other.key])
    assert ur.is_persisted(doc4(only), IN) and not ur.is_persisted(doc4(only), other)
    # an admin's identical rule without the comment is never vrrpfw's
    admin = BEFORE.replace("-A ufw-before-input -i lo -j ACCEPT\n",
                           "-A ufw-before-input -d 224.0.0.18/32 -i eth0 -p 112 -j ACCEPT\n"
                           "-A ufw-before-input -i lo -j ACCEPT\n")
    assert ur.owned_lines(doc4(admin), Family.IPV4) == []
    assert ur.remove_rules(doc4(admin), Family.IPV4, None) == admin


def test_older_spelling_p_vrrp_is_recognised():
    text = BEFORE.replace("# allow all on loopback\n", "# allow all on loopback\n-A ufw-before-input -d "
                          "224.0.0.18/32 -i eth0 -p vrrp -m comment --comment vrrpfw -j ACCEPT\n")
    assert ur.is_persisted(doc4(text), IN)
    assert ur.add_rules(doc4(text), [IN]) == text
    assert ur.remove_rules(doc4(text), Family.IPV4, None) == BEFORE


@pytest.mark.parametrize("text,words", [
    ("*filter\n:ufw-before-input - [0:0]\n-A ufw-before-input -j ACCEPT\n", "has no COMMIT"),
    ("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n", "no *filter section"),
    ("*filter\n:INPUT DROP [0:0]\nCOMMIT\n", "does not declare ufw-before-input"),
    ("*filter\r\n:ufw-before-input - [0:0]\r\nCOMMIT\r\n", "carriage return"),
    (BEFORE6, "does not declare ufw-before-input"),
], ids=["no-commit", "no-filter", "not-ufw", "crlf", "v6-as-v4"])
def test_unparsable_or_foreign_files_are_refused_with_file_and_reason(text, words):
    with pytest.raises(PersistFileError) as e:
        doc4(text)
    assert words in str(e.value) and "before.rules" in str(e.value)
    assert "\n" not in str(e.value)


def test_file_family_by_content_then_name(tmp_path):
    six = tmp_path / "b.rules"
    six.write_text(BEFORE6)
    assert ur.file_family(str(six)) is Family.IPV6
    four = tmp_path / "before6-copy.rules"
    four.write_text(BEFORE)
    assert ur.file_family(str(four)) is Family.IPV4
    assert ur.file_family(str(tmp_path / "before6.rules")) is Family.IPV6
    assert ur.file_family(str(tmp_path / "before.rules")) is Family.IPV4


def test_restorer_is_ufws_own_load_with_test_and_noflush(monkeypatch):
    monkeypatch.setattr(ur, "which", lambda name: f"/usr/sbin/{name}")
    tool, label = ur.restorer("nft", Family.IPV6)
    assert label == "ip6tables-nft-restore"
    assert tool is not None and tool.argv[1:] == ["--test", "--noflush", "--wait=5"]
    monkeypatch.setattr(ur, "which", lambda name: None)
    assert ur.restorer("legacy", Family.IPV4) == (None, "iptables-legacy-restore")


# -- the store, on files -------------------------------------------------------

def store(tmp_path, fams=(Family.IPV4, Family.IPV6), custom=False):
    files = FileSet()
    parts = {}
    for fam in fams:
        path = str(tmp_path / ur.FILE_NAMES[fam])
        parts[fam] = ur.UfwRulesFile(path, files.get(path), fam, "nft")
        parts[fam].saved.restorers.clear()  # unit tests: vrrpfw's parser only
    return ur.UfwRulesStore(parts, custom=custom), files


def write_files(tmp_path):
    (tmp_path / "before.rules").write_text(BEFORE)
    (tmp_path / "before6.rules").write_text(BEFORE6)


def test_store_open_then_close_gives_both_files_back_byte_for_byte(tmp_path):
    write_files(tmp_path)
    os.chmod(tmp_path / "before.rules", 0o640)
    s, files = store(tmp_path)
    s.load()
    rules = ALL4 + ALL6
    assert s.persisted(rules) == set()
    plan = s.plan("open", rules)
    assert plan.changed and "+-A ufw-before-input" in plan.diff and "+-A ufw6-before-input" in plan.diff
    s.commit(plan)
    assert files.flush() == {}
    assert oct(os.stat(tmp_path / "before.rules").st_mode & 0o777) == "0o640"
    s2, files2 = store(tmp_path)
    s2.load()
    assert s2.persisted(rules) == {r.key for r in rules}
    assert sorted(r.key for r in s2.discover()) == sorted(r.key for r in rules)
    assert not s2.plan("open", rules).changed
    s2.commit(s2.plan("close", rules))
    assert files2.flush() == {}
    assert (tmp_path / "before.rules").read_text() == BEFORE
    assert (tmp_path / "before6.rules").read_text() == BEFORE6


def test_store_refuses_a_missing_file_and_never_creates_it(tmp_path):
    (tmp_path / "before6.rules").write_text(BEFORE6)
    s, _ = store(tmp_path)
    with pytest.raises(PersistFileError) as e:
        s.load()
    assert "before.rules does not exist" in str(e.value) and "never creates" in str(e.value)
    assert not (tmp_path / "before.rules").exists()


def test_store_refuses_an_unparsable_file_before_anything(tmp_path):
    write_files(tmp_path)
    (tmp_path / "before.rules").write_text(BEFORE.replace("COMMIT\n", "COMMIT \n"))
    s, _ = store(tmp_path)
    with pytest.raises(PersistFileError) as e:
        s.load()
    assert "before.rules:" in str(e.value) and "bare COMMIT" in str(e.value)


def test_custom_file_holds_one_family(tmp_path):
    write_files(tmp_path)
    s, _ = store(tmp_path, fams=(Family.IPV4,), custom=True)
    s.load()
    with pytest.raises(InputError) as e:
        s.plan("open", [IN, IN6])
    assert "one family" in str(e.value) and "before6.rules" in str(e.value)
    assert s.plan("open", [IN]).changed


def test_ipv6_rules_with_ufws_ipv6_off_are_refused(tmp_path):
    write_files(tmp_path)
    s, _ = store(tmp_path, fams=(Family.IPV4,))
    s.load()
    assert s.persisted([IN, IN6]) == set()  # measured, never refused: open may have nothing to write
    with pytest.raises(InputError) as e:
        s.plan("open", [IN6])
    assert "IPV6=no" in str(e.value)


def test_default_paths_follow_root():
    assert ur.default_path(Family.IPV4) == "/etc/ufw/before.rules"
    assert ur.default_path(Family.IPV6, "/srv/root") == "/srv/root/etc/ufw/before6.rules"

