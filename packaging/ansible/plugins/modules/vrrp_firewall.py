#!/usr/bin/python
# Copyright: vrrpfw authors
# MIT License (see the galaxy.yml of this collection)
"""Ansible module vrrpfw.vrrpfw.vrrp_firewall: a thin layer over vrrpfw.api.

Everything that decides what to open, close or report is the vrrpfw
library on the managed host; this file only maps the module's options to
``vrrpfw.open`` / ``vrrpfw.close``, turns the library's ``Result`` into
Ansible's (``changed``, ``failed`` with vrrpfw's one-line message), and
builds diff mode's before/after texts.  The mapping and the texts are pure
functions, unit-tested without Ansible (tests/unit/packages/test_ansible_module.py).
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vrrp_firewall
short_description: Open (or close) a Linux host's firewall for VRRP, as keepalived needs it
version_added: "0.1.0"
description:
  - Allows the VRRP adverts keepalived sends and receives (IP protocol 112, multicast to
    C(224.0.0.18) / C(ff02::12) or unicast between peers, IP protocol 51 for C(auth_type AH)) through
    every firewall layer that would drop them (legacy iptables, nf_tables / iptables-nft,
    firewalld), and persists exactly vrrpfw's own rules in the saved ruleset.
  - A thin layer over the vrrpfw Python library, which must be installed on the managed host for
    the Python Ansible runs the module with. Every option of C(vrrpfw open) and C(vrrpfw close)
    is an option here; the library decides what changes, so C(changed) is vrrpfw's own answer.
  - Idempotent. O(state=open) inserts vrrpfw's narrow accept rules where a chain would drop an
    advert and saves them; O(state=closed) removes exactly vrrpfw's rules (runtime and saved),
    never anyone else's.
  - The task fails when the host does not end in the state asked for (another firewall layer
    still blocks VRRP, a saved file could not be written, only part of the change landed), and
    on bad input or an environment problem, with vrrpfw's one-line message in C(msg) and its
    documented exit code in C(exit_code).
requirements:
  - The vrrpfw Python library (the vrrpfw package) importable by the managed host's Python
    (set C(ansible_python_interpreter) to a Python that has it).
  - Root (CAP_NET_ADMIN) on the managed host, as for the C(vrrpfw) command.
options:
  state:
    description:
      - V(open) allows VRRP (and persists it unless O(persist=false)); V(closed) removes vrrpfw's
        rules, runtime and persisted.
    type: str
    choices: [open, closed]
    default: open
  interfaces:
    description:
      - Interfaces VRRP runs on (C(--iface)). Required for O(state=open) unless
        O(keepalived_conf) is given, which they then narrow.
      - With O(state=closed), vrrpfw's rules of these interfaces; omitted, all of vrrpfw's rules.
      - ASCII letters, digits, C(.), C(_) and C(-) (not first), at most 15 bytes; wildcards are
        refused.
    type: list
    elements: str
    aliases: [iface]
  keepalived_conf:
    description:
      - keepalived's configuration file (C(--keepalived-conf)). O(state=open) opens exactly what
        its C(vrrp_instance)s need; O(state=closed) closes the rules of its interfaces.
      - O(group), O(peers), O(src) and O(ah) come from the file and are refused beside it.
    type: path
  group:
    description:
      - Multicast group (C(--group)); IPv4 (C(vrrp_mcast_group4), default 224.0.0.18) or IPv6
        (C(vrrp_mcast_group6), default C(ff02::12)).
      - With O(state=closed), only rules for this group or unicast peer address.
    type: str
  family:
    description:
      - Address family (C(--family)). Default from O(group) / O(peers), else ipv4.
      - With O(state=closed), only the rules of that family (default both).
    type: str
    choices: [ipv4, ipv6, both]
  peers:
    description:
      - Unicast peers' addresses (C(--peer), keepalived's C(unicast_peer)). Rules then match
        adverts between each peer and O(src), and no multicast rule is opened.
      - O(state=open) only (close them with O(group=PEER_ADDRESS)).
    type: list
    elements: str
    aliases: [peer]
  sources:
    description:
      - Multicast only, O(state=open) only; the peers' addresses, the sources of their adverts
        (C(--from)). vrrpfw judges exactly these peers' adverts and opens where each is judged
        (a firewalld zone bound to that source, else the interface's zone). Default any peer on
        the interface's subnets (every firewalld zone bound to a source there is opened too).
    type: list
    elements: str
  src:
    description:
      - Unicast only, O(state=open) only; this host's address (C(--src), C(unicast_src_ip)).
        Default the interface's primary address of the family (link-local for IPv6).
    type: str
  ah:
    description:
      - Also allow IP protocol 51 (C(auth_type AH); VRRPv2 over IPv4 only). O(state=open) only.
    type: bool
    default: false
  strict:
    description:
      - Only adverts with TTL / hop limit 255, as RFC 5798 receivers require (not with firewalld;
        not on IPv6 unicast rules, whose adverts keepalived sends with the kernel's hop limit).
        O(state=open) only.
    type: bool
    default: false
  netns:
    description:
      - Act inside this network namespace (an C(ip netns) name; keepalived's C(net_namespace)).
    type: str
  backend:
    description:
      - The firewall to change (C(--backend)). V(auto) uses firewalld when it answers on the system
        bus, ufw where it is active, else every layer that filters VRRP (legacy iptables and
        nf_tables can both drop the same advert).
      - Or one by name; V(iptables), V(nftables), V(firewalld), or any other backend the installed
        vrrpfw has (C(vrrpfw backends) lists them). The library checks the name, so an unknown one
        fails with vrrpfw's message.
    type: str
    default: auto
  persist:
    description:
      - Persist the change in the saved ruleset (or firewalld's permanent configuration).
        V(false) changes the runtime firewall only (C(--no-persist)); contradicts O(persist_file).
    type: bool
    default: true
  persist_file:
    description:
      - Saved ruleset to edit instead of the distribution's (C(/etc/iptables/rules.v4),
        C(/etc/sysconfig/iptables), C(/etc/nftables.conf), ...). vrrpfw never creates it.
    type: path
  lock_timeout:
    description:
      - Seconds to wait for the xtables lock and vrrpfw's saved-file locks; a finite number >= 0.
    type: float
    default: 10
  zone:
    description:
      - firewalld only (refused with another O(backend) named); the zone to use (default the
        interface's zone).
    type: str
  mode:
    description:
      - firewalld only; V(zone) adds rich rules to zones and policies, V(direct) direct rules
        (refused on firewalld's nftables backend unless O(force)), V(auto) chooses.
    type: str
    choices: [auto, direct, zone]
    default: auto
  force:
    description:
      - firewalld only, O(state=open) only; direct rules even on firewalld's nftables backend,
        where they do not decide.
    type: bool
    default: false
  state_file:
    description:
      - firewalld only; where vrrpfw records the zone allowances it added (default
        C(/var/lib/vrrpfw/state.json)).
    type: path
  remove_seed_rules:
    description:
      - firewalld only, O(state=closed) only; also remove hand-made VRRP direct rules.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description:
      - vrrpfw's dry run; changes nothing and reports what the real run would change (C(changed))
        and whether it would succeed (a predicted failure fails the task).
  diff_mode:
    support: full
    description:
      - Before and after of every saved file the run edits (or would edit), and of vrrpfw's
        runtime rules (each rule with its runtime and persisted state; firewalld's permanent
        configuration shows there as each rule's persisted state).
notes:
  - Runs on the managed host; C(vrrpfw check --listen) and C(vrrpfw prove) remain command-line
    tools (they are measurements, not state).
author:
  - vrrpfw authors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Open the firewall for every vrrp_instance of keepalived's configuration
  vrrpfw.vrrpfw.vrrp_firewall:
    keepalived_conf: /etc/keepalived/keepalived.conf

- name: IPv4 multicast and VRRPv3 over IPv6 on one interface, runtime only
  vrrpfw.vrrpfw.vrrp_firewall:
    interfaces: [enp0s8]
    family: both
    persist: false

- name: Unicast VRRP with AH between this host and two peers
  vrrpfw.vrrpfw.vrrp_firewall:
    interfaces: [enp0s8]
    peers: [192.0.2.2, 192.0.2.3]
    ah: true

- name: firewalld, a given zone
  vrrpfw.vrrpfw.vrrp_firewall:
    interfaces: [enp0s8]
    backend: firewalld
    zone: internal

- name: Remove vrrpfw's rules of an interface, runtime and saved
  vrrpfw.vrrpfw.vrrp_firewall:
    interfaces: [enp0s8]
    state: closed
"""

