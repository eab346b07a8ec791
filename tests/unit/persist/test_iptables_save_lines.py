"""iptables-save editing, pinned line by line: the exact refusals (with
file:line), where vrrpfw's line goes in a chain, and which lines count as
vrrpfw's.  Written against the survivors of a mutation run
(tests/mutation.sh saved)."""

import pytest

from vrrpfw.errors import PersistFileError
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.persist import iptables_save as ips

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth0", "224.0.0.18")
OURS_IN = "-A INPUT -d 224.0.0.18/32 -i eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"
OURS_OUT = "-A OUTPUT -d 224.0.0.18/32 -o eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"


def refusal(text, path=None):
    with pytest.raises(PersistFileError) as e:
        if path is None:
            ips.parse(text)
        else:
            ips.parse(text, path)
    return str(e.value)


# -- parse: exact messages and line numbers --------------------------------------------------


def test_refusals_name_the_default_path_and_the_line():
    assert refusal("*filter\n:INPUT ACCEPT [0:0]\nhello\nCOMMIT\n") == "<text>:3: unexpected line 'hello'"
    assert refusal("# c\n-A INPUT -j ACCEPT\n", "f") == (
        "f:2: '-A INPUT -j ACCEPT' is outside any table (no '*filter' before it)")


def test_refusal_messages_are_exact():
    assert refusal("*filter\r\nCOMMIT\n", "f") == (
        "f:1: line has a carriage return (CRLF line endings), which iptables-restore refuses")
    assert refusal("*filter\nCOMMIT\n\x00\n", "f") == (
        "f:3: line has a NUL byte, which iptables-restore refuses")
    assert refusal("*filter\n  \nCOMMIT\n", "f") == (
        "f:2: a line of only blanks, which iptables-restore refuses")
    assert refusal("*filter\n  # a comment that is longer than twenty\nCOMMIT\n", "f") == (
        "f:2: indented '# a comment that is ': iptables-restore reads an indented line as a rule and "
        "refuses it")
    assert refusal("*filter\n*nat\nCOMMIT\n", "f") == "f:2: table *nat starts before filter ends with COMMIT"
    assert refusal("*\nCOMMIT\n", "f") == "f:1: bad table line '*'"
    assert refusal("*fil\tter\nCOMMIT\n", "f") == "f:1: bad table line '*fil\\tter'"
    assert refusal("*nat\nCOMMIT\n*nat\nCOMMIT\n", "f") == (
        "f:3: a second *nat section; at restore it would flush the first one, so vrrpfw will not edit "
        "this file (merge them)")
    assert refusal("*filter\nCOMMIT \n", "f") == "f:2: 'COMMIT ': iptables-restore accepts only a bare COMMIT"
    assert refusal("*filter\nCOMMIT", "f") == (
        "f:2: COMMIT without a newline at the end of the file, which iptables-legacy-restore refuses")
    assert refusal("*filter\n:INPUT ACCEPT [0:0]\n", "f") == "f: table *filter has no COMMIT line"
    assert refusal('*filter\n-A INPUT -m comment --comment "x\nCOMMIT\n', "f") == (
        "f:2: cannot parse rule: No closing quotation")


def test_long_lines_are_cut_in_messages():
    long = "x" * 60
    assert refusal(f"*filter\n{long}\nCOMMIT\n", "f") == f"f:2: unexpected line {'x' * 40!r}"
    assert refusal(f"-A {long}\n", "f") == (
        f"f:1: {('-A ' + long)[:40]!r} is outside any table (no '*filter' before it)")
    assert refusal(f"*filter\n  {long}\nCOMMIT\n", "f").startswith(f"f:2: indented {'x' * 20!r}: ")


def test_an_indented_rule_is_a_rule():
    """iptables-restore reads an indented line as a rule: an indented rule is fine."""
    doc = ips.parse("*filter\n  -A INPUT -j ACCEPT\nCOMMIT\n")
    assert [(s.name, s.start, s.commit) for s in doc.sections] == [("filter", 0, 2)]


