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
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ..errors import PersistFileError
from ..model import COMMENT, Direction, VrrpRule

ENCODING = "latin-1"
BUILTIN_FILTER_CHAINS = ("INPUT", "FORWARD", "OUTPUT")


@dataclass
class Section:
    name: str
    start: int  # index of the "*name" line
    commit: int  # index of its COMMIT line
    chains: List[str] = field(default_factory=list)


@dataclass
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
    """Refuse anything iptables-restore would refuse at the structure level:
    rules outside a table, a table without COMMIT, stray lines."""
    lines = text.splitlines(keepends=True)
    sections: List[Section] = []
    current: Optional[Section] = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        where = f"{path}:{i + 1}"
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            if current is not None:
                raise PersistFileError(f"{where}: table {line} starts before {current.name} ends with COMMIT")
            name = line[1:].strip()
            if not name or " " in name:
                raise PersistFileError(f"{where}: bad table line {line!r}")
            current = Section(name, i, -1)
            continue
        if current is None:
            raise PersistFileError(f"{where}: {line[:40]!r} is outside any table (no '*filter' before it)")
        if line == "COMMIT":
            current.commit = i
            sections.append(current)
            current = None
        elif line.startswith(":"):
            current.chains.append(line[1:].split()[0] if line[1:].split() else "")
        elif line.startswith("-"):
            try:
                shlex.split(line)
            except ValueError as e:
                raise PersistFileError(f"{where}: cannot parse rule: {e}") from None
        else:
            raise PersistFileError(f"{where}: unexpected line {line[:40]!r}")
    if current is not None:
        raise PersistFileError(f"{path}: table *{current.name} has no COMMIT line")
    return SaveFile(lines, sections)


def rule_line(rule: VrrpRule, chain: Optional[str] = None) -> str:
    """The line vrrpfw writes (into ``chain``, by default the rule's filter
    chain).  Protocol as a number: ``-p vrrp`` would need an /etc/protocols
    entry at restore time, and a failed restore at boot leaves the host
    with no firewall at all."""
    flag = "-i" if rule.direction is Direction.IN else "-o"
    return (
        f"-A {chain or rule.chain} -d {rule.group}/32 {flag} {rule.interface} -p 112 "
        f"-m comment --comment {COMMENT} -j ACCEPT"
    )


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
    """(direction, interface, group) if the line is a vrrpfw rule, else None.
    vrrpfw writes only into INPUT and OUTPUT, so only those count as allowing
    VRRP; ``anywhere`` (for close) also finds its lines moved into another
    chain, the direction following from -i/-o."""
    s = line.strip()
    if not s.startswith("-A ") or COMMENT not in s:
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
    if opts.get("-p", "").lower() not in ("112", "vrrp"):
        return None
    group = opts.get("-d", "").split("/")[0]
    if (chain == "INPUT" or anywhere) and "-i" in opts and "-o" not in opts:
        return (Direction.IN.value, opts["-i"], group)
    if (chain == "OUTPUT" or anywhere) and "-o" in opts and "-i" not in opts:
        return (Direction.OUT.value, opts["-o"], group)
    return None


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


def _eol(doc: SaveFile) -> str:
    for line in doc.lines:
        if line.endswith("\r\n"):
            return "\r\n"
        if line.endswith("\n"):
            return "\n"
    return "\n"


def add_rules(doc: SaveFile, rules: Sequence[VrrpRule],
              where: Optional[Dict[Tuple[str, str, str], Set[Placement]]] = None) -> str:
    """Text with each missing rule inserted at the top of its chain: the
    rule's filter chain, or each (table, chain) ``where`` names for it (the
    chains vrrpfw opened at runtime)."""
    present = placed(doc)
    todo: List[Tuple[VrrpRule, str, str]] = []
    for r in rules:
        for table, chain in sorted((where or {}).get(r.key) or {("filter", r.chain)}):
            if (table, chain, r.key) not in present and (r, table, chain) not in todo:
                todo.append((r, table, chain))
    if not todo:
        return doc.text()
    lines = list(doc.lines)
    eol = _eol(doc)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += eol
    inserts: Dict[int, List[str]] = {}
    extra: Dict[int, List[str]] = {}
    blocks: List[str] = []
    for table in dict.fromkeys(t for _, t, _ in todo):
        mine = [(r, c) for r, t, c in todo if t == table]
        sec = doc.section(table)
        if sec is None:
            blocks.append(f"*{table}" + eol)
            blocks += [f":{c} ACCEPT [0:0]" + eol for c in BUILTIN_CHAINS[table]]
            blocks += [rule_line(r, c) + eol for r, c in mine]
            blocks.append("COMMIT" + eol)
            continue
        # Insert each rule before the chain's first rule, else before COMMIT.
        for r, chain in mine:
            at = sec.commit
            for i in range(sec.start + 1, sec.commit):
                tokens = lines[i].split()
                if len(tokens) >= 2 and tokens[0] in ("-A", "-I") and tokens[1] == chain:
                    at = i
                    break
            inserts.setdefault(at, []).append(rule_line(r, chain) + eol)
        undeclared = [c for c in dict.fromkeys(c for _, c in mine) if c not in sec.chains]
        extra[sec.start + 1] = [f":{c} ACCEPT [0:0]" + eol for c in undeclared]
    out: List[str] = []
    for i, line in enumerate(lines):
        out.extend(extra.get(i, []))
        out.extend(inserts.get(i, []))
        out.append(line)
    return "".join(out + blocks)


def remove_rules(doc: SaveFile, keys: Optional[Sequence[Tuple[str, str, str]]],
                 anywhere: bool = False) -> str:
    """Text without vrrpfw's lines for ``keys`` (all of vrrpfw's if None)."""
    drop = {i for i, _, _, key in table_keys(doc, anywhere) if keys is None or key in keys}
    return "".join(line for i, line in enumerate(doc.lines) if i not in drop)
