"""The contract every firewall backend fulfils (the persister contract is
:mod:`vrrpfw.persist.store`).

The split mirrors what an admin wants to know separately: what is true at
runtime, what would change (plan, with no side effect, so --dry-run is
exact), the change itself, and what is saved for the next boot.  The
orchestration in :mod:`vrrpfw.run` is written once against this contract.
"""

from __future__ import annotations

import abc
import contextlib
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, List, Optional, Sequence, Set, Tuple

from vrrpfw.record import field, record

from ..host import ifaddr
from ..judge import owners
from ..judge.netpath import bridge_hint, judge_peers, responsible
from ..judge.path_model import BaseChain, ChainId, ChainState, ChainVerdict, PathModel, PathVerdict
from ..model import VrrpRule
from ..results import Action, Runtime

if TYPE_CHECKING:  # the stores are imported where a run persists
    from ..host.hostscan import HostScan
    from ..persist.saved import FileSet
    from ..persist.store import Persister


@record(frozen=True)
class Availability:
    usable: bool
    reason: str


@record
class Options:
    persist: bool = True
    persist_file: Optional[str] = None
    dry_run: bool = False
    lock_timeout: float = 10.0
    root: str = "/"  # where host files (os-release, restorers) are looked up
    # firewalld
    zone: Optional[str] = None
    mode: str = "auto"  # auto | direct | zone
    force: bool = False  # direct rules even where they cannot work
    state_file: Optional[str] = None
    remove_seed: bool = False  # close: also remove hand-made VRRP direct rules
    sweep: bool = False  # close: look for vrrpfw's rules in every chain, not only where it inserts
    layers: Tuple[str, ...] = ()  # every backend this run uses (auto may use several)
    # open/close (dry-run too): saved files must pass their restorer before anything changes
    validate_saved: bool = False
    locked: bool = False  # the run holds the saved stores' locks (open/close, not dry-run)
    peers: Tuple[str, ...] = ()  # the VRRP peers' addresses, where rules match on the source
    only_family: Optional[str] = None  # close/check without rules: this family's rules only
    # open: pin vrrpfw's rule in the layer's own filter chains even where
    # their policy lets VRRP through now (see Backend.pins_in)
    pin: bool = False


@record
class RuntimeStatus:
    """One abstract rule as the live firewall has it."""

    rule: VrrpRule
    state: Runtime
    detail: str = ""
    ours: List[Any] = field(default_factory=list)  # backend handles of vrrpfw rules
    needs: List[Any] = field(default_factory=list)  # chains of this backend where the rule must go
    verdict: Optional[PathVerdict] = None  # the whole path, every layer


@record
class Change:
    action: Action
    rule: VrrpRule
    handle: Any = None  # what to delete, for DELETE/MOVE


