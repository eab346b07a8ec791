"""One iptables rule as ``iptables-save``/``iptables -S`` prints it, parsed
into the evaluator's model.  Pure.

Two readers need this: iptables-nft stores match details in compat (``xt``)
expressions that ``nft -j`` shows only by name, so vrrpfw asks
``iptables-nft -S CHAIN`` for the text (that is how vrrpfw's own comment is
recognised after an iptables-nft save/restore); and saved rulesets (the
corpus, persisted files) are text.  Options we do not know are kept as
match parameters; the evaluator treats unknown matches as maybes.
"""

from __future__ import annotations

import shlex
from typing import Dict, List, Optional, Tuple

from .rules import FwRule, Match

ADDRESS_OPTS = {"-s": "src", "--source": "src", "-d": "dst", "--destination": "dst",
                "-i": "in_iface", "--in-interface": "in_iface", "-o": "out_iface",
                "--out-interface": "out_iface", "-p": "protocol", "--protocol": "protocol"}
PROTOCOLS = {"112": "vrrp"}


def _address(value: str) -> str:
    return value if "/" in value else f"{value}/32"


def parse_rule(line: str) -> Optional[FwRule]:
    """``-A CHAIN ...`` (counters ``[p:b]`` first allowed); None when the
    line is not a rule or does not parse."""
    text = line.strip()
    if text.startswith("["):
        text = text.split("]", 1)[-1].strip()
    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    if len(tokens) < 2 or tokens[0] not in ("-A", "--append", "-I", "--insert"):
        return None
    chain = tokens[1]
    i = 2
    if tokens[0] in ("-I", "--insert") and i < len(tokens) and tokens[i].isdigit():
        i += 1
    fields: Dict[str, str] = {}
    matches: List[Match] = []
    current: Optional[Tuple[str, List[Tuple[str, Tuple[str, ...]]]]] = None
    target, goto = "", False
    target_opts: List[str] = []
    target_args: Dict[str, List[str]] = {}
    neg = False
    in_target = False

    def close_match() -> None:
        nonlocal current
        if current is not None:
            matches.append(Match(current[0], tuple(current[1])))
            current = None

    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            neg = True
            i += 1
            continue
        if tok in ADDRESS_OPTS and not in_target and i + 1 < len(tokens):
            close_match()
            key = ADDRESS_OPTS[tok]
            value = tokens[i + 1]
            if key in ("src", "dst"):
                value = _address(value)
            fields[key] = ("!" if neg else "") + value
            neg = False
            i += 2
            continue
        if tok in ("-m", "--match") and i + 1 < len(tokens):
            close_match()
            current = (tokens[i + 1], [])
            i += 2
            continue
        if tok in ("-j", "--jump", "-g", "--goto") and i + 1 < len(tokens):
            close_match()
            target, goto = tokens[i + 1], tok in ("-g", "--goto")
            in_target = True
            i += 2
            continue
        if tok in ("-f", "--fragment"):
            matches.append(Match("never" if not neg else "always"))  # adverts are never fragments
            neg = False
            i += 1
            continue
        if tok.startswith("--"):
            words: List[str] = ["!"] if neg else []
            neg = False
            j = i + 1
            while j < len(tokens) and not tokens[j].startswith("-") and tokens[j] != "!":
                words.append(tokens[j])
                j += 1
            if in_target:
                target_opts.append(tok)
                target_args[tok] = words
                names = [w for w in words if w != "!"]
                if tok == "--add-set" and names:  # -j SET --add-set NAME src: fills an ipset
                    target_opts.append("fills:ipset " + names[0])
            elif current is not None:
                current[1].append((tok[2:], tuple(words)))
            i = j
            continue
        i += 1
    close_match()
    effects: Tuple[str, ...] = ()
    if target == "CT" and "--notrack" in target_opts:
        effects = ("NOTRACK",)
    effects += tuple(o for o in target_opts if o.startswith("fills:"))
    if "protocol" in fields:
        p = fields["protocol"]
        bang = p.startswith("!")
        fields["protocol"] = ("!" if bang else "") + PROTOCOLS.get(p.lstrip("!"), p.lstrip("!"))
    return FwRule(chain=chain, matches=tuple(matches), target=target, goto=goto, text=text,
                  effects=effects, mark_op=mark_op(target, target_args),
                  **fields)  # type: ignore[arg-type]


def mark_op(target: str, args: Dict[str, List[str]]) -> Optional[Tuple[int, int]]:
    """xt_MARK's (value, mask) for ``-j MARK``'s one option, as libxt_MARK
    turns each into ``mark = (mark & ~mask) ^ value``; None where unknown."""
    if target != "MARK" or len(args) != 1:
        return None
    (opt, words), = args.items()
    if len(words) != 1:
        return None
    value_s, _, mask_s = words[0].partition("/")
    try:
        value = int(value_s, 0)
        mask = int(mask_s, 0) if mask_s else 0xFFFFFFFF
    except ValueError:
        return None
    if opt == "--set-xmark":
        return value, mask
    if opt == "--set-mark":
        return value, mask | value
    if opt == "--and-mark":
        return 0, ~value & 0xFFFFFFFF
    if opt == "--or-mark":
        return value, value
    if opt == "--xor-mark":
        return value, 0
    return None


def parse_save(text: str) -> Dict[str, Dict[str, Tuple[Optional[str], List[FwRule]]]]:
    """iptables-save text: table -> chain -> (policy or None for user chains, rules)."""
    tables: Dict[str, Dict[str, Tuple[Optional[str], List[FwRule]]]] = {}
    table: Optional[Dict[str, Tuple[Optional[str], List[FwRule]]]] = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = tables.setdefault(line[1:].strip(), {})
        elif table is None:
            continue
        elif not line or line.startswith("#") or line == "COMMIT":  # pragma: no mutate
            # parse_rule refuses these lines too: skipping them here only says so.
            continue
        elif line.startswith(":"):
            words = line[1:].split()
            policy = words[1] if len(words) > 1 and words[1] != "-" else None
            table[words[0]] = (policy, table.get(words[0], (None, []))[1])
        elif line.startswith(("-P ", "--policy ")):
            # iptables-restore also takes "-P CHAIN POLICY" (hand-written
            # files do): it sets the built-in chain's policy, later lines win.
            words = line.split()
            if len(words) >= 3:
                table[words[1]] = (words[2], table.get(words[1], (None, []))[1])
        else:
            rule = parse_rule(line)
            if rule is not None:
                rules = table.setdefault(rule.chain, (None, []))[1]
                words = line.split()
                if words[0] in ("-I", "--insert"):  # at the top, or at position N
                    at = int(words[2]) - 1 if len(words) > 2 and words[2].isdigit() else 0
                    rules.insert(max(0, at), rule)
                else:
                    rules.append(rule)
    return tables
