"""What the corpus and property tests share: running vrrpfw inside a
replica, the replica's ruleset as comparable text, the rule a static
verdict must obey against the packets, and the corpus's cases with their
advert shapes."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from corpus_stats import record

from vrrpfw.judge.iptables import parse_save
from vrrpfw.judge.netpath import judge, judge_peers
from vrrpfw.judge.nft import convert_table
from vrrpfw.judge.path_model import BaseChain, ChainId, PathModel, PathVerdict
from vrrpfw.judge.read.nft import HOOKS, parse_devices
from vrrpfw.judge.read.saved import legacy_chains, model_from_texts
from vrrpfw.judge.rules import FwRule
from vrrpfw.model import Direction, Family, VrrpRule
from vrrpfw.prove.proof import NO_BUS
from vrrpfw.prove.replica import Delivery, Replica
from vrrpfw.prove.snapshot import Snapshot, compatible, snapshot_from_files
from vrrpfw.prove.traffic import Shape
from vrrpfw.record import replace

PASSING = {"allowed", "allowed-by-other", "allowed-by-policy"}
BLOCKED = {"missing", "shadowed"}


def vrrpfw_json(r: Replica, iface: str, *args: str) -> Tuple[int, dict, str]:
    """``vrrpfw ARGS --iface IFACE --no-persist --json`` in the replica's host,
    with no system bus, as prove runs it there: the bus is not per network
    namespace, so the machine's own firewalld (where one runs) would be the
    one ``auto`` chose and changed."""
    proc = r.host.run([sys.executable, "-m", "vrrpfw", *args, "--iface", iface, "--no-persist", "--json"],
                      check=False, timeout=120, env=NO_BUS)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        raise AssertionError(f"vrrpfw {args}: no JSON: {proc.stdout}\n{proc.stderr}") from None


def ruleset(r: Replica) -> str:
    """Legacy (IPv4 and IPv6) and nft rules without counters, and without
    the elements of dynamic sets (traffic adds to them)."""
    legacy = r.host.run(["iptables-legacy-save"], check=False).stdout
    legacy += r.host.run(["ip6tables-legacy-save"], check=False).stdout
    legacy = "\n".join(line.split(" [")[0] for line in legacy.splitlines() if not line.startswith("#"))
    nft = r.host.run(["nft", "-s", "list", "ruleset"]).stdout
    if "flags dynamic" in nft:
        nft = "\n".join(line for line in nft.splitlines() if "elements = " not in line)
    return legacy + "\n---\n" + nft


def outcome(d: Delivery) -> Dict[str, int]:
    """Adverts that arrived each way ("in": the fewest of any source's)."""
    return {"in": min(p.arrived for p in d.inbound.values()), "out": d.outbound.arrived}


def agrees(verdict: str, arrived: Sequence[int], count: int) -> bool:
    """A definite verdict is what every measured source saw; anything else
    must say ``uncertain``."""
    if verdict in PASSING:
        return all(a == count for a in arrived)
    if verdict in BLOCKED:
        return all(a == 0 for a in arrived)
    return verdict == "uncertain"


# ------------------------------------------------- static verdicts per shape

# The replica's addresses (vrrpfw.prove.replica's defaults, the corpus's README).
LOCAL4 = ("192.0.2.1", "192.0.2.0/24")
LOCAL6_LINK = ("fe80::1", "fe80::/64")  # keepalived multicasts from the link-local address
LOCAL6 = ("fd00::1", "fd00::/64")  # unicast: the host's global address
DEFAULT_PEER = {"ipv4": "192.0.2.2", "ipv6": "fd00::2"}  # the replica's unicast peer


def case_model(legacy: Optional[str] = None, iptnft: Optional[str] = None,
               nft_json: Optional[Dict[str, Any]] = None,
               devices: Optional[Dict[Tuple[str, str, str], Tuple[str, ...]]] = None,
               legacy6: Optional[str] = None, iptnft6: Optional[str] = None) -> PathModel:
    """The path model of saved texts, IPv6 included: the offline reader's
    model, plus ip6tables-save texts as family ``ip6`` chains and the nft
    ``ip6`` tables where the offline reader leaves them out (iptables-nft's
    ip6 tables from their save text, as for IPv4)."""
    model = model_from_texts(legacy, iptnft, nft_json, devices)
    if legacy6:
        model.chains += [replace(c, id=replace(c.id, family="ip6")) for c in legacy_chains(legacy6)]
    via_text6 = set(parse_save(iptnft6)) if iptnft6 else set()
    if nft_json and not any(c.id.layer == "nft" and c.id.family == "ip6" for c in model.chains):
        model.chains += [c for c in _ip6_chains(nft_json, devices) if c.id.table not in via_text6]
    if iptnft6:
        model.chains += [replace(c, id=replace(c.id, family="ip6")) for c in legacy_chains(iptnft6, "nft")]
    return model


def _ip6_chains(doc: Dict[str, Any], devices: Any) -> List[BaseChain]:
    """nft_chains for the ``ip6`` family (the offline reader reads ip, inet
    and netdev only): the same document with its other tables left out,
    read as if ``ip6`` were one of them."""
    items = [i for i in doc.get("nftables", [])
             if any(isinstance(v, dict) and v.get("family") == "ip6" for v in i.values())]
    out: List[BaseChain] = []
    by_table: Dict[str, List[Dict[str, Any]]] = {}
    for item in items:
        (kind, body), = item.items()
        by_table.setdefault(body.get("table") if kind != "table" else body.get("name"), []).append(item)
    for name, table_items in by_table.items():
        table = convert_table("ip6", name, table_items)
        for cname, header in table.headers.items():
            hook = HOOKS.get(str(header.get("hook")))
            if hook is None:
                continue

            def lookup(sub: str, chains: Dict[str, List[FwRule]] = table.chains) -> Optional[List[FwRule]]:
                return chains.get(sub) if sub else None

            out.append(BaseChain(ChainId("nft", "ip6", name, cname), hook, int(header.get("prio", 0)),
                                 str(header.get("policy", "accept")).upper(), table.chains.get(cname, []),
                                 lookup))
    return out


def shape_rule(shape: Shape, direction: Direction, peer: Optional[str]) -> VrrpRule:
    """The rule whose verdict judges ``shape`` one way: multicast to the
    family's group, or unicast between the replica's host and ``peer``."""
    fam = Family(shape.family)
    if not shape.unicast:
        return VrrpRule(direction, "eth1", shape.group, fam, shape.proto)
    local = LOCAL4[0] if fam is Family.IPV4 else LOCAL6[0]
    return VrrpRule(direction, "eth1", peer or DEFAULT_PEER[shape.family], fam, shape.proto, local)


def shape_local(shape: Shape) -> Tuple[str, str]:
    if shape.family == "ipv4":
        return LOCAL4
    return LOCAL6 if shape.unicast else LOCAL6_LINK


def static_verdict(model: PathModel, shape: Shape, direction: Direction,
                   peers: Sequence[str] = ()) -> PathVerdict:
    """vrrpfw's verdict for ``shape`` (its TTL too: another TTL than
    keepalived's is judged as netpath.judge does, with the packet's TTL
    changed; keepalived's own is the judge's packet model)."""
    mine = [p for p in peers if Family.of(p).value == shape.family]
    rule = shape_rule(shape, direction, mine[0] if mine and shape.unicast else None)
    local = shape_local(shape)
    if shape.ttl is None:
        return judge_peers(model, rule, mine, local)
    src = rule.src if rule.unicast else (local[0] if direction is Direction.OUT else (mine or [None])[0])
    net = local[1] if direction is Direction.IN and src is None else None
    return judge(model, rule, src, net, ttl=shape.ttl)


# ------------------------------------------------------------ corpus cases

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
# Rulesets people published, each with its source and licence in SOURCES.md
# there; their stems start with PUBLISHED_PREFIX.  Same format, same harness.
PUBLISHED = "published"
PUBLISHED_PREFIX = "pub-"
# suffix -> what loads it (tests/corpus/README.md)
SUFFIXES = ("legacy", "iptnft", "nft", "legacy6", "iptnft6")


def corpus_cases(corpus: str = CORPUS) -> Dict[str, Dict[str, str]]:
    """stem -> {suffix: path} for every case file, in ``corpus`` and in its
    ``published`` directory (a stem names one case wherever it lies)."""
    found: Dict[str, Dict[str, str]] = {}
    for directory in (corpus, os.path.join(corpus, PUBLISHED)):
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            stem, _, suffix = name.rpartition(".")
            if suffix in SUFFIXES:
                found.setdefault(stem, {})[suffix] = os.path.join(directory, name)
    return found


def headers(files: Dict[str, str], key: str) -> List[str]:
    """Every ``# KEY: value`` of the case's leading comment lines, in file order."""
    out: List[str] = []
    for suffix in SUFFIXES:
        if suffix not in files:
            continue
        with open(files[suffix]) as f:
            for line in f:
                if not line.startswith("#"):
                    break
                if line[1:].strip().startswith(f"{key}:"):
                    out.append(line.split(":", 1)[1].strip())
    return out


def case_peers(files: Dict[str, str]) -> List[str]:
    return [p for h in headers(files, "peer") for p in h.replace(",", " ").split()]


def case_shapes(files: Dict[str, str]) -> List[Shape]:
    """The shapes a case is judged for: always the textbook IPv4 multicast
    advert, then each ``# shape:`` it declares."""
    shapes = [Shape()]
    for h in headers(files, "shape"):
        for text in h.split(","):
            s = Shape.parse(text.strip())
            if s not in shapes:
                shapes.append(s)
    return shapes


def shaped(cases: Dict[str, Dict[str, str]], gaps: Dict[Tuple[str, str], str],
           ttl: bool) -> List[Any]:
    """pytest params (stem, shape name), id ``stem[shape]``, for every shape
    a case declares besides the textbook one: those with another TTL than
    keepalived's (``ttl``) or the others.  ``gaps``: (stem, shape) -> the
    bug that makes vrrpfw wrong there (a strict xfail)."""
    import pytest

    out = []
    for stem, files in sorted(cases.items()):
        for shape in case_shapes(files)[1:]:
            if (shape.ttl is not None) != ttl:
                continue
            marks = ([pytest.mark.xfail(strict=True, reason=gaps[(stem, shape.name)])]
                     if (stem, shape.name) in gaps else [])
            out.append(pytest.param(stem, shape.name, marks=marks, id=f"{stem}[{shape.name}]"))
    return out


def case_snapshot(files: Dict[str, str]) -> Snapshot:
    return snapshot_from_files(legacy=files.get("legacy"), iptnft=files.get("iptnft"), nft=files.get("nft"),
                               legacy6=files.get("legacy6"), iptnft6=files.get("iptnft6"), iface="eth1",
                               addrs=["192.0.2.1/24"])


def replica_model(r: Replica) -> PathModel:
    """The static model of what is loaded in the replica's host, read from
    its save texts and ``nft -j`` (as the corpus's unit test reads files)."""
    def save(tool: str, names: str) -> Optional[str]:
        if not r.host.run(["cat", names], check=False).stdout.split():
            return None
        return r.host.run([tool], check=False).stdout or None
    doc = json.loads(r.host.run(["nft", "-j", "list", "ruleset"]).stdout or "{}")
    devices = parse_devices(r.host.run(["nft", "list", "chains"]).stdout)
    nft_text = r.host.run(["nft", "list", "tables"]).stdout
    iptnft = compatible(r.host.run(["iptables-nft-save"]).stdout) if "table ip " in nft_text else None
    iptnft6 = compatible(r.host.run(["ip6tables-nft-save"]).stdout) if "table ip6 " in nft_text else None
    return case_model(save("iptables-legacy-save", "/proc/net/ip_tables_names"), iptnft or None, doc, devices,
                      save("ip6tables-legacy-save", "/proc/net/ip6_tables_names"), iptnft6 or None)



def static_shape_agrees(r: Replica, stem: str, name: str, shape: Shape, peers: Sequence[str],
                        count: int) -> Dict[str, int]:
    """Replay ``shape``'s adverts in the replica, judge its rules statically
    for both directions, record both verdicts for the corpus summary, then
    assert each agrees with what the kernel delivered; the deliveries."""
    before = outcome(r.measure(count=count, seconds=1.0, shape=shape))
    model = replica_model(r)
    judged = {d: static_verdict(model, shape, d, peers) for d in (Direction.IN, Direction.OUT)}
    for d, j in judged.items():  # both recorded before either is asserted (the summary counts them)
        record(stem, d.value, j.state.value, before[d.value], count, name, reason=j.detail)
    for direction in (Direction.IN, Direction.OUT):
        verdict, arrived = judged[direction].state.value, before[direction.value]
        assert agrees(verdict, [arrived], count), (
            f"{stem} [{name}] {direction.value}: static {verdict}, kernel {arrived}/{count}")
    return before
