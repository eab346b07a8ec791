"""The next boot is judged: an admin's runtime-only allowance for VRRP, with
a saved ruleset that lacks it, is "persisted missing" (exit 1) with a "not
persisted" warning; the same allowance in the saved file is fine (exit 0).
Each claim is then measured: the saved file is restored into fresh
namespaces the way the distribution's boot unit restores it, and adverts
are counted there.  Everything happens in namespaces the tests create; the
saved files live below pytest's tmp_path."""

from __future__ import annotations

import json
import sys

import pytest
from netns import inbound, pair

pytestmark = pytest.mark.integration

# legacy / iptables-nft: (tool prefix, vrrpfw backend, restore command as netfilter-persistent runs it)
IPTABLES = {
    "legacy": ("iptables-legacy", "iptables"),
    "nft": ("iptables-nft", "nftables"),
}


def _iptables_saved(p, tool, allowance_saved):
    """INPUT policy DROP (lo allowed) saved; the VRRP allowance at runtime,
    and in the saved file too where ``allowance_saved``."""
    p.host.run(tool, "-w", "-P", "INPUT", "DROP")
    p.host.run(tool, "-w", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    if allowance_saved:
        p.host.run(tool, "-w", "-I", "INPUT", "-p", "112", "-j", "ACCEPT")
    saved = p.host.run(f"{tool}-save").stdout
    if not allowance_saved:
        p.host.run(tool, "-w", "-I", "INPUT", "-p", "112", "-j", "ACCEPT")  # runtime only
    return saved


def _boot_restore_iptables(tool, text):
    """Fresh namespaces, the file restored as netfilter-persistent's plugin
    does (``iptables-restore < rules.v4``): adverts delivered there."""
    with pair("vrnb") as fresh:
        fresh.host.run(f"{tool}-restore", stdin=text)
        return inbound(fresh, 10)["delivered"]


@pytest.mark.parametrize("variant", sorted(IPTABLES))
def test_iptables_runtime_only_allowance_is_not_persisted(tmp_path, variant):
    tool, backend = IPTABLES[variant]
    rules = tmp_path / "rules.v4"
    with pair("vrnb") as p:
        rules.write_text(_iptables_saved(p, tool, allowance_saved=False))
        assert inbound(p, 10)["delivered"] == 10  # runtime passes by the admin's rule
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--backend", backend,
                                     "--persist-file", str(rules))
        rule = out["rules"][0]
        assert rc == 1 and rule["runtime"] == "allowed-by-other" and rule["persisted"] == "missing", out
        note = [w for w in out["warnings"] if w.startswith("not persisted:")]
        assert note and "the next boot drops it" in note[0] and str(rules) in note[0], out["warnings"]
        assert "policy DROP" in note[0], note
    # the claim, measured: the next boot drops VRRP
    assert _boot_restore_iptables(tool, rules.read_text()) == 0


@pytest.mark.parametrize("variant", sorted(IPTABLES))
def test_iptables_saved_allowance_is_fine(tmp_path, variant):
    tool, backend = IPTABLES[variant]
    rules = tmp_path / "rules.v4"
    with pair("vrnb") as p:
        rules.write_text(_iptables_saved(p, tool, allowance_saved=True))
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--backend", backend,
                                     "--persist-file", str(rules))
        rule = out["rules"][0]
        assert rc == 0 and rule["runtime"] == "allowed-by-other" and rule["persisted"] == "not-managed", out
        assert not [w for w in out["warnings"] if "next boot" in w], out["warnings"]
    assert _boot_restore_iptables(tool, rules.read_text()) == 10


NFT_CONF = """flush ruleset
table inet filter {{
  chain input {{
    type filter hook input priority 0; policy drop;
    iifname "lo" accept
{extra}  }}
}}
"""


def _boot_restore_nft(conf):
    """Fresh namespaces, the file loaded as nftables.service does (``nft -f``)."""
    with pair("vrnb") as fresh:
        fresh.host.run("nft", "-f", str(conf))
        return inbound(fresh, 10)["delivered"]


