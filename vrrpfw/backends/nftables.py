"""nf_tables, native and iptables-nft alike, through libnftables' JSON API.

Every base chain on a hook votes: an accept in one table does not save a
packet another table drops.  So for each IPv4-capable (``ip``, ``inet``)
filter base chain on the input hook (output for outbound), we evaluate the
chain for a synthetic VRRP packet with the same three-valued evaluator the
iptables backend uses, and insert vrrpfw's accept at the top of each chain
that could drop it, all in one nft transaction.  Chains firewalld manages
are the firewalld backend's job and never touched here.

Why the ``nft -j`` command rather than the Python bindings: the bindings
ship with the distribution's python3-nftables for the system interpreter
only, while vrrpfw also runs from virtual environments on other Pythons;
``nft`` speaks the same libnftables JSON, and ``nft -j -f -`` applies a
whole batch as one transaction.  Costs one process start per call.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ..chaineval import FwRule, Match, Outcome, Packet, evaluate
from ..errors import BackendError, EnvironmentProblem, PersistFileError
from ..hostscan import FIREWALLD_TABLES, HostScan
from ..model import COMMENT, Direction, VrrpRule, rules_from_keys
from ..persist import files, locations, nft_conf
from ..results import Action, Runtime
from .base import Availability, Backend, Change, Options, Persister, PersistPlan, RuntimeStatus
from .iptables import IptablesSaveFile, vrrpfw_key

HOOKS = {Direction.IN: "input", Direction.OUT: "output"}
FAMILIES = ("ip", "inet")
ChainId = Tuple[str, str, str]  # family, table, chain
VERDICTS = {"accept": "ACCEPT", "drop": "DROP", "reject": "REJECT", "return": "RETURN",
            "queue": "NFQUEUE", "continue": ""}
OTHER_L4 = {"tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "esp", "ah", "comp", "igmp"}


def nft_binary() -> Optional[str]:
    return shutil.which("nft")


def run_nft(args: Sequence[str], stdin: Optional[str] = None) -> str:
    nft = nft_binary()
    if nft is None:
        raise EnvironmentProblem("nft is not installed (apt-get install nftables)")
    try:
        proc = subprocess.run([nft, *args], input=stdin, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise EnvironmentProblem(f"cannot run nft: {e}") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no message)"]
        first = next((line for line in lines if "Error:" in line), lines[0])
        if "Operation not permitted" in proc.stderr:
            raise EnvironmentProblem(f"nft {' '.join(args[:3])}: {first} (run vrrpfw as root)")
        raise BackendError(f"nft {' '.join(args[:3])} failed: {first}")
    return proc.stdout


def _proto_value(right: Any) -> Tuple[bool, bool]:
    """(judgeable, contains VRRP) for the right side of a protocol match."""
    values = right.get("set") if isinstance(right, dict) else [right]
    if not isinstance(values, list):
        return False, False
    names = {str(v).lower() for v in values}
    return True, bool(names & {"vrrp", "112"})


def to_fwrule(chain: str, rule: Dict[str, Any]) -> FwRule:
    """Map an nft JSON rule onto the evaluator's model: what we understand
    becomes a field, what we cannot judge becomes a maybe-match."""
    fields: Dict[str, Any] = {}
    matches: List[Match] = []
    target, goto = "", False

    def maybe(kind: str) -> None:
        matches.append(Match(f"nft-{kind}"))

    for expr in rule.get("expr", []):
        if "match" in expr:
            m = expr["match"]
            op, left, right = m.get("op", "=="), m.get("left"), m.get("right")
            neg = "!" if op == "!=" else ""
            if op not in ("==", "!=", "in"):
                maybe("op")
                continue
            if isinstance(left, dict) and "meta" in left:
                key = left["meta"].get("key")
                if key in ("iifname", "oifname") and isinstance(right, str):
                    field_name = "in_iface" if key == "iifname" else "out_iface"
                    if field_name in fields:
                        maybe("iface")
                    else:
                        fields[field_name] = neg + right.replace("*", "+")
                elif key == "l4proto":
                    ok, has = _proto_value(right)
                    if not ok:
                        maybe("l4proto")
                    elif "protocol" in fields:
                        maybe("l4proto")
                    else:
                        fields["protocol"] = neg + ("vrrp" if has else "other")
                elif key == "nfproto":
                    is4 = str(right) == "ipv4"
                    matches.append(Match("always" if is4 != bool(neg) else "never"))
                elif key == "pkttype" and isinstance(right, str):
                    words = (("!",) if neg else ()) + (right,)
                    matches.append(Match("pkttype", (("pkt-type", words),)))
                else:
                    maybe(f"meta-{key}")
            elif isinstance(left, dict) and "payload" in left:
                proto = left["payload"].get("protocol")
                fld = left["payload"].get("field")
                if proto == "ip" and fld == "protocol":
                    ok, has = _proto_value(right)
                    if ok and "protocol" not in fields:
                        fields["protocol"] = neg + ("vrrp" if has else "other")
                    else:
                        maybe("ipproto")
                elif proto == "ip" and fld in ("daddr", "saddr"):
                    key = "dst" if fld == "daddr" else "src"
                    if isinstance(right, dict) and "prefix" in right:
                        value = f"{right['prefix']['addr']}/{right['prefix']['len']}"
                    elif isinstance(right, str):
                        value = right if "/" in right else f"{right}/32"
                    else:
                        value = None
                    if value is None or key in fields:
                        maybe("addr")
                    else:
                        fields[key] = neg + value
                elif proto in ("ip6", "arp"):
                    matches.append(Match("never"))
                elif proto in OTHER_L4:
                    matches.append(Match("tcp"))  # another protocol: never VRRP
                else:
                    maybe(f"payload-{proto}")
            elif isinstance(left, dict) and "fib" in left and "daddr" in left["fib"].get("flags", []):
                words = (("!",) if neg else ()) + tuple(
                    right.get("set", []) if isinstance(right, dict) else [right])
                matches.append(Match("addrtype", (("dst-type", tuple(str(w).upper() for w in words)),)))
            else:
                maybe("match")
        elif "jump" in expr or "goto" in expr:
            target = (expr.get("jump") or expr.get("goto"))["target"]
            goto = "goto" in expr
        elif any(k in expr for k in VERDICTS):
            key = next(k for k in VERDICTS if k in expr)
            target = VERDICTS[key]
        elif "xt" in expr:
            xt = expr["xt"]
            if xt.get("type") == "target":
                target = str(xt.get("name", "")).upper() or target
            else:
                matches.append(Match(str(xt.get("name", "xt"))))
        elif "limit" in expr or "quota" in expr:
            maybe("rate")
        # counter, log, meta/ct set statements: not terminal, not conditions
    if rule.get("comment"):
        matches.append(Match("comment", (("comment", (str(rule["comment"]),)),)))
    fw = FwRule(chain=chain, matches=tuple(matches), target=target, goto=goto, **fields)
    return fw


def nft_rule_text(rule: VrrpRule) -> str:
    iface = "iifname" if rule.direction is Direction.IN else "oifname"
    return (f'{iface} "{rule.interface}" ip daddr {rule.group} ip protocol vrrp '
            f'counter accept comment "{COMMENT}"')


def nft_rule_json(rule: VrrpRule, chain: ChainId) -> Dict[str, Any]:
    key = "iifname" if rule.direction is Direction.IN else "oifname"
    return {"family": chain[0], "table": chain[1], "chain": chain[2], "comment": COMMENT, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": key}}, "right": rule.interface}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                   "right": rule.group}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}},
                   "right": "vrrp"}},
        {"counter": None},
        {"accept": None},
    ]}


def _ours_key(fw: FwRule) -> Optional[Tuple[str, str, str]]:
    """vrrpfw's rule, whatever the chain is called (nft chains are often
    lower case): the direction follows from iifname/oifname."""
    return vrrpfw_key(fw, anywhere=True)


def check_loads(path: str) -> Optional[str]:
    """None if ``nft -c -f path`` accepts the file, else nft's first error."""
    try:
        run_nft(["-c", "-f", path])
    except BackendError as e:
        return str(e).split("failed: ", 1)[-1]
    return None


