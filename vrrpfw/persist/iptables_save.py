"""Edit an iptables-save file by adding or removing only vrrpfw's lines.

The saved ruleset belongs to the admin (and to whatever wrote it); dumping
the runtime ruleset over it would persist Docker's or Kubernetes' transient
rules.  So we parse just enough to find the ``*filter`` section and the
first rule of a chain, and treat every other line as opaque text that is
written back byte for byte.  Text is handled as latin-1 so that any byte
survives the round trip.
"""

from __future__ import annotations

import shlex
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from vrrpfw.record import field, record

from ..errors import InputError, PersistFileError
from ..host.invoker import quote, show
from ..model import AH_PROTO, COMMENT, VRRP_PROTO, Direction, Family, VrrpRule
from .iptables_line import rule_line  # noqa: F401 (moved there; used below too)

BUILTIN_FILTER_CHAINS = ("INPUT", "FORWARD", "OUTPUT")


@record
class Section:
    name: str
    start: int  # index of the "*name" line
    commit: int  # index of its COMMIT line
    chains: List[str] = field(default_factory=list)


@record
class SaveFile:
    lines: List[str]  # with their line endings
    sections: List[Section]

    def section(self, name: str) -> Optional[Section]:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def text(self) -> str:
        return "".join(self.lines)


def parse(text: str, path: str = "<text>") -> SaveFile:
    """Refuse what iptables-restore refuses in the lines vrrpfw reads and
    writes (each tried against iptables-legacy-restore and
    iptables-nft-restore 1.8.9): CR line endings, lines of only spaces,
    indented comments or table/chain/COMMIT lines, ``COMMIT`` with spaces
    or without its newline, NUL bytes, rules outside a table, a table
    without COMMIT.  Two sections of one table are refused too: the
    restorer takes them, but the second flushes the first, so an edit of
    the first would be lost at boot.  (The restorer itself checks the rest,
    see :mod:`vrrpfw.persist.restorers`.)"""
    lines = text.splitlines(keepends=True)
    sections: List[Section] = []
    current: Optional[Section] = None
    for i, raw in enumerate(lines):
        where = f"{path}:{i + 1}"
        body = raw[:-1] if raw.endswith("\n") else raw
        if "\r" in body or "\0" in body:
            what = "a carriage return (CRLF line endings)" if "\r" in body else "a NUL byte"
            raise PersistFileError(f"{where}: line has {what}, which iptables-restore refuses")
        if not body or body.startswith("#"):
            continue
        stripped = body.strip()
        if not stripped:
            raise PersistFileError(f"{where}: a line of only blanks, which iptables-restore refuses")
        if body[0].isspace() and not stripped.startswith("-"):
            raise PersistFileError(f"{where}: indented {quote(path, stripped[:20])}: "
                                   "iptables-restore reads an indented line as a rule and refuses it")
        if stripped.startswith("*"):
            if current is not None:
                raise PersistFileError(
                    f"{where}: table {show(path, stripped)} starts before {show(path, current.name)} "
                    "ends with COMMIT")
            name = stripped[1:]
            if not name or any(c.isspace() for c in name):
                raise PersistFileError(f"{where}: bad table line {quote(path, stripped)}")
            if any(s.name == name for s in sections):
                raise PersistFileError(f"{where}: a second {show(path, '*' + name)} section; at restore it "
                                       "would flush the "
                                       "first one, so vrrpfw will not edit this file (merge them)")
            current = Section(name, i, -1)
            continue
        if current is None:
            raise PersistFileError(
                f"{where}: {quote(path, stripped[:40])} is outside any table (no '*filter' before it)")
        if stripped == "COMMIT":
            if body != "COMMIT":
                raise PersistFileError(f"{where}: {quote(path, body)}: iptables-restore accepts only a bare "
                                       "COMMIT")
            if not raw.endswith("\n"):
                raise PersistFileError(f"{where}: COMMIT without a newline at the end of the file, "
                                       "which iptables-legacy-restore refuses")
            current.commit = i
            sections.append(current)
            current = None
        elif body.startswith(":"):
            current.chains.append(body[1:].split()[0] if body[1:].split() else "")
        elif stripped.startswith("-"):
            try:
                shlex.split(stripped)
            except ValueError as e:
                raise PersistFileError(f"{where}: cannot parse rule: {e}") from None
        else:
            raise PersistFileError(f"{where}: unexpected line {quote(path, stripped[:40])}")
    if current is not None:
        raise PersistFileError(f"{path}: table {show(path, '*' + current.name)} has no COMMIT line")
    return SaveFile(lines, sections)


def _options(tokens: Sequence[str]) -> Dict[str, str]:
    opts: Dict[str, str] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-") and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            opts.setdefault(tok, tokens[i + 1])
            i += 2
        else:
            opts.setdefault(tok, "")
            i += 1
    return opts


