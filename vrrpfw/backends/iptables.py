"""Legacy iptables through python-iptables (libiptc).

Only the filter table's INPUT and OUTPUT chains (and user chains they jump
to) are read, so cost grows with those chains and not with the whole table;
close alone reads every chain, since a vrrpfw rule moved elsewhere is still
vrrpfw's to remove.
Writes happen under the xtables lock, on a snapshot taken after the lock is
held, and go to the kernel in one libiptc commit: inbound and outbound land
together or not at all.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ..chaineval import FwRule, Match, Outcome, Packet, Tri, evaluate, match_protocol
from ..errors import BackendError, ConcurrentChange, EnvironmentProblem
from ..hostscan import HostScan
from ..model import COMMENT, VRRP_PROTO, Direction, VrrpRule, rules_from_keys
from ..persist import files, iptables_save, locations
from ..results import Action, Runtime
from .base import Availability, Backend, Change, Key, Options, Persister, PersistPlan, RuntimeStatus
from .iptc_loader import load_iptc
from .xtables_lock import xtables_lock

IPT_INV_PROTO = 0x40  # linux/netfilter/x_tables.h XT_INV_PROTO
ANY_ADDR = ("0.0.0.0/0.0.0.0", "0.0.0.0/0", None, "")
Handle = Tuple[FwRule, Any]  # our view, python-iptables' rule
# python-iptables 1.0 names protocols from /etc/protocols, 1.2 gives numbers;
# show the names iptables-save prints, whichever we got.
PROTOCOL_NAMES = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp",
                  "51": "ah", "58": "ipv6-icmp", "112": "vrrp", "132": "sctp"}


def _prefix(addr: Optional[str]) -> Optional[str]:
    """python-iptables gives ``a.b.c.d/255.255.255.0``; show ``/24``."""
    if addr in ANY_ADDR:
        return None
    assert addr is not None
    neg = addr.startswith("!")
    body = addr[1:] if neg else addr
    try:
        net = ipaddress.IPv4Network(body, strict=False)
        body = str(net)
    except ValueError:
        pass
    return ("!" if neg else "") + body


def _render(chain: str, fw: FwRule) -> str:
    """An iptables-save-like line for messages and --dry-run."""
    parts = [f"-A {chain}"]
    for flag, value in (("-s", fw.src), ("-d", fw.dst), ("-i", fw.in_iface),
                        ("-o", fw.out_iface), ("-p", fw.protocol)):
        if value:
            neg = value.startswith("!")
            parts.append(("! " if neg else "") + f"{flag} {value.lstrip('!')}")
    for m in fw.matches:
        parts.append(f"-m {m.name}")
        for key, words in m.params:
            ws = list(words)
            neg = ws[:1] == ["!"]
            vals = " ".join(f'"{w}"' if " " in w else w for w in (ws[1:] if neg else ws))
            parts.append(("! " if neg else "") + f"--{key} {vals}".rstrip())
    if fw.target:
        parts.append(f"{'-g' if fw.goto else '-j'} {fw.target}")
    return " ".join(parts)


def to_fwrule(chain: str, rule: Any) -> FwRule:
    matches = tuple(
        Match(m.name, tuple((k, tuple(v)) for k, v in m.get_all_parameters().items()))
        for m in rule.matches
    )
    proto = rule.protocol
    neg = proto.startswith("!")
    proto = ("!" if neg else "") + PROTOCOL_NAMES.get(proto.lstrip("!"), proto.lstrip("!"))
    target = rule.target
    fw = FwRule(
        chain=chain,
        protocol=None if proto in ("ip", "all", "0") else proto,
        src=_prefix(rule.src),
        dst=_prefix(rule.dst),
        in_iface=rule.in_interface or None,
        out_iface=rule.out_interface or None,
        matches=matches,
        target=target.name if target is not None else "",
        goto=bool(getattr(target, "goto", False)) if target is not None else False,
    )
    return FwRule(**{**fw.__dict__, "text": _render(chain, fw)})


def could_match_vrrp(proto: int, invflags: int) -> bool:
    """From an ipt_entry's protocol fields: can this rule match protocol 112?"""
    inverted = bool(invflags & IPT_INV_PROTO)
    if proto == 0:  # any protocol ("! -p all" matches nothing)
        return not inverted
    return (proto == VRRP_PROTO) != inverted


def vrrpfw_key(fw: FwRule, anywhere: bool = False) -> Optional[Key]:
    """(direction, interface, group) when ``fw`` is a rule vrrpfw wrote.
    Only INPUT and OUTPUT are where vrrpfw writes; ``anywhere`` also finds
    its rules in other chains (moved by hand, or an nft chain named in lower
    case), the direction following from the interface match."""
    if not fw.is_vrrpfw or fw.target != "ACCEPT" or match_protocol(fw.protocol) is not Tri.YES:
        return None
    if not fw.dst or fw.dst.startswith("!") or not fw.dst.endswith("/32"):
        return None
    group = fw.dst[:-3]
    if ((fw.chain == "INPUT" or anywhere) and fw.in_iface and not fw.in_iface.startswith("!")
            and not fw.out_iface):
        return (Direction.IN.value, fw.in_iface, group)
    if ((fw.chain == "OUTPUT" or anywhere) and fw.out_iface and not fw.out_iface.startswith("!")
            and not fw.in_iface):
        return (Direction.OUT.value, fw.out_iface, group)
    return None


