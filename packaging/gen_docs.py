#!/usr/bin/env python3
"""Write vrrpfw's man page and shell completion files from the CLI itself.

    python3 packaging/gen_docs.py OUTDIR

writes ``OUTDIR/vrrpfw.8`` (groff, section 8), ``OUTDIR/vrrpfw.bash``
(bash-completion) and ``OUTDIR/_vrrpfw`` (zsh, for ``$fpath``).  Run at
package build time by any python3 with typer (Debian 12's python3-typer
0.7 up to the newest), from the repository root or with the repository
on ``PYTHONPATH``.

Nothing is written twice: the man page walks the click command tree that
``vrrpfw`` runs (:func:`vrrpfw.cli.build_command`), so every command's
description and every option's line (metavar, choices, default) is the
one ``--help`` prints; exit codes, environment and saved files come from
:mod:`vrrpfw.cli.help_text`, which renders the same text into ``--help``; the
completion scripts are :mod:`vrrpfw.cli.completion`'s, which answers them.
The only difference from ``--help``: the man page is built on another
host, so ``--persist-file`` gets the generic text and FILES lists every
distribution's saved files.  ``SOURCE_DATE_EPOCH`` dates the page
(reproducible builds; dpkg-buildpackage sets it); without it, today.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import time
from typing import Any, Iterable, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from vrrpfw import __version__  # noqa: E402
from vrrpfw.cli import completion as cli_complete  # noqa: E402
from vrrpfw.cli import entry as cli  # noqa: E402
from vrrpfw.cli import help_text as cli_help  # noqa: E402
from vrrpfw.cli import options  # noqa: E402

SEE_ALSO = ("keepalived(8)", "keepalived.conf(5)", "iptables(8)", "ip6tables(8)", "nft(8)",
            "firewall-cmd(1)", "ufw(8)", "ip-netns(8)")


# ---------------------------------------------------------------- groff text

def esc(text: str) -> str:
    """Plain text as groff reads it literally: backslashes, minus signs
    (``-`` is a hyphen to groff; options need the ASCII minus), `code`
    in bold, and no line that starts with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    return text


def lines(text: str) -> List[str]:
    """Paragraph text as groff input lines of at most 80 bytes (groff fills
    them again), each safe at a line start."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == "\b":
            continue
        for piece in textwrap.wrap(esc(line), 78, break_long_words=False, break_on_hyphens=False):
            out.append("\\&" + piece if piece[:1] in (".", "'") else piece)
    return out


def paragraphs(text: str) -> List[str]:
    """Paragraphs, separated by .PP (none before the first: a heading
    starts one)."""
    out: List[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if para.strip():
            out += ([".PP"] if out else []) + lines(para)
    return out


def option_synopsis(decl: str) -> str:
    """``-i, --iface IFACE`` as ``\\fB\\-i\\fR, \\fB\\-\\-iface\\fR \\fIIFACE\\fR``."""
    out = []
    for part in decl.split(", "):
        name, _, metavar = part.partition(" ")
        item = f"\\fB{esc(name)}\\fR"
        if "|" in metavar:  # a fixed set of values: each one as typed
            item += " " + "|".join(f"\\fB{esc(v)}\\fR" for v in metavar.split("|"))
        elif metavar:
            item += f" \\fI{esc(metavar)}\\fR"
        out.append(item)
    return ", ".join(out)


def tagged(tag: str, text: str) -> List[str]:
    return [".TP", tag, *lines(text)]


# ---------------------------------------------------------------- the command tree

def _context(command: Any, name: str, parent: Any = None) -> Any:
    return command.context_class(command, info_name=name, parent=parent)


def option_records(command: Any, ctx: Any) -> List[Tuple[str, str]]:
    """Each visible option as --help prints it: (declaration, help)."""
    out = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            out.append((record[0], " ".join(record[1].split())))
    return out


def subcommands(group: Any, ctx: Any) -> List[Tuple[str, Any]]:
    """In the order the CLI declares them (open, check, close, ...), not
    sorted as some click versions list them."""
    return [(name, group.get_command(ctx, name)) for name in group.commands]


def exit_codes(command: str) -> List[str]:
    out = []
    for code, text in cli_help.EXIT_CODES[command]:
        out += tagged(f".B {code}", text)
    return out


def man_page(date: str) -> str:
    group = cli.build_command()
    ctx = _context(group, "vrrpfw")
    commands = subcommands(group, ctx)
    out: List[str] = [
        f'.TH VRRPFW 8 "{date}" "vrrpfw {__version__}" "System Administration"',
        ".SH NAME",
        "vrrpfw \\- open a Linux host's firewall for VRRP (keepalived)",
        ".SH SYNOPSIS",
        ".B vrrpfw",
        "[\\fB\\-\\-version\\fR] [\\fB\\-\\-help\\fR]",
        ".br",
    ]
    for name, _ in commands:
        out += [f".B vrrpfw {esc(name)}", "[\\fIOPTIONS\\fR]", ".br"]
    out.pop()
    out += [".SH DESCRIPTION", *paragraphs(group.help or "")]
    out.append(".SH COMMANDS")
    for name, command in commands:
        sub = _context(command, name, ctx)
        out += [f'.SS "vrrpfw {esc(name)} [OPTIONS]"', *paragraphs(command.help or "")]
        for decl, text in option_records(command, sub):
            out += tagged(option_synopsis(decl), text)
        out += [".PP", f"Exit status of \\fBvrrpfw {esc(name)}\\fR:", ".RS", *exit_codes(name), ".RE"]
    out += [".SH OPTIONS"]
    for decl, text in option_records(group, ctx):
        out += tagged(option_synopsis(decl), text)
    out += [".SH EXIT STATUS", *paragraphs("Each command lists its own above; in short:"),
            *exit_codes("vrrpfw")]
    out += [".SH FILES", *paragraphs(
        "The saved rulesets vrrpfw edits unless given --persist-file FILE or --no-persist, by "
        "distribution family (from /etc/os-release); `vrrpfw open --help` names this host's.")]
    for path, what in cli_help.saved_files_all():
        out += tagged(f".I {esc(path)}", what)
    out += tagged(f".I {esc(_state_file())}", options.STATE_HELP)
    out += [".SH ENVIRONMENT"]
    for name, text in cli_help.ENVIRONMENT:
        out += tagged(f".B {esc(name)}", text)
    out += [".SH SEE ALSO", ", ".join(f"\\fB{esc(p.split('(')[0])}\\fR({p.split('(')[1]}" for p in SEE_ALSO)]
    return "\n".join(out) + "\n"


def _state_file() -> str:
    from vrrpfw.persist.state import DEFAULT_STATE_FILE

    return DEFAULT_STATE_FILE


def page_date(environ: Optional[dict] = None) -> str:
    epoch = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH")
    return time.strftime("%Y-%m-%d", time.gmtime(int(epoch) if epoch else None))


# ---------------------------------------------------------------- main

def outputs(date: str) -> Iterable[Tuple[str, str]]:
    yield "vrrpfw.8", man_page(date)
    yield "vrrpfw.bash", cli_complete.script("bash")
    yield "_vrrpfw", cli_complete.script("zsh")


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: gen_docs.py OUTDIR  (writes OUTDIR/vrrpfw.8, vrrpfw.bash and _vrrpfw)", file=sys.stderr)
        return 2
    outdir = argv[0]
    os.makedirs(outdir, exist_ok=True)
    for name, text in outputs(page_date()):
        path = os.path.join(outdir, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
