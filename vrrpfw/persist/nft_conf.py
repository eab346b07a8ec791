"""Keep vrrpfw's rules in an nftables ruleset file, e.g. /etc/nftables.conf.

Such files usually start with ``flush ruleset`` and then define whole
tables, so a rule added at runtime is lost on the next ``nft -f``.  Rather
than rewrite the admin's chain definitions, vrrpfw appends one marked block
of ``insert rule`` commands at the end of the file: ``nft -f`` runs after
the tables are defined, in the same transaction, and puts each rule at the
top of its chain.  Everything outside the block is kept byte for byte.
Pure text handling here; loading and validation (``nft -c -f``) live with
the backend.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Set, Tuple

from ..model import COMMENT, Direction, VrrpRule

BEGIN = "# BEGIN vrrpfw (managed by vrrpfw; `vrrpfw close` removes these lines)"
END = "# END vrrpfw"
# The file did not end in a newline: vrrpfw added one before its block and
# says so in the marker, so that close gives the file back byte for byte.
NO_EOL = " [newline added before]"
ChainId = Tuple[str, str, str]
Key = Tuple[str, str, str]

_LINE = re.compile(
    r'^insert rule (\S+) (\S+) (\S+) (iifname|oifname) "([^"]+)" ip daddr (\S+) '
    r'ip protocol vrrp counter accept comment "' + COMMENT + '"$')


def insert_line(rule: VrrpRule, chain: ChainId) -> str:
    key = "iifname" if rule.direction is Direction.IN else "oifname"
    return (f'insert rule {chain[0]} {chain[1]} {chain[2]} {key} "{rule.interface}" '
            f'ip daddr {rule.group} ip protocol vrrp counter accept comment "{COMMENT}"')


def split(text: str) -> Tuple[str, List[str], str]:
    """(text before the block, block lines, text after the block).  The
    block is the first END marker with a BEGIN before it, and the nearest
    such BEGIN: a BEGIN line left without its END is the admin's text."""
    lines = text.splitlines(keepends=True)
    marks = [line.rstrip("\r\n") for line in lines]
    start = None
    for i, mark in enumerate(marks):
        if mark in (BEGIN, BEGIN + NO_EOL):
            start = i
        elif mark == END and start is not None:
            body = marks[start + 1:i]
            before = "".join(lines[:start])
            if marks[start].endswith(NO_EOL) and before.endswith("\n"):
                before = before[:-1]
            return before, body, "".join(lines[i + 1:])
    return text, [], ""


def entries(text: str) -> List[Tuple[Key, ChainId]]:
    out = []
    for line in split(text)[1]:
        m = _LINE.match(line.strip())
        if m:
            direction = Direction.IN.value if m.group(4) == "iifname" else Direction.OUT.value
            out.append(((direction, m.group(5), m.group(6)), (m.group(1), m.group(2), m.group(3))))
    return out


def keys(text: str) -> Set[Key]:
    return {k for k, _ in entries(text)}


def with_lines(text: str, wanted: Sequence[Tuple[VrrpRule, ChainId]]) -> str:
    before, body, after = split(text)
    lines = [line for line in body if line.strip()]
    for rule, chain in wanted:
        line = insert_line(rule, chain)
        if line not in lines:
            lines.append(line)
    return _join(before, lines, after)


def without_keys(text: str, drop: Optional[Sequence[Key]]) -> str:
    before, body, after = split(text)
    kept = []
    for line in body:
        m = _LINE.match(line.strip())
        if m:
            direction = Direction.IN.value if m.group(4) == "iifname" else Direction.OUT.value
            if drop is None or (direction, m.group(5), m.group(6)) in drop:
                continue
        if line.strip():
            kept.append(line)
    return _join(before, kept, after)


def _join(before: str, lines: List[str], after: str) -> str:
    if not lines:
        return before + after
    begin = BEGIN
    if before and not before.endswith("\n"):
        before, begin = before + "\n", BEGIN + NO_EOL
    return before + begin + "\n" + "".join(line + "\n" for line in lines) + END + "\n" + after


_FAMILY = r"(?:(ip|ip6|inet|arp|bridge|netdev)\s+)?"
_TOKENS = re.compile(
    r"\b(?:add|create)\s+chain\s+" + _FAMILY + r"([\w.-]+)\s+([\w.-]+)\s*\{"  # flat syntax
    r"|\btable\s+" + _FAMILY + r"([\w.-]+)\s*\{"
    r"|\bchain\s+([\w.-]+)\s*\{"
    r"|\btype\s+filter\s+hook\s+(ingress|prerouting|input|output|postrouting|egress)\b"
    r"|[{}]")


def _strip_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        quoted, cut = False, len(line)
        for i, ch in enumerate(line):
            if ch == '"':
                quoted = not quoted
            elif ch == "#" and not quoted:
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def defined_chains(text: str) -> List[Tuple[ChainId, str]]:
    """(chain, hook) of the filter base chains on the hooks VRRP crosses
    that the text defines, in block syntax (``table ... { chain ... {``)
    or flat syntax (``add chain inet filter input { type filter hook ...``).
    See :func:`defined_chains_in` for includes."""
    found: List[Tuple[ChainId, str]] = []
    stack: List[Tuple[str, ...]] = []
    for m in _TOKENS.finditer(_strip_comments(text)):
        if m.group(3):
            stack.append(("flat", m.group(1) or "ip", m.group(2), m.group(3)))
        elif m.group(5):
            stack.append(("table", m.group(4) or "ip", m.group(5)))
        elif m.group(6):
            stack.append(("chain", m.group(6)))
        elif m.group(7):
            chain = _innermost_chain(stack)
            if chain is not None:
                found.append((chain, m.group(7)))
        elif m.group(0) == "{":
            stack.append(("brace",))
        elif stack:
            stack.pop()
    return found


def _innermost_chain(stack: List[Tuple[str, ...]]) -> Optional[ChainId]:
    for frame in reversed(stack):
        if frame[0] == "flat":
            return (frame[1], frame[2], frame[3])
        if frame[0] == "chain":
            tables = [f for f in stack if f[0] == "table"]
            return (tables[-1][1], tables[-1][2], frame[1]) if tables else None
    return None


_INCLUDE = re.compile(r'^\s*include\s+"([^"]+)"', re.M)


def defined_chains_in(path: str, text: str, depth: int = 0) -> List[Tuple[ChainId, str]]:
    """Like :func:`defined_chains`, following ``include`` lines (globs,
    relative to the including file), because vrrpfw's block runs after
    them and may insert into their chains."""
    import glob
    import os

    found = defined_chains(text)
    if depth > 8:
        return found
    base = os.path.dirname(os.path.abspath(path))
    for pattern in _INCLUDE.findall(_strip_comments(text)):
        full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
        for inc in sorted(glob.glob(full)):
            try:
                with open(inc, encoding="latin-1") as f:
                    found += defined_chains_in(inc, f.read(), depth + 1)
            except OSError:
                continue
    return found
