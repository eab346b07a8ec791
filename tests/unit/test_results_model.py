"""What open/check/close return: per-rule reports, ok and exit codes, the
JSON shape, and one result for several layers.  Written against the
survivors of a mutation run (tests/mutation.sh saved)."""

import pytest

from vrrpfw.errors import EXIT_NOT_ALLOWED, EXIT_OK
from vrrpfw.model import Direction, VrrpRule
from vrrpfw.results import (
    Action,
    LayerReport,
    Persisted,
    PersistReport,
    Result,
    RuleReport,
    Runtime,
    merge,
)

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py


def rule(runtime=Runtime.ALLOWED, persisted=Persisted.PRESENT, iface="eth0", backend=""):
    rep = RuleReport("in", iface, "224.0.0.18", "INPUT", "-A INPUT ...", runtime, persisted)
    rep.backend = backend
    return rep


def test_for_rule_takes_every_field_from_the_rule():
    r = VrrpRule(Direction.OUT, "eth1", "224.0.0.19")
    rep = RuleReport.for_rule(r, "the text", Runtime.SHADOWED, Persisted.NOT_MANAGED)
    assert rep == RuleReport("out", "eth1", "224.0.0.19", "OUTPUT", "the text", Runtime.SHADOWED,
                             Persisted.NOT_MANAGED, Action.NONE, Action.NONE, "", "")
    assert rep.key == ("out", "eth1", "224.0.0.19") == r.key
    assert isinstance(rep.direction, str) and rep.direction == "out"


def test_to_dict_is_plain_json_values():
    rep = rule()
    rep.action, rep.persist_action, rep.detail, rep.backend = Action.MOVE, Action.INSERT, "d", "iptables"
    r = Result("open", "iptables", changed=True, rules=[rep],
               persist=[PersistReport("/etc/iptables/rules.v4", changed=True,
                                      boot_restore="netfilter-persistent", note="n")],
               planned=["iptables -I INPUT 1 ..."], diff="+x\n", warnings=["w"],
               layers=[LayerReport("iptables", "changed", "changed")])
    assert r.to_dict() == {
        "command": "open", "backend": "iptables", "changed": True, "dry_run": False,
        "rules": [{"direction": "in", "interface": "eth0", "group": "224.0.0.18", "chain": "INPUT",
                   "rule": "-A INPUT ...", "runtime": "allowed", "persisted": "present", "action": "move",
                   "persist_action": "insert", "detail": "d", "backend": "iptables",
                   "family": "ipv4"}],
        "persist": [{"path": "/etc/iptables/rules.v4", "changed": True, "error": None,
                     "boot_restore": "netfilter-persistent", "note": "n"}],
        "planned": ["iptables -I INPUT 1 ..."], "diff": "+x\n", "warnings": ["w"], "blockers": [],
        "nothing_filters": False, "derivation": [],
        "layers": [{"backend": "iptables", "runtime": "changed", "saved": "changed", "error": None}],
        "ok": True, "exit_code": 0,
    }
    assert type(r.to_dict()["rules"][0]["runtime"]) is str
    bad = Result("check", "iptables", rules=[rule(Runtime.MISSING)]).to_dict()
    assert (bad["ok"], bad["exit_code"]) == (False, 1)


def test_to_dict_leaves_the_result_alone():
    r = Result("open", "iptables", rules=[rule()])
    r.to_dict()
    assert r.rules[0].runtime is Runtime.ALLOWED


@pytest.mark.parametrize("runtime, persisted, ok", [
    (Runtime.ALLOWED, Persisted.PRESENT, True),
    (Runtime.ALLOWED_BY_OTHER, Persisted.NOT_MANAGED, True),
    (Runtime.ALLOWED_BY_POLICY, Persisted.SKIPPED, True),
    (Runtime.MISSING, Persisted.PRESENT, False),
    (Runtime.SHADOWED, Persisted.PRESENT, False),
    (Runtime.UNCERTAIN, Persisted.PRESENT, False),
    (Runtime.ABSENT, Persisted.PRESENT, False),
    (Runtime.ALLOWED, Persisted.MISSING, False),
    (Runtime.ALLOWED, Persisted.ABSENT, False),
])
def test_open_ok_per_rule(runtime, persisted, ok):
    r = Result("open", "x", rules=[rule(), rule(runtime, persisted, "eth1")])
    assert r.ok is ok
    assert r.exit_code == (EXIT_OK if ok else EXIT_NOT_ALLOWED)