class NftConfFile(Persister):
    """An nftables ruleset file (``/etc/nftables.conf`` ...) with vrrpfw's
    marked block of ``insert rule`` lines at its end."""

    def __init__(self, backend: NftablesBackend, target: locations.PersistTarget) -> None:
        self.b = backend
        self.path = target.path
        self.restorer = target.restorer
        self.note = target.note
        self.layered = False  # True when a LayeredStore persists iptables-nft chains elsewhere
        self._text: Optional[str] = None

    def load(self) -> None:
        self._text = files.read_text(self.path)
        if self._text is not None:
            err = check_loads(self.path)
            if err:
                raise PersistFileError(f"{self.path} does not load with nft -c -f ({err}); "
                                       "vrrpfw leaves it untouched")

    def _current(self) -> str:
        if self._text is None:
            self.load()
        return self._text or ""

    def defines_any(self, chains: Set[ChainId]) -> bool:
        defined = {cid for cid, _ in nft_conf.defined_chains_in(self.path, self._current())}
        return bool(defined & chains)

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Tuple[str, str, str]]:
        return nft_conf.keys(self._current()) & {r.key for r in rules}

    def discover(self) -> List[VrrpRule]:
        return rules_from_keys(sorted(nft_conf.keys(self._current())))

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        text = self._current()
        if op == "open":
            defined = nft_conf.defined_chains_in(self.path, text)
            names = {cid for cid, _ in defined}
            wanted = []
            for r in rules:
                live = self.b.rule_chains.get(r.key)
                missing = sorted(" ".join(c) for c in (live or set()) - names
                                 if not (self.layered and c in IPTABLES_NFT_CHAINS))
                if missing:
                    self.note = (f"chains {', '.join(missing)} are not defined in {self.path}; "
                                 "vrrpfw cannot persist its rules there")
                for cid, hook in defined:
                    if hook == HOOKS[r.direction] and cid[0] in FAMILIES and (
                            live is None or cid in live or cid not in self.b.base_chains()):
                        wanted.append((r, cid))
            new = nft_conf.with_lines(text, wanted)
        else:
            new = nft_conf.without_keys(text, [r.key for r in rules])
        if new == text:
            return PersistPlan(False)
        if op == "open":
            self._validate(new)
        return PersistPlan(True, files.unified_diff(self.path, self._text, new), new)

    def _validate(self, candidate: str) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".vrrpfw-check-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="latin-1") as f:
                f.write(candidate)
            err = check_loads(tmp)
        finally:
            os.unlink(tmp)
        if err:
            raise PersistFileError(f"{self.path}: with vrrpfw's lines it would not load ({err}); "
                                   "left untouched")

    def commit(self, plan: PersistPlan) -> None:
        files.atomic_write(self.path, plan.payload)
        self._text = plan.payload