RETURN = r"""
changed:
  description: Whether vrrpfw changed anything (in check mode, whether the real run would).
  returned: always
  type: bool
ok:
  description: Whether the host is (in check mode, would be) in the state asked for.
  returned: success, and when the run completed but left the host not in that state
  type: bool
exit_code:
  description: The exit code C(vrrpfw) documents for the same run (0 ok, 1 missing or partial,
    2 bad input, 3 environment, 4 internal error).
  returned: always
  type: int
  sample: 0
backend:
  description: The firewall layers the run used, joined with C(+) (C(none) where nothing filters VRRP).
  returned: when the run completed
  type: str
  sample: iptables
rules:
  description: Per rule, what vrrpfw found and did.
  returned: when the run completed
  type: list
  elements: dict
  contains:
    direction: {description: in or out, type: str}
    interface: {description: the interface, type: str}
    group: {description: "the selector: a group, C(peer P local L), with C(ah) / C(ttl 255)", type: str}
    family: {description: ipv4 or ipv6, type: str}
    chain: {description: the chain, type: str}
    rule: {description: the rule in the firewall's own syntax, type: str}
    runtime:
      description: allowed, allowed-by-other, allowed-by-policy, missing, shadowed, uncertain or absent
      type: str
    persisted: {description: "present, missing, absent, skipped, not-managed, uncertain", type: str}
    action: {description: "none, insert, move or delete (runtime)", type: str}
    persist_action: {description: "none, insert or delete (saved)", type: str}
    detail: {description: the chains that decide, type: str}
    backend: {description: the layer of this rule, type: str}
persist:
  description: Per saved store, its path, whether it changed, errors and notes.
  returned: when the run completed
  type: list
  elements: dict
planned:
  description: The exact firewall commands the run made (or, in check mode, would make).
  returned: when the run completed
  type: list
  elements: str
saved_diff:
  description: Unified diff of vrrpfw's lines in the saved files.
  returned: when the run completed
  type: str
blockers:
  description: Other firewall layers that still block VRRP.
  returned: when the run completed
  type: list
  elements: str
layers:
  description: What each firewall layer of the run did (runtime and saved), for partial outcomes.
  returned: when the run completed
  type: list
  elements: dict
derivation:
  description: With O(keepalived_conf), each vrrp_instance and the rules it needs.
  returned: when the run completed
  type: list
  elements: str
report:
  description: vrrpfw's plain report of the run, as the command prints it.
  returned: when the run completed
  type: list
  elements: str
"""

