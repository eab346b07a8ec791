"""``open`` pins what it was asked for: on hosts whose filter chains let
VRRP through only by their ACCEPT policy, vrrpfw's rule still goes into the
chosen layer's own filter chains and into the admin's saved file, so a later
policy change does not block VRRP.  Real iptables-legacy, iptables-nft and
nftables in namespaces, real adverts; every saved file is a temporary one."""

from __future__ import annotations

import pytest
from netns import adverts, namespace, pair

pytestmark = pytest.mark.integration

ACCEPT_NFT = """table inet filter {
  chain input { type filter hook input priority 0; policy accept; iifname "lo" accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
"""


def both_ways(p):
    return (adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"],
            adverts(p.host, p.host_if, p.peer, p.peer_if)["delivered"])


def lock_env(tmp_path):
    return {"XTABLES_LOCKFILE": str(tmp_path / "xtables.lock")}


def ours(text):
    return [line for line in text.splitlines() if "vrrpfw" in line and not line.startswith("#")]


def pin_cycle(p, tmp_path, backend, saved, listing, tighten, env=None):
    """open twice, check, tighten the policy (adverts must still arrive:
    the pin), close (the saved file is as the admin wrote it, and the
    tightened policy now drops VRRP)."""
    original = saved.read_bytes()
    args = ("--iface", p.host_if, "--backend", backend, "--persist-file", str(saved))
    rc, out = p.host.vrrpfw_json("check", *args, env=env)
    assert rc == 0 and {r["runtime"] for r in out["rules"]} == {"allowed-by-policy"}, out

    rc, dry = p.host.vrrpfw_json("open", *args, "--dry-run", env=env)
    assert rc == 0 and dry["changed"] is True and len(dry["planned"]) == 2, dry
    assert {r["runtime"] for r in dry["rules"]} == {"allowed"}, dry  # as the real run leaves it
    assert "vrrpfw" in dry["diff"], dry
    assert ours(listing()) == [] and saved.read_bytes() == original

    rc, out = p.host.vrrpfw_json("open", *args, env=env)
    assert rc == 0 and out["changed"] is True, out
    assert {r["runtime"] for r in out["rules"]} == {"allowed"}, out
    assert sorted(out["planned"]) == sorted(dry["planned"])
    assert {r["persisted"] for r in out["rules"]} == {"present"}, out
    live = ours(listing())
    assert len(live) == 2, live  # one in the input chain, one in the output chain
    in_file = ours(saved.read_text())
    assert len(in_file) == 2, saved.read_text()

    rc, again = p.host.vrrpfw_json("open", *args, env=env)
    assert rc == 0 and again["changed"] is False, again
    assert ours(listing()) == live and ours(saved.read_text()) == in_file

    rc, out = p.host.vrrpfw_json("check", *args, env=env)
    assert rc == 0 and {r["runtime"] for r in out["rules"]} == {"allowed"}, out
    assert {r["persisted"] for r in out["rules"]} == {"present"}, out

    tighten()
    assert both_ways(p) == (20, 20)  # the point of pinning

    rc, out = p.host.vrrpfw_json("close", *args, env=env)
    assert rc == 0 and out["changed"] is True, out
    assert ours(listing()) == []
    assert saved.read_bytes() == original
    assert both_ways(p) == (0, 0)  # the tightened policy drops VRRP once the pin is gone


def test_legacy_accept_policy_open_pins_in_filter_and_rules_v4(tmp_path):
    saved = tmp_path / "rules.v4"
    env = lock_env(tmp_path)
    with pair() as p:
        p.host.ipt("-P", "INPUT", "ACCEPT")
        p.host.ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
        saved.write_text(p.host.run("iptables-legacy-save").stdout)
        assert "*filter" in saved.read_text()

        def tighten():
            p.host.ipt("-P", "INPUT", "DROP")
            p.host.ipt("-P", "OUTPUT", "DROP")

        pin_cycle(p, tmp_path, "iptables", saved, lambda: p.host.run("iptables-legacy-save").stdout,
                  tighten, env)


