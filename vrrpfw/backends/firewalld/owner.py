"""Which firewalld allowances are provably vrrpfw's.

Why a record at all: rich rules and zone services cannot carry a comment,
so :mod:`vrrpfw.persist.state` records what vrrpfw added, in which layer,
zone or policy, and for which interfaces.  A record only proves something
while firewalld's runtime is the one vrrpfw changed (a reload drops every
runtime allowance; one re-added identically by someone else is not
vrrpfw's), and while the allowance is still there.  This module keeps the
record honest (the runtime generation, forgetting what vanished), shares
an allowance between the interfaces it serves, releases only the closing
ones, and names the allowances vrrpfw must not rely on: accepts firewalld
does not list, and the admin's runtime-only allowances.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from ...errors import BackendError, BackendUnavailable, EnvironmentProblem, InputError
from ...host.nft import nft_json
from ...judge.read.nft import NftLayer
from ...model import AH_PROTO, Direction, Key, VrrpRule
from ...persist.state import Entry, StateFile
from ...results import Runtime
from ..base import Options, RuntimeStatus
from .bus import Firewalld
from .layer import _Layer, entry_fits
from .rules import (
    POLICY_PREFIX,
    construct_of,
    describe_target,
    direct_rule_of,
    rich_allows,
    rich_rule_of,
)


def runtime_generation(fw_backend: str, marks: Optional[List[str]] = None) -> Optional[str]:
    """An identity of firewalld's current runtime configuration, which a
    reload or restart changes: it deletes and recreates its nf_tables table
    (nftables backend) or its chains (iptables backend over iptables-nft),
    and nf_tables numbers tables and chains afresh, never reusing a number
    within a network namespace until reboot (hence the boot id and the
    namespace).  None where it cannot be read (iptables-legacy, no nft).
    ``marks``: those handles as this run already read them (see
    :func:`generation_marks`), so nft is not asked again."""
    try:
        if marks is not None:
            pass
        elif fw_backend == "nftables":
            doc = nft_json(["list", "tables"], timeout=10)
            marks = [str(o["table"]["handle"]) for o in doc.get("nftables", [])
                     if "table" in o and (o["table"]["family"], o["table"]["name"]) == ("inet", "firewalld")]
        else:
            doc = nft_json(["list", "chains", "ip"], timeout=10)
            marks = chain_marks(doc)
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        netns = os.stat("/proc/self/ns/net").st_ino
    except (OSError, RuntimeError, ValueError, KeyError):  # nft_json's errors, a table of another shape
        return None
    return f"{boot}:{netns}:{fw_backend}:{marks[0]}" if len(marks) == 1 else None


def chain_marks(doc: Any) -> List[str]:
    """The handles of firewalld's INPUT_ZONES chain in iptables-nft's
    ``ip filter`` table, from an ``nft -j list chains`` listing."""
    return [str(o["chain"]["handle"]) for o in doc.get("nftables", []) if "chain" in o
            and (o["chain"].get("family", "ip"), o["chain"]["table"], o["chain"]["name"])
            == ("ip", "filter", "INPUT_ZONES")]


def generation_marks(fw_backend: str, nft: Optional[NftLayer], heads: Any) -> Optional[List[str]]:
    """:func:`runtime_generation`'s marks from what this run has read
    already: the handle of ``inet firewalld`` in the path's listing of it
    (nftables backend), INPUT_ZONES' in the scan's chain listing (iptables
    backend); None where those do not say (nft is asked then)."""
    try:
        if fw_backend == "nftables" and nft is not None and ("inet", "firewalld") in nft.handles:
            return [str(nft.handles[("inet", "firewalld")])]
        if fw_backend != "nftables" and heads is not None:
            return chain_marks(heads)
    except (KeyError, TypeError, AttributeError):
        pass
    return None


class Ownership:
    """vrrpfw's claim on firewalld allowances, for one backend's run.

    Holds the backend's D-Bus client, record and options, and reaches its
    layers through ``layer`` (they are made once the mode is known)."""

    def __init__(self, fw: Firewalld, state: StateFile, options: Options,
                 layer: Callable[[str], _Layer]) -> None:
        self.fw, self.state, self.options, self.layer = fw, state, options, layer
        self.last: Dict[Key, RuntimeStatus] = {}  # the latest status of each rule
        self.kept: Dict[str, List[str]] = {}  # close: interface -> allowances kept for others
        self.unlisted: Dict[Key, str] = {}  # accepted by a rule firewalld does not list (see listed)

    def load(self, fw_backend: str, note: Callable[[str], None], marks: Optional[List[str]] = None) -> None:
        """Stamp the record with firewalld's runtime generation (``marks``:
        see :func:`runtime_generation`) and forget the entries that no
        longer prove anything, each said to ``note`` as it is known (a
        firewalld that stops answering mid-way keeps the notes made before)."""
        self.state.generation = runtime_generation(fw_backend, marks)
        if self.state.generation is None and any(e.layer == "runtime" for e in self.state.entries):
            note("vrrpfw cannot tell whether firewalld was reloaded since it added its runtime "
                 "allowances (no nf_tables handle to read); one vanished and re-added identically "
                 "would be taken for vrrpfw's")
        for n in self.state.prune(self.present):
            note(n)

    def present(self, e: Entry) -> bool:
        """Is the entry's allowance in firewalld now?  A zone or policy that
        no longer exists holds nothing."""
        try:
            return self.fw.has(e.layer, e.zone, e.kind, e.value)
        except (InputError, BackendError):
            return False

    def listed(self, target: str, rule: VrrpRule) -> bool:
        """Does firewalld's own runtime configuration hold an allowance for
        VRRP in ``target``?  Its nf_tables table can accept VRRP by a rule
        firewalld does not list: a firewalld killed without cleaning up
        leaves its table, and the next one (which deletes only tables it
        created) adds its rules beside the stale ones, until a reload drops
        them.  Such an accept is not relied on: vrrpfw adds its allowance."""
        try:
            if target.startswith(POLICY_PREFIX):
                settings = self.fw.policy_settings("runtime", target[len(POLICY_PREFIX):])
                protos = ("ah", "51") if rule.proto == AH_PROTO else ("vrrp", "112")
                return str(settings.get("target", "")) == "ACCEPT" or any(
                    rich_allows(str(r), rule) for r in settings.get("rich_rules", [])) or any(
                    str(p).lower() in protos for p in settings.get("protocols", [])) or (
                    self.layer("runtime").service_covering(settings.get("services", []), rule) is not None)
            return self.layer("runtime").other_allowance(target, rule) is not None
        except (InputError, BackendError):
            return True  # not a construct firewalld knows by that name: not ours to judge

    def accepted_unlisted(self, st: RuntimeStatus, target: str) -> bool:
        """Is ``st``'s advert accepted in ``target`` by a rule firewalld does
        not list, with no allowance of vrrpfw's there?  Then vrrpfw needs
        its own there; remembered for :meth:`runtime_only`."""
        if any(h[2] == target for h in st.ours) or self.listed(target, st.rule):
            return False
        self.unlisted[st.rule.key] = target
        return True

    def remember(self, statuses: Sequence[RuntimeStatus]) -> None:
        """The latest status of each rule (what :meth:`runtime_only` judges),
        its detail saying which allowances close kept for other interfaces."""
        for st in statuses:
            self.last[st.rule.key] = st
            kept = self.kept.get(st.rule.interface)
            if kept:
                st.detail = "; ".join([st.detail] + kept) if st.detail else "; ".join(kept)

    def release_for_close(self, rules: Sequence[VrrpRule]) -> None:
        """close: an allowance vrrpfw added for several interfaces stays
        while one it is not closing needs it; the closing interfaces are
        released from it now, so nothing plans (or reports) its removal.
        The interfaces also leave the list of what open was asked for."""
        closing: Dict[str, List[str]] = {}
        for r in rules:
            closing.setdefault(r.selector, []).append(r.interface)
            self.state.forget(r.interface, r.selector)
        names = ("runtime", "permanent") if self.options.persist else ("runtime",)
        for r in rules:
            for name in names:
                for e in self.layer(name).entries_for(r):
                    others = self.state.others(*e.ident, closing[r.selector])
                    if not others:
                        continue
                    self.state.release(*e.ident, r.interface)
                    text = (f"vrrpfw's {e.kind} in {describe_target(e.zone)} ({name}) is kept: "
                            f"still needed by {', '.join(others)}")
                    kept = self.kept.setdefault(r.interface, [])
                    if text not in kept:
                        kept.append(text)

    def share(self, statuses: Sequence[RuntimeStatus], path_mode: bool) -> None:
        """open, zone allowances: an interface let through by an allowance
        vrrpfw added for another interface (same zone, or the zone or policy
        that decides for it) is recorded on it too, in both layers, so
        closing the other interface keeps it.  Updates the statuses to say
        it is vrrpfw's.  ``path_mode``: judged from firewalld's nf_tables
        table, where outbound adverts can be decided by a policy too."""
        names = ("runtime", "permanent") if self.options.persist else ("runtime",)
        for st in statuses:
            if st.rule.direction is not Direction.IN and not path_mode:
                continue
            where = {self.layer("runtime").zone_for(st.rule.interface)}
            for cv in st.verdict.chains if st.verdict is not None else []:
                if cv.chain.owner == "firewalld" and cv.decision.rule is not None:  # its own table (writes)
                    where.add(construct_of(cv.decision.rule.chain) or "")
            for name in names:
                lay = self.layer(name)
                for e in list(self.state.entries):
                    if e.layer == name and e.zone in where and st.rule.interface not in e.interfaces \
                            and entry_fits(e, st.rule) and self.present(e):
                        self.state.add(*e.ident, st.rule.interface)
                if name == "runtime":
                    st.ours += [h for h in lay.recorded(st.rule) if h not in st.ours]
            if st.ours and st.state is Runtime.ALLOWED_BY_OTHER:
                st.state = Runtime.ALLOWED

    def discover(self, name: str) -> List[VrrpRule]:
        """vrrpfw's rules in a layer: from the record (and, at runtime, every
        interface open was asked for, also where the admin's allowance was
        already there) and from direct rules with vrrpfw's comment."""
        found: List[VrrpRule] = []

        def add(rule: Optional[VrrpRule]) -> None:
            if rule is not None and rule not in found:
                found.append(rule)

        if name == "runtime":
            for iface, selector in self.state.asked:
                for d in (Direction.IN, Direction.OUT):
                    add(asked_rule(d, iface, selector))
        for e in self.state.entries:
            if e.layer != name:
                continue
            direction = self.direction_of(name, e.zone)
            for iface in e.interfaces:
                add(VrrpRule(direction, iface, "224.0.0.18") if e.kind == "service"
                    else rich_rule_of(e.value, direction, iface))
        for _ipv, _table, chain, _prio, args in self.fw.direct_rules(name):
            add(direct_rule_of(chain, args))
        return found

    def direction_of(self, layer: str, target: str) -> Direction:
        """Which way the adverts go that vrrpfw's allowance in ``target``
        was added for: inbound in a zone, outbound in a policy whose
        ingress is the host itself (path mode)."""
        if not target.startswith(POLICY_PREFIX):
            return Direction.IN
        try:
            ingress = self.fw.policy_settings(layer, target[len(POLICY_PREFIX):]).get("ingress_zones", [])
        except (InputError, BackendError):
            return Direction.IN
        return Direction.OUT if "HOST" in [str(z) for z in ingress] else Direction.IN

    def runtime_only(self) -> Dict[Key, str]:
        """Rules allowed at runtime by someone else's allowance that the
        permanent configuration lacks: VRRP works until the next reload,
        so persisting is not "not managed", it is missing.  Only where the
        runtime allowance can be named and the permanent zone has none."""
        out: Dict[Key, str] = {}
        if not self.options.persist:
            return out
        for key, where in self.unlisted.items():
            st = self.last.get(key)
            if st is not None and not st.ours:
                out[key] = (f"VRRP in {key[1]} ({key[2]}) is accepted in {describe_target(where)} by a "
                            "rule in firewalld's nf_tables table that firewalld's own configuration does not "
                            "list (left by a firewalld that stopped without cleaning up?), absent from the "
                            "permanent configuration: a firewalld reload blocks it; `vrrpfw open` adds "
                            "vrrpfw's allowance")
        try:
            runtime, permanent = self.layer("runtime"), self.layer("permanent")
            for key, st in self.last.items():
                if key in out or st.rule.direction is not Direction.IN or st.ours or st.state not in (
                        Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY):
                    continue
                zone = runtime.zone_for(st.rule.interface)
                what = runtime.other_allowance(zone, st.rule)
                if what is None or permanent.other_allowance(permanent.zone_for(st.rule.interface),
                                                             st.rule) is not None:
                    continue
                out[key] = (f"VRRP in {st.rule.interface} ({st.rule.selector}) is allowed at runtime by the "
                            f"admin's {what}, absent from the permanent configuration (a firewalld reload "
                            "or reboot blocks it; make the admin's allowance permanent, or let vrrpfw add "
                            "its own after removing it)")
        except (BackendUnavailable, EnvironmentProblem):
            return {}
        return out


def asked_rule(direction: Direction, iface: str, selector: str) -> Optional[VrrpRule]:
    """The rule of one direction that open was asked for with ``selector``
    (recorded as the inbound rule's): strict matches inbound only, so the
    outbound rule is the same selector without it."""
    rule = VrrpRule.from_key(("in", iface, selector))
    if direction is Direction.OUT:
        return VrrpRule(Direction.OUT, iface, rule.group, rule.family, rule.proto, rule.local, False)
    return rule
