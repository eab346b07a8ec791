"""An iptables-save file (rules.v4, /etc/sysconfig/iptables, ...) as the
store of vrrpfw's rules: vrrpfw's marked lines go into the tables the file
already restores, nothing else changes.

The file is shared by every layer of the run (:mod:`vrrpfw.persist.saved`);
this object only plans on its current text and stages the result.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Set

from ..backends.base import Backend, Key, Persister, PersistPlan
from ..model import VrrpRule, rules_from_keys
from . import files, iptables_save, locations, restorers
from .iptables_save import Placement
from .locations import PersistTarget
from .saved import SavedFile

Where = Callable[[], Dict[Key, Set[Placement]]]


class IptablesSaveFile(Persister):
    """The distribution's saved ruleset, edited line by line."""

    stages = True

    def __init__(self, target: PersistTarget, saved: SavedFile, variant: str, anywhere: bool = False,
                 where: Optional[Where] = None,
                 validate: bool = False, locked: bool = False) -> None:
        self.path = target.path
        self.saved = saved
        self.anywhere = anywhere  # close: vrrpfw's lines in any chain of *filter
        # open: the (table, chain)s vrrpfw opened at runtime for each rule; the
        # file must let the advert through the same chains after a restore.
        self.where: Where = where or dict
        self.restorer = target.restorer
        self.note = target.note
        self._parsed: Optional[iptables_save.SaveFile] = None
        self._parsed_text: Optional[str] = None
        self.validate, self.locked = validate, locked
        saved.want(restorers.iptables(variant), f"iptables-{variant}-restore")

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
        return rules_from_keys(sorted(self._keys()))

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        doc = self._doc()
        old = self.saved.current
        if op == "open":
            new, unplaced = iptables_save.add_rules(doc, rules, self.where())
            if unplaced:
                self.note = _unplaced_note(self.path, doc, self.saved.original is None, unplaced)
        else:
            new = iptables_save.remove_rules(doc, [r.key for r in rules], self.anywhere)
        if new == old:
            return PersistPlan(False)
        return PersistPlan(True, files.unified_diff(self.path, self.saved.text, new), new)

    def commit(self, plan: PersistPlan) -> None:
        self.saved.stage(plan.payload)


def _unplaced_note(path: str, doc: iptables_save.SaveFile, absent: bool,
                   unplaced: Sequence[Placement]) -> str:
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


def saved_iptables_file(b: Backend, variant: str, where: Optional[Where] = None,
                        persist_file: Optional[str] = None) -> IptablesSaveFile:
    """The iptables-save store a backend's run uses: the explicit file or the
    distribution's, shared through the run's file set."""
    o = b.options
    path = persist_file if persist_file is not None else o.persist_file
    target = locations.choose(path, o.root, "iptables")
    saved = b.saved_files().get(target.path, default_location=path is None)
    return IptablesSaveFile(target, saved, variant, anywhere=o.sweep, where=where,
                            validate=o.validate_saved, locked=o.locked)
