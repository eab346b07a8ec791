"""The ``vrrpfw`` console script's entry: argv -> the click command typer
builds from :mod:`.commands`, with every outcome an exit code.

Split from :mod:`.commands` (the commands themselves) because turning argv
into a run is its own job: repairing what typer built, refusing an option
given twice, and mapping failures to codes.

``check``, ``open`` and ``close`` given only options :mod:`.fast`
understands run without typer (the same body, the same bytes out); all
else goes through typer.

Usage errors become one line on stderr and exit 2, like every other expected
error; an unexpected exception is one line and exit 4 (``EXIT_INTERNAL``),
with the traceback only when ``VRRPFW_TRACEBACK=1``.

typer 0.7 to 0.15 (Debian 12 ships 0.7) predate click 8.2 and 8.3, which pip
installs beside them whenever another tool wants a new click: their options
then either crash ``--help`` (click 8.2 made ``make_metavar`` take the
context) or all turn into flags (click 8.3 reads typer's ``flag_value=None``
as "a flag whose value is None": ``--version`` fired on every command).
:func:`_sound_command` checks every option typer built and rebuilds the
unsound ones as plain click options.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from ..errors import (
    EXIT_ENVIRONMENT,
    EXIT_INTERNAL,
    EXIT_USAGE,
    TRACEBACK_ENV,
    VrrpfwError,
)
from . import fast
from .actions import _error_out
from .completion import COMPLETE_VAR


def _click_exceptions() -> Any:
    """typer < 0.26 uses click; newer typer vendors it as typer._click."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def _plain_option(click: Any, opt: Any) -> Any:
    """``opt`` rebuilt with click's own constructor, as typer meant it: a
    bool default is an on/off flag, anything else takes a value."""
    flag = isinstance(opt.default, bool)
    decls = [opt.name, *opt.opts]
    if opt.secondary_opts:
        decls = [opt.name, f"{opt.opts[0]}/{opt.secondary_opts[0]}", *opt.opts[1:]]
    kwargs: Dict[str, Any] = dict(
        default=opt.default, required=opt.required, multiple=opt.multiple, help=opt.help,
        hidden=opt.hidden, callback=opt.callback, is_eager=opt.is_eager,
        expose_value=opt.expose_value, metavar=opt.metavar, show_default=opt.show_default,
    )
    if flag:
        kwargs["is_flag"] = True
    else:
        kwargs["type"] = opt.type
    return click.Option(decls, **kwargs)


def _option_sound(click: Any, opt: Any, ctx: Any) -> bool:
    flag = isinstance(opt.default, bool)
    if bool(opt.is_flag) != flag:
        return False
    if flag and not isinstance(opt.type, click.types.BoolParamType):
        return False
    try:
        opt.get_help_record(ctx)
    except TypeError:  # typer < 0.16 calls make_metavar() without the context click 8.2 wants
        return False
    return True


def _sound_command(command: Any) -> Any:
    """Check every option typer built against what it was declared as, and
    rebuild the unsound ones as plain click options (typer < 0.16 beside
    click >= 8.2, see the module docstring).  typer >= 0.26 vendors its own
    click, so there is nothing to mismatch."""
    if "typer._click" in sys.modules:
        return command
    import click

    for cmd in [command, *getattr(command, "commands", {}).values()]:
        ctx = click.Context(cmd, info_name=cmd.name)
        for i, p in enumerate(cmd.params):
            if isinstance(p, click.Option) and not _option_sound(click, p, ctx):
                cmd.params[i] = _plain_option(click, p)
    return command