def test_sections_and_chains_are_recorded():
    text = ("# head\n*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
            "*filter\n:X\n:\n:INPUT DROP [1:2]\nCOMMIT\n# tail\n")
    doc = ips.parse(text)
    assert [(s.name, s.start, s.commit, s.chains) for s in doc.sections] == [
        ("raw", 1, 3, ["PREROUTING"]), ("filter", 4, 8, ["X", "", "INPUT"])]
    assert doc.section("filter") is doc.sections[1] and doc.section("nat") is None
    assert doc.text() == text
    assert doc.lines == text.splitlines(keepends=True)


# -- _options and vrrpfw_line_key ---------------------------------------------------------------


def test_options_pairs_flags_with_values():
    assert ips._options(["-f", "-i", "eth0"]) == {"-f": "", "-i": "eth0"}
    assert ips._options(["-i", "eth0", "-j"]) == {"-i": "eth0", "-j": ""}
    assert ips._options(["comment", "x", "-j", "ACCEPT"]) == {"comment": "", "x": "", "-j": "ACCEPT"}
    assert ips._options(["-i", "a", "-i", "b"]) == {"-i": "a"}  # the first one counts
    assert ips._options([]) == {}


def test_options_steps_over_lone_flags():
    assert ips._options(["-x", "-y", "-z", "v"]) == {"-x": "", "-y": "", "-z": "v"}
    assert ips._options(["a", "b", "c"]) == {"a": "", "b": "", "c": ""}


def test_our_lines_are_recognised():
    assert ips.vrrpfw_line_key(OURS_IN) == IN.key
    assert ips.vrrpfw_line_key(OURS_OUT + "\n") == OUT.key
    assert ips.vrrpfw_line_key("  " + OURS_IN) == IN.key
    assert ips.vrrpfw_line_key(OURS_IN.replace("-p 112", "-p VRRP")) == IN.key
    assert ips.vrrpfw_line_key(OURS_IN + " -f") == IN.key  # a lone flag at the end


@pytest.mark.parametrize("line", [
    OURS_IN.replace("-A INPUT", "-I INPUT"),  # not appended: not a saved line of ours
    OURS_IN.replace("--comment vrrpfw", "--comment other"),
    OURS_IN.replace("--comment vrrpfw", "--comment vrrpfw2"),
    OURS_IN.replace("-j ACCEPT", "-j DROP"),
    OURS_IN.replace("-p 112 ", ""),  # no protocol: not VRRP only
    OURS_IN.replace("-p 112", "-p tcp"),
    OURS_IN.replace("-i eth0 ", ""),  # no interface
    OURS_IN.replace("-i eth0", "-i eth0 -o eth1"),  # both directions
    OURS_IN.replace("-i eth0", "-o eth0"),  # -o in INPUT
    OURS_OUT.replace("-o eth0", "-o eth0 -i eth1"),
    OURS_OUT.replace("-o eth0", "-i eth0"),  # -i in OUTPUT
    OURS_IN.replace("-A INPUT", "-A FORWARD"),
    '-A INPUT -m comment --comment "vrrpfw -j ACCEPT',  # does not split
    "-A vrrpfw",
    "# " + OURS_IN,
    "",
])
def test_lines_that_are_not_ours(line):
    assert ips.vrrpfw_line_key(line) is None


def test_anywhere_finds_moved_lines_but_still_needs_one_direction():
    moved = OURS_IN.replace("-A INPUT", "-A helper")
    assert ips.vrrpfw_line_key(moved) is None
    assert ips.vrrpfw_line_key(moved, anywhere=True) == IN.key
    assert ips.vrrpfw_line_key(OURS_OUT.replace("-A OUTPUT", "-A helper"), True) == OUT.key
    assert ips.vrrpfw_line_key(moved.replace("-i eth0", "-i eth0 -o eth1"), True) is None
    assert ips.vrrpfw_line_key(moved.replace("-i eth0 ", ""), True) is None


def test_a_line_without_a_destination_is_not_a_form_vrrpfw_writes():
    # Issue 10: keys are VrrpRule selectors (VrrpRule.from_match); an empty
    # group was a key no rule could be rebuilt from.
    assert ips.vrrpfw_line_key(OURS_IN.replace("-d 224.0.0.18/32 ", "")) is None
    assert ips.vrrpfw_line_key(OURS_IN.replace("224.0.0.18/32", "224.0.0.19")) == ("in", "eth0", "224.0.0.19")


