"""vrrpfw.judge.nextboot (pure) and the saved-text side of
vrrpfw.persist.nextboot: the next boot's verdict on an advert that passes
now, from a saved ruleset as its boot unit restores it.  The integration
test tests/integration/persist/test_next_boot.py holds the same claims against real
restores and real adverts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vrrpfw.judge.nextboot import BootModel, judge_boot, outcome
from vrrpfw.model import Direction, Family, VrrpRule
from vrrpfw.persist import nextboot as persist_nextboot
from vrrpfw.persist.nextboot import judge_next_boot, save_text_model
from vrrpfw.results import Persisted, Result, RuleReport, Runtime

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

IN4 = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
IN6 = VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6)
LOCAL = ("192.0.2.1", "192.0.2.0/24")

DROP_NO_VRRP = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
COMMIT
"""
DROP_WITH_VRRP = DROP_NO_VRRP.replace("-A INPUT -i lo", "-A INPUT -p vrrp -j ACCEPT\n-A INPUT -i lo")
SET_FIRST = DROP_NO_VRRP.replace("-A INPUT -i lo", "-A INPUT -m set --match-set peers src -j ACCEPT\n"
                                 "-A INPUT -i lo")


def boot(text, family=Family.IPV4, layer="legacy"):
    return save_text_model("rules.v4 (restored at boot by netfilter-persistent)", text, family, layer)


@pytest.mark.parametrize("layer", ["legacy", "nft"])
def test_saved_policy_drop_without_the_allowance_drops_at_next_boot(layer):
    v = judge_boot([boot(DROP_NO_VRRP, layer=layer)], IN4, (), LOCAL)
    assert v is not None and v.state is Runtime.MISSING
    assert "filter INPUT: dropped by policy DROP" in v.text and v.text.startswith("rules.v4")
    state, note = outcome(Runtime.ALLOWED_BY_OTHER, Persisted.NOT_MANAGED, v, "VRRP in on eth0")
    assert state is Persisted.MISSING
    assert note is not None
    assert note.startswith("not persisted: VRRP in on eth0 passes now (allowed-by-other)")
    assert "the next boot drops it" in note


def test_saved_allowance_passes_and_changes_nothing():
    v = judge_boot([boot(DROP_WITH_VRRP)], IN4, (), LOCAL)
    assert v is not None and v.state is Runtime.ALLOWED_BY_OTHER
    assert outcome(Runtime.ALLOWED_BY_OTHER, Persisted.NOT_MANAGED, v, "x") == (Persisted.NOT_MANAGED, None)
    assert outcome(Runtime.ALLOWED, Persisted.PRESENT, v, "x") == (Persisted.PRESENT, None)


def test_a_policy_accept_at_runtime_over_a_saved_drop_is_not_persisted():
    v = judge_boot([boot(DROP_NO_VRRP)], IN4, (), LOCAL)
    state, note = outcome(Runtime.ALLOWED_BY_POLICY, Persisted.NOT_MANAGED, v, "x")
    assert state is Persisted.MISSING and note is not None and "(allowed-by-policy)" in note


def test_vrrpfws_own_rule_present_but_the_saved_file_drops_is_missing():
    """vrrpfw's line in the file does not make the next boot pass where the
    file drops the advert elsewhere (a raw PREROUTING drop only the file has)."""
    raw = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p vrrp -j DROP\nCOMMIT\n"
    v = judge_boot([boot(DROP_WITH_VRRP + raw)], IN4, (), LOCAL)
    assert v is not None and v.state is Runtime.MISSING and "raw PREROUTING" in v.text
    assert outcome(Runtime.ALLOWED, Persisted.PRESENT, v, "x")[0] is Persisted.MISSING


def test_dropped_now_is_not_judged_again():
    v = judge_boot([boot(DROP_NO_VRRP)], IN4, (), LOCAL)
    assert outcome(Runtime.MISSING, Persisted.MISSING, v, "x") == (Persisted.MISSING, None)
    assert outcome(Runtime.UNCERTAIN, Persisted.NOT_MANAGED, v, "x") == (Persisted.NOT_MANAGED, None)
    assert outcome(Runtime.ALLOWED, Persisted.SKIPPED, v, "x") == (Persisted.SKIPPED, None)


