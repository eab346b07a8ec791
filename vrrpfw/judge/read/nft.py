"""nf_tables chains on VRRP's path, read through ``nft -j``.

``nft -j list chains`` (headers only, cheap) says which tables have a base
chain on a hook the advert crosses; each such table is then listed once,
whole (chains, rules, sets and maps with their elements), so a table of
50,000 rules that VRRP never meets costs nothing.  Tables written by
iptables-nft hide match details in compat expressions; where those occur,
``iptables-nft -t TABLE -S`` gives the same rules as text.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from vrrpfw.record import field, record

from ...host.nft import nft_json, nft_parsed
from ...host.run import Started
from ...host.which import which
from ...model import FIREWALLD_TABLES
from ..path_model import BaseChain, ChainId, Hook

# The converters are imported where a table is listed: a host whose nf_tables
# has nothing on VRRP's path (a legacy host) never pays for them.
if TYPE_CHECKING:
    from ..nft import NftTable
    from ..rules import FwRule

FAMILIES = ("ip", "ip6", "inet", "netdev", "bridge")
HOOKS = {h.value: h for h in Hook}


@record
class NftLayer:
    chains: List[BaseChain] = field(default_factory=list)
    tables: Dict[Tuple[str, str], NftTable] = field(default_factory=dict)
    # every chain of every ip/inet/netdev/bridge table (close sweeps them all)
    all_chains: List[Tuple[str, str, str]] = field(default_factory=list)
    unread: Optional[str] = None  # why nf_tables could not be read
    # each listed table's handle (nf_tables numbers a recreated table afresh)
    handles: Dict[Tuple[str, str], int] = field(default_factory=dict)


XT_TOOLS = {"ip": "iptables-nft", "ip6": "ip6tables-nft"}


def _resolver_started(family: str, table: str) -> Optional[Started]:
    """The listing a table's compat expressions are read from, started:
    ``iptables-nft -S`` (``ip``, ``ip6tables-nft`` for ``ip6``) or
    ``ebtables-nft -L`` (``bridge``); None where the tool is missing."""
    tool = which("ebtables-nft" if family == "bridge" else XT_TOOLS[family])
    if tool is None:
        return None
    return Started([tool, "-t", table, "-L" if family == "bridge" else "-S"], timeout=60)


def _xt_resolver(table: str, family: str = "ip", started: Optional[Started] = None) -> Any:
    """Rules of an iptables-nft (``ip``) or ip6tables-nft (``ip6``) table as
    that tool prints them, by chain and position; None where the tool is
    missing or disagrees.  ``started``: its listing, started earlier."""
    if started is None:
        started = _resolver_started(family, table)
    if started is None:
        return None
    ran = started.result()
    if ran.exc is not None:
        return None
    from ..iptables import parse_rule

    out = ran.out
    by_chain: Dict[str, List[FwRule]] = {}
    for line in out.splitlines():
        rule = parse_rule(line)
        if rule is not None:
            by_chain.setdefault(rule.chain, []).append(rule)

    def resolve(chain: str, pos: int) -> Optional[FwRule]:
        rules = by_chain.get(chain, [])
        return rules[pos] if pos < len(rules) else None
    return resolve


def _ebt_resolver(table: str, started: Optional[Started] = None) -> Any:
    """Rules of an ebtables-nft table as ``ebtables-nft -L`` prints them, by
    chain and position; None where the tool is missing."""
    if started is None:
        started = _resolver_started("bridge", table)
    if started is None:
        return None
    ran = started.result()
    if ran.exc is not None:
        return None
    from ..ebtables import parse_listing as parse_ebtables

    out = ran.out
    by_chain = parse_ebtables(out)

    def resolve(chain: str, pos: int) -> Optional[FwRule]:
        rules = by_chain.get(chain, [])
        return rules[pos] if pos < len(rules) else None
    return resolve


_DEVICE = re.compile(r'devices?\s*=?\s*(\{[^}]*\}|"[^"]*"|\S+)')


def parse_devices(text: str) -> Dict[Tuple[str, str, str], Tuple[str, ...]]:
    """Devices of ingress/egress chains from ``nft list chains`` text: the
    JSON of nft 1.0.x leaves them out."""
    out: Dict[Tuple[str, str, str], Tuple[str, ...]] = {}
    table: Optional[Tuple[str, str]] = None
    chain: Optional[str] = None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "table":
            table, chain = (words[1], words[2]), None
        elif len(words) >= 2 and words[0] == "chain":
            chain = words[1]
        elif table and chain and "hook" in words:
            m = _DEVICE.search(line)
            if m:
                names = re.findall(r'"([^"]*)"|([^\s{},"]+)', m.group(1))
                out[(table[0], table[1], chain)] = tuple(a or b for a, b in names)
    return out


def _devices(header: Dict[str, Any], known: Dict[Tuple[str, str, str], Tuple[str, ...]]
             ) -> Optional[Tuple[str, ...]]:
    """The devices a chain is bound to; None for chains on every device."""
    if header.get("hook") not in ("ingress", "egress"):
        return None
    dev = header.get("dev")
    if dev is not None:
        return tuple(dev) if isinstance(dev, list) else (str(dev),)
    return known.get((header["family"], header["table"], header["name"]))


def _device_listing(started: Optional[Started] = None) -> Dict[Tuple[str, str, str], Tuple[str, ...]]:
    if started is None:
        started = Started([which("nft") or "nft", "list", "chains"], timeout=60)
    ran = started.result()
    if ran.exc is not None:
        return {}
    return parse_devices(ran.out)


# How many table listings run at once: each is one short ``nft`` run, and
# firewalld's iptables backend over iptables-nft has some twelve tables.
PARALLEL = 16


def _wanted_keys(heads: Any, sweep: bool) -> Tuple[List[Tuple[str, str]], bool]:
    """Pure: the tables to list (those with a hook on VRRP's path; all when
    close sweeps), and whether netdev chains need ``nft list chains``' text
    for their devices."""
    wanted: List[Tuple[str, str]] = []
    for item in heads.get("nftables", []):
        c = item.get("chain")
        if not c or c.get("family") not in FAMILIES:
            continue
        key = (c["family"], c["table"])
        if (c.get("hook") in HOOKS or sweep) and key not in wanted:
            wanted.append(key)
    hooks = {str((i.get("chain") or {}).get("hook")) for i in heads.get("nftables", [])}
    return wanted, bool(hooks & {"ingress", "egress"})


class Listings:
    """The listings :func:`read` waits for, started side by side (at most
    :data:`PARALLEL` tables at once), each through :class:`Started` (run()'s
    errors and time-out): ``nft -j list table`` for each wanted table, the
    devices' text listing, and the iptables-nft / ebtables-nft listings of
    tables with compat expressions.  :func:`start` starts them early, from
    the host scan's heads; :meth:`close` kills and reaps what was not used."""

    def __init__(self, nft: str, heads: Any, sweep: bool = False) -> None:
        self.heads = heads
        self.sweep = sweep
        self.nft = nft
        self.wanted, needs_devices = _wanted_keys(heads, sweep)
        self._tables: Dict[Tuple[str, str], Started] = {}
        self._waiting = 0  # started, not yet taken
        self.resolvers: Dict[Tuple[str, str], Optional[Started]] = {}
        self.devices = Started([nft, "list", "chains"], timeout=60) if needs_devices else None
        self._top_up()

    def _top_up(self) -> None:
        for family, name in self.wanted:
            if self._waiting >= PARALLEL:
                return
            if (family, name) not in self._tables:
                self._tables[(family, name)] = self._listing(family, name)
                self._waiting += 1

    def _listing(self, family: str, name: str) -> Started:
        return Started([self.nft, "-j", "list", "table", family, name], timeout=60)

    def table(self, family: str, name: str) -> Any:
        """``nft -j list table FAMILY NAME`` parsed (nft_json's errors)."""
        started = self._tables.get((family, name))
        if started is None:
            started = self._tables[(family, name)] = self._listing(family, name)
        else:
            self._waiting -= 1
        self._top_up()
        return nft_parsed(started.result(), ["list", "table", family, name])

    def resolver(self, family: str, name: str) -> None:
        """Start the compat listing of a table that needs one."""
        if (family, name) not in self.resolvers:
            self.resolvers[(family, name)] = _resolver_started(family, name)

    def close(self) -> None:
        for started in [*self._tables.values(), *self.resolvers.values(), self.devices]:
            if started is not None:
                started.close()


