"""nftables.conf editing, pinned byte for byte: vrrpfw's marked block, the
newline it may add (and take away again), what it reads back, and which
base chains a file (and its includes) defines.  Written against the
survivors of a mutation run (tests/mutation.sh saved)."""


import pytest

from vrrpfw.errors import PersistFileError
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.persist import nft_conf as nc

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth1", "224.0.0.19")
C_IN = ("inet", "filter", "input")
C_OUT = ("ip", "fw", "out")
TAIL = 'ip protocol vrrp counter accept comment "vrrpfw"'
LINE_IN = 'insert rule inet filter input iifname "eth0" ip daddr 224.0.0.18 ' + TAIL
LINE_OUT = 'insert rule ip fw out oifname "eth1" ip daddr 224.0.0.19 ' + TAIL
BASE = "flush ruleset\ntable inet filter {\n  chain input { type filter hook input priority 0; }\n}\n"


def block(*lines, no_eol=False):
    begin = nc.BEGIN + (nc.NO_EOL if no_eol else "")
    return begin + "\n" + "".join(line + "\n" for line in lines) + nc.END + "\n"


def test_insert_lines_are_exact():
    assert LINE_IN == ('insert rule inet filter input iifname "eth0" ip daddr 224.0.0.18 ip protocol vrrp '
                       'counter accept comment "vrrpfw"')
    assert nc.insert_line(IN, C_IN) == LINE_IN
    assert nc.insert_line(OUT, C_OUT) == LINE_OUT


def test_with_lines_appends_one_block():
    new = nc.with_lines(BASE, [(IN, C_IN), (OUT, C_OUT)])
    assert new == BASE + block(LINE_IN, LINE_OUT)
    assert nc.with_lines(new, [(IN, C_IN), (OUT, C_OUT)]) == new
    assert nc.with_lines(new, []) == new


def test_with_lines_on_an_empty_file():
    assert nc.with_lines("", [(IN, C_IN)]) == block(LINE_IN)
    assert nc.without_keys(block(LINE_IN), None) == ""


def test_a_file_without_a_final_newline_gets_it_back_on_close():
    text = BASE + "# no newline at the end"
    new = nc.with_lines(text, [(IN, C_IN)])
    assert new == text + "\n" + block(LINE_IN, no_eol=True)
    assert nc.split(new) == (text, [LINE_IN], "")
    assert nc.without_keys(new, None) == text
    assert nc.without_keys(new, [IN.key]) == text
    assert nc.with_lines(new, [(OUT, C_OUT)]) == text + "\n" + block(LINE_IN, LINE_OUT, no_eol=True)


def test_the_added_newline_is_taken_away_only_where_there_is_one():
    text = BASE + block(LINE_IN, no_eol=True)
    assert nc.split(text)[0] == BASE[:-1]
    assert nc.split(block(LINE_IN, no_eol=True)) == ("", [LINE_IN], "")


def test_split_keeps_text_after_the_block():
    after = "# after 1\n# after 2\n"
    text = BASE + block(LINE_IN, "", "  # admin note X  ") + after
    before, body, rest = nc.split(text)
    assert (before, body, rest) == (BASE, [LINE_IN, "", "  # admin note X  "], after)


def test_split_reads_crlf_markers():
    text = BASE + nc.BEGIN + "\r\n" + LINE_IN + "\r\n" + nc.END + "\r\n"
    assert nc.split(text) == (BASE, [LINE_IN], "")
    assert nc.keys(text) == {IN.key}


def test_markers_must_be_exact():
    for begin in (nc.BEGIN + "  ", nc.BEGIN + "X", " " + nc.BEGIN):
        text = BASE + begin + "\n" + LINE_IN + "\n" + nc.END + "\n"
        assert nc.split(text) == (text, [], ""), begin
        assert nc.keys(text) == set()
    for end in (nc.END + "  ", nc.END + "X"):
        text = BASE + nc.BEGIN + "\n" + LINE_IN + "\n" + end + "\n"
        assert nc.split(text) == (text, [], ""), end


def test_the_end_marker_is_looked_for_after_the_begin_marker():
    text = nc.END + "\n" + nc.BEGIN + "\n" + LINE_IN + "\n" + nc.END + "\n# tail\n"
    assert nc.split(text) == (nc.END + "\n", [LINE_IN], "# tail\n")
    empty = BASE + nc.BEGIN + "\n" + nc.END + "\n"
    assert nc.split(empty) == (BASE, [], "")
    assert nc.split(BASE + nc.BEGIN + "\n") == (BASE + nc.BEGIN + "\n", [], "")