import traceback  # noqa: E402 - Ansible's layout: documentation first
from typing import Any, Dict, List, Optional, Tuple  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:
    import vrrpfw
    from vrrpfw import api as vrrpfw_api
    from vrrpfw.cli import render as vrrpfw_render
except ImportError:  # reported by main(), with what to install
    vrrpfw = None
    vrrpfw_api = None
    vrrpfw_render = None
    IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    IMPORT_ERROR = None

EXIT_USAGE = 2
EXIT_INTERNAL = 4
FIREWALLD_ONLY = ("zone", "mode", "force", "remove_seed_rules", "state_file")
OPEN_ONLY = ("src", "ah", "strict", "force", "sources")  # close takes peers, to refuse them in its own words
CLOSED_ONLY = ("remove_seed_rules",)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "state": {"type": "str", "choices": ["open", "closed"], "default": "open"},
    "interfaces": {"type": "list", "elements": "str", "aliases": ["iface"]},
    "keepalived_conf": {"type": "path"},
    "group": {"type": "str"},
    "family": {"type": "str", "choices": ["ipv4", "ipv6", "both"]},
    "peers": {"type": "list", "elements": "str", "aliases": ["peer"]},
    "sources": {"type": "list", "elements": "str"},
    "src": {"type": "str"},
    "ah": {"type": "bool", "default": False},
    "strict": {"type": "bool", "default": False},
    "netns": {"type": "str"},
    "backend": {"type": "str", "default": "auto"},  # vrrpfw checks the name: its backends may grow
    "persist": {"type": "bool", "default": True},
    "persist_file": {"type": "path"},
    "lock_timeout": {"type": "float", "default": 10.0},
    "zone": {"type": "str"},
    "mode": {"type": "str", "choices": ["auto", "direct", "zone"], "default": "auto"},
    "force": {"type": "bool", "default": False},
    "state_file": {"type": "path"},
    "remove_seed_rules": {"type": "bool", "default": False},
}


