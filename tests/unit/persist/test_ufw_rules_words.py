"""ufw's before rules files, the details test_ufw_rules.py leaves open:
the words of each refusal, which lines count as a chain's, and what the
store reports (paths, notes, locks) for one or two files."""

from __future__ import annotations

import pytest

from vrrpfw.errors import InputError, PersistFileError
from vrrpfw.model import Direction, Family, VrrpRule
from vrrpfw.persist import iptables_save
from vrrpfw.persist import ufw_rules as ur
from vrrpfw.persist.saved import FileSet

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

HEAD4 = "*filter\n:ufw-before-input - [0:0]\n:ufw-before-output - [0:0]\n"
HEAD6 = "*filter\n:ufw6-before-input - [0:0]\n:ufw6-before-output - [0:0]\n"
IN = VrrpRule(Direction.IN, "eth0", "224.0.0.18")
OUT = VrrpRule(Direction.OUT, "eth0", "224.0.0.18")
IN6 = VrrpRule(Direction.IN, "eth0", "ff02::12", Family.IPV6)
OURS_IN = iptables_save.rule_line(IN, "ufw-before-input")


def doc4(text):
    return ur.parse(text, "before.rules", Family.IPV4)


def test_chains_files_and_labels():
    assert ur.ufw_chains(Family.IPV4) == ("ufw-before-input", "ufw-before-output")
    assert ur.ufw_chains(Family.IPV6) == ("ufw6-before-input", "ufw6-before-output")
    assert ur.FILE_NAMES == {Family.IPV4: "before.rules", Family.IPV6: "before6.rules"}
    assert ur.default_path(Family.IPV4, "/r") == "/r/etc/ufw/before.rules"


@pytest.mark.parametrize("text, message", [
    ("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n",
     "before.rules: no *filter section; not one of ufw's before rules files, vrrpfw leaves it untouched"),
    ("*filter\n:INPUT DROP [0:0]\nCOMMIT\n",
     "before.rules: does not declare ufw-before-input and ufw-before-output (':ufw-before-input - [0:0]'); "
     "not ufw's before rules file for this family, vrrpfw leaves it untouched"),
    ("*filter\n:ufw-before-input - [0:0]\nCOMMIT\n",
     "before.rules: does not declare ufw-before-output (':ufw-before-output - [0:0]'); "
     "not ufw's before rules file for this family, vrrpfw leaves it untouched"),
])
def test_foreign_files_refused_word_for_word(text, message):
    with pytest.raises(PersistFileError) as e:
        doc4(text)
    assert str(e.value) == message


def test_only_the_filter_sections_append_lines_are_the_chains():
    raw = f"*raw\n:ufw-before-input - [0:0]\n{OURS_IN}\nCOMMIT\n"
    text = raw + HEAD4 + "-A ufw-before-input -i lo -j ACCEPT\nCOMMIT\n"
    assert not ur.is_persisted(doc4(text), IN)
    assert ur.owned_lines(doc4(text), Family.IPV4) == []
    new = ur.add_rules(doc4(text), [IN])
    assert new == raw + HEAD4 + OURS_IN + "\n-A ufw-before-input -i lo -j ACCEPT\nCOMMIT\n"
    # the long spelling --append is a chain's line too: ours goes above it
    long = HEAD4 + "--append ufw-before-input -i lo -j ACCEPT\nCOMMIT\n"
    assert ur.add_rules(doc4(long),
        [IN]) == HEAD4 + OURS_IN + "\n--append ufw-before-input -i lo -j ACCEPT\n" \
        "COMMIT\n"
    long_ours = HEAD4 + OURS_IN.replace("-A ", "--append ", 1) + "\nCOMMIT\n"
    assert ur.is_persisted(doc4(long_ours), IN)
    assert ur.owned_lines(doc4(long_ours), Family.IPV4) == [(3, IN.key)]


def test_first_keys_stop_at_the_first_line_not_ours():
    other = iptables_save.rule_line(VrrpRule(Direction.IN, "eth1", "224.0.0.18"), "ufw-before-input")
    late = iptables_save.rule_line(OUT, "ufw-before-input")
    text = HEAD4 + f"{OURS_IN}\n{other}\n-A ufw-before-input -j DROP\n{late}\nCOMMIT\n"
    keys = ur.first_keys(doc4(text), "ufw-before-input")
    assert keys == {IN.key, ("in", "eth1", "224.0.0.18")}


def test_a_rule_asked_twice_is_written_once_and_comments_above_the_first_rule_stay_with_it():
    text = HEAD4 + "# one\n# two\n-A ufw-before-input -i lo -j ACCEPT\nCOMMIT\n"
    new = ur.add_rules(doc4(text), [IN, IN, OUT])
    assert new == HEAD4 + OURS_IN + "\n# one\n# two\n-A ufw-before-input -i lo -j ACCEPT\n" \
        + iptables_save.rule_line(OUT, "ufw-before-output") + "\nCOMMIT\n"


