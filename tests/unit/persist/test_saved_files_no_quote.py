"""Saved files (iptables-save, nftables.conf, state.json) and their
restorers' complaints: a message never quotes a file the invoking user
could not read (file:line and the reason only); reads are bounded."""

from __future__ import annotations

import json
import os
import threading

import pytest

from vrrpfw.errors import PersistFileError
from vrrpfw.host import invoker
from vrrpfw.host.invoker import User
from vrrpfw.persist import files, iptables_save, nft_conf, restorers
from vrrpfw.persist.state import StateFile

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

NOBODY = User(65534, 65534, frozenset({65534}))
SECRET = "root:$6$S3cr3tHash:19000:0:99999:7:::"


def hidden(tmp_path: object, text: str, name: str = "hidden") -> str:
    p = f"{tmp_path}/{name}"
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o600)
    return p


# Every refusal of iptables_save.parse that quoted the line, and its reason.
SAVE_CASES = [
    (f"{SECRET}\n", ":1: ", "is outside any table"),
    (f"*filter\n  {SECRET}\nCOMMIT\n", ":2: ", "indented"),
    (f"*filter {SECRET}\nCOMMIT\n", ":1: ", "bad table line"),
    (f"*filter\n*{SECRET}\nCOMMIT\n", ":2: ", "starts before"),
    (f"*{SECRET}\nCOMMIT\n*{SECRET}\nCOMMIT\n", ":3: ", "a second"),
    (f"*filter\n{SECRET}\nCOMMIT\n", ":2: ", "unexpected line"),
    (f"*{SECRET}\n", ": ", "has no COMMIT line"),
]


@pytest.mark.parametrize("text, where, reason", SAVE_CASES)
def test_iptables_save_hidden(tmp_path: object, as_nobody: None, text: str, where: str, reason: str) -> None:
    p = hidden(tmp_path, text)
    with pytest.raises(PersistFileError) as e:
        iptables_save.parse(text, p)
    msg = str(e.value)
    assert "S3cr3t" not in msg
    assert msg.startswith(p + where) and reason in msg


def test_iptables_save_hidden_commit_with_blanks(tmp_path: object, as_nobody: None) -> None:
    p = hidden(tmp_path, "*filter\nCOMMIT \t\n")
    with pytest.raises(PersistFileError) as e:
        iptables_save.parse("*filter\nCOMMIT \t\n", p)
    assert str(e.value) == f"{p}:2: {invoker.NOT_SHOWN}: iptables-restore accepts only a bare COMMIT"


@pytest.mark.parametrize("text, where, reason", SAVE_CASES)
def test_iptables_save_readable_still_quotes(tmp_path: object, text: str, where: str, reason: str) -> None:
    p = hidden(tmp_path, text)  # root is the audience here: it may read everything
    with pytest.raises(PersistFileError) as e:
        iptables_save.parse(text, p)
    assert "S3cr3t" in str(e.value) and reason in str(e.value)


@pytest.mark.parametrize("doc", [
    {"version": 3, "interfaces": [{"interface": "eth0", "selector": SECRET}]},
    {"version": 3, "interfaces": [{"interface": "eth0", "group": [SECRET]}]},
    [SECRET],
])
def test_state_file_hidden(tmp_path: object, as_nobody: None, doc: object) -> None:
    p = hidden(tmp_path, json.dumps(doc), "state.json")
    with pytest.raises(PersistFileError) as e:
        StateFile(p).load()
    assert "S3cr3t" not in str(e.value)
    assert str(e.value).startswith(p) and "not a vrrpfw state file" in str(e.value)


def test_state_file_hidden_json_error_names_the_line(tmp_path: object, as_nobody: None) -> None:
    p = hidden(tmp_path, '{\n"version": 3,\n' + SECRET + "\n}", "state.json")
    with pytest.raises(PersistFileError, match=r"state\.json:3: not a vrrpfw state file \(Expecting "
                                               r"property name enclosed in double quotes, column 1\)") as e:
        StateFile(p).load()
    assert "S3cr3t" not in str(e.value)


def test_state_file_readable_still_says_why(tmp_path: object) -> None:
    p = hidden(tmp_path, json.dumps([SECRET]), "state.json")
    with pytest.raises(PersistFileError, match="S3cr3t"):
        StateFile(p).load()


ECHO = ("printf '%s\\n' \"iptables-restore v1.8.9 (legacy): Couldn't load match \\`S3cr3tmod':No such file\" "
        "'' 'Error occurred at line: 2' >&2; exit 2")


def test_restorer_complaint_about_a_hidden_file(tmp_path: object, as_nobody: None) -> None:
    # iptables-restore quotes a word of the line it refuses (measured with 1.8.9).
    p = hidden(tmp_path, f"*filter\n-A INPUT -m {SECRET} -j ACCEPT\nCOMMIT\n")
    fake = restorers.Restorer("iptables-legacy-restore", ["sh", "-c", ECHO, "sh"])
    err = fake.check(p)
    assert err is not None and "S3cr3t" not in err
    assert err.startswith("line 2: refused") and "((" not in err
    with pytest.raises(PersistFileError) as e:
        restorers.validate_candidate(p, "*filter\nCOMMIT\n", fake)
    assert "S3cr3t" not in str(e.value) and "line 2: refused" in str(e.value)


def test_restorer_complaint_about_a_readable_file(tmp_path: object) -> None:
    p = hidden(tmp_path, "*filter\nCOMMIT\n")
    fake = restorers.Restorer("iptables-legacy-restore", ["sh", "-c", ECHO, "sh"])
    assert "S3cr3tmod" in (fake.check(p) or "")