def test_nftables_accept_policy_open_pins_in_admin_table_and_conf(tmp_path):
    saved = tmp_path / "nftables.conf"
    saved.write_text("#!/usr/sbin/nft -f\n\nflush ruleset\n\n" + ACCEPT_NFT)
    with pair() as p:
        p.host.run("nft", "-f", str(saved))

        def tighten():
            p.host.run("nft", "chain", "inet", "filter", "input", "{ policy drop; }")
            p.host.run("nft", "chain", "inet", "filter", "output", "{ policy drop; }")

        pin_cycle(p, tmp_path, "nftables", saved, lambda: p.host.run("nft", "list", "ruleset").stdout,
                  tighten)


@pytest.mark.needs("iptables-nft")
def test_iptables_nft_accept_policy_open_pins_in_filter_and_rules_v4(tmp_path):
    saved = tmp_path / "rules.v4"
    with pair() as p:
        p.host.run("iptables-nft", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
        # iptables-nft makes its chains lazily: OUTPUT exists once a rule is in it
        p.host.run("iptables-nft", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT")
        saved.write_text(p.host.run("iptables-nft-save").stdout)
        assert "*filter" in saved.read_text()

        def tighten():
            p.host.run("iptables-nft", "-P", "INPUT", "DROP")
            p.host.run("iptables-nft", "-P", "OUTPUT", "DROP")

        pin_cycle(p, tmp_path, "nftables", saved, lambda: p.host.run("iptables-nft-save").stdout, tighten)


def test_nothing_filters_auto_stays_a_no_op(tmp_path):
    with namespace() as ns:
        ns.run("ip", "link", "set", "lo", "up")
        rc, out = ns.vrrpfw_json("open", "--iface", "lo", "--persist-file", str(tmp_path / "rules.v4"),
                                 env=lock_env(tmp_path))
        assert rc == 0 and out["changed"] is False, out
        assert any("nothing blocks VRRP here" in w for w in out["warnings"]), out
        assert not (tmp_path / "rules.v4").exists()
        assert ours(ns.run("nft", "list", "ruleset").stdout) == []


def test_nothing_filters_backend_nftables_says_there_is_no_chain_and_creates_no_table(tmp_path):
    saved = tmp_path / "nftables.conf"
    saved.write_text("flush ruleset\n")
    with namespace() as ns:
        ns.run("ip", "link", "set", "lo", "up")
        rc, out = ns.vrrpfw_json("open", "--iface", "lo", "--backend", "nftables",
                                 "--persist-file", str(saved))
        assert rc == 0 and out["changed"] is False, out
        assert any("no filter chain of the admin's for VRRP in on lo" in w
                   and "creates no table or chain of its own" in w for w in out["warnings"]), out
        assert ns.run("nft", "list", "ruleset").stdout.strip() == ""
        assert saved.read_text() == "flush ruleset\n"


def test_nothing_filters_backend_iptables_pins_in_empty_filter_chains(tmp_path):
    env = lock_env(tmp_path)
    with pair() as p:
        p.host.ipt("-L", "-n")  # the filter table, loaded with empty ACCEPT chains
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--backend", "iptables", "--no-persist",
                                     env=env)
        assert rc == 0 and out["changed"] is True, out
        assert [line.split()[1] for line in ours(p.host.ipt("-S"))] == ["INPUT", "OUTPUT"]
        rc, auto = p.host.vrrpfw_json("open", "--iface", p.host_if, "--no-persist", env=env)
        assert rc == 0 and auto["changed"] is False, auto
        p.host.ipt("-P", "INPUT", "DROP")
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 20
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--backend", "iptables", "--no-persist",
                                     env=env)
        assert rc == 0 and ours(p.host.ipt("-S")) == []
        assert adverts(p.peer, p.peer_if, p.host, p.host_if)["delivered"] == 0


