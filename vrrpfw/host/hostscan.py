"""Which netfilter layers exist in this network namespace, and which filter.

Legacy iptables tables and nf_tables chains hook the same packets and each
can drop VRRP on its own: an ACCEPT in one layer does not save a packet the
other drops.  Before writing anything we look at both, cheaply (no
python-iptables import), so ``auto`` can choose and an explicit backend can
warn that its rules would not be enough.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Tuple

from vrrpfw.record import field, record

from ..model import COMMENT, FIREWALLD_TABLES
from .bounded_read import MiB, ReadRefused, read_regular
from .nft import NftDenied, NftError, nft_json, nft_parsed
from .run import Started, run
from .which import which

# Every hook a VRRP advert crosses, received or sent, and the families that see it.
FILTER_HOOKS = {"ingress", "prerouting", "input", "output", "postrouting", "egress"}
FAMILIES = {"ip", "ip6", "inet", "netdev", "bridge"}  # bridge: on the path of a bridge and its ports


@record
class NftChain:
    family: str
    table: str
    name: str
    hook: str
    policy: str
    rules: int
    drops: bool  # has a drop/reject verdict or a jump that could drop
    # holds a rule of vrrpfw's (comment "vrrpfw"): ``open --backend`` pinned
    # it in a chain that lets VRRP through by policy; auto must still see
    # it, or ``close`` would leave it behind with "nothing blocks VRRP here"
    ours: bool = False

    @property
    def label(self) -> str:
        mine = ", holds vrrpfw's rule" if self.ours else ""
        return f"{self.family} {self.table} {self.name} (hook {self.hook}, policy {self.policy}{mine})"

    @property
    def filters(self) -> bool:
        return self.policy == "drop" or self.drops or self.ours


UFW_CONF = "/etc/ufw/ufw.conf"
UFW_DEFAULT = "/etc/default/ufw"
# ufw's first own chain of each family; ufw-init creates it before loading before.rules.
UFW_CHAINS = {"ip": "ufw-before-input", "ip6": "ufw6-before-input"}


@record
class UfwState:
    """What ufw's configuration says and what the kernel has loaded.

    ``enabled`` is ufw.conf's ENABLED (what ufw starts at boot); ``layer``
    is "nft" or "legacy": the iptables variant whose filter table holds
    ufw-before-input (ufw calls plain ``iptables-restore``, so whichever
    the alternatives point at), None while ufw's chains are not loaded."""

    enabled: bool
    ipv6: bool = True  # /etc/default/ufw IPV6=yes: before6.rules is loaded too
    layer: Optional[str] = None
    families: List[str] = field(default_factory=list)  # "ip", "ip6": where ufw's chains are

    @property
    def active(self) -> bool:
        return self.enabled and self.layer is not None

    @property
    def found(self) -> str:
        """One phrase for messages: what was found."""
        conf = f"ufw installed, {UFW_CONF} ENABLED={'yes' if self.enabled else 'no'}"
        if self.layer is None:
            return conf + ", its chains (ufw-before-input) are not loaded"
        variant = "iptables-nft" if self.layer == "nft" else "iptables-legacy"
        return conf + f", its chains are loaded in {variant}'s filter table"


def shell_vars(text: str) -> Dict[str, str]:
    """KEY=value lines of a shell-sourced config (ufw.conf, /etc/default/ufw),
    quotes removed; comments and anything else ignored."""
    out: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.isidentifier():
            out[key] = value.split("#", 1)[0].strip().strip("\"'")
    return out


def _read(path: str) -> Optional[str]:
    """A small configuration file's text; None where it is absent,
    unreadable, not a regular file (a FIFO would block) or over 1 MiB."""
    try:
        return read_regular(path, MiB).decode("utf-8", errors="replace")
    except (OSError, ReadRefused):
        return None


def ufw_config(root: str = "/") -> Optional[UfwState]:
    """ufw's configuration (None where ufw is not installed: no ufw.conf)."""
    conf = _read(os.path.join(root, UFW_CONF.lstrip("/")))
    if conf is None:
        return None
    default = shell_vars(_read(os.path.join(root, UFW_DEFAULT.lstrip("/"))) or "")
    enabled = shell_vars(conf).get("ENABLED", "no").lower() == "yes"
    return UfwState(enabled, default.get("IPV6", "yes").lower() == "yes")