def test_entries_and_keys():
    text = BASE + block(LINE_IN, "  " + LINE_OUT + "  ", "# foreign", LINE_IN.replace('"vrrpfw"', '"x"'))
    assert nc.entries(text) == [(IN.key, C_IN), (OUT.key, C_OUT)]
    assert nc.keys(text) == {IN.key, OUT.key}
    assert nc.entries(BASE + LINE_IN + "\n") == []  # outside the block: the admin's line


def test_without_keys_removes_only_the_named_rules_and_keeps_foreign_lines():
    other = LINE_IN.replace('"eth0"', '"eth2"')
    text = BASE + block(LINE_IN, "# admin's X  ", "", other, LINE_OUT) + "# tail\n"
    assert nc.without_keys(text, [IN.key]) == BASE + block("# admin's X  ", other, LINE_OUT) + "# tail\n"
    assert nc.without_keys(text, [OUT.key]) == BASE + block(LINE_IN, "# admin's X  ", other) + "# tail\n"
    assert nc.without_keys(text, None) == BASE + block("# admin's X  ") + "# tail\n"
    assert nc.without_keys(text, []) == BASE + block(LINE_IN, "# admin's X  ", other, LINE_OUT) + "# tail\n"
    only = BASE + block(LINE_IN, other) + "# tail\n"
    assert nc.without_keys(only, None) == BASE + "# tail\n"


def test_foreign_lines_in_the_block_keep_their_last_character():
    text = BASE + block("# keep X", LINE_IN)
    assert nc.split(text)[1] == ["# keep X", LINE_IN]
    assert nc.without_keys(text, None) == BASE + block("# keep X")


def test_with_lines_drops_blank_lines_of_the_block():
    text = BASE + block(LINE_IN, "", "   ")
    assert nc.with_lines(text, [(OUT, C_OUT)]) == BASE + block(LINE_IN, LINE_OUT)


# -- defined_chains -------------------------------------------------------------------------------


def test_defined_chains_in_any_layout():
    text = """
table inet filter {
    set s { type ipv4_addr; elements = { 10.0.0.1 } }
    chain input {
        type filter hook input priority 0; policy drop;
    }
    chain forward { type filter hook forward priority 0; }
    chain helper { }
}
table ip fw { chain out { type filter hook output priority 0; } }
table t2 { chain in2 {
  type filter hook input priority -10 } }
table netdev ingress { chain ing { type filter hook ingress device "eth0" priority 0; } }
"""
    assert nc.defined_chains(text) == [
        (("inet", "filter", "input"), "input"),
        (("ip", "fw", "out"), "output"),
        (("ip", "t2", "in2"), "input"),
        (("netdev", "ingress", "ing"), "ingress"),  # every hook an advert crosses, not forward
    ]


def test_flat_syntax_chains_count():
    """`add chain` lines load with nft -f like blocks do (a review found
    vrrpfw saying such chains were "not defined")."""
    text = ("add table inet filter\n"
            "add chain inet filter input { type filter hook input priority 0; policy drop; }\n"
            "create chain ip raw pre { type filter hook prerouting priority -300; }\n"
            "add chain inet filter helper\n"
            "add chain fw out { type filter hook output priority 0; }\n")
    assert nc.defined_chains(text) == [
        (("inet", "filter", "input"), "input"), (("ip", "raw", "pre"), "prerouting"),
        (("ip", "fw", "out"), "output")]


def test_an_orphan_begin_marker_stays_the_admin_s_and_close_gives_the_bytes_back():
    rule = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
    text = "table inet filter { chain input { type filter hook input priority 0; } }\n" + nc.BEGIN + "\n"
    opened = nc.with_lines(text, [(rule, ("inet", "filter", "input"))])
    assert nc.keys(opened) == {rule.key}
    assert nc.without_keys(opened, None) == text


def test_hooks_outside_a_chain_or_table_count_for_nothing():
    assert nc.defined_chains("table ip t { type filter hook input priority 0; }") == []
    assert nc.defined_chains("chain c { type filter hook input priority 0; }") == []
    assert nc.defined_chains("type filter hook output priority 0;") == []
    assert nc.defined_chains("}}} table ip t { chain c { type filter hook output; } }") == [
        (("ip", "t", "c"), "output")]


def test_braces_close_chains_and_tables():
    text = ("table ip a { chain c1 { type filter hook input priority 0; } }\n"
            "table ip b { chain c2 { } chain c3 { type filter hook output priority 0; } }\n"
            "table ip d { map m { type ipv4_addr : verdict; } chain c4 { type filter hook input; } }\n")
    assert nc.defined_chains(text) == [
        (("ip", "a", "c1"), "input"), (("ip", "b", "c3"), "output"), (("ip", "d", "c4"), "input")]