def test_auto_close_after_a_pin_on_an_accept_policy_nft_host_removes_it(tmp_path):
    """open --backend nftables pins in the admin's policy-accept table; a
    later close (and check) without --backend must see vrrpfw's rules there,
    not say "nothing blocks VRRP here" with exit 0 and leave them behind."""
    saved = tmp_path / "nftables.conf"
    saved.write_text("#!/usr/sbin/nft -f\n\nflush ruleset\n\n" + ACCEPT_NFT)
    original = saved.read_bytes()
    with pair() as p:
        p.host.run("nft", "-f", str(saved))
        listing = lambda: p.host.run("nft", "list", "ruleset").stdout  # noqa: E731
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--backend", "nftables",
                                     "--persist-file", str(saved))
        assert rc == 0 and len(ours(listing())) == 2 and len(ours(saved.read_text())) == 2, out

        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--persist-file", str(saved))
        assert rc == 0 and out["backend"] == "nftables", out
        assert {r["runtime"] for r in out["rules"]} == {"allowed"}, out
        assert {r["persisted"] for r in out["rules"]} == {"present"}, out

        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--persist-file", str(saved))
        assert rc == 0 and out["changed"] is True, out
        assert ours(listing()) == [] and saved.read_bytes() == original


@pytest.mark.needs("iptables-nft")
def test_auto_close_after_a_pin_in_iptables_nft_accept_chains_removes_it(tmp_path):
    saved = tmp_path / "rules.v4"
    with pair() as p:
        p.host.run("iptables-nft", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
        p.host.run("iptables-nft", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT")
        saved.write_text(p.host.run("iptables-nft-save").stdout)
        original = saved.read_bytes()
        listing = lambda: p.host.run("iptables-nft-save").stdout  # noqa: E731
        rc, out = p.host.vrrpfw_json("open", "--iface", p.host_if, "--backend", "nftables",
                                     "--persist-file", str(saved))
        assert rc == 0 and len(ours(listing())) == 2, out
        rc, out = p.host.vrrpfw_json("close", "--iface", p.host_if, "--persist-file", str(saved))
        assert rc == 0 and out["changed"] is True, out
        assert ours(listing()) == [] and saved.read_bytes() == original


# fail2ban's nftables action creates this table when it starts (and deletes it when it stops):
# a filter chain on the input hook whose policy accepts, with a ban that cannot match VRRP.
F2B_NFT = """table inet f2b-table {
  set addr-set-sshd { type ipv4_addr; elements = { 198.51.100.7 } }
  chain f2b-chain { type filter hook input priority filter - 1; policy accept;
    meta l4proto tcp tcp dport 22 ip saddr @addr-set-sshd reject; }
}
"""


def test_open_pins_in_the_admins_table_never_in_fail2bans(tmp_path):
    """fail2ban's table is fail2ban's: a pin there would be gone at its next
    restart and cannot be saved (no saved file defines the table).  open pins
    in the admin's inet filter only, and the saved file holds exactly that."""
    saved = tmp_path / "nftables.conf"
    saved.write_text("#!/usr/sbin/nft -f\n\nflush ruleset\n\n" + ACCEPT_NFT)
    with pair() as p:
        p.host.run("nft", "-f", str(saved))
        loaded = tmp_path / "f2b.nft"
        loaded.write_text(F2B_NFT)
        assert p.host.run("nft", "-f", str(loaded)).returncode == 0
        args = ("--iface", p.host_if, "--backend", "nftables", "--persist-file", str(saved))
        rc, out = p.host.vrrpfw_json("open", *args)
        assert rc == 0 and out["changed"] is True, out
        assert {r["runtime"] for r in out["rules"]} == {"allowed"}, out
        assert {r["persisted"] for r in out["rules"]} == {"present"}, out
        assert ours(p.host.run("nft", "list", "table", "inet", "f2b-table").stdout) == []
        assert len(ours(p.host.run("nft", "list", "table", "inet", "filter").stdout)) == 2
        assert not any("f2b" in w for w in out.get("warnings", [])), out
        assert len(ours(saved.read_text())) == 2
        assert both_ways(p) == (20, 20)