def vrrpfw_line_key(line: str, anywhere: bool = False) -> Optional[Tuple[str, str, str]]:
    """The rule's key if the line is a vrrpfw rule (every shape
    :func:`rule_line` writes, and older versions' IPv4 multicast lines),
    else None.
    vrrpfw writes only into INPUT and OUTPUT, so only those count as allowing
    VRRP; ``anywhere`` (for close) also finds its lines moved into another
    chain, the direction following from -i/-o."""
    s = line.strip()
    if not s.startswith(("-A ", "--append ")) or COMMENT not in s:
        return None
    try:
        tokens = shlex.split(s)
    except ValueError:
        return None
    if len(tokens) < 2:
        return None
    chain = tokens[1]
    opts = _options(tokens[2:])
    if opts.get("--comment") != COMMENT or opts.get("-j") != "ACCEPT":
        return None
    if (chain == "INPUT" or anywhere) and "-i" in opts and "-o" not in opts:
        direction, iface = Direction.IN, opts["-i"]
    elif (chain == "OUTPUT" or anywhere) and "-o" in opts and "-i" not in opts:
        direction, iface = Direction.OUT, opts["-o"]
    else:
        return None
    rule = VrrpRule.from_match(direction, iface, *_match_fields(opts))
    return rule.key if rule is not None else None


# -p as iptables-save 1.8 prints it (a name from /etc/protocols) or as vrrpfw writes it
PROTOCOLS = {"112": VRRP_PROTO, "vrrp": VRRP_PROTO, "51": AH_PROTO, "ah": AH_PROTO}


def _match_fields(opts: Dict[str, str]) -> Tuple[int, Optional[str], str, Optional[int]]:
    """(proto, src, dst, ttl) of a parsed line, for VrrpRule.from_match:
    a form it does not know (no -d, a negation, another protocol, a ttl
    that is not ``--ttl-eq``/``--hl-eq``) comes back as proto 0, which it
    refuses."""
    proto = PROTOCOLS.get(opts.get("-p", "").lower(), 0)
    src = opts["-s"].split("/")[0] if "-s" in opts else None
    dst = opts.get("-d", "").split("/")[0]
    ttl: Optional[int] = None
    eq = opts.get("--ttl-eq", opts.get("--hl-eq"))
    if eq is not None:
        ttl = int(eq) if eq.isdigit() else -1
    if "!" in opts or any(k in opts for k in ("--ttl-lt", "--ttl-gt", "--hl-lt", "--hl-gt")):
        proto = 0
    return proto, src, dst, ttl


Placement = Tuple[str, str]  # (table, chain)
BUILTIN_CHAINS = {"raw": ("PREROUTING", "OUTPUT"),
                  "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
                  "filter": BUILTIN_FILTER_CHAINS, "security": ("INPUT", "FORWARD", "OUTPUT")}


def _chain_of(line: str) -> str:
    tokens = line.split()
    return tokens[1] if len(tokens) >= 2 else ""


def table_keys(doc: SaveFile, anywhere: bool = False) -> List[Tuple[int, str, str, Tuple[str, str, str]]]:
    """(line index, table, chain, key) of every vrrpfw line, in any table
    that can drop VRRP.  Outside filter, and with ``anywhere``, the chain
    need not be INPUT/OUTPUT (vrrpfw opens raw PREROUTING too)."""
    found = []
    for sec in doc.sections:
        if sec.name not in BUILTIN_CHAINS:
            continue
        for i in range(sec.start + 1, sec.commit):
            key = vrrpfw_line_key(doc.lines[i], anywhere or sec.name != "filter")
            if key is not None:
                found.append((i, sec.name, _chain_of(doc.lines[i]), key))
    return found


def filter_keys(doc: SaveFile, anywhere: bool = False) -> List[Tuple[int, Tuple[str, str, str]]]:
    """(line index, key) of every vrrpfw line in the *filter table."""
    return [(i, key) for i, table, _, key in table_keys(doc, anywhere) if table == "filter"]


def placed(doc: SaveFile) -> Set[Tuple[str, str, Tuple[str, str, str]]]:
    """(table, chain, key) of every vrrpfw line."""
    return {(table, chain, key) for _, table, chain, key in table_keys(doc, True)}


APPEND = ("-A", "--append")
INSERT = ("-I", "--insert")


def _rule_lines(doc: SaveFile, sec: Section, chain: str, verbs: Sequence[str]) -> List[int]:
    """Indices of the section's lines that add a rule to ``chain`` with one
    of ``verbs``, in file order (the order a restore applies them)."""
    out = []
    for i in range(sec.start + 1, sec.commit):
        tokens = doc.lines[i].split()
        if len(tokens) >= 2 and tokens[0] in verbs and tokens[1] == chain:
            out.append(i)
    return out


