"""keepalived.conf reads are bounded (regular files only, size caps, a cap
on reads) and messages never quote a file the invoking user cannot read."""

from __future__ import annotations

import os
import time

import pytest

from vrrpfw.errors import InputError
from vrrpfw.host import invoker
from vrrpfw.host.invoker import User
from vrrpfw.keepalived import reader as keepalived_reader
from vrrpfw.keepalived.conf import parse

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

SECRET = "root:$6$S3cr3tHash:19000:0:99999:7:::"
INSTANCE = ("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n"
            " virtual_ipaddress {\n 192.0.2.9\n }\n}\n")


def write(path: str, text: str, mode: int = 0o644) -> str:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_include_dev_zero_is_refused(tmp_path: object) -> None:
    main = write(f"{tmp_path}/k.conf", INSTANCE + "include /dev/zero\n")
    with pytest.raises(InputError, match=r"k\.conf:8: cannot read /dev/zero: it is a character device, "
                                         r"not a regular file$"):
        parse(main)


def test_main_file_dev_zero_is_refused() -> None:
    with pytest.raises(InputError, match=r"^cannot read /dev/zero: it is a character device"):
        parse("/dev/zero")


def test_fifo_is_refused_without_blocking(tmp_path: object) -> None:
    fifo = f"{tmp_path}/fifo"
    os.mkfifo(fifo)
    main = write(f"{tmp_path}/k.conf", "include fifo\n")
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"k\.conf:1: cannot read .*/fifo: it is a FIFO, not a regular "
                                         r"file$"):
        parse(main)
    with pytest.raises(InputError, match=r"^cannot read .*/fifo: it is a FIFO"):
        parse(fifo)
    assert time.monotonic() - t0 < 5


def test_a_file_over_the_cap(tmp_path: object) -> None:
    write(f"{tmp_path}/big.conf", "#" * (keepalived_reader.MAX_FILE_BYTES + 1))
    main = write(f"{tmp_path}/k.conf", "\ninclude big.conf\n")
    with pytest.raises(InputError, match=r"k\.conf:2: cannot read .*big\.conf: it is larger than 1048576 "
                                         r"bytes \(1048577\) \(vrrpfw's limit for one file\)$"):
        parse(main)


def test_files_together_over_the_cap(tmp_path: object) -> None:
    # Nine files just under 1 MiB each: each is allowed, together they are not.
    for i in range(9):
        write(f"{tmp_path}/part{i}.conf", "#" * (keepalived_reader.MAX_FILE_BYTES - 10) + "\n")
    main = write(f"{tmp_path}/k.conf", INSTANCE + "include part*.conf\n")
    with pytest.raises(InputError, match=r"k\.conf:8: cannot read .*part\d\.conf: the configuration's files "
                                         r"together are larger than 8388608 bytes"):
        parse(main)


def test_doubling_includes_end_fast(tmp_path: object) -> None:
    # 25 files that each include the next twice: 2^25 reads unbounded.
    for i in range(25):
        nxt = f"include f{i + 1}.conf\n" * 2 if i < 24 else "! end\n"
        write(f"{tmp_path}/f{i}.conf", nxt)
    main = write(f"{tmp_path}/k.conf", INSTANCE + "include f0.conf\n")
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"f\d+\.conf:[12]: cannot read .*: more than 256 file reads"):
        parse(main)
    assert time.monotonic() - t0 < 10


def test_glob_expansion_cap(tmp_path: object) -> None:
    os.mkdir(f"{tmp_path}/d")
    for i in range(keepalived_reader.MAX_GLOB_MATCHES + 1):
        write(f"{tmp_path}/d/{i}.conf", "")
    main = write(f"{tmp_path}/k.conf", INSTANCE + "include d/*.conf\n")
    with pytest.raises(InputError, match=r"k\.conf:8: include d/\*\.conf matches 257 files, more than "
                                         r"vrrpfw's limit of 256$"):
        parse(main)


def test_256_small_includes_still_read(tmp_path: object) -> None:
    os.mkdir(f"{tmp_path}/d")
    for i in range(200):
        write(f"{tmp_path}/d/{i:03}.conf", "! nothing\n")
    main = write(f"{tmp_path}/k.conf", INSTANCE + "include d/*.conf\n")
    assert len(parse(main).files) == 201


