"""The ``vrrpfw`` command: a thin typer layer over :mod:`vrrpfw.api`.

Start-up time matters (provisioning runs it in loops): typer is imported
with rich hidden from it, so it falls back to plain click help instead of
importing rich (0.05 s instead of 0.17 s on Debian 12); we import rich
ourselves only to draw a table on a terminal.  Nothing here imports
:mod:`vrrpfw.api` (its backends and path model) until a command runs:
``--help`` and ``--version`` never pay for it.

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

import math
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NoReturn, Optional, Sequence

from .._version import __version__
from ..errors import (
    EXIT_ENVIRONMENT,
    EXIT_INTERNAL,
    EXIT_USAGE,
    TRACEBACK_ENV,
    InputError,
    VrrpfwError,
)
from . import help_text as cli_help
from .completion import COMPLETE_VAR
from .typer_coercion import plain_coercion


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


def _choice(name: str, values: Sequence[str]) -> Any:
    """An option with a fixed set of values: every typer since 0.7 turns
    an Enum into a validated choice (and completes it).  str members, so a
    value is also the plain string; :func:`_plain` unwraps it for the API."""
    import enum

    return enum.Enum(name, [(v, v) for v in values], type=str)  # type: ignore[misc]


if TYPE_CHECKING:  # what the commands receive, as far as mypy knows
    Backend = str
    Family = str
    ProveFamily = str
    Mode = str
else:
    Backend = _choice("Backend", cli_help.backend_names())
    Family = _choice("Family", cli_help.FAMILIES)
    ProveFamily = _choice("ProveFamily", cli_help.PROVE_FAMILIES)
    Mode = _choice("Mode", cli_help.MODES)

BACKEND_METAVAR = cli_help.choices_metavar(cli_help.backend_names())
FAMILY_METAVAR = cli_help.choices_metavar(cli_help.FAMILIES)
MODE_METAVAR = cli_help.choices_metavar(cli_help.MODES)


def _plain(value: Any) -> Any:
    """A choice's plain string (an Enum member otherwise prints as
    ``Backend.auto`` in messages); None and other values as they are."""
    return getattr(value, "value", value)


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

BACKEND_HELP = ("Firewall backend: auto picks from what this host runs (`vrrpfw backends` shows its "
                "choice and why), or name one.")
IFACE_HELP = "Interface VRRP runs on (repeatable)."
ZONE_HELP = "firewalld: zone to use (default: the interface's zone)."
PROVE_HELP = "Also replay this host's firewall in namespaces and send real adverts."
GROUP_HELP = ("Multicast group: IPv4 (vrrp_mcast_group4, default 224.0.0.18) or IPv6 "
              "(vrrp_mcast_group6, default ff02::12).")
FAMILY_HELP = "IP family (default: from --group/--peer, else ipv4)."
FROM_HELP = ("Multicast: a peer's address, the source of its adverts (repeatable). vrrpfw judges "
             "exactly these peers' adverts and opens where each is judged (a firewalld zone bound to "
             "that source, else the interface's zone). Default: any peer on the interface's subnets.")
PEER_HELP = ("Unicast: a peer's address (keepalived's unicast_peer; repeatable). Rules then match "
             "adverts between each peer and --src, and no multicast rule is opened.")
SRC_HELP = "Unicast: this host's address (unicast_src_ip; default: the interface's primary address)."
AH_HELP = "Also allow IP protocol 51 (auth_type AH; VRRPv2 over IPv4 only)."
STRICT_HELP = ("Only adverts with TTL / hop limit 255, as RFC 5798 receivers require (IPv6 unicast aside: "
               "keepalived sends it with the kernel's hop limit).")
CONF_HELP = ("keepalived's configuration: open exactly what its vrrp_instances need "
             "(--iface then narrows it).")
NETNS_HELP = "Act inside this network namespace (`ip netns` name; keepalived's net_namespace)."
STATE_HELP = ("firewalld: file where vrrpfw records the zone allowances it added (default "
              "/var/lib/vrrpfw/state.json).")
MODE_HELP = ("firewalld: direct rules or a zone allowance (default auto: direct rules on firewalld's "
             "iptables backend, a zone allowance on its nftables backend).")
LOCK_HELP = "Seconds to wait for the xtables lock and vrrpfw's own."
JSON_HELP = "Print one JSON object."


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


def _emit(result: Any, as_json: bool) -> None:
    from . import render

    if as_json:
        sys.stdout.write(render.as_json(result))
    elif sys.stdout.isatty():
        render.rich_table(result, sys.stdout)
    else:
        sys.stdout.write(render.plain(result))
    raise typer.Exit(result.exit_code)


def _error_out(message: str, code: int, as_json: bool, prefix: str = "error") -> int:
    """The one line every failure prints on stderr (and, with --json, one
    JSON object on stdout); returns the exit code."""
    message = " ".join(message.split("\n")).strip()
    if as_json:
        import json

        doc_error = message if prefix == "error" else f"{prefix}: {message}"
        sys.stdout.write(json.dumps({"error": doc_error, "exit_code": code}) + "\n")
    print(f"vrrpfw: {prefix}: {message}", file=sys.stderr)
    return code


def _fail(e: VrrpfwError, as_json: bool) -> NoReturn:
    raise typer.Exit(_error_out(str(e), e.exit_code, as_json)) from None


def _refuse(message: str, as_json: bool) -> NoReturn:
    _fail(InputError(message), as_json)


def _check_persist(no_persist: bool, persist_file: Optional[str], as_json: bool) -> None:
    if no_persist and persist_file is not None:
        _refuse("--no-persist and --persist-file contradict each other (give one of them)", as_json)


def _check_seconds(value: float, as_json: bool) -> float:
    if not math.isfinite(value) or value < 0:
        _refuse(f"--lock-timeout must be a finite number of seconds >= 0, not {value:g}", as_json)
    return value


def _check_firewalld_only(backend: str, as_json: bool, zone: Optional[str] = None, mode: str = "auto",
                          force: bool = False, remove_seed_rules: bool = False,
                          state_file: Optional[str] = None) -> None:
    """firewalld's options with another backend named explicitly: the admin
    expects something (a zone allowance, direct rules, a state file) that
    will not happen."""
    given = [name for name, on in (("--zone", zone is not None), ("--mode", mode != "auto"),
                                   ("--force", force), ("--remove-seed-rules", remove_seed_rules),
                                   ("--state-file", state_file is not None)) if on]
    if given and backend not in ("auto", "firewalld"):
        verb = "applies" if len(given) == 1 else "apply"
        _refuse(f"{' and '.join(given)} {verb} to firewalld only, not to --backend {backend}", as_json)
    if force and mode == "zone":
        _refuse("--force applies to --mode direct only (it adds direct rules on firewalld's "
                "nftables backend), not to --mode zone", as_json)


def _call(fn: Callable[..., Any], as_json: bool, prove_with: Optional[Dict[str, Any]] = None,
          **kwargs: Any) -> None:
    """Run ``fn``; with ``prove_with`` (the replay's arguments) also replay
    the host in namespaces and put the proof beside the static verdict."""
    try:
        result = fn(**kwargs)
        if prove_with is None:
            _emit(result, as_json)
            return
        from ..prove.proof import prove

        args = dict(prove_with)
        ifaces = args.pop("interfaces", None) or sorted({r.interface for r in result.rules})
        if not ifaces:
            _emit(result, as_json)
            return
        proof = prove(ifaces, **args)
    except VrrpfwError as e:
        _fail(e, as_json)
        return
    _emit_proved(result, proof, as_json)


def _emit_proved(result: Any, proof: Any, as_json: bool) -> None:
    """check --prove: the static verdict's exit code, unless the replay
    contradicts an "ok" (then 1, said loudly) or could not be built (3).
    open --dry-run --prove: the replay's verdict on what open would do."""
    from . import render

    code = result.exit_code
    notes: List[str] = []
    if result.command == "check":
        # "cannot tell" (or no replica) is no contradiction: exit 3 below says so
        today_ok = all(i.today.ok for i in proof.interfaces if i.measured and i.today is not None)
        if result.ok and not today_ok:
            code = 1
            notes.append("the replay contradicts the static verdict: not every advert gets through "
                         "today (a vrrpfw bug: please report it with `vrrpfw prove --json`)")
    else:
        code = max(code, proof.exit_code) if proof.exit_code != 0 else code
    if proof.exit_code == 3:
        code = 3
    if as_json:
        import json

        doc = {**result.to_dict(), "proof": proof.to_dict(), "exit_code": code}
        doc["warnings"] = doc["warnings"] + notes
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render.plain(result) + "proof (replayed in throw-away namespaces):\n")
        sys.stdout.write(proof.plain())
        for n in notes:
            sys.stdout.write(f"warning: {n}\n")
    raise typer.Exit(code)


