"""keepalived_conf against the real keepalived: ``keepalived -t -f FILE``.

keepalived's config test exits 0 only for a configuration it accepts without
a complaint (an unknown interface is a complaint, so it runs in a throw-away
namespace with veths named eth0 and eth1).  Every config vrrpfw reads as
valid here must pass ``-t``; every config vrrpfw refuses as contradictory
must fail it; and keepalived's own samples must read the same way."""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import subprocess
from typing import Iterator, List, Tuple

import pytest

from vrrpfw.errors import InputError
from vrrpfw.keepalived.conf import parse

pytestmark = [pytest.mark.integration, pytest.mark.needs("keepalived"), pytest.mark.one_end]

SAMPLES = "/usr/share/doc/keepalived/samples"


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"vrrpfw-kaconf-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for a, b in (("eth0", "peer0"), ("eth1", "peer1")):
            subprocess.run(["ip", "-n", name, "link", "add", a, "type", "veth", "peer", "name", b],
                           check=True)
            for dev in (a, b):
                subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ka_test(ns: str, path: str, cwd: str = "/") -> Tuple[int, str]:
    p = subprocess.run(["ip", "netns", "exec", ns, "keepalived", "-t", "-f", path], cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


HEAD = "vrrp_instance VI {\n interface eth1\n virtual_router_id 5\n"

VALID = {
    "basic": ("vrrp_instance VI { # c\n interface eth1\n virtual_router_id 51 ! c\n"
              " virtual_ipaddress {\n  192.0.2.10/24 dev eth1 label eth1:1\n }\n}\n",
              dict(interface="eth1", vrid=51, version=2, family="ipv4", group="224.0.0.18", priority=100)),
    "braces-next-line": ("global_defs\n{\n vrrp_mcast_group4 224.0.0.19\n}\nvrrp_instance VI\n{\n"
                         " interface eth1\n virtual_router_id 5\n state MASTER\n virtual_ipaddress\n {\n"
                         "  192.0.2.1\n }\n}\n",
                         dict(group="224.0.0.19", priority=255)),
    "global-version-3": ("global_defs {\n vrrp_version 3\n}\nvrrp_instance VI {\n interface eth1\n"
                         " virtual_router_id 5\n virtual_ipaddress { 192.0.2.1 }\n}\n",
                         dict(version=3)),
    "ipv6": ("global_defs {\n vrrp_mcast_group6 ff02::13\n}\nvrrp_instance VI {\n interface eth1\n"
             " virtual_router_id 5\n virtual_ipaddress { 2001:db8::1 }\n}\n",
             dict(family="ipv6", version=3, group="ff02::13")),
    "ipv6-version2-first": (HEAD + " version 2\n"
                            " virtual_ipaddress { 2001:db8::1 }\n}\n",
                            dict(family="ipv6", version=2)),
    "excluded-other-family": (HEAD + ""
                              " virtual_ipaddress_excluded { 192.0.2.9 }\n"
                              " virtual_ipaddress { 2001:db8::1 }\n}\n",
                              dict(family="ipv6", virtual_addresses=("192.0.2.9", "2001:db8::1"))),
    "unicast": (HEAD + " unicast_src_ip 192.0.2.1\n"
                " unicast_peer {\n  192.0.2.2 min_ttl 2 max_ttl 5\n  192.0.2.3\n }\n"
                " virtual_ipaddress { 192.0.2.100 }\n}\n",
                dict(group=None, unicast_src="192.0.2.1", peers=("192.0.2.2", "192.0.2.3"))),
    "auth-pass": (HEAD + " authentication {\n"
                  "  auth_type PASS\n  auth_pass \"s#e!c\"\n }\n virtual_ipaddress { 192.0.2.1 }\n}\n",
                  dict(auth_type="PASS")),
    "vmac": ("vrrp_instance VI {\n interface eth1\n virtual_router_id 7\n use_vmac\n"
             " virtual_ipaddress { 192.0.2.1 }\n}\n", dict(interface="vrrp.7", base_interface="eth1")),
    "vmac-xmit-base": ("vrrp_instance VI {\n interface eth1\n virtual_router_id 7\n use_vmac vm7\n"
                       " vmac_xmit_base\n virtual_ipaddress { 192.0.2.1 }\n}\n", dict(interface="eth1")),
    "skipped-blocks": ("global_defs {\n enable_script_security\n script_user root\n}\n"
                       "vrrp_script chk {\n script \"/bin/true\"\n}\nvrrp_instance VI {\n interface eth1\n"
                       " virtual_router_id 5\n track_script {\n  chk\n }\n"
                       " virtual_ipaddress { 192.0.2.1 }\n}\n"
                       "vrrp_sync_group G {\n group {\n  VI\n  VJ\n }\n}\n"
                       "vrrp_instance VJ {\n interface eth0\n"
                       " virtual_router_id 6\n virtual_ipaddress { 192.0.2.2 }\n}\n", dict(vrid=5)),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_configs_pass_keepalived_and_parse(netns: str, tmp_path: object, name: str) -> None:
    text, expect = VALID[name]
    path = write(f"{tmp_path}/{name}.conf", text)
    rc, out = ka_test(netns, path)
    assert rc == 0, out
    inst = parse(path).instances[0]
    for key, value in expect.items():
        assert getattr(inst, key) == value, key


# Refused by vrrpfw; keepalived -t must complain too (exit != 0).
INVALID = {
    "no-interface": "vrrp_instance VI {\n virtual_router_id 5\n virtual_ipaddress { 192.0.2.1 }\n}\n",
    "default-interface-not-enough": ("global_defs {\n default_interface eth1\n}\nvrrp_instance VI {\n"
                                     " virtual_router_id 5\n virtual_ipaddress { 192.0.2.1 }\n}\n"),
    "vrid-0": ("vrrp_instance VI {\n interface eth1\n virtual_router_id 0\n"
               " virtual_ipaddress { 192.0.2.1 }\n}\n"),
    "ah-v3": ("global_defs {\n vrrp_version 3\n}\nvrrp_instance VI {\n interface eth1\n virtual_router_id 5\n"
              " authentication {\n  auth_type AH\n  auth_pass x\n }\n virtual_ipaddress { 192.0.2.1 }\n}\n"),
    "ah-ipv6": (HEAD + " authentication {\n  auth_type AH\n"
                "  auth_pass x\n }\n virtual_ipaddress { 2001:db8::1 }\n}\n"),
    "src-peer-family": (HEAD + " unicast_src_ip 2001:db8::5\n"
                        " unicast_peer { 192.0.2.2 }\n virtual_ipaddress { 2001:db8::1 }\n}\n"),
    "unbalanced": HEAD + " virtual_ipaddress { 192.0.2.1 }\n",
    "native-ipv6-after-ipv4": (HEAD + ""
                               " virtual_ipaddress { 192.0.2.1 }\n native_ipv6\n}\n"),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_refused_configs_fail_keepalived_too(netns: str, tmp_path: object, name: str) -> None:
    path = write(f"{tmp_path}/{name}.conf", INVALID[name])
    rc, out = ka_test(netns, path)
    assert rc != 0, out
    with pytest.raises(InputError, match=rf"^{path}:\d+: "):
        parse(path)


# Accepted by vrrpfw with a note; keepalived -t complains (exit != 0) but runs them the same way.
NOTED = {
    "later-vip-other-family": (HEAD + ""
                               " virtual_ipaddress {\n  192.0.2.1\n  2001:db8::1\n }\n}\n",
                               "2001:db8::1 ignored"),
    "version2-after-ipv6": (HEAD + ""
                            " virtual_ipaddress { 2001:db8::1 }\n version 2\n}\n", "version 2 ignored"),
    "vrrp_version-in-instance": (HEAD + " vrrp_version 3\n"
                                 " virtual_ipaddress { 192.0.2.1 }\n}\n", "instance keyword is 'version'"),
    "pass-with-v3": (HEAD + " version 3\n authentication {\n"
                     "  auth_type PASS\n  auth_pass x\n }\n virtual_ipaddress { 192.0.2.1 }\n}\n",
                     "PASS ignored"),
}


@pytest.mark.parametrize("name", sorted(NOTED))
def test_noted_configs_are_what_keepalived_complains_about(netns: str, tmp_path: object, name: str) -> None:
    text, note = NOTED[name]
    path = write(f"{tmp_path}/{name}.conf", text)
    rc, out = ka_test(netns, path)
    assert rc != 0, out
    assert any(note in n for n in parse(path).notes)


def test_include_is_relative_to_the_including_file(netns: str, tmp_path: object) -> None:
    root = str(tmp_path)
    write(f"{root}/etc/conf.d/sub/vi.conf",
          HEAD + " virtual_ipaddress { 192.0.2.1 }\n}\n")
    write(f"{root}/etc/conf.d/main.inc", "include sub/*.conf\n")
    main = write(f"{root}/etc/keepalived.conf", "global_defs {\n vrrp_mcast_group4 224.0.0.21\n}\n"
                                                "include conf.d/main.inc\n")
    # From another directory keepalived still finds sub/vi.conf: relative to conf.d/, not to the cwd.
    rc, out = ka_test(netns, main, cwd="/")
    assert rc == 0, out
    cfg = parse(main)
    assert [i.name for i in cfg.instances] == ["VI"] and cfg.instances[0].group == "224.0.0.21"
    # ... and it really read it: without the included instance keepalived -t sees no VRRP at all.
    os.remove(f"{root}/etc/conf.d/sub/vi.conf")
    with pytest.raises(InputError, match="no usable vrrp_instance"):
        parse(main)


def sample_files(tmp: str) -> List[str]:
    out = []
    for f in sorted(glob.glob(f"{SAMPLES}/keepalived.conf.*")):
        if f.endswith(".gz"):
            dest = os.path.join(tmp, os.path.basename(f)[:-3])
            with gzip.open(f, "rb") as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(dest)
        else:
            out.append(f)
    return out


def test_keepalived_samples(netns: str, tmp_path: object) -> None:
    files = sample_files(str(tmp_path))
    if not files:
        pytest.skip(f"no keepalived samples in {SAMPLES}")
    checked = 0
    for f in files:
        rc, _ = ka_test(netns, f, cwd=os.path.dirname(f))
        if rc != 0:
            continue  # keepalived itself complains (missing scripts, options of another build)
        with open(f) as fh:
            has_vrrp = any(line.strip().startswith("vrrp_instance") for line in fh)
        if has_vrrp:
            cfg = parse(f)
            assert cfg.instances, f
            for inst in cfg.instances:
                assert 1 <= inst.vrid <= 255 and inst.interface and inst.derivation, f
            checked += 1
        else:
            with pytest.raises(InputError, match="no usable vrrp_instance"):
                parse(f)
    assert checked >= 1


def test_vrrp_sample_reads_as_its_text_says() -> None:
    """keepalived.conf.vrrp, shipped with keepalived: four instances on two interfaces."""
    cfg = parse(os.path.join(SAMPLES, "keepalived.conf.vrrp"))
    assert [(i.name, i.interface, i.vrid) for i in cfg.instances] == [
        ("VI_1", "eth0", 51), ("VI_2", "eth0", 50), ("VI_3", "eth1", 52), ("VI_4", "eth1", 53)]
