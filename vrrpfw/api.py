"""open / check / close, written once against the backend contract.

Order matters for an admin's safety: validate input, pick and probe the
backend, load (and so validate) the persisted file, and only then touch the
live firewall.  A failure before that point changes nothing; a failure
after it (persisting) is reported as exactly that partial outcome.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

from .backends import registry
from .backends.base import Backend, Change, Key, Options, Persister, PersistPlan, RuntimeStatus
from .errors import ConcurrentChange, InputError, VrrpfwError
from .model import (
    DEFAULT_GROUP4,
    VrrpRule,
    make_spec,
    rules_for,
    validate_group,
    validate_interface,
    validate_peers,
)
from .results import Action, Persisted, PersistReport, Result, RuleReport, Runtime, merge

__all__ = ["open", "check", "close", "backends"]

# Let through by someone else's rule or by chain policies: nothing of ours to persist.
UNMANAGED = (Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY)
# A commit refused because the table changed is re-read, re-planned and retried.
COMMIT_ATTEMPTS = 10


def open(  # noqa: A001 - the public name the product card promises
    interfaces: Iterable[str],
    *,
    group: str = DEFAULT_GROUP4,
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
    peers: Sequence[str] = (),
) -> Result:
    """Allow VRRP in and out of each interface; idempotent.  ``zone``,
    ``mode`` (auto/direct/zone), ``force`` and ``state_file`` are for the
    firewalld backend; ``peers`` are the VRRP peers' addresses, for rules
    and zones that match on the source."""
    spec = make_spec(interfaces, group)
    options = Options(persist, persist_file, dry_run, lock_timeout, root,
                      _zone(zone), _mode(mode), force, state_file, peers=validate_peers(peers))
    return _run("open", rules_for(spec), None, None, backend, options)


def check(
    interfaces: Optional[Iterable[str]] = None,
    *,
    group: str = DEFAULT_GROUP4,
    backend: str = "auto",
    persist: bool = True,
    persist_file: Optional[str] = None,
    root: str = "/",
    zone: Optional[str] = None,
    mode: str = "auto",
    state_file: Optional[str] = None,
    peers: Sequence[str] = (),
) -> Result:
    """Report, per rule, runtime and persisted state; changes nothing.
    Without interfaces, checks every interface vrrpfw has rules for."""
    rules = rules_for(make_spec(interfaces, group)) if interfaces else None
    group_filter = None if interfaces else (validate_group(group) if group != DEFAULT_GROUP4 else None)
    options = Options(persist, persist_file, False, 0.0, root, _zone(zone), _mode(mode), True, state_file,
                      peers=validate_peers(peers))
    return _run("check", rules, None, group_filter, backend, options)


def close(
    interfaces: Optional[Iterable[str]] = None,
    *,
    group: Optional[str] = None,
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
    """Remove vrrpfw's own rules (for these interfaces, any group unless
    ``group`` is given), runtime and persisted; never anyone else's.
    ``remove_seed_rules`` (firewalld) also removes hand-made VRRP direct rules."""
    ifaces = [validate_interface(i) for i in interfaces] if interfaces else None
    group_filter = validate_group(group) if group is not None else None
    options = Options(persist, persist_file, dry_run, lock_timeout, root,
                      _zone(zone), _mode(mode), True, state_file, remove_seed_rules, sweep=True,
                      peers=validate_peers(peers))
    return _run("close", None, ifaces, group_filter, backend, options)


MODES = ("auto", "direct", "zone")


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    return mode


def _zone(zone: Optional[str]) -> Optional[str]:
    if zone is None:
        return None
    if not zone or len(zone) > 64 or not all(c.isalnum() or c in "-_" for c in zone):
        raise InputError(f"zone name {zone!r} is not a valid firewalld zone name")
    return zone


def _keep(key: Key, ifaces: Optional[Sequence[str]], group: Optional[str]) -> bool:
    return (ifaces is None or key[1] in ifaces) and (group is None or key[2] == group)


def _discover(b: Backend, p: Optional[Persister], ifaces: Optional[Sequence[str]],
              group: Optional[str]) -> List[VrrpRule]:
    found = list(b.discover())
    for rule in p.discover() if p is not None else []:
        if rule not in found:
            found.append(rule)
    return [r for r in found if _keep(r.key, ifaces, group)]


def _interface_warnings(rules: Sequence[VrrpRule]) -> List[str]:
    missing = sorted({r.interface for r in rules if not os.path.exists(f"/sys/class/net/{r.interface}")})
    return [f"interface {name} does not exist here (yet); its rules apply once it appears"
            for name in missing]


def _run(command: str, rules: Optional[List[VrrpRule]], ifaces: Optional[Sequence[str]],
         group: Optional[str], backend_name: str, options: Options) -> Result:
    backends, reason = registry.select_layers(backend_name, options)
    if not backends:
        return Result(command, "none", dry_run=options.dry_run, nothing_filters=True,
                      warnings=[f"nothing blocks VRRP here ({reason}); nothing to change"])
    # Every store is loaded (and so validated) before any layer changes anything.
    prepared = [(b, b.persister() if options.persist else None) for b in backends]
    for _, persister in prepared:
        if persister is not None:
            persister.load()
    results = [_run_one(command, b, p, rules, ifaces, group, options) for b, p in prepared]
    if len(results) == 1:
        return results[0]
    if command != "check" and not options.dry_run and any(r.changed for r in results[1:]):
        # A later layer changed the path the earlier layers judged: judge again.
        for b, result in zip(backends[:-1], results[:-1]):
            _rejudge(b, result)
    return merge(results)


def _rejudge(b: Backend, result: Result) -> None:
    """Refresh the runtime verdicts of a layer's report (no change made)."""
    with b.session(write=False):
        statuses = b.runtime_status([VrrpRule.from_key(r.key) for r in result.rules])
    for rep, st in zip(result.rules, statuses):
        if rep.runtime is not Runtime.ABSENT:
            rep.runtime, rep.detail = st.state, st.detail
    result.blockers = b.blockers()


