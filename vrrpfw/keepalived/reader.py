"""Read keepalived.conf files into keepalived's lines and block tree.

Split from :mod:`vrrpfw.keepalived.conf` (which interprets the tree) so that
reading files (bounded), following includes, lexing and the block tree are
checked on their own against keepalived's parser (lib/parser.c).  Pure logic
except reading files; the quoting helpers hide what the invoking user cannot
read (see vrrpfw.host.invoker).

1. the **lexer** reads a file the way keepalived's ``read_line`` does: ``#``
   and ``!`` start a comment anywhere outside double quotes (``\\#`` and
   ``\\!`` are the characters themselves); ``include PATTERN`` is expanded
   where it stands; a line is cut before and after every ``{`` and ``}``
   outside quotes, so ``virtual_ipaddress { 192.0.2.1 }`` on one line is the
   same as three lines; a ``"quoted string"`` is one word without its quotes;
2. the **block tree** attaches every ``{ ... }`` to the statement before it,
   on the same line or the next, and refuses unbalanced braces.

* ``include PATTERN``: glob(3) with ``{a,b}`` braces; a relative pattern is
  relative to the directory of the file that contains it (keepalived chdir()s
  into the directory of each file whose name has a ``/`` while reading it).
  Matches are read in sorted order; directories and executable files are
  skipped by keepalived (so here too, with a note).  A pattern with wildcards
  that matches nothing is a note (an empty ``conf.d`` is normal); a plain path
  that does not exist is an error here (keepalived only logs it, but vrrpfw
  would silently open nothing for the instances it meant to hold).  Include
  loops (which keepalived would follow until it runs out of file handles) are
  refused.

Not supported (refused with an error rather than misread): multi-line
``$NAME=...\\`` definitions and ``~SEQ``.  Lines starting ``@ID`` depend on
keepalived's ``-i`` config id, which vrrpfw does not know: they are skipped
with a note.  Simple ``$NAME=value`` definitions and ``$NAME``/``${NAME}``
uses are expanded.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from vrrpfw.record import field, record

from ..errors import InputError
from ..host import invoker
from ..host.bounded_read import MiB, ReadRefused, read_regular

# Reads are bounded (keepalived configurations are a few KiB): each file,
# all files together, and the number of reads, counting a file included
# twice twice (25 files that each include the next twice are 2^25 reads).
MAX_FILE_BYTES = 1 * MiB
MAX_TOTAL_BYTES = 8 * MiB
MAX_READS = 256
MAX_GLOB_MATCHES = 256  # files one include line may expand to


@record(frozen=True)
class Where:
    path: str
    line: int
    # The line holds a $NAME definition's value from a file the invoking
    # user cannot read: messages about it quote nothing.
    hidden: bool = field(default=False, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def _fail(where: Where, message: str) -> InputError:
    return InputError(f"{where}: {message}")


def _may_quote(where: Where) -> bool:
    return not where.hidden and invoker.may_quote(where.path)


def _q(where: Where, text: str) -> str:
    """``text`` (from the file at ``where``) quoted, or a placeholder where
    the invoking user could not read that file (see vrrpfw.host.invoker)."""
    return repr(text) if _may_quote(where) else invoker.NOT_SHOWN


def _reason(where: Where, error: Exception, generic: str) -> str:
    """``error``'s message (which may quote the file) or ``generic``."""
    return str(error) if _may_quote(where) else generic


def _show(where: Where, text: str) -> str:
    """Like :func:`_q`, unquoted (a name in running text)."""
    return text if _may_quote(where) else "(name not shown)"


def _show_match(where: Where, match: str) -> str:
    """A name a glob found: listing its directory needs read permission on
    it, which the including file's readability does not give."""
    listable = invoker.may_quote(os.path.dirname(os.path.abspath(match)))
    return _show(where, match) if listable else "(name not shown)"


def shown(where: Where, text: str) -> str:
    """A name from the file at ``where`` for a message built elsewhere (the
    request): the name, or a placeholder where the invoking user could not
    read that file."""
    return _show(where, text)


# ---------------------------------------------------------------- lexer

@record(frozen=True)
class _Line:
    """One keepalived "line": the words between line ends and braces."""

    words: Tuple[str, ...]
    where: Where


