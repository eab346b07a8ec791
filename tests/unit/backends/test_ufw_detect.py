"""Detecting ufw, what ``auto`` makes of it, and the advice given on a ufw
host (never netfilter-persistent).  Configuration files under tmp roots."""

import pytest

from vrrpfw.backends import registry
from vrrpfw.errors import BackendUnavailable, EnvironmentProblem
from vrrpfw.host import hostscan
from vrrpfw.host.hostscan import HostScan, NftChain, UfwState
from vrrpfw.persist import locations

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

ENABLED = "# /etc/ufw/ufw.conf\n#\n\n# Set to yes to start on boot.\nENABLED=yes\nLOGLEVEL=low\n"
DISABLED = ENABLED.replace("ENABLED=yes", "ENABLED=no")
DEFAULT = 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\nIPT_SYSCTL=/etc/ufw/sysctl.conf\n'


def write_root(tmp_path, conf=ENABLED, default=DEFAULT, os_id="debian"):
    (tmp_path / "etc/ufw").mkdir(parents=True)
    (tmp_path / "etc/default").mkdir(parents=True)
    if conf is not None:
        (tmp_path / "etc/ufw/ufw.conf").write_text(conf)
    if default is not None:
        (tmp_path / "etc/default/ufw").write_text(default)
    (tmp_path / "etc/os-release").write_text(f"ID={os_id}\n")
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    return str(tmp_path)


def test_shell_vars_read_like_the_shell_sources_them():
    text = ('# comment\nENABLED="yes"\n  IPV6=no # trailing\nMANAGE_BUILTINS=no\nnot a var\n'
            "X='quoted'\nbad-name=1\n")
    assert hostscan.shell_vars(text) == {"ENABLED": "yes", "IPV6": "no", "MANAGE_BUILTINS": "no",
                                         "X": "quoted"}


@pytest.mark.parametrize("conf,default,enabled,ipv6", [
    (ENABLED, DEFAULT, True, True),
    (DISABLED, DEFAULT, False, True),
    ("ENABLED=YES\n", "IPV6=no\n", True, False),
    ("LOGLEVEL=low\n", None, False, True),
])
def test_ufw_config(tmp_path, conf, default, enabled, ipv6):
    state = hostscan.ufw_config(write_root(tmp_path, conf, default))
    assert state is not None and (state.enabled, state.ipv6) == (enabled, ipv6)
    assert state.layer is None and not state.active


def test_no_ufw_conf_is_no_ufw(tmp_path):
    assert hostscan.ufw_config(write_root(tmp_path, conf=None)) is None


def test_nft_families_from_chain_listing():
    items = [{"metainfo": {}},
             {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "hook": "input"}},
             {"chain": {"family": "ip", "table": "filter", "name": "ufw-before-input"}},
             {"chain": {"family": "ip6", "table": "filter", "name": "ufw6-before-input"}},
             {"chain": {"family": "inet", "table": "filter", "name": "ufw-before-input"}},
             {"chain": {"family": "ip6", "table": "other", "name": "ufw6-before-input"}}]
    assert hostscan.ufw_nft_families(items) == ["ip", "ip6"]
    assert hostscan.ufw_nft_families(items[:2]) == []


def test_scan_ufw_prefers_nft_then_asks_legacy(tmp_path, monkeypatch):
    root = write_root(tmp_path)
    asked = []
    monkeypatch.setattr(hostscan, "ufw_legacy_families", lambda tables: asked.append(tables) or ["ip"])
    items = [{"chain": {"family": "ip", "table": "filter", "name": "ufw-before-input"}}]
    state = hostscan.scan_ufw(["filter"], items, root)
    assert state is not None and (state.layer, state.families, state.active) == ("nft", ["ip"], True)
    assert asked == []
    state = hostscan.scan_ufw(["filter"], [], root)
    assert state is not None and (state.layer, state.active) == ("legacy", True)
    assert "iptables-legacy's filter table" in state.found
    monkeypatch.setattr(hostscan, "ufw_legacy_families", lambda tables: [])
    state = hostscan.scan_ufw([], [], root)
    assert state is not None and state.layer is None and not state.active
    assert state.found == ("ufw installed, /etc/ufw/ufw.conf ENABLED=yes, its chains (ufw-before-input) "
                           "are not loaded")


def nft_input_drop():
    return NftChain("ip", "filter", "INPUT", "input", "drop", 10, True)


