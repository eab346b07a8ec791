"""Which interfaces a replica needs, and what on an interface's path a
replica cannot rebuild.

Two jobs for :mod:`vrrpfw.prove.replica`:

* **Cover the host's interfaces.**  nft resolves an interface matched by
  index (``iif``/``oif``, sets of type ``iface_index``) and the device of a
  netdev hook when the ruleset is loaded: a ruleset naming a device the
  replica lacks does not load at all.  So every interface the rulesets name
  (by index or by name; wildcards ``eth*``/``eth+`` match names and need
  none) is made in the replica, with its exact name.

* **Say "cannot tell" where the replay would not be faithful.**  The
  replica's interface is a plain veth.  An advert on the host may first
  meet things that a veth replay never meets: a bridge (nft ``bridge``
  tables, br_netfilter's iptables pass, ebtables, VLAN filtering), the
  lower device of a VLAN or other stacked device (its netdev hooks), tc
  filters, XDP programs, or a master that takes the interface's packets
  (a bridge port's frames go up through the bridge).  A replay that
  ignores them would give a number that is not the host's; prove then
  gives none, and says why.

The parsers here are pure (text in, names out); ``read_link`` reads
``/sys`` and runs ``ip``/``tc`` (read only).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, List, Optional, Sequence, Set

from vrrpfw.record import field, record

from ..host.run import run

IFNAMSIZ = 16  # with the terminating NUL: names of at most 15 bytes
# Per-bridge options the replica's bridge copies: br_netfilter per bridge (on even where the
# net.bridge sysctls are 0) and multicast snooping.  STP stays off in the replica.
BRIDGE_OPTS = ("nf_call_iptables", "nf_call_ip6tables", "mcast_snooping")

# nft selectors whose value is an interface (by index or by name).
_NFT_IFACE = re.compile(
    r"\b(?:iif|oif|iifname|oifname|ibrname|obrname|ibriport|obriport)\s+(?:!=\s*|==\s*|vmap\s+)?"
    r"(\"[^\"\n]*\"|\{[^}]*\})")
_NFT_DEVICE = re.compile(r"\bdevices?\s*=?\s*(\"[^\"\n]*\"|\{[^}]*\}|[^\s;{}\"]+)")
_NFT_SET = re.compile(r"(?m)^\s*(?:set|map)\s+\S+\s*\{")
_QUOTED = re.compile(r"\"([^\"\n]*)\"")
_COMMENT = re.compile(r"\bcomment\s+\"[^\"\n]*\"")
_IPT_IFACE = re.compile(
    r"(?:^|\s)(?:-i|-o|--in-interface|--out-interface|--physdev-in|--physdev-out)\s+(\S+)")
# Where a netdev (or inet ingress) hook is bound: its chain's type line.
_HOOK_LINE = re.compile(r"(?m)^\s*type\s+\w+\s+hook\s+(?:ingress|egress)\b(.*)$")


def valid_name(name: str) -> bool:
    """A name the kernel accepts for a device (dev_valid_name): 1..15 bytes,
    not ``.``/``..``, no ``/``, ``:`` or whitespace."""
    return (0 < len(name.encode()) < IFNAMSIZ and name not in (".", "..")
            and not re.search(r"[/:\s\"]", name))


def _names_in(value: str) -> List[str]:
    """The names in an nft value: ``"eth0"``, ``{ "a", "b" }`` or ``{ a, b }``
    (hook devices print unquoted); wildcards (``eth*``) are no device."""
    inner = value.strip()
    if '"' in inner:
        parts = _QUOTED.findall(inner)  # quoted names (a vmap's verdicts are not)
    elif inner.startswith("{"):
        parts = [p.strip() for p in inner.strip("{}").split(",")]
    else:
        parts = [inner]
    out = []
    for part in parts:
        name = part.strip().strip('"')
        if name and not name.startswith(("@", "$")) and "*" not in name and valid_name(name):
            out.append(name)
    return out


def _blocks(text: str, start: int) -> str:
    """The brace block opening at or after ``start`` (nested braces kept)."""
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j + 1]
    return text[i:]


def nft_names(ruleset: str) -> Set[str]:
    """Every interface ``nft list ruleset`` text names: ``iif``/``oif`` and
    their name forms, hook devices, and the elements of sets and maps whose
    type holds ``ifname`` or ``iface_index``.  Comments are no names."""
    text = _COMMENT.sub("", ruleset or "")
    names: Set[str] = set()
    for m in _NFT_IFACE.finditer(text):
        names.update(_names_in(m.group(1)))
    for m in _HOOK_LINE.finditer(text):
        names.update(hook_line_devices(m.group(1)))
    for m in _NFT_SET.finditer(text):
        block = _blocks(text, m.start())
        type_line = re.search(r"\btype\s+([^\n;]+)", block)
        if not type_line or not re.search(r"\b(ifname|iface_index)\b", type_line.group(1)):
            continue
        elements = re.search(r"\belements\s*=\s*\{", block)
        if elements:
            body = _blocks(block, elements.start())
            names.update(n for n in _QUOTED.findall(body) if "*" not in n and valid_name(n))
    return names


def hook_line_devices(rest: str) -> List[str]:
    """The devices on a hook line after ``hook ingress``: ``device "eth0"``
    or ``devices = { eth0, eth1 }``."""
    m = _NFT_DEVICE.search(rest)
    return _names_in(m.group(1)) if m else []


def hook_devices(ruleset: str) -> Set[str]:
    """Devices a netdev-style hook (ingress or egress) is bound to."""
    out: Set[str] = set()
    for m in _HOOK_LINE.finditer(ruleset or ""):
        out.update(hook_line_devices(m.group(1)))
    return out


def save_names(save: Optional[str]) -> Set[str]:
    """Interfaces an iptables-save text names (``-i``/``-o``, physdev);
    ``eth+`` is a wildcard and names none."""
    names: Set[str] = set()
    for line in (save or "").splitlines():
        # every option _IPT_IFACE knows holds "-i" or "-o": most lines need no regex
        if not line.startswith("-A") or ("-i" not in line and "-o" not in line):
            continue
        for m in _IPT_IFACE.finditer(line):
            n = m.group(1).strip('"')
            if not n.endswith("+") and valid_name(n):
                names.add(n)
    return names


def ipset_names(save: Optional[str]) -> Set[str]:
    """Interfaces in the members of ``hash:net,iface`` sets (``ipset save``)."""
    iface_sets: Set[str] = set()
    names: Set[str] = set()
    for line in (save or "").splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "create" and "iface" in words[2]:
            iface_sets.add(words[1])
        elif len(words) >= 3 and words[0] == "add" and words[1] in iface_sets:
            last = words[2].split(",")[-1]
            last = last.split(":", 1)[1] if last.startswith("physdev:") else last
            if not last.endswith("+") and valid_name(last):
                names.add(last)
    return names


def named_interfaces(texts: Iterable[Optional[str]], nft: Optional[str], ipset: Optional[str],
                     skip: Sequence[str] = ()) -> List[str]:
    """Every interface named by the iptables-save ``texts``, the nft
    ruleset and the ipsets, sorted, without ``lo`` (every namespace has
    it) and ``skip`` (the interface the replica makes anyway)."""
    names = nft_names(nft or "") | ipset_names(ipset)
    for t in texts:
        names |= save_names(t)
    return sorted(names - {"lo", *skip})


def bridge_tables(ruleset: Optional[str]) -> List[str]:
    """``bridge`` family tables with a base chain (they see bridged frames)."""
    out = []
    for m in re.finditer(r"(?m)^table\s+bridge\s+(\S+)\s*\{", ruleset or ""):
        if re.search(r"\bhook\s+\w+", _blocks(ruleset or "", m.start())):
            out.append(m.group(1))
    return out


# ---------------------------------------------------------------- the host's links

@record
class LinkFacts:
    """What the host says of one device on the tested interface's path."""

    name: str
    kind: str = ""  # ip's info_kind: veth, bridge, vlan, bond, macvlan, ... ("" for physical)
    master: Optional[str] = None
    lowers: List[str] = field(default_factory=list)
    bridge: bool = False
    port: bool = False
    vlan_filtering: bool = False
    tc: List[str] = field(default_factory=list)  # "tc ingress filters", ...
    xdp: bool = False
    physical: bool = False  # backed by a device (/sys/class/net/NAME/device): a NIC
    # a bridge's options that decide filtering and multicast delivery, as ip -d shows them
    bridge_opts: Dict[str, int] = field(default_factory=dict)
    # a bridge port's STP state ("forwarding", "blocking", "disabled", ...), as ip -d shows it
    port_state: Optional[str] = None