def one_line(text: str) -> str:
    """vrrpfw's messages are one line; keep them so whatever they carry."""
    return " ".join(str(text).split())


def _given(params: Dict[str, Any], name: str) -> bool:
    """Set away from its default (a flag true, a value given)."""
    default = ARGUMENT_SPEC[name].get("default")
    value = params.get(name)
    return value is not None and value != default


def refusal(params: Dict[str, Any]) -> Optional[str]:
    """What the command line refuses before calling the library (options of
    the other state, firewalld's options beside another backend), in the
    module's own option names; None when the options fit together."""
    state = params["state"]
    wrong = OPEN_ONLY if state == "closed" else CLOSED_ONLY
    given = [name for name in wrong if _given(params, name)]
    if given:
        other = "open" if state == "closed" else "closed"
        verb = "applies" if len(given) == 1 else "apply"
        return f"{' and '.join(given)} {verb} to state={other} only, not to state={state}"
    backend = params["backend"]
    fwd = [name for name in FIREWALLD_ONLY if _given(params, name)]
    if fwd and backend not in ("auto", "firewalld"):
        verb = "applies" if len(fwd) == 1 else "apply"
        return f"{' and '.join(fwd)} {verb} to firewalld only, not to backend={backend}"
    if params.get("force") and params.get("mode") == "zone":
        return ("force applies to mode=direct only (direct rules on firewalld's nftables backend), "
                "not to mode=zone")
    return None


def call_arguments(params: Dict[str, Any], check_mode: bool) -> Tuple[str, Dict[str, Any]]:
    """The library call for these options: ("open" or "close", keyword
    arguments).  Values pass through unchanged, so vrrpfw validates them and
    a bad one fails with vrrpfw's own message; check mode is its dry run."""
    common: Dict[str, Any] = {
        "interfaces": params.get("interfaces"),
        "group": params.get("group"),
        "family": params.get("family"),
        "keepalived_conf": params.get("keepalived_conf"),
        "netns": params.get("netns"),
        "backend": params["backend"],
        "persist": params["persist"],
        "persist_file": params.get("persist_file"),
        "dry_run": bool(check_mode),
        "lock_timeout": params["lock_timeout"],
        "zone": params.get("zone"),
        "mode": params["mode"],
        "state_file": params.get("state_file"),
        "peers": list(params.get("peers") or ()),
    }
    if params["state"] == "closed":
        return "close", {**common, "remove_seed_rules": params["remove_seed_rules"]}
    return "open", {**common, "src": params.get("src"), "ah": params["ah"], "strict": params["strict"],
                    "force": params["force"], "sources": list(params.get("sources") or ())}


