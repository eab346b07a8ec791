"""Two vrrp_instances sharing a VRID: vrrpfw refuses exactly the
configurations ``keepalived -t`` refuses (one interface, one family, both
multicast or unicast with a peer in common) and reads the others (another
family or interface, unicast beside multicast, disjoint peers), run in a
throw-away namespace whose veths keepalived can find (with addresses:
keepalived tells unicast instances apart by their source address)."""

from __future__ import annotations

import os
import subprocess
from typing import Iterator

import pytest
from vrid_clashes import VRID_CLASHES, VRID_SHARED_BUT_ACCEPTED

from vrrpfw.errors import InputError
from vrrpfw.keepalived.conf import parse

# one_end: reaches no typer, rich, iptc or dbus (tests/one_end_guard.py)
pytestmark = [pytest.mark.integration, pytest.mark.needs("keepalived"), pytest.mark.one_end]


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"vrrpfw-vrid-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for a, b in (("eth0", "peer0"), ("eth1", "peer1")):
            subprocess.run(["ip", "-n", name, "link", "add", a, "type", "veth", "peer", "name", b],
                           check=True)
            for dev in (a, b):
                subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        # keepalived compares unicast instances by their source address: give eth1 some
        for cidr in ("192.0.2.1/24", "192.0.2.5/24"):
            subprocess.run(["ip", "-n", name, "addr", "add", cidr, "dev", "eth1"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def keepalived_accepts(ns: str, path: str) -> bool:
    p = subprocess.run(["ip", "netns", "exec", ns, "keepalived", "-t", "-f", path],
                       capture_output=True, text=True, timeout=60)
    return p.returncode == 0


@pytest.mark.parametrize("name", sorted(VRID_CLASHES))
def test_vrid_clashes_keepalived_refuses_are_refused(netns, tmp_path, name):
    path = tmp_path / f"{name}.conf"
    path.write_text(VRID_CLASHES[name])
    assert not keepalived_accepts(netns, str(path))
    with pytest.raises(InputError, match="keepalived refuses"):
        parse(str(path))


@pytest.mark.parametrize("name", sorted(VRID_SHARED_BUT_ACCEPTED))
def test_shared_vrids_keepalived_accepts_are_read(netns, tmp_path, name):
    path = tmp_path / f"{name}.conf"
    path.write_text(VRID_SHARED_BUT_ACCEPTED[name])
    assert keepalived_accepts(netns, str(path))
    assert [i.name for i in parse(str(path)).instances] == ["A", "B"]
