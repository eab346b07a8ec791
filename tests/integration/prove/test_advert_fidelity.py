"""The adverts prove and the tests send are keepalived's, header field by
header field.

Real keepalived runs in one namespace with one VRRP instance per advert
shape (VRRPv2 and v3 over IPv4, v3 over IPv6, AH, unicast, one and two
virtual addresses); the same namespace sends vrrpfw's adverts of each shape
(vrrpfw.prove.traffic.exchange, what ``prove``, the corpus replay and
tests/netns.py send).  A packet socket on the other end of the veth
captures both, and every header field a firewall can match must be the
same: IP version, IHL (no options), TOS / traffic class, DF, MF, fragment
offset, TTL / hop limit, protocol / next header, addresses, total length,
whether IPv6 carries a flow label, the VRRP version, type, priority,
address count, interval and auth type, and AH's next header, length,
reserved field and SPI.  Checksums, IP ids, AH sequence numbers and ICVs,
the VRID and the addresses listed are left aside (they depend on the run).

Why: a ruleset such as ``ip frag-off & 0x4000 != 0 accept`` under policy
drop (DF only) lets adverts with DF through and drops keepalived's (DF
clear); test traffic that differs from keepalived's makes such a verdict
look right while it is wrong for keepalived.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Tuple

import pytest
from netns import unique

from vrrpfw.prove import netns as _netns
from vrrpfw.prove.traffic import AH, Shape, exchange

pytestmark = [pytest.mark.integration, pytest.mark.needs("keepalived"), pytest.mark.xdist_group("fidelity"),
              pytest.mark.one_end]

A4, B4 = "192.0.2.1", "192.0.2.2"
A6, B6 = "fd00::1", "fd00::2"
LINK_A = "fe80::1"

# name -> (shape, virtual addresses, keepalived.conf lines of the instance)
CASES: Dict[str, Tuple[Shape, int, List[str]]] = {
    "ipv4": (Shape(), 1, []),
    "ipv4 2 addresses": (Shape(), 2, []),
    "ipv4 v3": (Shape(version=3), 1, ["version 3"]),
    "ipv4 ah": (Shape(proto=AH), 1, ["authentication {", "  auth_type AH", "  auth_pass secret", "}"]),
    "ipv4 unicast": (Shape(unicast=True), 1, [f"unicast_src_ip {A4}", "unicast_peer {", f"  {B4}", "}"]),
    "ipv4 unicast v3": (Shape(unicast=True, version=3), 1,
                        ["version 3", f"unicast_src_ip {A4}", "unicast_peer {", f"  {B4}", "}"]),
    "ipv4 unicast ah": (Shape(proto=AH, unicast=True), 1,
                        [f"unicast_src_ip {A4}", "unicast_peer {", f"  {B4}", "}",
                         "authentication {", "  auth_type AH", "  auth_pass secret", "}"]),
    "ipv6": (Shape("ipv6"), 1, ["native_ipv6", "version 3"]),
    "ipv6 2 addresses": (Shape("ipv6"), 2, ["native_ipv6", "version 3"]),
    "ipv6 unicast": (Shape("ipv6", unicast=True), 1,
                     ["native_ipv6", "version 3", f"unicast_src_ip {A6}", "unicast_peer {", f"  {B6}", "}"]),
}

# A packet socket on the receiving end: every IPv4/IPv6 frame of protocol
# 112 or 51 that arrives (not the namespace's own), as hex, until stdin closes.
CAPTURE = r"""
import select, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
print("ready", flush=True)
while True:
    ready = select.select([s, sys.stdin], [], [], 60)[0]
    if not ready or sys.stdin in ready:
        break
    data, meta = s.recvfrom(65535)
    if meta[2] == socket.PACKET_OUTGOING:
        continue
    if (data[12:14] == b"\x08\x00" and data[23] in (51, 112)) or \
            (data[12:14] == b"\x86\xdd" and data[20] in (51, 112)):
        print(data.hex(), flush=True)
