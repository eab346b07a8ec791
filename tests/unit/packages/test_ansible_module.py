"""The Ansible module's own logic (packaging/ansible/.../vrrp_firewall.py),
imported as a plain Python file: no Ansible needed.  ``AnsibleModule`` is
stood in for by a recorder; the library calls are vrrpfw's real ``Result``
objects, built here, so what is tested is the mapping of options to the
library and of results to Ansible's ``changed`` / ``failed`` / ``diff``.
The module against real firewalls and real adverts: tests/integration/packages/test_ansible.py."""

from __future__ import annotations

import contextlib
import inspect
import os
import types
from typing import Any, Dict, List

import pytest
from ansible_stub import Exited, FakeModule, _load

from vrrpfw import api
from vrrpfw.errors import InputError, PersistFileError
from vrrpfw.results import Action, LayerReport, Persisted, PersistReport, Result, RuleReport, Runtime

M = _load()


def params(**given: Any) -> Dict[str, Any]:
    """The parameters Ansible hands the module: every option, defaults filled."""
    out = {name: spec.get("default") for name, spec in M.ARGUMENT_SPEC.items()}
    out.update(given)
    return out


def rule(direction: str = "in", iface: str = "eth1", runtime: Runtime = Runtime.ALLOWED,
         persisted: Persisted = Persisted.PRESENT, backend: str = "iptables") -> RuleReport:
    chain = "INPUT" if direction == "in" else "OUTPUT"
    flag = "-i" if direction == "in" else "-o"
    return RuleReport(direction, iface, "224.0.0.18", chain,
                      f"-A {chain} -d 224.0.0.18/32 {flag} {iface} -p 112 -m comment --comment vrrpfw "
                      "-j ACCEPT",
                      runtime, persisted, backend=backend)


# -- option mapping -----------------------------------------------------------

def test_every_library_keyword_of_open_and_close_is_a_module_option():
    """A keyword the library grows and the module forgets fails here; only
    ``root`` (a test hook for host files) is left out."""
    for state, fn in (("open", api.open), ("closed", api.close)):
        name, kwargs = M.call_arguments(params(state=state), check_mode=False)
        assert name == ("open" if state == "open" else "close")
        wanted = set(inspect.signature(fn).parameters) - {"root"}
        assert set(kwargs) == wanted, (state, wanted ^ set(kwargs))


def test_every_cli_option_of_open_and_close_is_a_module_option():
    """The issue's contract: every option of `vrrpfw open` / `vrrpfw close`.
    --dry-run is check mode, --json and --prove are the command line's."""
    from vrrpfw.cli import commands as cli

    renamed = {"iface": "interfaces", "peer": "peers", "no_persist": "persist",
               "from_": "sources"}
    not_options = {"dry_run", "as_json", "prove_"}
    for command in (cli.open_cmd, cli.close_cmd):
        for name in inspect.signature(command).parameters:
            if name in not_options:
                continue
            assert renamed.get(name, name) in M.ARGUMENT_SPEC, (command.__name__, name)


def test_check_mode_is_the_dry_run_and_values_pass_through_unchanged():
    p = params(interfaces=["eth1", "eth2"], peers=["192.0.2.2"], src="192.0.2.1", ah=True, strict=True,
               family="ipv4", lock_timeout=2.5, persist=False, backend="nftables", netns="blue")
    name, kw = M.call_arguments(p, check_mode=True)
    assert name == "open" and kw["dry_run"] is True
    assert kw["interfaces"] == ["eth1", "eth2"] and kw["peers"] == ["192.0.2.2"]
    assert (kw["src"], kw["ah"], kw["strict"], kw["family"]) == ("192.0.2.1", True, True, "ipv4")
    assert (kw["lock_timeout"], kw["persist"], kw["backend"], kw["netns"]) == (2.5, False, "nftables", "blue")
    assert M.call_arguments(p, check_mode=False)[1]["dry_run"] is False


def test_close_gets_remove_seed_rules_and_not_open_only_options():
    name, kw = M.call_arguments(params(state="closed", remove_seed_rules=True, group="192.0.2.2"), False)
    assert name == "close" and kw["remove_seed_rules"] is True and kw["group"] == "192.0.2.2"
    assert not {"src", "ah", "strict", "force"} & set(kw)