def check_arguments(params: Dict[str, Any]) -> Dict[str, Any]:
    """The ``vrrpfw.check`` that gives diff mode its "before", as a dry run
    (a check may update firewalld's state file; check mode writes nothing):
    for open, the same rules; for close, every rule vrrpfw has (of the
    family given), of which :func:`close_scope` keeps those the close
    handled (close's ``group`` may be a unicast peer, which check's is not)."""
    args: Dict[str, Any] = {
        "family": params.get("family"), "netns": params.get("netns"),
        "backend": params["backend"], "persist": params["persist"],
        "persist_file": params.get("persist_file"), "zone": params.get("zone"), "mode": params["mode"],
        "state_file": params.get("state_file"), "dry_run": True,  # writes nothing, not even records
    }
    if params["state"] == "closed":
        return args
    args.update(interfaces=params.get("interfaces"), keepalived_conf=params.get("keepalived_conf"),
                group=params.get("group"), peers=list(params.get("peers") or ()), src=params.get("src"),
                ah=params["ah"], strict=params["strict"], sources=list(params.get("sources") or ()))
    return args


def rule_lines(rules: List[Dict[str, Any]]) -> str:
    """vrrpfw's runtime rules as diff text: one line per rule with its
    runtime and persisted state, then the rule in the firewall's syntax."""
    out = []
    order = ("backend", "chain", "interface", "direction", "group")
    for r in sorted(rules, key=lambda r: tuple(r[k] for k in order)):
        where = f"{r['backend']} {r['chain']}".strip()
        out.append(f"{r['direction']} {r['interface']} {r['group']} ({where}): runtime {r['runtime']}, "
                   f"persisted {r['persisted']}\n")
        out.append(f"    {r['rule']}\n")
    return "".join(out)


def diff_entries(saved: List[Tuple[str, Optional[str], Optional[str]]], before_rules: str,
                 after_rules: str, backend: str) -> List[Dict[str, str]]:
    """Ansible's diff: each saved file the run edited (or would edit), as it
    was and as it is (would be), then vrrpfw's runtime rules."""
    entries = []
    for path, before, after in saved:
        entries.append({"before_header": path, "after_header": path,
                        "before": before or "", "after": after or ""})
    header = f"vrrpfw runtime rules ({backend})"
    entries.append({"before_header": header, "after_header": header,
                    "before": before_rules, "after": after_rules})
    return entries


def _key(rule: Dict[str, Any]) -> Tuple[str, str, str, str]:
    return (rule["backend"], rule["direction"], rule["interface"], rule["group"])


