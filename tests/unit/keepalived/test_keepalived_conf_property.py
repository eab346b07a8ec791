"""Property: whatever bytes keepalived.conf holds (random, or real samples
mutated), vrrpfw's parser either reads it or raises InputError (exit 2,
one line), in bounded time and memory.  Includes stay inside the test's
directory (reads elsewhere are refused as the kernel would refuse them),
where files that include each other wait to be named by a mutation.

Derandomized (fixed examples, no database): CI sees the same run each time."""

from __future__ import annotations

import glob as _glob
import os
import shutil
import tempfile
import time
import tracemalloc
from typing import Iterator, List

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from vrrpfw.errors import InputError  # noqa: E402
from vrrpfw.keepalived import conf as keepalived_conf  # noqa: E402
from vrrpfw.keepalived import reader as keepalived_reader  # noqa: E402

pytestmark = pytest.mark.one_end  # reaches no typer, rich, iptc or dbus: tests/one_end_guard.py

SAMPLES = [
    b"vrrp_instance VI_1 {\n  state MASTER\n  interface eth1\n  virtual_router_id 51\n  priority 150\n"
    b"  advert_int 1\n  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n"
    b"  virtual_ipaddress {\n    192.0.2.10/24 dev eth1\n  }\n}\n",
    b"global_defs {\n  vrrp_version 3\n  vrrp_mcast_group4 224.0.0.19\n  vrrp_strict\n}\n"
    b"vrrp_instance V6 {\n  interface eth0\n  native_ipv6\n  virtual_router_id 7\n"
    b"  unicast_src_ip fd00::1\n  unicast_peer {\n    fd00::2\n    fd00::3\n  }\n"
    b"  virtual_ipaddress {\n    fd00::10/64\n  }\n  use_vmac vrrp7\n  vmac_xmit_base\n}\n",
    b"$IF=eth2\n@main ! only with -i main\ninclude conf.d/*.conf\n"
    b"vrrp_instance A {\n interface ${IF}\n virtual_router_id 9\n version 2\n"
    b" virtual_ipaddress { 198.51.100.1 }\n}\n"
    b'vrrp_script chk { script "/bin/true \\"x\\"" }\n'
    b"virtual_server 192.0.2.1 80 { real_server 192.0.2.2 80 { } }\n",
]
# Words a mutation splices in: keepalived's syntax and its edges.
TOKENS = [b"{", b"}", b'"', b"\\", b"#", b"!", b"\n", b" ", b"$", b"${X}", b"$X=", b"@id ", b"~SEQ(1,2,3)",
          b"include a.conf\n", b"include loop.conf\n", b"include *.conf\n", b"include {a,b}{a,b}{a,b}.conf\n",
          b"include " + b"{a,b}" * 20 + b".conf\n", b"{a,b}",
          b"include missing.conf\n", b"include fifo\n", b"include big.conf\n", b"vrrp_instance ",
          b"interface ", b"virtual_router_id ", b"256", b"0", b"-1", b"ff02::12", b"224.0.0.18",
          b"unicast_peer {", b"virtual_ipaddress {", b"authentication {", b"auth_type AH", b"\xff", b"\x00",
          b"\xe2\x82", b"\r", b"\t", b"\x0b"]

MAX_PEAK = 32 * 1024 * 1024  # tracemalloc's peak per example
MAX_SECONDS = 3.0  # CPU seconds per example (typical: 1 to 19 ms)


@pytest.fixture(scope="module")
def confdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="vrrpfw-kaprop-")
    files = {
        "a.conf": "include b.conf\ninclude b.conf\n",
        "b.conf": "include c.conf\ninclude c.conf\ninclude a.conf\n",
        "c.conf": "include a.conf\ninclude b.conf\n! deep\n",
        "loop.conf": "include loop.conf\n",
        "big.conf": "#" * (keepalived_reader.MAX_FILE_BYTES + 1),
    }
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    os.mkdir(os.path.join(d, "conf.d"))
    with open(os.path.join(d, "conf.d", "x.conf"), "w") as f:
        f.write("vrrp_instance C { interface eth3\n virtual_router_id 3 }\n")
    os.mkfifo(os.path.join(d, "fifo"))
    try:
        yield d
    finally:
        shutil.rmtree(d)


@pytest.fixture(scope="module")
def confined(confdir: str) -> Iterator[None]:
    """Reads and globs outside the test's directory are refused (a random
    ``include /...`` must not wander over the host)."""
    mp = pytest.MonkeyPatch()
    real_read, real_glob = keepalived_reader.read_regular, _glob.glob

    def inside(path: str) -> bool:
        return os.path.realpath(path).startswith(confdir + os.sep)

    def read(path: str, limit: int) -> bytes:
        if not inside(path):
            raise PermissionError(13, "Permission denied (outside the test)")
        return real_read(path, limit)

    class Glob:
        @staticmethod
        def glob(pattern: str) -> List[str]:
            return real_glob(pattern) if inside(pattern) else []

    mp.setattr(keepalived_reader, "read_regular", read)
    mp.setattr(keepalived_reader, "glob", Glob)
    yield
    mp.undo()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(data)))
        if op == 0:
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == 1:
            data[at:at + draw(st.integers(1, 40))] = b""
        elif op == 2 and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            end = min(len(data), at + draw(st.integers(1, 200)))
            data[at:at] = data[at:end] * draw(st.integers(1, 4))
    return bytes(data)


def _parse(confdir: str, content: bytes) -> None:
    path = os.path.join(confdir, "keepalived.conf")
    with open(path, "wb") as f:
        f.write(content)
    tracemalloc.start()
    started = time.process_time()
    try:
        keepalived_conf.parse(path)
    except InputError as e:
        assert "\n" not in str(e), str(e)  # one line
    finally:
        elapsed = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MAX_PEAK, peak
    assert elapsed < MAX_SECONDS, elapsed


# Time per example is this process's CPU time (_parse), not hypothesis's
# wall-clock deadline: a loaded CI machine must not fail it by chance; a 2^n
# blow-up takes minutes of CPU, not a second.
PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@PROPERTY
@given(content=mutated())
def test_mutated_samples(confdir: str, confined: None, content: bytes) -> None:
    _parse(confdir, content)


@PROPERTY
@given(content=st.binary(max_size=2048) | st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join))
def test_random_bytes(confdir: str, confined: None, content: bytes) -> None:
    _parse(confdir, content)


def test_the_samples_parse(confdir: str, confined: None) -> None:
    # The property's seeds are valid configurations (so mutations start from sense).
    for sample in SAMPLES:
        path = os.path.join(confdir, "keepalived.conf")
        with open(path, "wb") as f:
            f.write(sample)
        assert keepalived_conf.parse(path).instances
