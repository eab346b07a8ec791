"""The line vrrpfw writes for a rule in iptables-save syntax: the rule's
text in every backend's report and dry run, and the line in a saved
iptables-save file.  Split from :mod:`vrrpfw.persist.iptables_save` (which
re-exports it) so that a run which only reports (check --no-persist) does
not import the saved-file parser.
"""

from __future__ import annotations

from typing import Optional

from ..model import COMMENT, Direction, Family, VrrpRule


def rule_line(rule: VrrpRule, chain: Optional[str] = None) -> str:
    """The line vrrpfw writes (into ``chain``, by default the rule's filter
    chain), in the order iptables-save / ip6tables-save 1.8 print it
    (``-s -d -i/-o -p``, then the ttl / hl match before the comment, as
    vrrpfw adds them), so a saved and re-read ruleset shows the same text.
    Protocol as a number: ``-p vrrp`` would need an /etc/protocols entry at
    restore time, and a failed restore at boot leaves the host with no
    firewall at all."""
    bits = rule.family.bits
    words = [f"-A {chain or rule.chain}"]
    if rule.src is not None:
        words.append(f"-s {rule.src}/{bits}")
    words.append(f"-d {rule.dst}/{bits}")
    words.append(f"{'-i' if rule.direction is Direction.IN else '-o'} {rule.interface}")
    words.append(f"-p {rule.proto}")
    if rule.ttl is not None:
        words.append(f"-m hl --hl-eq {rule.ttl}" if rule.family is Family.IPV6
                     else f"-m ttl --ttl-eq {rule.ttl}")
    words.append(f"-m comment --comment {COMMENT} -j ACCEPT")
    return " ".join(words)
