"""Turning a Result into text: plain and stable when piped, a rich table on
a terminal, or one JSON object.

Scripts parse the plain form, so its words are the enum values and never
decorated; rich is imported only when a terminal will show its output.
"""

from __future__ import annotations

import json
from typing import IO, List, Optional

from ..results import Action, Result, RuleReport

_VERBS = {
    Action.INSERT: "inserted", Action.MOVE: "moved to top", Action.DELETE: "deleted",
}
_PLANNED = {
    Action.INSERT: "would insert", Action.MOVE: "would move to top", Action.DELETE: "would delete",
}


def _action(rep_action: Action, dry_run: bool) -> str:
    if rep_action is Action.NONE:
        return ""
    return (_PLANNED if dry_run else _VERBS)[rep_action]


def _state(value: str, action: Action, dry_run: bool) -> str:
    what = _action(action, dry_run)
    return f"{value} ({what})" if what else value


def headline(result: Result) -> str:
    status = "ok" if result.ok else "NOT OK"
    if result.dry_run:
        change = "dry run, would change" if result.changed else "dry run, nothing to change"
        status = f"would be {status}"
    else:
        change = "changed" if result.changed else "unchanged"
        if result.changed and _only_maybe(result):
            change = "may have changed"
    return f"vrrpfw {result.command}: {status}, {change} (backend {result.backend})"


def _only_maybe(result: Result) -> bool:
    """Every change of the run is one vrrpfw cannot confirm (a firewall that
    stopped answering mid-change): the headline must not say "changed"."""
    runtimes = [la.runtime for la in result.layers]
    return ("may have changed" in runtimes and not any(r in ("changed", "partly changed") for r in runtimes)
            and not any(p.changed for p in result.persist))


def _trailer(result: Result) -> List[str]:
    lines: List[str] = []
    if result.dry_run and result.planned:
        lines.append("planned:")
        lines += [f"  {cmd}" for cmd in result.planned]
    if result.dry_run and result.diff:
        lines.append("persisted changes:")
        lines += ["  " + d for d in result.diff.rstrip("\n").split("\n")]
    for p in result.persist:
        state = "updated" if p.changed else ("unchanged" if not result.dry_run else "not written (dry run)")
        line = f"persist: {p.path} {state}"
        if p.boot_restore:
            line += f"; restored at boot by {p.boot_restore}"
        lines.append(line)
        if p.note:
            lines.append(f"note: {p.note}")
        if p.error:
            lines.append(f"error: {p.error}")
    lines += [f"warning: {w}" for w in result.warnings]
    lines += [f"blocked: {b}" for b in result.blockers]
    troubled = ("failed", "partly changed", "may have changed", "not run")
    if len(result.layers) > 1 or any(la.error or la.runtime in troubled or la.saved in troubled
                                     for la in result.layers):
        for la in result.layers:
            line = f"layer {la.backend}: runtime {la.runtime}, saved {la.saved}"
            lines.append(line + (f" ({la.error})" if la.error else ""))
    return lines


def _rule_line(rep: RuleReport, dry_run: bool) -> str:
    where = f"{rep.backend} " if rep.backend else ""
    text = (f"{rep.direction:<3} {rep.interface} {rep.group} {where}{rep.chain}: "
            f"runtime {_state(rep.runtime.value, rep.action, dry_run)}, "
            f"persisted {_state(rep.persisted.value, rep.persist_action, dry_run)}")
    if rep.detail:
        text += f" [{rep.detail}]"
    return text


def _derivation(result: Result) -> List[str]:
    """--keepalived-conf: which instance asked for which rules, and why."""
    if not result.derivation:
        return []
    return ["from the keepalived configuration:"] + [f"  {line}" for line in result.derivation]


def plain(result: Result) -> str:
    lines = [headline(result)] + _derivation(result)
    for rep in result.rules:
        lines.append("  " + _rule_line(rep, result.dry_run))
        lines.append("      " + rep.rule)
    lines += _trailer(result)
    return "\n".join(lines) + "\n"


def as_json(result: Result) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"


def rich_table(result: Result, stream: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream)
    style = "green" if result.ok else "bold red"
    console.print(headline(result), style=style, highlight=False)
    for line in _derivation(result):
        console.print(line, highlight=False, markup=False)
    if result.rules:
        table = Table(show_header=True, header_style="bold")
        for col in ("dir", "interface", "match", "chain", "runtime", "persisted", "detail"):
            table.add_column(col)
        for rep in result.rules:
            good = rep.runtime.value in ("allowed", "allowed-by-other", "allowed-by-policy", "absent")
            table.add_row(
                rep.direction, rep.interface, rep.group, rep.chain,
                f"[{'green' if good else 'red'}]{_state(rep.runtime.value, rep.action, result.dry_run)}[/]",
                _state(rep.persisted.value, rep.persist_action, result.dry_run),
                rep.detail,
            )
        console.print(table)
    for line in _trailer(result):
        line_style: Optional[str] = "yellow" if line.startswith(("warning", "note")) else (
            "red" if line.startswith(("blocked", "error")) else None)
        console.print(line, style=line_style, highlight=False, markup=False)
