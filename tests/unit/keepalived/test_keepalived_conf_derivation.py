"""keepalived_conf word for word: the derivation each instance carries (what
``vrrpfw open --keepalived-conf`` prints as its reasons), the notes, and the
refusals, on configurations whose meaning was checked against keepalived
2.2.7 (see test_keepalived_conf.py)."""

from __future__ import annotations

import os

import pytest

from vrrpfw.errors import InputError
from vrrpfw.keepalived.conf import KaInstance, parse, parse_text

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

PATH = "/etc/k.conf"


def cfg(text: str):
    return parse_text(text, PATH)


def one(text: str) -> KaInstance:
    (inst,) = cfg(text).instances
    return inst


def refused(text: str) -> str:
    with pytest.raises(InputError) as e:
        cfg(text)
    return str(e.value)


def test_derivation_of_a_plain_ipv4_instance():
    i = one("vrrp_instance VI {\ninterface eth1\nvirtual_router_id 51\nvirtual_ipaddress "
        "{\n192.0.2.10/24\n}\n}\n")
    assert i.derivation == (
        "family ipv4 (virtual_ipaddress 192.0.2.10 at /etc/k.conf:5)",
        "version 2 (keepalived's default)",
        "interface eth1 (interface at /etc/k.conf:2)",
        "group 224.0.0.18 (keepalived's default)",
        "source: the interface's primary address (no unicast_src_ip / mcast_src_ip)",
        "priority 100 (keepalived's default)",
    )


def test_derivation_of_a_master_without_priority():
    i = one("vrrp_instance VI {\nstate MASTER\ninterface eth1\nvirtual_router_id 51\n"
            "virtual_ipaddress { 192.0.2.10 }\n}\n")
    assert i.priority == 255
    assert i.derivation[-1] == "priority 255 (keepalived's default for state MASTER)"


def test_derivation_of_an_ipv6_instance_with_global_group_and_priority():
    i = one("global_defs {\nvrrp_mcast_group6 ff02::99\nvrrp_mcast_group4 224.0.0.99\n}\n"
            "vrrp_instance V6 {\ninterface eth1\nvirtual_router_id 7\npriority 42\n"
            "virtual_ipaddress {\nfd00::10/64\n}\n}\n")
    assert (i.family, i.version, i.group, i.priority) == ("ipv6", 3, "ff02::99", 42)
    assert i.derivation == (
        "family ipv6 (virtual_ipaddress fd00::10 at /etc/k.conf:10)",
        "version 3 (IPv6 and no earlier 'version 2')",
        "interface eth1 (interface at /etc/k.conf:6)",
        "group ff02::99 (vrrp_mcast_group6 at /etc/k.conf:2)",
        "source: the interface's primary address (no unicast_src_ip / mcast_src_ip)",
        "priority 42 (priority at /etc/k.conf:8)",
    )


def test_derivation_of_global_group4_and_version():
    i = one("global_defs {\nvrrp_mcast_group4 224.0.0.99\nvrrp_version 3\nvrrp_mcast_group6 ff02::99\n}\n"
            "vrrp_instance VI {\ninterface eth1\nvirtual_router_id 7\nvirtual_ipaddress { 192.0.2.1 }\n}\n")
    assert (i.group, i.version) == ("224.0.0.99", 3)
    assert i.derivation[1] == "version 3 (global_defs vrrp_version at /etc/k.conf:3)"
    assert i.derivation[3] == "group 224.0.0.99 (vrrp_mcast_group4 at /etc/k.conf:2)"


def test_derivation_of_unicast_with_source():
    i = one("vrrp_instance U {\ninterface eth0\nvirtual_router_id 9\nunicast_src_ip 192.0.2.1\n"
            "unicast_peer {\n192.0.2.2\n192.0.2.3\n192.0.2.2\n}\nvirtual_ipaddress { 192.0.2.50 }\nversion "
                "3\n}\n")
    assert (i.group, i.unicast_src, i.peers, i.version) == (None, "192.0.2.1", ("192.0.2.2", "192.0.2.3"), 3)
    assert i.derivation == (
        "family ipv4 (unicast_src_ip 192.0.2.1 at /etc/k.conf:4)",
        "version 3 (version at /etc/k.conf:11)",
        "interface eth0 (interface at /etc/k.conf:2)",
        "unicast to 192.0.2.2, 192.0.2.3 (unicast_peer): no multicast group",
        "source 192.0.2.1 (set at /etc/k.conf:4)",
        "priority 100 (keepalived's default)",
    )


