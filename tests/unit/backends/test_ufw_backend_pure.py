"""The ufw backend's judgement and plans over path models built from saved
ufw rulesets (the corpus' ufw dumps), on both variants; no kernel."""

import os

import pytest

from vrrpfw.backends.base import Change, Options
from vrrpfw.backends.ufw import UfwBackend, restore_lines, restore_text
from vrrpfw.errors import BackendUnavailable
from vrrpfw.host.hostscan import HostScan, UfwState
from vrrpfw.judge.path_model import ChainId, PathModel
from vrrpfw.judge.read.saved import legacy_chains
from vrrpfw.model import AH_PROTO, Direction, Family, VrrpRule
from vrrpfw.persist import iptables_save
from vrrpfw.persist.ufw_rules import UfwRulesStore, chain_for
from vrrpfw.results import Action, Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "corpus")
IN = VrrpRule(Direction.IN, "eth1", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth1", "224.0.0.18")
IN6 = VrrpRule(Direction.IN, "eth1", "ff02::12", Family.IPV6)


def corpus(name):
    with open(os.path.join(CORPUS, name), encoding="utf-8") as f:
        return "".join(line for line in f if not line.startswith("# about:"))


def backend(layer="nft", **opts):
    scan = HostScan(ufw=UfwState(True, True, layer, ["ip", "ip6"]))
    return UfwBackend(Options(**opts), scan)


def model(text, layer="nft", family="ip", extra=()):
    return PathModel(chains=legacy_chains(text, layer, family) + list(extra))


def with_line(text, rule, before_rule=None):
    """The ruleset with vrrpfw's line at the top of the rule's ufw chain
    (or right below ``before_rule``, an admin's line put first)."""
    ours = iptables_save.rule_line(rule, chain_for(rule))
    first = f"-A {chain_for(rule)} "
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(first) or line == "COMMIT\n")
    add = [f"{before_rule}\n", f"{ours}\n"] if before_rule else [f"{ours}\n"]
    return "".join(lines[:at] + add + lines[at:])


@pytest.mark.parametrize("layer", ["nft", "legacy"])
def test_default_deny_needs_ufws_before_chain_and_says_so(layer):
    b = backend(layer)
    st_in, st_out = b.path_statuses(model(corpus("ufw-default-deny.legacy"), layer), [IN, OUT])
    assert st_in.state is Runtime.MISSING
    assert st_in.needs == [ChainId(layer, "ip", "filter", "ufw-before-input")]
    assert "filter INPUT: dropped by policy DROP" in st_in.detail
    assert st_in.verdict is None  # only ufw's chain blocks: a dry run predicts from the plan
    assert st_out.state is Runtime.ALLOWED_BY_POLICY and st_out.needs == []
    changes = b.plan([st_in, st_out], "open")
    assert [c.action for c in changes] == [Action.INSERT]
    tool = "iptables-nft" if layer == "nft" else "iptables-legacy"
    assert b.describe(changes[0]) == (
        f"{tool} -I ufw-before-input 1 -d 224.0.0.18/32 -i eth1 -p 112 -m comment --comment vrrpfw -j ACCEPT")
    assert b.blockers() == []


@pytest.mark.parametrize("layer", ["nft", "legacy"])
def test_vrrpfws_line_in_ufws_chain_decides_as_vrrpfws_own(layer):
    b = backend(layer)
    text = with_line(corpus("ufw-default-deny.legacy"), IN)
    (st,) = b.path_statuses(model(text, layer), [IN])
    assert st.state is Runtime.ALLOWED
    assert "allowed by vrrpfw's rule" in st.detail
    assert [(cid.name, fw.chain) for cid, fw in st.ours] == [("ufw-before-input", "ufw-before-input")]
    assert b.plan([st], "open") == []  # idempotent
    close = b.plan([st], "close")
    assert [c.action for c in close] == [Action.DELETE]
    assert restore_lines(close) == {"ip": [
        "-D ufw-before-input -d 224.0.0.18/32 -i eth1 -p 112 -m comment --comment vrrpfw -j ACCEPT"]}


def test_a_line_of_ours_below_an_admins_drop_is_shadowed_and_moves_up():
    b = backend()
    text = with_line(corpus("ufw-default-deny.legacy"), IN, before_rule="-A ufw-before-input -i eth1 -j DROP")
    (st,) = b.path_statuses(model(text), [IN])
    assert st.state is Runtime.SHADOWED
    changes = b.plan([st], "open")
    assert [c.action for c in changes] == [Action.DELETE, Action.MOVE]
    lines = restore_lines(changes)["ip"]
    assert lines[0].startswith("-D ufw-before-input -d 224.0.0.18/32") and lines[1].startswith(
        "-I ufw-before-input 1 -d 224.0.0.18/32")


