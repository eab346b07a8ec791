"""The adverts vrrpfw.prove.traffic sends (prove and the tests; built by
vrrpfw.prove.adverts): keepalived's VRRP layout, decoded by the listener's
own decoder.  The IP headers the kernel builds around them are compared
with real keepalived's on the wire by
tests/integration/prove/test_advert_fidelity.py."""

from __future__ import annotations

import json
import subprocess

import pytest

from vrrpfw.listen.packet import checksum16, decode_vrrp, encode_ipv4
from vrrpfw.prove.adverts import AH, advert, carries, delivered, json_line, nonce_address, virtual_addresses
from vrrpfw.prove.traffic import child_argv

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

NONCE = bytes.fromhex("c0ffee01")


@pytest.mark.parametrize("family,version,proto,count,length", [
    ("ipv4", 2, 112, 1, 20),  # 8 + 4 + 8 bytes of auth data: total length 40
    ("ipv4", 2, 112, 2, 24),
    ("ipv4", 2, AH, 1, 44),   # AH's 24 bytes first: total length 64
    ("ipv4", 3, 112, 1, 12),  # v3 has no auth data: total length 32
    ("ipv6", 3, 112, 1, 24),  # payload length 24
    ("ipv6", 3, 112, 2, 40),
])
def test_advert_is_keepalived_layout(family, version, proto, count, length):
    src, dst = ("192.0.2.2", "224.0.0.18") if family == "ipv4" else ("fe80::2", "ff02::12")
    data = advert(NONCE, proto, family, version, count, src, dst)
    assert len(data) == length
    a = decode_vrrp(data, family, src, dst, 255, proto)
    assert (a.version, a.vrid, a.priority, a.interval, len(a.addresses)) == (version, 51, 100, 1.0, count)
    assert a.auth == ("ah" if proto == AH else "none")
    assert a.auth_type == (2 if proto == AH else 0)
    if family == "ipv4":  # IPv6's VRRPv3 checksum is the kernel's (IPV6_CHECKSUM), as keepalived's
        assert a.checksum_ok
    assert carries(data, proto, NONCE, family) and not carries(data, proto, b"\0\0\0\0", family)
    assert not carries(data, 51 if proto == 112 else 112, NONCE, family)


def test_nonce_is_the_first_virtual_address():
    assert nonce_address(NONCE, "ipv4") == NONCE
    assert nonce_address(NONCE, "ipv6") == b"\xfd" + bytes(11) + NONCE  # fd00::c0ff:ee01
    assert len(virtual_addresses(NONCE, "ipv4", 3)) == 12 and len(virtual_addresses(NONCE, "ipv6", 3)) == 48
    assert virtual_addresses(NONCE, "ipv4", 2)[4:] == bytes([192, 0, 2, 101])


def test_ipv4_raw_socket_copy_is_recognised_behind_its_header():
    body = advert(NONCE, src="192.0.2.2", dst="224.0.0.18")
    packet = encode_ipv4(body, "192.0.2.2", "224.0.0.18")
    assert checksum16(packet[:20]) == 0
    assert delivered(packet, 112, NONCE, "ipv4") and not delivered(packet, 112, b"abcd", "ipv4")
    assert delivered(advert(NONCE, family="ipv6"), 112, NONCE, "ipv6")


@pytest.mark.parametrize("counts", [{"wire": 20, "delivered": 0}, {"sent": 3, "refused": 17}, {}])
def test_children_print_their_counts_as_json_does(counts):
    """exchange() reads the children's last line with json.loads; they write
    it without importing json."""
    assert json_line(counts) == json.dumps(counts)
    assert json.loads(json_line(counts)) == counts


def test_children_import_only_what_they_use():
    """Each advert child (eight per prove) starts as a bare interpreter
    would: the standard library's modules it uses, nothing of vrrpfw's
    package, and none of the modules that only the parent's half needs
    (their imports cost a child several times a bare start)."""
    argv = child_argv("recv")  # too few arguments: prints its usage and exits 2
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "recv IFACE DST NONCE" in proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "adverts" in imported
    heavy = {"socket", "json", "typing", "dataclasses", "concurrent", "uuid", "vrrpfw", "enum"}
    assert not heavy & imported, heavy & imported