IPTABLES_NFT_CHAINS = {("ip", "filter", "INPUT"), ("ip", "filter", "OUTPUT")}


def looks_like_iptables_save(path: str) -> bool:
    text = files.read_text(path) or ""
    return any(line.startswith("*") for line in text.splitlines())


class LayeredStore(Persister):
    """iptables-nft's chains (``ip filter INPUT``/``OUTPUT``) are restored
    at boot from the distribution's saved iptables ruleset, through
    iptables-nft; native chains from the nftables ruleset file.  Each rule
    is persisted in the store(s) of the live chains that hold it."""

    def __init__(self, backend: NftablesBackend, nft: NftConfFile, ipt: IptablesSaveFile) -> None:
        self.b, self.nft, self.ipt = backend, nft, ipt
        nft.layered = True
        self.path = f"{nft.path} and {ipt.path}"
        self.restorer = ", ".join(x for x in (nft.restorer, ipt.restorer) if x) or None
        self.note = None

    def load(self) -> None:
        self.nft.load()
        self.ipt.load()

    def _split(self, rules: Sequence[VrrpRule]) -> Tuple[List[VrrpRule], List[VrrpRule]]:
        to_nft, to_ipt = [], []
        for r in rules:
            live = self.b.rule_chains.get(r.key, set())
            if live & IPTABLES_NFT_CHAINS and not self.nft.defines_any(live & IPTABLES_NFT_CHAINS):
                to_ipt.append(r)
            if live - IPTABLES_NFT_CHAINS or not live:
                to_nft.append(r)
        return to_nft, to_ipt

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Tuple[str, str, str]]:
        to_nft, to_ipt = self._split(rules)
        in_nft, in_ipt = self.nft.persisted(to_nft), self.ipt.persisted(to_ipt)
        return {r.key for r in rules
                if (r not in to_nft or r.key in in_nft) and (r not in to_ipt or r.key in in_ipt)}

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Tuple[str, str, str]]:
        return self.nft.persisted(rules) | self.ipt.persisted(rules)

    def discover(self) -> List[VrrpRule]:
        found = self.nft.discover()
        return found + [r for r in self.ipt.discover() if r not in found]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        if op == "open":
            to_nft, to_ipt = self._split(rules)
            plans = [self.nft.plan(op, to_nft), self.ipt.plan(op, to_ipt)]
        else:
            plans = [self.nft.plan(op, rules), self.ipt.plan(op, rules)]
        self.note = self.nft.note
        return PersistPlan(any(p.changed for p in plans), "".join(p.diff for p in plans), plans)

    def commit(self, plan: PersistPlan) -> None:
        nft_plan, ipt_plan = plan.payload
        if nft_plan.changed:
            self.nft.commit(nft_plan)
        if ipt_plan.changed:
            self.ipt.commit(ipt_plan)