_GLOB_MAGIC = re.compile(r"[*?\[]")
_DEF_NAME = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_DEF_USE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _decomment(text: str) -> str:
    """Cut the comment: ``#`` or ``!`` outside double quotes; ``\\#`` and
    ``\\!`` outside quotes stand for the character itself."""
    out: List[str] = []
    quote = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quote = not quote
        elif ch == "\\" and i + 1 < len(text):
            if not quote and text[i + 1] in "#!":
                out.append(text[i + 1])
            else:
                out.append(text[i:i + 2])
            i += 2
            continue
        elif ch in "#!" and not quote:
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def _split_braces(text: str) -> List[str]:
    """Cut before and after each ``{`` / ``}`` outside quotes, as keepalived's
    read_line does, so a block may open and close on any line."""
    parts: List[str] = []
    cur: List[str] = []
    quote = False
    for ch in text:
        if ch == '"':
            quote = not quote
        if ch in "{}" and not quote:
            parts.extend(["".join(cur), ch])
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _words(text: str, where: Where) -> Tuple[str, ...]:
    """Whitespace-separated words; a ``"quoted string"`` is one word."""
    out: List[str] = []
    for m in re.finditer(r'"([^"]*)"|([^\s"]+)|(")', text):
        if m.group(3) is not None:
            raise _fail(where, f"unterminated quote in {_q(where, text)}")
        out.append(m.group(1) if m.group(1) is not None else m.group(2))
    return tuple(out)


class _TooManyPatterns(Exception):
    pass


def _expand_braces(pattern: str, limit: int = 0) -> List[str]:
    """glob(3)'s GLOB_BRACE, which keepalived asks for: ``a{b,c}d``.  With
    ``limit``, _TooManyPatterns past that many patterns (each ``{a,b}``
    doubles them: twenty are a million)."""
    todo, out = [pattern], []
    while todo:
        p = todo.pop()
        m = re.search(r"\{([^{}]*)\}", p)
        if not m:
            out.append(p)
        else:
            todo.extend(p[:m.start()] + alt + p[m.end():] for alt in reversed(m.group(1).split(",")))
        if limit and len(out) + len(todo) > limit:
            raise _TooManyPatterns()
    return out


