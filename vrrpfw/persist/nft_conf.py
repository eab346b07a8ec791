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
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ..errors import PersistFileError
from ..host.bounded_read import MiB, ReadRefused, read_regular
from ..host.invoker import show
from ..model import AH_PROTO, COMMENT, VRRP_PROTO, Direction, Family, Key, VrrpRule

BEGIN = "# BEGIN vrrpfw (managed by vrrpfw; `vrrpfw close` removes these lines)"
END = "# END vrrpfw"
# The file did not end in a newline: vrrpfw added one before its block and
# says so in the marker, so that close gives the file back byte for byte.
NO_EOL = " [newline added before]"
ChainId = Tuple[str, str, str]

# vrrpfw's line, every shape (see nft_matches); parsed loosely, then
# accepted only where vrrpfw would write exactly that line.
_LINE = re.compile(
    r'^insert rule (\S+) (\S+) (\S+) (iifname|oifname) "([^"]+)" (?:ip6? saddr (\S+) )?'
    r'ip6? daddr (\S+) (?:(?:ip ttl|ip6 hoplimit) (\d+) )?(?:ip protocol|meta l4proto) (\S+) '
    r'counter accept comment "' + COMMENT + '"$')
PROTO_NAMES = {VRRP_PROTO: "vrrp", AH_PROTO: "ah"}
PROTO_NUMBERS = {name: number for number, name in PROTO_NAMES.items()}


def nft_matches(rule: VrrpRule) -> List[Tuple[Dict[str, Any], Any, str]]:
    """(left expression, value, nft text) of each condition of vrrpfw's nft
    rule, in the order nft lists them back.  IPv4 keeps the form older
    vrrpfw wrote (``ip daddr G ip protocol vrrp``); IPv6 matches the
    upper-layer protocol with ``meta l4proto`` (iptables-nft's own form),
    which the ``ip6 daddr`` before it confines to IPv6."""
    v6 = rule.family is Family.IPV6
    fam = "ip6" if v6 else "ip"
    key = "iifname" if rule.direction is Direction.IN else "oifname"
    out: List[Tuple[Dict[str, Any], Any, str]] = [
        ({"meta": {"key": key}}, rule.interface, f'{key} "{rule.interface}"')]
    if rule.src is not None:
        out.append(({"payload": {"protocol": fam, "field": "saddr"}}, rule.src, f"{fam} saddr {rule.src}"))
    out.append(({"payload": {"protocol": fam, "field": "daddr"}}, rule.dst, f"{fam} daddr {rule.dst}"))
    if rule.ttl is not None:
        field = "hoplimit" if v6 else "ttl"
        out.append(({"payload": {"protocol": fam, "field": field}}, rule.ttl, f"{fam} {field} {rule.ttl}"))
    proto = PROTO_NAMES[rule.proto]
    if v6:
        out.append(({"meta": {"key": "l4proto"}}, proto, f"meta l4proto {proto}"))
    else:
        out.append(({"payload": {"protocol": "ip", "field": "protocol"}}, proto, f"ip protocol {proto}"))
    return out


def rule_text(rule: VrrpRule) -> str:
    """vrrpfw's rule in nft syntax, without the chain."""
    words = [text for _, _, text in nft_matches(rule)]
    return " ".join(words) + f' counter accept comment "{COMMENT}"'


def insert_line(rule: VrrpRule, chain: ChainId) -> str:
    return f"insert rule {chain[0]} {chain[1]} {chain[2]} {rule_text(rule)}"


def parse_line(line: str) -> Optional[Tuple[VrrpRule, ChainId]]:
    """The rule and chain of one of vrrpfw's lines (any version's), or None
    for any other line."""
    text = line.strip()
    m = _LINE.match(text)
    if not m:
        return None
    direction = Direction.IN if m.group(4) == "iifname" else Direction.OUT
    proto = PROTO_NUMBERS.get(m.group(9))
    if proto is None:
        return None
    rule = VrrpRule.from_match(direction, m.group(5), proto, m.group(6), m.group(7),
                               int(m.group(8)) if m.group(8) else None)
    chain = (m.group(1), m.group(2), m.group(3))
    if rule is None or insert_line(rule, chain) != text:
        return None  # an edited line: not exactly what vrrpfw writes
    return rule, chain


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
        parsed = parse_line(line)
        if parsed is not None:
            out.append((parsed[0].key, parsed[1]))
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
        parsed = parse_line(line)
        if parsed is not None and (drop is None or parsed[0].key in drop):
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
    return _scan(_strip_comments(text))[0]


Frames = List[Tuple[str, ...]]  # the blocks open at a point: ("table", family, name), ("chain", name)...


def _scan(text: str, marks: Sequence[int] = ()) -> Tuple[List[Tuple[ChainId, str]], List[Frames]]:
    """:func:`defined_chains` of comment-free ``text``, and for each
    offset of ``marks`` (ascending) the blocks open there (an include there
    is read inside them), in one pass."""
    found: List[Tuple[ChainId, str]] = []
    stack: Frames = []
    open_at: List[Frames] = []
    for m in _TOKENS.finditer(text):
        while len(open_at) < len(marks) and marks[len(open_at)] <= m.start():
            open_at.append(list(stack))
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
    open_at += [list(stack) for _ in marks[len(open_at):]]
    return found, open_at


