"""firewalld's iptables backend: the kernel's path judges too.

In direct mode (and zone mode) on firewalld's iptables backend, vrrpfw reads
firewalld's configuration over D-Bus: direct rules, zones, services.  What
the kernel does is another matter: a passthrough (``firewall-cmd --direct
--passthrough ipv4 -I INPUT 1 -p vrrp -j DROP``) or a plain ``iptables``
rule lands in the tables firewalld writes (legacy or iptables-nft, per its
``IPTables`` setting), before firewalld's own chains, and none of it shows
in the configuration.  So the kernel's path is judged too, with the same
model as the iptables and nftables backends (every layer), and the two are
combined conservatively: the kernel can only make a verdict worse.

Where the kernel drops the advert (or may) even with vrrpfw's direct rule
at the top of firewalld's direct chain (``INPUT_direct``), ``open`` cannot
help: vrrpfw writes only firewalld's direct rules, never firewalld's
generated chains nor the admin's own iptables rules; that is a blocker
naming the chain and the rule.
"""

from __future__ import annotations

import shlex
from typing import Any, List, Optional, Sequence

from vrrpfw.record import replace

from ...host import ifaddr
from ...judge.iptables import parse_rule
from ...judge.netpath import DROPPED, PASSING, judge_peers
from ...judge.path_model import BaseChain, ChainState, PathModel, PathVerdict
from ...judge.read.model import build_model, read_legacy
from ...judge.read.nft import Listings
from ...judge.read.nft import read as nft_read
from ...judge.rules import ChainLookup, FwRule
from ...model import Family, VrrpRule
from ...results import Runtime
from ..base import Options, RuntimeStatus
from .rules import direct_args


def kernel_model(options: Options, heads: Any = None, early: Optional[Listings] = None) -> PathModel:
    """Every layer as the kernel has it; a layer that cannot be read makes
    verdicts uncertain (never an error: the configuration was read).
    ``heads``: nft's chain listing as this run read it, ``early``: the
    table listings started from it (see nft.read)."""
    legacy, why = read_legacy()
    return build_model(legacy, nft_read(heads=heads, early=early), options, why)


def with_direct_rule(model: PathModel, rule: VrrpRule, ahead: int = 0) -> PathModel:
    """``model`` as it would be with vrrpfw's direct rule for ``rule`` in
    firewalld's direct chain (``INPUT_direct``, which firewalld's INPUT
    jumps to), after the ``ahead`` rules there that run before priority 0's
    new rule (firewalld orders direct rules by priority): what ``open``
    can reach."""
    sub = f"{rule.chain}_direct"
    mine = parse_rule(f"-A {sub} {shlex.join(direct_args(rule))}")
    if mine is None:
        return model
    family = "ip" if rule.family is Family.IPV4 else "ip6"
    chains: List[BaseChain] = []
    for c in model.chains:
        if (c.id.family == family and c.id.table == "filter" and c.id.name == rule.chain
                and c.lookup(sub) is not None):
            chains.append(replace(c, lookup=_insert(c.lookup, sub, mine, ahead)))
        else:
            chains.append(c)
    return replace(model, chains=chains)


def _insert(base: ChainLookup, sub: str, mine: FwRule, at: int) -> ChainLookup:
    def lookup(name: str) -> Optional[Sequence[FwRule]]:
        got = base(name)
        return [*got[:at], mine, *got[at:]] if name == sub and got is not None else got
    return lookup


def judge_kernel(model: PathModel, st: RuntimeStatus, peers: Sequence[str], ahead: int = 0) -> Optional[str]:
    """Make ``st`` (judged from firewalld's configuration) no better than
    what the kernel's path does to the advert: where the configuration
    lets it through, a certain drop makes it ``shadowed`` (vrrpfw's direct
    rule is there) or ``missing``, a doubt ``uncertain``; a verdict that
    already does not pass stands, its detail naming the kernel's chain too.
    Returns a blocker line where vrrpfw's direct rule, placed after the
    ``ahead`` direct rules of lower or equal priority, could not let the
    advert through (a rule above firewalld's chains, or the admin's direct
    rule of a lower priority): ``open`` cannot fix that."""
    r = st.rule
    local = ifaddr.primary_of(r.interface, r.family.value)
    v = judge_peers(model, r, peers, local)
    if v.state in PASSING:
        return None
    kernel = v.detail or "; ".join(v.unread) or v.state.value
    if st.state in PASSING:  # what the configuration lets in, the kernel does not (or may not)
        if v.state in DROPPED:
            st.state = Runtime.SHADOWED if st.ours else Runtime.MISSING
        else:
            st.state = Runtime.UNCERTAIN
        st.detail = f"the kernel's path: {kernel} (firewalld's configuration: {st.detail or 'allowed'})"
    else:  # the configuration's verdict stands (it already says why); the kernel's adds where
        st.detail = "; ".join(filter(None, [st.detail, f"the kernel's path: {kernel}"]))
    best = judge_peers(with_direct_rule(model, r, ahead), r, peers, local)
    if best.state in PASSING:
        if not st.ours:
            st.needs = st.needs or ["direct"]  # open: vrrpfw's direct rule lets it through
        return None
    return _blocker(best, r)


def _blocker(best: PathVerdict, rule: VrrpRule) -> str:
    bad = [cv.text for cv in best.chains if not cv.state.passes]
    if not bad:
        bad = [f"{', '.join(best.unread)} could not be read"] if best.unread else [best.detail]
    how = "drops" if best.state in DROPPED else "may drop"
    certain = [cv for cv in best.chains if cv.state is ChainState.DROP]
    if certain:
        bad = [cv.text for cv in certain]
    return (f"{'; '.join(bad)}: the kernel {how} VRRP {rule.direction.value} on {rule.interface} even "
            f"after vrrpfw's direct rule in {rule.chain}_direct, and vrrpfw does not write firewalld's "
            "generated chains or the admin's own iptables rules: accept VRRP before that rule, or remove it")