def ufw_nft_families(chain_items: List[Any]) -> List[str]:
    """Families ("ip", "ip6") whose iptables-nft filter table holds ufw's
    chain, from ``nft -j list chains`` items."""
    found = []
    for item in chain_items:
        c = item.get("chain") or {}
        fam = c.get("family")
        if c.get("table") == "filter" and fam in UFW_CHAINS and c.get("name") == UFW_CHAINS[fam] \
                and fam not in found:
            found.append(fam)
    return found


def ufw_legacy_families(tables: List[str]) -> List[str]:
    """Families whose legacy filter table holds ufw's chain (asked of
    ``iptables-legacy -L CHAIN``, only where a legacy filter table exists)."""
    found = []
    for fam, tool, table in (("ip", "iptables-legacy", "filter"), ("ip6", "ip6tables-legacy", "ip6 filter")):
        path = which(tool)
        if table not in tables or path is None:
            continue
        if run([path, "-w", "5", "-n", "-L", UFW_CHAINS[fam]], timeout=20).ok:
            found.append(fam)
    return found


def scan_ufw(legacy_tables: List[str], nft_items: List[Any], root: str = "/") -> Optional[UfwState]:
    """ufw's state: where its chains are loaded (nf_tables first: the
    variant Debian 11+ and Ubuntu 20.04+ run), looked for only where its
    configuration exists."""
    state = ufw_config(root)
    if state is None or not state.enabled:  # disabled: not ufw's to manage, whatever is loaded
        return state
    fams = ufw_nft_families(nft_items)
    if fams:
        state.layer, state.families = "nft", fams
    else:
        fams = ufw_legacy_families(legacy_tables)
        if fams:
            state.layer, state.families = "legacy", fams
    return state


@record
class HostScan:
    legacy_tables: List[str] = field(default_factory=list)  # ip6tables' as "ip6 filter" etc.
    legacy_unreadable: bool = False  # /proc/net/ip_tables_names needs root
    iptables_variant: Optional[str] = None  # "legacy" | "nf_tables" | None
    nft_available: bool = False
    nft_error: Optional[str] = None
    nft_chains: List[NftChain] = field(default_factory=list)
    firewalld_tables: List[str] = field(default_factory=list)
    firewalld_bus: bool = False  # firewalld answers on the system bus
    ufw: Optional[UfwState] = None  # ufw's configuration and where its chains are loaded
    # Scanning a network namespace other than init's (--netns, keepalived's
    # net_namespace): ufw's configuration is the host's, its chains need not be here.
    other_netns: bool = False
    # ``nft -j list chains`` as the scan read it (the path readers of the same run start from it)
    nft_heads: Optional[Dict[str, Any]] = None
    # False: the filter chains' rules were not listed (scan(firewalld_first=True) on a host
    # where firewalld answers: auto chooses firewalld from the bus alone); nft_chains is empty
    nft_rules_read: bool = True

    def outdated(self) -> None:
        """The run is about to change the firewall: the listing no longer
        describes the kernel, so later path reads list nft's chains afresh."""
        self.nft_heads = None

    @property
    def ufw_active(self) -> bool:
        """ufw's config says enabled and its chains are loaded: ufw manages
        this host's filter table, and restores it from its own files."""
        return self.ufw is not None and self.ufw.active

    @property
    def legacy_filter(self) -> bool:
        """A legacy table that can drop VRRP exists (nat cannot)."""
        return any(t.split()[-1] in ("raw", "mangle", "filter", "security") for t in self.legacy_tables)

    @property
    def nft_filtering(self) -> List[NftChain]:
        return [c for c in self.nft_chains if c.filters]


def legacy_table_names(proc: str = "/proc/net/ip_tables_names") -> Optional[List[str]]:
    """Tables the legacy x_tables code holds in this namespace; reading this
    file loads no module.  None when it exists but cannot be read (it is
    mode 0440 root: a non-root caller cannot know, and must not guess "none")."""
    try:
        with open(proc, encoding="ascii") as f:
            return [line.strip() for line in f if line.strip()]
    except PermissionError:
        return None
    except OSError:
        return []


def iptables_variant() -> Optional[str]:
    """What the plain ``iptables`` command is here, from its symlink chain
    (no exec needed on Debian's alternatives or RHEL's xtables links)."""
    path = which("iptables")
    if path is None:
        return None
    real = os.path.basename(os.path.realpath(path))
    if "legacy" in real:
        return "legacy"
    if "nft" in real:
        return "nf_tables"
    ran = run([path, "-V"], timeout=10)
    if ran.exc is not None:
        return None
    out = ran.out
    if "nf_tables" in out:
        return "nf_tables"
    if "legacy" in out or out.startswith("iptables v1.6") or out.startswith("iptables v1.4"):
        return "legacy"
    return None