def test_no_saved_file_is_said_and_changes_nothing():
    v = judge_boot([boot(None)], IN4, (), LOCAL)
    assert v is not None and v.absent and v.state is None
    state, note = outcome(Runtime.ALLOWED_BY_OTHER, Persisted.NOT_MANAGED, v, "x")
    assert state is Persisted.NOT_MANAGED
    assert note is not None and note.startswith("next boot not judged: rules.v4") and "does not exist" in note


def test_a_file_that_cannot_be_judged_never_claims_present():
    unknown = BootModel("nftables.conf", (Family.IPV4, Family.IPV6), problem="nft could not load it")
    v = judge_boot([unknown], IN4, (), LOCAL)
    assert v is not None and v.state is None and "cannot be judged (nft could not load it)" in v.text
    for before in (Persisted.PRESENT, Persisted.NOT_MANAGED):
        state, note = outcome(Runtime.ALLOWED, before, v, "x")
        assert state is Persisted.UNCERTAIN and note is not None and "cannot be judged" in note
    assert outcome(Runtime.ALLOWED, Persisted.MISSING, v, "x")[0] is Persisted.MISSING


def test_a_set_whose_contents_the_file_does_not_hold_is_uncertain():
    v = judge_boot([boot(SET_FIRST)], IN4, (), LOCAL)
    assert v is not None and v.state is Runtime.UNCERTAIN
    assert outcome(Runtime.ALLOWED_BY_OTHER, Persisted.NOT_MANAGED, v, "x")[0] is Persisted.UNCERTAIN


def test_families_each_judged_by_their_own_file():
    boots = [boot(DROP_WITH_VRRP), boot(DROP_NO_VRRP.replace("-p vrrp", "-p 112"), Family.IPV6)]
    assert judge_boot(boots, IN4, (), LOCAL).state is Runtime.ALLOWED_BY_OTHER
    assert judge_boot(boots, IN6, (), None).state is Runtime.MISSING
    assert judge_boot([boot(DROP_NO_VRRP)], IN6) is None  # no IPv6 file of this layer: not judged


def test_every_file_on_the_path_counts_a_drop_wins():
    unknown = BootModel("nftables.conf", (Family.IPV4,), problem="?")
    v = judge_boot([boot(DROP_WITH_VRRP), boot(DROP_NO_VRRP, layer="nft"), unknown], IN4, (), LOCAL)
    assert v.state is Runtime.MISSING
    v = judge_boot([boot(DROP_WITH_VRRP), unknown], IN4, (), LOCAL)
    assert v.state is None
    v = judge_boot([boot(DROP_WITH_VRRP), boot(None)], IN4, (), LOCAL)  # absent beside present: ignored
    assert v.state is Runtime.ALLOWED_BY_OTHER


def test_a_match_vrrpfw_does_not_know_is_uncertain_never_passes():
    m = save_text_model("rules.v4", "*filter\n:INPUT DROP [0:0]\n"
                        "-A INPUT -p vrrp -m nosuchmatch --x -j ACCEPT\nCOMMIT\n", Family.IPV4, "legacy")
    v = judge_boot([m], IN4, (), LOCAL)
    assert v is not None and v.state is Runtime.UNCERTAIN and "nosuchmatch" in v.text


def test_uncertain_persisted_is_not_ok():
    res = Result("check", "iptables")
    res.rules = [RuleReport.for_rule(IN4, "", Runtime.ALLOWED_BY_OTHER, Persisted.UNCERTAIN)]
    assert not res.ok and res.exit_code == 1
    res.rules[0].persisted = Persisted.NOT_MANAGED
    assert res.ok


class Store:
    def __init__(self, boots):
        self.boots = boots
        self.asked = 0

    def boot_models(self):
        self.asked += 1
        return self.boots


