"""The public facade: open, check, close, listen, backends, saved_texts.

Order matters for an admin's safety: validate input, pick and probe the
backend, load (and so validate) the persisted file, and only then touch the
live firewall.  A failure before that point changes nothing; a failure
after it (persisting) is reported as exactly that partial outcome.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from . import environment, inputs, run
from .backends import registry
from .errors import InputError, VrrpfwError
from .host import enter_netns as namespace
from .model import DEFAULT_GROUP4, DEFAULT_GROUP6
from .recorder import SavedText, saved_texts
from .request import Ask, from_conf, run_options, told
from .results import Result

__all__ = ["open", "check", "close", "listen", "backends", "saved_texts", "SavedText"]


def open(  # noqa: A001 - the public name the product card promises
    interfaces: Optional[Iterable[str]] = None,
    *,
    group: Optional[str] = None,
    family: Optional[str] = None,
    peers: Sequence[str] = (),
    src: Optional[str] = None,
    ah: bool = False,
    strict: bool = False,
    sources: Sequence[str] = (),
    keepalived_conf: Optional[str] = None,
    netns: Optional[str] = None,
    backend: str = "auto",
    persist: bool = True,
    persist_file: Optional[str] = None,
    dry_run: bool = False,
    lock_timeout: float = 10.0,
    root: str = "/",
    zone: Optional[str] = None,
    mode: str = "auto",
    force: bool = False,
    state_file: Optional[str] = None,
) -> Result:
    """Allow VRRP in and out of each interface; idempotent.

    What to allow: multicast to ``group`` (default 224.0.0.18 / ff02::12
    by ``family``: ipv4, ipv6 or both), or, with ``peers``, unicast adverts
    between each peer and this host's ``src`` address (default the
    interface's primary address); ``sources``: the multicast peers'
    addresses (``--from``; default any on the interface's subnets, and
    firewalld zones bound to sources there are opened too); ``ah`` also
    IP protocol 51; ``strict``
    only adverts arriving with TTL / hop limit 255.  Or all of it from
    ``keepalived_conf``, keepalived's configuration (``interfaces`` then
    narrow it).  ``netns``: act inside that ``ip netns`` namespace.
    ``zone``, ``mode`` (auto/direct/zone), ``force`` and ``state_file``
    are for the firewalld backend.  With ``dry_run`` nothing changes, and
    the result says what the real run would change and would return
    (``changed``, ``ok``, ``exit_code``): Ansible's check mode."""
    ask = Ask.checked(interfaces, group, family, peers, src, ah, strict, keepalived_conf, netns,
                       need_rules=True, sources=sources)
    options = run_options(backend, persist, persist_file, dry_run, lock_timeout, root, zone, mode, force,
                       state_file, command="open")
    with namespace.entered(ask.netns):
        req = ask.request()
        options.peers = req.judged_sources()
        return told(run.run("open", req.rules, None, None, backend, options), req)


def check(
    interfaces: Optional[Iterable[str]] = None,
    *,
    group: Optional[str] = None,
    family: Optional[str] = None,
    peers: Sequence[str] = (),
    src: Optional[str] = None,
    ah: bool = False,
    strict: bool = False,
    sources: Sequence[str] = (),
    keepalived_conf: Optional[str] = None,
    netns: Optional[str] = None,
    backend: str = "auto",
    persist: bool = True,
    persist_file: Optional[str] = None,
    root: str = "/",
    zone: Optional[str] = None,
    mode: str = "auto",
    state_file: Optional[str] = None,
    dry_run: bool = False,
) -> Result:
    """Report, per rule, runtime and persisted state; changes nothing.
    Without interfaces (and without ``keepalived_conf``), checks every rule
    vrrpfw has, narrowed by ``group`` and ``family`` where given.
    ``dry_run`` also leaves out the record-keeping a check may write
    (firewalld's state file, when it forgets allowances that are gone), for
    callers that promise to write nothing at all: Ansible's check mode."""
    ask = Ask.checked(interfaces, group, family, peers, src, ah, strict, keepalived_conf, netns,
                       need_rules=False, sources=sources)
    options = run_options(backend, persist, persist_file, dry_run, 0.0, root, zone, mode, True, state_file,
                       command="check")
    with namespace.entered(ask.netns):
        if not ask.wants_rules:
            options.only_family = ask.family if ask.family != "both" else None
            return run.run("check", None, None, ask.group, backend, options)
        req = ask.request()
        options.peers = req.judged_sources()
        return told(run.run("check", req.rules, None, None, backend, options), req)