def _run_json(argv: Sequence[str]) -> object:
    ran = run(argv, timeout=None).raised()
    if ran.code != 0:
        return None
    try:
        return json.loads(ran.out or "null")
    except ValueError:
        return None


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def read_link(name: str, tools: bool = True) -> Optional[LinkFacts]:
    """The device ``name`` of this namespace (None if there is none).
    ``tools`` False: only what /sys says (master, lowers, bridge, port,
    VLAN filtering, physical), none of what ``ip -d`` and ``tc`` add."""
    base = f"/sys/class/net/{name}"
    if not os.path.isdir(base):
        return None
    facts = LinkFacts(name)
    with contextlib.suppress(OSError):
        facts.master = os.path.basename(os.readlink(f"{base}/master"))
    with contextlib.suppress(OSError):
        facts.lowers = sorted(e[len("lower_"):] for e in os.listdir(base) if e.startswith("lower_"))
    facts.bridge = os.path.isdir(f"{base}/bridge")
    facts.port = os.path.isdir(f"{base}/brport")
    facts.vlan_filtering = _read(f"{base}/bridge/vlan_filtering") == "1"
    facts.physical = os.path.exists(f"{base}/device")
    if not tools:
        return facts
    tc = shutil.which("tc")
    # The reads are independent: side by side, each a process.
    tc_reads = [("ingress", [name, "ingress"]), ("egress", [name, "egress"]), ("root", [name])] if tc else []
    with ThreadPoolExecutor(max_workers=5) as pool:
        link_f = pool.submit(_run_json, ["ip", "-j", "-d", "link", "show", "dev", name])
        filter_fs = [(where, pool.submit(_run_json, ["tc", "-j", "filter", "show", "dev", *argv]))
                     for where, argv in tc_reads]
        qdisc_f = pool.submit(_run_json, ["tc", "-j", "qdisc", "show", "dev", name]) if tc else None
        links = link_f.result()
        filters = [(where, f.result()) for where, f in filter_fs]
        qdiscs = qdisc_f.result() if qdisc_f is not None else None
    if isinstance(links, list) and links and isinstance(links[0], dict):
        link = links[0]
        info = link.get("linkinfo")
        facts.kind = str(info.get("info_kind", "")) if isinstance(info, dict) else ""
        data = info.get("info_data") if isinstance(info, dict) else None
        if facts.kind == "bridge" and isinstance(data, dict):
            facts.bridge_opts = {k: int(data[k]) for k in BRIDGE_OPTS
                                 if isinstance(data.get(k), (int, bool))}
        slave = info.get("info_slave_data") if isinstance(info, dict) else None
        if isinstance(info, dict) and info.get("info_slave_kind") == "bridge" and isinstance(slave, dict):
            facts.port_state = str(slave["state"]) if "state" in slave else None
        facts.xdp = "xdp" in link or "prog/xdp" in json.dumps(link)
    if tc:
        for where, found in filters:
            if isinstance(found, list) and found:
                facts.tc.append(f"tc {where} filters")
        if isinstance(qdiscs, list):
            kinds = {str(q.get("kind")) for q in qdiscs if isinstance(q, dict)}
            facts.tc.extend(f"a {k} qdisc" for k in sorted(kinds & {"netem"}))
    return facts