def test_chain_of():
    assert ips._chain_of("-A INPUT -j ACCEPT\n") == "INPUT"
    assert ips._chain_of("-A X") == "X"
    assert ips._chain_of("-A") == ""
    assert ips._chain_of("") == ""


# -- table_keys, placed ----------------------------------------------------------------------


RAW_OURS = "-A PREROUTING -d 224.0.0.18/32 -i eth0 -p 112 -m comment --comment vrrpfw -j ACCEPT"


def test_table_keys_reads_each_section_once():
    text = (f"*raw\n{RAW_OURS}\nCOMMIT\n*filter\n{OURS_IN}\n-A INPUT -j DROP\n"
            f"{OURS_IN.replace('-A INPUT', '-A helper')}\n{OURS_OUT}\nCOMMIT\n*nat\n{OURS_IN}\nCOMMIT\n")
    doc = ips.parse(text)
    assert ips.table_keys(doc) == [(1, "raw", "PREROUTING", IN.key), (4, "filter", "INPUT", IN.key),
                                   (7, "filter", "OUTPUT", OUT.key)]
    assert ips.table_keys(doc, True) == [(1, "raw", "PREROUTING", IN.key), (4, "filter", "INPUT", IN.key),
                                         (6, "filter", "helper", IN.key), (7, "filter", "OUTPUT", OUT.key)]
    assert ips.filter_keys(doc) == [(4, IN.key), (7, OUT.key)]
    assert ips.filter_keys(doc, anywhere=True) == [(4, IN.key), (6, IN.key), (7, OUT.key)]
    assert ips.placed(doc) == {("raw", "PREROUTING", IN.key), ("filter", "INPUT", IN.key),
                               ("filter", "helper", IN.key), ("filter", "OUTPUT", OUT.key)}


def test_a_rule_first_in_its_section_is_found():
    doc = ips.parse(f"*filter\n{OURS_IN}\nCOMMIT\n")
    assert ips.filter_keys(doc) == [(1, IN.key)]
    assert ips.is_persisted(doc, IN) and not ips.is_persisted(doc, OUT)


def test_is_persisted_needs_every_placement():
    doc = ips.parse(f"*raw\n{RAW_OURS}\nCOMMIT\n*filter\nCOMMIT\n")
    assert not ips.is_persisted(doc, IN)
    assert ips.is_persisted(doc, IN, {IN.key: {("raw", "PREROUTING")}})
    assert not ips.is_persisted(doc, IN, {IN.key: {("raw", "PREROUTING"), ("filter", "INPUT")}})
    assert ips.placements_for(IN, None) == {("filter", "INPUT")}
    assert ips.placements_for(OUT, {IN.key: {("raw", "PREROUTING")}}) == {("filter", "OUTPUT")}
    assert ips.placements_for(IN, {IN.key: set()}) == {("filter", "INPUT")}


# -- add_rules: where the line goes -------------------------------------------------------------


def added(text, rules, where=None):
    new, unplaced = ips.add_rules(ips.parse(text), rules, where)
    return new, unplaced


def test_the_line_goes_before_the_first_rule_right_after_the_table_line():
    new, _ = added("*filter\n-A INPUT -j DROP\nCOMMIT\n", [IN])
    assert new == f"*filter\n{OURS_IN}\n-A INPUT -j DROP\nCOMMIT\n"


def test_a_rule_of_two_words_counts_as_the_first_rule():
    new, _ = added("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT\nCOMMIT\n", [IN])
    assert new == f"*filter\n:INPUT ACCEPT [0:0]\n{OURS_IN}\n-A INPUT\nCOMMIT\n"


def test_a_chain_filled_with_insert_cannot_hold_our_line_first():
    """A restore applies `-I INPUT 1 ... DROP` after vrrpfw's line, above it:
    the placement is refused (reported unplaced), never claimed persisted."""
    text = "*filter\n-I INPUT -s 192.0.2.1/32 -j DROP\nCOMMIT\n"
    new, unplaced = ips.add_rules(ips.parse(text), [IN])
    assert new == text and unplaced == [("filter", "INPUT")]
    shadowed = f"*filter\n{OURS_IN}\n-I INPUT -j DROP\nCOMMIT\n"
    assert not ips.is_persisted(ips.parse(shadowed), IN)


