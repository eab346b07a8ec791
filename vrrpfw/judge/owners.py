"""Which controller owns a chain or a table, and what an admin changes there.

Some chains on VRRP's path are written by another program that rewrites
them whenever it syncs: kube-proxy, Calico, Cilium, Docker, firewalld,
ufw; or that exists only while its program runs: fail2ban's and sshguard's
nftables tables.  A rule vrrpfw put there would vanish at the next sync, or would be
vrrpfw editing what the admin configures elsewhere.  So vrrpfw never
writes into them; where such a chain drops VRRP, the admin's remedy is
the owner's own knob (:attr:`Owner.remedy`).

Pure: names in, an :class:`Owner` (or None) out.  Imports nothing.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence, Tuple

from vrrpfw.record import record

# The remedy for the Kubernetes network stack: a policy, not a chain edit.
K8S_POLICY = "a NetworkPolicy (or the CNI's own policy) that allows IP protocol 112"


@record(frozen=True)
class Owner:
    """``name``: the program; ``remedy``: where an admin allows VRRP instead;
    ``keeps_first``: it puts its jump back at the top of the base chains
    (Calico's Felix in its default ChainInsertMode=insert; Cilium's
    prepended feeder rules), so an ACCEPT vrrpfw puts above that jump does
    not stay above it."""

    name: str
    remedy: str
    keeps_first: bool = False


KUBE_PROXY = Owner("kube-proxy", K8S_POLICY)
CALICO = Owner("Calico", K8S_POLICY, keeps_first=True)
CILIUM = Owner("Cilium", K8S_POLICY, keeps_first=True)
DOCKER = Owner("Docker", "DOCKER-USER")
FIREWALLD = Owner("firewalld", "a rich rule (vrrpfw --backend firewalld)")
UFW = Owner("ufw", "vrrpfw --backend ufw")
# Ban lists: the program creates its table when it starts and deletes it when
# it stops (a rule vrrpfw put there is gone at the next restart, and no saved
# file defines the table); a ban of a peer is undone by never banning it.
FAIL2BAN = Owner("fail2ban", "fail2ban's ignoreip (the peers' addresses, so it never bans them)")
SSHGUARD = Owner("sshguard", "sshguard's whitelist (the peers' addresses)")

# nf_tables tables a controller creates and rewrites as a whole (matched on
# the table's name, whatever its family: ip, ip6, inet).
_TABLES: Tuple[Tuple[re.Pattern[str], Owner], ...] = (
    (re.compile(r"kube-proxy\Z"), KUBE_PROXY),
    (re.compile(r"cali"), CALICO),  # Calico's nftables data plane: tables calico, cali-*
    (re.compile(r"cilium"), CILIUM),
    (re.compile(r"docker"), DOCKER),  # Docker's nftables firewall backend: docker-bridges
    (re.compile(r"firewalld\Z"), FIREWALLD),
    (re.compile(r"f2b-table\Z"), FAIL2BAN),  # fail2ban's nftables actions (their default table name)
    (re.compile(r"sshguard\Z"), SSHGUARD),  # sshguard's nftables backend (tables ip/ip6 sshguard)
)
# Chains a controller writes into the iptables tables (legacy or
# iptables-nft), matched on the chain's name.  DOCKER-USER is the admin's:
# Docker creates it once, empty, and never rewrites it.
_CHAINS: Tuple[Tuple[re.Pattern[str], Optional[Owner]], ...] = (
    (re.compile(r"KUBE-"), KUBE_PROXY),
    (re.compile(r"cali-"), CALICO),
    (re.compile(r"CILIUM_"), CILIUM),
    (re.compile(r"DOCKER-USER\Z"), None),
    (re.compile(r"DOCKER(\Z|-)"), DOCKER),
    (re.compile(r"ufw6?-"), UFW),
)
# The tables iptables-nft writes: their chains carry iptables' chain names.
XT_TABLES = ("filter", "nat", "mangle", "raw", "security")


def of_table(family: str, table: str) -> Optional[Owner]:
    """The owner of a whole nf_tables table (its chains, sets and maps)."""
    if family in ("ip", "ip6", "inet") and table in XT_TABLES:
        return None  # iptables-nft's tables: owned chain by chain
    for pattern, owner in _TABLES:
        if pattern.match(table):
            return owner
    return None


def of_chain_name(name: str) -> Optional[Owner]:
    """The owner of an iptables chain by its name (None: the admin's)."""
    for pattern, owner in _CHAINS:
        if pattern.match(name):
            return owner
    return None


def of_chain(layer: str, family: str, table: str, name: str) -> Optional[Owner]:
    """The owner of chain ``name`` of ``table``: ``layer`` is "legacy" (an
    iptables-legacy table) or "nft" (any nf_tables table, iptables-nft's
    included)."""
    if layer == "nft" and (family not in ("ip", "ip6") or table not in XT_TABLES):
        return of_table(family, table)  # a native table: owned as a whole, or the admin's
    return of_chain_name(name)


def remedy_line(owner: Owner, chains: Sequence[str]) -> str:
    """One line for the admin: what ``owner``'s chains do to VRRP (each
    text names the chain and its rule), that vrrpfw leaves them to their
    owner, and where to allow VRRP instead."""
    return (f"{'; '.join(chains)}: {owner.name} owns {'these chains' if len(chains) > 1 else 'that chain'} "
            f"and rewrites {'them' if len(chains) > 1 else 'it'}, so vrrpfw does not edit "
            f"{'them' if len(chains) > 1 else 'it'}; allow VRRP with {owner.remedy}")
