"""open / check / close, written once against the backend contract.

Order matters for an admin's safety: validate input, pick and probe the
backend, load (and so validate) the persisted file, and only then touch the
live firewall.  A failure before that point changes nothing; a failure
after it (persisting) is reported as exactly that partial outcome.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from . import environment, inputs, namespace
from .backends import registry
from .backends.base import Backend, Change, Key, Options, Persister, PersistPlan, RuntimeStatus
from .errors import ConcurrentChange, InputError, MayHaveChanged, VrrpfwError
from .host import conntrack
from .judge.netpath import responsible
from .keepalived_conf import KaConfig
from .model import (
    DEFAULT_GROUP4,
    DEFAULT_GROUP6,
    Family,
    VrrpRule,
    make_specs,
    validate_family,
    validate_group,
    validate_interface,
    validate_peers,
)
from .persist.files import check_path
from .persist.lock import check_dir as check_lock_dir
from .persist.lock import store_locks
from .persist.saved import FileSet
from .request import Request, from_conf, from_options, read_conf
from .results import Action, LayerReport, Persisted, PersistReport, Result, RuleReport, Runtime, merge

__all__ = ["open", "check", "close", "listen", "backends", "saved_texts", "SavedText"]

# Let through by someone else's rule or by chain policies: nothing of ours to persist.
UNMANAGED = (Runtime.ALLOWED_BY_OTHER, Runtime.ALLOWED_BY_POLICY)
GOOD = (Runtime.ALLOWED,) + UNMANAGED
# A commit refused because the table changed is re-read, re-planned and retried.
COMMIT_ATTEMPTS = 10


def open(  # noqa: A001 - the public name the product card promises
    interfaces: Optional[Iterable[str]] = None,
    *,
    group: Optional[str] = None,
    family: Optional[str] = None,
    peers: Sequence[str] = (),
    src: Optional[str] = None,
    ah: bool = False,
    strict: bool = False,
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
    interface's primary address); ``ah`` also IP protocol 51; ``strict``
    only adverts arriving with TTL / hop limit 255.  Or all of it from
    ``keepalived_conf``, keepalived's configuration (``interfaces`` then
    narrow it).  ``netns``: act inside that ``ip netns`` namespace.
    ``zone``, ``mode`` (auto/direct/zone), ``force`` and ``state_file``
    are for the firewalld backend.  With ``dry_run`` nothing changes, and
    the result says what the real run would change and would return
    (``changed``, ``ok``, ``exit_code``): Ansible's check mode."""
    ask = _Ask.checked(interfaces, group, family, peers, src, ah, strict, keepalived_conf, netns,
                       need_rules=True)
    options = _options(backend, persist, persist_file, dry_run, lock_timeout, root, zone, mode, force,
                       state_file, command="open")
    with namespace.entered(ask.netns):
        req = ask.request()
        options.peers = tuple(dict.fromkeys(r.group for r in req.rules if r.unicast))
        return _told(_run("open", req.rules, None, None, backend, options), req)