def test_our_line_below_a_drop_is_not_persisted_and_open_moves_it_up():
    text = f"*filter\n-A INPUT -i lo -j ACCEPT\n--append INPUT -j DROP\n{OURS_IN}\nCOMMIT\n"
    doc = ips.parse(text)
    assert not ips.is_persisted(doc, IN)
    new, unplaced = ips.add_rules(doc, [IN])
    assert unplaced == []
    assert new == f"*filter\n{OURS_IN}\n-A INPUT -i lo -j ACCEPT\n--append INPUT -j DROP\nCOMMIT\n"
    assert ips.is_persisted(ips.parse(new), IN)
    again, _ = ips.add_rules(ips.parse(new), [IN])
    assert again == new


def test_long_option_append_lines_count_as_the_chain_s_rules():
    text = "*filter\n--append INPUT -j DROP\nCOMMIT\n"
    new, _ = added(text, [IN])
    assert new == f"*filter\n{OURS_IN}\n--append INPUT -j DROP\nCOMMIT\n"
    assert ips.is_persisted(ips.parse(new), IN)


def test_several_interfaces_lead_the_chain_together():
    other = VrrpRule(Direction.IN, "eth1", "224.0.0.18")
    new, _ = added("*filter\n-A INPUT -j DROP\nCOMMIT\n", [IN, other])
    doc = ips.parse(new)
    assert ips.is_persisted(doc, IN) and ips.is_persisted(doc, other)


def test_a_comment_naming_the_chain_is_not_a_rule():
    text = "*filter\n# INPUT rules below\n-A OUTPUT -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n"
    new, _ = added(text, [IN, OUT])
    assert new == ("*filter\n# INPUT rules below\n" + OURS_OUT + "\n-A OUTPUT -j ACCEPT\n"
                   + OURS_IN + "\n-A INPUT -j DROP\nCOMMIT\n")


def test_without_a_rule_in_the_chain_the_line_goes_before_commit():
    new, _ = added("*filter\n:INPUT DROP [0:0]\n-A FORWARD -j DROP\nCOMMIT\n", [IN])
    assert new == f"*filter\n:INPUT DROP [0:0]\n-A FORWARD -j DROP\n{OURS_IN}\nCOMMIT\n"


def test_the_first_rule_is_looked_for_in_the_section_only():
    text = "*mangle\n-A INPUT -j MARK --set-mark 1\nCOMMIT\n*filter\n:INPUT DROP [0:0]\nCOMMIT\n"
    new, _ = added(text, [IN])
    assert new == text.replace(":INPUT DROP [0:0]\n", f":INPUT DROP [0:0]\n{OURS_IN}\n")


def test_a_rule_is_added_once_per_chain():
    new, unplaced = added("*filter\nCOMMIT\n", [IN, IN, OUT])
    assert new == f"*filter\n{OURS_IN}\n{OURS_OUT}\nCOMMIT\n" and unplaced == []


def test_tables_and_chains_vrrpfw_cannot_place_are_reported_once():
    text = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\nCOMMIT\n"
    where = {IN.key: {("nat", "PREROUTING"), ("filter", "NOSUCH"), ("raw", "PREROUTING")},
             OUT.key: {("raw", "PREROUTING")}}
    new, unplaced = added(text, [IN, OUT], where)
    assert new == text
    assert unplaced == [("filter", "NOSUCH"), ("nat", "PREROUTING"), ("raw", "PREROUTING")]


def test_remove_rules_by_key_and_anywhere():
    moved = OURS_IN.replace("-A INPUT", "-A helper")
    text = f"*filter\n{OURS_IN}\n{moved}\n{OURS_OUT}\n-A INPUT -j DROP\nCOMMIT\n"
    doc = ips.parse(text)
    assert ips.remove_rules(doc, None) == f"*filter\n{moved}\n-A INPUT -j DROP\nCOMMIT\n"
    assert ips.remove_rules(doc, None, anywhere=True) == "*filter\n-A INPUT -j DROP\nCOMMIT\n"
    assert ips.remove_rules(doc, [OUT.key]) == f"*filter\n{OURS_IN}\n{moved}\n-A INPUT -j DROP\nCOMMIT\n"
    assert ips.remove_rules(doc, []) == text