def close_scope(before: List[Dict[str, Any]], closed: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Of every rule vrrpfw had, those the close handled (its result lists
    each rule of vrrpfw's it found for the interfaces, group and family)."""
    keys = {_key(r) for r in closed}
    return [r for r in before if _key(r) in keys]


def problems(result: Dict[str, Any]) -> List[str]:
    """Why a completed run is not ok, most telling first (as to_dict gives it)."""
    found: List[str] = [f"blocked: {b}" for b in result.get("blockers", [])]
    for p in result.get("persist", []):
        if p.get("error"):
            found.append(f"{p['path']}: {p['error']}")
    for la in result.get("layers", []):
        if la.get("error"):
            found.append(f"layer {la['backend']}: {la['error']}")
    closing = result.get("command") == "close"
    bad_runtime = ("allowed", "shadowed", "uncertain") if closing else ("missing", "shadowed", "uncertain")
    bad_persisted = ("present",) if closing else ("missing", "uncertain")
    for r in result.get("rules", []):
        if r["runtime"] in bad_runtime or r["persisted"] in bad_persisted:
            found.append(f"{r['direction']} {r['interface']} {r['group']} ({r['backend']} {r['chain']}): "
                         f"runtime {r['runtime']}, persisted {r['persisted']}")
    for p in result.get("persist", []):
        if p.get("note"):
            found.append(f"note: {p['note']}")
    # the next boot's verdict on an allowance the saved files lack (or cannot be judged on)
    found += [w for w in result.get("warnings", [])
              if w.startswith(("not persisted: ", "the next boot cannot be judged"))]
    if result.get("command") == "check" and not result.get("rules"):
        found.append("no vrrpfw rules found")
    return found


def failure_message(headline: str, result: Dict[str, Any]) -> str:
    """One line: vrrpfw's headline, then what is wrong."""
    why = problems(result)
    return one_line(headline + (": " + "; ".join(why) if why else ""))


def returned(result: Dict[str, Any]) -> Dict[str, Any]:
    """The module's return values from ``Result.to_dict()`` (``diff`` is
    Ansible's diff mode key, so vrrpfw's unified diff is ``saved_diff``)."""
    keep = ("ok", "exit_code", "backend", "rules", "persist", "planned", "blockers", "layers", "derivation",
            "nothing_filters")
    out = {k: result[k] for k in keep if k in result}
    out["saved_diff"] = result.get("diff", "")
    out["changed"] = bool(result.get("changed"))
    return out


def _fail_vrrpfw(module: Any, error: Exception) -> None:
    module.fail_json(msg=one_line(str(error)), exit_code=getattr(error, "exit_code", EXIT_INTERNAL),
                     changed=False)


def _before_rules(params: Dict[str, Any]) -> Tuple[Optional[List[Dict[str, Any]]], Optional[str]]:
    """vrrpfw's rules as they are, read-only; (None, why) if they could not
    be read (the run itself then says what is wrong)."""
    try:
        return vrrpfw_api.check(**check_arguments(params)).to_dict()["rules"], None
    except vrrpfw.VrrpfwError as e:
        return None, one_line(str(e))


def quote_only_world_readable() -> None:
    """The module's output lands in Ansible's logs and callbacks on the
    controller, read by people who may not read this host's root-only
    files: vrrpfw's messages quote a file's bytes only where anyone could
    read it (else file:line and the reason)."""
    try:
        from vrrpfw.host import invoker
    except ImportError:  # an older library: it has no such rule
        return
    invoker.set_audience(invoker.anyone)


def run(module: Any) -> None:
    quote_only_world_readable()
    params = module.params
    why = refusal(params)
    if why:
        module.fail_json(msg=why, exit_code=EXIT_USAGE, changed=False)
    name, kwargs = call_arguments(params, module.check_mode)
    fn = vrrpfw_api.open if name == "open" else vrrpfw_api.close
    before: Optional[List[Dict[str, Any]]] = None
    unread: Optional[str] = None
    if module._diff:
        before, unread = _before_rules(params)
    try:
        with vrrpfw_api.saved_texts() as saved:
            result = fn(**kwargs)
    except vrrpfw.VrrpfwError as e:
        _fail_vrrpfw(module, e)
        return
    doc = result.to_dict()
    out = returned(doc)
    out["report"] = vrrpfw_render.plain(result).splitlines()
    if module._diff:
        after = doc["rules"]
        if before is not None and name == "close":
            before = close_scope(before, after)
        before_text = rule_lines(before) if before is not None else f"(could not be read: {unread})\n"
        out["diff"] = diff_entries([(s.path, s.before, s.after) for s in saved if s.changed],
                                   before_text, rule_lines(after), doc["backend"])
    for w in doc["warnings"]:
        module.warn(one_line(w))
    if not result.ok:
        module.fail_json(msg=failure_message(vrrpfw_render.headline(result), doc), **out)
    module.exit_json(**out)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if vrrpfw is None:
        import sys

        module.fail_json(msg=f"the vrrpfw Python library is not importable by {sys.executable} on this "
                             "host: install the vrrpfw package there (or set ansible_python_interpreter "
                             "to a Python that has it)",
                         exception=IMPORT_ERROR, exit_code=3, changed=False)
    if not hasattr(vrrpfw_api, "saved_texts"):
        module.fail_json(msg=f"the vrrpfw library at {vrrpfw.__file__} (version {vrrpfw.__version__}) is "
                             "older than this collection: upgrade the vrrpfw package on this host",
                         exit_code=3, changed=False)
    try:
        run(module)
    except Exception as e:  # a vrrpfw bug: one line, the traceback for -vvv
        module.fail_json(msg=one_line(f"internal error: {type(e).__name__}: {e}"),
                         exception=traceback.format_exc(), exit_code=EXIT_INTERNAL)


if __name__ == "__main__":
    main()
