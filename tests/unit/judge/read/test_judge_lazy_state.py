"""The dynamic state read lazily (vrrpfw.judge.dynamic.LazyState,
vrrpfw.judge.read.dynamic.lazy_state): never read where no rule the advert
reaches tests any, read once where one does, and then the same verdict as
reading it eagerly, fillers in chains the advert never reaches included.
The recent list's file is a fake; the rest is pure."""

from __future__ import annotations

from typing import List

import pytest

from vrrpfw.judge.netpath import Runtime, judge_peers
from vrrpfw.judge.read import dynamic as read_dynamic
from vrrpfw.judge.read.saved import model_from_texts
from vrrpfw.model import Direction, VrrpRule

PEER = "192.0.2.2"
IN = VrrpRule(Direction.IN, "eth0", PEER, local="192.0.2.1")
LOCAL = ("192.0.2.1", "192.0.2.0/24")
FILL_FROM_OUTPUT = ":FILL - [0:0]\n-A OUTPUT -j FILL\n-A FILL -p vrrp -m recent --set --name L --rdest\n"


def table(policy: str, body: str) -> str:
    return f"*filter\n:INPUT {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n{body}COMMIT\n"


# Each: the filter table, and the verdict for the peer's unicast adverts
# with list L empty.
SHAPES = {
    # An accept on top (as vrrpfw's): the jump to the chain testing L is never reached.
    "accepted-before-the-jump": (
        table("DROP", ":BIG - [0:0]\n-A INPUT -d 192.0.2.1/32 -i eth0 -p vrrp -j ACCEPT\n-A INPUT -j BIG\n"
                      "-A BIG -p vrrp -m recent --rcheck --name L -j DROP\n" + FILL_FROM_OUTPUT),
        Runtime.ALLOWED_BY_OTHER),
    # Reached: filled behind OUTPUT's user chain, so an empty list is no "ok".
    "filled-behind-output": (table("ACCEPT", ":BIG - [0:0]\n-A INPUT -j BIG\n"
                                             "-A BIG -p vrrp -m recent --rcheck --name L -j DROP\n"
                                   + FILL_FROM_OUTPUT), Runtime.UNCERTAIN),
    # Nobody fills it: the empty list decides.
    "never-filled": (table("ACCEPT", ":BIG - [0:0]\n-A INPUT -j BIG\n"
                                     "-A BIG -p vrrp -m recent --rcheck --name L -j DROP\n"),
                     Runtime.ALLOWED_BY_POLICY),
    # Filled in C, reached from INPUT through A's goto to B's nested jump
    # (after a RETURN that does not apply).
    "filled-through-goto-and-nested-jump": (
        table("ACCEPT", ":A - [0:0]\n:B - [0:0]\n:C - [0:0]\n-A INPUT -j A\n"
                        "-A INPUT -m recent --rcheck --name L -j DROP\n-A A -s 198.51.100.0/24 -j RETURN\n"
                        "-A A -g B\n-A B -p vrrp -j C\n-A C -m recent --set --name L\n"),
        Runtime.UNCERTAIN),
}


@pytest.fixture
def reads(monkeypatch) -> List[str]:
    """Every xt_recent file the state reader opens: list L, empty."""
    seen: List[str] = []

    def read(path: str):
        seen.append(path)
        return "" if path.endswith("/L") else None

    monkeypatch.setattr(read_dynamic, "_read", read)
    return seen


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_lazy_state_judges_as_the_eager_read(shape, reads):
    text, want = SHAPES[shape]
    eager = model_from_texts(legacy=text)
    eager.dynamic = read_dynamic.read_state(eager.chains)
    lazy = model_from_texts(legacy=text)
    lazy.dynamic = read_dynamic.lazy_state(lazy)
    got_eager = judge_peers(eager, IN, [PEER], LOCAL)
    got_lazy = judge_peers(lazy, IN, [PEER], LOCAL)
    assert (got_lazy.state, got_lazy.detail) == (got_eager.state, got_eager.detail)
    assert got_lazy.state is want, got_lazy.detail


def test_state_is_not_read_where_no_reached_rule_tests_it(reads):
    model = model_from_texts(legacy=SHAPES["accepted-before-the-jump"][0])
    loads = []
    model.dynamic = read_dynamic.LazyState(lambda: loads.append(1))
    assert judge_peers(model, IN, [PEER], LOCAL).state is Runtime.ALLOWED_BY_OTHER
    assert loads == [] and reads == []


def test_state_is_read_once_where_a_reached_rule_tests_it(reads):
    model = model_from_texts(legacy=SHAPES["filled-behind-output"][0])
    model.dynamic = read_dynamic.lazy_state(model)
    verdict = judge_peers(model, IN, [PEER], LOCAL)
    assert verdict.state is Runtime.UNCERTAIN and "depends on recent list L" in verdict.detail
    assert reads == ["/proc/net/xt_recent/L"]


def test_the_lazy_read_sees_the_chains_as_built(reads):
    """A chain added to the model after it was built is not read (the
    eager read ran at build time): here the filler would make it a maybe."""
    model = model_from_texts(legacy=SHAPES["never-filled"][0])
    model.dynamic = read_dynamic.lazy_state(model)
    model.chains += model_from_texts(legacy=table("ACCEPT", FILL_FROM_OUTPUT)).chains[1:]
    assert judge_peers(model, IN, [PEER], LOCAL).state is Runtime.ALLOWED_BY_POLICY