def _first_keys(doc: SaveFile, sec: Section, chain: str) -> Set[Tuple[str, str, str]]:
    """Keys of the vrrpfw lines that lead ``chain`` after a restore: the
    chain's first rules, up to the first rule that is not vrrpfw's.  A
    vrrpfw line below someone else's rule may be shadowed by it (a DROP),
    so it does not count as persisted."""
    keys = set()
    for i in _rule_lines(doc, sec, chain, APPEND):
        key = vrrpfw_line_key(doc.lines[i], anywhere=True)
        if key is None:
            break
        keys.add(key)
    return keys


def placeable(doc: SaveFile, table: str, chain: str) -> bool:
    """Can vrrpfw's line be made the first rule of ``chain`` at restore?
    Not in a table the file does not restore, nor in a chain the file fills
    with ``-I`` (an insert applied after vrrpfw's line would go above it)."""
    sec = doc.section(table)
    return (sec is not None and chain in BUILTIN_CHAINS.get(table, ())
            and not _rule_lines(doc, sec, chain, INSERT))


def add_rules(doc: SaveFile, rules: Sequence[VrrpRule],
              where: Optional[Dict[Tuple[str, str, str], Set[Placement]]] = None
              ) -> Tuple[str, List[Placement]]:
    """(text, unplaced): vrrpfw's line for each rule made the first rule of
    its chain (inserted before the chain's first rule, else before COMMIT;
    a line of ours found lower down is moved up): the rule's filter chain,
    or each (table, chain) ``where`` names for it (the chains vrrpfw
    opened at runtime).  A table the file has no section for is never
    added: the restorer flushes every table the file names, so a new
    ``*filter`` would wipe the admin's runtime filter rules and policies at
    the next restore.  Such placements, and chains the file fills with
    ``-I``, come back in ``unplaced``.  Lines are only inserted, never
    changed, so removing them gives the file back byte for byte."""
    todo: List[Tuple[VrrpRule, str, str]] = []
    unplaced: List[Placement] = []
    for r in rules:
        for table, chain in sorted(placements_for(r, where)):
            if not placeable(doc, table, chain):
                if (table, chain) not in unplaced:
                    unplaced.append((table, chain))
                continue
            sec = doc.section(table)
            assert sec is not None
            if r.key not in _first_keys(doc, sec, chain) and (r, table, chain) not in todo:
                todo.append((r, table, chain))
    inserts: Dict[int, List[str]] = {}
    drop: Set[int] = set()
    for r, table, chain in todo:
        sec = doc.section(table)
        assert sec is not None
        lines = _rule_lines(doc, sec, chain, APPEND)
        drop |= {i for i in lines if vrrpfw_line_key(doc.lines[i], anywhere=True) == r.key}
        inserts.setdefault(lines[0] if lines else sec.commit, []).append(rule_line(r, chain) + "\n")
    out: List[str] = []
    for i, line in enumerate(doc.lines):
        out.extend(inserts.get(i, []))
        if i not in drop:
            out.append(line)
    return "".join(out), unplaced


def placements_for(rule: VrrpRule, where: Optional[Dict[Tuple[str, str, str], Set[Placement]]]
                   ) -> Set[Placement]:
    """The (table, chain)s a saved file must open for ``rule``."""
    return (where or {}).get(rule.key) or {("filter", rule.chain)}


def is_persisted(doc: SaveFile, rule: VrrpRule,
                 where: Optional[Dict[Tuple[str, str, str], Set[Placement]]] = None) -> bool:
    """After a restore of this file, does vrrpfw's line for ``rule`` lead
    every chain it needs (so nothing of the file's own drops it first)?"""
    for table, chain in placements_for(rule, where):
        sec = doc.section(table)
        if not placeable(doc, table, chain) or sec is None or rule.key not in _first_keys(doc, sec, chain):
            return False
    return True


def remove_rules(doc: SaveFile, keys: Optional[Sequence[Tuple[str, str, str]]],
                 anywhere: bool = False) -> str:
    """Text without vrrpfw's lines for ``keys`` (all of vrrpfw's if None)."""
    drop = {i for i, _, _, key in table_keys(doc, anywhere) if keys is None or key in keys}
    return "".join(line for i, line in enumerate(doc.lines) if i not in drop)


def check_family(rules: Sequence[VrrpRule], family: Family, path: str,
                 holds: Callable[[Family, Family], str]) -> None:
    """Refuse rules another family's file cannot hold: ``--persist-file``
    names one file of one family (an iptables-save file, one of ufw's).
    ``holds(family, other)`` words what the file holds and where the
    other family's rules belong."""
    other = [r for r in rules if r.family is not family]
    if other:
        raise InputError(f"--persist-file {path} holds {holds(family, other[0].family)}: run vrrpfw once per "
                         "family (--family) with its own --persist-file")
