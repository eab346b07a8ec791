"""open on hosts where another program owns part of the firewall: kube-proxy
(iptables mode on iptables-nft, and nftables mode), Docker 28 on
iptables-nft, Calico (iptables mode, a host endpoint) on legacy iptables.
Rulesets shaped as those programs write them, loaded in namespaces, real
adverts.  open never changes the owner's chains or tables (compared byte
for byte, before and after); where the path can be opened from the admin's
own chains the adverts arrive afterwards; where it cannot, open exits 1,
changes nothing and names the owner."""

from __future__ import annotations

import re
from typing import Dict, List

import pytest
from netns import Netns, Pair, inbound, outbound, pair

from vrrpfw.judge import owners
from vrrpfw.prove.traffic import exchange

pytestmark = pytest.mark.integration

PEER = "192.0.2.2"
K8S = "a NetworkPolicy (or the CNI's own policy) that allows IP protocol 112"

# kube-proxy in iptables mode (kubeadm node) on iptables-nft, with a hook
# that marks VRRP from the HA link with KUBE-MARK-DROP's bit: KUBE-FIREWALL
# (jumped to from INPUT) drops it.  nat POSTROUTING jumps to KUBE-POSTROUTING
# (a mark test, then MASQUERADE), which never drops.
KUBE_PROXY_IPTABLES = """*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-IPTABLES-HINT - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-PROXY-CANARY - [0:0]
-A PREROUTING -i {IF} -p vrrp -m comment --comment "quarantine HA link" -j MARK --set-xmark 0x8000/0x8000
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-MARK-DROP - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-SEP-6E7XQMQ4RAYOWTTM - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-6E7XQMQ4RAYOWTTM -s 198.51.100.1/32 -m comment --comment "default/kubernetes:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-6E7XQMQ4RAYOWTTM -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 198.51.100.1:6443
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ
-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 198.51.100.1:6443" -j KUBE-SEP-6E7XQMQ4RAYOWTTM
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns has no endpoints" -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""  # noqa: E501

# kube-proxy in nftables mode (1.31+), as it writes its table: sets and
# verdict maps keyed ip daddr . meta l4proto . th dport, service and
# endpoint chains; plus the admin's inet filter with an input policy drop.
# {CLUSTER_IPS} are the ClusterIPs cluster-ips-check rejects.
KUBE_PROXY_NFT = """table ip kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips {
		type ipv4_addr
		comment "Active ClusterIPs"
		elements = { {CLUSTER_IPS} }
	}
	set nodeport-ips {
		type ipv4_addr
		comment "IPs that accept NodePort traffic"
		elements = { 192.0.2.1 }
	}
	map firewall-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "destinations that are subject to LoadBalancerSourceRanges"
	}
	map no-endpoint-nodeports {
		type inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to service nodeports with no endpoints"
		elements = { tcp . 30080 comment "default/web:http" : drop }
	}
	map no-endpoint-services {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to services with no endpoints"
		elements = { 10.96.0.10 . udp . 53 comment "kube-system/kube-dns:dns" : goto reject-chain }
	}
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
		elements = { 10.96.0.1 . tcp . 443 comment "default/kubernetes:https" : goto service-2QRHZV4L-default/kubernetes/tcp/https }
	}
	map service-nodeports {
		type inet_proto . inet_service : verdict
		comment "NodePort traffic"
	}
	chain filter-prerouting {
		type filter hook prerouting priority -110; policy accept;
		ct state new jump firewall-check
	}
	chain filter-input {
		type filter hook input priority -110; policy accept;
		ct state new jump nodeport-endpoints-check
		ct state new jump service-endpoints-check
	}
	chain filter-forward {
		type filter hook forward priority -110; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}
	chain filter-output {
		type filter hook output priority -110; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump firewall-check
	}
	chain filter-output-post-dnat {
		type filter hook output priority -90; policy accept;
		ct state new jump cluster-ips-check
	}
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}
	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}
	chain nodeport-endpoints-check {
		ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
	}
	chain service-endpoints-check {
		ip daddr . meta l4proto . th dport vmap @no-endpoint-services
	}
	chain firewall-check {
		ip daddr . meta l4proto . th dport vmap @firewall-ips
	}
	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
	}
	chain masquerading {
		meta mark & 0x00004000 == 0x00000000 return
		meta mark set meta mark ^ 0x00004000
		masquerade fully-random
	}
	chain cluster-ips-check {
		ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
	}
	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}
	chain reject-chain {
		comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
		reject
	}
	chain endpoint-5OJB2KTY-default/kubernetes/tcp/https__198.51.100.1/6443 {
		ip saddr 198.51.100.1 jump mark-for-masquerade
		meta l4proto tcp dnat to 198.51.100.1:6443
	}
	chain service-2QRHZV4L-default/kubernetes/tcp/https {
		ip daddr 10.96.0.1 tcp dport 443 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-default/kubernetes/tcp/https__198.51.100.1/6443 }
	}
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		tcp dport 22 accept
	}
}
"""  # noqa: E501

# Docker 28 on iptables-nft (one container publishing 8080), and the
# admin's INPUT policy DROP.
DOCKER = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-BRIDGE - [0:0]
:DOCKER-CT - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-FORWARD
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER ! -i docker0 -o docker0 -j DROP
-A DOCKER-BRIDGE -o docker0 -j DOCKER
-A DOCKER-CT -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -j DOCKER-CT
-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-FORWARD -j DOCKER-BRIDGE
-A DOCKER-FORWARD -i docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
COMMIT
"""

