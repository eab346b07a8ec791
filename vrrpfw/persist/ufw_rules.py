"""ufw's own rules files (``/etc/ufw/before.rules``, ``before6.rules``) as
the store of vrrpfw's lines.

ufw loads these files itself at every start and reload
(``iptables-restore -n < before.rules``), after it has created its chains;
the ``:ufw-before-input - [0:0]`` line flushes that chain, so what the
file says is exactly what the chain holds afterwards.  vrrpfw therefore
keeps its lines there, as the first rules of ``ufw-before-input`` (inbound)
and ``ufw-before-output`` (outbound; ``ufw6-...`` in before6.rules), in
the same format and with the same ``vrrpfw`` comment as in an
iptables-save file (:func:`vrrpfw.persist.iptables_save.rule_line`), so
the identity of a line is the same key every backend uses.

Only lines are inserted or removed, never changed, so open then close gives
the admin's file back byte for byte.  The file must exist and parse:
vrrpfw never creates ufw's files (a missing before.rules is a broken ufw,
not something to paper over), and a file ufw's restorer rejects is refused
before anything changes.  The restorer check is the one ufw-init runs,
``iptables-restore --noflush`` of ufw's variant, with ``--test``, in the
caller's network namespace, where ufw's chains (``ufw-logging-deny``, ...)
exist as they do when ufw loads the file.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ..errors import InputError, PersistFileError
from ..host.which import which
from ..judge.nextboot import BootModel
from ..model import Direction, Family, Key, VrrpRule, rules_from_keys
from . import files, iptables_save
from .iptables_save import SaveFile, check_family, vrrpfw_line_key
from .nextboot import ufw_model
from .restorers import Restorer
from .saved import SavedFile
from .store import Persister, PersistPlan

UFW_DIR = "/etc/ufw"
FILE_NAMES = {Family.IPV4: "before.rules", Family.IPV6: "before6.rules"}
PREFIX = {Family.IPV4: "ufw", Family.IPV6: "ufw6"}
RESTORER_NOTE = "ufw (its start and every reload load this file)"


def chain_for(rule: VrrpRule) -> str:
    """The ufw chain vrrpfw's line for ``rule`` goes to."""
    return f"{PREFIX[rule.family]}-before-{'input' if rule.direction is Direction.IN else 'output'}"


def ufw_chains(family: Family) -> Tuple[str, str]:
    return f"{PREFIX[family]}-before-input", f"{PREFIX[family]}-before-output"


def default_path(family: Family, root: str = "/") -> str:
    return os.path.join(root, UFW_DIR.lstrip("/"), FILE_NAMES[family])


def parse(text: str, path: str, family: Family) -> SaveFile:
    """The file as iptables-restore reads it (vrrpfw's parser names the
    line), and it must be ufw's: a ``*filter`` section declaring both of the
    family's before chains."""
    doc = iptables_save.parse(text, path)
    sec = doc.section("filter")
    if sec is None:
        raise PersistFileError(f"{path}: no *filter section; not one of ufw's before rules files, "
                               "vrrpfw leaves it untouched")
    missing = [c for c in ufw_chains(family) if c not in sec.chains]
    if missing:
        raise PersistFileError(f"{path}: does not declare {' and '.join(missing)} (':{missing[0]} - [0:0]'); "
                               "not ufw's before rules file for this family, vrrpfw leaves it untouched")
    return doc


def _lines_of(doc: SaveFile, chain: str) -> List[int]:
    """Indices of the ``-A CHAIN`` lines of *filter, in file order."""
    sec = doc.section("filter")
    assert sec is not None
    out = []
    for i in range(sec.start + 1, sec.commit):
        tokens = doc.lines[i].split()
        if len(tokens) >= 2 and tokens[0] in iptables_save.APPEND and tokens[1] == chain:
            out.append(i)
    return out


def first_keys(doc: SaveFile, chain: str) -> Set[Key]:
    """Keys of vrrpfw's lines that lead ``chain`` after ufw loads the file:
    up to its first line that is not vrrpfw's (below someone else's rule a
    DROP may come first)."""
    keys: Set[Key] = set()
    for i in _lines_of(doc, chain):
        key = vrrpfw_line_key(doc.lines[i], anywhere=True)
        if key is None:
            break
        keys.add(key)
    return keys


