"""Issue 10's acceptance test: real keepalived pairs in namespaces, for
every firewall (legacy iptables, iptables-nft, nftables, firewalld on both
backends) and every way keepalived talks (VRRPv3 over IPv6, IPv4 unicast
peers, IPv4 AH; IPv4 multicast as the baseline, opened with ``--iface``).

Each case walks the story an admin lives through (see tests/kapair.py for
the pair: two instances, node b masters VIP 0, node a masters VIP 1):

(a) firewall closed: both nodes are master of both instances (split brain);
(b) ``vrrpfw open`` on both nodes: each node keeps only the address it
    masters, the lower-priority side is backup;
(d1) ``vrrpfw check --listen 3`` on both nodes: delivered (exit 0);
(c) node b dies (SIGKILL, no goodbye advert): node a takes VIP 0 within 4 s;
(d2) ``vrrpfw close`` on node b: its listener, still hearing node a's
    adverts, says "dropped here" (exit 1).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List

import pytest
from kapair import FIREWALLS, Node, Pair, keepalived_pair, parallel, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.needs("keepalived", "iptables-nft", "firewalld")]

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


def open_both(p: Pair) -> None:
    """``vrrpfw open`` on both nodes at once; then the pair must converge
    (what matters), then vrrpfw must have said OK (exit 0)."""
    runs = parallel(lambda n: n.vrrpfw("open", *open_args(p, n)), p.nodes)
    said = "\n".join(f"vrrpfw open on {n.name} ({r.returncode}): {r.stdout}\n{r.stderr}"
                     for n, r in zip(p.nodes, runs))
    assert_converged(p, said)
    assert all(r.returncode == 0 for r in runs), said


def assert_converged(p: Pair, said: str) -> None:
    """Each node holds exactly the address it masters, and keeps it."""
    want = {"a": [p.vips[1]], "b": [p.vips[0]]}
    assert wait_for(lambda: p.holders() == want, 5) is not None, \
        f"no convergence after vrrpfw open: {p.holders()}\n{said}\n{p.logs()}"
    time.sleep(1.2)
    assert p.holders() == want, f"convergence did not hold: {p.holders()}\n{said}\n{p.logs()}"


def assert_listen_delivered(p: Pair) -> None:
    heard = parallel(lambda n: n.listen(3), p.nodes)
    for node, (rc, report, text) in zip(p.nodes, heard):
        verdicts = {s.get("verdict") for s in report.get("sources", [])}
        assert rc == 0 and verdicts == {"delivered"}, f"check --listen on {node.name} ({rc}):\n{text}"


def assert_failover(p: Pair) -> float:
    """Node b (master of VIP 0) dies; the seconds until node a holds VIP 0."""
    killed = time.monotonic()
    p.b.crash_keepalived()
    took = wait_for(lambda: p.a.holds(p.vips[0]), 10)
    assert took is not None, f"node a never took {p.vips[0]}\n{p.logs()}"
    assert took - killed <= FAILOVER_LIMIT, f"failover took {took - killed:.1f}s\n{p.logs()}"
    return took - killed


def assert_listen_dropped_after_close(p: Pair) -> None:
    closed = p.b.vrrpfw("close", *open_args(p, p.b))
    assert closed.returncode == 0, f"vrrpfw close on b: {closed.stdout}\n{closed.stderr}"
    rc, report, text = p.b.listen(3)
    verdicts = {s.get("verdict") for s in report.get("sources", [])}
    assert rc == 1 and "dropped here" in verdicts, f"check --listen on closed b ({rc}):\n{text}"


def story(firewall: str, scenario: str, root: str) -> None:
    with keepalived_pair(firewall, scenario, root) as p:
        p.start()
        assert_split_brain(p)
        open_both(p)
        assert_listen_delivered(p)
        took = assert_failover(p)
        print(f"{firewall}/{scenario}: failover {took:.1f}s")
        assert_listen_dropped_after_close(p)


NEW = ("ipv6", "ipv4-unicast", "ipv4-ah")
CASES = [pytest.param(fw, sc, id=f"{fw}-{sc}") for fw in FIREWALLS for sc in ("ipv4-multicast", *NEW)]


@pytest.mark.parametrize("firewall, scenario", CASES)
def test_keepalived_pair(firewall: str, scenario: str, tmp_path: Path) -> None:
    story(firewall, scenario, str(tmp_path))