# Calico (iptables mode, legacy) with a host endpoint on the HA link whose
# policies allow ssh only: Felix's "Drop if no policies passed packet".
CALICO = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:cali-INPUT - [0:0]
:cali-OUTPUT - [0:0]
:cali-from-host-endpoint - [0:0]
:cali-to-host-endpoint - [0:0]
:cali-fh-{IF} - [0:0]
:cali-pi-_ssh-only - [0:0]
-A INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j cali-INPUT
-A OUTPUT -m comment --comment "cali:tVnHkvAo15HuiPy0" -j cali-OUTPUT
-A cali-INPUT -m comment --comment "cali:FewJpBykm9iJ-YNH" -m mark --mark 0x10000/0x10000 -j ACCEPT
-A cali-INPUT -m comment --comment "cali:hder3ARWznqqv8Va" -j MARK --set-xmark 0x0/0xf0000
-A cali-INPUT -m comment --comment "cali:JOnGuKrmFaQ4TyfU" -j cali-from-host-endpoint
-A cali-INPUT -m comment --comment "cali:2rWEnfNaSFnPQE8l" -m comment --comment "Host endpoint policy accepted packet." -m mark --mark 0x10000/0x10000 -j ACCEPT
-A cali-OUTPUT -m comment --comment "cali:Mq1_rAdXXH3YkrzW" -m mark --mark 0x10000/0x10000 -j ACCEPT
-A cali-from-host-endpoint -i {IF} -m comment --comment "cali:j8GMWgwj2ybMsTWx" -g cali-fh-{IF}
-A cali-fh-{IF} -m comment --comment "cali:8fuF6f1L2CVjvbTP" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A cali-fh-{IF} -m comment --comment "cali:Zl6Yu8cVqJPfSD9n" -m conntrack --ctstate INVALID -j DROP
-A cali-fh-{IF} -m comment --comment "cali:5Kz9sT2PwQ0nXJ7g" -j MARK --set-xmark 0x0/0x20000
-A cali-fh-{IF} -m comment --comment "cali:xm2YIp1_bBQ4kLwU" -j cali-pi-_ssh-only
-A cali-fh-{IF} -m comment --comment "cali:3bF_7nVRl3jA6x9U" -m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-fh-{IF} -m comment --comment "cali:mL8gGmRRs6O5XMpr" -m comment --comment "Drop if no policies passed packet" -j DROP
-A cali-pi-_ssh-only -p tcp -m comment --comment "cali:9Y0bq1yJxX2uPzvL" -m multiport --dports 22 -j MARK --set-xmark 0x10000/0x10000
-A cali-pi-_ssh-only -m comment --comment "cali:Q1k2x7R8lD4mJ0aE" -m mark --mark 0x10000/0x10000 -j RETURN
COMMIT
"""  # noqa: E501

COUNTERS = re.compile(r" \[\d+:\d+\]")


def save(ns: Netns, tool: str, table: str) -> List[str]:
    """``TOOL-save -t TABLE`` as lines, without comments and counters."""
    out = ns.run(f"{tool}-save", "-t", table).stdout
    return [COUNTERS.sub("", line) for line in out.splitlines() if not line.startswith("#")]


def owned(lines: List[str]) -> Dict[str, List[str]]:
    """The lines of each chain another program owns (its declaration and
    its rules), by chain."""
    out: Dict[str, List[str]] = {}
    for line in lines:
        m = re.match(r"(?::|-A )(\S+)", line)
        if m and owners.of_chain_name(m[1]) is not None:
            out.setdefault(m[1], []).append(line)
    return out


def load_iptables(ns: Netns, tool: str, text: str) -> None:
    ns.run(f"{tool}-restore", "-w", stdin=text)


def open_json(p: Pair, *extra: str) -> tuple:
    rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist", *extra)
    return rc, out


@pytest.mark.needs("iptables-nft")
def test_kube_proxy_iptables_mode_is_opened_from_input_and_its_chains_stay_as_they_are():
    """KUBE-FIREWALL's mark drop is bypassed by vrrpfw's ACCEPT at the top of
    INPUT; KUBE-* chains and the whole nat table (KUBE-POSTROUTING's
    MASQUERADE behind a mark test never drops) are left as they were."""
    with pair("vkpi") as p:
        load_iptables(p.host, "iptables-nft", KUBE_PROXY_IPTABLES.replace("{IF}", p.host_if))
        before = {t: save(p.host, "iptables-nft", t) for t in ("filter", "nat", "mangle")}
        assert owned(before["filter"])["KUBE-FIREWALL"]
        got = inbound(p)
        assert got["wire"] == 20 and got["delivered"] == 0, got  # KUBE-FIREWALL drops the marked adverts

        rc, out = open_json(p)
        after = {t: save(p.host, "iptables-nft", t) for t in ("filter", "nat", "mangle")}
        assert rc == 0, out
        assert not out["blockers"], out["blockers"]
        assert after["nat"] == before["nat"]  # nothing in nat POSTROUTING, nor anywhere in nat
        assert after["mangle"] == before["mangle"]
        assert owned(after["filter"]) == owned(before["filter"])
        added = [line for line in after["filter"] if line not in before["filter"]]
        # vrrpfw's rules only, in the admin's INPUT (and OUTPUT, while the
        # evaluator cannot tell KUBE-FIREWALL's mark test on output)
        assert all(line.startswith(("-A INPUT ", "-A OUTPUT ")) and "vrrpfw" in line for line in added), added
        (mine,) = [line for line in added if line.startswith("-A INPUT ")]
        assert after["filter"].index(mine) < after["filter"].index("-A INPUT -j KUBE-FIREWALL")

        assert inbound(p)["delivered"] == 20
        assert outbound(p)["delivered"] == 20


def kube_proxy_nft(cluster_ips: str = "10.96.0.1, 10.96.0.10") -> str:
    return KUBE_PROXY_NFT.replace("{CLUSTER_IPS}", cluster_ips)


def nft_table(ns: Netns, family: str, name: str) -> str:
    return ns.run("nft", "-j", "list", "table", family, name).stdout


def test_kube_proxy_nftables_mode_table_is_never_written():
    """open leaves kube-proxy's table byte for byte as it was.  vrrpfw
    judges every kube-proxy chain (its verdict maps keyed with ``ip daddr .
    meta l4proto . th dport`` never take an advert: the protocol part
    decides), so it opens the admin's inet filter input and the adverts
    arrive."""
    with pair("vkpn") as p:
        p.host.run("nft", "-f", "-", stdin=kube_proxy_nft())
        kube_before = nft_table(p.host, "ip", "kube-proxy")
        got = inbound(p)
        assert got["wire"] == 20 and got["delivered"] == 0, got  # the admin's policy drop

        rc_check, checked = p.host.vrrpfw_json("check", "--iface", p.host_if, "--no-persist")
        assert not [b for b in checked["blockers"] if "kube-proxy owns" in b], checked
        assert all(r["runtime"] != "uncertain" for r in checked["rules"]), checked["rules"]
        rc, out = open_json(p)
        assert nft_table(p.host, "ip", "kube-proxy") == kube_before
        assert rc_check == 1 and rc == 0, out
        assert all(" kube-proxy " not in cmd for cmd in out["planned"]), out["planned"]
        assert inbound(p)["delivered"] == 20
        assert outbound(p)["delivered"] == 20


def test_kube_proxy_nftables_mode_that_rejects_vrrp_is_named_and_left_alone(tmp_path):
    """A service CIDR overlapping the HA link: the peer's address is a
    ClusterIP, and kube-proxy's cluster-ips-check (on output, priority
    -90) rejects the unicast adverts to it.  No ACCEPT in another base
    chain can save them: open exits 1, names kube-proxy's chain and the
    remedy, and changes nothing."""
    with pair("vkpr") as p:
        p.host.run("nft", "-f", "-", stdin=kube_proxy_nft(f"10.96.0.1, {PEER}"))
        ruleset_before = p.host.run("nft", "list", "ruleset").stdout
        sent = exchange(p.host.ns, p.host_if, p.peer.ns, p.peer_if, 10, PEER).to_dict()
        assert sent["delivered"] == 0 and sent["wire"] == 0, sent

        rc, out = open_json(p, "--peer", PEER)
        assert rc == 1, out
        line = next(b for b in out["blockers"] if "kube-proxy owns" in b)
        assert "nft ip kube-proxy filter-output-post-dnat drops VRRP (cluster-ips-check: " in line
        assert line.endswith(K8S)
        assert not out["changed"] and not out["planned"]
        assert p.host.run("nft", "list", "ruleset").stdout == ruleset_before
        sent = exchange(p.host.ns, p.host_if, p.peer.ns, p.peer_if, 10, PEER).to_dict()
        assert sent["delivered"] == 0, sent

        text = p.host.vrrpfw("open", "--iface", p.host_if, "--peer", PEER, "--no-persist").stdout
        assert [ln for ln in text.splitlines() if "kube-proxy owns" in ln] == [f"blocked: {line}"]

        saved = tmp_path / "nftables.conf"
        saved.write_text("flush ruleset\n" + kube_proxy_nft(f"10.96.0.1, {PEER}"))
        original = saved.read_text()
        for dry in ([], ["--dry-run"]):
            rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--peer", PEER,
                                         f"--persist-file={saved}", *dry)
            assert rc == 1 and not out["changed"] and not out["diff"], out
            assert saved.read_text() == original
        assert p.host.run("nft", "list", "ruleset").stdout == ruleset_before


@pytest.mark.needs("iptables-nft")
def test_docker_chains_stay_as_they_are():
    """Docker 28 on iptables-nft: open puts vrrpfw's ACCEPT in the admin's
    INPUT; DOCKER, DOCKER-FORWARD, DOCKER-ISOLATION-STAGE-*, DOCKER-CT,
    DOCKER-BRIDGE, DOCKER-USER and the raw and nat tables are unchanged."""
    with pair("vdck") as p:
        load_iptables(p.host, "iptables-nft", DOCKER)
        before = {t: save(p.host, "iptables-nft", t) for t in ("filter", "nat", "raw")}
        assert set(owned(before["filter"])) >= {"DOCKER", "DOCKER-FORWARD", "DOCKER-ISOLATION-STAGE-1",
                                                 "DOCKER-CT", "DOCKER-BRIDGE"}
        got = inbound(p)
        assert got["wire"] == 20 and got["delivered"] == 0, got

        rc, out = open_json(p)
        after = {t: save(p.host, "iptables-nft", t) for t in ("filter", "nat", "raw")}
        assert rc == 0, out
        assert after["nat"] == before["nat"] and after["raw"] == before["raw"]
        assert owned(after["filter"]) == owned(before["filter"])
        user = [line for line in after["filter"] if "DOCKER-USER" in line]
        assert user == [":DOCKER-USER -", "-A FORWARD -j DOCKER-USER"], user
        assert inbound(p)["delivered"] == 20
        assert outbound(p)["delivered"] == 20


def test_calico_host_endpoint_drop_is_named_and_left_alone():
    """Calico's host endpoint policy drops VRRP in cali-fh-IF, reached from
    INPUT through cali-INPUT.  Felix keeps its jump at the top of INPUT, so
    an ACCEPT above it would not stay: open exits 1, names Calico and the
    remedy, and changes nothing."""
    with pair("vcal") as p:
        load_iptables(p.host, "iptables-legacy", CALICO.replace("{IF}", p.host_if))
        before = p.host.legacy_save()
        got = inbound(p)
        assert got["wire"] == 20 and got["delivered"] == 0, got

        rc, out = open_json(p)
        assert rc == 1, out
        (line,) = [b for b in out["blockers"] if "Calico owns" in b]
        where = f"cali-fh-{p.host_if} (reached from legacy filter INPUT, where Calico keeps its jump first)"
        assert line.startswith((f"{where} drops VRRP (", f"{where} may drop VRRP (")), line
        assert '"Drop if no policies passed packet" -j DROP)' in line
        assert line.endswith(K8S)
        assert not out["changed"] and not out["planned"]
        assert p.host.legacy_save() == before
        got = inbound(p)
        assert got["wire"] == 20 and got["delivered"] == 0, got
