"""keepalived_conf: keepalived's configuration as vrrpfw reads it.

Each semantic here was checked against keepalived 2.2.7's parser
(``keepalived -t -f``); tests/integration/keepalived/test_keepalived_conf_real.py holds
the valid ones against the real keepalived."""

from __future__ import annotations

import os

import pytest

from vrrpfw.errors import InputError
from vrrpfw.keepalived.conf import KaConfig, KaInstance, parse, parse_text
from vrrpfw.keepalived.reader import Where

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def inst(body: str, before: str = "") -> KaInstance:
    cfg = parse_text(f"{before}\nvrrp_instance VI {{\n{body}\n}}\n", "/etc/k.conf")
    assert len(cfg.instances) == 1
    return cfg.instances[0]


def bad(text: str, path: str = "/etc/k.conf") -> str:
    with pytest.raises(InputError) as e:
        parse_text(text, path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


BASIC = "interface eth1\nvirtual_router_id 51\nvirtual_ipaddress {\n192.0.2.10/24\n}"


def test_where_str() -> None:
    assert str(Where("/etc/k.conf", 7)) == "/etc/k.conf:7"


def test_basic_defaults() -> None:
    i = inst(BASIC)
    assert (i.name, i.interface, i.base_interface, i.vrid) == ("VI", "eth1", "eth1", 51)
    assert (i.priority, i.version, i.family, i.group) == (100, 2, "ipv4", "224.0.0.18")
    assert (i.unicast_src, i.peers, i.auth_type) == (None, (), None)
    assert i.virtual_addresses == ("192.0.2.10",)
    assert i.where == Where("/etc/k.conf", 2)
    assert any(d.startswith("family ipv4 (virtual_ipaddress 192.0.2.10") for d in i.derivation)


def test_state_master_without_priority_is_owner() -> None:
    assert inst(BASIC + "\nstate MASTER").priority == 255
    assert inst(BASIC + "\nstate MASTER\npriority 150").priority == 150
    assert inst(BASIC + "\nstate BACKUP").priority == 100


# ------------------------------------------------------------------ lexing

def test_comments_hash_and_bang_anywhere() -> None:
    i = inst("interface eth1 # the link\nvirtual_router_id 51! id\n! whole line\n# another\n"
             "virtual_ipaddress { 192.0.2.10 } # trailing")
    assert (i.interface, i.vrid, i.virtual_addresses) == ("eth1", 51, ("192.0.2.10",))


def test_comment_char_inside_quotes_is_kept() -> None:
    i = inst(BASIC + '\nauthentication {\nauth_type PASS\nauth_pass "a#b!c"\n}')
    assert i.auth_type == "PASS"


def test_escaped_comment_char_is_literal() -> None:
    # "\#" is a '#'; here it makes the interface name invalid, which proves it was kept.
    msg = bad("vrrp_instance V {\ninterface eth\\#1\nvirtual_router_id 1\n}")
    assert msg.startswith("/etc/k.conf:2: ") and "'#'" in msg


def test_braces_on_next_line_and_inline() -> None:
    text = """
vrrp_instance VI
{
  interface eth1
  virtual_router_id 9
  virtual_ipaddress
  {
    192.0.2.1
  }
}
vrrp_instance VJ { interface eth2
 virtual_router_id 10
 virtual_ipaddress { 192.0.2.2 192.0.2.9 }
 unicast_peer { 192.0.2.3 } }
"""
    cfg = parse_text(text)
    a, b = cfg.instances
    assert (a.interface, a.vrid, a.virtual_addresses) == ("eth1", 9, ("192.0.2.1",))
    # one line of a value block: only its first word is the address
    assert (b.interface, b.vrid, b.virtual_addresses, b.peers) == ("eth2", 10, ("192.0.2.2",), ("192.0.2.3",))


def test_unknown_blocks_are_skipped_with_nested_blocks() -> None:
    text = """
vrrp_script chk { script "/bin/true"
  interval 2 }
virtual_server 192.0.2.1 80 {
  real_server 192.0.2.5 80 {
    TCP_CHECK { connect_timeout 3 }
  }
  interface ethX
}
vrrp_sync_group G { group { VI } }
vrrp_instance VI {
  interface eth1
  track_script { chk }
  track_interface { eth9 weight 2 }
  virtual_router_id 51
  virtual_ipaddress { 192.0.2.10 }
}
"""
    (i,) = parse_text(text).instances
    assert (i.interface, i.vrid) == ("eth1", 51)


def test_instance_before_global_defs() -> None:
    text = "vrrp_instance VI {\n" + BASIC + "\n}\nglobal_defs {\nvrrp_mcast_group4 224.0.0.19\n}\n"
    assert parse_text(text).instances[0].group == "224.0.0.19"


def test_definitions_expand() -> None:
    text = "$IF=eth3\n$ID=77\nvrrp_instance VI {\ninterface $IF\nvirtual_router_id ${ID}\n" \
           "virtual_ipaddress { 192.0.2.1 }\n}\n"
    i = parse_text(text).instances[0]
    assert (i.interface, i.vrid) == ("eth3", 77)


def test_multiline_definition_and_seq_refused() -> None:
    assert bad("$X=a \\\nb\n").startswith("/etc/k.conf:1: ")
    assert "~SEQ" in bad("~SEQ(i, 1, 3) x\n")


def test_config_id_lines_are_noted_and_skipped() -> None:
    cfg = parse_text("@node1 global_defs { vrrp_mcast_group4 224.0.0.20 }\nvrrp_instance VI {\n"
                     + BASIC + "\n}\n", "/etc/k.conf")
    assert cfg.instances[0].group == "224.0.0.18"
    assert any(n.startswith("/etc/k.conf:1: ") and "config id" in n for n in cfg.notes)


# --------------------------------------------------------------- braces

@pytest.mark.parametrize("text,line", [
    ("vrrp_instance V {\ninterface eth1\n", 1),
    ("vrrp_instance V {\ninterface eth1\nvirtual_router_id 1\n}\n}\n", 5),
    ("{\nvrrp_instance V\n", 1),
    ("global_defs { } {\n", 1),
])
def test_unbalanced_braces(text: str, line: int) -> None:
    msg = bad(text)
    assert msg.startswith(f"/etc/k.conf:{line}: unbalanced braces")


def test_unterminated_quote() -> None:
    assert bad('vrrp_instance V {\ninterface "eth1\n}\n').startswith("/etc/k.conf:2: unterminated quote")


# --------------------------------------------------------- instance errors

def test_no_instance_at_all() -> None:
    assert "no usable vrrp_instance" in bad("global_defs {\n router_id x\n}\n")


def test_missing_interface_even_with_default_interface() -> None:
    msg = bad("global_defs { default_interface eth1 }\nvrrp_instance VI {\nvirtual_router_id 5\n"
              "virtual_ipaddress { 192.0.2.1 }\n}\n")
    assert msg.startswith("/etc/k.conf:2: vrrp_instance VI has no interface")


def test_missing_vrid() -> None:
    assert bad("vrrp_instance VI {\ninterface eth1\n}\n").startswith("/etc/k.conf:1: vrrp_instance VI has no "
                                                                       "virtual_router_id")


@pytest.mark.parametrize("vrid", ["0", "256", "-1", "abc", "5x"])
def test_vrid_out_of_range(vrid: str) -> None:
    msg = bad(f"vrrp_instance VI {{\ninterface eth1\nvirtual_router_id {vrid}\n}}\n")
    assert msg.startswith("/etc/k.conf:3: virtual_router_id") and "1..255" in msg


def test_bad_priority() -> None:
    assert bad(f"vrrp_instance VI {{\n{BASIC}\npriority 300\n}}\n").startswith("/etc/k.conf:7: priority")


@pytest.mark.parametrize("name", ["eth+", "eth*", "-eth", "a" * 16, "é0"])
def test_interface_refused_by_vrrpfw(name: str) -> None:
    msg = bad(f"vrrp_instance VI {{\ninterface {name}\nvirtual_router_id 1\n}}\n")
    assert msg.startswith("/etc/k.conf:2: interface name")


def test_duplicate_instance_name() -> None:
    one = "vrrp_instance VI {\n" + BASIC + "\n}\n"
    assert "already defined at /etc/k.conf:1" in bad(one + one)


def test_vip_that_is_not_an_address() -> None:
    assert bad("vrrp_instance VI {\ninterface eth1\nvirtual_router_id 1\nvirtual_ipaddress {\nfoo\n}\n}\n") \
        .startswith("/etc/k.conf:5: virtual_ipaddress 'foo' is not an IP address")


# ---------------------------------------------------------------- family

def test_ipv6_instance_defaults() -> None:
    i = inst("interface eth1\nvirtual_router_id 51\nvirtual_ipaddress {\nfe80::1\n2001:db8::10/64\n}")
    assert (i.family, i.version, i.group) == ("ipv6", 3, "ff02::12")
    assert i.virtual_addresses == ("fe80::1", "2001:db8::10")


def test_later_vip_of_other_family_is_ignored_with_note() -> None:
    cfg = parse_text("vrrp_instance VI {\ninterface eth1\nvirtual_router_id 1\nvirtual_ipaddress {\n"
                     "192.0.2.1\n2001:db8::1\n}\n}\n", "/etc/k.conf")
    i = cfg.instances[0]
    assert (i.family, i.virtual_addresses) == ("ipv4", ("192.0.2.1",))
    assert any(n.startswith("/etc/k.conf:6: 2001:db8::1 ignored") for n in cfg.notes)


def test_excluded_addresses_neither_set_nor_check_family() -> None:
    i = inst("interface eth1\nvirtual_router_id 1\nvirtual_ipaddress_excluded {\n192.0.2.1\n2001:db8::5\n}\n"
             "virtual_ipaddress {\n2001:db8::1\n}")
    assert i.family == "ipv6"
    assert i.virtual_addresses == ("192.0.2.1", "2001:db8::5", "2001:db8::1")


def test_excluded_only_is_ipv4_v2() -> None:
    i = inst("interface eth1\nvirtual_router_id 1\nvirtual_ipaddress_excluded {\n2001:db8::5\n}")
    assert (i.family, i.version, i.virtual_addresses) == ("ipv4", 2, ("2001:db8::5",))


def test_no_vip_v3_instance_is_dropped_like_keepalived() -> None:
    text = ("vrrp_instance A {\ninterface eth1\nvirtual_router_id 1\nversion 3\n}\n"
            "vrrp_instance B {\n" + BASIC + "\n}\n")
    cfg = parse_text(text, "/etc/k.conf")
    assert [i.name for i in cfg.instances] == ["B"]
    assert any(n.startswith("/etc/k.conf:1: vrrp_instance A ignored") for n in cfg.notes)


def test_native_ipv6() -> None:
    i = inst("interface eth1\nvirtual_router_id 1\nnative_ipv6\nvirtual_ipaddress_excluded {\n192.0.2.1\n}\n"
             "virtual_ipaddress {\n2001:db8::1\n}")
    assert (i.family, i.version) == ("ipv6", 3)
    msg = bad("vrrp_instance VI {\ninterface eth1\nvirtual_router_id 1\nvirtual_ipaddress { 192.0.2.1 }\n"
              "native_ipv6\n}\n")
    assert msg.startswith("/etc/k.conf:5: native_ipv6 contradicts")


def test_first_peer_decides_family() -> None:
    cfg = parse_text("vrrp_instance VI {\ninterface eth1\nvirtual_router_id 1\nunicast_peer { 192.0.2.2 }\n"
                     "virtual_ipaddress { 2001:db8::1 192.0.2.1 }\n}\n")
    i = cfg.instances[0]
    assert (i.family, i.virtual_addresses, i.group) == ("ipv4", (), None)


# ---------------------------------------------------------------- version

def test_version_sources() -> None:
    assert inst(BASIC, "global_defs {\nvrrp_version 3\n}").version == 3
    assert inst(BASIC + "\nversion 3", "global_defs {\nvrrp_version 2\n}").version == 3
    d = inst(BASIC, "global_defs {\nvrrp_version 3\n}").derivation
    assert any("global_defs vrrp_version at /etc/k.conf:2" in x for x in d)


def test_vrrp_version_inside_instance_is_not_keepalived_keyword() -> None:
    cfg = parse_text("vrrp_instance VI {\n" + BASIC + "\nvrrp_version 3\n}\n", "/etc/k.conf")
    assert cfg.instances[0].version == 2
    assert any("the instance keyword is 'version'" in n for n in cfg.notes)


def test_version2_before_ipv6_vips_is_kept_after_is_ignored() -> None:
    v6 = "virtual_ipaddress {\n2001:db8::1\n}"
    assert inst(f"interface eth1\nvirtual_router_id 1\nversion 2\n{v6}").version == 2
    cfg = parse_text(f"vrrp_instance VI {{\ninterface eth1\nvirtual_router_id 1\n{v6}\nversion 2\n}}\n")
    assert cfg.instances[0].version == 3 and any("version 2 ignored" in n for n in cfg.notes)
    assert inst(f"interface eth1\nvirtual_router_id 1\nversion 2\n{v6}", "global_defs {\nvrrp_strict\n}") \
        .version == 3


# ---------------------------------------------------------- authentication

def test_auth_pass_v2() -> None:
    assert inst(BASIC + "\nauthentication {\nauth_type AH\nauth_pass secret\n}").auth_type == "AH"


def test_auth_ah_with_v3_refused() -> None:
    msg = bad("global_defs {\nvrrp_version 3\n}\nvrrp_instance VI {\n" + BASIC
              + "\nauthentication {\nauth_type AH\nauth_pass x\n}\n}\n")
    assert msg.startswith("/etc/k.conf:11: auth_type AH with VRRPv3") and "refuses" in msg


def test_auth_ah_with_ipv6_refused() -> None:
    msg = bad("vrrp_instance VI {\ninterface eth1\nvirtual_router_id 1\nversion 2\n"
              "virtual_ipaddress { 2001:db8::1 }\nauthentication {\nauth_type AH\nauth_pass x\n}\n}\n")
    assert msg.startswith("/etc/k.conf:7: auth_type AH with IPv6")


def test_auth_pass_with_v3_dropped_with_note() -> None:
    cfg = parse_text("vrrp_instance VI {\n" + BASIC + "\nversion 3\nauthentication {\nauth_type PASS\n"
                     "auth_pass x\n}\n}\n")
    assert cfg.instances[0].auth_type is None
    assert any("PASS ignored" in n for n in cfg.notes)


def test_auth_without_password_and_unknown_type() -> None:
    cfg = parse_text("vrrp_instance VI {\n" + BASIC + "\nauthentication {\nauth_type PASS\n}\n}\n")
    assert cfg.instances[0].auth_type is None and any("no auth_pass" in n for n in cfg.notes)
    md5 = "vrrp_instance VI {\n" + BASIC + "\nauthentication {\nauth_type MD5\n}\n}\n"
    assert "neither PASS nor AH" in bad(md5)


# ----------------------------------------------------------------- unicast

def test_unicast_peers_and_source() -> None:
    i = inst(BASIC + "\nunicast_src_ip 192.0.2.1\nunicast_peer {\n192.0.2.2 min_ttl 2 max_ttl 5\n"
             "192.0.2.3\n192.0.2.2\n}")
    assert (i.unicast_src, i.peers, i.group) == ("192.0.2.1", ("192.0.2.2", "192.0.2.3"), None)


def test_mcast_src_ip_is_the_source() -> None:
    i = inst(BASIC + "\nmcast_src_ip 192.0.2.1")
    assert (i.unicast_src, i.group) == ("192.0.2.1", "224.0.0.18")


@pytest.mark.parametrize("peer", ["224.0.0.18", "0.0.0.0", "255.255.255.255", "bogus", "ff02::1"])
def test_bad_peer(peer: str) -> None:
    msg = bad("vrrp_instance VI {\n" + BASIC + "\nunicast_peer {\n" + peer + "\n}\n}\n")
    assert msg.startswith("/etc/k.conf:8: unicast_peer")


def test_bad_unicast_src() -> None:
    assert bad("vrrp_instance VI {\n" + BASIC + "\nunicast_src_ip 224.0.0.1\n}\n") \
        .startswith("/etc/k.conf:7: unicast_src_ip '224.0.0.1' is not a unicast address")


def test_src_family_differs_from_peers() -> None:
    msg = bad("vrrp_instance VI {\ninterface eth1\nvirtual_router_id 1\nunicast_src_ip 2001:db8::5\n"
              "unicast_peer { 192.0.2.2 }\n}\n")
    assert msg.startswith("/etc/k.conf:4: unicast_src_ip 2001:db8::5 is IPv6 but unicast_peer 192.0.2.2")


def test_peer_family_differs_from_vips() -> None:
    msg = bad("vrrp_instance VI {\n" + BASIC + "\nunicast_peer {\n2001:db8::2\n}\n}\n")
    assert msg.startswith("/etc/k.conf:8: unicast_peer 2001:db8::2 is not ipv4")


# ------------------------------------------------------------ global_defs

def test_global_groups_and_namespace() -> None:
    g = "net_namespace blue\nglobal_defs {\nvrrp_mcast_group4 224.0.0.19\nvrrp_mcast_group6 ff02::13\n}"
    cfg = parse_text(g + "\nvrrp_instance A {\n" + BASIC + "\n}\nvrrp_instance B {\ninterface eth1\n"
                     "virtual_router_id 2\nvirtual_ipaddress { 2001:db8::1 }\n}\n")
    assert [i.group for i in cfg.instances] == ["224.0.0.19", "ff02::13"]
    assert cfg.net_namespace == "blue"


def test_net_namespace_inside_global_defs_is_ignored_as_keepalived_ignores_it() -> None:
    # keepalived 2.2.7 -t: "(Line 2) Unknown keyword 'net_namespace'"; it is a root keyword in
    # every keepalived (install_keyword_root), so keepalived runs where it was started.
    cfg = parse_text("global_defs {\nnet_namespace blue\n}\nvrrp_instance A {\n" + BASIC + "\n}\n")
    assert cfg.net_namespace is None
    want = "<text>:2: net_namespace inside global_defs is ignored"
    assert any(n.startswith(want) for n in cfg.notes), cfg.notes


def test_first_top_level_net_namespace_counts_as_in_keepalived() -> None:
    # keepalived: "Duplicate net_namespace definition bbb - ignoring", "net_namespace name missing - ignoring"
    cfg = parse_text("net_namespace\nnet_namespace aaa\nnet_namespace bbb\n"
                     "vrrp_instance A {\n" + BASIC + "\n}\n")
    assert cfg.net_namespace == "aaa"
    assert [n.split(": ", 1)[0] for n in cfg.notes] == ["<text>:1", "<text>:3"]


@pytest.mark.parametrize("line", ["vrrp_mcast_group4 192.0.2.1", "vrrp_mcast_group4 ff02::12",
                                  "vrrp_mcast_group6 224.0.0.18", "vrrp_mcast_group6 2001:db8::1",
                                  "vrrp_mcast_group4 x"])
def test_bad_groups(line: str) -> None:
    assert bad(f"global_defs {{\n{line}\n}}\n").startswith(f"/etc/k.conf:2: {line.split(maxsplit=1)[0]}")


# ------------------------------------------------------------------- vmac

def test_use_vmac_default_name() -> None:
    i = inst(BASIC + "\nuse_vmac")
    assert (i.interface, i.base_interface) == ("vrrp.51", "eth1")
    assert any("use_vmac vrrp.51" in d and "vmac_xmit_base not set" in d for d in i.derivation)


def test_use_vmac_named_and_xmit_base() -> None:
    assert inst(BASIC + "\nuse_vmac vmac1").interface == "vmac1"
    i = inst(BASIC + "\nuse_vmac vmac1\nvmac_xmit_base")
    assert (i.interface, i.base_interface) == ("eth1", "eth1")
    assert any("vmac_xmit_base" in d for d in i.derivation)


def test_use_vmac_bad_name() -> None:
    msg = bad("vrrp_instance VI {\n" + BASIC + "\nuse_vmac bad*name\n}\n")
    assert msg.startswith("/etc/k.conf:7: use_vmac")


# ---------------------------------------------------------------- files

def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


INST = ("vrrp_instance {name} {{\n interface eth1\n virtual_router_id {vrid}\n"
        " virtual_ipaddress {{ 192.0.2.{vrid} }}\n}}\n")


def test_parse_file_and_includes_relative_to_including_file(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(tmp_path)
    main = write(f"{root}/etc/keepalived.conf", "include conf.d/*.conf\ninclude /" + root.lstrip("/")
                 + "/abs.conf\n")
    write(f"{root}/etc/conf.d/b.conf", INST.format(name="B", vrid=2))
    write(f"{root}/etc/conf.d/a.conf", INST.format(name="A", vrid=1) + "include sub/c.conf\n")
    write(f"{root}/etc/conf.d/sub/c.conf", INST.format(name="C", vrid=3))
    write(f"{root}/abs.conf", "global_defs {\n vrrp_mcast_group4 224.0.0.20\n}\n")
    monkeypatch.chdir("/")
    cfg = parse(main)
    assert isinstance(cfg, KaConfig)
    assert [i.name for i in cfg.instances] == ["A", "C", "B"]
    assert cfg.files == (main, f"{root}/etc/conf.d/a.conf", f"{root}/etc/conf.d/sub/c.conf",
                         f"{root}/etc/conf.d/b.conf", f"{root}/abs.conf")
    assert all(i.group == "224.0.0.20" for i in cfg.instances)
    assert cfg.instances[1].where == Where(f"{root}/etc/conf.d/sub/c.conf", 1)


def test_include_brace_pattern(tmp_path: object) -> None:
    root = str(tmp_path)
    write(f"{root}/x.conf", INST.format(name="X", vrid=1))
    write(f"{root}/y.conf", INST.format(name="Y", vrid=2))
    main = write(f"{root}/k.conf", "include {x,y}.conf\n")
    assert [i.name for i in parse(main).instances] == ["X", "Y"]


def test_parse_text_include_relative_to_path_dir(tmp_path: object) -> None:
    root = str(tmp_path)
    write(f"{root}/i.conf", INST.format(name="I", vrid=1))
    assert parse_text("include i.conf\n", f"{root}/main.conf").instances[0].name == "I"


def test_include_glob_without_match_is_a_note(tmp_path: object) -> None:
    main = write(f"{tmp_path}/k.conf", "include none/*.conf\n" + INST.format(name="A", vrid=1))
    cfg = parse(main)
    assert any(n.startswith(f"{main}:1: include none/*.conf: no file matches") for n in cfg.notes)


def test_include_missing_plain_file_is_an_error(tmp_path: object) -> None:
    main = write(f"{tmp_path}/k.conf", "\ninclude missing.conf\n")
    with pytest.raises(InputError, match=rf"^{main}:2: include missing.conf: cannot read .*No such file"):
        parse(main)


def test_include_skips_directories_and_executables(tmp_path: object) -> None:
    root = str(tmp_path)
    os.makedirs(f"{root}/d/dir.conf")
    write(f"{root}/d/ok.conf", INST.format(name="OK", vrid=1))
    os.chmod(write(f"{root}/d/x.conf", INST.format(name="X", vrid=2)), 0o755)
    cfg = parse(write(f"{root}/k.conf", "include d/*.conf\n"))
    assert [i.name for i in cfg.instances] == ["OK"]
    assert any("is a directory" in n for n in cfg.notes) and any("is executable" in n for n in cfg.notes)


def test_include_loop_refused(tmp_path: object) -> None:
    root = str(tmp_path)
    write(f"{root}/b.conf", "include a.conf\n")
    main = write(f"{root}/a.conf", "include b.conf\n")
    with pytest.raises(InputError, match=rf"^{root}/b.conf:1: include loop"):
        parse(main)


def test_missing_main_file(tmp_path: object) -> None:
    with pytest.raises(InputError, match=r"^cannot read .*/nope.conf: No such file or directory$"):
        parse(f"{tmp_path}/nope.conf")


def test_main_is_directory(tmp_path: object) -> None:
    with pytest.raises(InputError, match=r"^cannot read .*: it is a directory, not a regular file$"):
        parse(str(tmp_path))


def test_not_utf8(tmp_path: object) -> None:
    p = f"{tmp_path}/k.conf"
    with open(p, "wb") as f:
        f.write(b"vrrp_instance \xff {\n}\n")
    with pytest.raises(InputError, match=r"^cannot read .*: not UTF-8 text$"):
        parse(p)


def test_unreadable_include(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root reads a mode-0 file, so the refusal is the kernel's answer stood in for.
    p = write(f"{tmp_path}/secret.conf", "")
    real_open = os.open

    def refusing(path, *a, **k):  # type: ignore[no-untyped-def]
        if str(path) == p:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", refusing)
    main = write(f"{tmp_path}/k.conf", "include secret.conf\n")
    with pytest.raises(InputError, match=r"^.*/k.conf:1: cannot read .*: Permission denied$"):
        parse(main)
