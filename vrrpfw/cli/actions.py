"""What the ``vrrpfw`` commands do, apart from how argv reaches them: the
body of each command and the helpers they share (running the API, printing
a result or an error, the exit code), without typer, click or rich.

Split from :mod:`.commands` (typer's declaration of the options, which
calls these with what it parsed) so that :mod:`.fast` can run ``check``,
``open`` and ``close`` without importing typer (20-30 ms per run) when argv
holds only options it understands fully.  Every body ends by raising
:class:`CliExit` with its exit code; the typer layer turns it into
``typer.Exit``, the fast path into the code it returns.  Each body takes
every option as a keyword (no defaults: the caller says what was given).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Dict, List, NoReturn, Optional

from ..errors import InputError, VrrpfwError


def _plain(value: Any) -> Any:
    """A choice's plain string (an Enum member otherwise prints as
    ``Backend.auto`` in messages); None and other values as they are."""
    return getattr(value, "value", value)


class CliExit(SystemExit):
    """A command's end with its exit code (``code``); a SystemExit, so that
    a body called on its own still ends the process with that code."""


def _emit(result: Any, as_json: bool) -> None:
    from . import render

    if as_json:
        sys.stdout.write(render.as_json(result))
    elif sys.stdout.isatty():
        render.rich_table(result, sys.stdout)
    else:
        sys.stdout.write(render.plain(result))
    raise CliExit(result.exit_code)


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
    raise CliExit(_error_out(str(e), e.exit_code, as_json)) from None


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
    raise CliExit(code)


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


def run_open(*, iface: Optional[List[str]], keepalived_conf: Optional[str], group: Optional[str],
        family: Optional[str], peer: Optional[List[str]], from_: Optional[List[str]], src: Optional[str],
        ah: bool, strict: bool, netns: Optional[str], backend: str, dry_run: bool, as_json: bool,
        no_persist: bool, persist_file: Optional[str], lock_timeout: float, zone: Optional[str], mode: str,
        state_file: Optional[str], force: bool, prove_: bool) -> None:
    """``vrrpfw open``."""
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


def run_check(*, iface: Optional[List[str]], keepalived_conf: Optional[str], group: Optional[str],
        family: Optional[str], peer: Optional[List[str]], from_: Optional[List[str]], src: Optional[str],
        ah: bool, strict: bool, netns: Optional[str], listen: Optional[float], backend: str, as_json: bool,
        no_persist: bool, persist_file: Optional[str], zone: Optional[str], mode: str,
        state_file: Optional[str], prove_: bool) -> None:
    """``vrrpfw check``."""
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
    raise CliExit(report.exit_code)


def run_close(*, iface: Optional[List[str]], keepalived_conf: Optional[str], group: Optional[str],
        family: Optional[str], netns: Optional[str], backend: str, dry_run: bool, as_json: bool,
        no_persist: bool, persist_file: Optional[str], lock_timeout: float, zone: Optional[str], mode: str,
        state_file: Optional[str], remove_seed_rules: bool) -> None:
    """``vrrpfw close``."""
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


def run_prove(*, iface: List[str], group: Optional[str], family: Optional[str], peer: Optional[List[str]],
        from_: Optional[List[str]], src: Optional[str], ah: bool, strict: bool, backend: str, count: int,
        as_json: bool) -> None:
    """``vrrpfw prove``."""
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
    raise CliExit(result.exit_code)


def run_backends(*, as_json: bool) -> None:
    """``vrrpfw backends``."""
    import json

    from .. import api

    try:
        report = api.backends()
    except VrrpfwError as e:
        _fail(e, as_json)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
        raise CliExit(0)
    for fw in report["firewalls"]:
        state = "filters VRRP" if fw["filters"] else ("present" if fw["present"] else "absent")
        print(f"{fw['firewall']}: {state} ({fw['detail']})")
    print(f"iptables command: {report['iptables_command'] or 'not installed'}")
    auto = report["auto"]
    chosen = "+".join(auto["backends"]) or "nothing (no change needed)"
    print(f"auto would use: {chosen} ({auto['reason']})")
    raise CliExit(3 if auto.get("error") else 0)
