"""A firewalld service, whatever its name, that lets VRRP in is the admin's
allowance: real firewalld in a namespace, a service defined in firewalld's
system config dir (/etc/firewalld/services on a host) and added to the
zone in runtime and permanent configuration.  The verdict is checked
against real adverts: where the service's definition lets them in,
``check`` says allowed by another and ``open`` adds nothing; where its
destination is another group, the adverts are dropped and vrrpfw says
missing and adds its own."""

from __future__ import annotations

import json
import os

import pytest
from fwharness import firewalld_host, inbound

pytestmark = [pytest.mark.integration, pytest.mark.needs("firewalld")]

SERVICE = """<?xml version="1.0" encoding="utf-8"?>
<service>
  <short>{name}</short>
{body}
</service>
"""

# name -> (definition body, lets 224.0.0.18 in)
SHAPES = {
    "keepalived": ('  <protocol value="112"/>', True),  # as firewalld 2.1's vrrp.xml
    "ha-wrapper": ('  <include service="keepalived"/>', True),
    "ha-link-local-net": ('  <protocol value="vrrp"/>\n  <destination ipv4="224.0.0.0/24"/>', True),
    "ha-other-group": ('  <protocol value="vrrp"/>\n  <destination ipv4="224.0.0.19"/>', False),
    "ha-ipv6-only": ('  <protocol value="vrrp"/>\n  <destination ipv6="ff02::12"/>', False),
}


def define_services(fw, *names: str) -> None:
    """Service files in firewalld's system config dir, loaded by a reload."""
    directory = os.path.join(fw.sys_dir, "services")
    os.makedirs(directory, exist_ok=True)
    for name in names:
        with open(os.path.join(directory, f"{name}.xml"), "w") as f:
            f.write(SERVICE.format(name=name, body=SHAPES[name][0]))
    fw.cmd("--reload")


def both(fw, *args: str) -> None:
    fw.cmd(*args)
    fw.cmd("--permanent", *args)


def inbound_rule(out):
    return next(r for r in out["rules"] if r["direction"] == "in")


def vrrpfw_inbound_allowances(fw, backend, layer=()):
    """What vrrpfw added for inbound adverts: rich rules (nftables backend)
    or INPUT direct rules (iptables backend: vrrpfw's direct mode)."""
    if backend == "nftables":
        return [r for r in fw.cmd(*layer, "--list-rich-rules").splitlines() if r]
    return [r for r in fw.cmd(*layer, "--direct", "--get-all-rules").splitlines() if " INPUT " in r]


NFT = list(SHAPES)


@pytest.mark.parametrize("backend, shapes", [("nftables", NFT[:3]), ("nftables", NFT[3:]),
                                             ("iptables", ["keepalived"])])
def test_a_service_in_the_zone_is_judged_by_its_definition(tmp_path, backend, shapes):
    """Before: only a service named 'vrrp' counted; 'keepalived' (protocol
    vrrp) made open add a redundant allowance (a rich rule on the nftables
    backend, a direct rule on the iptables backend).  One firewalld, each
    shape in turn (the service is removed again after it)."""
    with firewalld_host(tmp_path, backend) as fw:
        iface = fw.pair.host_if
        define_services(fw, *SHAPES)
        for name in shapes:
            both(fw, f"--add-service={name}")
            lets_in = SHAPES[name][1]
            why = f"service {name}: "
            got = inbound(fw)  # what packets do; the verdict must say the same
            assert got["wire"] == 20 and got["delivered"] == (20 if lets_in else 0), why + str(got)
            rc, out = fw.vrrpfw_json("check", "--iface", iface)
            rule = inbound_rule(out)
            assert rule["runtime"] == ("allowed-by-other" if lets_in else "missing"), why + json.dumps(out)
            if lets_in:
                assert rule["persisted"] in ("present", "not-managed"), why + json.dumps(out)
                assert backend != "nftables" or rc == 0, why + json.dumps(out)
            rc, out = fw.vrrpfw_json("open", "--iface", iface)
            assert rc == 0 and inbound_rule(out)["action"] == ("none" if lets_in else "insert"), \
                why + json.dumps(out)
            added = (vrrpfw_inbound_allowances(fw, backend),
                     vrrpfw_inbound_allowances(fw, backend, ("--permanent",)))
            if lets_in:  # nothing added, in either layer
                assert added == ([], []), why + str(added)
            else:
                assert added[0] and added[1], why + str(added)
                assert inbound(fw)["delivered"] == 20, why
            rc, out = fw.vrrpfw_json("close", "--iface", iface)
            # (the iptables backend's direct mode also opened OUTPUT, which close removes)
            assert rc == 0 and (backend != "nftables" or out["changed"] is (not lets_in)), \
                why + json.dumps(out)
            assert name in fw.cmd("--list-services").split(), why  # the admin's service stays
            both(fw, f"--remove-service={name}")