# ------------------------------------------------ no quote of hidden bytes

# Each: the secret file's content, what the including file puts around the
# include, and the reason the message must still give.
HIDDEN = [
    (f'"{SECRET}\n', "", "unterminated quote in"),
    (f"{SECRET}\n", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n unicast_peer {\n",
     "unicast_peer"),
    (f"@{SECRET}\n" + INSTANCE, "", "skipped"),
    (f"vrrp_instance {SECRET} {{\n}}\n", "", "has no interface"),
    (f"vrrp_instance V {{\n interface {SECRET}\n}}\n", "", "interface name"),
    (f"vrrp_instance V {{\n interface eth0\n virtual_router_id {SECRET}\n}}\n", "", "virtual_router_id"),
    (f"global_defs {{\n vrrp_mcast_group4 {SECRET}\n}}\n", "", "vrrp_mcast_group4"),
    (f"vrrp_instance V {{\n interface eth0\n virtual_router_id 1\n authentication {{\n auth_type {SECRET}\n"
     "}\n}\n", "", "auth_type"),
    (f"vrrp_instance V {{\n interface eth0\n use_vmac {SECRET}\n virtual_router_id 1\n virtual_ipaddress {{\n"
     " 192.0.2.1\n }\n}\n", "", "use_vmac"),
    (f"vrrp_instance V {{\n interface eth0\n priority {SECRET}\n}}\n", "", "priority"),
    (f"vrrp_instance V {{\n interface eth0\n unicast_src_ip {SECRET}\n}}\n", "", "unicast_src_ip"),
    (f"vrrp_instance V {{\n interface eth0\n virtual_ipaddress {{\n {SECRET}\n }}\n}}\n", "",
     "virtual_ipaddress"),
    (f"include {SECRET}\n", "", "include"),
    ("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n"
     "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
     "", "already defined"),
]


@pytest.mark.parametrize("secret, before, reason", HIDDEN)
def test_hidden_file_is_never_quoted(tmp_path: object, as_nobody: None, secret: str, before: str,
                                     reason: str) -> None:
    hidden = write(f"{tmp_path}/hidden.conf", secret, 0o600)
    main = write(f"{tmp_path}/k.conf", before + f"include {hidden}\n" + "}\n" * before.count("{"))
    try:
        cfg = parse(main)
        text = "\n".join(cfg.notes)
    except InputError as e:
        text = str(e)
    assert "S3cr3t" not in text
    assert reason in text
    assert "hidden.conf:" in text or "k.conf:" in text


@pytest.mark.parametrize("secret, before, reason", HIDDEN[:3])
def test_readable_file_is_still_quoted(tmp_path: object, secret: str, before: str, reason: str) -> None:
    # Control: as root (the audience may read everything), the same messages show the text.
    hidden = write(f"{tmp_path}/hidden.conf", secret, 0o600)
    main = write(f"{tmp_path}/k.conf", before + f"include {hidden}\n" + "}\n" * before.count("{"))
    try:
        text = "\n".join(parse(main).notes)
    except InputError as e:
        text = str(e)
    assert "S3cr3t" in text


def test_brace_expansion_cap(tmp_path: object) -> None:
    # Each {a,b} doubles the patterns: 24 of them (120 bytes) were 16 million
    # patterns, minutes and gigabytes (2^18 took 7 s on main).
    main = write(f"{tmp_path}/k.conf", INSTANCE + "include " + "{a,b}" * 24 + ".conf\n")
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"k\.conf:8: include .* expands to more than 256 patterns, "
                                         r"vrrpfw's limit$"):
        parse(main)
    assert time.monotonic() - t0 < 5


def test_brace_expansion_order_and_matches(tmp_path: object) -> None:
    for name in ("xa.conf", "xb.conf", "yb.conf"):
        write(f"{tmp_path}/{name}", f"! {name}\n")
    main = write(f"{tmp_path}/k.conf", INSTANCE + "include {x,y}{a,b}.conf\n")
    assert [os.path.basename(f) for f in parse(main).files[1:]] == ["xa.conf", "xb.conf", "yb.conf"]