def test_the_before_check_takes_only_what_check_takes():
    allowed = set(inspect.signature(api.check).parameters)
    for state in ("open", "closed"):
        args = M.check_arguments(params(state=state, interfaces=["eth1"], persist_file="/tmp/x"))
        assert set(args) <= allowed, set(args) - allowed
        assert args["persist_file"] == "/tmp/x" and args["dry_run"] is True
    # close: every rule vrrpfw has (discovery), narrowed to what the close handled afterwards
    closing = M.check_arguments(params(state="closed", interfaces=["eth1"], group="192.0.2.2", family="ipv4"))
    assert "interfaces" not in closing and "group" not in closing and closing["family"] == "ipv4"


@pytest.mark.parametrize(("given", "message"), [
    ({"state": "closed", "ah": True}, "ah applies to state=open only, not to state=closed"),
    ({"state": "closed", "src": "192.0.2.1", "strict": True},
     "src and strict apply to state=open only, not to state=closed"),
    ({"remove_seed_rules": True}, "remove_seed_rules applies to state=closed only, not to state=open"),
    ({"backend": "iptables", "zone": "public"}, "zone applies to firewalld only, not to backend=iptables"),
    ({"backend": "nftables", "mode": "direct", "force": True},
     "mode and force apply to firewalld only, not to backend=nftables"),
    ({"backend": "firewalld", "mode": "zone", "force": True}, "force applies to mode=direct only"),
])
def test_options_that_do_not_fit_together_are_refused_in_the_modules_words(given, message):
    assert message in M.refusal(params(**given))


@pytest.mark.parametrize("given", [
    {}, {"backend": "firewalld", "zone": "public", "mode": "zone"},
    {"state": "closed", "remove_seed_rules": True},
    {"backend": "auto", "mode": "direct", "force": True}, {"state": "closed", "peers": ["192.0.2.2"]},
])
def test_options_that_fit_are_not_refused(given):
    """(close with peers goes to the library, which refuses it in its own words.)"""
    assert M.refusal(params(**given)) is None


# -- results -------------------------------------------------------------------

def test_rule_lines_one_line_per_rule_then_its_text_sorted():
    text = M.rule_lines([asdict_rule(rule("out")), asdict_rule(rule("in", runtime=Runtime.MISSING,
                                                                   persisted=Persisted.MISSING))])
    assert text.splitlines() == [
        "in eth1 224.0.0.18 (iptables INPUT): runtime missing, persisted missing",
        "    -A INPUT -d 224.0.0.18/32 -i eth1 -p 112 -m comment --comment vrrpfw -j ACCEPT",
        "out eth1 224.0.0.18 (iptables OUTPUT): runtime allowed, persisted present",
        "    -A OUTPUT -d 224.0.0.18/32 -o eth1 -p 112 -m comment --comment vrrpfw -j ACCEPT",
    ]
    assert M.rule_lines([]) == ""


def asdict_rule(r: RuleReport) -> Dict[str, Any]:
    res = Result("open", "iptables", rules=[r])
    return res.to_dict()["rules"][0]


def test_diff_entries_files_first_then_the_runtime_rules():
    entries = M.diff_entries([("/tmp/rules.v4", None, "x\n"), ("/tmp/b", "a\n", "b\n")], "r1\n", "r2\n",
                             "iptables")
    assert entries[0] == {"before_header": "/tmp/rules.v4", "after_header": "/tmp/rules.v4", "before": "",
                          "after": "x\n"}
    assert entries[1]["before"] == "a\n" and entries[1]["after"] == "b\n"
    assert entries[2] == {"before_header": "vrrpfw runtime rules (iptables)",
                          "after_header": "vrrpfw runtime rules (iptables)",
                          "before": "r1\n", "after": "r2\n"}


def test_close_scope_keeps_the_rules_the_close_handled():
    before = [asdict_rule(rule(iface="eth1")), asdict_rule(rule(iface="eth2")),
              asdict_rule(rule("out", iface="eth2"))]
    closed = [asdict_rule(rule(iface="eth2", runtime=Runtime.ABSENT, persisted=Persisted.ABSENT))]
    assert M.close_scope(before, closed) == [before[1]]
    assert M.close_scope(before, []) == []
    other_layer = [asdict_rule(rule(iface="eth2", backend="nftables"))]
    assert M.close_scope(before, other_layer) == []