"""


def fields(frame: bytes) -> Dict[str, object]:
    """Everything a firewall can match in an advert's headers, and the key
    of its shape: (family, proto, unicast, VRRP version, address count)."""
    ethertype = frame[12:14]
    if ethertype == b"\x08\x00":
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        flags = struct.unpack("!H", ip[6:8])[0]
        f: Dict[str, object] = {
            "family": "ipv4", "version": ip[0] >> 4, "ihl": ihl, "tos": ip[1],
            "total_length": struct.unpack("!H", ip[2:4])[0], "df": bool(flags & 0x4000),
            "mf": bool(flags & 0x2000), "frag_offset": flags & 0x1FFF, "ttl": ip[8], "proto": ip[9],
            "src": socket.inet_ntop(socket.AF_INET, ip[12:16]),
            "dst": socket.inet_ntop(socket.AF_INET, ip[16:20]),
        }
        payload, proto = ip[ihl:f["total_length"]], ip[9]  # type: ignore[misc]
        multicast = ip[16] >= 224
    else:
        ip = frame[14:]
        word = struct.unpack("!I", ip[:4])[0]
        f = {
            "family": "ipv6", "version": word >> 28, "traffic_class": (word >> 20) & 0xFF,
            "flow_label_set": bool(word & 0xFFFFF), "payload_length": struct.unpack("!H", ip[4:6])[0],
            "next_header": ip[6], "hop_limit": ip[7],
            "src": socket.inet_ntop(socket.AF_INET6, ip[8:24]),
            "dst": socket.inet_ntop(socket.AF_INET6, ip[24:40]),
        }
        payload, proto = ip[40:40 + f["payload_length"]], ip[6]  # type: ignore[operator]
        multicast = ip[24] == 0xFF
    if proto == AH:
        f.update(ah_next_header=payload[0], ah_length=payload[1], ah_reserved=payload[2:4].hex(),
                 ah_spi_is_source=payload[4:8] == socket.inet_aton(str(f["src"])),
                 ah_size=(payload[1] + 2) * 4)
        payload = payload[(payload[1] + 2) * 4:]
    vrrp_version = payload[0] >> 4
    f.update(vrrp_version=vrrp_version, vrrp_type=payload[0] & 0x0F, priority=payload[2], count=payload[3],
             vrrp_length=len(payload))
    if vrrp_version == 2:
        f.update(auth_type=payload[4], adver_int=payload[5], auth_data=payload[-8:].hex())
    else:
        f.update(adver_int=struct.unpack("!H", payload[4:6])[0])
    f["key"] = (f["family"], proto, not multicast, vrrp_version, payload[3])
    f["vrid"] = payload[1]
    return f


ASIDE = ("vrid",)  # depends on the configuration: each keepalived instance has its own


def shape_key(shape: Shape, count: int) -> Tuple[str, int, bool, int, int]:
    return (shape.family, shape.proto, shape.unicast, shape.version, count)


def instance(vrid: int, iface: str, count: int, lines: List[str], family: str) -> str:
    """One vrrp_instance; its virtual addresses lie outside the interface's
    prefixes, so once keepalived adds them (as master) the kernel still
    picks the interface's own address as the source of vrrpfw's adverts."""
    if family == "ipv4":
        vips = [f"198.51.100.{vrid * 2 + i}/24" for i in range(count)]
    else:
        vips = [f"fd01::{vrid * 2 + i:x}/64" for i in range(count)]
    body = ["state MASTER", f"interface {iface}", f"virtual_router_id {vrid}", "priority 100", "advert_int 1",
            *lines, "virtual_ipaddress {", *[f"  {v}" for v in vips], "}"]
    return f"vrrp_instance VI_{vrid} {{\n" + "".join(f"  {b}\n" for b in body) + "}\n"


@contextlib.contextmanager
def two_ends() -> Iterator[Tuple[_netns.Namespace, str, _netns.Namespace, str]]:
    """Namespaces a (keepalived, vrrpfw's sender) and b (the capture), a
    veth between them: 192.0.2.1/.2, fd00::1/::2, and fe80::1/::2 as their
    only link-local addresses (no automatic one), all without DAD."""
    with _netns.namespace("vrfa") as a, _netns.namespace("vrfb") as b:
        a_if, b_if = unique("fa"), unique("fb")
        for ns in (a, b):
            ns.run(["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.default.addr_gen_mode=1"])
        _netns.veth(a, a_if, b, b_if)
        for ns, ifname, v4, v6, link in ((a, a_if, A4, A6, LINK_A), (b, b_if, B4, B6, "fe80::2")):
            ns.run(["sysctl", "-qw", f"net.ipv6.conf.{ifname}.addr_gen_mode=1"])
            ns.ip_batch([f"addr add {v4}/24 dev {ifname}", f"addr add {v6}/64 dev {ifname} nodad",
                         f"addr add {link}/64 dev {ifname} nodad", f"link set {ifname} up"])
        for ns, ifname in ((a, a_if), (b, b_if)):
            _netns.wait_operstate_up(ns, ifname)
        yield a, a_if, b, b_if


@contextlib.contextmanager
def keepalived(ns: _netns.Namespace, conf: str, root: str) -> Iterator[str]:
    """keepalived (VRRP only, foreground) with ``conf``; yields its log's path."""
    path, log = os.path.join(root, "keepalived.conf"), os.path.join(root, "keepalived.log")
    with open(path, "w") as f:
        f.write(conf)
    argv = ["keepalived", "-n", "-l", "-P", "-G", "-f", path, "-p", os.path.join(root, "k.pid"),
            "-r", os.path.join(root, "v.pid")]
    proc = ns.popen(["sh", "-c", 'exec "$@" >>"$0" 2>&1', log, *argv])
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _netns.release(proc)


def read_log(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Dict[str, List[Dict[str, object]]]]:
    """name -> {"keepalived": [fields...], "vrrpfw": [fields...]}, for every case."""
    root = str(tmp_path_factory.mktemp("fidelity"))
    with two_ends() as (a, a_if, b, b_if):
        conf = "global_defs {\n  router_id fidelity\n  enable_script_security\n}\n"
        for vrid, (shape, count, lines) in enumerate(CASES.values(), start=1):
            conf += instance(vrid, a_if, count, lines, shape.family)
        cap = b.popen([sys.executable, "-I", "-S", "-c", CAPTURE, b_if], stdin=True)
        try:
            assert cap.stdout is not None and cap.stdin is not None
            assert cap.stdout.readline().strip() == "ready"
            with keepalived(a, conf, root) as log:
                # vrrpfw's adverts of each shape, as prove and the tests send them, meanwhile
                for shape, count, _ in CASES.values():
                    dst = (B4 if shape.family == "ipv4" else B6) if shape.unicast else shape.group
                    got = exchange(a, a_if, b, b_if, 2, dst, 5.0, proto=shape.proto, ttl=shape.ttl,
                                   version=shape.version, addresses=count)
                    assert got.delivered == 2 and got.wire == 2, (shape.name, count, got)
                # keepalived: every instance master (BACKUP first, ~3.6 s), then one more advert each
                deadline = time.monotonic() + 30
                while read_log(log).count("Entering MASTER STATE") < len(CASES):
                    assert time.monotonic() < deadline, f"keepalived did not become master:\n{read_log(log)}"
                    time.sleep(0.2)
                time.sleep(1.5)
                # before keepalived stops: its goodbye (priority 0) is another advert
                out, _ = cap.communicate("stop\n", timeout=30)
        finally:
            _netns.release(cap)
    frames = [fields(bytes.fromhex(line)) for line in out.split() if line]
    result: Dict[str, Dict[str, List[Dict[str, object]]]] = {}
    for name, (shape, count, _) in CASES.items():
        key = shape_key(shape, count)
        mine = [f for f in frames if f["key"] == key]
        result[name] = {"keepalived": [f for f in mine if f["vrid"] != 51],
                        "vrrpfw": [f for f in mine if f["vrid"] == 51]}
    return result


def comparable(f: Dict[str, object]) -> Dict[str, object]:
    return {k: v for k, v in f.items() if k not in ASIDE}


@pytest.mark.parametrize("name", list(CASES))
def test_vrrpfw_adverts_are_keepalived_header_for_header(captured, name: str) -> None:
    seen = captured[name]
    assert seen["keepalived"], f"no advert of keepalived's {name} instance was captured"
    assert len(seen["vrrpfw"]) == 2, f"vrrpfw's {name} adverts: {seen['vrrpfw']}"
    theirs = {repr(sorted(comparable(f).items())) for f in seen["keepalived"]}
    assert len(theirs) == 1, f"keepalived's {name} adverts differ among themselves: {theirs}"
    want = comparable(seen["keepalived"][0])
    for got in seen["vrrpfw"]:
        diff = {k: (want.get(k), v) for k, v in comparable(got).items() if want.get(k) != v}
        diff.update({k: (v, None) for k, v in want.items() if k not in got})
        assert not diff, f"{name}: (keepalived, vrrpfw) differ in {diff}"


def test_keepalived_headers_are_what_the_judge_is_told(captured) -> None:
    """The values the report to the judge names (issue 17, item 3): these are
    keepalived 2.2.7's, and this test fails if another keepalived differs."""
    v4 = captured["ipv4"]["keepalived"][0]
    assert (v4["tos"], v4["df"], v4["ihl"], v4["ttl"], v4["total_length"]) == (0xC0, False, 20, 255, 40)
    assert captured["ipv4 2 addresses"]["keepalived"][0]["total_length"] == 44
    assert captured["ipv4 v3"]["keepalived"][0]["total_length"] == 32
    assert captured["ipv4 ah"]["keepalived"][0]["total_length"] == 64
    assert captured["ipv4 unicast"]["keepalived"][0]["ttl"] == 255
    v6 = captured["ipv6"]["keepalived"][0]
    assert (v6["traffic_class"], v6["hop_limit"], v6["payload_length"], v6["src"]) == (0xC0, 255, 24, LINK_A)
    assert captured["ipv6 2 addresses"]["keepalived"][0]["payload_length"] == 40
    uni6 = captured["ipv6 unicast"]["keepalived"][0]
    assert uni6["hop_limit"] == 64 and uni6["traffic_class"] == 0xC0  # the kernel's default hop limit
