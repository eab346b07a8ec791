"""What the ``vrrpfw`` commands' options declare: their help lines, the
fixed choices (backend, family, mode) and their metavars.

Split from :mod:`.commands` so that the commands read as what they do, and
the words shared by several commands' options are written once.  Imports
nothing heavy: ``--help`` and ``--version`` load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from . import help_text as cli_help
from .actions import _plain  # noqa: F401  (its home before actions.py)


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
