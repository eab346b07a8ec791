"""judge.iptables.parse_save on lines iptables-restore takes that
iptables-save never prints.  The expected chains are what
iptables-legacy-restore 1.8 made of the same text in a fresh network
namespace (`iptables-legacy -S` afterwards):

    -P INPUT DROP
    -P FORWARD ACCEPT
    -P OUTPUT DROP
    -A INPUT -p vrrp -j ACCEPT
"""

import pytest

from vrrpfw.judge.iptables import parse_save

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

TEXT = """*filter
:INPUT ACCEPT [0:0]
-A INPUT -p vrrp -j ACCEPT
:INPUT DROP [0:0]
--policy OUTPUT DROP
COMMIT
"""


def test_a_chain_declared_again_keeps_its_rules_and_takes_the_new_policy():
    policy, rules = parse_save(TEXT)["filter"]["INPUT"]
    assert policy == "DROP"
    assert [r.text for r in rules] == ["-A INPUT -p vrrp -j ACCEPT"]


def test_long_policy_option_sets_the_policy():
    assert parse_save(TEXT)["filter"]["OUTPUT"] == ("DROP", [])
    assert parse_save(TEXT.replace("--policy", "-P"))["filter"]["OUTPUT"] == ("DROP", [])


INSERTS = """*filter
:INPUT ACCEPT [0:0]
-A INPUT -p vrrp -j ACCEPT
-A INPUT -p tcp -j ACCEPT
-I INPUT 2 -p ah -j ACCEPT
--insert INPUT -p udp -j DROP
-I INPUT 5 -p icmp -j ACCEPT
--insert INPUT 3 -p esp -j ACCEPT
-I INPUT -p sctp -j DROP
COMMIT
"""


def test_inserts_land_where_iptables_restore_puts_them():
    """iptables-legacy-restore of INSERTS, then ``iptables-legacy -S INPUT``:
    sctp DROP, udp DROP, vrrp, esp, ah, tcp, icmp."""
    _, rules = parse_save(INSERTS)["filter"]["INPUT"]
    assert [r.protocol for r in rules] == ["sctp", "udp", "vrrp", "esp", "ah", "tcp", "icmp"]


def test_bare_inserts():
    """``-I INPUT 2`` and ``-I INPUT`` with nothing more insert empty rules
    (iptables-legacy -S: -A INPUT, vrrp, -A INPUT, tcp)."""
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p vrrp -j ACCEPT\n-A INPUT -p tcp -j ACCEPT\n" \
           "-I INPUT 2\n-I INPUT\nCOMMIT\n"
    _, rules = parse_save(text)["filter"]["INPUT"]
    assert [r.protocol for r in rules] == [None, "vrrp", None, "tcp"]


def test_counters_without_their_closing_bracket_do_not_parse():
    from vrrpfw.judge.iptables import parse_rule

    assert parse_rule("[0:0 -A INPUT -p vrrp -j ACCEPT") is None
    assert parse_rule("[3:120] -A INPUT -p vrrp -j ACCEPT").protocol == "vrrp"
