"""The ``vrrpfw`` command: a thin typer layer over :mod:`vrrpfw.api`.

Start-up time matters (provisioning runs it in loops): typer is imported
with rich hidden from it, so it falls back to plain click help instead of
importing rich (0.05 s instead of 0.17 s on Debian 12); we import rich
ourselves only to draw a table on a terminal.  Nothing here imports
:mod:`vrrpfw.api` (its backends and path model) until a command runs:
``--help`` and ``--version`` never pay for it.

The console script's entry (argv -> this typer app, failures -> exit
codes, the typer/click repairs) is :mod:`.entry`; the options' help lines
and choices are :mod:`.options`; what each command does, once typer has
parsed its options, is :mod:`.actions` (no typer there).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, Optional

from .._version import __version__
from . import actions
from . import help_text as cli_help
from .actions import CliExit, _emit_proved, _error_out  # noqa: F401  (entry, tests: their old home)
from .options import (
    AH_HELP,
    BACKEND_HELP,
    BACKEND_METAVAR,
    CONF_HELP,
    FAMILY_HELP,
    FAMILY_METAVAR,
    FROM_HELP,
    GROUP_HELP,
    IFACE_HELP,
    JSON_HELP,
    LOCK_HELP,
    MODE_HELP,
    MODE_METAVAR,
    NETNS_HELP,
    PEER_HELP,
    PROVE_HELP,
    SRC_HELP,
    STATE_HELP,
    STRICT_HELP,
    ZONE_HELP,
    Backend,
    Family,
    Mode,
    ProveFamily,
)


def _import_typer() -> Any:
    hidden = "rich" not in sys.modules
    if hidden:
        sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import typer
    finally:
        if hidden:
            del sys.modules["rich"]
    return typer


typer = _import_typer()


def _epilog(command: str) -> str:
    return cli_help.exit_codes_epilog(command)


app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: no rich import, same on every typer
    help="Open the firewall for VRRP (keepalived): IP protocol 112 (and 51 for AH), multicast to "
         "224.0.0.18 / ff02::12 or unicast between peers. Start with: vrrpfw open --keepalived-conf "
         "/etc/keepalived/keepalived.conf. Each command's --help lists its options, their values "
         "and its own exit codes.",
    epilog=_epilog("vrrpfw") + "\n\n" + cli_help.environment_epilog(),
    no_args_is_help=True,
)


def _version(value: bool) -> None:
    if value:
        print(f"vrrpfw {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Open the firewall for VRRP (keepalived)."""


def _run(body: Callable[..., None], given: Dict[str, Any]) -> None:
    """Run a command's body (:mod:`.actions`) with what typer parsed; its
    end (:class:`~.actions.CliExit`) becomes typer's."""
    try:
        body(**given)
    except CliExit as e:
        raise typer.Exit(e.code) from None


