"""Whether firewalld answers on the system bus: an address naming one unix
socket that does not exist is a no without loading dbus-python (prove's
replicas run with such an address; before, every replica's `open` loaded it)."""

import os
import subprocess
import sys

import pytest

from vrrpfw.host.hostscan import _no_such_socket

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_only_a_lone_unix_path_that_is_missing_is_known_without_dbus(tmp_path):
    sock = tmp_path / "bus"
    sock.write_text("")
    assert _no_such_socket("unix:path=/nonexistent/vrrpfw-test-bus")
    assert not _no_such_socket(f"unix:path={sock}")  # exists: dbus-python asks it
    for other in ("unix:abstract=/tmp/dbus-x", "tcp:host=localhost,port=1",
                  "unix:path=/nonexistent/a;unix:path=/nonexistent/b",  # alternatives
                  "unix:path=/nonexistent/a,guid=0123", "unix:path=/nonexistent/%61", "unix:path=",
                  "unix:tmpdir=/tmp", "garbage"):
        assert not _no_such_socket(other), other


def test_a_missing_bus_socket_answers_no_without_loading_dbus_python():
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent/vrrpfw-test-bus")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    code = ("import sys\nfrom vrrpfw.host.hostscan import firewalld_answers\n"
            "print(firewalld_answers(), 'dbus' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out
