"""Send and count real VRRP adverts between two namespaces: the parent's
half.  :func:`exchange` starts a receiver and a sender, each a bare
interpreter running :mod:`.adverts` (the child half, standard library
only) inside a namespace, and reads their counts; :func:`both_ways` runs
both directions at once; :class:`Shape` names what an advert looks like.

The adverts, what ``recv`` counts and ``send`` refuses, and the children's
command line are described in :mod:`.adverts`; its names are re-exported
here (``python -m vrrpfw.prove.traffic recv|send ...`` runs its ``main``).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from vrrpfw.record import asdict, field, record

from . import adverts
from .adverts import (  # noqa: F401  (re-exported: the tests and the corpus tools use them here)
    AH,
    GROUP,
    GROUP6,
    PROTO,
    SENDER_BOUND,
    TTL,
    advert,
    carries,
    default_version,
    delivered,
    main,
    nonce_address,
    on_wire,
    virtual_addresses,
)

if TYPE_CHECKING:
    from .netns import Namespace

# The child command: a bare interpreter (-I -S: no site, no environment)
# that imports adverts.py alone, as a top-level module from its directory,
# put last on sys.path so that it shadows nothing (not ``-m``, which would
# import the whole package first; not the file as a script, which Python
# compiles at every start instead of reading its cached bytecode).
CHILD_DIR = os.path.dirname(os.path.abspath(adverts.__file__))
CHILD_CODE = (f"import sys; sys.path.append({CHILD_DIR!r}); import adverts; "
              "sys.exit(adverts.main(sys.argv[1:]))")


def child_argv(*args: str) -> List[str]:
    return [sys.executable, "-I", "-S", "-c", CHILD_CODE, *args]


@record
class Counts:
    """One exchange: what the sender sent and the kernel refused (EPERM),
    what reached the receiver's wire and what its raw socket got."""

    sent: int = 0
    refused: int = 0
    wire: int = 0
    delivered: int = 0

    def to_dict(self) -> Dict[str, int]:
        return asdict(self)


def exchange(sender: Namespace, send_if: str, receiver: Namespace, recv_if: str, count: int = 20,
             group: str = GROUP, seconds: float = 2.5, source: Optional[str] = None,
             proto: int = PROTO, ttl: Optional[int] = None, version: Optional[int] = None,
             addresses: int = 1) -> Counts:
    """Send ``count`` adverts from ``sender`` out of ``send_if`` and count
    them at ``receiver``'s ``recv_if``.  ``group`` is the destination: a
    multicast group or the receiver's unicast address (IPv4 or IPv6);
    ``proto`` 112 or 51 (AH); ``ttl`` the TTL / hop limit sent (None:
    keepalived's); ``version`` the VRRP version (None: keepalived's for the
    family); ``addresses`` how many virtual addresses each advert lists.
    ``seconds`` caps the wait; normally the receiver stops as soon as
    everything is counted or the sender is done."""
    from ..errors import EnvironmentProblem
    from ..host.run import TimeoutExpired
    from .netns import CommandFailed, first_line, release

    nonce = uuid.uuid4().hex[:8]
    shape = ["--proto", str(proto)] if proto != PROTO else []
    extra = ["--source", source] if source else []
    if ttl is not None:
        extra += ["--ttl", str(ttl)]
    if version is not None:
        extra += ["--version", str(version)]
    if addresses != 1:
        extra += ["--addresses", str(addresses)]
    # Both interpreters start at once; the sender waits for "go", which it
    # gets only once the receiver listens (its "ready").
    rx = receiver.popen(child_argv("recv", recv_if, group, nonce, str(seconds), str(count),
                                   "--done-on-stdin", *shape), stdin=True)
    tx = None
    try:
        send_argv = child_argv("send", send_if, group, nonce, str(count), *extra, *shape, "--go-on-stdin")
        tx = sender.popen(send_argv, stdin=True)
        assert rx.stdout is not None and rx.stdin is not None
        line = rx.stdout.readline()
        if line.strip() != "ready":
            err = rx.stderr.read() if rx.stderr is not None and rx.poll() is not None else ""
            raise EnvironmentProblem(f"advert receiver in {receiver.name} did not start: "
                                     f"{first_line(line + err)}")
        bound = seconds + SENDER_BOUND
        try:
            tx_out, tx_err = tx.communicate("go\n", timeout=bound)
        except TimeoutExpired:
            raise EnvironmentProblem(f"{sender.command(send_argv)[0]} did not finish within {bound:g} s"
                                     ) from None
        if tx.returncode != 0:
            raise CommandFailed(sender.command(send_argv), tx.returncode, tx_out, tx_err)
        out, _ = rx.communicate("done\n", timeout=bound)
    finally:
        if tx is not None:
            release(tx)
        release(rx)
    got = json.loads(out.strip().splitlines()[-1])
    got.update(json.loads(tx_out.strip().splitlines()[-1]))
    return Counts(**{k: int(got.get(k, 0)) for k in ("sent", "refused", "wire", "delivered")})