@pytest.mark.parametrize("runtime, persisted, ok", [
    (Runtime.ABSENT, Persisted.ABSENT, True),
    (Runtime.MISSING, Persisted.MISSING, True),
    (Runtime.ALLOWED_BY_OTHER, Persisted.SKIPPED, True),
    (Runtime.ALLOWED_BY_POLICY, Persisted.ABSENT, True),
    (Runtime.ALLOWED, Persisted.ABSENT, False),  # a rule of ours still decides
    (Runtime.SHADOWED, Persisted.ABSENT, False),
    (Runtime.ABSENT, Persisted.PRESENT, False),
    (Runtime.ABSENT, Persisted.NOT_MANAGED, False),
])
def test_close_ok_per_rule(runtime, persisted, ok):
    assert Result("close", "x", rules=[rule(runtime, persisted)]).ok is ok


def test_ok_blockers_errors_and_empty_results():
    assert Result("open", "x", rules=[rule()]).ok is True
    assert Result("open", "x", rules=[]).ok is True
    assert Result("close", "x", rules=[]).ok is True
    assert Result("check", "x", rules=[]).ok is False
    assert Result("check", "x", rules=[rule()]).ok is True
    assert Result("open", "x", rules=[rule()], blockers=["b"]).ok is False
    assert Result("open", "none", nothing_filters=True).ok is True
    assert Result("open", "none", nothing_filters=True, blockers=["b"]).ok is False
    assert Result("open", "x", rules=[rule()], persist=[PersistReport("/f")]).ok is True
    assert Result("open", "x", rules=[rule()], persist=[PersistReport("/f", error="e")]).ok is False
    assert Result("open", "x", rules=[rule()], layers=[LayerReport("x")]).ok is True
    assert Result("open", "x", rules=[rule()], layers=[LayerReport("x", error="e")]).ok is False
    assert Result("open", "none", nothing_filters=True, layers=[LayerReport("x", error="e")]).ok is False
    assert Result("check", "none", nothing_filters=True, rules=[]).ok is True


def test_merge_joins_every_field_in_layer_order():
    a = Result("open", "iptables", changed=False, dry_run=True, rules=[rule(backend="iptables")],
               persist=[PersistReport("/a")], planned=["a1", "a2"], diff="-a\n", warnings=["w1", "w2"],
               blockers=["ba"], layers=[LayerReport("iptables", "unchanged")])
    b = Result("open", "nftables", changed=True, dry_run=False,
               rules=[rule(backend="nftables"), rule(Runtime.MISSING, backend="nftables")],
               persist=[PersistReport("/b", error="e")], planned=["b1"], diff="+b\n", warnings=["w2", "w3"],
               blockers=["bb"], layers=[LayerReport("nftables", "changed", error="e")])
    m = merge([a, b])
    assert m.command == "open" and m.backend == "iptables+nftables"
    assert m.changed is True and m.dry_run is True  # dry_run: the first layer's (the run's)
    assert [r.backend for r in m.rules] == ["iptables", "nftables", "nftables"]
    assert m.rules[2].runtime is Runtime.MISSING
    assert [p.path for p in m.persist] == ["/a", "/b"]
    assert m.planned == ["a1", "a2", "b1"]
    assert m.diff == "-a\n+b\n"
    assert m.warnings == ["w1", "w2", "w3"]
    assert m.blockers == ["ba", "bb"]
    assert [la.backend for la in m.layers] == ["iptables", "nftables"]
    assert m.nothing_filters is False
    assert m.ok is False and m.exit_code == EXIT_NOT_ALLOWED
    assert a.rules == [a.rules[0]] and a.planned == ["a1", "a2"]  # the parts are not changed


def test_merge_of_unchanged_layers_is_unchanged():
    a = Result("close", "iptables", rules=[rule(Runtime.ABSENT, Persisted.ABSENT)])
    b = Result("close", "nftables", changed=False)
    m = merge([a, b])
    assert m.changed is False and m.command == "close" and m.dry_run is False
    assert m.ok is True and m.exit_code == EXIT_OK
    assert merge([b, Result("close", "z", changed=True)]).changed is True
    assert merge([Result("open", "z", changed=True), b]).changed is True


def test_merge_of_one_result():
    a = Result("check", "iptables", rules=[rule()], warnings=["w"])
    m = merge([a])
    assert m.backend == "iptables" and m.command == "check" and m.rules == a.rules
    assert m.warnings == ["w"]