def _prove_args(wanted: bool, dry_run: bool, iface: Optional[List[str]], group: Optional[str],
                peer: Optional[List[str]], backend: str, as_json: bool, family: Optional[str] = None,
                src: Optional[str] = None, ah: bool = False, strict: bool = False,
                conf: Optional[str] = None, sources: Optional[List[str]] = None) -> Optional[Dict[str, Any]]:
    """The replay's arguments for the shape open/check judge (--peer means
    unicast, --from the multicast adverts' sources; --family ipv6 replays
    VRRPv3 to ff02::12)."""
    if not wanted:
        return None
    if not dry_run:
        _refuse("--prove goes with --dry-run on open (it shows what open would do)", as_json)
    if conf is not None:
        _refuse("--prove replays one advert shape: give it --iface and the shape's options "
                "(--family, --peer, --src, --ah, --strict) instead of --keepalived-conf", as_json)
    if family == "both":
        _refuse("the replay covers one family at a time: give --family ipv4 or ipv6", as_json)
    args: Dict[str, Any] = {"interfaces": list(iface or []), "peers": list(peer or ()), "backend": backend,
                            "unicast": bool(peer), "src": src, "ah": ah, "strict": strict}
    if sources:
        args["sources"] = list(sources)
    if group is not None:
        args["group"] = group
    elif family == "ipv6" or (family is None and sources and all(":" in a for a in sources)):
        args["group"] = "ff02::12"
    return args


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
    family, backend, mode = _plain(family), _plain(backend), _plain(mode)
    _check_persist(no_persist, persist_file, as_json)
    _check_seconds(lock_timeout, as_json)
    _check_firewalld_only(backend, as_json, zone, mode, force, state_file=state_file)
    if not iface and keepalived_conf is None:
        _refuse("give --iface NAME or --keepalived-conf PATH", as_json)
    from .. import api

    _call(api.open, as_json, interfaces=iface or None, group=group, family=family, peers=peer or (),
          src=src, ah=ah, strict=strict, sources=from_ or (), keepalived_conf=keepalived_conf, netns=netns,
          backend=backend,
          persist=not no_persist, persist_file=persist_file, dry_run=dry_run,
          lock_timeout=lock_timeout, zone=zone, mode=mode, force=force, state_file=state_file,
          prove_with=_prove_args(prove_, dry_run, iface, group, peer, backend, as_json, family, src, ah,
                                 strict, keepalived_conf, from_))


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
    family, backend, mode = _plain(family), _plain(backend), _plain(mode)
    _check_persist(no_persist, persist_file, as_json)
    _check_firewalld_only(backend, as_json, zone, mode, state_file=state_file)
    if listen is not None:
        # The listener hears what is on the wire: the rule's shape and the
        # firewall options would be silently ignored (a --group it does not
        # expect would be judged as keepalived's default).
        ignored = [name for name, on in (
            ("--group", group is not None), ("--peer", bool(peer)), ("--from", bool(from_)),
            ("--src", src is not None), ("--ah", ah),
            ("--strict", strict), ("--backend", backend != "auto"), ("--no-persist", no_persist),
            ("--persist-file", persist_file is not None), ("--zone", zone is not None),
            ("--mode", mode != "auto"), ("--state-file", state_file is not None)) if on]
        if ignored:
            _refuse(f"--listen takes only --iface, --keepalived-conf (for the groups), --family and --netns; "
                    f"not {', '.join(ignored)}", as_json)
        _listen(listen, iface, keepalived_conf, family, netns, prove_, as_json)
    from .. import api

    _call(api.check, as_json, interfaces=iface or None, group=group, family=family, peers=peer or (),
          src=src, ah=ah, strict=strict, sources=from_ or (), keepalived_conf=keepalived_conf, netns=netns,
          backend=backend,
          persist=not no_persist, persist_file=persist_file, zone=zone, mode=mode,
          state_file=state_file,
          prove_with=_prove_args(prove_, True, iface, group, peer, backend, as_json, family, src, ah,
                                 strict, keepalived_conf, from_))