def owned_lines(doc: SaveFile, family: Family) -> List[Tuple[int, Key]]:
    """(index, key) of every vrrpfw line in the family's before chains."""
    return [(i, key) for chain in ufw_chains(family) for i in _lines_of(doc, chain)
            for key in [vrrpfw_line_key(doc.lines[i], anywhere=True)] if key is not None]


def is_persisted(doc: SaveFile, rule: VrrpRule) -> bool:
    return rule.key in first_keys(doc, chain_for(rule))


def add_rules(doc: SaveFile, rules: Sequence[VrrpRule]) -> str:
    """The text with vrrpfw's line for each rule made a first rule of its
    chain (before the chain's first ``-A`` line, else before COMMIT); a line
    of ours found lower down (where another rule may shadow it) moves up."""
    inserts: Dict[int, List[str]] = {}
    drop: Set[int] = set()
    done: Set[Key] = set()
    sec = doc.section("filter")
    assert sec is not None
    for r in rules:
        chain = chain_for(r)
        if r.key in done or r.key in first_keys(doc, chain):
            continue
        done.add(r.key)
        lines = _lines_of(doc, chain)
        drop |= {i for i in lines if vrrpfw_line_key(doc.lines[i], anywhere=True) == r.key}
        at = _above_comments(doc, lines[0], sec.start) if lines else sec.commit
        inserts.setdefault(at, []).append(iptables_save.rule_line(r, chain) + "\n")
    out: List[str] = []
    for i, line in enumerate(doc.lines):
        out.extend(inserts.get(i, []))
        if i not in drop:
            out.append(line)
    return "".join(out)


def _above_comments(doc: SaveFile, index: int, start: int) -> int:
    """Where a line goes to come before the rule at ``index``: above the
    comment lines directly over it (ufw's "# allow all on loopback" names
    the rule below it, not vrrpfw's)."""
    while index - 1 > start and doc.lines[index - 1].startswith("#"):
        index -= 1
    return index


def remove_rules(doc: SaveFile, family: Family, keys: Optional[Sequence[Key]]) -> str:
    """The text without vrrpfw's lines for ``keys`` (all of them if None)."""
    drop = {i for i, key in owned_lines(doc, family) if keys is None or key in keys}
    return "".join(line for i, line in enumerate(doc.lines) if i not in drop)


def file_family(path: str) -> Family:
    """The family of a ``--persist-file``: IPv6 where it declares ufw6's
    chains or is named like before6.rules, else IPv4."""
    text = files.read_text(os.path.realpath(path)) or ""
    if ":ufw6-before-input" in text:
        return Family.IPV6
    if ":ufw-before-input" in text:
        return Family.IPV4
    return Family.IPV6 if "6" in os.path.basename(path) else Family.IPV4


def restorer(variant: str, family: Family) -> Tuple[Optional[Restorer], str]:
    """ufw-init's own load of the file (``iptables-restore -n``), with
    ``--test``: (the restorer or None where it is not installed, its label)."""
    label = f"{'ip6tables' if family is Family.IPV6 else 'iptables'}-{variant}-restore"
    found = which(label)
    if found is None:
        return None, label
    return Restorer(f"{label} --noflush", [found, "--test", "--noflush", "--wait=5"]), label


def ufw_holds(family: Family, other: Family) -> str:
    """What one of ufw's files holds, for :func:`check_family`: a
    ``--persist-file`` is one of ufw's files, of one family."""
    return f"ufw's {FILE_NAMES[family]} rules of one family; " \
        f"{'IPv6' if other is Family.IPV6 else 'IPv4'} rules belong in {FILE_NAMES[other]}"