# iptables-nft targets kept as compat (xt) expressions that never end a packet.
HARMLESS_XT_TARGETS = {"LOG", "NFLOG", "MARK", "CONNMARK", "TRACE", "AUDIT", "CLASSIFY", "DSCP", "TOS",
                       "TCPMSS", "CHECKSUM", "TTL", "HL", "CT", "NOTRACK", "SET", "SECMARK", "CONNSECMARK"}


def _has_verdict(node: Any, names: set) -> bool:
    if isinstance(node, dict):
        xt = node.get("xt")
        if isinstance(xt, dict) and xt.get("type") == "target" and names is DROPPING_VERDICTS:
            # iptables-nft writes REJECT (and any target nft has no native
            # form for) as a compat expression: it may drop.
            if str(xt.get("name", "")).upper() not in HARMLESS_XT_TARGETS:
                return True
        return any(k in names or _has_verdict(v, names) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_verdict(v, names) for v in node)
    return False


def parse_nft_ruleset(doc: Dict[str, Any]) -> tuple:
    """(filter chains on input/output, firewalld table names) from
    ``nft -j list ruleset`` output."""
    chains: Dict[tuple, NftChain] = {}
    firewalld: List[str] = []
    for item in doc.get("nftables", []):
        if "table" in item:
            t = item["table"]
            label = f"{t.get('family')} {t.get('name')}"
            if (t.get("family"), t.get("name")) in FIREWALLD_TABLES and label not in firewalld:
                firewalld.append(label)
        elif "chain" in item:
            c = item["chain"]
            key = (c.get("family"), c.get("table"), c.get("name"))
            if (key[0], key[1]) in FIREWALLD_TABLES:
                label = f"{key[0]} {key[1]}"
                if label not in firewalld:
                    firewalld.append(label)
                continue
            if c.get("hook") in FILTER_HOOKS and key[0] in FAMILIES:
                chains[key] = NftChain(key[0], key[1], key[2], c["hook"], c.get("policy", "accept"), 0, False)
        elif "rule" in item:
            r = item["rule"]
            chain = chains.get((r.get("family"), r.get("table"), r.get("chain")))
            if chain is not None:
                chain.rules += 1
                if r.get("comment") == COMMENT:
                    chain.ours = True
                if _has_verdict(r.get("expr", []), DROPPING_VERDICTS):
                    chain.drops = True
    return list(chains.values()), firewalld


# Verdicts (and verdict carriers) that could keep an advert from getting through.
DROPPING_VERDICTS = {"drop", "reject", "jump", "goto", "queue", "vmap", "fwd"}
PERMISSION = "reading nf_tables needs root or CAP_NET_ADMIN"
FIREWALLD_BUS_NAME = "org.fedoraproject.FirewallD1"


# The last scan's answer (see firewalld_answered): (when, network namespace, bus address, answer)
_answered: List[Tuple[float, Optional[int], Optional[str], bool]] = []
ANSWER_FRESH = 10.0  # seconds the scan's answer stands in for asking again


def _netns() -> Optional[int]:
    try:
        return os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        return None


def firewalld_answered() -> bool:
    """:func:`firewalld_answers`, taken from the host scan that asked it
    moments ago in this run (the same namespace and bus; once, and within
    ANSWER_FRESH seconds), else asked again: the backend's availability
    after the scan costs no second D-Bus round trip."""
    last = _answered.pop() if _answered else None
    if (last is not None and last[1] == _netns() and last[2] == os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
            and 0 <= time.monotonic() - last[0] <= ANSWER_FRESH):
        return last[3]
    return firewalld_answers()


def _scan_answer() -> bool:
    answer = firewalld_answers()
    _answered[:] = [(time.monotonic(), _netns(), os.environ.get("DBUS_SYSTEM_BUS_ADDRESS"), answer)]
    return answer


def _no_such_socket(address: str) -> bool:
    """Is the bus address one ``unix:path=P`` whose socket P does not exist?
    Then nothing answers there (dbus-python would fail to connect), and
    dbus-python need not be imported to hear it: ``prove``'s replicas run
    with such an address.  Any other address (several, abstract, tcp, other
    keys) is left to dbus-python."""
    if ";" in address or not address.startswith("unix:path="):
        return False
    path = address[len("unix:path="):]
    if not path or "," in path or "%" in path:
        return False
    return not os.path.exists(path)