def _listen(seconds: float, iface: Optional[List[str]], conf: Optional[str], family: Optional[str],
            netns: Optional[str], prove_: bool, as_json: bool) -> NoReturn:
    """check --listen: the live proof, instead of the static verdict."""
    if prove_:
        _refuse("--listen and --prove are two different proofs; give one", as_json)
    if not math.isfinite(seconds) or not 0 < seconds <= 3600:
        _refuse(f"--listen takes seconds between 0 and 3600, not {seconds:g}", as_json)
    from .. import api

    try:
        report = api.listen(iface or None, seconds, keepalived_conf=conf, family=family, netns=netns)
    except VrrpfwError as e:
        _fail(e, as_json)
    if as_json:
        import json

        sys.stdout.write(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in report.lines()))
    raise typer.Exit(report.exit_code)


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
    family, backend, mode = _plain(family), _plain(backend), _plain(mode)
    _check_persist(no_persist, persist_file, as_json)
    _check_seconds(lock_timeout, as_json)
    _check_firewalld_only(backend, as_json, zone, mode, remove_seed_rules=remove_seed_rules,
                          state_file=state_file)
    from .. import api

    _call(api.close, as_json, interfaces=iface or None, group=group, family=family,
          keepalived_conf=keepalived_conf, netns=netns, backend=backend,
          persist=not no_persist, persist_file=persist_file, dry_run=dry_run,
          lock_timeout=lock_timeout, zone=zone, mode=mode, state_file=state_file,
          remove_seed_rules=remove_seed_rules)


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
    import json

    family, backend = _plain(family), _plain(backend)
    from ..prove.proof import prove

    args = _prove_args(True, True, iface, group, peer, backend, as_json, family, src, ah, strict,
                       sources=from_)
    assert args is not None
    args.pop("interfaces")
    try:
        if family is not None and family not in ("ipv4", "ipv6"):
            raise InputError(f"unknown family {family!r}; prove takes ipv4 or ipv6")
        if family == "ipv4" and args.get("group", "224.0.0.18").count(":"):
            raise InputError(f"--family ipv4 contradicts the IPv6 group {args['group']}")
        if family == "ipv6" and ":" not in args["group"]:
            raise InputError(f"--family ipv6 contradicts the IPv4 group {args['group']}")
        result = prove(iface, count=count, **args)
    except VrrpfwError as e:
        _fail(e, as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(result.plain())
    raise typer.Exit(result.exit_code)


@app.command("backends", epilog=_epilog("backends"))
def backends_cmd(
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show each firewall on this host, whether it filters VRRP, and what auto would use."""
    import json

    from .. import api

    try:
        report = api.backends()
    except VrrpfwError as e:
        _fail(e, as_json)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
        raise typer.Exit(0)
    for fw in report["firewalls"]:
        state = "filters VRRP" if fw["filters"] else ("present" if fw["present"] else "absent")
        print(f"{fw['firewall']}: {state} ({fw['detail']})")
    print(f"iptables command: {report['iptables_command'] or 'not installed'}")
    auto = report["auto"]
    chosen = "+".join(auto["backends"]) or "nothing (no change needed)"
    print(f"auto would use: {chosen} ({auto['reason']})")
    raise typer.Exit(3 if auto.get("error") else 0)


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
    anything else is one line and EXIT_INTERNAL."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(args)
    try:
        return _main(args, as_json)
    except VrrpfwError as e:
        return _error_out(str(e), e.exit_code, as_json)
    except KeyboardInterrupt:
        print("vrrpfw: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        return _internal_error(e, as_json)


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


def build_command(host_root: Optional[str] = None) -> Any:
    """The click command ``main`` runs (and packaging/gen_docs.py documents):
    typer's, made sound for the click beside it, with plain conversion and
    completion from the host.  With ``host_root`` (``--help``), the saved
    files ``--persist-file`` replaces are named as found under that root."""
    _pin_click_version()
    command = _sound_command(typer.main.get_command(app))
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


def _main(args: List[str], as_json: bool) -> int:
    ce = _click_exceptions()
    exit_types = tuple({typer.Exit, getattr(ce, "Exit", typer.Exit)})
    abort_types = tuple({typer.Abort, getattr(ce, "Abort", typer.Abort)})
    command = build_command("/" if _asks_help(args) else None)
    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:  # the completion scripts call back here (see vrrpfw.cli.completion)
        from . import completion as cli_complete

        return cli_complete.complete(command, instruction, sys.stdout)
    twice = _given_twice(command, args)
    if twice:
        return _error_out(twice, EXIT_USAGE, as_json)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