def test_comments_hide_definitions_but_quoted_hashes_do_not():
    text = ('table ip t { # table ip hidden {\n'
            '  chain c { comment "a # b"; type filter hook input priority 0; }\n'
            '  # chain x { type filter hook output priority 0; }\n'
            '}\n')
    assert nc.defined_chains(text) == [(("ip", "t", "c"), "input")]
    assert nc._strip_comments('a "#" b # c\n# d\ne') == 'a "#" b \n\ne'
    assert nc._strip_comments('x "y" # z "w"') == 'x "y" '
    assert nc._strip_comments("") == ""


# -- defined_chains_in: includes ----------------------------------------------------------------


def chain_def(table, chain, hook="input"):
    return f"table ip {table} {{ chain {chain} {{ type filter hook {hook} priority 0; }} }}\n"


def etc(root):
    """The fake root's /etc: nft's include path (DEFAULT_INCLUDE_PATH)."""
    d = root / "etc"
    d.mkdir(exist_ok=True)
    return d


def test_includes_are_followed_in_the_include_path_absolute_and_by_glob(tmp_path):
    (etc(tmp_path) / "conf.d").mkdir()
    (tmp_path / "etc" / "conf.d" / "b.nft").write_text(chain_def("b", "cb"))
    (tmp_path / "etc" / "conf.d" / "a.nft").write_text(chain_def("a", "ca", "output"))
    (tmp_path / "abs.nft").write_bytes(b"# caf\xe9\n" + chain_def("abs", "cabs").encode())
    main = tmp_path / "etc" / "nftables.conf"
    text = (chain_def("m", "cm") + 'include "conf.d/*.nft"\n' + 'include "/abs.nft"\n'
            + '# include "conf.d/b.nft"\n' + 'include "missing/*.nft"\n')
    main.write_text(text)
    assert nc.defined_chains_in(str(main), text, root=str(tmp_path)) == [
        (("ip", "m", "cm"), "input"),
        (("ip", "a", "ca"), "output"),
        (("ip", "b", "cb"), "input"),
        (("ip", "abs", "cabs"), "input"),
    ]


def test_a_bare_name_is_looked_up_in_etc_not_beside_the_including_file(tmp_path, monkeypatch):
    """nft: ``include "x.nft"`` from /etc/nftables.d/main.nft is /etc/x.nft
    (before: vrrpfw read /etc/nftables.d/x.nft, which nft never loads)."""
    sub = etc(tmp_path) / "nftables.d"
    sub.mkdir()
    (sub / "inc.nft").write_text(chain_def("beside", "c"))
    (tmp_path / "etc" / "inc.nft").write_text(chain_def("etc", "c"))
    monkeypatch.chdir(sub)  # nor in vrrpfw's working directory
    text = 'include "inc.nft"\n'
    assert nc.defined_chains_in(str(sub / "main.nft"), text, root=str(tmp_path)) == [
        (("ip", "etc", "c"), "input")]


@pytest.mark.parametrize("pattern", ["./inc.nft", "../inc.nft", "./sub/../inc.nft"])
def test_a_dot_name_is_relative_to_slash_where_nftables_service_runs_nft(tmp_path, monkeypatch, pattern):
    """nft: a name starting with ./ or ../ is relative to its working
    directory, / for nftables.service, never the including file's."""
    (etc(tmp_path) / "inc.nft").write_text(chain_def("beside", "c"))
    (tmp_path / "inc.nft").write_text(chain_def("slash", "c"))
    monkeypatch.chdir(tmp_path / "etc")
    text = f'include "{pattern}"\n'
    assert nc.defined_chains_in(str(tmp_path / "etc" / "nftables.conf"), text, root=str(tmp_path)) == [
        (("ip", "slash", "c"), "input")]


def test_the_include_pattern_is_nft_s_path():
    assert nc.include_pattern("x.nft") == "/etc/x.nft"
    assert nc.include_pattern("nftables.d/*.nft") == "/etc/nftables.d/*.nft"
    assert nc.include_pattern("./x.nft") == "/x.nft"
    assert nc.include_pattern("../../x.nft") == "/x.nft"
    assert nc.include_pattern("/usr/share/x.nft") == "/usr/share/x.nft"
    assert nc.include_pattern("//srv/x.nft") == "/srv/x.nft"
    assert nc.include_pattern(".x.nft") == "/etc/.x.nft"  # not "./": the include path
    assert nc.include_pattern("x.nft", "/tmp/root") == "/tmp/root/etc/x.nft"
    assert nc.include_pattern("../x.nft", "/tmp/root") == "/tmp/root/x.nft"  # never above the root


