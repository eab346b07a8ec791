"""state.json against real firewalld in a namespace: open then close leaves
the file absent where it was absent, and a file with entries of its own
keeps them, byte for byte as vrrpfw wrote them."""

from __future__ import annotations

import json
import os

import pytest
from fwharness import firewalld_host
from lockdirs import private_lock_dir

pytestmark = [pytest.mark.integration, pytest.mark.needs("firewalld")]


@pytest.mark.parametrize("persist", [True, False])
def test_open_then_close_leaves_no_state_file(tmp_path, persist):
    """Before: close left {"firewalld": [], "interfaces": []} behind."""
    flags = [] if persist else ["--no-persist"]
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        assert not os.path.exists(fw.state_file)
        rc, out = fw.vrrpfw_json("open", "--iface", iface, *flags)
        assert rc == 0 and out["changed"] is True, out
        with open(fw.state_file) as f:
            assert json.load(f)["firewalld"], "open records what it added"
        rc, out = fw.vrrpfw_json("close", "--iface", iface, *flags)
        assert rc == 0 and out["changed"] is True, out
        assert fw.cmd("--list-rich-rules") == fw.cmd("--permanent", "--list-rich-rules") == ""
        assert not os.path.exists(fw.state_file)
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and not os.path.exists(fw.state_file), out


def test_close_keeps_the_entries_the_file_had_of_its_own(tmp_path):
    """The file held 224.0.0.19's allowance before 224.0.0.18 was opened and
    closed: it is back to exactly what it was."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        assert fw.vrrpfw("open", "--iface", iface, "--group", "224.0.0.19").returncode == 0
        with open(fw.state_file) as f:
            before = f.read()
        assert fw.vrrpfw("open", "--iface", iface).returncode == 0
        with open(fw.state_file) as f:
            assert f.read() != before
        rc, out = fw.vrrpfw_json("close", "--iface", iface, "--group", "224.0.0.18")
        assert rc == 0 and out["changed"] is True, out
        with open(fw.state_file) as f:
            assert f.read() == before
        assert "224.0.0.19" in fw.cmd("--list-rich-rules") and "224.0.0.18" not in fw.cmd("--list-rich-rules")
        assert fw.vrrpfw("close", "--iface", iface, "--group", "224.0.0.19").returncode == 0
        assert not os.path.exists(fw.state_file)


def test_check_with_nothing_to_record_takes_no_lock(tmp_path):
    """A check whose state file needs no update leaves the lock directory
    untouched (before: it took the state file's lock anyway, creating the
    directory and the lock file)."""
    with firewalld_host(tmp_path, "nftables") as fw:
        iface = fw.pair.host_if
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        assert rc == 0 and out["changed"] is True, out
        with open(fw.state_file) as f:
            recorded = f.read()
        locks = private_lock_dir(tmp_path)
        rc, out = fw.host.vrrpfw_json("check", "--iface", iface, "--state-file", fw.state_file,
                                      env={"VRRPFW_LOCK_DIR": locks})
        assert rc == 0 and out["ok"] is True, out
        assert not os.path.exists(locks), os.listdir(locks)
        with open(fw.state_file) as f:
            assert f.read() == recorded
