"""An iptables-save file (rules.v4, /etc/sysconfig/iptables, ...) as the
store of vrrpfw's rules: vrrpfw's marked lines go into the tables the file
already restores, nothing else changes.

The file is shared by every layer of the run (:mod:`vrrpfw.persist.saved`);
this object only plans on its current text and stages the result.

IPv4 and IPv6 rules live in two files (rules.v4 / rules.v6,
/etc/sysconfig/iptables / ip6tables), each restored by its own program
(iptables-restore / ip6tables-restore): :class:`IptablesSaveFile` is the
pair, each rule going to its family's file.  A ``--persist-file`` is one
file of one family, told by its content (an IPv6 address in ``-s``/``-d``)
or its name (``v6``, ``ip6``, ``ipv6``), IPv4 otherwise; rules of the other
family are refused with an InputError before anything changes (restoring
IPv6 lines with iptables-restore fails, which at boot leaves no firewall).
The distribution's pair is loaded (and, for open/close, checked by its
restorer) as one store even when only one family's rules are asked for: the
store is built before the rules are known, and a saved file its restorer
rejects is worth refusing either way.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Set, Tuple

from ..judge.nextboot import BootModel
from ..model import Family, Key, VrrpRule, rules_from_keys
from . import files, iptables_save, locations, restorers
from .iptables_save import Placement, check_family
from .locations import PersistTarget
from .nextboot import boot_label, save_text_model, unrestored
from .saved import FileSet, SavedFile
from .store import Persister, PersistPlan

Where = Callable[[], Dict[Key, Set[Placement]]]


class StoreOptions(Protocol):
    """The run's options a saved-file store reads (a backend's Options)."""

    @property
    def root(self) -> str: ...
    @property
    def persist_file(self) -> Optional[str]: ...
    @property
    def sweep(self) -> bool: ...
    @property
    def validate_saved(self) -> bool: ...
    @property
    def locked(self) -> bool: ...


class StoreRun(Protocol):
    """What a store needs of the run that holds it (a backend): its options
    and the run's saved files, shared by every layer."""

    @property
    def options(self) -> StoreOptions: ...
    def saved_files(self) -> FileSet: ...


class FamilyFile(Persister):
    """One saved ruleset of one family, edited line by line."""

    stages = True

    def __init__(self, target: PersistTarget, saved: SavedFile, variant: str, anywhere: bool = False,
                 where: Optional[Where] = None,
                 validate: bool = False, locked: bool = False, family: Family = Family.IPV4,
                 ufw_host: bool = False) -> None:
        self.family = family
        self.ufw_host = ufw_host  # ufw is installed: never advise netfilter-persistent
        self.path = target.path
        self.saved = saved
        self.anywhere = anywhere  # close: vrrpfw's lines in any chain of *filter
        # open: the (table, chain)s vrrpfw opened at runtime for each rule; the
        # file must let the advert through the same chains after a restore.
        self.where: Where = where or dict
        self.restorer = target.restorer
        self.note = target.note
        self.custom = target.family == "custom"  # the admin's --persist-file: judged as restored
        self._parsed: Optional[iptables_save.SaveFile] = None
        self._parsed_text: Optional[str] = None
        self.validate, self.locked = validate, locked
        self.variant = variant
        six = family is Family.IPV6
        saved.want(restorers.iptables(variant, "ip6" if six else "ip"),
                   f"{'ip6tables' if six else 'iptables'}-{variant}-restore")

    def lock_paths(self) -> List[str]:
        return [self.saved.path]

    def load(self) -> None:
        self._doc()  # vrrpfw's parser first: its messages name the line and the reason
        self.saved.load(self.validate, self.locked)

    def _doc(self) -> iptables_save.SaveFile:
        text = self.saved.current
        if self._parsed is None or self._parsed_text != text:
            self._parsed = iptables_save.parse(text, self.path)
            self._parsed_text = text
        return self._parsed

    def _keys(self) -> Set[Key]:
        return {key for _, key in iptables_save.filter_keys(self._doc(), self.anywhere)}

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        doc, where = self._doc(), self.where()
        return {r.key for r in rules if iptables_save.is_persisted(doc, r, where)}

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        keys = {key for _, _, _, key in iptables_save.table_keys(self._doc(), self.anywhere)}
        return keys & {r.key for r in rules}

    def discover(self) -> List[VrrpRule]:
        return [r for r in rules_from_keys(sorted(self._keys())) if r.family is self.family]

    def boot_models(self) -> List[BootModel]:
        """The file (as staged) as its restorer loads it at boot: into
        legacy tables, or iptables-nft's."""
        absent = self.saved.original is None and not self.saved.changed
        if not absent and not self.restorer and not self.custom:
            return [unrestored(self.path, [self.family])]
        layer = "legacy" if self.variant == "legacy" else "nft"
        return [save_text_model(boot_label(self.path, self.restorer),
                                None if absent else self.saved.current, self.family, layer)]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        doc = self._doc()
        old = self.saved.current
        if op == "open":
            new, unplaced = iptables_save.add_rules(doc, rules, self.where())
            if unplaced:
                self.note = _unplaced_note(self.path, doc, self.saved.original is None, unplaced,
                                           self.ufw_host)
        else:
            new = iptables_save.remove_rules(doc, [r.key for r in rules], self.anywhere)
        if new == old:
            return PersistPlan(False)
        return PersistPlan(True, files.unified_diff(self.path, self.saved.text, new), new)

    def commit(self, plan: PersistPlan) -> None:
        self.saved.stage(plan.payload)