@pytest.mark.parametrize("pattern, where", [
    ("gone.nft", "in nft's include path /etc"),
    ("./gone.nft", "from /, where nftables.service runs nft"),
    ("/gone.nft", "no such file;"),
])
def test_an_include_naming_no_file_is_refused_as_nft_refuses_the_file(tmp_path, pattern, where):
    """nft -f: "File not found" for a name without wildcards (before:
    vrrpfw skipped it and took the file for one that loads)."""
    (etc(tmp_path) / "gone.nft").parent.mkdir(exist_ok=True)
    (tmp_path / "beside").mkdir()
    (tmp_path / "beside" / "gone.nft").write_text(chain_def("b", "c"))
    with pytest.raises(PersistFileError, match="nft -f would not load it") as e:
        nc.defined_chains_in(str(tmp_path / "beside" / "main.nft"), f'include "{pattern}"\n',
                             root=str(tmp_path))
    assert where in str(e.value)


def test_a_named_directory_and_an_empty_glob_are_no_error(tmp_path):
    (etc(tmp_path) / "nftables.d").mkdir()
    text = 'include "nftables.d"\ninclude "nftables.d/*.nft"\ninclude "/nowhere/*"\n'
    assert nc.defined_chains_in(str(tmp_path / "etc" / "nftables.conf"), text, root=str(tmp_path)) == []


def test_an_unreadable_include_is_skipped_and_the_rest_read(tmp_path):
    inc = etc(tmp_path) / "inc"
    inc.mkdir()
    (inc / "a-dir").mkdir()  # matches the glob, cannot be read as a file
    (inc / "b.nft").write_text(chain_def("b", "cb"))
    text = 'include "inc/*"\n'
    assert nc.defined_chains_in(str(tmp_path / "main.nft"), text, root=str(tmp_path)) == [
        (("ip", "b", "cb"), "input")]


def test_includes_are_followed_nine_levels_deep(tmp_path):
    for i in range(12):
        (etc(tmp_path) / f"f{i}.nft").write_text(chain_def(f"t{i}", "c") + f'include "f{i + 1}.nft"\n')
    text = (tmp_path / "etc" / "f0.nft").read_text()
    found = nc.defined_chains_in(str(tmp_path / "etc" / "f0.nft"), text, root=str(tmp_path))
    assert [cid[1] for cid, _ in found] == [f"t{i}" for i in range(10)]


def test_an_include_loop_ends(tmp_path):
    (etc(tmp_path) / "a.nft").write_text(chain_def("a", "c") + 'include "a.nft"\n')
    found = nc.defined_chains_in(str(tmp_path / "etc" / "a.nft"), (tmp_path / "etc" / "a.nft").read_text(),
                                 root=str(tmp_path))
    assert len(found) == 10


def test_an_include_inside_a_table_block_is_read_inside_that_table(tmp_path):
    """nft reads an included file where its include line is: inside
    ``table inet filter { ... }`` the file's ``chain input { ... }`` is
    inet filter's (measured: nft -f loads it so).  Before, vrrpfw read the
    file on its own, saw no chain, and open refused to persist ("chains
    inet filter input are not defined")."""
    d = etc(tmp_path) / "nft.d"
    d.mkdir()
    (d / "chains.nft").write_text("chain input {\n\ttype filter hook input priority 0; policy drop;\n}\n"
                                  "chain output { type filter hook output priority 0; }\n")
    (d / "hook.nft").write_text("type filter hook prerouting priority -300;\n")
    (d / "nested.nft").write_text('include "nft.d/chains.nft"\n')
    main = tmp_path / "etc" / "nftables.conf"
    text = ('table inet filter {\n\tinclude "nft.d/chains.nft"\n}\n'
            'table ip t { include "nft.d/nested.nft"; }\n'
            'table ip6 raw {\n\tchain pre {\n\t\tinclude "nft.d/hook.nft"\n\t}\n}\n'
            'include "nft.d/hook.nft"\n')  # at the top: a hook outside any chain counts for nothing
    main.write_text(text)
    assert nc.defined_chains_in(str(main), text, root=str(tmp_path)) == [
        (("inet", "filter", "input"), "input"),
        (("inet", "filter", "output"), "output"),
        (("ip", "t", "input"), "input"),
        (("ip", "t", "output"), "output"),
        (("ip6", "raw", "pre"), "prerouting"),
    ]