def test_nftables_runtime_only_allowance_is_not_persisted(tmp_path):
    conf = tmp_path / "nftables.conf"
    conf.write_text(NFT_CONF.format(extra=""))
    with pair("vrnb") as p:
        p.host.run("nft", "-f", str(conf))
        p.host.run("nft", "insert", "rule", "inet", "filter", "input", "ip", "protocol", "vrrp", "accept")
        assert inbound(p, 10)["delivered"] == 10
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--backend", "nftables",
                                     "--persist-file", str(conf))
        rule = out["rules"][0]
        assert rc == 1 and rule["runtime"] == "allowed-by-other" and rule["persisted"] == "missing", out
        note = [w for w in out["warnings"] if w.startswith("not persisted:")]
        assert note and "inet filter input: dropped by policy drop" in note[0].lower(), out["warnings"]
    assert _boot_restore_nft(conf) == 0


def test_nftables_saved_allowance_is_fine(tmp_path):
    conf = tmp_path / "nftables.conf"
    with pair("vrnb") as p:
        # by interface index: nft must find the interface where vrrpfw loads the file
        conf.write_text(NFT_CONF.format(extra=f'    iif "{p.host_if}" ip protocol vrrp accept\n'))
        p.host.run("nft", "-f", str(conf))
        rc, out = p.host.vrrpfw_json("check", "--iface", p.host_if, "--backend", "nftables",
                                     "--persist-file", str(conf))
        rule = out["rules"][0]
        assert rc == 0 and rule["persisted"] == "not-managed", out
    # the fresh namespaces name their interfaces alike (vh<pid>-<n>): rename the host's end
    text = conf.read_text()
    with pair("vrnb") as fresh:
        conf.write_text(text.replace(p.host_if, fresh.host_if))
        fresh.host.run("nft", "-f", str(conf))
        assert inbound(fresh, 10)["delivered"] == 10


ALLOW_LINE = "-A ufw-before-input -p 112 -j ACCEPT"


def _ufw_boot(tmp_path, variant, before_rules):
    """Fresh namespaces whose ufw runs on ``before_rules`` (the rest as
    shipped), started as the admin starts it (``ufw --force enable``)."""
    from ufwharness import ufw_pair

    root = tmp_path / "boot"
    root.mkdir()
    with ufw_pair(str(root), variant, "vrnu") as fresh:
        with open(fresh.host.rules_file(), "w") as f:
            f.write(before_rules)
        fresh.host.ufw("--force", "enable")
        return inbound(fresh, 10)["delivered"]


def _with_allow_line(text):
    """before.rules with the admin's VRRP allowance as the first rule of
    ufw-before-input (after the chain declarations)."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("-A "))
    return "\n".join(lines[:first] + [ALLOW_LINE] + lines[first:]) + "\n"


@pytest.mark.needs("ufw", "unshare", "iptables-nft")
@pytest.mark.parametrize("variant,saved", [("nft", False), ("legacy", False), ("nft", True)],
                         ids=["nft-runtime-only", "legacy-runtime-only", "nft-saved"])
def test_ufw_admins_allowance_judged_for_the_next_boot(tmp_path, variant, saved):
    from ufwharness import ufw_pair

    with ufw_pair(str(tmp_path), variant, "vrnu") as p:
        h = p.host
        if saved:
            text = _with_allow_line(h.read().decode())
            with open(h.rules_file(), "w") as f:
                f.write(text)
        assert "active" in h.ufw("--force", "enable")
        if not saved:  # the admin's allowance at runtime only
            h.run(f"iptables-{variant}", "-w", "-I", "ufw-before-input", "-p", "112", "-j", "ACCEPT")
        assert inbound(p, 10)["delivered"] == 10
        proc = h.run(sys.executable, "-m", "vrrpfw", "check", "--iface", p.host_if, "--backend", "ufw",
                     "--json", check=False, timeout=180)
        out = json.loads(proc.stdout)
        rule = next(r for r in out["rules"] if r["direction"] == "in")
        before_rules = h.read().decode()
    if saved:
        assert proc.returncode == 0 and rule["persisted"] == "not-managed", out
        assert _ufw_boot(tmp_path, variant, before_rules) == 10
    else:
        assert proc.returncode == 1 and rule["persisted"] == "missing", out
        note = [w for w in out["warnings"] if w.startswith("not persisted:")]
        assert note and "as `ufw enable` loads them" in note[0], out["warnings"]
        assert _ufw_boot(tmp_path, variant, before_rules) == 0