class UfwRulesFile(Persister):
    """One of ufw's before rules files, of one family."""

    stages = True

    def __init__(self, path: str, saved: SavedFile, family: Family, variant: str,
                 validate: bool = False, locked: bool = False) -> None:
        self.path = path
        self.saved = saved
        self.family = family
        self.validate, self.locked = validate, locked
        self.restorer = RESTORER_NOTE
        self.note: Optional[str] = None
        self._doc: Optional[SaveFile] = None
        self._doc_text: Optional[str] = None
        tool, label = restorer(variant, family)
        saved.want(tool, label)

    def lock_paths(self) -> List[str]:
        return [self.saved.path]

    def load(self) -> None:
        """Refused (exit 3, nothing changed) when the file is missing or does
        not parse; the restorer is asked after vrrpfw's parser, whose
        message names the line."""
        if files.read_text(self.saved.real) is None:
            raise PersistFileError(f"{self.path} does not exist: it is ufw's own file and vrrpfw never "
                                   "creates it (reinstall ufw, or use --no-persist)")
        self._parse()
        self.saved.load(self.validate, self.locked)

    def _parse(self) -> SaveFile:
        text = self.saved.current
        if self._doc is None or self._doc_text != text:
            self._doc = parse(text, self.path, self.family)
            self._doc_text = text
        return self._doc

    def _mine(self, rules: Sequence[VrrpRule]) -> List[VrrpRule]:
        return [r for r in rules if r.family is self.family]

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        doc = self._parse()
        return {r.key for r in self._mine(rules) if is_persisted(doc, r)}

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        keys = {key for _, key in owned_lines(self._parse(), self.family)}
        return keys & {r.key for r in self._mine(rules)}

    def discover(self) -> List[VrrpRule]:
        keys = sorted({key for _, key in owned_lines(self._parse(), self.family)})
        return [r for r in rules_from_keys(keys) if r.family is self.family]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        doc = self._parse()
        old = self.saved.current
        mine = self._mine(rules)
        if op == "open":
            new = add_rules(doc, mine)
        else:
            new = remove_rules(doc, self.family, [r.key for r in mine])
        if new == old:
            return PersistPlan(False)
        return PersistPlan(True, files.unified_diff(self.path, self.saved.text, new), new)

    def commit(self, plan: PersistPlan) -> None:
        self.saved.stage(plan.payload)


class UfwRulesStore(Persister):
    """before.rules and before6.rules (or one ``--persist-file``), each
    rule planned in its family's file."""

    stages = True

    def __init__(self, parts: Dict[Family, UfwRulesFile], custom: bool = False, ufw_dir: str = UFW_DIR,
                 default_file: str = "/etc/default/ufw", layer: str = "nft") -> None:
        self.parts = parts
        self.custom = custom
        self.ufw_dir, self.default_file, self.layer = ufw_dir, default_file, layer  # for the next boot
        self.path = " and ".join(p.path for p in parts.values())
        self.restorer = RESTORER_NOTE
        self.note: Optional[str] = "custom persist file: ufw loads it only if it is ufw's before rules file" \
            if custom else None

    def lock_paths(self) -> List[str]:
        return [path for p in self.parts.values() for path in p.lock_paths()]

    def load(self) -> None:
        for p in self.parts.values():
            p.load()

    def check(self, rules: Sequence[VrrpRule]) -> None:
        """Refuse rules of a family none of the store's files holds."""
        other = [r for r in rules if r.family not in self.parts]
        if other and not self.custom:
            raise InputError(f"ufw's IPv6 support is off (IPV6=no in /etc/default/ufw), so ufw loads no "
                             f"{FILE_NAMES[Family.IPV6]}; vrrpfw will not keep IPv6 rules there "
                             "(set IPV6=yes and reload ufw, or use --no-persist)")
        if other:
            only = next(iter(self.parts.values()))
            check_family(rules, only.family, only.path, ufw_holds)

    def persisted(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        """Rules of a family this store has no file for are never persisted
        (refused where open would have to write them: :meth:`check`)."""
        return {k for p in self.parts.values() for k in p.persisted(rules)}

    def owned(self, rules: Sequence[VrrpRule]) -> Set[Key]:
        return {k for p in self.parts.values() for k in p.owned(rules)}

    def discover(self) -> List[VrrpRule]:
        return [r for p in self.parts.values() for r in p.discover()]

    def boot_models(self) -> List[BootModel]:
        """ufw's files, with the before rules as staged, as ``ufw enable``
        loads them (a ``--persist-file`` taken as the before rules file)."""
        staged = {FILE_NAMES[f]: p.saved.current for f, p in self.parts.items()}
        return [ufw_model(self.ufw_dir, self.default_file, staged, self.layer)]

    def plan(self, op: str, rules: Sequence[VrrpRule]) -> PersistPlan:
        if op == "open":
            self.check(rules)
        plans = [(p, p.plan(op, rules)) for p in self.parts.values()]
        used = [p for p in self.parts.values() if any(r.family is p.family for r in rules)]
        if used:
            self.path = " and ".join(p.path for p in used)
        return PersistPlan(any(pl.changed for _, pl in plans), "".join(pl.diff for _, pl in plans), plans)

    def commit(self, plan: PersistPlan) -> None:
        for part, sub in plan.payload:
            if sub.changed:
                part.commit(sub)