def _run(store, state, persisted, monkeypatch):
    monkeypatch.setattr(persist_nextboot.ifaddr, "primary_of", lambda *a: LOCAL)
    res = Result("check", "iptables")
    res.rules = [RuleReport.for_rule(IN4, "", state, persisted)]
    judge_next_boot(store, [SimpleNamespace(rule=IN4, state=state)], res, ())
    return res


def test_the_run_marks_the_rule_and_warns_once(monkeypatch):
    res = _run(Store([boot(DROP_NO_VRRP)]), Runtime.ALLOWED_BY_OTHER, Persisted.NOT_MANAGED, monkeypatch)
    assert res.rules[0].persisted is Persisted.MISSING and res.exit_code == 1
    assert len([w for w in res.warnings if w.startswith("not persisted: VRRP in on eth0")]) == 1


def test_the_run_reads_no_file_when_nothing_passes_or_nothing_is_persisted(monkeypatch):
    store = Store([boot(DROP_NO_VRRP)])
    res = _run(store, Runtime.MISSING, Persisted.MISSING, monkeypatch)
    assert store.asked == 0 and res.warnings == []
    res = _run(store, Runtime.ALLOWED_BY_OTHER, Persisted.SKIPPED, monkeypatch)
    assert store.asked == 0 and res.rules[0].persisted is Persisted.SKIPPED


def test_loading_into_a_namespace_needs_root(monkeypatch):
    monkeypatch.setattr(persist_nextboot.os, "geteuid", lambda: 1000)
    m = persist_nextboot.nft_conf_model("nftables.conf", "/nonexistent", "flush ruleset\n", on_disk=False)
    assert m.model is None and "needs root" in m.problem
    assert persist_nextboot.nft_conf_model("x", "/nonexistent", None, on_disk=True).absent



def _family_file(tmp_path, text, family_kind):
    from vrrpfw.persist.iptables_store import FamilyFile
    from vrrpfw.persist.locations import PersistTarget
    from vrrpfw.persist.saved import SavedFile

    path = str(tmp_path / "rules.v4")
    if text is not None:
        with open(path, "w") as f:
            f.write(text)
    saved = SavedFile(path)
    store = FamilyFile(PersistTarget(path, family_kind, None, None), saved, "legacy")
    store.load()
    return store


def test_a_distribution_file_nothing_restores_is_not_judged(tmp_path):
    """rules.v4 without netfilter-persistent: the next boot loads nothing
    from it, so its policy DROP is no claim about the next boot."""
    (m,) = _family_file(tmp_path, DROP_NO_VRRP, "debian").boot_models()
    v = judge_boot([m], IN4, (), LOCAL)
    assert v is not None and v.absent and "nothing restores" in v.text
    state, note = outcome(Runtime.ALLOWED_BY_OTHER, Persisted.NOT_MANAGED, v, "x")
    assert state is Persisted.NOT_MANAGED and note is not None and note.startswith("next boot not judged: ")


def test_the_admins_own_file_is_judged_as_restored(tmp_path):
    (m,) = _family_file(tmp_path, DROP_NO_VRRP, "custom").boot_models()
    assert judge_boot([m], IN4, (), LOCAL).state is Runtime.MISSING


def test_an_absent_file_is_said(tmp_path):
    (m,) = _family_file(tmp_path, None, "custom").boot_models()
    assert m.absent and judge_boot([m], IN4, (), LOCAL).text.endswith("rules.v4 does not exist")


def test_layered_store_judges_the_iptables_files_only_where_restored():
    from vrrpfw.backends.nftables import LayeredStore

    conf = BootModel("nftables.conf", (Family.IPV4, Family.IPV6))
    v4 = BootModel("rules.v4", (Family.IPV4,))
    nft = SimpleNamespace(path="nftables.conf", restorer="nftables.service", boot_models=lambda: [conf])
    part = SimpleNamespace(restorer=None, boot_models=lambda: [v4])
    store = LayeredStore(SimpleNamespace(), nft, SimpleNamespace(path="rules.v4", restorer=None,
                                                                  parts={Family.IPV4: part}))
    assert store.boot_models() == [conf]
    part.restorer = "netfilter-persistent"
    assert store.boot_models() == [conf, v4]