class IptablesSaveFile(Persister):
    """The distribution's saved ruleset, edited line by line."""

    def __init__(self, target: locations.PersistTarget, anywhere: bool = False) -> None:
        self.path = target.path
        self.anywhere = anywhere  # close: vrrpfw's lines in any chain of *filter
        self.restorer = target.restorer
        self.note = target.note
        self._text: Optional[str] = None
        self._doc: Optional[iptables_save.SaveFile] = None

    def load(self) -> None:
        self._text = files.read_text(self.path)
        self._doc = iptables_save.parse(self._text or "", self.path)

    def _loaded(self) -> iptables_save.SaveFile:
        if self._doc is None:
            self.load()
        assert self._doc is not None
        return self._doc

    def _keys(self) -> Set[Key]:
        return {key for _, key in iptables_save.filter_keys(self._loaded(), self.anywhere)}

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        return self._keys() & {r.key for r in rules}

    def discover(self) -> List[VrrpRule]:
        return rules_from_keys(sorted(self._keys()))

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        doc = self._loaded()
        if op == "open":
            new = iptables_save.add_rules(doc, rules)
        else:
            new = iptables_save.remove_rules(doc, [r.key for r in rules], self.anywhere)
        old = self._text
        if new == (old or ""):
            return PersistPlan(False)
        return PersistPlan(True, files.unified_diff(self.path, old, new), new)

    def commit(self, plan: PersistPlan) -> None:
        files.atomic_write(self.path, plan.payload)
        self._text = plan.payload
        self._doc = iptables_save.parse(plan.payload, self.path)