def test_returned_keeps_ansibles_diff_key_free_and_says_changed():
    res = Result("open", "iptables", changed=True, diff="+-A INPUT ...\n", rules=[rule()])
    out = M.returned(res.to_dict())
    assert "diff" not in out and out["saved_diff"] == "+-A INPUT ...\n"
    assert out["changed"] is True and out["ok"] is True and out["exit_code"] == 0
    assert out["rules"][0]["runtime"] == "allowed"


def test_failure_message_is_one_line_with_what_is_wrong():
    res = Result("open", "iptables", changed=True,
                 rules=[rule(runtime=Runtime.MISSING, persisted=Persisted.MISSING), rule("out")],
                 blockers=["nf_tables inet filter input drops VRRP"],
                 persist=[PersistReport("/tmp/rules.v4", error="persisting failed: disk full",
                                        note="nothing restores this file\nat boot")],
                 layers=[LayerReport("iptables", error="iptables: boom")])
    msg = M.failure_message("vrrpfw open: NOT OK, changed (backend iptables)", res.to_dict())
    assert "\n" not in msg
    assert msg.startswith("vrrpfw open: NOT OK, changed (backend iptables): blocked: nf_tables inet filter")
    for part in ("/tmp/rules.v4: persisting failed: disk full", "layer iptables: iptables: boom",
                 "in eth1 224.0.0.18 (iptables INPUT): runtime missing, persisted missing",
                 "note: nothing restores this file at boot"):
        assert part in msg
    assert "out eth1" not in msg  # the rule that is fine is not a problem


def test_close_problems_are_rules_still_there():
    res = Result("close", "iptables", rules=[rule(runtime=Runtime.ABSENT, persisted=Persisted.PRESENT),
                                             rule("out", runtime=Runtime.ABSENT, persisted=Persisted.ABSENT)])
    assert M.problems(res.to_dict()) == [
        "in eth1 224.0.0.18 (iptables INPUT): runtime absent, persisted present"]


def test_next_boot_problems_name_the_rule_and_the_warning():
    note = "not persisted: VRRP in on eth1 (224.0.0.18, ipv4) passes now (allowed-by-other), but ..."
    res = Result("check", "iptables", warnings=[note, "an unrelated warning"],
                 rules=[rule(runtime=Runtime.ALLOWED_BY_OTHER, persisted=Persisted.MISSING),
                        rule("out", runtime=Runtime.ALLOWED_BY_POLICY, persisted=Persisted.UNCERTAIN)])
    assert M.problems(res.to_dict()) == [
        "in eth1 224.0.0.18 (iptables INPUT): runtime allowed-by-other, persisted missing",
        "out eth1 224.0.0.18 (iptables OUTPUT): runtime allowed-by-policy, persisted uncertain", note]


# -- the module's run, with the library's calls stood in for --------------------

class FakeApi:
    """vrrpfw.api as the module uses it: records calls, returns given results."""

    def __init__(self, result: Any = None, before: Any = None, saved: Any = ()) -> None:
        self.result, self.before, self.saved = result, before, list(saved)
        self.calls: List[Any] = []

    def _answer(self, name: str, value: Any, kw: Dict[str, Any]) -> Any:
        self.calls.append((name, kw))
        if isinstance(value, Exception):
            raise value
        return value

    def open(self, **kw: Any) -> Any:
        return self._answer("open", self.result, kw)

    def close(self, **kw: Any) -> Any:
        return self._answer("close", self.result, kw)

    def check(self, **kw: Any) -> Any:
        return self._answer("check", self.before, kw)

    @contextlib.contextmanager
    def saved_texts(self) -> Any:
        seen: List[Any] = []
        yield seen
        seen.extend(self.saved)


def run(monkeypatch, fake: FakeApi, module: FakeModule) -> Exited:
    monkeypatch.setattr(M, "vrrpfw_api", fake)
    with pytest.raises(Exited) as ended:
        M.run(module)
    return ended.value


