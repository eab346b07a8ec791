"""The whole path, every layer: what each backend judges its chains within.

A backend changes its own layer only, but the verdict is the kernel's, and
the kernel runs every layer: so each backend builds the model from all of
them, its own with writable handles, the others read-only.  A layer that
cannot be read (not root, a library missing) is named in ``unread``: the
verdict is then ``uncertain`` rather than a false "allowed".
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ...host.hostscan import legacy_table_names
from ...host.run import run
from ..path_model import LEGACY_TABLES, PathModel
from .dynamic import lazy_state
from .nft import NftLayer

if TYPE_CHECKING:
    from .legacy import LegacyTables

IP6_NAMES = "/proc/net/ip6_tables_names"


def read_legacy() -> tuple[Optional[LegacyTables], Optional[str]]:
    """The legacy tables read-only (ip6tables' too, where any exists:
    other backends judge IPv6 rules over them), or why they could not be
    read."""
    names = legacy_table_names()
    names6 = legacy_table_names(IP6_NAMES) or []
    if names is None:
        return None, "legacy iptables (/proc/net/ip_tables_names needs root)"
    if not any(n in LEGACY_TABLES for n in names + names6):
        return None, None
    if os.geteuid() != 0:
        return None, "legacy iptables (reading it needs root)"
    try:
        from .iptc_loader import load_iptc
        from .legacy import LegacyTables

        iptc: Any = load_iptc()
        tables = LegacyTables(iptc, names, names6)
        tables.open()
        tables.open_ip6()
    except Exception as e:  # python-iptables missing or refusing: say so, never guess
        return None, f"legacy iptables tables {', '.join(names + names6)} ({e})"
    return tables, None


def build_model(legacy: Optional[LegacyTables], nft: NftLayer, options: Any = None,
                legacy_unread: Optional[str] = None) -> PathModel:
    from .bridges import links_shown
    from .bridges import read as read_bridges

    links = links_shown()  # one listing for the bridges and the groups
    model = PathModel(bridges=read_bridges(links))
    if legacy is not None:
        model.chains = legacy.base_chains()
    if legacy_unread:
        model.unread.append(legacy_unread)
    model.chains += nft.chains
    if nft.unread:
        model.unread.append(nft.unread)
    model.iface_groups = interface_groups(links)
    model.dynamic = lazy_state(model)
    return model


def interface_groups(shown: Optional[List[Any]] = None) -> Dict[str, int]:
    """Every interface's group in this network namespace, by number
    (``ip -N``: names from /etc/iproute2/group would need that file), from
    ``shown`` (:func:`.bridges.links_shown`) or else ``ip -j -N link show``;
    empty where ip cannot tell, and then group matches stay unknown."""
    if shown is not None:
        links: Any = shown
    else:
        ran = run(["ip", "-j", "-N", "link", "show"], timeout=20)
        try:
            links = json.loads(ran.out) if ran.code == 0 else []
        except ValueError:
            return {}
    out: Dict[str, int] = {}
    for link in links if isinstance(links, list) else []:
        try:
            out[str(link["ifname"])] = int(link["group"])
        except (KeyError, TypeError, ValueError):
            continue
    return out