def test_a_hidden_definition_used_in_a_readable_file_is_not_quoted(tmp_path: object, as_nobody: None) -> None:
    # $X is defined in a file the invoking user cannot read and used in one
    # they can (here: one the test lets them read): its value is not shown.
    hidden = write(f"{tmp_path}/defs.conf", f"$X={SECRET}\n", 0o600)
    body = INSTANCE.replace("interface eth0", "interface $X")
    main = write(f"{tmp_path}/k.conf", f"include {hidden}\n" + body)
    real = invoker.may_quote
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(invoker, "may_quote", lambda path: path == main or real(path))
        with pytest.raises(InputError) as e:
            parse(main)
    assert "S3cr3t" not in str(e.value)
    assert str(e.value) == f"{main}:3: not a valid interface name"


@pytest.mark.parametrize("kind", ["fifo", "missing-perm", "loop"])
def test_an_include_path_in_a_hidden_file_is_not_shown(tmp_path: object, as_nobody: None, kind: str) -> None:
    # The path an include names is the hidden file's text too.
    target = f"{tmp_path}/S3cr3t-{kind}"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "missing-perm":
        os.mkdir(target)
        target += "/x.conf"
        write(target, "")
    hidden = f"{tmp_path}/hidden.conf"
    write(hidden, f"include {target if kind != 'loop' else hidden}\n", 0o600)
    main = write(f"{tmp_path}/k.conf", INSTANCE + f"include {hidden}\n")
    real_open = os.open

    def refusing(path, *a, **k):  # type: ignore[no-untyped-def]
        if "S3cr3t" in str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "open", refusing)
        with pytest.raises(InputError) as e:
            parse(main)
    assert "S3cr3t" not in str(e.value), str(e.value)
    assert str(e.value).startswith(f"{hidden}:1: ")


# Instance names are the file's words too (found by review: the VRID clash
# refusal and the request's per-instance messages and derivation printed them).
NAMED = "S3cr3tName"
PAIR = "".join(f"vrrp_instance {NAMED}{i} {{\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {{\n"
               " 192.0.2.1\n }\n}\n" for i in (1, 2))


def test_vrid_clash_in_a_hidden_file_names_no_instance(tmp_path: object, as_nobody: None) -> None:
    hidden = write(f"{tmp_path}/hidden.conf", PAIR, 0o600)
    with pytest.raises(InputError) as e:
        parse(hidden)
    assert "both use VRID 51" in str(e.value) and "hidden.conf:" in str(e.value)
    assert NAMED not in str(e.value)


def test_vrid_clash_in_a_readable_file_names_both(tmp_path: object) -> None:
    # Control: as root (the audience may read everything) the names are shown.
    readable = write(f"{tmp_path}/k.conf", PAIR, 0o600)
    with pytest.raises(InputError, match=f"{NAMED}2 and {NAMED}1"):
        parse(readable)


def test_request_from_a_hidden_file_names_no_instance(tmp_path: object, as_nobody: None) -> None:
    from vrrpfw import request

    text = (f"vrrp_instance {NAMED} {{\n interface eth0\n virtual_router_id 5\n"
            " virtual_ipaddress {\n 192.0.2.1\n }\n}\n")
    hidden = write(f"{tmp_path}/hidden.conf", text, 0o600)
    req = request.from_conf(parse(hidden))
    assert req.derivation and NAMED not in "\n".join(req.derivation), req.derivation
    invoker.set_audience(lambda: User(0, 0, frozenset({0})))  # control: root may read it (conftest resets)
    assert any(NAMED in line for line in request.from_conf(parse(hidden)).derivation)


def test_a_glob_into_a_directory_the_invoker_cannot_list_names_nothing_there(as_nobody: None) -> None:
    # Review finding: the including file was readable, so the names a glob found in a
    # 0700 directory were shown ("priv/subdir_secretname is a directory").  Under /tmp,
    # not pytest's 0700 tmp_path, so that nobody may read the including file itself.
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="vrrpfw-glob-")
    try:
        os.chmod(d, 0o755)
        os.makedirs(f"{d}/priv/{NAMED}_dir")
        os.chmod(f"{d}/priv", 0o700)
        main = write(f"{d}/k.conf", INSTANCE + f"include {d}/priv/*\n", 0o644)
        text = "\n".join(parse(main).notes)
        assert "is a directory" in text and NAMED not in text, text
        os.chmod(f"{d}/priv", 0o755)  # control: listable, so the name is shown
        assert NAMED in "\n".join(parse(main).notes)
    finally:
        shutil.rmtree(d)