def test_family_from_the_first_peer_and_mcast_src_ip():
    i = one("vrrp_instance U {\ninterface eth0\nvirtual_router_id 9\nunicast_peer {\nfd00::2\n}\n"
            "mcast_src_ip fd00::1\nvirtual_ipaddress { fd00::50 }\n}\n")
    assert i.derivation[0] == "family ipv6 (unicast_peer fd00::2 at /etc/k.conf:5)"
    assert i.derivation[4] == "source fd00::1 (set at /etc/k.conf:7)"
    j = one("vrrp_instance U {\ninterface eth0\nvirtual_router_id 9\nmcast_src_ip 192.0.2.1\n"
            "virtual_ipaddress { 192.0.2.50 }\n}\n")
    assert j.derivation[0] == "family ipv4 (mcast_src_ip 192.0.2.1 at /etc/k.conf:4)"
    assert (j.unicast_src, j.group) == ("192.0.2.1", "224.0.0.18")


def test_derivation_without_any_address_and_native_ipv6():
    i = one("vrrp_instance E {\ninterface eth0\nvirtual_router_id 9\nvirtual_ipaddress_excluded { fd00::5 "
        "}\n}\n")
    assert i.derivation[0] == "family ipv4 (no address decided it: keepalived's default)"
    assert i.virtual_addresses == ("fd00::5",)
    n = one("vrrp_instance N {\ninterface eth0\nvirtual_router_id 9\nnative_ipv6\nvirtual_ipaddress { "
        "fd00::5 }\n}\n")
    assert n.derivation[0] == "family ipv6 (native_ipv6 at /etc/k.conf:4)"


def test_virtual_addresses_keep_order_drop_prefix_and_duplicates():
    i = one("vrrp_instance V {\ninterface eth0\nvirtual_router_id 9\nvirtual_ipaddress {\n192.0.2.5/24 dev "
        "eth0\n"
            "192.0.2.4\n192.0.2.5/32\n}\nvirtual_ipaddress_excluded {\n192.0.2.4\n198.51.100.1/24\n}\n}\n")
    assert i.virtual_addresses == ("192.0.2.5", "192.0.2.4", "198.51.100.1")


def test_use_vmac_derivations():
    base = "vrrp_instance M {\ninterface eth0\nvirtual_router_id 51\nvirtual_ipaddress { 192.0.2.5 }\n"
    i = one(base + "use_vmac\n}\n")
    assert (i.interface, i.base_interface) == ("vrrp.51", "eth0")
    assert i.derivation[2] == ("interface vrrp.51 (use_vmac vrrp.51, keepalived's default name vrrp.VRID: "
        "adverts "
                               "go out of and arrive on the macvlan; vmac_xmit_base not set)")
    j = one(base + "use_vmac vmac9\n}\n")
    assert j.interface == "vmac9"
    assert j.derivation[2] == ("interface vmac9 (use_vmac vmac9, as named: adverts go out of and arrive on "
        "the "
                               "macvlan; vmac_xmit_base not set)")
    k = one(base + "use_vmac vmac9\nvmac_xmit_base\n}\n")
    assert (k.interface, k.base_interface) == ("eth0", "eth0")
    assert k.derivation[2] == ("interface eth0 (use_vmac vmac9 with vmac_xmit_base: adverts are sent and "
        "received "
                               "on the base interface)")
    c = cfg(base + "vmac_xmit_base\n}\n")
    assert c.instances[0].interface == "eth0"
    assert c.notes == ("/etc/k.conf:1: vmac_xmit_base without use_vmac has no effect",)
    assert refused(base + "use_vmac bad*name\n}\n").startswith(
        "/etc/k.conf:5: use_vmac: interface name 'bad*name' contains '*'")


def test_notes_word_for_word():
    c = cfg("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress "
        "{\n192.0.2.1\nfd00::1\n}\n"
            "vrrp_version 3\nauthentication {\nauth_type PASS\n}\n}\n"
            "vrrp_instance B {\ninterface eth0\nvirtual_router_id 2\nversion 3\n}\n"
            "vrrp_instance C {\ninterface eth0\nvirtual_router_id 3\nvirtual_ipaddress { fd00::3 }\nversion "
                "2\n"
            "authentication {\nauth_type PASS\nauth_pass x\n}\n}\n")
    assert [i.name for i in c.instances] == ["A", "C"]
    assert c.notes == (
        "/etc/k.conf:6: fd00::1 ignored: keepalived requires every virtual_ipaddress to match the instance's "
        "family (ipv4, from virtual_ipaddress 192.0.2.1 at /etc/k.conf:5)",
        "/etc/k.conf:8: vrrp_version is not an instance keyword (keepalived ignores it; the instance "
            "keyword is "
        "'version')",
        "/etc/k.conf:10: auth_type ignored: no auth_pass (keepalived drops it)",
        "/etc/k.conf:13: vrrp_instance B ignored: no virtual_ipaddress, which keepalived requires for "
            "VRRPv3, "
        "IPv6 and vrrp_strict (it drops the instance)",
        "/etc/k.conf:22: version 2 ignored: written after the IPv6 address that made C IPv6 (keepalived "
        "ignores it and uses VRRPv3)",
        "/etc/k.conf:24: auth_type PASS ignored: keepalived drops authentication with VRRPv3",
    )
    assert c.instances[0].auth_type is None and c.instances[1].auth_type is None