def start(heads: Any, sweep: bool = False) -> Optional[Listings]:
    """The listings :func:`read` (same ``heads``, same ``sweep``) will wait
    for, started now, so they run while the caller does other waiting;
    None where there is nothing to start.  The caller passes them to
    :func:`read`, or closes them."""
    nft = which("nft")
    if heads is None or nft is None:
        return None
    try:
        return Listings(nft, heads, sweep)
    except (KeyError, TypeError, AttributeError, ValueError):
        return None  # read() says what is wrong with the heads


class EarlyListings:
    """A backend's early listings (firewalld's): the processes whose
    arguments the host scan already fixed, started when the backend starts
    loading (before it asks firewalld): the
    nf_tables tables on VRRP's path (``nft -j list table``, from the scan's
    heads) and the links (``ip -j -d -N link show``), read by the verdict
    (on either of firewalld's backends) after the D-Bus reads.  What is not
    read is killed and reaped by :meth:`drop`: at the end of the session,
    where loading fails, or at the latest at exit (a run that fails between
    loading and its session)."""

    def __init__(self) -> None:
        self.nft: Optional[Listings] = None

    def start(self, heads: Any) -> None:
        if heads is None or self.nft is not None:
            return
        import atexit

        atexit.register(self.drop)
        from . import bridges

        self.nft = start(heads)
        bridges.start_links()

    def take(self, epoch: int) -> Optional[Listings]:
        """The tables' listings, while they still show the kernel as the
        scan found it (``epoch`` 0: vrrpfw has changed nothing yet); the
        reader closes them."""
        early, self.nft = self.nft, None
        if early is not None and epoch:
            early.close()
            return None
        return early

    def drop(self) -> None:
        import atexit

        atexit.unregister(self.drop)
        early, self.nft = self.nft, None
        if early is not None:
            early.close()
        from . import bridges

        bridges.drop_links()


