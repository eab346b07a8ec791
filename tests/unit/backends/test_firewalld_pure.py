"""Pure parts of the firewalld backend and its state file."""


import pytest

from vrrpfw.backends.firewalld.rules import direct_args, is_seed_direct, rich_allows, rich_rule
from vrrpfw.errors import PersistFileError
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.persist.state import StateFile

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth0", "224.0.0.18")
OTHER = VrrpRule(Direction.IN, "eth0", "224.0.0.19")


def test_rich_rule_and_direct_args():
    assert rich_rule(IN) == (
        'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept')
    assert direct_args(IN) == ["-i", "eth0", "-d", "224.0.0.18", "-p", "112", "-m", "comment",
                               "--comment", "vrrpfw", "-j", "ACCEPT"]
    assert direct_args(OUT, comment=False) == ["-o", "eth0", "-d", "224.0.0.18", "-p", "112", "-j", "ACCEPT"]


@pytest.mark.parametrize("text, allows", [
    (rich_rule(IN), True),
    ('rule protocol value="vrrp" accept', True),
    ('rule family="ipv4" protocol value="112" accept', True),
    ('rule family="ipv4" destination address="224.0.0.18/32" protocol value="vrrp" accept', True),
    (rich_rule(OTHER), False),
    ('rule family="ipv4" source address="192.0.2.7" protocol value="vrrp" accept', False),
    ('rule family="ipv4" destination not address="224.0.0.18" protocol value="vrrp" accept', False),
    ('rule family="ipv6" protocol value="vrrp" accept', False),
    ('rule protocol value="vrrp" drop', False),
    ('rule protocol value="tcp" accept', False),
    ('rule protocol value="vrrp" accept limit value="1/m"', False),
])
def test_rich_allows(text, allows):
    assert rich_allows(text, IN) is allows


def test_seed_direct_recognition():
    recipe = ["--in-interface", "eth0", "--destination", "224.0.0.18", "--protocol", "vrrp", "-j", "ACCEPT"]
    assert is_seed_direct(recipe, IN)
    assert is_seed_direct(["-i", "eth0", "-p", "112", "-j", "ACCEPT"], IN)
    assert not is_seed_direct(recipe, VrrpRule(Direction.IN, "eth1", "224.0.0.18"))
    assert not is_seed_direct(direct_args(IN), IN)  # ours, not a seed
    assert not is_seed_direct(["-i", "eth0", "-p", "vrrp", "-j", "DROP"], IN)


def test_state_file_shares_allowances_between_interfaces(tmp_path):
    path = str(tmp_path / "state.json")
    st = StateFile(path)
    st.load()
    st.add("runtime", "public", "rich", rich_rule(IN), "eth0")
    st.add("runtime", "public", "rich", rich_rule(IN), "eth1")
    st.save()
    again = StateFile(path)
    again.load()
    assert again.find("runtime", "public", "rich", rich_rule(IN)).interfaces == ["eth0", "eth1"]
    assert again.release("runtime", "public", "rich", rich_rule(IN), "eth0") is False
    assert again.release("runtime", "public", "rich", rich_rule(IN), "eth1") is True
    again.save()
    assert not (tmp_path / "state.json").exists()  # holding nothing: removed


def test_corrupt_state_file_is_refused(tmp_path):
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    with pytest.raises(PersistFileError, match="not a vrrpfw state file"):
        StateFile(str(bad)).load()