def read_stack(iface: str) -> List[LinkFacts]:
    """``iface``, the devices below it (recursively: a VLAN's parent, a
    bridge's ports, a bond's slaves) and its masters, as the host has them."""
    out: List[LinkFacts] = []
    seen: Set[str] = set()
    todo = [iface]
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        facts = read_link(name)
        if facts is None:
            continue
        out.append(facts)
        todo.extend(facts.lowers)
    master = out[0].master if out and out[0].name == iface else None
    while master and master not in seen:
        seen.add(master)
        facts = read_link(master)
        if facts is None:
            break
        out.append(facts)
        master = facts.master
    return out


# ---------------------------------------------------------------- the decision (pure)

@record
class PathFinding:
    cannot_tell: List[str] = field(default_factory=list)
    limits: List[str] = field(default_factory=list)
    # The tested interface is a bridge the replica rebuilds: the port the peers
    # are taken to be behind (made in the replica, joined to the peer).
    bridge_port: Optional[str] = None
    bridge_opts: Dict[str, int] = field(default_factory=dict)  # the bridge's, to copy


def peer_port(ports: Sequence[LinkFacts]) -> Optional[LinkFacts]:
    """The bridge port the peers are behind: the only port, else the only
    physical one (a NIC, beside VM taps and container veths); else None."""
    if len(ports) == 1:
        return ports[0]
    nics = [p for p in ports if p.physical]
    return nics[0] if len(nics) == 1 else None