def read(sweep: bool = False, heads: Any = None, early: Optional[Listings] = None) -> NftLayer:
    """Every table with a chain on VRRP's path.  ``heads``: ``nft -j list
    chains`` as the caller read it moments ago in this run (the host scan),
    so it is not run twice; ``early``: the listings :func:`start` started
    from those heads (closed here, used or not)."""
    try:
        return _read(sweep, heads, early)
    finally:
        if early is not None:
            early.close()


def _read(sweep: bool, heads: Any, early: Optional[Listings]) -> NftLayer:
    layer = NftLayer()
    nft = which("nft")
    if nft is None:
        if os.path.isdir("/sys/module/nf_tables"):
            layer.unread = "nf_tables is loaded but nft is not installed (apt-get install nftables)"
        return layer
    try:
        if heads is None:
            heads = nft_json(["list", "chains"])
    except PermissionError:
        layer.unread = "nf_tables (reading it needs root or CAP_NET_ADMIN)"
        return layer
    except (RuntimeError, OSError, ValueError) as e:
        layer.unread = f"nf_tables ({e})"
        return layer
    try:
        for item in heads.get("nftables", []):
            c = item.get("chain")
            if c and c.get("family") in FAMILIES:
                layer.all_chains.append((c["family"], c["table"], c["name"]))
        if early is not None and early.heads is heads and early.sweep == sweep:
            listings = early
        else:
            listings = Listings(nft, heads, sweep)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        layer.unread = f"nf_tables (nft's chain listing has a shape vrrpfw does not know: {e!r})"
        return layer
    try:
        try:
            devices = _device_listing(listings.devices) if listings.devices is not None else {}
        except ValueError as e:  # text that is not UTF-8 (a device's name): as before 0f8fa27
            layer.unread = f"nf_tables (nft's chain listing has a shape vrrpfw does not know: {e!r})"
            return layer
        # Every table's listing first (their compat listings started as each
        # one shows it needs them), then each converted in order, so that
        # what is unread is said as when they were read one after another.
        docs: List[Tuple[str, str, Any, Optional[str]]] = []
        for family, name in listings.wanted:
            try:
                doc = listings.table(family, name)
            except (PermissionError, RuntimeError, OSError, ValueError) as e:
                docs.append((family, name, None, f"nf_tables table {family} {name} ({e})"))
                continue
            docs.append((family, name, doc, None))
            try:
                if _has_xt(family, doc.get("nftables", [])):
                    listings.resolver(family, name)
            except (KeyError, TypeError, AttributeError, ValueError):
                pass  # said where the table is converted
        for family, name, doc, why in docs:
            if why is not None:
                layer.unread = why
                continue
            try:
                _add_table(layer, family, name, doc.get("nftables", []), devices, listings)
            except (KeyError, TypeError, AttributeError, ValueError) as e:
                # A newer nft may print what this version of vrrpfw cannot
                # judge: that table is unread (so no verdict is "ok"), not a crash.
                layer.unread = (f"nf_tables table {family} {name} (nft's JSON has a shape vrrpfw "
                                f"does not know: {e!r})")
    finally:
        listings.close()
    return layer