def _reopened(stack: Frames) -> str:
    """The headers of the blocks ``stack`` holds open, as text: an included
    file is parsed where its include line is (``table inet filter {
    include "chains.nft" }`` defines chains of inet filter)."""
    heads = {"flat": lambda f: f"add chain {f[1]} {f[2]} {f[3]} {{",
             "table": lambda f: f"table {f[1]} {f[2]} {{",
             "chain": lambda f: f"chain {f[1]} {{", "brace": lambda f: "{"}
    return "".join(heads[f[0]](f) + "\n" for f in stack)


def _innermost_chain(stack: List[Tuple[str, ...]]) -> Optional[ChainId]:
    for frame in reversed(stack):
        if frame[0] == "flat":
            return (frame[1], frame[2], frame[3])
        if frame[0] == "chain":
            tables = [f for f in stack if f[0] == "table"]
            return (tables[-1][1], tables[-1][2], frame[1]) if tables else None
    return None


_INCLUDE = re.compile(r'(?:^|[{;])[ \t]*include\s+"([^"]+)"', re.M)


MAX_INCLUDE_READS = 256  # files read following includes, each read counted
MAX_INCLUDE_BYTES = 64 * MiB  # one included file

# Where nft looks for an included file (nftables' src/scanner.l,
# scanner_include_file; measured with nft 1.0.6): a name starting with "/"
# as given; one starting with "./" or "../" relative to nft's working
# directory, which is / for nftables.service (and for vrrpfw's ``nft -c``,
# see restorers.py), never the including file's directory; any other name
# only in the include path, which without -I (nftables.service passes none)
# is DEFAULT_INCLUDE_PATH, the build's sysconfdir: /etc on Debian and RHEL.
NFT_INCLUDE_PATH = "/etc"
NFT_CWD = "/"
_WILDCARDS = set("*?[")


def include_pattern(pattern: str, root: str = "/") -> str:
    """The path (a glob where ``pattern`` has one) nft opens for
    ``include "pattern"``, below ``root`` (a test's fake /)."""
    import os

    if pattern.startswith("/"):
        where = pattern
    elif pattern.startswith(("./", "../")):
        where = os.path.join(NFT_CWD, pattern)
    else:
        where = os.path.join(NFT_INCLUDE_PATH, pattern)
    where = os.path.normpath(where)
    if where.startswith("//"):  # normpath keeps a leading "//"
        where = "/" + where.lstrip("/")
    return where if root == "/" else os.path.join(root, where.lstrip("/"))


def _not_found(pattern: str) -> str:
    if pattern.startswith("/"):
        return "no such file"
    if pattern.startswith(("./", "../")):
        return f"no such file from {NFT_CWD}, where nftables.service runs nft (not beside the including file)"
    return f"no such file in nft's include path {NFT_INCLUDE_PATH} (not beside the including file)"


def defined_chains_in(path: str, text: str, depth: int = 0,
                      budget: Optional[List[int]] = None, root: str = "/") -> List[Tuple[ChainId, str]]:
    """Like :func:`defined_chains`, following ``include`` lines, because
    vrrpfw's block runs after them and may insert into their chains.  An
    include is resolved as nft resolves it (:func:`include_pattern`), with
    globs, in sorted order, and read where its line is: inside the table
    (or chain) blocks open there.  A directory is skipped (as nft does, named or
    matched); a name without wildcards that matches nothing is a
    PersistFileError (nft refuses the file: "File not found"), a glob that
    matches nothing is not.  An include that is not a regular file (a FIFO
    would block, /dev/zero never ends), is larger than 64 MiB, or more than
    256 reads in all, is a PersistFileError; one that cannot be opened is
    skipped as before."""
    import glob
    import os

    budget = [0] if budget is None else budget
    found = defined_chains(text)
    if depth > 8:
        return found
    stripped = _strip_comments(text)
    includes = list(_INCLUDE.finditer(stripped))
    open_at = _scan(stripped, [m.start(1) for m in includes])[1]
    for include, stack in zip(includes, open_at):
        pattern = include.group(1)
        full = include_pattern(pattern, root)
        matches = sorted(glob.glob(full))
        if not matches and not _WILDCARDS & set(pattern):
            raise PersistFileError(f"{path}: include {show(path, pattern)}: {_not_found(pattern)}; "
                                   "nft -f would not load it")
        for inc in matches:
            budget[0] += 1
            if budget[0] > MAX_INCLUDE_READS:
                raise PersistFileError(f"{path}: include {show(path, pattern)}: more than "
                                       f"{MAX_INCLUDE_READS} file reads following includes, vrrpfw's limit")
            try:
                data = read_regular(inc, MAX_INCLUDE_BYTES)
            except ReadRefused as e:
                if os.path.isdir(inc):
                    continue  # as nft's include skips directories
                raise PersistFileError(f"{path}: include {show(path, pattern)}: {show(path, inc)} {e}; "
                                       "nft -f would not load it") from None
            except OSError:
                continue
            inner = data.decode("latin-1")
            if stack:  # read inside the blocks open at the include line, as nft reads it
                inner = _reopened(stack) + inner + "\n" + "}\n" * len(stack)
            found += defined_chains_in(inc, inner, depth + 1, budget, root)
    return found