class Backend(abc.ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    # The program whose chains this backend writes through that program's
    # own interface (firewalld's API, ufw's files); None for the others.
    manages: ClassVar[Optional[owners.Owner]] = None

    def __init__(self, options: Options, scan: Optional[HostScan] = None) -> None:
        self.options = options
        self.scan = scan  # what the host scan found, for warnings about other layers
        self.files: Optional[FileSet] = None  # set by the run, shared by its layers

    @classmethod
    @abc.abstractmethod
    def availability(cls) -> Availability:
        """Can this backend work here, and if not, why not (one line)."""

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[None]:
        """Snapshot (and, for ``write``, lock) for a read-plan-apply cycle."""
        yield

    @abc.abstractmethod
    def runtime_status(self, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        """Live state of each rule, including who decides the verdict."""

    @abc.abstractmethod
    def discover(self) -> List[VrrpRule]:
        """vrrpfw's own rules present at runtime."""

    @abc.abstractmethod
    def apply(self, changes: Sequence[Change]) -> None:
        """Make the changes, atomically where the firewall allows."""

    @abc.abstractmethod
    def describe(self, change: Change) -> str:
        """The change as the firewall's own command, for --dry-run."""

    @abc.abstractmethod
    def rule_text(self, rule: VrrpRule) -> str:
        """The rule in the firewall's own syntax."""

    def persister(self) -> Optional[Persister]:
        return None

    def saved_files(self) -> FileSet:
        """The run's saved files (shared by every layer; see persist.saved)."""
        if self.files is None:
            from ..persist.saved import FileSet

            self.files = FileSet()
        return self.files

    def lock_paths(self) -> List[str]:
        """Files the backend itself rewrites during a run (firewalld's
        state.json); locked like persisters' files, for the whole run."""
        return []

    def warnings(self) -> List[str]:
        return self.pin_notes()

    def scan_heads(self) -> Any:
        """The host scan's ``nft -j list chains`` for the path readers
        (:func:`vrrpfw.judge.read.nft.read`), so that a run lists nft's
        chains once; None (read afresh) where the scan has none, the run
        has changed the firewall since, or it reads under its locks to
        change it (open, close: see :meth:`.HostScan.outdated`)."""
        return self.scan.nft_heads if self.scan is not None else None

    # -- the path ------------------------------------------------------
    def writes(self, chain: BaseChain) -> bool:
        """Is ``chain`` one this backend changes?"""
        return False

    def path_statuses(self, model: PathModel, rules: Sequence[VrrpRule]) -> List[RuntimeStatus]:
        """Each rule judged over the whole path (every layer); ``needs`` are
        this backend's chains that do not certainly let the advert through,
        ``ours`` vrrpfw's rules in this backend's chains as (chain id, rule)."""
        out = []
        self._unpinned: List[str] = []
        self._blocked: List[str] = []
        self._held: List[Tuple[owners.Owner, str]] = []
        for r in rules:
            v = judge_peers(model, r, self.options.peers, ifaddr.primary_of(r.interface, r.family.value))
            own = [cv for cv in v.chains if self.writes(cv.chain)]
            ours = [(cv.chain.id, fw) for cv in own for fw in cv.ours]  # close removes them anywhere
            # A chain whose verdict depends on dynamic state (an ipset, a
            # recent list, an nft set packets fill) needs vrrpfw's rule above
            # it too, so the next ban or timeout cannot drop VRRP.
            needs = [cv.chain.id for cv in own
                     if (not cv.state.passes or cv.decision.depends) and held_by(cv) is None]
            if self.options.pin:
                needs += self._pins(r, own, needs)
            for cv in v.chains:
                if cv.state.passes:
                    continue
                owner = held_by(cv)
                if owner is not None:
                    where = (owner, held_text(cv))
                    if where not in self._held:
                        self._held.append(where)
                    continue
                if responsible(cv.chain) not in self.options.layers:
                    msg = (bridge_hint(cv, r) if responsible(cv.chain) == "bridge" else
                           f"{cv.text}; vrrpfw's {responsible(cv.chain)} backend would have to open it "
                           f"(--backend auto opens every layer)")
                    if msg not in self._blocked:
                        self._blocked.append(msg)
            out.append(RuntimeStatus(r, v.state, v.detail, ours, needs, v))
        return out

    def pins_in(self, chain: BaseChain) -> bool:
        """Is ``chain`` one of the admin's own filter chains of this layer,
        where ``open`` pins vrrpfw's rule even while the chain's policy lets
        VRRP through (so the next policy change cannot block it)?"""
        return False

    def _pins(self, r: VrrpRule, own: Sequence[ChainVerdict], needs: Sequence[ChainId]) -> List[ChainId]:
        """open: the pin chains (:meth:`pins_in`) that let the advert through
        only by their policy; a chain where a rule accepts it (vrrpfw's, or
        the admin's own allowance) is left as it is.  Where this layer has
        no such chain on the path and nothing of vrrpfw's holds the advert,
        a note says so (vrrpfw creates no table or chain of its own)."""
        pins = [cv.chain.id for cv in own if self.pins_in(cv.chain) and cv.state is ChainState.POLICY
                and not cv.ours and held_by(cv) is None and cv.chain.id not in needs]
        places = [cv for cv in own if self.pins_in(cv.chain) and held_by(cv) is None]
        if self.pin_places and not places and not any(cv.ours for cv in own) and not needs:
            note = (f"{self.name}: no filter chain of the admin's for VRRP {r.direction.value} on "
                    f"{r.interface} ({self.pin_places}) to pin vrrpfw's rule in, so open adds none; "
                    "VRRP passes by policy now, and vrrpfw creates no table or chain of its own")
            if note not in self._unpinned:
                self._unpinned.append(note)
        return pins

    # Where pins go, for the note when there is none (the backends that pin
    # through pins_in say; None: the backend pins its own way, or not at all).
    pin_places: ClassVar[Optional[str]] = None

    def pin_notes(self) -> List[str]:
        """open: rules this layer had no chain of the admin's to pin in."""
        return list(getattr(self, "_unpinned", []))

    def blockers(self) -> List[str]:
        """Chains on the path that still do not let VRRP through and that no
        backend of this run writes (another program's first, see held)."""
        return self.held() + list(getattr(self, "_blocked", []))

    def held(self) -> List[str]:
        """Why ``open`` must not change anything: chains another program
        owns (:mod:`vrrpfw.judge.owners`) that may drop VRRP where vrrpfw
        cannot let it past them from the admin's own chains; one line each,
        naming the owner, the chain and what to change there."""
        held: List[Tuple[owners.Owner, str]] = getattr(self, "_held", [])
        by_owner = {o: [text for who, text in held if who == o] for o, _ in held}
        return [owners.remedy_line(o, texts) for o, texts in by_owner.items()]

    def plan(self, statuses: Sequence[RuntimeStatus], op: str) -> List[Change]:
        """Pure: the runtime changes that take ``statuses`` to what ``op``
        wants.  open: vrrpfw's rule goes to the top of each of this
        backend's chains that does not certainly let the advert through, or
        lets it through only by the current contents of dynamic state (a
        rule of ours already there moves up); duplicates of ours go.  Chains
        that let it through (by a rule or by policy) are left alone.
        close: every rule of ours goes."""
        changes: List[Change] = []
        if op == "open" and self.held():
            return changes  # half a path opened is still shut; vrrpfw leaves the host as it is
        for st in statuses:
            if op == "open":
                needs = set(st.needs)
                seen: Set[ChainId] = set()
                for cid, fw in st.ours:
                    if isinstance(cid, ChainId) and _owned(cid) not in (None, self.manages):
                        continue  # another program's chain: open neither writes nor deletes there
                    if cid in needs or cid in seen:
                        changes.append(Change(Action.DELETE, st.rule, (cid, fw)))
                    seen.add(cid)
                for cid in st.needs:
                    moved = any(c == cid for c, _ in st.ours)
                    changes.append(Change(Action.MOVE if moved else Action.INSERT, st.rule, cid))
            elif op == "close":
                changes.extend(Change(Action.DELETE, st.rule, h) for h in st.ours)
        return changes


def _owned(cid: ChainId) -> Optional[owners.Owner]:
    """The program that owns chain ``cid`` (its table, or for iptables'
    tables its name); firewalld's table is the firewalld backend's to
    write, and is left to :func:`responsible`."""
    owner = owners.of_chain(cid.layer, cid.family, cid.table, cid.name)
    return None if owner is owners.FIREWALLD else owner


def _chain_owner(cv: ChainVerdict) -> Optional[owners.Owner]:
    """The program that owns the base chain ``cv`` judged."""
    return _owned(cv.chain.id)


def _decider_owner(cv: ChainVerdict) -> Optional[owners.Owner]:
    """The program that owns the chain where the rule that drops (or may
    drop) the advert sits, when that is a chain the base chain jumps to."""
    rule = cv.decision.rule
    if rule is None or rule.chain == cv.chain.id.name:
        return None
    cid = cv.chain.id
    owner = owners.of_chain(cid.layer, cid.family, cid.table, rule.chain)
    return None if owner is owners.FIREWALLD else owner


def held_by(cv: ChainVerdict) -> Optional[owners.Owner]:
    """Who keeps vrrpfw out of this chain's verdict: the owner of the base
    chain itself (kube-proxy's nftables table, Docker's, Calico's: an
    ACCEPT in any other base chain does not save a packet this one drops),
    or the owner of the chain it jumps to that decides, where that owner
    keeps its jump at the top (Calico, Cilium), so an ACCEPT vrrpfw put
    above the jump would not stay above it.  None where vrrpfw's ACCEPT at
    the top of the base chain lets the advert past (kube-proxy's
    KUBE-FIREWALL jumped to from INPUT, say)."""
    owner = _chain_owner(cv)
    if owner is not None:
        return owner
    decider = _decider_owner(cv)
    return decider if decider is not None and decider.keeps_first else None


def held_text(cv: ChainVerdict) -> str:
    """What a held chain does to the advert, and by which rule: the owned
    base chain, or the owned chain its jump leads to (where the owner keeps
    that jump first)."""
    d = cv.decision
    label = cv.chain.id.label
    if _chain_owner(cv) is None and d.rule is not None:
        owner = _decider_owner(cv)
        assert owner is not None
        label = f"{d.rule.chain} (reached from {label}, where {owner.name} keeps its jump first)"
    rule = f"policy {d.policy}"
    if d.rule is not None:
        text = d.rule.text or "a rule"
        rule = text if text.startswith(f"-A {d.rule.chain} ") else f"{d.rule.chain}: {text}"
    if cv.state is ChainState.DROP:
        return f"{label} drops VRRP ({rule})"
    return f"{label} may drop VRRP ({d.reason or 'not judged'}: {rule})"