def test_changed_comes_from_the_library(monkeypatch):
    res = Result("open", "iptables", changed=True, rules=[rule()],
                 warnings=["interface eth1 does not\nexist"])
    module = FakeModule(params(interfaces=["eth1"], persist_file="/tmp/r"))
    ended = run(monkeypatch, FakeApi(res), module)
    assert not ended.failed and ended.result["changed"] is True and ended.result["exit_code"] == 0
    assert module.warnings == ["interface eth1 does not exist"]
    assert "diff" not in ended.result
    assert ended.result["report"][0] == "vrrpfw open: ok, changed (backend iptables)"


def test_check_mode_calls_the_dry_run_and_reports_would_change(monkeypatch):
    res = Result("open", "iptables", changed=True, dry_run=True, rules=[rule()])
    fake = FakeApi(res)
    ended = run(monkeypatch, fake, FakeModule(params(interfaces=["eth1"]), check_mode=True))
    assert fake.calls == [("open", fake.calls[0][1])] and fake.calls[0][1]["dry_run"] is True
    assert not ended.failed and ended.result["changed"] is True


def test_a_vrrpfw_error_fails_with_its_one_line_and_exit_code(monkeypatch):
    err = InputError("interface name 'eth*' has a wildcard\ncharacter")
    ended = run(monkeypatch, FakeApi(err), FakeModule(params(interfaces=["eth*"])))
    assert ended.failed
    assert ended.result == {"msg": "interface name 'eth*' has a wildcard character", "exit_code": 2,
                            "changed": False}
    ended = run(monkeypatch, FakeApi(PersistFileError("/tmp/r: line 3: no COMMIT")),
                FakeModule(params(interfaces=["eth1"])))
    assert ended.result["exit_code"] == 3 and ended.result["msg"] == "/tmp/r: line 3: no COMMIT"


def test_a_refusal_fails_before_the_library_is_called(monkeypatch):
    fake = FakeApi(Result("close", "iptables"))
    ended = run(monkeypatch, fake, FakeModule(params(state="closed", ah=True)))
    assert ended.failed and ended.result["exit_code"] == 2 and fake.calls == []


def test_a_result_that_is_not_ok_fails_the_task_and_keeps_changed(monkeypatch):
    res = Result("open", "iptables", changed=True, rules=[rule()], blockers=["nf_tables drops it"])
    ended = run(monkeypatch, FakeApi(res), FakeModule(params(interfaces=["eth1"])))
    assert ended.failed and ended.result["changed"] is True and ended.result["exit_code"] == 1
    assert ended.result["msg"] == ("vrrpfw open: NOT OK, changed (backend iptables): "
                                   "blocked: nf_tables drops it")


def test_diff_mode_before_from_check_after_from_the_run_and_changed_files_only(monkeypatch):
    before = Result("check", "iptables", rules=[rule(runtime=Runtime.MISSING, persisted=Persisted.MISSING)])
    after = Result("open", "iptables", changed=True, rules=[rule()])
    after.rules[0].action = Action.INSERT
    saved = [api.SavedText("/tmp/rules.v4", "*filter\nCOMMIT\n", "*filter\n-A INPUT x\nCOMMIT\n"),
             api.SavedText("/tmp/other", "same\n", "same\n")]
    fake = FakeApi(after, before, saved)
    ended = run(monkeypatch, fake, FakeModule(params(interfaces=["eth1"], persist_file="/tmp/rules.v4"),
                                               diff=True))
    assert [c[0] for c in fake.calls] == ["check", "open"]
    diff = ended.result["diff"]
    assert [d["before_header"] for d in diff] == ["/tmp/rules.v4", "vrrpfw runtime rules (iptables)"]
    assert diff[0]["after"] == "*filter\n-A INPUT x\nCOMMIT\n"
    assert "runtime missing, persisted missing" in diff[1]["before"]
    assert "runtime allowed, persisted present" in diff[1]["after"]


def test_diff_mode_says_when_the_before_could_not_be_read(monkeypatch):
    fake = FakeApi(Result("open", "iptables", rules=[rule()]), PersistFileError("unreadable"))
    ended = run(monkeypatch, fake, FakeModule(params(interfaces=["eth1"]), diff=True))
    assert ended.result["diff"][-1]["before"] == "(could not be read: unreadable)\n"