def test_auto_picks_ufw_alone_where_active_and_says_why():
    scan = HostScan(legacy_tables=["filter"], nft_chains=[nft_input_drop()],
                    ufw=UfwState(True, True, "nft", ["ip", "ip6"]))
    names, reason = registry.choose_auto(scan)
    assert names == ["ufw"]
    assert "ufw is active" in reason and "before.rules" in reason and "iptables-nft" in reason


def test_auto_ignores_a_disabled_ufw():
    scan = HostScan(nft_chains=[nft_input_drop()], ufw=UfwState(False, True, "nft", ["ip"]))
    names, reason = registry.choose_auto(scan)
    assert names == ["nftables"]
    assert "ENABLED=no" in registry.describe_scan(scan)


def test_auto_refuses_an_enabled_ufw_whose_chains_are_not_loaded():
    scan = HostScan(nft_chains=[nft_input_drop()], ufw=UfwState(True))
    with pytest.raises(BackendUnavailable) as e:
        registry.choose_auto(scan)
    assert "not loaded" in str(e.value) and "ufw enable" in str(e.value)


def test_firewalld_still_wins_over_ufw():
    scan = HostScan(firewalld_bus=True, ufw=UfwState(True, True, "nft", ["ip"]))
    assert registry.choose_auto(scan)[0] == ["firewalld"]


def test_ufw_is_a_backend_name():
    assert "ufw" in registry.NAMES and registry.BACKENDS["ufw"][0] == "vrrpfw.backends.ufw"
    assert registry.load("ufw").name == "ufw"


def test_describe_scan_without_ufw():
    assert "ufw: not installed" in registry.describe_scan(HostScan())


# -- never advise netfilter-persistent on a ufw host ---------------------------

@pytest.mark.parametrize("kind", ["iptables", "ip6tables"])
def test_saved_iptables_file_on_a_ufw_host_points_to_the_ufw_backend(tmp_path, kind):
    root = write_root(tmp_path)
    target = locations.choose(None, root, kind)
    assert target.restorer is None
    assert "netfilter-persistent conflicts" in target.note and "--backend ufw" in target.note
    assert "install" not in target.note


def test_disabled_ufw_still_no_netfilter_persistent_advice(tmp_path):
    note = locations.choose(None, write_root(tmp_path, DISABLED), "iptables").note
    assert "install netfilter-persistent" not in note and "ufw is installed (disabled)" in note


def test_without_ufw_the_usual_advice(tmp_path):
    note = locations.choose(None, write_root(tmp_path, conf=None), "iptables").note
    assert "install netfilter-persistent" in note


def test_nftables_conf_advice_is_not_about_ufw(tmp_path):
    note = locations.choose(None, write_root(tmp_path), "nftables").note
    assert "ufw" not in (note or "")


def test_missing_rules_v4_note_on_a_ufw_host(tmp_path):
    from vrrpfw.persist import iptables_save
    from vrrpfw.persist.iptables_store import _unplaced_note

    doc = iptables_save.parse("")
    note = _unplaced_note("/etc/iptables/rules.v4", doc, True, [("filter", "INPUT")], ufw=True)
    assert "netfilter-persistent save" not in note and "--backend ufw" in note
    assert "netfilter-persistent save" in _unplaced_note("/x", doc, True, [("filter", "INPUT")])


def test_in_another_netns_an_enabled_ufw_without_chains_there_is_not_this_namespaces():
    """--netns / keepalived's net_namespace: ufw.conf is the host's, and ufw
    does not manage a namespace it has no chains in: auto chooses as if
    ufw were not there, instead of refusing."""
    scan = HostScan(nft_chains=[nft_input_drop()], ufw=UfwState(True), other_netns=True)
    names, _reason = registry.choose_auto(scan)
    assert names == ["nftables"]
    loaded = HostScan(ufw=UfwState(True, True, "nft", ["ip"]), other_netns=True)
    assert registry.choose_auto(loaded)[0] == ["ufw"]  # ufw run inside that namespace: still ufw's


def test_auto_refuses_where_iptables_is_iptables_nft_and_nft_is_missing():
    """Without nft vrrpfw cannot read iptables-nft's chains (ufw's, Docker's):
    such a host must not look as if nothing filtered."""
    scan = HostScan(iptables_variant="nf_tables", nft_error="nft is not installed: nf_tables chains were "
                    "not inspected")
    with pytest.raises(EnvironmentProblem) as e:
        registry.choose_auto(scan)
    assert "install nftables" in str(e.value) and "\n" not in str(e.value)
    legacy_only = HostScan(iptables_variant="legacy", legacy_tables=["filter"],
                           nft_error="nft is not installed: nf_tables chains were not inspected")
    assert registry.choose_auto(legacy_only)[0] == ["iptables"]