def _unplaced_note(path: str, doc: iptables_save.SaveFile, absent: bool,
                   unplaced: Sequence[Placement], ufw: bool = False) -> str:
    if absent and ufw:
        return (f"{path} does not exist, so nothing restores iptables rules from it; vrrpfw does not "
                "create it (a new file would flush your tables at the next restore); ufw is installed "
                "here, so netfilter-persistent is not the way: use --backend ufw (vrrpfw's lines then "
                "go to /etc/ufw/before.rules, which ufw restores), or --no-persist")
    if absent:
        return (f"{path} does not exist, so nothing restores iptables rules from it; vrrpfw does not "
                "create it (a new file would flush your tables at the next restore): save your ruleset "
                "there first (`netfilter-persistent save` or iptables-save), or use --no-persist")
    reasons = []
    for table, chain in unplaced:
        if table.startswith("nft "):
            reasons.append(f"{table[4:]}: an iptables-save file cannot hold nft chains")
        elif doc.section(table) is None:
            reasons.append(f"{table} {chain}: the file has no *{table} section, and adding one would flush "
                           "that table at the next restore")
        else:
            reasons.append(f"{table} {chain}: the file adds rules to it with -I, which a restore applies "
                           "above vrrpfw's line")
    return (f"{path} cannot keep vrrpfw's rule first in " + "; ".join(reasons)
            + "; persist it yourself or use --no-persist")


