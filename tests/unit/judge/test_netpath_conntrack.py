"""Where conntrack has not run yet, an advert has no entry: netfilter calls
it "invalid" there, "new" after (found by the property test against real
packets: raw-table and low-priority prerouting/output chains)."""

import pytest

from vrrpfw.judge.netpath import judge
from vrrpfw.judge.path_model import BaseChain, ChainId, Hook, PathModel, ct_state_at
from vrrpfw.judge.rules import FwRule, Match
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.results import Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN = VrrpRule(Direction.IN, "eth1", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth1", "224.0.0.18")


def chain(hook, priority, *rules, table="t"):
    return BaseChain(ChainId("nft", "inet", table, "c"), hook, priority, "ACCEPT", list(rules))


def ct(*states, neg=False):
    words = (("!",) if neg else ()) + (",".join(states),)
    return Match("conntrack", (("ctstate", words),))


def test_state_by_hook_and_priority():
    assert ct_state_at(chain(Hook.INGRESS, 0), "new") == "invalid"
    assert ct_state_at(chain(Hook.PREROUTING, -300), "new") == "invalid"
    assert ct_state_at(chain(Hook.PREROUTING, -200), "new") is None
    assert ct_state_at(chain(Hook.PREROUTING, -199), "new") == "new"
    assert ct_state_at(chain(Hook.OUTPUT, -201), "new") == "invalid"
    assert ct_state_at(chain(Hook.INPUT, -300), "new") == "new"  # conntrack ran at prerouting
    assert ct_state_at(chain(Hook.POSTROUTING, -300), None) is None
    assert ct_state_at(chain(Hook.EGRESS, 0), "new") == "new"  # the entry made at output stays


def test_new_drop_before_conntrack_lets_adverts_through_and_after_it_drops():
    drop_new = FwRule("c", matches=(ct("NEW"),), target="DROP")
    early = PathModel([chain(Hook.PREROUTING, -300, drop_new)])
    assert judge(early, IN).state is Runtime.ALLOWED_BY_POLICY
    late = PathModel([chain(Hook.PREROUTING, 0, drop_new)])
    assert judge(late, IN).state is Runtime.MISSING


def test_invalid_drop_before_conntrack_drops_what_we_send():
    drop_invalid = FwRule("c", matches=(ct("INVALID"),), target="DROP")
    assert judge(PathModel([chain(Hook.OUTPUT, -300, drop_invalid)]), OUT).state is Runtime.MISSING
    assert judge(PathModel([chain(Hook.OUTPUT, 0, drop_invalid)]), OUT).state is Runtime.ALLOWED_BY_POLICY
    at_conntrack = PathModel([chain(Hook.OUTPUT, -200, drop_invalid)])
    assert judge(at_conntrack, OUT).state is Runtime.UNCERTAIN
