"""judge.iptables.parse_save on lines iptables-restore takes that
iptables-save never prints.  The expected chains are what
iptables-legacy-restore 1.8 made of the same text in a fresh network
namespace (`iptables-legacy -S` afterwards):

    -P INPUT DROP
    -P FORWARD ACCEPT
    -P OUTPUT DROP
    -A INPUT -p vrrp -j ACCEPT
"""

from vrrpfw.judge.iptables import parse_save

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