def firewalld_answers() -> bool:
    """Is firewalld on the system bus (``DBUS_SYSTEM_BUS_ADDRESS`` honoured)?
    A cheap no when no bus is in sight, so dbus is only imported where useful."""
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    if not address and not any(
            os.path.exists(p) for p in ("/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket")):
        return False
    if address and _no_such_socket(address):
        return False
    try:
        import dbus

        bus = dbus.SystemBus()
        proxy = bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus", introspect=False)
        iface = dbus.Interface(proxy, "org.freedesktop.DBus")
        return bool(iface.NameHasOwner(FIREWALLD_BUS_NAME, timeout=5))
    except Exception:  # no dbus-python, no bus, bus refuses: not answering
        return False


def in_other_netns() -> bool:
    """Is this process in a network namespace other than init's?  False
    where that cannot be read (not root, no /proc/1)."""
    try:
        return os.stat("/proc/self/ns/net").st_ino != os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return False


def scan(nft_timeout: float = 20.0, firewalld_first: bool = False) -> HostScan:
    """What filters here.  ``firewalld_first``: where firewalld answers on
    the bus, do not list each filter chain's rules (one ``nft`` run per base
    chain: some thirty on firewalld's iptables backend over iptables-nft),
    since choosing a backend then looks at firewalld alone (see
    registry.choose_auto); ``nft_rules_read`` says so and ``nft_chains``
    stays empty."""
    nft = which("nft")
    # nft's chain headers are listed while the rest of the scan asks elsewhere (D-Bus, /proc).
    heads = Started([nft, "-j", "list", "chains"], nft_timeout) if nft is not None else None
    try:
        return _scan(nft, heads, nft_timeout, firewalld_first)
    finally:
        if heads is not None:
            heads.close()


def _scan(nft: Optional[str], heads: Optional[Started], nft_timeout: float,
          firewalld_first: bool) -> HostScan:
    names = legacy_table_names()
    names6 = legacy_table_names("/proc/net/ip6_tables_names")
    tables = (names or []) + [f"ip6 {t}" for t in names6 or []]
    result = HostScan(legacy_tables=tables, legacy_unreadable=names is None or names6 is None,
                      iptables_variant=iptables_variant(),
                      firewalld_bus=_scan_answer(), other_netns=in_other_netns())
    if nft is None:
        result.nft_error = "nft is not installed: nf_tables chains were not inspected"
        result.ufw = scan_ufw(tables, [])
        return result
    # Chain headers first, then only the filter base chains on input/output:
    # `nft list ruleset` would cost seconds on a host with 50,000 rules elsewhere.
    chains = _nft_json(nft, ["list", "chains"], nft_timeout, heads)
    if isinstance(chains, str):
        result.nft_error = chains
        result.ufw = scan_ufw(tables, [])
        return result
    result.ufw = scan_ufw(tables, list(chains.get("nftables", [])))
    result.nft_available = True
    result.nft_heads = chains
    items = list(chains.get("nftables", []))
    if firewalld_first and result.firewalld_bus:
        result.nft_rules_read = False
        result.firewalld_tables = parse_nft_ruleset({"nftables": items})[1]
        return result
    for item in chains.get("nftables", []):
        c = item.get("chain") or {}
        if (c.get("hook") in FILTER_HOOKS and c.get("family") in FAMILIES
                and (c.get("family"), c.get("table")) not in FIREWALLD_TABLES):
            body = _nft_json(nft, ["list", "chain", c["family"], c["table"], c["name"]], nft_timeout)
            if isinstance(body, str):
                result.nft_error = body
                return result
            items += [i for i in body.get("nftables", []) if "rule" in i]
    result.nft_chains, result.firewalld_tables = parse_nft_ruleset({"nftables": items})
    return result


def _nft_json(nft: str, args: List[str], timeout: float, started: Optional[Started] = None) -> Any:
    """Parsed ``nft -j ARGS`` output, or an error message string
    (``started``: that run, started earlier)."""
    what = "nft " + " ".join(args[:2])
    try:
        return nft_json(args, timeout, nft) if started is None else nft_parsed(started.result(), args)
    except (NftError, NftDenied) as e:
        ran = e.ran
    except OSError as e:  # nft could not start
        return f"{what} failed: {e}"
    except ValueError:
        return f"{what} printed JSON vrrpfw cannot read"
    if ran.exc is not None:  # timed out
        return f"{what} failed: {ran.exc}"
    if "Operation not permitted" in ran.err:
        return f"{what}: {PERMISSION}"
    return f"{what} failed: {ran.err.strip()[:200]}"
