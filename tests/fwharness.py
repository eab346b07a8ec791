"""firewalld in a namespace, on a private D-Bus system bus, with throw-away
configuration: the host's firewalld, /etc/firewalld and system bus are
never touched.  Clients (vrrpfw, firewall-cmd) find the private bus through
DBUS_SYSTEM_BUS_ADDRESS, which the host namespace's ``env`` carries.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from typing import Dict, Iterator, Optional

from netns import Pair, adverts, pair

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

# What firewalld 2.1.0+ ships as services/vrrp.xml (Debian 12's 1.3.3 has none).
VRRP_SERVICE = """<?xml version="1.0" encoding="utf-8"?>
<service>
  <short>Virtual Router Redundancy Protocol</short>
  <protocol value="vrrp"/>
  <destination ipv4="224.0.0.18" ipv6="ff02::12"/>
</service>
"""


class FirewalldHost:
    def __init__(self, p: Pair, root: str, backend: str) -> None:
        self.pair = p
        self.host = p.host
        self.root = root
        self.backend = backend
        self.sys_dir = os.path.join(root, "sys")
        self.def_dir = os.path.join(root, "def")
        self.state_file = os.path.join(root, "vrrpfw-state.json")
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.proc = self.host.popen("firewalld", "--nofork", "--nopid", "--system-config", self.sys_dir,
                                    "--default-config", self.def_dir, "--log-target", "console")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"firewalld exited: {err}")
            state = self.host.run("firewall-cmd", "--state", check=False)
            if state.stdout.strip() == "running":
                return
            time.sleep(0.2)
        raise AssertionError("firewalld did not start within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cmd(self, *args: str) -> str:
        return self.host.run("firewall-cmd", *args).stdout.strip()

    def vrrpfw(self, *args: str):
        return self.host.vrrpfw(*args, "--state-file", self.state_file)

    def vrrpfw_json(self, *args: str):
        return self.host.vrrpfw_json(*args, "--state-file", self.state_file)


def write_firewalld_config(root: str, backend: str = "nftables", vrrp_service: bool = False) -> None:
    """Throw-away firewalld configuration under ``root`` (``sys``: firewalld.conf
    with ``FirewallBackend=backend``; ``def``: a copy of /usr/lib/firewalld),
    so a test's firewalld never reads or writes /etc/firewalld."""
    sys_dir, def_dir = os.path.join(root, "sys"), os.path.join(root, "def")
    shutil.copytree("/usr/lib/firewalld", def_dir)
    os.makedirs(sys_dir)
    with open("/etc/firewalld/firewalld.conf") as f:
        conf = [line for line in f if not line.startswith("FirewallBackend=")]
    with open(os.path.join(sys_dir, "firewalld.conf"), "w") as f:
        f.writelines(conf + [f"FirewallBackend={backend}\n"])
    if vrrp_service:
        with open(os.path.join(def_dir, "services", "vrrp.xml"), "w") as f:
            f.write(VRRP_SERVICE)


@contextlib.contextmanager
def private_bus(root: str) -> Iterator[str]:
    """A private D-Bus system bus (socket under ``root``), killed on the way
    out; yields the DBUS_SYSTEM_BUS_ADDRESS its clients need.  One per
    firewalld: two firewalld cannot own the same bus name."""
    sock = os.path.join(root, "bus.sock")
    conf_path = os.path.join(root, "bus.conf")
    with open(conf_path, "w") as f:
        f.write(BUS_CONF.format(sock=sock))
    out = subprocess.run(["dbus-daemon", "--config-file", conf_path, "--fork", "--print-pid"],
                         capture_output=True, text=True, check=True).stdout
    bus_pid = int(out.split()[0])
    try:
        yield f"unix:path={sock}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(bus_pid, signal.SIGTERM)
        wait_gone(bus_pid)


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    """Whether process ``pid`` (not our child: nothing to reap) has gone
    within ``seconds``, so a test can say it left no daemon behind."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def firewalld_host(tmp_path: str, backend: str = "nftables", vrrp_service: bool = False
                   ) -> Iterator[FirewalldHost]:
    root = str(tmp_path)
    write_firewalld_config(root, backend, vrrp_service)
    with private_bus(root) as address:
        with pair("vrfd") as p:
            p.host.env = {"DBUS_SYSTEM_BUS_ADDRESS": address}
            fw = FirewalldHost(p, root, backend)
            try:
                fw.start()
                yield fw
            finally:
                fw.stop()


def inbound(fw: FirewalldHost) -> Dict[str, int]:
    """Real adverts from the peer's end to the firewalld host's (netns.adverts)."""
    p = fw.pair
    return adverts(p.peer, p.peer_if, p.host, p.host_if)