def judge_stack(iface: str, stack: Sequence[LinkFacts], nft: Optional[str],
                bridge_sysctls: Dict[str, str], ebtables: Sequence[str] = ()) -> PathFinding:
    """What stands between ``iface`` and the wire that a veth replay would
    not meet.  ``stack``: :func:`read_stack`'s answer; ``bridge_sysctls``:
    ``bridge-nf-call-iptables``/``-ip6tables`` -> value (absent: no
    br_netfilter); ``ebtables``: legacy ebtables tables loaded."""
    found = PathFinding()
    by_name = {f.name: f for f in stack}
    me = by_name.get(iface)
    if me is None:
        return found
    below = [f for f in stack if f.name != iface and f.name in _below(iface, by_name)]
    above = [f for f in stack if f.name != iface and f not in below]
    if me.master:
        what = "a port of bridge" if me.port else "enslaved to"
        found.cannot_tell.append(
            f"{iface} is {what} {me.master}: its adverts are taken up by {me.master}, a path the "
            "replica (a plain interface) does not rebuild")
    for f in [me, *below]:
        for t in f.tc:
            found.cannot_tell.append(f"{f.name} has {t}, which prove does not replay (tc acts before "
                                     "netfilter and may drop or change adverts)")
        if f.xdp:
            found.cannot_tell.append(f"{f.name} has an XDP program attached, which prove does not replay "
                                     "(it acts before netfilter and may drop adverts)")
    hooked = hook_devices(nft or "")
    ports = [f for f in below if f.port and f.master == iface]
    rebuilt = _rebuild_bridge(iface, me, ports, ebtables, found)
    for f in below:
        if f.name in hooked and not (rebuilt and f in ports):
            found.cannot_tell.append(
                f"{f.name}, below {iface}, has a netdev hook in the nft ruleset: adverts meet it on the "
                f"host before they reach {iface}, and the replica cannot rebuild {iface} "
                f"({me.kind or 'a stacked device'}) on top of {f.name}")
    bridged = [f for f in [me, *below, *above] if f.bridge or f.port]
    if bridged and not rebuilt:
        filters = [f"nft bridge table {t}" for t in bridge_tables(nft)]
        filters += [f"br_netfilter (net.bridge.{k}={v})" for k, v in sorted(bridge_sysctls.items())
                    if v.strip() == "1"]
        filters += [f"ebtables table {t}" for t in ebtables]
        filters += [f"VLAN filtering on bridge {f.name}" for f in bridged if f.vlan_filtering]
        filters += [f"br_netfilter on bridge {f.name} ({k} 1)" for f in bridged
                    for k in ("nf_call_iptables", "nf_call_ip6tables") if f.bridge_opts.get(k)]
        names = ", ".join(sorted({f.name for f in bridged}))
        if filters:
            found.cannot_tell.append(
                f"{iface}'s path crosses a bridge ({names}) and bridge filtering is on ("
                + "; ".join(filters) + "): prove replays bridge filtering only where the tested "
                "interface is the bridge itself, with one port (or one NIC port) towards the peers, "
                "and neither ebtables nor VLAN filtering")
        else:
            found.limits.append(f"{iface}'s path crosses a bridge ({names}) without bridge filtering "
                                "(no bridge tables, br_netfilter off): replayed as a plain interface")
    if rebuilt:
        return found
    if below and not found.cannot_tell:
        kinds = ", ".join(f"{f.name}" for f in below)
        found.limits.append(f"{iface} ({me.kind or 'stacked'}) sits on {kinds}: replayed as a plain "
                            "interface; nothing on the lower devices' path (netdev hooks, tc, XDP) was found")
    return found


def _rebuild_bridge(iface: str, me: LinkFacts, ports: Sequence[LinkFacts], ebtables: Sequence[str],
                    found: PathFinding) -> bool:
    """Whether the replica can rebuild the bridge ``iface`` for real (its
    peer-facing port, its bridge tables and br_netfilter's switches): it is
    a bridge, not enslaved, its peer-facing port is known and is a plain
    device, and nothing the replica cannot copy (ebtables, VLAN filtering)
    filters on it.  True also where the bridge is settled otherwise: its
    peer port does not forward (then ``found`` says "cannot tell")."""
    if not me.bridge or me.master or ebtables or me.vlan_filtering:
        return False
    port = peer_port(ports)
    if port is None or port.lowers or port.master != iface:
        return False
    if port.port_state not in (None, "forwarding"):
        found.cannot_tell.append(f"{iface}'s port {port.name} is in state {port.port_state}, not forwarding "
                                 "(STP or a link down): the replica's bridge would forward")
        return True  # nothing more to say: no replay
    found.bridge_port = port.name
    found.bridge_opts = dict(me.bridge_opts)
    why = "its only port" if len(ports) == 1 else "its only NIC port"
    found.limits.append(
        f"{iface} is replayed as a bridge with port {port.name} ({why}; the peers are taken to be "
        "behind it; other ports are not made unless the ruleset names them), with the host's bridge "
        "tables and br_netfilter switches; bridge options (multicast snooping, STP) are the defaults")
    return True


def _below(iface: str, by_name: Dict[str, LinkFacts]) -> Set[str]:
    out: Set[str] = set()
    todo = list(by_name[iface].lowers)
    while todo:
        n = todo.pop()
        if n in out or n not in by_name:
            continue
        out.add(n)
        todo.extend(by_name[n].lowers)
    return out
