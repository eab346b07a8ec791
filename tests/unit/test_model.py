import pytest

from vrrpfw.errors import EXIT_USAGE, InputError
from vrrpfw.model import Direction, make_spec, rules_for, validate_group, validate_interface

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


@pytest.mark.parametrize("name", ["eth0", "enp0s8", "a", "x" * 15, "br-lan.100", "wg_0"])
def test_valid_interfaces(name):
    assert validate_interface(name) == name


@pytest.mark.parametrize(
    "name, words",
    [
        ("", "empty"),
        ("x" * 16, "at most 15"),
        ("é" * 8, "at most 15"),  # 16 bytes in UTF-8
        (".", "not allowed"),
        ("..", "not allowed"),
        ("a/b", "'/'"),
        ("a:b", "':'"),
        ("a b", "' '"),
        ("a\tb", "'\\t'"),
        ("eth+", "wildcard"),
        ("!eth0", "negation"),
    ],
)
def test_invalid_interfaces(name, words):
    with pytest.raises(InputError) as e:
        validate_interface(name)
    assert words in str(e.value)
    assert e.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize("group", ["224.0.0.18", "239.1.2.3", " 224.0.0.19 "])
def test_valid_groups(group):
    assert validate_group(group) == group.strip()


@pytest.mark.parametrize("group", ["10.0.0.1", "255.255.255.255", "224.0.0", "fe80::1", "ff02::12%eth0",
                                   "bogus", ""])
def test_invalid_groups(group):
    with pytest.raises(InputError):
        validate_group(group)


def test_spec_dedups_and_orders_rules():
    spec = make_spec(["eth1", "eth0", "eth1"], "224.0.0.19")
    assert spec.interfaces == ("eth1", "eth0")
    rules = rules_for(spec)
    assert [(r.direction, r.interface, r.chain) for r in rules] == [
        (Direction.IN, "eth1", "INPUT"), (Direction.OUT, "eth1", "OUTPUT"),
        (Direction.IN, "eth0", "INPUT"), (Direction.OUT, "eth0", "OUTPUT"),
    ]
    assert {r.group for r in rules} == {"224.0.0.19"}


def test_spec_needs_an_interface():
    with pytest.raises(InputError, match="no interface"):
        make_spec([])