def test_duplicate_lines_all_go_and_one_comes_back_on_top():
    """Two copies of vrrpfw's line, the top one deciding and one below an
    admin's DROP: ``-D`` by text removes the first copy, so deleting "the
    second" would keep the useless one.  Every copy goes, one comes back on top."""
    b = backend()
    ours = iptables_save.rule_line(IN, "ufw-before-input")
    text = with_line(with_line(corpus("ufw-default-deny.legacy"), IN,
                               before_rule="-A ufw-before-input -i eth1 -j DROP"), IN)
    assert text.count(ours) == 2
    (st,) = b.path_statuses(model(text), [IN])
    assert st.state is Runtime.ALLOWED and len(st.ours) == 2
    changes = b.plan([st], "open")
    assert sorted(c.action.value for c in changes) == sorted(["delete", "delete", "move"])
    lines = restore_lines(changes)["ip"]
    spec = ours[len("-A ufw-before-input"):]
    assert lines == [f"-D ufw-before-input{spec}"] * 2 + [f"-I ufw-before-input 1{spec}"]
    assert b.plan([st], "close") == [c for c in changes if c.action is Action.DELETE]


def test_a_chain_ufw_does_not_manage_is_a_blocker_and_keeps_the_verdict():
    b = backend("nft")
    other = legacy_chains("*filter\n:INPUT DROP [0:0]\nCOMMIT\n", "legacy")
    text = with_line(corpus("ufw-default-deny.legacy"), IN)
    (st,) = b.path_statuses(model(text, "nft", extra=other), [IN])
    assert st.state is Runtime.MISSING and st.needs == []
    assert st.verdict is not None
    (msg,) = b.blockers()
    assert "legacy filter INPUT" in msg and "iptables backend would have to open it" in msg


def test_ufw_deny_outgoing_needs_the_before_output_chain():
    b = backend()
    (st,) = b.path_statuses(model(corpus("ufw-deny-outgoing.legacy")), [OUT])
    assert st.state is Runtime.MISSING
    assert st.needs == [ChainId("nft", "ip", "filter", "ufw-before-output")]


def test_ipv6_goes_to_ufw6_chains():
    text = ("*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:ufw6-before-input - [0:0]\n"
            ":ufw6-before-output - [0:0]\n-A INPUT -j ufw6-before-input\n-A OUTPUT -j ufw6-before-output\n"
            "COMMIT\n")
    b = backend()
    (st,) = b.path_statuses(model(text, family="ip6"), [IN6])
    assert st.state is Runtime.MISSING
    assert st.needs == [ChainId("nft", "ip6", "filter", "ufw6-before-input")]
    (ch,) = b.plan([st], "open")
    assert b.describe(ch).startswith("ip6tables-nft -I ufw6-before-input 1 -d ff02::12/128 -i eth1 -p 112")
    (st,) = b.path_statuses(model(with_line(text, IN6), family="ip6"), [IN6])
    assert st.state is Runtime.ALLOWED


def test_restore_batches_per_family_deletions_first():
    strict = VrrpRule(Direction.IN, "eth1", "224.0.0.18", strict=True)
    ah = VrrpRule(Direction.IN, "eth1", "224.0.0.18", proto=AH_PROTO)
    cid4 = ChainId("nft", "ip", "filter", "ufw-before-input")
    cid6 = ChainId("nft", "ip6", "filter", "ufw6-before-input")
    changes = [Change(Action.INSERT, strict, cid4), Change(Action.DELETE, ah, (cid4, None)),
               Change(Action.MOVE, IN6, cid6)]
    out = restore_lines(changes)
    assert out["ip"] == [
        "-D ufw-before-input -d 224.0.0.18/32 -i eth1 -p 51 -m comment --comment vrrpfw -j ACCEPT",
        "-I ufw-before-input 1 -d 224.0.0.18/32 -i eth1 -p 112 -m ttl --ttl-eq 255 "
        "-m comment --comment vrrpfw -j ACCEPT"]
    assert out["ip6"] == ["-I ufw6-before-input 1 -d ff02::12/128 -i eth1 -p 112 -m comment --comment vrrpfw "
                          "-j ACCEPT"]
    assert restore_text(out["ip"]).startswith("*filter\n-D ") and restore_text(out["ip"]).endswith("COMMIT\n")


def test_rule_text_is_the_before_rules_line():
    assert backend().rule_text(OUT) == (
        "-A ufw-before-output -d 224.0.0.18/32 -o eth1 -p 112 -m comment --comment vrrpfw -j ACCEPT")


@pytest.mark.parametrize("state,words", [
    (None, "ufw is not installed here"),
    (UfwState(False), "ENABLED=no"),
    (UfwState(True), "its chains (ufw-before-input) are not loaded"),
], ids=["absent", "disabled", "not-loaded"])
def test_named_backend_without_active_ufw_is_one_line_exit_3(state, words):
    with pytest.raises(BackendUnavailable) as e:
        UfwBackend(Options(), HostScan(ufw=state))
    assert words in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 3