@record
class _Reader:
    """Reads files into keepalived lines, following includes."""

    files: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    defs: Dict[str, Tuple[str, str]] = field(default_factory=dict)  # name -> (value, file)
    stack: List[str] = field(default_factory=list)
    reads: int = 0
    total_bytes: int = 0

    def read_file(self, path: str, where: Optional[Where]) -> List[_Line]:
        def fail(msg: str) -> InputError:
            return _fail(where, msg) if where else InputError(msg)

        # An included path is text of the including file: shown as that file is.
        shown = _show(where, path) if where else path

        real = os.path.realpath(path)
        if real in self.stack:
            assert where is not None
            raise _fail(where, f"include loop: {shown} is already being read")
        self.reads += 1
        if self.reads > MAX_READS:
            raise fail(f"cannot read {shown}: more than {MAX_READS} file reads (includes), "
                       "vrrpfw's limit for a keepalived configuration")
        limit = min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - self.total_bytes)
        try:
            data = read_regular(path, limit)
        except ReadRefused as e:
            if e.too_large and limit < MAX_FILE_BYTES:
                raise fail(f"cannot read {shown}: the configuration's files together are larger than "
                           f"{MAX_TOTAL_BYTES} bytes, vrrpfw's limit") from None
            why = f"{e} (vrrpfw's limit for one file)" if e.too_large else str(e)
            raise fail(f"cannot read {shown}: it {why}") from None
        except OSError as e:
            raise fail(f"cannot read {shown}: {e.strerror or e}") from None
        self.total_bytes += len(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise fail(f"cannot read {shown}: not UTF-8 text") from None
        self.files.append(path)
        self.stack.append(real)
        try:
            return self.read_text(text, path)
        finally:
            self.stack.pop()

    def read_text(self, text: str, path: str) -> List[_Line]:
        lines: List[_Line] = []
        for number, raw in enumerate(text.splitlines(), 1):
            where = Where(path, number)
            line = _decomment(raw)
            if not line:
                continue
            if line.startswith("@"):
                self.notes.append(f"{where}: skipped {_q(where, line.split()[0])} line: it depends on "
                                  "keepalived's -i config id, which vrrpfw does not know")
                continue
            if line.startswith("~SEQ"):
                raise _fail(where, "~SEQ is not supported by vrrpfw")
            m = _DEF_NAME.match(line)
            if m:
                value = m.group(2).strip()
                if value.endswith("\\"):
                    raise _fail(where, "multi-line definitions ($NAME=...\\) are not supported by vrrpfw")
                self.defs[m.group(1)] = (value, path)
                continue
            if "$" in line and self.defs:
                used = [self.defs[n] for u in _DEF_USE.finditer(line) for n in u.groups() if n in self.defs]
                line = _DEF_USE.sub(lambda u: self.defs.get(u.group(1) or u.group(2), (u.group(0), ""))[0],
                                    line)
                if any(not invoker.may_quote(src) for _, src in used if src != path):
                    where = Where(path, number, hidden=True)
            words = _words(line, where)
            if len(words) == 2 and words[0] == "include":
                lines.extend(self.include(words[1], path, where))
                continue
            for part in _split_braces(line):
                lines.append(_Line(_words(part, where), where))
        return lines

    def include(self, pattern: str, path: str, where: Where) -> List[_Line]:
        base = os.path.dirname(path) if "/" in path else ""
        full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
        matches: List[str] = []
        try:
            patterns = _expand_braces(full, MAX_GLOB_MATCHES)
        except _TooManyPatterns:
            raise _fail(where, f"include {_show(where, pattern)} expands to more than {MAX_GLOB_MATCHES} "
                        "patterns, vrrpfw's limit") from None
        for p in patterns:
            found = sorted(glob.glob(p)) if _GLOB_MAGIC.search(p) else ([p] if os.path.lexists(p) else [])
            matches.extend(found)
            if len(matches) > MAX_GLOB_MATCHES:
                break
        if not matches:
            if any(_GLOB_MAGIC.search(p) for p in _expand_braces(pattern, MAX_GLOB_MATCHES)):
                self.notes.append(f"{where}: include {_show(where, pattern)}: no file matches "
                                  "(keepalived skips it)")
                return []
            raise _fail(where, f"include {_show(where, pattern)}: cannot read {_show(where, full)}: "
                        "No such file or directory")
        if len(matches) > MAX_GLOB_MATCHES:
            raise _fail(where, f"include {_show(where, pattern)} matches {len(matches)} files, more than "
                        f"vrrpfw's limit of {MAX_GLOB_MATCHES}")
        lines: List[_Line] = []
        for m in matches:
            if os.path.isdir(m):
                self.notes.append(f"{where}: include {_show(where, pattern)}: {_show_match(where, m)} "
                                  "is a directory "
                                  "(keepalived skips it)")
                continue
            if os.path.isfile(m) and os.stat(m).st_mode & 0o111:
                self.notes.append(f"{where}: include {_show(where, pattern)}: {_show_match(where, m)} "
                                  "is executable "
                                  "(keepalived skips it)")
                continue
            lines.extend(self.read_file(m, where))
        return lines


# ----------------------------------------------------------- block tree

@record
class _Node:
    words: Tuple[str, ...]
    where: Where
    block: Optional[List[_Node]] = None

    @property
    def key(self) -> str:
        return self.words[0]

    def arg(self, what: str) -> str:
        if len(self.words) < 2:
            raise _fail(self.where, f"{_show(self.where, self.key)} needs {what}")
        return self.words[1]


def _tree(lines: Sequence[_Line]) -> List[_Node]:
    """Attach each ``{ ... }`` to the statement before it."""
    root: List[_Node] = []
    stack: List[Tuple[List[_Node], Where]] = [(root, Where("", 0))]
    for line in lines:
        level = stack[-1][0]
        if line.words == ("{",):
            if not level or level[-1].block is not None:
                raise _fail(line.where, "unbalanced braces: '{' does not follow a keyword")
            level[-1].block = []
            stack.append((level[-1].block, line.where))
        elif line.words == ("}",):
            if len(stack) == 1:
                raise _fail(line.where, "unbalanced braces: '}' closes nothing")
            stack.pop()
        else:
            level.append(_Node(line.words, line.where))
    if len(stack) > 1:
        raise _fail(stack[-1][1], "unbalanced braces: this '{' is never closed")
    return root