def _run_one(command: str, b: Backend, persister: Optional[Persister], rules: Optional[List[VrrpRule]],
             ifaces: Optional[Sequence[str]], group: Optional[str], options: Options) -> Result:
    write = command != "check" and not options.dry_run
    result = Result(command, b.name, dry_run=options.dry_run)
    wanted = rules
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            with b.session(write=write):
                rules = wanted if wanted is not None else _discover(b, persister, ifaces, group)
                statuses = b.runtime_status(rules)
                changes = b.plan(statuses, command) if command != "check" else []
                result.planned = [b.describe(c) for c in changes]
                if write and changes:
                    b.apply(changes)
                    result.changed = True
                    statuses = b.runtime_status(rules)  # proof, read back after the commit
            break
        except ConcurrentChange:
            if attempt == COMMIT_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # let the other writer pass
    result.rules = [_report(b, st, changes, command) for st in statuses]
    if persister is not None:
        _persist(result, persister, statuses, command, options.dry_run)
    else:
        for rep in result.rules:
            rep.persisted = Persisted.SKIPPED
    if command != "close":
        result.blockers = b.blockers()
        result.warnings.extend(_interface_warnings([st.rule for st in statuses]))
    result.warnings.extend(b.warnings())
    if command == "check":
        for rep in result.rules:
            if rep.persisted is Persisted.PRESENT and rep.runtime is Runtime.MISSING:
                result.warnings.append(
                    f"{rep.direction} {rep.interface}: persisted but not active at runtime "
                    "(vrrpfw never reloads the firewall; `vrrpfw open` adds it at runtime)")
    if command == "check" and not statuses:
        result.warnings.append("no vrrpfw rules found at runtime or in the persisted file")
    return result


def _report(b: Backend, st: RuntimeStatus, changes: Sequence[Change], command: str) -> RuleReport:
    mine = [c.action for c in changes if c.rule == st.rule]
    action = Action.NONE
    for candidate in (Action.MOVE, Action.INSERT, Action.DELETE):
        if candidate in mine:
            action = candidate
            break
    state = st.state
    if command == "close" and not st.ours:
        state = Runtime.ABSENT
    rep = RuleReport.for_rule(st.rule, b.rule_text(st.rule), state, Persisted.MISSING)
    rep.backend = b.name
    rep.action = action
    rep.detail = st.detail
    return rep


def _persist(result: Result, p: Persister, statuses: Sequence[RuntimeStatus],
             command: str, dry_run: bool) -> None:
    rules = [st.rule for st in statuses]
    measure = p.owned if command == "close" else p.persisted
    before: Set[Key] = measure(rules)
    if command == "open":
        # An allowance someone else made is theirs to persist; we add nothing.
        wanted = [st.rule for st in statuses if st.state not in UNMANAGED or st.ours]
        plan = p.plan("open", wanted)
    elif command == "close":
        plan = p.plan("close", rules)
    else:
        plan = PersistPlan(False)
    report = PersistReport(p.path, boot_restore=p.restorer, note=p.note)
    if plan.changed:
        result.diff = plan.diff
        if not dry_run:
            try:
                p.commit(plan)
                report.changed = True
                result.changed = True
            except VrrpfwError as e:
                report.error = f"persisting failed: {e}"
    after: Set[Key] = measure(rules)
    result.persist.append(report)
    for st, rep in zip(statuses, result.rules):
        key = st.rule.key
        if command == "close":
            rep.persisted = Persisted.PRESENT if key in after else Persisted.ABSENT
            if key in before and (key not in after or (dry_run and plan.changed)):
                rep.persist_action = Action.DELETE
        elif st.state in UNMANAGED and not st.ours and key not in after:
            rep.persisted = Persisted.NOT_MANAGED
        else:
            rep.persisted = Persisted.PRESENT if key in after else Persisted.MISSING
            if key not in before and (dry_run or report.changed) and command == "open":
                rep.persist_action = Action.INSERT


def backends() -> Dict[str, Any]:
    """Each firewall found on this host, whether it filters VRRP now, and
    what ``auto`` would use and why.  Reads only."""
    from .hostscan import scan as scan_host

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
    ]
    try:
        names, reason = registry.choose_auto(scan)
        auto: Dict[str, Any] = {"backends": names, "reason": reason}
    except VrrpfwError as e:
        auto = {"backends": [], "reason": str(e), "error": True}
    return {"iptables_command": scan.iptables_variant, "firewalls": firewalls, "auto": auto}