NFT_ECHO = ("printf '%s\\n' 'In file included from /etc/x.nft:1:1-29:' "
            "\"$H:3:12-21: Error: Could not resolve hostname\" '  ip saddr S3cr3thost accept' >&2; exit 1")


def test_nft_complaint_names_a_hidden_included_file(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                                    as_nobody: None) -> None:
    # The main file is readable by anyone; the include that nft quotes is not.
    inc = hidden(tmp_path, "table inet t { chain c { ip saddr S3cr3thost accept; }; }\n", "inc.nft")
    monkeypatch.setattr(invoker, "may_quote", lambda path: path != inc)
    monkeypatch.setattr(restorers, "may_quote", lambda path: path != inc)
    monkeypatch.setenv("H", inc)
    fake = restorers.Restorer("nft -c -f", ["sh", "-c", NFT_ECHO, "sh"])
    err = fake.check("/etc/hostname")
    assert err is not None and "S3cr3t" not in err
    assert err.startswith(f"{inc}:3: refused")


def test_read_text_refuses_a_fifo_without_blocking(tmp_path: object) -> None:
    fifo = f"{tmp_path}/fifo"
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(_refusal(fifo)), daemon=True)
    t.start()
    t.join(10)
    assert done and "is a FIFO, not a regular file" in done[0]


def _refusal(path: str) -> str:
    try:
        files.read_text(path)
    except PersistFileError as e:
        return str(e)
    return "read"


def test_read_text_size_cap(tmp_path: object) -> None:
    p = f"{tmp_path}/big"
    with open(p, "wb") as f:
        f.truncate(files.MAX_READ_BYTES + 1)  # sparse: no disk used
    assert "is larger than 67108864 bytes" in _refusal(p)


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_nftables_conf_include_of_a_device_or_fifo(tmp_path: object, target: str) -> None:
    if target == "fifo":
        target = f"{tmp_path}/fifo"
        os.mkfifo(target)
    main = f"{tmp_path}/nftables.conf"
    text = f'include "{target}"\ntable inet filter {{\n chain input {{\n }}\n}}\n'
    done = []

    def run() -> None:
        try:
            nft_conf.defined_chains_in(main, text)
            done.append("read")
        except PersistFileError as e:
            done.append(str(e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    assert done and "not a regular file; nft -f would not load it" in done[0], done


def test_nftables_conf_doubling_includes_end(tmp_path: object) -> None:
    os.mkdir(f"{tmp_path}/etc")  # nft's include path below the fake root
    for i in range(25):
        with open(f"{tmp_path}/etc/f{i}.nft", "w") as f:
            f.write(f'include "f{i + 1}.nft"\ninclude "f{i + 1}.nft"\n' if i < 24 else "")
    with pytest.raises(PersistFileError, match="more than 256 file reads"):
        nft_conf.defined_chains_in(f"{tmp_path}/etc/nftables.conf", 'include "f0.nft"\n', root=str(tmp_path))


def test_file_parsers_quote_only_through_the_invoker() -> None:
    # A new message in a parser of files must not quote with !r (the house
    # style for quoting): it goes through vrrpfw.host.invoker's quote()/show()
    # (keepalived.reader: _q/_show), which hide what the invoking user cannot read.
    import vrrpfw

    base = os.path.dirname(vrrpfw.__file__)
    for rel in ("keepalived/conf.py", "keepalived/reader.py", "persist/iptables_save.py",
                "persist/nft_conf.py", "persist/ufw_rules.py", "persist/restorers.py"):
        with open(os.path.join(base, rel), encoding="utf-8") as f:
            offending = [n for n, line in enumerate(f, 1) if "!r}" in line]
        assert not offending, f"{rel}: lines {offending} quote with !r"


def _within(seconds: float, fn):  # type: ignore[no-untyped-def]
    done = []
    t = threading.Thread(target=lambda: done.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert done, f"{fn} did not return within {seconds}s"
    return done[0]


def test_host_config_files_that_are_fifos_do_not_hang(tmp_path: object) -> None:
    # root= (the API's) names a tree whose configuration files vrrpfw reads.
    from vrrpfw.host import hostscan
    from vrrpfw.persist import locations

    os.makedirs(f"{tmp_path}/etc/ufw")
    os.mkfifo(f"{tmp_path}/etc/ufw/ufw.conf")
    os.mkfifo(f"{tmp_path}/etc/os-release")
    assert _within(10, lambda: hostscan.ufw_config(str(tmp_path))) is None
    assert _within(10, lambda: locations.os_release_ids(str(tmp_path))) == []


def test_the_diff_of_a_hidden_file_has_no_context_lines(tmp_path: object,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # --dry-run and --json show the planned change as a diff: for a file the
    # invoking user cannot read, only vrrpfw's own lines and their numbers.
    old = (f"*filter\n:INPUT DROP [0:0]\n-A INPUT -s 192.0.2.7 -m comment --comment {SECRET} -j ACCEPT\n"
           "COMMIT\n")
    new = old.replace("COMMIT\n", "-A INPUT -p 112 -m comment --comment vrrpfw -j ACCEPT\nCOMMIT\n")
    p = hidden(tmp_path, old)
    shown = files.unified_diff(p, old, new)
    assert "S3cr3t" in shown  # root's own view: three lines of context
    monkeypatch.setattr(invoker, "_audience", lambda: NOBODY)
    diff = files.unified_diff(p, old, new)
    assert "S3cr3t" not in diff
    assert diff.splitlines()[2:] == ["@@ -3,0 +4 @@",
                                     "+-A INPUT -p 112 -m comment --comment vrrpfw -j ACCEPT"]