class NftablesBackend(Backend):
    name = "nftables"
    summary = "nf_tables (native and iptables-nft) through libnftables JSON"

    def __init__(self, options: Options, scan: Optional[HostScan] = None) -> None:
        super().__init__(options, scan)
        self._base: Dict[ChainId, Dict[str, Any]] = {}
        self._rules: Dict[ChainId, List[Tuple[FwRule, int]]] = {}
        self._others: List[ChainId] = []  # every other chain, for close's sweep
        # key -> chains where vrrpfw's rule is or must be, from the last status
        self.rule_chains: Dict[Tuple[str, str, str], Set[ChainId]] = {}

    @classmethod
    def availability(cls) -> Availability:
        if nft_binary() is None:
            return Availability(False, "nft is not installed (apt-get install nftables)")
        if os.geteuid() != 0:
            return Availability(False, "nftables needs root (run vrrpfw as root)")
        return Availability(True, "nft is installed and we are root")

    def _load(self) -> None:
        doc = json.loads(run_nft(["-j", "list", "chains"]) or "{}")
        self._base = {}
        self._rules = {}
        self._others = []
        for item in doc.get("nftables", []):
            c = item.get("chain")
            if not c or c["family"] not in FAMILIES or (c["family"], c["table"]) in FIREWALLD_TABLES:
                continue
            cid = (c["family"], c["table"], c["name"])
            if "hook" in c and c.get("type") == "filter":
                self._base[cid] = c
            else:
                self._others.append(cid)
        if self.options.sweep:
            self._load_all_rules()

    def _load_all_rules(self) -> None:
        """close sweeps every chain, not only the hooks vrrpfw inserts into:
        a rule of ours left in a regular chain (a hand-edited or reloaded
        ruleset) is still ours to remove.  One listing per family, since
        one ``nft list chain`` per chain is slow where there are hundreds."""
        for cid in [*self._base, *self._others]:
            self._rules[cid] = []
        for family in sorted({cid[0] for cid in self._rules}):
            for item in json.loads(run_nft(["-j", "list", "ruleset", family]) or "{}").get("nftables", []):
                r = item.get("rule")
                if r is None:
                    continue
                cid = (r["family"], r["table"], r["chain"])
                if cid in self._rules:
                    self._rules[cid].append((to_fwrule(cid[2], r), int(r["handle"])))

    def _chain_rules(self, cid: ChainId) -> List[Tuple[FwRule, int]]:
        if cid not in self._rules:
            out = run_nft(["-j", "list", "chain", cid[0], cid[1], cid[2]])
            rules = []
            for item in json.loads(out or "{}").get("nftables", []):
                r = item.get("rule")
                if r is not None:
                    rules.append((to_fwrule(cid[2], r), int(r["handle"])))
            self._rules[cid] = rules
        return self._rules[cid]

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        """nft applies a batch atomically and fails it if a handle vanished,
        so no lock is needed; each session starts from a fresh listing."""
        self._load()
        yield

    def base_chains(self) -> Set[ChainId]:
        return set(self._base)

    def persister(self) -> Optional[Persister]:
        """An explicit file is the store its format says; otherwise both of
        the distribution's files, each for the chains it restores."""
        opts = self.options
        if opts.persist_file:
            target = locations.choose(opts.persist_file, opts.root)
            if looks_like_iptables_save(opts.persist_file):
                return IptablesSaveFile(target, anywhere=opts.sweep)
            return NftConfFile(self, target)
        saved = IptablesSaveFile(locations.choose(None, opts.root, "iptables"), anywhere=opts.sweep)
        return LayeredStore(self, NftConfFile(self, locations.choose(None, opts.root, "nftables")), saved)

    def chains_for(self, direction: Direction) -> List[ChainId]:
        hook = HOOKS[direction]
        return sorted(cid for cid, c in self._base.items() if c["hook"] == hook)

    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        out = []
        for r in rules:
            pkt = Packet(r.direction, r.interface, r.group)
            worst: List[Tuple[int, Runtime]] = []
            details: List[str] = []
            ours: List[Any] = []
            needs: List[Any] = []
            for cid in self.chains_for(r.direction):
                entries = self._chain_rules(cid)
                mine = [(cid, h) for fw, h in entries if _ours_key(fw) == r.key]
                ours.extend(mine)

                def lookup(name: str, cid: ChainId = cid) -> Optional[List[FwRule]]:
                    sub = (cid[0], cid[1], name)
                    try:
                        return [fw for fw, _ in self._chain_rules(sub)]
                    except BackendError:
                        return None
                policy = str(self._base[cid].get("policy", "accept")).upper()
                d = evaluate([fw for fw, _ in entries], policy, pkt, lookup)
                label = f"{cid[0]} {cid[1]} {cid[2]}"
                if d.outcome is Outcome.ACCEPT and d.rule is not None and _ours_key(d.rule) == r.key:
                    state, text = Runtime.ALLOWED, "present"
                elif d.outcome is Outcome.ACCEPT:
                    state, text = Runtime.ALLOWED_BY_OTHER, "accepted by another rule"
                elif d.outcome is Outcome.POLICY and d.accepted:
                    state, text = Runtime.ALLOWED_BY_OTHER, "nothing to open (does not drop VRRP)"
                elif mine:
                    state = Runtime.SHADOWED if d.outcome is Outcome.DROP else Runtime.UNCERTAIN
                    text = f"{state.value}: {d.reason or 'dropped'}"
                else:
                    state, text = Runtime.MISSING, "missing (it would drop VRRP)"
                    needs.append(cid)
                rank = {Runtime.MISSING: 0, Runtime.SHADOWED: 1, Runtime.UNCERTAIN: 2,
                        Runtime.ALLOWED: 3, Runtime.ALLOWED_BY_OTHER: 4}[state]
                worst.append((rank, state))
                details.append(f"{label}: {text}")
            ours.extend((cid, h) for cid in self._swept(r.direction)
                        for fw, h in self._chain_rules(cid) if _ours_key(fw) == r.key)
            self.rule_chains[r.key] = {cid for cid, _ in ours} | set(needs)
            if not worst:
                out.append(RuntimeStatus(r, Runtime.ALLOWED_BY_OTHER,
                                         "no nf_tables chain filters VRRP here", ours))
                continue
            state = min(worst, key=lambda x: x[0])[1]
            if state is Runtime.ALLOWED_BY_OTHER and any(s is Runtime.ALLOWED for _, s in worst):
                state = Runtime.ALLOWED
            out.append(RuntimeStatus(r, state, "; ".join(details), ours, needs))
        return out

    def _swept(self, direction: Direction) -> List[ChainId]:
        """The chains beyond ``direction``'s hook that close also searches."""
        if not self.options.sweep:
            return []
        hooked = set(self.chains_for(direction))
        return sorted(cid for cid in [*self._base, *self._others] if cid not in hooked)

    def discover(self) -> List[VrrpRule]:
        return rules_from_keys(_ours_key(fw) for direction in (Direction.IN, Direction.OUT)
                               for cid in self.chains_for(direction) + self._swept(direction)
                               for fw, _ in self._chain_rules(cid))

    def plan(self, statuses: Sequence[RuntimeStatus], op: str) -> List[Change]:
        changes: List[Change] = []
        for st in statuses:
            if op == "open":
                changes.extend(Change(Action.INSERT, st.rule, cid) for cid in st.needs)
                if st.state in (Runtime.SHADOWED, Runtime.UNCERTAIN):
                    for cid, handle in st.ours:
                        changes.append(Change(Action.DELETE, st.rule, (cid, handle)))
                        changes.append(Change(Action.MOVE, st.rule, cid))
            elif op == "close":
                changes.extend(Change(Action.DELETE, st.rule, h) for h in st.ours)
        return changes

    def apply(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        batch: List[Dict[str, Any]] = []
        for ch in changes:
            if ch.action is Action.DELETE:
                (fam, table, chain), handle = ch.handle
                batch.append({"delete": {"rule": {"family": fam, "table": table, "chain": chain,
                                                  "handle": handle}}})
        for ch in changes:
            if ch.action in (Action.INSERT, Action.MOVE):
                batch.append({"insert": {"rule": nft_rule_json(ch.rule, ch.handle)}})
        run_nft(["-j", "-f", "-"], stdin=json.dumps({"nftables": batch}))
        self._load()

    def describe(self, change: Change) -> str:
        if change.action is Action.DELETE:
            (fam, table, chain), handle = change.handle
            return f"nft delete rule {fam} {table} {chain} handle {handle}"
        fam, table, chain = change.handle
        return f"nft insert rule {fam} {table} {chain} {nft_rule_text(change.rule)}"

    def rule_text(self, rule: VrrpRule) -> str:
        return nft_rule_text(rule)