class IptablesBackend(Backend):
    name = "iptables"
    summary = "legacy iptables (filter table) through python-iptables"

    def __init__(self, options: Options, scan: Optional[HostScan] = None) -> None:
        super().__init__(options, scan)
        self._iptc: Any = None
        self._table: Any = None
        self._chains: Dict[str, List[Handle]] = {}

    @classmethod
    def availability(cls) -> Availability:
        if os.geteuid() != 0:
            return Availability(False, "iptables needs root (run vrrpfw as root)")
        try:
            load_iptc()
        except Exception as e:  # ImportError, OSError from ctypes, XTablesError
            return Availability(False, f"python-iptables cannot be loaded: {e}")
        return Availability(True, "python-iptables loads and we are root")

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        self._iptc = load_iptc()
        lock = xtables_lock(self.options.lock_timeout) if write else contextlib.nullcontext()
        with lock:
            try:
                # Creating the Table takes a snapshot (the whole table, as
                # iptables -C does); a cached one may predate the lock, so
                # only that one is refreshed: one snapshot per session.
                cached = "filter" in getattr(self._iptc.Table, "_cache", {})
                self._table = self._iptc.Table("filter", autocommit=False)
                if cached:
                    self._table.refresh()
            except self._iptc.IPTCError as e:
                raise EnvironmentProblem(f"cannot read the legacy filter table: {e}") from None
            self._chains = {}
            try:
                yield
            finally:
                self._chains = {}

    # -- reading ---------------------------------------------------------
    def _chain(self, name: str) -> List[Handle]:
        """The chain's rules that could match a VRRP packet.  Decoding a rule
        in python-iptables costs ~0.2 ms (target and match objects), so we
        first read the protocol from libiptc's raw entry and skip rules that
        can never match protocol 112: they cannot decide, jump, or be ours."""
        if name not in self._chains:
            table = self._table
            chain = self._iptc.Chain(table, name)
            handles: List[Handle] = []
            entry = table.first_rule(name)
            while entry:
                if could_match_vrrp(entry.ip.proto, entry.ip.invflags):
                    rule = table.create_rule(entry, chain)
                    handles.append((to_fwrule(name, rule), rule))
                entry = table.next_rule(entry)
            self._chains[name] = handles
        return self._chains[name]

    def _lookup(self, name: str) -> Optional[List[FwRule]]:
        if not name or not self._table.is_chain(name) or self._table.builtin_chain(name):
            return None
        return [fw for fw, _ in self._chain(name)]

    def _policy(self, chain: str) -> str:
        policy = self._iptc.Chain(self._table, chain).get_policy()
        return policy.name if policy is not None else "ACCEPT"

    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        out = []
        swept = self._swept()
        for r in rules:
            entries = self._chain(r.chain)
            ours = [h for h in entries if vrrpfw_key(h[0]) == r.key]
            ours += [h for chain in swept for h in self._chain(chain)
                     if vrrpfw_key(h[0], anywhere=True) == r.key]
            d = evaluate([fw for fw, _ in entries], self._policy(r.chain),
                         Packet(r.direction, r.interface, r.group), self._lookup)
            decider = d.rule.text if d.rule is not None else f"chain policy {d.policy}"
            if d.outcome is Outcome.ACCEPT:
                assert d.rule is not None
                if vrrpfw_key(d.rule) == r.key:
                    st = RuntimeStatus(r, Runtime.ALLOWED, "", ours)
                else:
                    st = RuntimeStatus(r, Runtime.ALLOWED_BY_OTHER, f"accepted by: {d.rule.text}", ours)
            elif d.outcome is Outcome.DROP:
                state = Runtime.SHADOWED if ours else Runtime.MISSING
                st = RuntimeStatus(r, state, f"dropped by: {decider}", ours)
            elif d.outcome is Outcome.UNCERTAIN:
                state = Runtime.UNCERTAIN if ours else Runtime.MISSING
                st = RuntimeStatus(r, state, f"{d.reason}: {decider}", ours)
            else:
                why = ("chain policy ACCEPT lets it through for now" if d.accepted
                       else f"dropped by {decider}")
                st = RuntimeStatus(r, Runtime.MISSING, why, ours)
            out.append(st)
        return out

    def _swept(self) -> List[str]:
        """The chains beyond INPUT and OUTPUT that close also searches: a
        vrrpfw rule moved into another chain is still vrrpfw's to remove.
        Reading them all costs what the whole table costs, so only close does."""
        if not self.options.sweep:
            return []
        return [c.name for c in self._table.chains if c.name not in ("INPUT", "OUTPUT")]

    def discover(self) -> List[VrrpRule]:
        found = [vrrpfw_key(fw) for chain in ("INPUT", "OUTPUT") for fw, _ in self._chain(chain)]
        found += [vrrpfw_key(fw, anywhere=True) for chain in self._swept() for fw, _ in self._chain(chain)]
        return rules_from_keys(found)

    # -- writing ---------------------------------------------------------
    def _build(self, r: VrrpRule) -> Any:
        rule = self._iptc.Rule()
        rule.protocol = "112"
        rule.dst = f"{r.group}/255.255.255.255"
        if r.direction is Direction.IN:
            rule.in_interface = r.interface
        else:
            rule.out_interface = r.interface
        match = rule.create_match("comment")
        match.comment = COMMENT
        rule.create_target("ACCEPT")
        return rule

    def apply(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        iptc = self._iptc
        try:
            for ch in changes:
                if ch.action is Action.DELETE:  # from the chain it is in (close sweeps)
                    iptc.Chain(self._table, ch.handle[0].chain).delete_rule(ch.handle[1])
            for ch in changes:
                if ch.action in (Action.INSERT, Action.MOVE):
                    iptc.Chain(self._table, ch.rule.chain).insert_rule(self._build(ch.rule), 0)
            self._table.commit()
        except iptc.IPTCError as e:
            # EAGAIN: the table changed before our replace, nothing landed.
            # EINVAL: it changed between libiptc's replace and its counter
            # update, so our replace may have landed.  Either way the caller
            # re-reads the table and re-plans, which is idempotent.
            if "temporarily unavailable" in str(e) or "Invalid argument" in str(e):
                raise ConcurrentChange(
                    "the filter table kept changing while vrrpfw committed (a writer not "
                    "taking the xtables lock?); run `vrrpfw check` to see what is in place") from None
            raise BackendError(f"iptables refused the change (nothing was committed): {e}") from None
        finally:
            self._table.refresh()
            self._chains = {}

    def describe(self, change: Change) -> str:
        if change.action is Action.DELETE:
            text = change.handle[0].text
            return "iptables-legacy -t filter -D" + text[len("-A"):]
        line = iptables_save.rule_line(change.rule)
        return f"iptables-legacy -t filter -I {change.rule.chain} 1" + line[len(f"-A {change.rule.chain}"):]

    def rule_text(self, rule: VrrpRule) -> str:
        return iptables_save.rule_line(rule)

    def persister(self) -> Optional[Persister]:
        return IptablesSaveFile(locations.choose(self.options.persist_file, self.options.root),
                                anywhere=self.options.sweep)

    # -- other layers ----------------------------------------------------
    def blockers(self) -> List[str]:
        if self.scan is None or "nftables" in self.options.layers:
            return []  # the nftables layer of this same run opens those chains
        return [
            f"nf_tables chain {c.label} also filters VRRP, and legacy iptables rules cannot let "
            "packets past it: use --backend auto (opens every layer) or --backend nftables"
            for c in self.scan.nft_filtering
        ]

    def warnings(self) -> List[str]:
        notes = []
        if self.scan is not None:
            if self.scan.iptables_variant == "nf_tables":
                notes.append(
                    "the `iptables` command on this host is iptables-nft; vrrpfw's legacy "
                    "rules show in `iptables-legacy -S`, not `iptables -S`"
                )
            if self.scan.nft_error:
                notes.append(self.scan.nft_error)
        return notes