def test_file_family_follows_a_symlink_to_its_content(tmp_path):
    real = tmp_path / "real.rules"
    real.write_text(HEAD6 + "COMMIT\n")
    link = tmp_path / "before.rules"
    link.symlink_to(real)
    assert ur.file_family(str(link)) is Family.IPV6
    four = tmp_path / "x6.rules"
    four.write_text(HEAD4 + "COMMIT\n")
    assert ur.file_family(str(four)) is Family.IPV4


def test_restorer_label_and_argv(monkeypatch):
    monkeypatch.setattr(ur, "which", lambda name: f"/sbin/{name}")
    tool, label = ur.restorer("legacy", Family.IPV4)
    assert label == "iptables-legacy-restore"
    assert tool is not None
    assert tool.label == "iptables-legacy-restore --noflush"
    assert tool.argv == ["/sbin/iptables-legacy-restore", "--test", "--noflush", "--wait=5"]


def test_check_family_word_for_word():
    ur.check_family([IN, OUT], Family.IPV4, "/x", ur.ufw_holds)
    with pytest.raises(InputError) as e:
        ur.check_family([IN, IN6], Family.IPV4, "/x/my.rules", ur.ufw_holds)
    assert str(e.value) == ("--persist-file /x/my.rules holds ufw's before.rules rules of one family; IPv6 "
        "rules "
                            "belong in before6.rules: run vrrpfw once per family (--family) with its own "
                            "--persist-file")
    with pytest.raises(InputError) as e:
        ur.check_family([IN6, IN], Family.IPV6, "/x/my6.rules", ur.ufw_holds)
    assert str(e.value).startswith("--persist-file /x/my6.rules holds ufw's before6.rules rules of one "
        "family; "
                                   "IPv4 rules belong in before.rules:")


def make_store(tmp_path, fams, custom=False):
    files = FileSet()
    parts = {}
    for fam in fams:
        path = str(tmp_path / ur.FILE_NAMES[fam])
        parts[fam] = ur.UfwRulesFile(path, files.get(path), fam, "nft")
        parts[fam].saved.restorers.clear()
    return ur.UfwRulesStore(parts, custom=custom), parts, files


def test_store_reports_its_paths_notes_and_locks(tmp_path):
    (tmp_path / "before.rules").write_text(HEAD4 + "COMMIT\n")
    (tmp_path / "before6.rules").write_text(HEAD6 + "COMMIT\n")
    s, parts, _ = make_store(tmp_path, (Family.IPV4, Family.IPV6))
    four, six = str(tmp_path / "before.rules"), str(tmp_path / "before6.rules")
    assert s.path == f"{four} and {six}"
    assert s.note is None and s.stages and s.restorer == ur.RESTORER_NOTE
    assert parts[Family.IPV4].note is None and parts[Family.IPV4].restorer == ur.RESTORER_NOTE
    assert s.lock_paths() == [four, six]
    s.load()
    plan = s.plan("open", [IN6])
    assert s.path == six  # only the file the plan writes
    assert plan.changed and plan.diff.startswith(f"--- "
        f"{six}") and "before.rules" not in plan.diff.replace(six, "")
    s.commit(plan)
    assert parts[Family.IPV6].saved.text != parts[Family.IPV6].saved.original
    assert parts[Family.IPV4].saved.text == parts[Family.IPV4].saved.original
    assert s.owned([IN, IN6]) == {IN6.key}
    assert s.persisted([IN, IN6]) == {IN6.key}
    assert [r.key for r in s.discover()] == [IN6.key]
    custom, _, _ = make_store(tmp_path, (Family.IPV4,), custom=True)
    assert custom.note == "custom persist file: ufw loads it only if it is ufw's before rules file"


def test_a_plan_that_changes_nothing_is_no_plan(tmp_path):
    (tmp_path / "before.rules").write_text(HEAD4 + "COMMIT\n")
    s, parts, _ = make_store(tmp_path, (Family.IPV4,))
    s.load()
    plan = s.plan("close", [IN, OUT])
    assert not plan.changed and plan.diff == ""
    assert parts[Family.IPV4].plan("close", [IN]).changed is False


def test_store_refusals_word_for_word(tmp_path):
    s, parts, _ = make_store(tmp_path, (Family.IPV4,))
    four = str(tmp_path / "before.rules")
    with pytest.raises(PersistFileError) as e:
        s.load()
    assert str(e.value) == (f"{four} does not exist: it is ufw's own file and vrrpfw never creates it "
        f"(reinstall "
                            "ufw, or use --no-persist)")
    (tmp_path / "before.rules").write_text(HEAD4 + "COMMIT\n")
    s.load()
    with pytest.raises(InputError) as e:
        s.plan("open", [IN, IN6])
    assert str(e.value) == ("ufw's IPv6 support is off (IPV6=no in /etc/default/ufw), so ufw loads no "
        "before6.rules; "
                            "vrrpfw will not keep IPv6 rules there (set IPV6=yes and reload ufw, or use "
                                "--no-persist)")
    s.check([IN, OUT])  # rules of the store's own family pass
    assert not s.plan("close", [IN6]).changed  # close of rules the store has no file for: nothing to do