def test_auth_pass_needs_its_password_word():
    base = "vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress { 192.0.2.1 }\n"
    assert one(base + "authentication {\nauth_type PASS\nauth_pass secret\n}\n}\n").auth_type == "PASS"
    assert one(base + "authentication {\nauth_type AH\nauth_pass secret\n}\n}\n").auth_type == "AH"
    c = cfg(base + "authentication {\nauth_type PASS\nauth_pass\n}\n}\n")
    assert c.instances[0].auth_type is None and c.notes[0].endswith("auth_type ignored: no auth_pass "
        "(keepalived "
                                                                    "drops it)")


def test_version2_before_ipv6_kept_unless_strict():
    body = "interface eth0\nvirtual_router_id 1\nversion 2\nvirtual_ipaddress { fd00::1 }\n}\n"
    i = one("vrrp_instance A {\n" + body)
    assert (i.version, i.derivation[1]) == (2, "version 2 (version at /etc/k.conf:4)")
    s = one("global_defs {\nvrrp_strict\n}\nvrrp_instance A {\n" + body)
    assert (s.version, s.derivation[1]) == (3, "version 3 (vrrp_strict forces VRRPv3 for IPv6)")
    four = one("global_defs {\nvrrp_strict\n}\nvrrp_instance A {\ninterface eth0\nvirtual_router_id "
        "1\nversion 2\n"
               "virtual_ipaddress { 192.0.2.1 }\n}\n")
    assert four.version == 2


def test_strict_drops_an_ipv4_v2_instance_without_vip():
    body = "vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\n}\nvrrp_instance B {\ninterface eth0\n" \
           "virtual_router_id 2\nvirtual_ipaddress { 192.0.2.1 }\n}\n"
    assert [i.name for i in cfg(body).instances] == ["A", "B"]
    assert [i.name for i in cfg("global_defs {\nvrrp_strict\n}\n" + body).instances] == ["B"]


