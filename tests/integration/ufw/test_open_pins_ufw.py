"""``open`` pins its rule in ufw's before rules where ufw's default policy
lets VRRP in (``ufw default allow incoming``): at runtime and in
before.rules, so a later ``ufw default deny incoming`` keeps VRRP flowing.
Private copies of /etc/ufw (tests/ufwharness.py), namespaces, real adverts."""

from __future__ import annotations

import json
import sys

import pytest
from netns import inbound
from ufwharness import ufw_pair

pytestmark = [pytest.mark.integration, pytest.mark.needs("ufw", "unshare", "iptables-nft")]


def vrrpfw(h, *args):
    proc = h.run(sys.executable, "-m", "vrrpfw", *args, "--json", check=False, timeout=180)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON from vrrpfw {args}: {proc.stdout}\n{proc.stderr}") from None


@pytest.mark.parametrize("variant", ["nft", "legacy"])
def test_ufw_default_allow_open_pins_in_before_rules(tmp_path, variant):
    with ufw_pair(str(tmp_path), variant, "vupin") as p:
        h = p.host
        h.ufw("default", "allow", "incoming")
        assert "active" in h.ufw("--force", "enable")
        files = {name: h.read(name) for name in ("before.rules", "before6.rules")}
        assert inbound(p)["delivered"] == 20  # allowed by ufw's policy
        rc, doc = vrrpfw(h, "check", "--iface", p.host_if, "--family", "ipv4")
        rin = next(r for r in doc["rules"] if r["direction"] == "in")
        assert rc == 0 and rin["runtime"] == "allowed-by-policy", doc

        rc, doc = vrrpfw(h, "open", "--iface", p.host_if, "--family", "ipv4", "--backend", "ufw")
        assert rc == 0 and doc["changed"] is True, doc
        rin = next(r for r in doc["rules"] if r["direction"] == "in")
        assert (rin["runtime"], rin["persisted"]) == ("allowed", "present"), doc
        line = (f"-A ufw-before-input -d 224.0.0.18/32 -i {p.host_if} -p 112 -m comment --comment vrrpfw "
                "-j ACCEPT")
        assert line in h.read().decode().splitlines()
        saved = h.read()
        rc, doc = vrrpfw(h, "open", "--iface", p.host_if, "--family", "ipv4", "--backend", "ufw")
        assert rc == 0 and doc["changed"] is False and h.read() == saved, doc
        rc, doc = vrrpfw(h, "check", "--iface", p.host_if, "--family", "ipv4")
        assert rc == 0 and {r["runtime"] for r in doc["rules"]} == {"allowed"}, doc

        h.ufw("default", "deny", "incoming")  # reloads ufw from its files
        assert inbound(p)["delivered"] == 20, "the pinned line must keep VRRP in after the policy change"

        rc, doc = vrrpfw(h, "close", "--iface", p.host_if, "--backend", "ufw")
        assert rc == 0 and doc["changed"] is True, doc
        assert {name: h.read(name) for name in files} == files
        got = inbound(p)
        assert got["wire"] == 20 and got["delivered"] == 0
