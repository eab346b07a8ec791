"""Who owns a chain or table (vrrpfw.judge.owners), and what the generic
backend does with a chain another program owns: no rule of vrrpfw goes
there, open plans nothing when such a chain keeps VRRP out and says so in
one line, close still removes vrrpfw's own rules.  Pure: path models built
from saved texts and hand-written nft JSON, no kernel."""

import os

import pytest

from vrrpfw.backends.base import Options
from vrrpfw.backends.iptables import IptablesBackend
from vrrpfw.backends.nftables import NftablesBackend
from vrrpfw.judge import owners
from vrrpfw.judge.iptables import parse_save
from vrrpfw.judge.netpath import cannot_drop, judge_chain
from vrrpfw.judge.path_model import BaseChain, ChainId, ChainState, Hook, PathModel
from vrrpfw.judge.read.saved import legacy_chains, nft_chains
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.results import Action, Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "corpus")
IN = VrrpRule(Direction.IN, "eth1", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth1", "224.0.0.18")
K8S = "a NetworkPolicy (or the CNI's own policy) that allows IP protocol 112"


def corpus(name):
    with open(os.path.join(CORPUS, name), encoding="utf-8") as f:
        return "".join(line for line in f if not line.startswith("#"))


@pytest.mark.parametrize("layer,family,table,chain,owner", [
    ("nft", "ip", "kube-proxy", "filter-input", "kube-proxy"),
    ("nft", "ip6", "kube-proxy", "nat-postrouting", "kube-proxy"),
    ("nft", "ip", "filter", "KUBE-FIREWALL", "kube-proxy"),  # iptables-nft's table: by chain name
    ("legacy", "ip", "nat", "KUBE-POSTROUTING", "kube-proxy"),
    ("legacy", "ip", "filter", "KUBE-SERVICES", "kube-proxy"),
    ("legacy", "ip", "filter", "cali-INPUT", "Calico"),
    ("nft", "ip", "filter", "cali-fh-eth1", "Calico"),
    ("nft", "ip", "calico", "filter-INPUT", "Calico"),
    ("legacy", "ip", "filter", "CILIUM_INPUT", "Cilium"),
    ("nft", "ip", "cilium-nodeport", "prerouting", "Cilium"),
    ("legacy", "ip", "filter", "DOCKER", "Docker"),
    ("legacy", "ip", "filter", "DOCKER-ISOLATION-STAGE-1", "Docker"),
    ("legacy", "ip", "filter", "DOCKER-FORWARD", "Docker"),
    ("legacy", "ip", "filter", "DOCKER-BRIDGE", "Docker"),
    ("legacy", "ip", "filter", "DOCKER-CT", "Docker"),
    ("legacy", "ip", "filter", "DOCKER-INGRESS", "Docker"),
    ("nft", "ip", "docker-bridges", "raw-PREROUTING", "Docker"),
    ("nft", "inet", "firewalld", "filter_INPUT", "firewalld"),
    ("legacy", "ip", "filter", "ufw-before-input", "ufw"),
    ("nft", "ip6", "filter", "ufw6-before-input", "ufw"),
    ("nft", "inet", "f2b-table", "f2b-chain", "fail2ban"),
    ("nft", "ip", "sshguard", "blacklist", "sshguard"),
    ("nft", "ip6", "sshguard", "blacklist", "sshguard"),
])
def test_owned(layer, family, table, chain, owner):
    found = owners.of_chain(layer, family, table, chain)
    assert found is not None and found.name == owner


@pytest.mark.parametrize("layer,family,table,chain", [
    ("legacy", "ip", "filter", "DOCKER-USER"),  # the admin's, though Docker creates it
    ("legacy", "ip", "filter", "INPUT"),
    ("legacy", "ip", "nat", "POSTROUTING"),
    ("nft", "ip", "filter", "INPUT"),  # iptables-nft's base chain: kube-proxy only jumps from it
    ("nft", "ip", "nat", "POSTROUTING"),
    ("nft", "inet", "filter", "input"),
    ("nft", "inet", "filter", "KUBE-like"),
    ("nft", "ip", "kube-proxy-admin-notes", "input"),
    ("legacy", "ip", "filter", "DOCKERISH"),
    ("legacy", "ip", "filter", "my-ufw-chain"),
])
def test_not_owned(layer, family, table, chain):
    assert owners.of_chain(layer, family, table, chain) is None


def test_remedies():
    assert owners.KUBE_PROXY.remedy == owners.CALICO.remedy == owners.CILIUM.remedy == K8S
    assert owners.DOCKER.remedy == "DOCKER-USER"
    assert owners.FIREWALLD.remedy == "a rich rule (vrrpfw --backend firewalld)"
    assert owners.UFW.remedy == "vrrpfw --backend ufw"
    line = owners.remedy_line(owners.DOCKER, ["nft ip docker-bridges raw-PREROUTING drops VRRP (x)"])
    assert line.startswith("nft ip docker-bridges raw-PREROUTING drops VRRP (x): Docker owns that chain")
    assert line.endswith("allow VRRP with DOCKER-USER") and "\n" not in line


def test_calico_and_cilium_keep_their_jump_first_kube_proxy_and_docker_do_not():
    assert owners.CALICO.keeps_first and owners.CILIUM.keeps_first
    assert not owners.KUBE_PROXY.keeps_first and not owners.DOCKER.keeps_first


# -- a nat chain never drops -------------------------------------------------

def nat_postrouting(text):
    chains = parse_save(text)["nat"]
    policy, rules = chains["POSTROUTING"]
    return BaseChain(ChainId("nft", "ip", "nat", "POSTROUTING"), Hook.POSTROUTING, 100, policy, rules,
                     lambda name: chains[name][1] if name in chains and chains[name][0] is None else None)


def test_kube_postrouting_masquerade_behind_a_mark_test_lets_the_advert_through():
    chain = nat_postrouting(corpus("kube-proxy-iptables.legacy"))
    assert cannot_drop(chain)
    from vrrpfw.judge.rules import Packet

    unknown_mark = Packet(Direction.OUT, "eth1", "224.0.0.18", "192.0.2.1", "new", None)
    cv = judge_chain(chain, OUT, unknown_mark)
    assert cv.state is ChainState.POLICY and cv.state.passes


def test_a_chain_that_can_reach_a_drop_stays_uncertain():
    text = corpus("kube-proxy-iptables.legacy").replace(
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n"
        "-A KUBE-POSTROUTING -m mark --mark 0x1 -j DROP\n")
    assert not cannot_drop(nat_postrouting(text))


# -- the backends leave owned chains alone -------------------------------------

def rule(chain, expr, handle):
    return {"rule": {"family": "ip", "table": "kube-proxy", "chain": chain, "handle": handle, "expr": expr}}


def base(family, table, name, hook, prio, policy="accept"):
    return {"chain": {"family": family, "table": table, "name": name, "type": "filter", "hook": hook,
                      "prio": prio, "policy": policy}}


VRRPFW_IN = {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth1"}}
QUEUE = {"queue": {"num": 1}}  # a target vrrpfw does not judge: the chain may drop


def kube_proxy_nft(extra_rules=()):
    """kube-proxy's nftables table with a chain vrrpfw cannot judge, and the
    admin's inet filter input with policy drop."""
    return {"nftables": [
        {"table": {"family": "ip", "name": "kube-proxy"}},
        base("ip", "kube-proxy", "filter-input", "input", -110),
        rule("filter-input", [QUEUE], 4),
        *extra_rules,
        {"table": {"family": "inet", "name": "filter"}},
        base("inet", "filter", "input", "input", 0, "drop"),
    ]}


def nft_backend():
    return NftablesBackend(Options(persist=False, layers=("nftables",)))


def test_nft_open_never_plans_into_kube_proxys_table_and_says_whose_it_is():
    b = nft_backend()
    (st,) = b.path_statuses(PathModel(nft_chains(kube_proxy_nft())), [IN])
    assert st.state is Runtime.MISSING
    assert st.needs == [ChainId("nft", "inet", "filter", "input")]  # never kube-proxy's filter-input
    assert b.plan([st], "open") == []  # and not the admin's input either: it would not help
    (line,) = b.held()
    assert "nft ip kube-proxy filter-input may drop VRRP" in line and "kube-proxy owns that chain" in line
    assert line.endswith(K8S)
    assert b.blockers()[0] == line


def vrrpfw_rule(handle):
    """vrrpfw's inbound rule for IN, as nft -j lists it, in kube-proxy's filter-input."""
    ours = rule("filter-input", [VRRPFW_IN, {"match": {"op": "==", "left": {"payload": {
        "protocol": "ip", "field": "daddr"}}, "right": "224.0.0.18"}}, {"match": {"op": "==", "left": {
            "payload": {"protocol": "ip", "field": "protocol"}}, "right": 112}}, {"accept": None}], handle)
    ours["rule"]["comment"] = "vrrpfw"
    return ours


def test_close_still_removes_vrrpfws_rule_from_an_owned_chain():
    doc = kube_proxy_nft()
    doc["nftables"].insert(2, vrrpfw_rule(9))  # an older vrrpfw put it at the top of kube-proxy's chain
    b = nft_backend()
    (st,) = b.path_statuses(PathModel(nft_chains(doc)), [IN])
    assert [cid.table for cid, _ in st.ours] == ["kube-proxy"]
    assert [c.action for c in b.plan([st], "close")] == [Action.DELETE]


def test_kube_firewall_mark_drop_is_opened_from_input():
    """kube-proxy iptables mode: KUBE-FIREWALL (jumped to from INPUT) drops
    marked packets; vrrpfw's ACCEPT at the top of INPUT bypasses it."""
    text = corpus("kube-proxy-mark-vrrp.legacy")
    b = IptablesBackend(Options(persist=False, layers=("iptables",)))
    (st,) = b.path_statuses(PathModel(legacy_chains(text)), [IN])
    assert not b.held()
    assert st.needs == [ChainId("legacy", "ip", "filter", "INPUT")]
    assert [c.action for c in b.plan([st], "open")] == [Action.INSERT]


CALICO_HEP = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:cali-INPUT - [0:0]
:cali-from-host-endpoint - [0:0]
:cali-fh-eth1 - [0:0]
-A INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j cali-INPUT
-A cali-INPUT -m comment --comment "cali:FewJpBykm9iJ-YNH" -j cali-from-host-endpoint
-A cali-from-host-endpoint -i eth1 -m comment --comment "cali:j8GMWgwj2ybMsTWx" -g cali-fh-eth1
-A cali-fh-eth1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A cali-fh-eth1 -m comment --comment "Drop if no policies passed packet" -j DROP
COMMIT
"""


@pytest.mark.parametrize("layer", ["legacy", "nft"])
def test_calico_host_endpoint_drop_is_held(layer):
    """Calico's Felix keeps its jump at the top of INPUT: an ACCEPT vrrpfw
    put above it would end up below it at Felix's next refresh."""
    b = (IptablesBackend if layer == "legacy" else NftablesBackend)(
        Options(persist=False, layers=("iptables" if layer == "legacy" else "nftables",)))
    (st,) = b.path_statuses(PathModel(legacy_chains(CALICO_HEP, layer)), [IN])
    assert st.state is Runtime.MISSING and st.needs == []
    assert b.plan([st], "open") == []
    (line,) = b.held()
    where = "legacy filter INPUT" if layer == "legacy" else "nft ip filter INPUT"
    assert line.startswith(
        f"cali-fh-eth1 (reached from {where}, where Calico keeps its jump first) drops VRRP "
        '(-A cali-fh-eth1 -m comment --comment "Drop if no policies passed packet" -j DROP)')
    assert "Calico owns that chain" in line and line.endswith(K8S)


def test_open_neither_deletes_nor_moves_vrrpfws_rules_in_an_owned_chain():
    """Two copies of vrrpfw's rule that an older vrrpfw put into kube-proxy's
    chain: open leaves them (close removes them) and opens the admin's."""
    doc = kube_proxy_nft()
    for handle in (9, 10):
        doc["nftables"].insert(2, vrrpfw_rule(handle))
    b = nft_backend()
    (st,) = b.path_statuses(PathModel(nft_chains(doc)), [IN])
    assert not b.held() and len(st.ours) == 2
    assert [(c.action, c.handle) for c in b.plan([st], "open")] == [
        (Action.INSERT, ChainId("nft", "inet", "filter", "input"))]
    assert [c.action for c in b.plan([st], "close")] == [Action.DELETE, Action.DELETE]


def test_ufw_backend_holds_too():
    from vrrpfw.backends.ufw import UfwBackend
    from vrrpfw.host.hostscan import HostScan, UfwState

    b = UfwBackend(Options(persist=False, layers=("ufw",)), HostScan(ufw=UfwState(True, True, "nft", ["ip"])))
    (st,) = b.path_statuses(PathModel(nft_chains(kube_proxy_nft())), [IN])
    assert st.state is Runtime.MISSING
    (line,) = b.held()
    assert "nft ip kube-proxy filter-input may drop VRRP" in line and line.endswith(K8S)
    assert b.plan([st], "open") == []