@pytest.mark.parametrize("text, message", [
    ("vrrp_instance {\ninterface eth0\n}\n", "/etc/k.conf:1: vrrp_instance needs a name"),
    ("vrrp_instance A {\nvirtual_router_id 1\n}\n",
     "/etc/k.conf:1: vrrp_instance A has no interface (keepalived refuses it; global_defs default_interface "
     "applies to static addresses only)"),
    ("vrrp_instance A {\ninterface eth0\n}\n", "/etc/k.conf:1: vrrp_instance A has no virtual_router_id"),
    ("vrrp_instance A {\ninterface\n}\n", "/etc/k.conf:2: interface needs an interface name"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id\n}\n",
        "/etc/k.conf:3: virtual_router_id needs a number"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 0\n}\n",
     "/etc/k.conf:3: virtual_router_id '0' is not a number in 1..255"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 256\n}\n",
     "/etc/k.conf:3: virtual_router_id '256' is not a number in 1..255"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id -1\n}\n",
     "/etc/k.conf:3: virtual_router_id '-1' is not a number in 1..255"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\npriority 0\n}\n",
     "/etc/k.conf:4: priority '0' is not a number in 1..255"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nversion 4\n}\n",
     "/etc/k.conf:4: version '4' is not a number in 2..3"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nversion 1\n}\n",
     "/etc/k.conf:4: version '1' is not a number in 2..3"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nstate\n}\n",
        "/etc/k.conf:4: state needs MASTER or BACKUP"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nunicast_src_ip\n}\n",
     "/etc/k.conf:4: unicast_src_ip needs an address"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nunicast_src_ip 224.0.0.1\n}\n",
     "/etc/k.conf:4: unicast_src_ip '224.0.0.1' is not a unicast address"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nmcast_src_ip ::\n}\n",
     "/etc/k.conf:4: mcast_src_ip '::' is not a unicast address"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nunicast_peer {\n255.255.255.255\n}\n}\n",
     "/etc/k.conf:5: unicast_peer '255.255.255.255' is not a unicast address"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nunicast_peer {\nx.y\n}\n}\n",
     "/etc/k.conf:5: unicast_peer 'x.y' is not an IP address"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress_excluded {\nnope/24\n}\n}\n",
     "/etc/k.conf:5: virtual_ipaddress_excluded 'nope/24' is not an IP address"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress { 192.0.2.1 "
        "}\nnative_ipv6\n}\n",
     "/etc/k.conf:5: native_ipv6 contradicts the IPv4 virtual_ipaddress 192.0.2.1 at /etc/k.conf:4 "
     "(keepalived: cannot specify native_ipv6 with IPv4 addresses)"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nauthentication {\nauth_type\n}\n}\n",
     "/etc/k.conf:5: auth_type needs PASS or AH"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nauthentication {\nauth_type pass\n}\n}\n",
     "/etc/k.conf:5: auth_type 'pass' is neither PASS nor AH"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nversion 3\nvirtual_ipaddress { 192.0.2.1 }\n"
     "authentication {\nauth_type AH\n}\n}\n",
     "/etc/k.conf:7: auth_type AH with VRRPv3 (version at /etc/k.conf:4): keepalived refuses authentication "
     "with VRRPv3"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nversion 2\nvirtual_ipaddress { fd00::1 }\n"
     "authentication {\nauth_type AH\n}\n}\n",
     "/etc/k.conf:7: auth_type AH with IPv6: keepalived refuses AH with IPv6"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nunicast_src_ip 192.0.2.1\nunicast_peer "
        "{\nfd00::2\n}\n}\n",
     "/etc/k.conf:4: unicast_src_ip 192.0.2.1 is IPv4 but unicast_peer fd00::2 (/etc/k.conf:6) is IPv6"),
    ("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nunicast_peer {\n192.0.2.2\nfd00::2\n}\n}\n",
     "/etc/k.conf:6: unicast_peer fd00::2 is not ipv4 like the instance (unicast_peer 192.0.2.2 at "
         "/etc/k.conf:5); "
     "keepalived skips it"),
    ("global_defs {\nvrrp_mcast_group4\n}\n", "/etc/k.conf:2: vrrp_mcast_group4 needs a multicast address"),
    ("global_defs {\nvrrp_mcast_group4 nope\n}\n",
        "/etc/k.conf:2: vrrp_mcast_group4 'nope' is not an IP address"),
    ("global_defs {\nvrrp_mcast_group4 ff02::12\n}\n",
     "/etc/k.conf:2: vrrp_mcast_group4 'ff02::12' is not an IPv4 multicast address"),
    ("global_defs {\nvrrp_mcast_group6 224.0.0.18\n}\n",
     "/etc/k.conf:2: vrrp_mcast_group6 '224.0.0.18' is not an IPv6 multicast address"),
    ("global_defs {\nvrrp_mcast_group6 fd00::1\n}\n",
     "/etc/k.conf:2: vrrp_mcast_group6 'fd00::1' is not an IPv6 multicast address"),
    ("global_defs {\nvrrp_version 4\n}\n", "/etc/k.conf:2: vrrp_version '4' is not a number in 2..3"),
    ("{\n}\n", "/etc/k.conf:1: unbalanced braces: '{' does not follow a keyword"),
    ("a {\n}\n{\n}\n", "/etc/k.conf:3: unbalanced braces: '{' does not follow a keyword"),
    ("}\n", "/etc/k.conf:1: unbalanced braces: '}' closes nothing"),
    ("a {\nb {\n}\n", "/etc/k.conf:1: unbalanced braces: this '{' is never closed"),
    ("global_defs {\n}\n", "/etc/k.conf:1: no usable vrrp_instance in the configuration"),
    ("~SEQ(x, 1, 2)\n", "/etc/k.conf:1: ~SEQ is not supported by vrrpfw"),
    ("$A=b \\\n", "/etc/k.conf:1: multi-line definitions ($NAME=...\\) are not supported by vrrpfw"),
])
def test_refusals_word_for_word(text, message):
    assert refused(text) == message