def check(
    interfaces: Optional[Iterable[str]] = None,
    *,
    group: Optional[str] = None,
    family: Optional[str] = None,
    peers: Sequence[str] = (),
    src: Optional[str] = None,
    ah: bool = False,
    strict: bool = False,
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
    ask = _Ask.checked(interfaces, group, family, peers, src, ah, strict, keepalived_conf, netns,
                       need_rules=False)
    options = _options(backend, persist, persist_file, dry_run, 0.0, root, zone, mode, True, state_file,
                       command="check")
    with namespace.entered(ask.netns):
        if not ask.wants_rules:
            options.only_family = ask.family if ask.family != "both" else None
            return _run("check", None, None, ask.group, backend, options)
        req = ask.request()
        options.peers = tuple(dict.fromkeys(r.group for r in req.rules if r.unicast))
        return _told(_run("check", req.rules, None, None, backend, options), req)


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
    ask = _Ask.checked(interfaces, group, family, peers, None, False, False, keepalived_conf, netns,
                       need_rules=False, closing=True)
    options = _options(backend, persist, persist_file, dry_run, lock_timeout, root, zone, mode, True,
                       state_file, command="close")
    options.remove_seed = inputs.flag(remove_seed_rules, "remove_seed_rules")
    options.only_family = ask.family if ask.family != "both" else None
    with namespace.entered(ask.netns):
        ifaces = ask.interfaces
        req = None
        if ask.conf is not None:
            req = from_conf(ask.conf, ask.interfaces, ask.family)
            ifaces = sorted({r.interface for r in req.rules})
        result = _run("close", None, ifaces, ask.group, backend, options)
        if not options.dry_run:
            # The flows' conntrack entries outlive the rules: forget them, so
            # the next advert is judged as new, as before open.
            result.warnings.extend(conntrack.forget(conntrack.closed_selectors(result.rules))[1])
        return _told(result, req) if req is not None else result


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
    ask = _Ask.checked(interfaces, None, family, (), None, False, False, keepalived_conf, netns,
                       need_rules=True)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
        raise InputError(f"listen takes seconds between 0 and 3600, not {seconds!r}")
    from . import listener as live

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


@dataclass
class _Ask:
    """What the caller asked for, type-checked and validated before any
    namespace is entered or firewall read (a bad keepalived.conf is
    refused first, with file:line)."""

    interfaces: Optional[List[str]]
    group: Optional[str]
    family: Optional[str]
    peers: Tuple[str, ...]
    src: Optional[str]
    ah: bool
    strict: bool
    conf: Optional[KaConfig]
    netns: Optional[str]

    @property
    def wants_rules(self) -> bool:
        """check: rules to judge (else: discover what vrrpfw has)."""
        return self.interfaces is not None or self.conf is not None

    @classmethod
    def checked(cls, interfaces: Any, group: Any, family: Any, peers: Any, src: Any, ah: Any,
                strict: Any, keepalived_conf: Any, netns: Any, need_rules: bool,
                closing: bool = False) -> _Ask:
        environment.check()  # before anything is read: a bad variable is exit 2
        names = _some(inputs.optional_names(interfaces, "interfaces"))
        if names is not None:
            names = [validate_interface(n) for n in names]
        grp = inputs.optional_text(group, "group")
        fam = validate_family(inputs.optional_text(family, "family"))
        ps = validate_peers(inputs.addresses(peers, "peers"))
        source = inputs.optional_text(src, "src")
        conf_path = inputs.optional_path(keepalived_conf, "keepalived_conf")
        ns = inputs.optional_text(netns, "netns")
        if ns is not None:
            ns = namespace.validate_name(ns)
        flags = (inputs.flag(ah, "ah"), inputs.flag(strict, "strict"))
        if grp is not None:
            if closing:
                grp = _close_group(grp)
            else:
                grp = validate_group(grp)
            if fam in ("ipv4", "ipv6") and Family.of(grp).value != fam and (closing or names is None):
                # With interfaces, open/check refuse it when they build the rules; close and a
                # check of every rule build none, and would look for rules that cannot exist.
                raise InputError(f"--group {grp} is not an {fam.replace('ip', 'IP')} address, "
                                 f"but --family is {fam}")
        conf = None
        if conf_path is not None:
            given = [n for n, on in (("--group", grp is not None and not closing), ("--peer", bool(ps)),
                                     ("--src", source is not None), ("--ah", flags[0])) if on]
            if given:
                raise InputError(f"{' and '.join(given)} come from the keepalived configuration; "
                                 f"leave {'them' if len(given) > 1 else 'it'} out with --keepalived-conf")
            conf = read_conf(conf_path)
            if ns is not None and conf.net_namespace not in (None, ns):
                raise InputError(f"--netns {ns} contradicts {conf.path}'s net_namespace "
                                 f"{conf.net_namespace}")
            ns = ns or conf.net_namespace
        elif need_rules and names is None:
            raise InputError("no interface given (use --iface NAME, or --keepalived-conf PATH)")
        if closing and ps:
            raise InputError("close takes no --peer: it removes vrrpfw's rules of the interfaces "
                             "(narrow with --group PEER_ADDRESS)")
        if not closing and conf is None:
            if names is None and (ps or source is not None or any(flags)):
                raise InputError("--peer, --src, --ah and --strict describe the rules to check; "
                                 "give --iface too")
            if names is not None:
                # The options' shape, now (this host's addresses are read
                # later, inside the namespace): contradictions are exit 2
                # before any I/O.  "::"/0.0.0.0 stand for the address.
                make_specs(names, [grp] if grp else [], fam, ps, source, flags[0], flags[1],
                           lambda _i, f: "0.0.0.0" if f.value == "ipv4" else "::")
        return cls(names, grp, fam, ps, source, flags[0], flags[1], conf, ns)

    def request(self) -> Request:
        if self.conf is not None:
            return from_conf(self.conf, self.interfaces, self.family, self.strict)
        assert self.interfaces is not None
        return from_options(self.interfaces, [self.group] if self.group else [], self.family,
                            self.peers, self.src, self.ah, self.strict)


def _close_group(group: str) -> str:
    """close --group: a multicast group, or a unicast peer's address."""
    try:
        return validate_group(group)
    except InputError:
        return validate_peers([group])[0]


def _told(result: Result, req: Request) -> Result:
    """The result, with why these rules (the configuration's derivation)."""
    result.derivation = list(req.derivation)
    result.warnings.extend(n for n in req.notes if n not in result.warnings)
    return result


MODES = ("auto", "direct", "zone")


def _some(names: Optional[List[str]]) -> Optional[List[str]]:
    """None means every interface vrrpfw manages; an empty list is refused,
    so a script whose computed list came out empty does not close all."""
    if names is not None and not names:
        raise InputError("the list of interfaces is empty; pass None (no --iface) for every interface "
                         "vrrpfw manages")
    return names


def _options(backend: Any, persist: Any, persist_file: Any, dry_run: Any, lock_timeout: Any, root: Any,
             zone: Any, mode: Any, force: Any, state_file: Any, command: str) -> Options:
    """Every option checked for type and range before anything is read."""
    if inputs.text(backend, "backend") not in registry.NAMES:
        raise InputError(f"unknown backend {backend!r}; choose one of: {', '.join(registry.NAMES)}")
    persist = inputs.flag(persist, "persist")
    dry_run = inputs.flag(dry_run, "dry_run")
    if isinstance(persist_file, os.PathLike):
        persist_file = os.fspath(persist_file)
    if isinstance(state_file, os.PathLike):
        state_file = os.fspath(state_file)
    if persist_file is not None:
        if not persist:
            raise InputError("--no-persist and --persist-file contradict each other; give one")
        check_path(persist_file)
    if state_file is not None:
        check_path(state_file, "--state-file")
    editing = command != "check"
    options = Options(persist, persist_file, dry_run, inputs.seconds(lock_timeout),
                      inputs.directory(root, "root"),
                      _zone(inputs.optional_text(zone, "zone")), _mode(inputs.text(mode, "mode")),
                      inputs.flag(force, "force"), state_file, sweep=command == "close",
                      validate_saved=editing, locked=editing and not dry_run)
    if options.locked:
        check_lock_dir()  # an unsafe lock directory is refused before any firewall is read
    return options


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    return mode


def _zone(zone: Optional[str]) -> Optional[str]:
    if zone is None:
        return None
    if not zone or len(zone) > 64 or not all((c.isascii() and c.isalnum()) or c in "-_" for c in zone):
        raise InputError(f"zone name {zone!r} is not a valid firewalld zone name")
    return zone


def _keep(rule: VrrpRule, ifaces: Optional[Sequence[str]], group: Optional[str],
          family: Optional[str]) -> bool:
    """close/check without rules: vrrpfw's rules of these interfaces, of
    this group (or unicast peer) and family, where given."""
    return ((ifaces is None or rule.interface in ifaces) and (group is None or rule.group == group)
            and (family is None or rule.family.value == family))


def _discover(b: Backend, p: Optional[Persister], ifaces: Optional[Sequence[str]],
              group: Optional[str], family: Optional[str] = None) -> List[VrrpRule]:
    found = list(b.discover())
    for rule in p.discover() if p is not None else []:
        if rule not in found:
            found.append(rule)
    return [r for r in found if _keep(r, ifaces, group, family)]


def _exists(interface: str) -> bool:
    """Asked of the kernel, not of /sys/class/net: sysfs shows the namespace
    it was mounted in, not the one --netns entered."""
    try:
        socket.if_nametoindex(interface)
    except OSError:
        return False
    return True


def _interface_warnings(rules: Sequence[VrrpRule]) -> List[str]:
    missing = sorted({r.interface for r in rules if not _exists(r.interface)})
    return [f"interface {name} does not exist here (yet); its rules apply once it appears"
            for name in missing]


@dataclass
class _Step:
    """One layer of the run while it runs: its backend and store, the
    report being built, and what the persist phase measured and planned."""

    b: Backend
    p: Optional[Persister]
    result: Result
    layer: LayerReport
    statuses: List[RuntimeStatus] = field(default_factory=list)
    changes: List[Change] = field(default_factory=list)
    before: Set[Key] = field(default_factory=set)
    plan: Optional[PersistPlan] = None
    report: Optional[PersistReport] = None


def _run(command: str, rules: Optional[List[VrrpRule]], ifaces: Optional[Sequence[str]],
         group: Optional[str], backend_name: str, options: Options) -> Result:
    """Select the layers, lock and load every store (so a bad saved file is
    refused before anything changes), run each layer (runtime, then its
    persist plan staged on the shared files), write each changed file once,
    then report.  An error once something changed is a partial result
    (exit 1) naming what each layer did; before that it is raised."""
    backends, reason = registry.select_layers(backend_name, options)
    if not backends:
        return Result(command, "none", dry_run=options.dry_run, nothing_filters=True,
                      warnings=[f"nothing blocks VRRP here ({reason}); nothing to change"])
    files = FileSet()
    steps: List[_Step] = []
    for b in backends:
        b.files = files
        p = b.persister() if options.persist else None
        result = Result(command, b.name, dry_run=options.dry_run)
        layer = LayerReport(b.name, saved="skipped" if p is None else "unchanged")
        result.layers.append(layer)
        steps.append(_Step(b, p, result, layer))
    paths = [path for st in steps for path in st.b.lock_paths() + (st.p.lock_paths() if st.p else [])]
    with store_locks(paths, options.lock_timeout) if options.locked else contextlib.nullcontext():
        for st in steps:
            if st.p is not None:
                st.p.load()
        failed = _run_layers(command, steps, rules, ifaces, group, options)
        before = _saved_before(files)
        _flush(steps, files, options)
    _trace_saved(files, before)
    for st in steps:
        if st.p is not None and st.plan is not None:
            _persist_report(st, command, options.dry_run)
        if command == "check":
            st.result.warnings.extend(
                f"{rep.direction} {rep.interface}: persisted but not active at runtime "
                "(vrrpfw never reloads the firewall; `vrrpfw open` adds it at runtime)"
                for rep in st.result.rules
                if rep.persisted is Persisted.PRESENT and rep.runtime is Runtime.MISSING)
    results = [st.result for st in steps]
    results[0].warnings.extend(n for n in files.notes() if n not in results[0].warnings)
    if len(results) > 1 and command != "check" and not options.dry_run and failed is None \
            and any(r.changed for r in results[1:]):
        # A later layer changed the path the earlier layers judged: judge again.
        for st in steps[:-1]:
            _rejudge(st.b, st.result)
    if options.dry_run and command != "check":
        for st in steps:
            _predict(st, command)
    return merge(results) if len(results) > 1 else results[0]


@dataclass(frozen=True)
class SavedText:
    """A saved file one run read and edited (or, in a dry run, would edit):
    its whole text before the run and after it (in a dry run: as the real
    run would write it); None while the file does not exist."""

    path: str
    before: Optional[str]
    after: Optional[str]

    @property
    def changed(self) -> bool:
        return self.before != self.after


# The recorders of the saved_texts() blocks now open in this context.
_RECORDERS: contextvars.ContextVar[Tuple[List[SavedText], ...]] = contextvars.ContextVar(
    "vrrpfw_saved_texts", default=())


@contextlib.contextmanager
def saved_texts() -> Iterator[List[SavedText]]:
    """Record the saved files of every run inside the block, each with its
    text before and after the run: what a diff needs that a unified diff of
    the planned lines (``Result.diff``) cannot give, the whole file as it
    was and as it is (Ansible's diff mode).  Nothing about the run changes;
    the list fills as each run ends.  A run that raised records nothing (it
    changed nothing)::

        with vrrpfw.api.saved_texts() as files:
            vrrpfw.open(["eth1"], dry_run=True)
        [(f.path, f.changed) for f in files]
    """
    seen: List[SavedText] = []
    token = _RECORDERS.set(_RECORDERS.get() + (seen,))
    try:
        yield seen
    finally:
        _RECORDERS.reset(token)


def _saved_before(files: FileSet) -> Dict[str, Optional[str]]:
    """Each loaded file's text as read, taken before the flush (which makes
    the written text the file's new original)."""
    if not _RECORDERS.get():
        return {}
    return {f.real: f.original for f in files.all() if f.loaded}


def _trace_saved(files: FileSet, before: Dict[str, Optional[str]]) -> None:
    """After the flush: the text on disk now (a failed write was reverted),
    or in a dry run the text the real run would write."""
    recorders = _RECORDERS.get()
    if not recorders:
        return
    texts = [SavedText(f.path, before[f.real], f.text) for f in files.all() if f.real in before]
    for seen in recorders:
        seen.extend(texts)


def _run_layers(command: str, steps: List[_Step], rules: Optional[List[VrrpRule]],
                ifaces: Optional[Sequence[str]], group: Optional[str], options: Options) -> Optional[str]:
    """Each layer in turn; stops at the first error, which is raised if
    nothing changed yet, else recorded (returns the failing layer's name)."""
    for i, st in enumerate(steps):
        try:
            _run_one(command, st, rules, ifaces, group, options)
            if st.p is not None:
                _persist_stage(st, command, options.dry_run)
        except VrrpfwError as e:
            if not any(s.result.changed or (s.plan is not None and s.plan.changed and not options.dry_run)
                       for s in steps[:i + 1]):
                raise
            st.layer.error = f"{st.b.name}: {e}"
            st.layer.runtime = "failed" if st.layer.runtime == "unchanged" else st.layer.runtime
            if st.layer.saved == "unchanged" and st.p is not None:
                st.layer.saved = "not run"
            for later in steps[i + 1:]:
                later.layer.runtime = "not run"
                later.layer.saved = "not run" if later.p is not None else "skipped"
                later.layer.error = f"{later.b.name}: not run ({st.b.name} failed first)"
            return st.b.name
    return None


def _rejudge(b: Backend, result: Result) -> None:
    """Refresh the runtime verdicts of a layer's report (no change made);
    changes are made by now, so a failure is a warning, never an error."""
    try:
        with b.session(write=False):
            statuses = b.runtime_status([VrrpRule.from_key(r.key) for r in result.rules])
    except VrrpfwError as e:
        result.warnings.append(f"{b.name}: could not judge the path again after the other layers "
                               f"changed ({e}); run `vrrpfw check`")
        return
    for rep, st in zip(result.rules, statuses):
        if rep.runtime is not Runtime.ABSENT:
            rep.runtime, rep.detail = st.state, st.detail
    result.blockers = b.blockers()


def _run_one(command: str, step: _Step, rules: Optional[List[VrrpRule]],
             ifaces: Optional[Sequence[str]], group: Optional[str], options: Options) -> None:
    b, persister, result = step.b, step.p, step.result
    write = command != "check" and not options.dry_run
    wanted = rules
    statuses: List[RuntimeStatus] = []
    changes: List[Change] = []
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        applying = False
        try:
            with b.session(write=write):
                rules = wanted if wanted is not None else _discover(b, persister, ifaces, group,
                                                                         options.only_family)
                statuses = b.runtime_status(rules)
                changes = b.plan(statuses, command) if command != "check" else []
                result.planned = [b.describe(c) for c in changes]
                if changes and b.files is not None:
                    b.files.check_writable()  # a saved file it cannot replace: refused before any change
                if write and changes:
                    applying = True
                    b.apply(changes)
                    applying = False
                    result.changed = True
                    step.layer.runtime = "changed"
                    statuses = b.runtime_status(rules)  # proof, read back after the commit
            break
        except ConcurrentChange:
            if attempt == COMMIT_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # let the other writer pass
        except VrrpfwError as e:
            landed = _landed(b, rules, statuses) if applying and rules is not None else False
            if landed is not False:
                result.changed = True  # so the error becomes a partial result, not exit 3
                # Unknown (the firewall cannot be read back, or firewalld left a
                # call unanswered): "may have changed", never a plain "changed".
                unknown = landed is None or isinstance(e, MayHaveChanged)
                step.layer.runtime = "may have changed" if unknown else "partly changed"
            raise
    if options.dry_run and changes:
        step.layer.runtime = "would change"
        result.changed = True
    step.statuses, step.changes = statuses, changes
    result.rules = [_report(b, st, changes, command) for st in statuses]
    if persister is None:
        for rep in result.rules:
            rep.persisted = Persisted.SKIPPED
    if command != "close":
        result.blockers = b.blockers()
        result.warnings.extend(_interface_warnings([st.rule for st in statuses]))
    result.warnings.extend(b.warnings())
    if command == "check" and not statuses:
        result.warnings.append("no vrrpfw rules found at runtime or in the persisted file")


def _landed(b: Backend, rules: Sequence[VrrpRule], before: Sequence[RuntimeStatus]) -> Optional[bool]:
    """After a failed apply: did any of it land?  Not every firewall applies
    a batch atomically (firewalld takes one D-Bus call per allowance), and
    exit 3 promises that nothing changed.  None: unknown (the firewall could
    not be read back), which the caller treats as maybe landed."""
    try:
        with b.session(write=False):
            after = b.runtime_status(rules)
    except Exception:  # the firewall may be gone (a stopped firewalld): say "maybe"
        return None
    return [(st.state, len(st.ours)) for st in after] != [(st.state, len(st.ours)) for st in before]


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


def _measure(p: Persister, command: str) -> Callable[[Sequence[VrrpRule]], Set[Key]]:
    return p.owned if command == "close" else p.persisted


def _persist_stage(step: _Step, command: str, dry_run: bool) -> None:
    """Plan this layer's saved changes on the text earlier layers staged;
    stage them (saved files) or apply them (firewalld's permanent
    configuration, not in a dry run)."""
    p = step.p
    assert p is not None
    rules = [st.rule for st in step.statuses]
    step.before = _measure(p, command)(rules)
    if command == "open" and step.b.held():
        plan = PersistPlan(False)  # another program's chain keeps VRRP out: open changes nothing
    elif command == "open":
        # An allowance someone else made is theirs to persist; we add nothing.
        wanted = [st.rule for st in step.statuses if st.state not in UNMANAGED or st.ours]
        plan = p.plan("open", wanted)
    elif command == "close":
        plan = p.plan("close", rules)
    else:
        plan = PersistPlan(False)
    step.plan = plan
    step.report = PersistReport(p.path, boot_restore=p.restorer, note=p.note)
    step.result.persist.append(step.report)
    if not plan.changed:
        return
    step.result.diff = plan.diff
    if dry_run:
        step.layer.saved = "would change"
        step.result.changed = True
        if p.stages:
            p.commit(plan)  # staged in memory only: never flushed in a dry run
        return
    try:
        p.commit(plan)
    except VrrpfwError as e:
        step.report.error = f"persisting failed: {e}"
        step.layer.saved = "failed"
        return
    if not p.stages:
        step.report.changed = True
        step.result.changed = True
        step.layer.saved = "changed"


def _flush(steps: Sequence[_Step], files: FileSet, options: Options) -> None:
    """Write each changed saved file once (a dry run only asks the
    restorers); a failure is reported on every layer that staged into that
    file."""
    changed = {f.real for f in files.all() if f.changed}
    errors = files.flush(dry_run=options.dry_run)
    for st in steps:
        if st.p is None or st.report is None or not st.p.stages or st.plan is None or not st.plan.changed:
            continue
        mine = {os.path.realpath(path) for path in st.p.lock_paths()}
        failures = [errors[real] for real in sorted(mine) if real in errors]
        if failures:
            st.report.error = ("persisting would fail: " if options.dry_run else "persisting failed: ") \
                + "; ".join(failures)
            st.layer.saved = "failed"
        elif mine & changed and not options.dry_run:
            st.report.changed = True
            st.result.changed = True
            st.layer.saved = "changed"


def _persist_report(step: _Step, command: str, dry_run: bool) -> None:
    """Per rule: persisted or not, measured on the store as written (or,
    in a dry run, as it would be written)."""
    p, plan, report = step.p, step.plan, step.report
    assert p is not None and plan is not None and report is not None
    rules = [st.rule for st in step.statuses]
    after: Set[Key] = _measure(p, command)(rules)
    if dry_run and plan.changed and not p.stages:
        keys = plan.keys or {r.key for r in rules}
        after = (after | keys) if command == "open" else (after - keys)
    report.note = p.note
    runtime_only = p.runtime_only(rules) if command != "close" else set()
    for st, rep in zip(step.statuses, step.result.rules):
        key = st.rule.key
        if command == "close":
            rep.persisted = Persisted.PRESENT if key in after else Persisted.ABSENT
            if key in step.before and key not in after:
                rep.persist_action = Action.DELETE
        elif st.state in UNMANAGED and not st.ours and key not in after and key not in runtime_only:
            rep.persisted = Persisted.NOT_MANAGED
        else:
            rep.persisted = Persisted.PRESENT if key in after else Persisted.MISSING
            if key not in step.before and key in after and command == "open":
                rep.persist_action = Action.INSERT


def _predict(step: _Step, command: str) -> None:
    """Dry run: each rule's runtime state as the real run would leave it.
    open puts vrrpfw's rule at the top of every chain of the run's layers
    that does not let the advert through, so a rule ends allowed unless a
    chain of a layer outside the run still blocks it (a blocker, which
    already makes the result not ok); close removes every rule of ours."""
    layers = step.b.options.layers
    planned = {c.rule.key for c in step.changes}
    for st, rep in zip(step.statuses, step.result.rules):
        if command == "close":
            if st.ours and st.rule.key in planned:
                rep.runtime = Runtime.ABSENT
            continue
        if rep.runtime in GOOD or step.b.held():
            continue
        if st.verdict is None:
            if st.rule.key in planned:
                rep.runtime = Runtime.ALLOWED
            continue
        if all(cv.state.passes or responsible(cv.chain) in layers for cv in st.verdict.chains):
            rep.runtime = Runtime.ALLOWED


def backends() -> Dict[str, Any]:
    """Each firewall found on this host, whether it filters VRRP now, and
    what ``auto`` would use and why.  Reads only."""
    from .hostscan import scan as scan_host

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
