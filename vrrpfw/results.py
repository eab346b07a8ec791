"""What open/check/close return, shaped for scripts (Ansible-like).

A provisioning tool needs three things from every call: did anything change,
what exactly (per rule, runtime and persisted separately), and is VRRP now
allowed.  ``exit_code`` derives the CLI's documented code from the same data
so the library and the CLI can never disagree.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, List, Optional, Sequence

from vrrpfw.record import asdict, field, record

from .errors import EXIT_NOT_ALLOWED, EXIT_OK
from .model import VrrpRule


class Runtime(str, enum.Enum):
    ALLOWED = "allowed"  # vrrpfw's rule is present and decides
    ALLOWED_BY_OTHER = "allowed-by-other"  # someone else's rule decides ACCEPT
    ALLOWED_BY_POLICY = "allowed-by-policy"  # no rule decides; chain policies let it through
    MISSING = "missing"
    SHADOWED = "shadowed"  # vrrpfw's rule is present but a rule above drops
    UNCERTAIN = "uncertain"  # present, but a rule above may drop
    ABSENT = "absent"  # after close: no vrrpfw rule left


class Persisted(str, enum.Enum):
    PRESENT = "present"
    MISSING = "missing"
    ABSENT = "absent"  # after close
    SKIPPED = "skipped"  # --no-persist
    NOT_MANAGED = "not-managed"  # allowed by a rule vrrpfw did not add
    UNCERTAIN = "uncertain"  # the saved ruleset cannot be judged: the next boot is not known


class Action(str, enum.Enum):
    NONE = "none"
    INSERT = "insert"
    MOVE = "move"  # delete below a drop, insert at the top
    DELETE = "delete"


@record
class RuleReport:
    direction: str
    interface: str
    group: str  # the rule's selector: a multicast group, or "peer P local L", with " ah" / " ttl 255"
    chain: str
    rule: str  # the rule in the backend's own syntax
    runtime: Runtime
    persisted: Persisted
    action: Action = Action.NONE
    persist_action: Action = Action.NONE
    detail: str = ""
    backend: str = ""
    family: str = "ipv4"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.direction, self.interface, self.group)

    @classmethod
    def for_rule(cls, r: VrrpRule, text: str, runtime: Runtime, persisted: Persisted) -> RuleReport:
        return cls(r.direction.value, r.interface, r.selector, r.chain, text, runtime, persisted,
                   family=r.family.value)


@record
class PersistReport:
    path: Optional[str]
    changed: bool = False
    error: Optional[str] = None
    boot_restore: Optional[str] = None  # what restores it at boot, if known
    note: Optional[str] = None  # e.g. "nothing restores this file at boot"


@record
class LayerReport:
    """What one firewall layer of the run did, runtime and saved, so that a
    partial outcome says exactly which parts landed."""

    backend: str
    # changed | partly changed | may have changed | unchanged | would change | failed | not run
    runtime: str = "unchanged"
    saved: str = "unchanged"  # changed | unchanged | would change | failed | skipped | not run
    error: Optional[str] = None


@record
class Result:
    command: str  # open | check | close
    backend: str
    changed: bool = False  # with dry_run: what the real run would change
    dry_run: bool = False
    rules: List[RuleReport] = field(default_factory=list)
    persist: List[PersistReport] = field(default_factory=list)  # one per backend store
    planned: List[str] = field(default_factory=list)  # exact backend commands
    diff: str = ""  # unified diff of the persisted file
    warnings: List[str] = field(default_factory=list)
    # Other firewall layers that still block VRRP; non-empty means not effective.
    blockers: List[str] = field(default_factory=list)
    nothing_filters: bool = False  # auto found no firewall that filters VRRP
    layers: List[LayerReport] = field(default_factory=list)  # one per backend of the run
    # --keepalived-conf: each vrrp_instance and the rules it needs, with why.
    derivation: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the host is in the state the command asked for (with
        dry_run: would be, after the real run)."""
        if self.blockers:
            return False
        if any(p.error for p in self.persist) or any(la.error for la in self.layers):
            return False
        if self.nothing_filters:
            return True
        good_rt = {Runtime.ALLOWED, Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY}
        good_p = {Persisted.PRESENT, Persisted.SKIPPED, Persisted.NOT_MANAGED}
        if self.command == "close":
            good_rt = {Runtime.ABSENT, Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY, Runtime.MISSING}
            good_p = {Persisted.ABSENT, Persisted.SKIPPED, Persisted.MISSING}
        if self.command == "check" and not self.rules:
            return False
        return all(r.runtime in good_rt and r.persisted in good_p for r in self.rules)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_NOT_ALLOWED

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        for r in d["rules"]:
            for k in ("runtime", "persisted", "action", "persist_action"):
                r[k] = r[k].value
        d["ok"] = self.ok
        d["exit_code"] = self.exit_code
        return d


def merge(results: Sequence[Result]) -> Result:
    """One result for several firewall layers opened together."""
    first = results[0]
    merged = Result(first.command, "+".join(r.backend for r in results), dry_run=first.dry_run)
    for r in results:
        merged.changed = merged.changed or r.changed
        merged.rules += r.rules
        for p in r.persist:
            _merge_persist(merged.persist, p)
        merged.planned += r.planned
        merged.diff += r.diff
        merged.blockers += [b for b in r.blockers if b not in merged.blockers]  # one per chain, not per layer
        merged.layers += r.layers
        merged.warnings += [w for w in r.warnings if w not in merged.warnings]
    return merged


def _merge_persist(reports: List[PersistReport], p: PersistReport) -> None:
    """Layers that keep lines in one file report it once: changed if any
    layer changed it, every distinct error and note kept."""
    same = next((q for q in reports if q.path == p.path), None)
    if same is None:
        reports.append(PersistReport(p.path, p.changed, p.error, p.boot_restore, p.note))
        return
    same.changed = same.changed or p.changed
    for attr in ("error", "note", "boot_restore"):
        mine, theirs = getattr(same, attr), getattr(p, attr)
        if theirs and theirs not in (mine or "").split("; "):
            setattr(same, attr, f"{mine}; {theirs}" if mine else theirs)
