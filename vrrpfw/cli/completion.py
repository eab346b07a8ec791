"""Shell completion from the command tree, the same on every typer.

The scripts (:func:`script`; ``_VRRPFW_COMPLETE=bash_source vrrpfw`` prints
bash's, ``zsh_source`` zsh's) call ``vrrpfw`` back on each TAB with
``_VRRPFW_COMPLETE=bash_complete`` (or ``zsh_complete``), ``COMP_WORDS``
(the words typed so far) and ``COMP_CWORD`` (the index of the one being
completed), as click's own bash protocol does.  The answer comes from
click's completion machinery (``ShellComplete.get_completions``: the
subcommands, options, and values of options with a fixed set of them),
one ``type,value`` line each.  vrrpfw's :func:`vrrpfw.cli.main` answers
that variable itself, before typer sees it: typer 0.7 reads it in its
own, reversed, format (``complete_bash``), typer >= 0.26 has its own
scripts and none of click's, so a script made with one typer would not be
understood by another; this one is vrrpfw's, for every typer.

Beyond click's own answers, options whose metavar says what they take
complete from the host: IFACE from /sys/class/net, NAME (``--netns``) from
/run/netns, ZONE from firewalld's zone files, FILE from the file system.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, TextIO, Tuple

from ..errors import InputError

COMPLETE_VAR = "_VRRPFW_COMPLETE"
PROG = "vrrpfw"
ZONE_DIRS = ("/etc/firewalld/zones", "/usr/lib/firewalld/zones")


def _shell_completion() -> Any:
    """typer >= 0.26 vendors click as typer._click; older typer uses click."""
    try:
        from typer._click import shell_completion
    except ImportError:
        from click import shell_completion  # type: ignore[no-redef]
    return shell_completion


def _names_in(directory: str, suffix: str = "") -> List[str]:
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    return sorted(e[:len(e) - len(suffix)] if suffix else e for e in entries if e.endswith(suffix))


def interfaces() -> List[str]:
    return _names_in("/sys/class/net")


def netns_names() -> List[str]:
    return _names_in("/run/netns")


def zones() -> List[str]:
    return sorted({z for d in ZONE_DIRS for z in _names_in(d, ".xml")})


def _words(source: Callable[[], List[str]]) -> Callable[[Any, Any, str], List[Any]]:
    def complete(_ctx: Any, _param: Any, incomplete: str) -> List[Any]:
        item = _shell_completion().CompletionItem
        return [item(w) for w in source() if w.startswith(incomplete)]

    return complete


def _files(_ctx: Any, _param: Any, incomplete: str) -> List[Any]:
    return [_shell_completion().CompletionItem(incomplete, type="file")]


# metavar -> how its values complete
BY_METAVAR: Dict[str, Callable[[Any, Any, str], List[Any]]] = {
    "IFACE": _words(interfaces),
    "NAME": _words(netns_names),
    "ZONE": _words(zones),
    "FILE": _files,
}


def attach(command: Any) -> None:
    """Give every option whose metavar names a host thing its completion."""
    for cmd in [command, *getattr(command, "commands", {}).values()]:
        for p in cmd.params:
            fn = BY_METAVAR.get(getattr(p, "metavar", None) or "")
            if fn is not None:
                p._custom_shell_complete = fn


BASH = r"""# bash completion for vrrpfw; `vrrpfw --help` for the options
_vrrpfw_completion() {
    local IFS=$'\n' line
    COMPREPLY=()
    for line in $(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD="$COMP_CWORD" \
                  _VRRPFW_COMPLETE=bash_complete "$1" 2>/dev/null); do
        case ${line%%,*} in
            file) COMPREPLY=(); compopt -o default; return 0 ;;
            plain) COMPREPLY+=("${line#*,}") ;;
        esac
    done
    return 0
}
complete -o nosort -F _vrrpfw_completion vrrpfw
"""

ZSH = r"""#compdef vrrpfw
# zsh completion for vrrpfw; `vrrpfw --help` for the options
_vrrpfw() {
    local line
    local -a plain
    for line in ${(f)"$(env COMP_WORDS="${words[1,CURRENT]}" COMP_CWORD=$((CURRENT - 1)) \
                        _VRRPFW_COMPLETE=zsh_complete vrrpfw 2>/dev/null)"}; do
        case ${line%%,*} in
            file) _files; return ;;
            plain) plain+=("${line#*,}") ;;
        esac
    done
    (( ${#plain} )) && compadd -Q -- "${plain[@]}"
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _vrrpfw "$@"  # autoloaded from $fpath
else
    compdef _vrrpfw vrrpfw  # sourced
fi
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH}


def script(shell: str) -> str:
    """The completion script for ``shell`` (bash or zsh)."""
    return SCRIPTS[shell]


def words_from_env(env: Dict[str, str]) -> Tuple[List[str], str]:
    """(the words before the one completed, that word so far) from
    ``COMP_WORDS``/``COMP_CWORD``; the program name is left out."""
    words = _shell_completion().split_arg_string(env.get("COMP_WORDS", ""))
    try:
        cword = int(env.get("COMP_CWORD", ""))
    except ValueError:
        raise InputError("COMP_CWORD must be the index of the word being completed") from None
    return words[1:cword], (words[cword] if 0 <= cword < len(words) else "")


def completions(command: Any, args: List[str], incomplete: str) -> List[Tuple[str, str]]:
    """[(type, value)]: click's answer for ``vrrpfw ARGS INCOMPLETE<TAB>``."""
    sc = _shell_completion()

    class Answer(sc.ShellComplete):  # type: ignore[misc,name-defined]
        name = "vrrpfw"
        source_template = ""

        def source_vars(self) -> Dict[str, Any]:
            return {}

        def get_completion_args(self) -> Tuple[List[str], str]:
            return args, incomplete

        def format_completion(self, item: Any) -> str:
            return f"{item.type},{item.value}"

    items = Answer(command, {}, PROG, COMPLETE_VAR).get_completions(args, incomplete)
    return [(item.type, item.value) for item in items]


def complete(command: Any, instruction: str, out: TextIO, env: Optional[Dict[str, str]] = None) -> int:
    """Answer ``_VRRPFW_COMPLETE=<shell>_<source|complete>``."""
    shell, _, action = instruction.partition("_")
    if shell not in SCRIPTS or action not in ("source", "complete"):
        raise InputError(f"{COMPLETE_VAR}={instruction!r}: give <shell>_source or <shell>_complete, "
                         f"shell one of {', '.join(SCRIPTS)}")
    if action == "source":
        out.write(script(shell))
        return 0
    args, incomplete = words_from_env(dict(os.environ) if env is None else env)
    out.write("".join(f"{kind},{value}\n" for kind, value in completions(command, args, incomplete)))
    return 0
