"""keepalived.conf texts with two vrrp_instances sharing a VRID: those
``keepalived -t`` refuses (one interface, one family, both multicast or
unicast with a peer or source in common) and those it accepts.  Read by
tests/unit/test_request_refusals.py (vrrpfw refuses exactly the first) and
tests/integration/keepalived/test_vrid_clash_keepalived.py (keepalived does
as the names say).  No vrrpfw import: the integration test runs on one
library end."""

from __future__ import annotations


def instance(name, vrid=51, iface="eth1", vip="192.0.2.10", peers=(), src=None):
    peer_block = (" unicast_peer {\n" + "".join(f"  {p}\n" for p in peers) + " }\n") if peers else ""
    if src is not None:
        peer_block += f" unicast_src_ip {src}\n"
    return (f"vrrp_instance {name} {{\n interface {iface}\n virtual_router_id {vrid}\n{peer_block}"
            f" virtual_ipaddress {{\n  {vip}\n }}\n}}\n")


VRID_CLASHES = {
    "multicast": instance("A") + instance("B", vip="192.0.2.11"),
    "multicast-ipv6": instance("A", vip="fd00::10") + instance("B", vip="fd00::11"),
    "unicast-same-peer": (instance("A", peers=["192.0.2.2"])
                          + instance("B", vip="192.0.2.11", peers=["192.0.2.2"])),
    "unicast-shared-peer": (instance("A", peers=["192.0.2.2"])
                            + instance("B", vip="192.0.2.11", peers=["192.0.2.3", "192.0.2.2"])),
    "unicast-same-src": (instance("A", peers=["192.0.2.2"], src="192.0.2.5")
                         + instance("B", vip="192.0.2.11", peers=["192.0.2.2"], src="192.0.2.5")),
}
# keepalived -t accepts these (tests/integration/keepalived/test_vrid_clash_keepalived.py)
VRID_SHARED_BUT_ACCEPTED = {
    "other-family": instance("A") + instance("B", vip="fd00::11"),
    "other-interface": instance("A") + instance("B", iface="eth0", vip="192.0.2.11"),
    "unicast-beside-multicast": instance("A", peers=["192.0.2.2"]) + instance("B", vip="192.0.2.11"),
    "unicast-disjoint-peers": (instance("A", peers=["192.0.2.2"])
                               + instance("B", vip="192.0.2.11", peers=["192.0.2.3"])),
    "other-vrid": instance("A") + instance("B", vrid=52, vip="192.0.2.11"),
    "unicast-other-src": (instance("A", peers=["192.0.2.2"], src="192.0.2.1")
                          + instance("B", vip="192.0.2.11", peers=["192.0.2.2"], src="192.0.2.5")),
}