def test_persister_is_ufws_files_and_ipv6_only_where_ufw_has_it(tmp_path):
    p = backend(root=str(tmp_path)).persister()
    assert isinstance(p, UfwRulesStore)
    assert p.path == f"{tmp_path}/etc/ufw/before.rules and {tmp_path}/etc/ufw/before6.rules"
    scan = HostScan(ufw=UfwState(True, False, "nft", ["ip"]))
    p = UfwBackend(Options(root=str(tmp_path)), scan).persister()
    assert p.path == f"{tmp_path}/etc/ufw/before.rules"
    custom = tmp_path / "mine.rules"
    custom.write_text("*filter\n:ufw6-before-input - [0:0]\n:ufw6-before-output - [0:0]\nCOMMIT\n")
    p = backend(persist_file=str(custom)).persister()
    assert p.path == str(custom) and list(p.parts) == [Family.IPV6]


class Ran:
    """A fake of vrrpfw.host.run.run: records (argv, stdin), succeeds."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv, **kw):
        from vrrpfw.host import run

        self.calls.append((argv, kw.get("stdin")))
        return run.Ran(0)


def loaded(b, *chains):
    """The backend with ufw's filter tables holding ``chains`` (family, name)."""
    from vrrpfw.judge.nft import NftTable
    from vrrpfw.judge.read.nft import NftLayer

    layer = NftLayer()
    for fam, name in chains:
        layer.tables.setdefault((fam, "filter"), NftTable(fam, "filter")).chains[name] = []
    b._nft = layer
    b._load = lambda: None
    return b


def test_apply_runs_one_noflush_restore_per_family_of_ufws_variant(monkeypatch):
    from vrrpfw.backends import ufw as mod

    ran = Ran()
    monkeypatch.setattr(mod, "run", ran)
    monkeypatch.setattr(mod, "which", lambda name: f"/usr/sbin/{name}")
    b = loaded(backend("legacy", lock_timeout=2.5), ("ip", "ufw-before-input"), ("ip6", "ufw6-before-input"))
    b._legacy = None
    b._chain_names = lambda fam: list(b._nft.tables[(fam, "filter")].chains)
    b.apply([Change(Action.INSERT, IN, ChainId("legacy", "ip", "filter", "ufw-before-input")),
             Change(Action.INSERT, IN6, ChainId("legacy", "ip6", "filter", "ufw6-before-input"))])
    assert [argv for argv, _ in ran.calls] == [
        ["/usr/sbin/iptables-legacy-restore", "--noflush", "--wait=3"],
        ["/usr/sbin/ip6tables-legacy-restore", "--noflush", "--wait=3"]]
    assert ran.calls[0][1] == ("*filter\n-I ufw-before-input 1 -d 224.0.0.18/32 -i eth1 -p 112 "
                               "-m comment --comment vrrpfw -j ACCEPT\nCOMMIT\n")


def test_apply_refuses_before_running_anything_where_ufws_chain_is_missing(monkeypatch):
    from vrrpfw.backends import ufw as mod
    from vrrpfw.errors import BackendError

    ran = Ran()
    monkeypatch.setattr(mod, "run", ran)
    scan = HostScan(ufw=UfwState(True, False, "nft", ["ip"]))
    b = loaded(UfwBackend(Options(), scan), ("ip", "ufw-before-input"))
    with pytest.raises(BackendError) as e:
        b.apply([Change(Action.INSERT, IN, ChainId("nft", "ip", "filter", "ufw-before-input")),
                 Change(Action.INSERT, IN6, ChainId("nft", "ip6", "filter", "ufw6-before-input"))])
    assert "IPV6=no" in str(e.value) and "nothing was changed" in str(e.value)
    assert ran.calls == []


def test_ufw_lock_is_ufws_lockf_and_times_out_with_one_line(tmp_path):
    import fcntl
    import multiprocessing

    from vrrpfw.backends.ufw import ufw_lock
    from vrrpfw.errors import LockTimeout

    path = str(tmp_path / "ufw.lock")
    with ufw_lock(1.0, path):
        pass  # free: taken at once
    ready, done = multiprocessing.Event(), multiprocessing.Event()

    def hold():  # another process holding it, as `ufw reload` does
        with open(path, "w") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            ready.set()
            done.wait(10)

    proc = multiprocessing.get_context("fork").Process(target=hold)
    proc.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockTimeout) as e:
            with ufw_lock(0.2, path):
                pass
        assert "ufw command held" in str(e.value) and e.value.exit_code == 3
    finally:
        done.set()
        proc.join(10)
    with ufw_lock(1.0, path):
        pass