@record(frozen=True)
class Shape:
    """What an advert looks like on the wire: the family, multicast to the
    family's group or unicast between the two ends' own addresses, IP
    protocol 112 or 51 (AH), its TTL / hop limit and VRRP version.  The
    default is today's textbook advert: IPv4 multicast, protocol 112,
    VRRPv2, TTL 255.  ``ttl`` None is keepalived's own (255; for IPv6
    unicast the kernel's default hop limit, as keepalived leaves it);
    ``version`` 0 is keepalived's for the family (2 over IPv4, 3 over IPv6).

    Its text form (``name``/``parse``) is what corpus cases declare:
    ``ipv4``, ``ipv6``, ``ipv4 ah``, ``ipv6 unicast``, ``ipv4 ttl 1``,
    ``ipv4 v3``, ``ipv4 unicast v3``."""

    family: str = "ipv4"
    proto: int = PROTO
    unicast: bool = False
    ttl: Optional[int] = None
    version: int = 0

    def __post_init__(self) -> None:
        if self.family not in ("ipv4", "ipv6"):
            raise ValueError(f"family {self.family!r} is neither ipv4 nor ipv6")
        version = self.version or default_version(self.family)
        if version not in (2, 3) or (self.family == "ipv6" and version != 3):
            raise ValueError(f"VRRPv{version} over {self.family}: keepalived sends v2 or v3 over IPv4, "
                             "v3 over IPv6")
        if self.proto == AH and (self.family == "ipv6" or version != 2):
            raise ValueError("AH exists only with VRRPv2 over IPv4 (keepalived refuses it otherwise)")
        if self.ttl is not None and not 1 <= self.ttl <= 255:
            raise ValueError(f"TTL {self.ttl} is not 1..255")
        object.__setattr__(self, "version", version)
        if self.ttl == TTL and not (self.family == "ipv6" and self.unicast):
            object.__setattr__(self, "ttl", None)  # keepalived's own: one name for one advert

    @property
    def hop_limit(self) -> Optional[int]:
        """The TTL / hop limit sent: None where the kernel picks it (the
        interface's default, 64 unless changed): keepalived's IPv6 unicast."""
        if self.ttl is not None:
            return self.ttl
        return None if self.family == "ipv6" and self.unicast else TTL

    @property
    def name(self) -> str:
        words = [self.family]
        if self.unicast:
            words.append("unicast")
        if self.version != default_version(self.family):
            words.append(f"v{self.version}")
        if self.proto == AH:
            words.append("ah")
        if self.ttl is not None:
            words += ["ttl", str(self.ttl)]
        return " ".join(words)

    @property
    def group(self) -> str:
        return GROUP6 if self.family == "ipv6" else GROUP

    @classmethod
    def parse(cls, text: str) -> Shape:
        """The inverse of ``name``; ValueError on anything else."""
        words = text.split()
        if not words or words[0] not in ("ipv4", "ipv6"):
            raise ValueError(f"shape {text!r} must start with ipv4 or ipv6")
        family, rest = words[0], words[1:]
        unicast = rest[:1] == ["unicast"]
        rest = rest[1:] if unicast else rest
        version = 3 if rest[:1] == ["v3"] and family == "ipv4" else 0
        rest = rest[1:] if version else rest
        proto = AH if rest[:1] == ["ah"] else PROTO
        rest = rest[1:] if proto == AH else rest
        ttl = None
        if rest[:1] == ["ttl"] and len(rest) == 2 and rest[1].isdigit() and 1 <= int(rest[1]) <= 255:
            ttl, rest = int(rest[1]), rest[2:]
        if rest:
            raise ValueError(f"shape {text!r}: unknown words {rest}")
        return cls(family, proto, unicast, ttl, version)


@record
class TwoWay:
    """Both directions at once.  ``inbound`` is keyed by the peer's source
    address ("" for the peer namespace's own primary address)."""

    inbound: Dict[str, Counts] = field(default_factory=dict)
    outbound: Counts = field(default_factory=Counts)


def both_ways(host: Namespace, host_if: str, peer: Namespace, peer_if: str, count: int = 20,
              group: str = GROUP, seconds: float = 2.5, sources: Sequence[str] = (),
              proto: int = PROTO, ttl: Optional[int] = None, inbound_dst: Optional[str] = None,
              outbound_dst: Optional[str] = None, inbound: bool = True,
              outbound: bool = True, version: Optional[int] = None) -> TwoWay:
    """Inbound (peer -> host: the host's raw socket, i.e. what netfilter let
    in) from each source, and outbound (host -> peer: the peer's *wire*,
    since an egress drop need not show as EPERM), all concurrently.  Each
    exchange has its own nonce, so they cannot count each other's adverts.
    Adverts go to ``group``, unless ``inbound_dst`` / ``outbound_dst`` name
    the receiving end's unicast address; both directions carry ``proto``,
    ``ttl`` and ``version`` (see :func:`exchange`).  ``inbound``/``outbound`` False: that direction is not
    measured (its Counts stay empty)."""
    srcs = (list(sources) or [""]) if inbound else []
    with ThreadPoolExecutor(max_workers=len(srcs) + 1) as pool:
        ins = {s: pool.submit(exchange, peer, peer_if, host, host_if, count, inbound_dst or group,
                              seconds, s or None, proto, ttl, version)
               for s in srcs}
        out = pool.submit(exchange, host, host_if, peer, peer_if, count, outbound_dst or group, seconds,
                          None, proto, ttl, version) if outbound else None
        return TwoWay({s: f.result() for s, f in ins.items()}, out.result() if out else Counts())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