class IptablesSaveFile(Persister):
    """The saved rulesets of both families (:class:`FamilyFile` each); a
    rule is planned in its family's file only."""

    stages = True

    def __init__(self, parts: Dict[Family, FamilyFile], custom: bool = False) -> None:
        self.parts = parts
        self.custom = custom
        self.path = " and ".join(p.path for p in parts.values())
        self.restorer = ", ".join(sorted({p.restorer for p in parts.values() if p.restorer})) or None
        self.note = next(iter(parts.values())).note  # until a plan says which files the rules touch

    def lock_paths(self) -> List[str]:
        return [path for p in self.parts.values() for path in p.lock_paths()]

    def load(self) -> None:
        for p in self.parts.values():
            p.load()

    def _of(self, rules: Sequence[VrrpRule]) -> List[Tuple[FamilyFile, List[VrrpRule]]]:
        """Each file with its family's rules; another family's rules with a
        one-family file are refused (:func:`check_family`)."""
        if self.custom:
            only = next(iter(self.parts.values()))
            check_family(rules, only.family, only.path, restored_by)
        return [(p, [r for r in rules if r.family is fam]) for fam, p in self.parts.items()]

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        return {k for p, mine in self._of(rules) for k in p.persisted(mine)}

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        return {k for p, mine in self._of(rules) for k in p.owned(mine)}

    def discover(self) -> List[VrrpRule]:
        return [r for p in self.parts.values() for r in p.discover()]

    def boot_models(self) -> List[BootModel]:
        return [m for p in self.parts.values() for m in p.boot_models()]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        todo = self._of(rules)
        plans = [(p, p.plan(op, mine)) for p, mine in todo]
        # the report names the files these rules live in (rules.v4 alone for IPv4 rules)
        used = [p for p, mine in todo if mine] or [todo[0][0]]
        self.path = " and ".join(p.path for p in used)
        self.restorer = ", ".join(dict.fromkeys(p.restorer for p in used if p.restorer)) or None
        self.note = "; ".join(p.note for p in used if p.note) or None
        return PersistPlan(any(pl.changed for _, pl in plans), "".join(pl.diff for _, pl in plans), plans)

    def commit(self, plan: PersistPlan) -> None:
        for part, sub in plan.payload:
            if sub.changed:
                part.commit(sub)


def restored_by(family: Family, other: Family) -> str:
    """What a ``--persist-file`` of ``family`` holds, for :func:`check_family`."""
    want = "IPv6" if other is Family.IPV6 else "IPv4"
    have = "IPv6" if family is Family.IPV6 else "IPv4"
    tool = "ip6tables" if family is Family.IPV6 else "iptables"
    return (f"{have} rules (one family per file: it is restored by {tool}-restore); "
            f"{want} rules need their own file")


_V6_NAME = re.compile(r"(?:^|[^a-z0-9])(?:v6|ip6|ipv6|ip6tables)(?:[^a-z0-9]|$)|rules6|6tables", re.I)


def custom_family(path: str) -> Family:
    """The family of a ``--persist-file``: IPv6 if a rule in it names an
    IPv6 address (``-s``/``-d``), else IPv6 if its name says so (``rules.v6``,
    ``ip6tables``, ``rules-ipv6.save``), else IPv4."""
    text = files.read_text(os.path.realpath(path)) or ""
    for line in text.splitlines():
        words = line.split()
        for i, w in enumerate(words[:-1]):
            if w in ("-s", "-d", "--source", "--destination"):
                return Family.IPV6 if ":" in words[i + 1] else Family.IPV4
    return Family.IPV6 if _V6_NAME.search(os.path.basename(path)) else Family.IPV4


def saved_iptables_file(b: StoreRun, variant: str, where: Optional[Where] = None,
                        persist_file: Optional[str] = None) -> IptablesSaveFile:
    """The iptables-save store a backend's run uses: the explicit file (one
    family, see :func:`custom_family`) or the distribution's two, shared
    through the run's file set."""
    o = b.options
    path = persist_file if persist_file is not None else o.persist_file
    if path is not None:
        fams = [custom_family(path)]
    else:
        fams = [Family.IPV4, Family.IPV6]
    parts: Dict[Family, FamilyFile] = {}
    ufw = locations.ufw_note(o.root) is not None
    for fam in fams:
        kind = "ip6tables" if fam is Family.IPV6 and path is None else "iptables"
        target = locations.choose(path, o.root, kind)
        saved = b.saved_files().get(target.path, default_location=path is None)
        parts[fam] = FamilyFile(target, saved, variant, anywhere=o.sweep, where=where,
                                validate=o.validate_saved, locked=o.locked, family=fam, ufw_host=ufw)
    return IptablesSaveFile(parts, custom=path is not None)