# A deny rich rule beside the admin's allowance: firewalld's zone chain runs
# rich rules of priority < 0, then deny rules (priority 0), then services and
# protocols, then rich rules of priority > 0.  (rich rule, adverts pass)
DENIES = [
    ('rule priority="-10" family="ipv4" protocol value="vrrp" drop', False),
    ('rule family="ipv4" protocol value="vrrp" drop', False),
    ('rule priority="5" family="ipv4" protocol value="vrrp" drop', True),
    ('rule family="ipv4" destination address="224.0.0.19" protocol value="vrrp" drop', True),
    ('rule family="ipv4" source address="198.51.100.0/24" drop', True),  # off the link: no peer there
]


@pytest.mark.parametrize("allowance", ["--add-service=keepalived", "--add-protocol=vrrp"])
def test_a_deny_rich_rule_before_the_admin_s_allowance_iptables_backend(tmp_path, allowance):
    """firewalld's iptables backend (vrrpfw's direct mode judges the zone by
    its configuration): a service or protocol that lets VRRP in, and a deny
    rich rule that runs before it.  Before: check said allowed-by-other and
    open exit 0 adding nothing while 0/20 adverts arrived.  Now the verdict
    is what the adverts do, and open adds its direct rule where they are
    dropped (20/20 after)."""
    with firewalld_host(tmp_path, "iptables") as fw:
        iface = fw.pair.host_if
        define_services(fw, "keepalived")
        both(fw, allowance)
        for deny, passes in DENIES:
            why = f"{allowance} with {deny}: "
            both(fw, f"--add-rich-rule={deny}")
            got = inbound(fw)
            assert got["wire"] == 20 and got["delivered"] == (20 if passes else 0), why + str(got)
            rc, out = fw.vrrpfw_json("check", "--iface", iface)
            assert inbound_rule(out)["runtime"] == ("allowed-by-other" if passes else "missing"), \
                why + json.dumps(out)
            rc, out = fw.vrrpfw_json("open", "--iface", iface)
            assert rc == 0 and inbound_rule(out)["action"] == ("none" if passes else "insert"), \
                why + json.dumps(out)
            assert inbound(fw)["delivered"] == 20, why
            rc, out = fw.vrrpfw_json("close", "--iface", iface)
            assert rc == 0, why + json.dumps(out)
            both(fw, f"--remove-rich-rule={deny}")


@pytest.mark.parametrize("priority, opens", [("-1", False), ("5", True)])
def test_the_admin_s_direct_drop_comes_before_the_zone_iptables_backend(tmp_path, priority, opens):
    """firewalld's iptables backend: the admin's direct rule '-p vrrp -j
    DROP' runs before the zones (and, at a lower priority, before vrrpfw's
    own direct rule at priority 0).  Before: check said allowed-by-other
    (the zone's service) with 0/20 adverts, and open exited 0 with its
    direct rule behind the drop, 0/20.  Now check says missing, and open
    either lets them in (the drop runs after vrrpfw's rule: 20/20, exit 0)
    or says uncertain and exits 1 (0/20), never a claimed success."""
    with firewalld_host(tmp_path, "iptables") as fw:
        iface = fw.pair.host_if
        define_services(fw, "keepalived")
        both(fw, "--add-service=keepalived")
        both(fw, "--direct", "--add-rule", "ipv4", "filter", "INPUT", priority, "-p", "vrrp", "-j", "DROP")
        got = inbound(fw)
        assert got["wire"] == 20 and got["delivered"] == 0, got
        rc, out = fw.vrrpfw_json("check", "--iface", iface)
        assert rc == 1 and inbound_rule(out)["runtime"] == "missing", json.dumps(out)
        rc, out = fw.vrrpfw_json("open", "--iface", iface)
        got = inbound(fw)
        assert got["delivered"] == (20 if opens else 0), got
        assert (rc == 0) is opens, json.dumps(out)
        assert inbound_rule(out)["runtime"] == ("allowed" if opens else "uncertain"), json.dumps(out)