def close(
    interfaces: Optional[Iterable[str]] = None,
    *,
    group: Optional[str] = None,
    family: Optional[str] = None,
    keepalived_conf: Optional[str] = None,
    netns: Optional[str] = None,
    backend: str = "auto",
    persist: bool = True,
    persist_file: Optional[str] = None,
    dry_run: bool = False,
    lock_timeout: float = 10.0,
    root: str = "/",
    zone: Optional[str] = None,
    mode: str = "auto",
    state_file: Optional[str] = None,
    remove_seed_rules: bool = False,
    peers: Sequence[str] = (),
) -> Result:
    """Remove vrrpfw's own rules, runtime and persisted; never anyone
    else's.  Which: those of these interfaces (default all), of ``group``
    (a multicast group or a unicast peer's address) and ``family`` where
    given, or those of ``keepalived_conf``'s interfaces.
    ``remove_seed_rules`` (firewalld) also removes hand-made VRRP direct rules."""
    ask = Ask.checked(interfaces, group, family, peers, None, False, False, keepalived_conf, netns,
                       need_rules=False, closing=True)
    options = run_options(backend, persist, persist_file, dry_run, lock_timeout, root, zone, mode, True,
                       state_file, command="close")
    options.remove_seed = inputs.flag(remove_seed_rules, "remove_seed_rules")
    options.only_family = ask.family if ask.family != "both" else None
    with namespace.entered(ask.netns):
        ifaces = ask.interfaces
        req = None
        if ask.conf is not None:
            req = from_conf(ask.conf, ask.interfaces, ask.family)
            ifaces = sorted({r.interface for r in req.rules})
        result = run.run("close", None, ifaces, ask.group, backend, options)
        if not options.dry_run:
            # The flows' conntrack entries outlive the rules: forget them, so
            # the next advert is judged as new, as before open.
            from .host import conntrack

            result.warnings.extend(conntrack.forget(conntrack.closed_selectors(result.rules))[1])
        return told(result, req) if req is not None else result


def listen(
    interfaces: Optional[Iterable[str]] = None,
    seconds: float = 3.0,
    *,
    keepalived_conf: Optional[str] = None,
    family: Optional[str] = None,
    netns: Optional[str] = None,
) -> Any:
    """Listen ``seconds`` to live adverts on the interfaces (or on those
    of ``keepalived_conf``'s instances, expecting their groups) and judge
    per VRID and source: delivered, dropped here, nothing heard, ...
    Sends nothing; returns a :class:`vrrpfw.listen.ListenReport`."""
    ask = Ask.checked(interfaces, None, family, (), None, False, False, keepalived_conf, netns,
                       need_rules=True)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
        raise InputError(f"listen takes seconds between 0 and 3600, not {seconds!r}")
    from .listen import listener as live

    fams = ("ipv4", "ipv6") if ask.family in (None, "both") else (str(ask.family),)
    groups = {"ipv4": DEFAULT_GROUP4, "ipv6": DEFAULT_GROUP6}
    names = list(ask.interfaces or [])
    if ask.conf is not None:
        for inst in ask.conf.instances:
            if ask.interfaces is None and inst.interface not in names:
                names.append(inst.interface)
            if inst.group is not None:
                groups[inst.family] = inst.group
    with namespace.entered(ask.netns):
        return live.listen(names, float(seconds), fams, groups["ipv4"], groups["ipv6"])


def backends() -> Dict[str, Any]:
    """Each firewall found on this host, whether it filters VRRP now, and
    what ``auto`` would use and why.  Reads only."""
    from .host.hostscan import scan as scan_host

    environment.check()
    scan = scan_host()
    firewalls: List[Dict[str, Any]] = [
        {"firewall": "legacy iptables", "present": bool(scan.legacy_tables),
         "filters": scan.legacy_filter, "detail": "tables: " + (", ".join(scan.legacy_tables) or "none")},
        {"firewall": "nf_tables", "present": scan.nft_available, "filters": bool(scan.nft_filtering),
         "detail": scan.nft_error or ("; ".join(
             f"{c.label}: {'filters' if c.filters else 'does not drop'}" for c in scan.nft_chains)
             or "no input/output filter chains")},
        {"firewall": "firewalld", "present": scan.firewalld_bus or bool(scan.firewalld_tables),
         "filters": scan.firewalld_bus or bool(scan.firewalld_tables),
         "detail": "answers on the system bus" if scan.firewalld_bus else (
             "tables present, not answering on the bus" if scan.firewalld_tables else "not running")},
        {"firewall": "ufw", "present": scan.ufw is not None, "filters": scan.ufw_active,
         "detail": scan.ufw.found if scan.ufw is not None else "not installed"},
    ]
    try:
        names, reason = registry.choose_auto(scan)
        auto: Dict[str, Any] = {"backends": names, "reason": reason}
    except VrrpfwError as e:
        auto = {"backends": [], "reason": str(e), "error": True}
    return {"iptables_command": scan.iptables_variant, "firewalls": firewalls, "auto": auto}