def _has_xt(family: str, items: List[Any]) -> bool:
    """Does a table iptables-nft or ebtables-nft may have written hold
    compat expressions (match details only those tools print)?"""
    return family in (*XT_TOOLS, "bridge") and any("xt" in e for i in items
                                                   for e in (i.get("rule") or {}).get("expr", []))


def _add_table(layer: NftLayer, family: str, name: str, items: List[Any],
               devices: Dict[Tuple[str, str, str], Tuple[str, ...]],
               listings: Optional[Listings] = None) -> None:
    from ..nft import convert_table

    resolver = None
    if _has_xt(family, items):
        if listings is None:
            resolver = _ebt_resolver(name) if family == "bridge" else _xt_resolver(name, family)
        else:
            listings.resolver(family, name)
            started = listings.resolvers[(family, name)]
            if started is not None:
                resolver = (_ebt_resolver(name, started) if family == "bridge"
                            else _xt_resolver(name, family, started))
    _convert(layer, family, name, items, devices, resolver, convert_table)


def _convert(layer: NftLayer, family: str, name: str, items: List[Any],
             devices: Dict[Tuple[str, str, str], Tuple[str, ...]], resolver: Any, convert_table: Any) -> None:
    table = convert_table(family, name, items, resolver)
    layer.tables[(family, name)] = table
    for item in items:
        head = item.get("table")
        if head and (head.get("family"), head.get("name")) == (family, name) and "handle" in head:
            layer.handles[(family, name)] = int(head["handle"])
    owner = "firewalld" if (family, name) in FIREWALLD_TABLES else ""
    for cname, header in table.headers.items():
        hook = HOOKS.get(str(header.get("hook")))
        if hook is None:
            continue

        def lookup(sub: str, table: NftTable = table) -> Optional[List[FwRule]]:
            return table.chains.get(sub) if sub else None

        policy = str(header.get("policy", "accept")).upper()
        cid = ChainId("nft", family, name, cname)
        layer.chains.append(BaseChain(cid, hook, int(header.get("prio", 0)), policy,
                                      table.chains.get(cname, []), lookup,
                                      _devices(header, devices), owner, str(header.get("type", "filter"))))