def _given_twice(command: Any, args: Sequence[str]) -> Optional[str]:
    """An option that takes one value, given twice (``--group A --group B``):
    click silently keeps the last, which is rarely what the admin meant."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        i += 1  # the group's own options (--version, --help) take no value
    sub = getattr(command, "commands", {}).get(args[i]) if i < len(args) else None
    if sub is None:
        return None
    options: Dict[str, Any] = {}
    for p in sub.params:
        for name in [*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ())]:
            options[name] = p
    seen: Dict[str, List[str]] = {}
    rest = list(args[i + 1:])
    while rest:
        tok = rest.pop(0)
        if tok == "--":
            break
        if tok.startswith("--"):
            name, eq, value = tok.partition("=")
        elif tok.startswith("-") and len(tok) > 1:
            name, value = tok[:2], tok[2:]
            eq = "=" if value else ""
        else:
            continue
        p = options.get(name)
        if p is None or getattr(p, "is_flag", False) or getattr(p, "count", False):
            continue
        if not eq:
            value = rest.pop(0) if rest else ""
        if getattr(p, "multiple", False):
            continue
        seen.setdefault(p.opts[0], []).append(value)
    for name, values in seen.items():
        if len(values) > 1:
            return f"{name} given {len(values)} times ({', '.join(map(repr, values))}); give it once"
    return None


def _wants_json(args: Sequence[str]) -> bool:
    end = list(args).index("--") if "--" in args else len(args)
    return "--json" in args[:end]


def _internal_error(e: BaseException, as_json: bool) -> int:
    """An exception vrrpfw did not expect: one line, the documented code,
    the traceback only on request."""
    if os.environ.get(TRACEBACK_ENV) == "1":
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    text = " ".join(str(e).split()) or repr(e)
    return _error_out(f"{type(e).__name__}: {text} (set {TRACEBACK_ENV}=1 for the traceback)",
                      EXIT_INTERNAL, as_json, prefix="internal error")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: every expected failure is one line and a documented code;
    anything else is one line and EXIT_INTERNAL.

    Without ``argv`` it is this process's command (the console script,
    ``python -m vrrpfw``: ``sys.exit(main())``), and the process ends when
    it returns: what the run left alive is then frozen (``gc.freeze()``),
    so that the collections the interpreter runs at exit do not examine it
    (7 to 10 ms of CPU at the end of a ``check``; the OS reclaims the
    memory).  Called with ``argv`` (in-process), it leaves the collector as
    it found it."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(args)
    try:
        code = _fast(args, as_json)
        return _main(args, as_json) if code is None else code
    except VrrpfwError as e:
        return _error_out(str(e), e.exit_code, as_json)
    except KeyboardInterrupt:
        print("vrrpfw: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        return _internal_error(e, as_json)
    finally:
        if argv is None:
            gc.freeze()


def _pin_click_version() -> None:
    """click >= 8.2 computes ``click.__version__`` from the package metadata
    on every access (with a DeprecationWarning); typer < 0.16 reads it twice
    per option: 92 metadata lookups, 50 to 130 ms per run.  Read it once."""
    if "typer._click" in sys.modules:
        return
    import click

    if "__version__" in vars(click):
        return
    # The dist-info beside the package names the version without importing
    # importlib.metadata (40 ms); the metadata is the fallback.
    site = os.path.dirname(os.path.dirname(os.path.abspath(click.__file__)))
    try:
        found = [n[len("click-"):-len(".dist-info")] for n in os.listdir(site)
                 if n.startswith("click-") and n.endswith(".dist-info")]
    except OSError:
        found = []
    if len(found) == 1:
        version: Any = found[0]
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            version = getattr(click, "__version__", None)
    if isinstance(version, str):
        click.__version__ = version


def _typer_app(only: Optional[str]) -> Any:
    """``app``, or where ``only`` names one of its commands a copy that
    registers that command alone (the group, its callback and options
    unchanged)."""
    from .commands import app

    keep = [c for c in app.registered_commands if only is not None and c.name == only]
    if not keep:
        return app
    import copy  # here, not at the top: the typer-free path (.fast) copies nothing

    one = copy.copy(app)
    one.registered_commands = keep
    return one


def build_command(host_root: Optional[str] = None, only: Optional[str] = None) -> Any:
    """The click command ``main`` runs (and packaging/gen_docs.py documents):
    typer's, made sound for the click beside it, with plain conversion and
    completion from the host.  With ``host_root`` (``--help``), the saved
    files ``--persist-file`` replaces are named as found under that root.
    With ``only`` (a command's name), the group holds that command alone:
    typer builds, and vrrpfw repairs, one command's options instead of every
    command's (2.5 ms on Debian's typer 0.7, 6 ms on typer 0.29)."""
    from . import help_text as cli_help
    from .commands import typer
    from .typer_coercion import plain_coercion

    _pin_click_version()
    command = _sound_command(typer.main.get_command(_typer_app(only)))
    plain_coercion(command)
    from . import completion as cli_complete

    cli_complete.attach(command)
    if host_root is not None:
        for name, sub in getattr(command, "commands", {}).items():
            for p in sub.params:
                if p.name == "persist_file":
                    p.help = cli_help.persist_file_help(name, host_root)
    return command


def _asks_help(args: Sequence[str]) -> bool:
    end = list(args).index("--") if "--" in args else len(args)
    return "--help" in args[:end]


def _named_first(args: Sequence[str]) -> Optional[str]:
    """The command ``args`` start with (``check`` in ``check --iface
    eth1``), else None: after a group option (``--help``, ``--version``)
    or with no command, the group runs as a whole."""
    return args[0] if args and not args[0].startswith("-") else None


def _main(args: List[str], as_json: bool) -> int:
    instruction = os.environ.get(COMPLETE_VAR)
    # Completion offers every command; a run needs the one it names.
    command = build_command("/" if _asks_help(args) else None, None if instruction else _named_first(args))
    if instruction:  # the completion scripts call back here (see vrrpfw.cli.completion)
        from . import completion as cli_complete

        return cli_complete.complete(command, instruction, sys.stdout)
    twice = _given_twice(command, args)
    if twice:
        return _error_out(twice, EXIT_USAGE, as_json)
    return _click_run(command, args, as_json)


def _click_run(command: Any, args: List[str], as_json: bool) -> int:
    """``command`` (a click command typer built) run on ``args``, every
    outcome an exit code."""
    from .commands import typer

    ce = _click_exceptions()
    exit_types = tuple({typer.Exit, getattr(ce, "Exit", typer.Exit)})
    abort_types = tuple({typer.Abort, getattr(ce, "Abort", typer.Abort)})
    try:
        rc = command.main(args=args, prog_name="vrrpfw", standalone_mode=False)
    except ce.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        return _error_out(f"{e.format_message()}{hint}", EXIT_USAGE, as_json)
    except exit_types as e:
        return int(e.exit_code)
    except abort_types:
        print("vrrpfw: aborted", file=sys.stderr)
        return 130
    except ce.ClickException as e:
        return _error_out(e.format_message(), EXIT_USAGE, as_json)
    except KeyboardInterrupt:
        print("vrrpfw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ENVIRONMENT
    return int(rc or 0)


def _fast(args: List[str], as_json: bool) -> Optional[int]:
    """:func:`.fast.run`, ending as typer would end the same body."""
    try:
        return fast.run(args)
    except (KeyboardInterrupt, EOFError, OSError) as e:
        return as_typer_ends(e, as_json)


def as_typer_ends(exc: BaseException, as_json: bool) -> int:
    """The exit code (and words) of a command whose body raised ``exc``
    under typer: what click makes of an interrupt, an end of input or a
    broken pipe (exit 1) differs by typer release (a newline and "aborted",
    or exit 130), so after :mod:`.fast` ran the body without typer, ask
    typer itself, with a command that raises it."""
    from .commands import typer

    again = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @again.command()
    def raise_it() -> None:
        raise exc

    return _click_run(typer.main.get_command(again), [], as_json)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
