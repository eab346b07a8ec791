"""Issue 10's acceptance test: real keepalived pairs in namespaces, for
every firewall (legacy iptables, iptables-nft, nftables, firewalld on both
backends) and every way keepalived talks (VRRPv3 over IPv6, IPv4 unicast
peers, IPv4 AH; IPv4 multicast as the baseline, opened with ``--iface``).

Each case walks the story an admin lives through (see tests/kapair.py for
the pair: two instances, node b masters VIP 0, node a masters VIP 1):

(a) firewall closed: both nodes are master of both instances (split brain);
(b) ``vrrpfw open`` on both nodes: each node keeps only the address it
    masters, the lower-priority side is backup;
(d1) ``vrrpfw check --listen 3`` on both nodes: delivered (exit 0), and
    the convergence holds meanwhile;
(c) node b dies (SIGKILL, no goodbye advert): node a takes VIP 0 within 4 s;
(d2) meanwhile (the failover's seconds are spent waiting anyway) ``vrrpfw
    close`` on node b: its listener, hearing node a's adverts, says
    "dropped here" (exit 1).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from kapair import FIREWALLS, Node, Pair, keepalived_pair, parallel, processes_naming, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.needs("keepalived")]

FAILOVER_LIMIT = 4.0  # seconds, with advert_int 1 (master down interval 3 s + skew)
SPLIT_SECONDS = 10  # a node becomes master ~3.6 s after keepalived starts


def open_args(p: Pair, node: Node) -> List[str]:
    """``--iface`` for the baseline (works since issue 1), the keepalived
    configuration itself for the scenarios issue 10 adds."""
    if p.scenario.name == "ipv4-multicast":
        return ["--iface", node.iface]
    return ["--keepalived-conf", node.conf]


def assert_split_brain(p: Pair) -> None:
    both = {n.name: list(p.vips) for n in p.nodes}
    assert wait_for(lambda: p.holders() == both, SPLIT_SECONDS) is not None, \
        f"expected split brain with the firewall closed, got {p.holders()}\n{p.logs()}"
    time.sleep(1.2)  # one more advert interval: a delivered advert would end it now
    assert p.holders() == both, f"split brain ended with the firewall closed\n{p.logs()}"


def open_both(p: Pair) -> str:
    """``vrrpfw open`` on both nodes at once; then the pair must converge
    (what matters), then vrrpfw must have said OK (exit 0).  Returns what
    vrrpfw said, for later messages."""
    runs = parallel(lambda n: n.vrrpfw("open", *open_args(p, n)), p.nodes)
    said = "\n".join(f"vrrpfw open on {n.name} ({r.returncode}): {r.stdout}\n{r.stderr}"
                     for n, r in zip(p.nodes, runs))
    assert wait_for(lambda: p.holders() == converged(p), 5) is not None, \
        f"no convergence after vrrpfw open: {p.holders()}\n{said}\n{p.logs()}"
    assert all(r.returncode == 0 for r in runs), said
    return said


def converged(p: Pair) -> Dict[str, List[str]]:
    """Each node holds exactly the address it masters."""
    return {"a": [p.vips[1]], "b": [p.vips[0]]}


def assert_listen_delivered(p: Pair, said: str) -> None:
    """``check --listen 3`` on both nodes: every advert delivered; the 3 s
    also show the convergence holds."""
    heard = parallel(lambda n: n.listen(3), p.nodes)
    for node, (rc, report, text) in zip(p.nodes, heard):
        verdicts = {s.get("verdict") for s in report.get("sources", [])}
        assert rc == 0 and verdicts == {"delivered"}, f"check --listen on {node.name} ({rc}):\n{text}"
    assert p.holders() == converged(p), f"convergence did not hold: {p.holders()}\n{said}\n{p.logs()}"


def close_and_listen(node: Node, args: List[str]) -> Tuple[int, dict, str]:
    """``vrrpfw close`` on ``node``, then its ``check --listen 3``."""
    closed = node.vrrpfw("close", *args)
    assert closed.returncode == 0, f"vrrpfw close on {node.name}: {closed.stdout}\n{closed.stderr}"
    return node.listen(3)


def assert_failover_and_dropped(p: Pair) -> float:
    """Node b (master of VIP 0) dies: node a must hold VIP 0 within
    FAILOVER_LIMIT.  Meanwhile b's firewall is closed again with ``vrrpfw
    close`` and b's listener, hearing node a's adverts, must say "dropped
    here" (exit 1).  Returns the failover's seconds."""
    killed = time.monotonic()
    p.b.crash_keepalived()
    with ThreadPoolExecutor(max_workers=1) as pool:
        listening = pool.submit(close_and_listen, p.b, open_args(p, p.b))
        took = wait_for(lambda: p.a.holds(p.vips[0]), 10)
        rc, report, text = listening.result()
    assert took is not None, f"node a never took {p.vips[0]}\n{p.logs()}"
    assert took - killed <= FAILOVER_LIMIT, f"failover took {took - killed:.1f}s\n{p.logs()}"
    verdicts = {s.get("verdict") for s in report.get("sources", [])}
    assert rc == 1 and "dropped here" in verdicts, f"check --listen on closed b ({rc}):\n{text}"
    return took - killed