def test_close_diff_before_is_every_rule_of_the_closed_interfaces(monkeypatch):
    before = Result("check", "iptables", rules=[rule(iface="eth1"), rule(iface="eth2")])
    after = Result("close", "iptables", changed=True,
                   rules=[rule(iface="eth2", runtime=Runtime.ABSENT, persisted=Persisted.ABSENT)])
    fake = FakeApi(after, before)
    ended = run(monkeypatch, fake, FakeModule(params(state="closed", interfaces=["eth2"]), diff=True))
    assert "interfaces" not in fake.calls[0][1]
    runtime = ended.result["diff"][-1]
    assert "eth1" not in runtime["before"] and "eth2 224.0.0.18 (iptables INPUT): runtime allowed" \
        in runtime["before"]
    assert "runtime absent, persisted absent" in runtime["after"]


def test_without_the_library_the_module_says_to_install_it(monkeypatch):
    created: List[FakeModule] = []

    class Recording(FakeModule):
        def __init__(self, argument_spec: Any, supports_check_mode: bool) -> None:
            super().__init__(params())
            assert supports_check_mode and argument_spec is M.ARGUMENT_SPEC
            created.append(self)

    monkeypatch.setattr(M, "AnsibleModule", Recording)
    monkeypatch.setattr(M, "vrrpfw", None)
    with pytest.raises(Exited) as ended:
        M.main()
    assert ended.value.failed and ended.value.result["exit_code"] == 3
    assert "install the vrrpfw package" in ended.value.result["msg"]
    assert "\n" not in ended.value.result["msg"]


def test_an_unexpected_error_is_one_line_exit_4(monkeypatch):
    class Boom(FakeModule):
        def __init__(self, argument_spec: Any, supports_check_mode: bool) -> None:
            super().__init__(params(interfaces=["eth1"]))

    monkeypatch.setattr(M, "AnsibleModule", Boom)
    monkeypatch.setattr(M, "vrrpfw_api", FakeApi(KeyError("x")))
    with pytest.raises(Exited) as ended:
        M.main()
    assert ended.value.failed and ended.value.result["exit_code"] == 4
    assert ended.value.result["msg"] == "internal error: KeyError: 'x'"


def test_an_older_library_without_what_the_module_uses_says_to_upgrade(monkeypatch):
    class Recording(FakeModule):
        def __init__(self, argument_spec: Any, supports_check_mode: bool) -> None:
            super().__init__(params(interfaces=["eth1"]))

    monkeypatch.setattr(M, "AnsibleModule", Recording)
    monkeypatch.setattr(M, "vrrpfw_api", types.SimpleNamespace(open=None, close=None, check=None))
    with pytest.raises(Exited) as ended:
        M.main()
    assert ended.value.failed and ended.value.result["exit_code"] == 3
    assert "upgrade the vrrpfw package" in ended.value.result["msg"]


def test_messages_quote_no_file_that_not_everyone_may_read(monkeypatch, tmp_path):
    # The module runs as root (become), and its output goes to the controller's
    # logs: a library error about a root-only file keeps file:line and the reason.
    from vrrpfw.host import invoker
    from vrrpfw.persist import iptables_save

    monkeypatch.setattr(invoker, "_audience", invoker._audience)  # restored after the test
    secret = "root:$6$S3cr3tHash:19000:0:99999:7:::"
    path = tmp_path / "rules.v4"
    path.write_text(secret + "\n")
    os.chmod(path, 0o600)

    class Parsing(FakeApi):
        def open(self, **kw: Any) -> Any:
            iptables_save.parse(path.read_text(), str(path))

    ended = run(monkeypatch, Parsing(), FakeModule(params(interfaces=["eth1"], persist_file=str(path))))
    assert ended.failed and ended.result["exit_code"] == 3
    assert "S3cr3t" not in str(ended.result)
    assert ended.result["msg"].startswith(f"{path}:1: ") and "is outside any table" in ended.result["msg"]


def test_sources_go_to_open_and_its_before_check_and_are_refused_on_close():
    p = params(interfaces=["eth1"], sources=["192.0.2.2"])
    assert M.call_arguments(p, check_mode=False)[1]["sources"] == ["192.0.2.2"]
    assert M.check_arguments(p)["sources"] == ["192.0.2.2"]
    assert M.refusal(params(state="closed", sources=["192.0.2.2"])) == (
        "sources applies to state=open only, not to state=closed")
    assert "sources" not in M.call_arguments(params(state="closed"), False)[1]
