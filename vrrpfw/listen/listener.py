"""``vrrpfw check --listen SECONDS``: the live proof while keepalived runs.

Why listen at all: the static verdict of ``check`` judges the rules; this
judges the packets.  For SECONDS it watches two places at once, in the
current network namespace:

* the wire, before netfilter, and delivery, what netfilter let in to raw
  IP sockets joined to the VRRP groups, as keepalived's own sockets would
  (:mod:`.capture`);
* the firewall's drop counters, before and after (:mod:`.counters`).

The adverts heard become one verdict per source (:mod:`.verdicts`) in a
:class:`~vrrpfw.listen.report.ListenReport` (:mod:`.report`), whose exit
code says how it went.  This module checks the arguments and runs a listen.
Usage errors are ``InputError`` (2) and environment problems
``EnvironmentProblem`` (3).
"""

from __future__ import annotations

import ipaddress
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import EnvironmentProblem, InputError
from ..model import validate_interface
from .capture import _Capture
from .counters import counter_growth, read_counters
from .report import (
    FAMILIES,
    GROUP4,
    GROUP6,
    Counters,
    ListenReport,
)

# --- the capture: sockets in the current network namespace ---

def _check_args(interfaces: Sequence[str], seconds: float,
                families: Sequence[str]) -> Tuple[List[str], float]:
    if isinstance(interfaces, (str, bytes)) or not isinstance(interfaces, Sequence):
        raise InputError("interfaces must be a list of interface names")
    names = [validate_interface(i) for i in interfaces]
    if not names:
        raise InputError("listen needs at least one interface")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0:
        raise InputError(f"listen seconds must be a finite number > 0, not {seconds!r}")
    if isinstance(families, str) or not families or any(f not in FAMILIES for f in families):
        raise InputError(f"families must be a list of {', '.join(FAMILIES)}, not {families!r}")
    return names, float(seconds)


def listen(interfaces: Sequence[str], seconds: float, families: Sequence[str] = FAMILIES,
           expect_group4: str = GROUP4, expect_group6: str = GROUP6,
           read_firewall_counters: bool = True, ready: Optional[Callable[[], None]] = None) -> ListenReport:
    """Listen for VRRP adverts on ``interfaces`` for ``seconds`` in the
    current network namespace, and judge each router heard (see the module
    docstring).  Sends nothing; needs root (CAP_NET_RAW).  ``ready`` is
    called once the sockets are open and the counters read, just before the
    window starts (the CLI can say "listening", a test can start sending)."""
    names, secs = _check_args(interfaces, seconds, families)
    try:
        g4 = str(ipaddress.IPv4Address(expect_group4))
        g6 = str(ipaddress.IPv6Address(expect_group6))
    except ValueError as e:
        raise InputError(f"not a group address: {e}") from None
    if not ipaddress.ip_address(g4).is_multicast or not ipaddress.ip_address(g6).is_multicast:
        raise InputError(f"{g4} / {g6}: expected groups must be multicast addresses")
    if os.geteuid() != 0:
        raise EnvironmentProblem("listening for VRRP needs root (raw and packet sockets)")
    capture = _Capture(names, families, g4, g6)
    counters = Counters()
    try:
        before: Dict[Tuple[str, ...], Tuple[int, str, str]] = {}
        if read_firewall_counters:
            before, counters.not_read = read_counters(families)
        if ready is not None:
            ready()
        capture.run(secs)
        if read_firewall_counters:
            after, why = read_counters(families)
            counters.grown = counter_growth(before, after)
            counters.not_read += [w for w in why if w not in counters.not_read]
        else:
            counters.not_read.append("not asked for")
    finally:
        capture.close()
    return capture.report(secs, g4, g6, counters)