def story(firewall: str, scenario: str, root: str) -> None:
    with keepalived_pair(firewall, scenario, root) as p:
        p.start()
        assert_split_brain(p)
        said = open_both(p)
        assert_listen_delivered(p, said)
        took = assert_failover_and_dropped(p)
        print(f"{firewall}/{scenario}: failover {took:.1f}s")


NEW = ("ipv6", "ipv4-unicast", "ipv4-ah")
NEEDS = {"iptables-nft": "iptables-nft", "firewalld-nftables": "firewalld", "firewalld-iptables": "firewalld"}
# Known gaps, each for its exact case; strict, so a fix turns them into failures to remove.
GAPS: Dict[Tuple[str, str], str] = {
}


def case(firewall: str, scenario: str) -> object:
    marks = [pytest.mark.needs(NEEDS[firewall])] if firewall in NEEDS else []
    if (firewall, scenario) in GAPS:
        marks.append(pytest.mark.xfail(strict=True, reason=GAPS[firewall, scenario]))
    return pytest.param(firewall, scenario, id=f"{firewall}-{scenario}", marks=marks)


CASES = [case(fw, sc) for fw in FIREWALLS for sc in ("ipv4-multicast", *NEW)]


@pytest.mark.parametrize("firewall, scenario", CASES)
def test_keepalived_pair(firewall: str, scenario: str, tmp_path: Path) -> None:
    story(firewall, scenario, str(tmp_path))


def test_stateful_firewall_passes_unicast_vrrp_as_replies(tmp_path: Path) -> None:
    """Why kapair untracks unicast VRRP (NFT_NOTRACK): with the closed
    firewall's ESTABLISHED rule, a unicast pair converges without any VRRP
    rule at all, because conntrack keys VRRP on the two addresses and takes
    each peer's adverts for replies to this node's own.  Should this ever
    fail, the untracking is no longer needed and the unicast split brain
    shows on its own."""
    with keepalived_pair("nftables", "ipv4-unicast", str(tmp_path), untrack_unicast=False) as p:
        p.start()
        want = {"a": [p.vips[1]], "b": [p.vips[0]]}
        assert wait_for(lambda: p.holders() == want, SPLIT_SECONDS) is not None, \
            f"a stateful firewall kept the unicast pair apart: {p.holders()}\n{p.logs()}"
        time.sleep(1.2)
        assert p.holders() == want, f"{p.holders()}\n{p.logs()}"


@pytest.mark.needs("firewalld")
def test_pair_leaves_nothing_behind_when_a_test_fails(tmp_path: Path) -> None:
    """The harness's promise: a failing test still removes both namespaces,
    both keepalived, both firewalld and their D-Bus daemons (the firewall
    with the most to leave behind)."""
    pair = Pair("firewalld-nftables", "ipv4-multicast", str(tmp_path))
    with pytest.raises(RuntimeError, match="a test failed"):
        with pair:
            pair.start()
            seen = " ".join(cmd for _, cmd in processes_naming(str(tmp_path)))
            for daemon in ("keepalived", "firewalld", "dbus-daemon"):
                assert daemon in seen, f"the probe for leftovers misses {daemon}"
            raise RuntimeError("a test failed")
    assert pair.leftovers() == []
