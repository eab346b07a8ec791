"""Two real keepalived nodes: split brain while firewalld blocks VRRP,
exactly one virtual-IP holder soon after ``vrrpfw open``."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from fwharness import firewalld_host

pytestmark = [pytest.mark.integration, pytest.mark.needs("firewalld", "keepalived")]

VIP = "192.0.2.100"
CONF = """global_defs {{
  router_id {name}
  enable_script_security
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface {iface}
  virtual_router_id 51
  priority {prio}
  advert_int 1
  virtual_ipaddress {{
    {vip}/24
  }}
}}
"""


def start_keepalived(ns, root, name, iface, prio):
    conf = os.path.join(root, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(name=name, iface=iface, prio=prio, vip=VIP))
    return ns.popen("keepalived", "-n", "-l", "-P", "-G", "-f", conf,
                    "-p", os.path.join(root, f"{name}.pid"), "-r", os.path.join(root, f"{name}-vrrp.pid"))


def holds_vip(ns, iface):
    return f"inet {VIP}/" in ns.run("ip", "-4", "addr", "show", "dev", iface).stdout


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.2)
    return None


def test_split_brain_until_vrrpfw_opens_firewalld(tmp_path):
    with firewalld_host(tmp_path, "nftables") as fw:
        p = fw.pair
        root = str(tmp_path)
        nodes = [start_keepalived(p.host, root, "node_a", p.host_if, 100),
                 start_keepalived(p.peer, root, "node_b", p.peer_if, 200)]
        try:
            both = wait_for(lambda: holds_vip(p.host, p.host_if) and holds_vip(p.peer, p.peer_if), 20)
            assert both is not None, "expected split brain while firewalld rejects VRRP"
            time.sleep(3)  # and it stays that way
            assert holds_vip(p.host, p.host_if) and holds_vip(p.peer, p.peer_if)

            opened = time.monotonic()
            assert fw.vrrpfw("open", "--iface", p.host_if).returncode == 0
            one = wait_for(lambda: holds_vip(p.peer, p.peer_if) and not holds_vip(p.host, p.host_if), 10)
            assert one is not None, "node_a kept the virtual IP after vrrpfw open"
            print(f"converged {one - opened:.1f}s after open")
            time.sleep(3)  # and stays converged
            assert holds_vip(p.peer, p.peer_if) and not holds_vip(p.host, p.host_if)
        finally:
            for node in nodes:
                node.terminate()
                try:
                    node.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.kill()
                    node.wait()
