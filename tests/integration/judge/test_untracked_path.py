"""Untracked adverts, judged against real rulesets and real adverts in
namespaces: a notrack that certainly runs before conntrack (the raw table's
``-j CT --notrack`` / ``-j NOTRACK``, nft ``notrack`` in a prerouting /
output chain below priority -200) leaves every advert ``untracked``, and
the rules that read the conntrack state judge that: ``ct state invalid
drop`` and ``established,related`` do not match it, ``untracked`` does.
A notrack that may not match (another source, after a rule that may end the
raw chain, behind a conntrack template, after conntrack) leaves the state
unknown: ``uncertain``, never a verdict the adverts contradict.  Legacy
iptables and nftables, IPv4 and IPv6, inbound and outbound."""

from __future__ import annotations

from typing import Dict, Tuple

import pytest
from netns import add_ipv6, adverts, pair

pytestmark = pytest.mark.integration

GROUP6 = "ff02::12"


def legacy(raw: str, filt: str, policy_in: str = "DROP", policy_out: str = "ACCEPT") -> str:
    """An iptables-save text: raw PREROUTING/OUTPUT rules and filter rules."""
    return ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + raw + "COMMIT\n"
            f"*filter\n:INPUT {policy_in} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT {policy_out} [0:0]\n"
            + filt + "COMMIT\n")


def nft(family: str, pre: str, filt: str, hook: str = "input", pre_prio: str = "raw",
        pre_hook: str = "prerouting") -> str:
    return (f"table {family} t {{\n"
            f"  chain early {{ type filter hook {pre_hook} priority {pre_prio}; policy accept; {pre} }}\n"
            f"  chain late {{ type filter hook {hook} priority filter; policy drop; {filt} }}\n}}\n")


FIREWALLD_INPUT = ("ct state established,related accept; ct status dnat accept; iifname \"lo\" accept; "
                   "ct state invalid drop; meta l4proto vrrp accept;")
UNTRACKED_ONLY = "-A {chain} -m conntrack --ctstate UNTRACKED -j ACCEPT\n"

