"""A unicast peer that is a broadcast address of the interface's subnet is
refused (exit 2, one line, nothing changed), read from the real interface
in the namespace the run acts in: its secondary addresses too, and none on
a /31 or /32.  keepalived cannot send there ("Cant send advert to
192.0.2.255 (Permission denied)"); the subnet's first address it can, and
vrrpfw takes it."""

from __future__ import annotations

import pytest
from netns import pair

pytestmark = pytest.mark.integration


def test_broadcast_peers_are_refused_before_anything_changes(tmp_path):
    with pair("vrpb") as p:
        h = p.host
        h.run("ip", "addr", "add", "198.51.100.1/28", "dev", p.host_if)  # a secondary subnet
        h.run("ip", "addr", "add", "198.51.100.64/31", "dev", p.host_if)  # point to point: no broadcast
        h.run("ip", "addr", "add", "198.51.100.130/32", "dev", p.host_if)
        saved = tmp_path / "rules.v4"
        saved.write_text("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                         "COMMIT\n")
        original = saved.read_bytes()
        h.ipt("-P", "INPUT", "DROP")
        before = h.legacy_save()
        for peer, net in (("192.0.2.255", "192.0.2.0/24"), ("198.51.100.15", "198.51.100.0/28")):
            proc = h.vrrpfw("open", "--iface", p.host_if, "--peer", peer, "--backend", "iptables",
                            "--persist-file", str(saved))
            assert proc.returncode == 2, proc.stdout + proc.stderr
            assert proc.stderr.splitlines() == [
                f"vrrpfw: error: --peer {peer} is the broadcast address of {net} on {p.host_if}, not a "
                "node's address: keepalived cannot send adverts to it"]
            assert h.legacy_save() == before and saved.read_bytes() == original
        for peer in ("192.0.2.0", "198.51.100.65", "198.51.100.131"):
            proc = h.vrrpfw("open", "--iface", p.host_if, "--peer", peer, "--backend", "iptables",
                            "--persist-file", str(saved), "--dry-run")
            assert proc.returncode in (0, 1), proc.stdout + proc.stderr
            assert h.legacy_save() == before