@app.command("open", epilog=_epilog("open"))
def open_cmd(
    iface: Optional[List[str]] = typer.Option(None, "--iface", "-i", metavar="IFACE", help=IFACE_HELP),
    keepalived_conf: Optional[str] = typer.Option(None, "--keepalived-conf", metavar="FILE", help=CONF_HELP),
    group: Optional[str] = typer.Option(None, "--group", metavar="ADDRESS", help=GROUP_HELP),
    family: Optional[Family] = typer.Option(None, "--family", metavar=FAMILY_METAVAR, help=FAMILY_HELP),
    peer: Optional[List[str]] = typer.Option(None, "--peer", metavar="ADDRESS", help=PEER_HELP),
    from_: Optional[List[str]] = typer.Option(None, "--from", metavar="ADDRESS", help=FROM_HELP),
    src: Optional[str] = typer.Option(None, "--src", metavar="ADDRESS", help=SRC_HELP),
    ah: bool = typer.Option(False, "--ah", help=AH_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    netns: Optional[str] = typer.Option(None, "--netns", metavar="NAME", help=NETNS_HELP),
    backend: Backend = typer.Option("auto", "--backend", metavar=BACKEND_METAVAR, help=BACKEND_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the exact planned rules; change nothing."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    no_persist: bool = typer.Option(False, "--no-persist", help="Change the runtime firewall only."),
    persist_file: Optional[str] = typer.Option(None, "--persist-file", metavar="FILE",
                                               help=cli_help.persist_file_help("open", None)),
    lock_timeout: float = typer.Option(10.0, "--lock-timeout", metavar="SECONDS", help=LOCK_HELP),
    zone: Optional[str] = typer.Option(None, "--zone", metavar="ZONE", help=ZONE_HELP),
    mode: Mode = typer.Option("auto", "--mode", metavar=MODE_METAVAR, help=MODE_HELP),
    state_file: Optional[str] = typer.Option(None, "--state-file", metavar="FILE", help=STATE_HELP),
    force: bool = typer.Option(False, "--force", help="firewalld: direct rules even on nftables."),
    prove_: bool = typer.Option(False, "--prove", help=PROVE_HELP),
) -> None:
    """Allow VRRP in and out of the interfaces (idempotent) and persist it."""
    _run(actions.run_open, locals())


@app.command("check", epilog=_epilog("check"))
def check_cmd(
    iface: Optional[List[str]] = typer.Option(
        None, "--iface", "-i", metavar="IFACE",
        help=IFACE_HELP + " Default: every interface vrrpfw has rules for."),
    keepalived_conf: Optional[str] = typer.Option(None, "--keepalived-conf", metavar="FILE", help=CONF_HELP),
    group: Optional[str] = typer.Option(None, "--group", metavar="ADDRESS", help=GROUP_HELP),
    family: Optional[Family] = typer.Option(None, "--family", metavar=FAMILY_METAVAR, help=FAMILY_HELP),
    peer: Optional[List[str]] = typer.Option(None, "--peer", metavar="ADDRESS", help=PEER_HELP),
    from_: Optional[List[str]] = typer.Option(None, "--from", metavar="ADDRESS", help=FROM_HELP),
    src: Optional[str] = typer.Option(None, "--src", metavar="ADDRESS", help=SRC_HELP),
    ah: bool = typer.Option(False, "--ah", help=AH_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    netns: Optional[str] = typer.Option(None, "--netns", metavar="NAME", help=NETNS_HELP),
    listen: Optional[float] = typer.Option(
        None, "--listen", metavar="SECONDS", help="Listen this many seconds (at most 3600) to live adverts "
        "(keepalived running): delivered, dropped here, or nothing heard. Sends nothing."),
    backend: Backend = typer.Option("auto", "--backend", metavar=BACKEND_METAVAR, help=BACKEND_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    no_persist: bool = typer.Option(False, "--no-persist", help="Do not check the persisted file."),
    persist_file: Optional[str] = typer.Option(None, "--persist-file", metavar="FILE",
                                               help=cli_help.persist_file_help("check", None)),
    zone: Optional[str] = typer.Option(None, "--zone", metavar="ZONE", help=ZONE_HELP),
    mode: Mode = typer.Option("auto", "--mode", metavar=MODE_METAVAR, help=MODE_HELP),
    state_file: Optional[str] = typer.Option(None, "--state-file", metavar="FILE", help=STATE_HELP),
    prove_: bool = typer.Option(False, "--prove", help=PROVE_HELP),
) -> None:
    """Report per rule: present at runtime, persisted, shadowed. Changes nothing."""
    _run(actions.run_check, locals())


@app.command("close", epilog=_epilog("close"))
def close_cmd(
    iface: Optional[List[str]] = typer.Option(
        None, "--iface", "-i", metavar="IFACE", help=IFACE_HELP + " Default: all of vrrpfw's rules."),
    keepalived_conf: Optional[str] = typer.Option(
        None, "--keepalived-conf", metavar="FILE",
        help="Close the rules of this keepalived configuration's interfaces."),
    group: Optional[str] = typer.Option(
        None, "--group", metavar="ADDRESS",
        help="Only rules for this multicast group or unicast peer (default: any)."),
    family: Optional[Family] = typer.Option(
        None, "--family", metavar=FAMILY_METAVAR, help="Only rules of this IP family (default: both)."),
    netns: Optional[str] = typer.Option(None, "--netns", metavar="NAME", help=NETNS_HELP),
    backend: Backend = typer.Option("auto", "--backend", metavar=BACKEND_METAVAR, help=BACKEND_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be removed; change nothing."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    no_persist: bool = typer.Option(False, "--no-persist", help="Leave the persisted file alone."),
    persist_file: Optional[str] = typer.Option(None, "--persist-file", metavar="FILE",
                                               help=cli_help.persist_file_help("close", None)),
    lock_timeout: float = typer.Option(10.0, "--lock-timeout", metavar="SECONDS", help=LOCK_HELP),
    zone: Optional[str] = typer.Option(None, "--zone", metavar="ZONE", help=ZONE_HELP),
    mode: Mode = typer.Option("auto", "--mode", metavar=MODE_METAVAR, help=MODE_HELP),
    state_file: Optional[str] = typer.Option(None, "--state-file", metavar="FILE", help=STATE_HELP),
    remove_seed_rules: bool = typer.Option(
        False, "--remove-seed-rules", help="firewalld: also remove hand-made VRRP direct rules."),
) -> None:
    """Remove exactly vrrpfw's rules, runtime and persisted (idempotent)."""
    _run(actions.run_close, locals())


@app.command("prove", epilog=_epilog("prove"))
def prove_cmd(
    iface: List[str] = typer.Option(..., "--iface", "-i", metavar="IFACE", help=IFACE_HELP),
    group: Optional[str] = typer.Option(None, "--group", metavar="ADDRESS", help=GROUP_HELP),
    family: Optional[ProveFamily] = typer.Option(
        None, "--family", metavar=cli_help.choices_metavar(cli_help.PROVE_FAMILIES),
        help="IP family, one per replay (default: from --group, else ipv4)."),
    peer: Optional[List[str]] = typer.Option(None, "--peer", metavar="ADDRESS", help=PEER_HELP),
    from_: Optional[List[str]] = typer.Option(None, "--from", metavar="ADDRESS", help=FROM_HELP),
    src: Optional[str] = typer.Option(None, "--src", metavar="ADDRESS", help=SRC_HELP),
    ah: bool = typer.Option(False, "--ah", help=AH_HELP),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    backend: Backend = typer.Option("auto", "--backend", metavar=BACKEND_METAVAR, help=BACKEND_HELP),
    count: int = typer.Option(20, "--count", metavar="N", help="Adverts per direction."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Replay this host's packet filter in throw-away namespaces and send real
    adverts through it, today and after `vrrpfw open`. Changes nothing here."""
    _run(actions.run_prove, locals())


@app.command("backends", epilog=_epilog("backends"))
def backends_cmd(
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show each firewall on this host, whether it filters VRRP, and what auto would use."""
    _run(actions.run_backends, locals())