# name: (tool, ruleset, family, direction, the verdict, what 10 adverts do:
# "all" delivered, "none", or a number)
CASES: Dict[str, Tuple[str, str, str, str, str, object]] = {
    "legacy-notrack-invalid-drop": (
        "iptables-legacy-restore",
        legacy("-A PREROUTING -p vrrp -j CT --notrack\n",
               "-A INPUT -m conntrack --ctstate INVALID -j DROP\n-A INPUT -p vrrp -j ACCEPT\n"),
        "ipv4", "in", "allowed-by-other", "all"),
    "legacy-NOTRACK-untracked-accept": (
        "iptables-legacy-restore", legacy("-A PREROUTING -j NOTRACK\n", UNTRACKED_ONLY.format(chain="INPUT")),
        "ipv4", "in", "allowed-by-other", "all"),
    "legacy-notrack-state-established": (
        "iptables-legacy-restore",
        legacy("-A PREROUTING -p vrrp -j CT --notrack\n",
               "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n"),
        "ipv4", "in", "missing", "none"),
    "legacy-notrack-untracked-drop": (
        "iptables-legacy-restore",
        legacy("-A PREROUTING -p vrrp -j CT --notrack\n", "-A INPUT -m state --state UNTRACKED -j DROP\n",
               policy_in="ACCEPT"),
        "ipv4", "in", "missing", "none"),
    # The peer is somewhere on 192.0.2.0/24: the notrack may or may not apply.
    "legacy-notrack-other-source-on-link": (
        "iptables-legacy-restore",
        legacy("-A PREROUTING -s 192.0.2.99/32 -p vrrp -j CT --notrack\n",
               UNTRACKED_ONLY.format(chain="INPUT")),
        "ipv4", "in", "uncertain", "none"),
    # A source no peer on the link has: the notrack never applies, adverts stay new.
    "legacy-notrack-off-link-source": (
        "iptables-legacy-restore",
        legacy("-A PREROUTING -s 198.51.100.0/24 -j CT --notrack\n", UNTRACKED_ONLY.format(chain="INPUT")),
        "ipv4", "in", "missing", "none"),
    # The first 3 adverts are accepted in raw before the notrack (tracked:
    # new, dropped by filter), the other 7 untracked and accepted.
    "legacy-notrack-after-a-rule-that-may-accept": (
        "iptables-legacy-restore",
        legacy("-A PREROUTING -p vrrp -m limit --limit 1/hour --limit-burst 3 -j ACCEPT\n"
               "-A PREROUTING -p vrrp -j CT --notrack\n", UNTRACKED_ONLY.format(chain="INPUT")),
        "ipv4", "in", "uncertain", 7),
    # xt_conntrack with no connection decides by --ctstate alone: --ctproto
    # tcp is not looked at (vrrpfw leaves such a match unjudged).
    "legacy-untracked-ctproto-tcp": (
        "iptables-legacy-restore",
        legacy("-A PREROUTING -p vrrp -j CT --notrack\n",
               "-A INPUT -m conntrack --ctstate UNTRACKED --ctproto 6 -j ACCEPT\n"),
        "ipv4", "in", "uncertain", "all"),
    "legacy-notrack-out": (
        "iptables-legacy-restore",
        legacy("-A OUTPUT -p vrrp -j CT --notrack\n", UNTRACKED_ONLY.format(chain="OUTPUT"),
               policy_in="ACCEPT", policy_out="DROP"),
        "ipv4", "out", "allowed-by-other", "all"),
    "legacy6-notrack-invalid-drop": (
        "ip6tables-legacy-restore",
        legacy("-A PREROUTING -p vrrp -j CT --notrack\n",
               "-A INPUT -m conntrack --ctstate INVALID -j DROP\n-A INPUT -p vrrp -j ACCEPT\n"),
        "ipv6", "in", "allowed-by-other", "all"),
    "legacy6-notrack-established-only": (
        "ip6tables-legacy-restore",
        legacy("-A PREROUTING -p vrrp -j CT --notrack\n",
               "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"),
        "ipv6", "in", "missing", "none"),
    # firewalld's filter_INPUT shape behind kapair's notrack table (the
    # keepalived pair's unicast case).
    "nft-notrack-firewalld-input": (
        "nft", nft("inet", "meta l4proto { 51, 112 } notrack;", FIREWALLD_INPUT),
        "ipv4", "in", "allowed-by-other", "all"),
    "nft-notrack-untracked-accept": (
        "nft", nft("ip", "notrack;", "ct state untracked accept;"), "ipv4", "in", "allowed-by-other", "all"),
    "nft-notrack-established-only": (
        "nft", nft("inet", "ip protocol vrrp notrack;", "ct state established,related accept;"),
        "ipv4", "in", "missing", "none"),
    "nft-notrack-other-source-on-link": (
        "nft", nft("inet", "ip saddr 192.0.2.99 notrack;", "ct state untracked accept;"),
        "ipv4", "in", "uncertain", "none"),
    # After conntrack (priority filter) the advert has its entry: notrack does nothing.
    "nft-notrack-after-conntrack": (
        "nft", nft("inet", "notrack;", "ct state untracked accept;", pre_prio="filter"),
        "ipv4", "in", "uncertain", "none"),
    # A conntrack template first: the notrack after it does nothing.
    "nft-zone-then-notrack": (
        "nft", nft("inet", "ct zone set 1; notrack;", "ct state untracked accept;"),
        "ipv4", "in", "uncertain", "none"),
    "nft-notrack-out": (
        "nft", nft("inet", "meta l4proto vrrp notrack;", "ct state untracked accept;", hook="output",
                   pre_hook="output"),
        "ipv4", "out", "allowed-by-other", "all"),
    "nft6-notrack-firewalld-input": (
        "nft", nft("ip6", "meta l4proto vrrp notrack;", FIREWALLD_INPUT), "ipv6", "in", "allowed-by-other",
        "all"),
    "nft6-notrack-invalid-only": (
        "nft", nft("inet", "meta nfproto ipv6 notrack;", "ct state invalid accept;"), "ipv6", "in", "missing",
        "none"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_untracked_verdict_is_what_adverts_do(name):
    tool, ruleset, family, direction, runtime, delivered = CASES[name]
    with pair("unt") as p:
        group = ()
        if family == "ipv6":
            add_ipv6(p)
            group = ("--group", GROUP6)
        p.host.run(tool, *(["-f", "-"] if tool == "nft" else []), stdin=ruleset)
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, *group, "--no-persist")
        rules = [r for r in out["rules"] if r["direction"] == direction]
        assert len(rules) == 1, out
        assert rules[0]["runtime"] == runtime, rules[0]
        # check exits 0 only where every direction passes.
        others = [r["runtime"] for r in out["rules"]]
        assert (rc == 0) == all(r.startswith("allowed") for r in others), out
        g = GROUP6 if family == "ipv6" else "224.0.0.18"
        if direction == "in":
            got = adverts(p.peer, p.peer_if, p.host, p.host_if, 10, group=g)
            assert got["wire"] == 10, got
            arrived = got["delivered"]
        else:
            got = adverts(p.host, p.host_if, p.peer, p.peer_if, 10, group=g)
            arrived = got["wire"]
        want = {"all": 10, "none": 0}.get(delivered, delivered)  # type: ignore[arg-type]
        assert arrived == want, (got, rules[0])