def test_duplicate_instance_name_names_both_places():
    body = "interface eth0\nvirtual_router_id {}\nvirtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    text = "vrrp_instance A {\n" + body.format(1) + "vrrp_instance A {\n" + body.format(2)
    assert refused(text) == "/etc/k.conf:6: vrrp_instance A is already defined at /etc/k.conf:1"


def test_namespace_at_the_top_level_and_other_blocks_skipped():
    c = cfg("net_namespace blue\nglobal_defs {\nrouter_id x\n}\nvrrp_script chk {\nscript /bin/true\n}\n"
            "vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\ntrack_script {\nchk\n}\n"
            "virtual_ipaddress { 192.0.2.1 }\n}\n")
    assert c.net_namespace == "blue" and c.path == PATH and c.files == ()
    assert [i.name for i in c.instances] == ["A"] and c.notes == ()


def test_lexer_details():
    # a quoted word keeps its spaces and its '#'; a backslash before any other character stays
    i = one('vrrp_instance "A B" {\ninterface eth0 # x\nvirtual_router_id 1\n'
            'virtual_ipaddress { 192.0.2.1 }\nnotify "/bin/echo #1 {x}"\n}\n')
    assert i.name == "A B"
    # definitions expand as $NAME and ${NAME}; an unknown $NAME is left alone
    d = one("$IF=eth7\n$ID= 42 \nvrrp_instance A {\ninterface ${IF}\nvirtual_router_id $ID\n"
            "virtual_ipaddress { 192.0.2.1 }\nnotify $UNKNOWN\n}\n")
    assert (d.interface, d.vrid) == ("eth7", 42)
    # '!' and '#' after a backslash are the characters themselves (here in a word keepalived skips)
    e = one("vrrp_instance A {\nnotify x\\#y\\!z\ninterface eth0\nvirtual_router_id 1\n"
            "virtual_ipaddress { 192.0.2.1 }\n}\n")
    assert e.vrid == 1
    # an @ID line is skipped with a note naming it
    f = cfg("@host1 vrrp_instance X {\nvrrp_instance A {\ninterface eth0\nvirtual_router_id 1\n"
            "virtual_ipaddress { 192.0.2.1 }\n}\n")
    assert f.notes == ("/etc/k.conf:1: skipped '@host1' line: it depends on keepalived's -i config id, which "
                       "vrrpfw does not know",)


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return str(path)


INSTANCE = ("vrrp_instance {name} {{\ninterface eth0\nvirtual_router_id {vrid}\nvirtual_ipaddress {{ "
            "192.0.2.1 }}\n}}\n")


def test_includes_word_for_word(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "sub.conf").mkdir()
    write(tmp_path / "d" / "b.conf", INSTANCE.format(name="B", vrid=2))
    write(tmp_path / "d" / "a.conf", INSTANCE.format(name="A", vrid=1))
    write(tmp_path / "d" / "x.conf", INSTANCE.format(name="X", vrid=3), 0o755)
    (tmp_path / "e").mkdir()
    write(tmp_path / "e" / "c.conf", INSTANCE.format(name="C", vrid=4))
    main = write(tmp_path / "main.conf", "include d/*.conf\ninclude none/*.conf\ninclude {d,e}/c.conf\n")
    c = parse(main)
    assert [i.name for i in c.instances] == ["A", "B", "C"]
    assert c.files == (main, f"{tmp_path}/d/a.conf", f"{tmp_path}/d/b.conf", f"{tmp_path}/e/c.conf")
    assert c.notes == (
        f"{main}:1: include d/*.conf: {tmp_path}/d/sub.conf is a directory (keepalived skips it)",
        f"{main}:1: include d/*.conf: {tmp_path}/d/x.conf is executable (keepalived skips it)",
        f"{main}:2: include none/*.conf: no file matches (keepalived skips it)",
    )


def test_include_errors_word_for_word(tmp_path):
    main = write(tmp_path / "main.conf", "include nothere.conf\n")
    with pytest.raises(InputError) as e:
        parse(main)
    assert str(e.value) == (f"{main}:1: include nothere.conf: cannot read {tmp_path}/nothere.conf: "
                            "No such file or directory")
    loop = write(tmp_path / "loop.conf", "\ninclude loop.conf\n")
    with pytest.raises(InputError) as e:
        parse(loop)
    assert str(e.value) == f"{loop}:2: include loop: {tmp_path}/loop.conf is already being read"
    with pytest.raises(InputError) as e:
        parse(str(tmp_path / "absent.conf"))
    assert str(e.value) == f"cannot read {tmp_path}/absent.conf: No such file or directory"


def test_include_absolute_and_relative_to_cwd(tmp_path, monkeypatch):
    inc = write(tmp_path / "inc.conf", INSTANCE.format(name="A", vrid=1))
    assert [i.name for i in parse_text(f"include {inc}\n", "k.conf").instances] == ["A"]
    monkeypatch.chdir(tmp_path)
    c = parse_text("include inc.conf\n", "k.conf")
    assert c.files == ("inc.conf",) and [i.vrid for i in c.instances] == [1]
