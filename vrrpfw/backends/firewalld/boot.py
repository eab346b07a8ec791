"""Which firewalld zone judges an interface's adverts after the next reload
or reboot, and so where vrrpfw's permanent allowance must be (pure logic).

firewalld's runtime and permanent configuration can bind an interface to
different zones: ``firewall-cmd --zone=internal --add-interface=eth0``
without ``--permanent`` (an admin, a script, or NetworkManager applying its
connection profile) leaves the permanent configuration with eth0 in the
zone its XML names, or in the permanent default zone.  After a reload or a
reboot firewalld puts eth0 there, and an allowance vrrpfw wrote only into
the runtime zone's permanent configuration no longer applies.

So the permanent allowance follows both: the runtime zone (where the
interface is now: a ``--runtime-to-permanent`` or NetworkManager applying
the same profile keeps it there) and the boot zone (the permanent
configuration's binding, else its default zone).  ``check`` calls the
allowance persisted only where the boot zone has it as well.

NetworkManager decides the zone of the interfaces it manages by its
connection profile's ``connection.zone`` (empty: firewalld's default zone)
each time it activates them, at boot too; firewalld cannot show that
setting, and vrrpfw does not read NetworkManager's profiles.  Where
NetworkManager runs and the two zones differ, vrrpfw allows VRRP in both and
says so: the boot zone is one of them unless the profile names a third zone
(``nmcli -g connection.zone connection show PROFILE`` tells).

Zones bound to source addresses judge the adverts of the peers they cover
before the interface's zone does.  Where the runtime and the permanent
configuration bind sources differently, the runtime does not show what
judges after a reload: an inbound allowance that would otherwise be
persisted is "uncertain" (with a note naming the bindings).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

NM_BUS_NAME = "org.freedesktop.NetworkManager"


def permanent_targets(targets: Sequence[str], runtime_zone: str, boot_zone: str,
                      boot_allows: bool) -> List[str]:
    """Zones and policies whose permanent configuration must carry vrrpfw's
    allowance: those the runtime needs (``targets``), and the interface's
    boot zone where it differs from its runtime zone and its permanent
    configuration does not already allow the adverts (``boot_allows``)."""
    out = list(dict.fromkeys(targets))
    if boot_zone and boot_zone != runtime_zone and not boot_allows and boot_zone not in out:
        out.append(boot_zone)
    return out


def zone_note(iface: str, runtime_zone: str, boot_zone: str, network_manager: bool) -> Optional[str]:
    """What the report says where the two zones differ (None where they do not)."""
    if not boot_zone or boot_zone == runtime_zone:
        return None
    text = (f"{iface} is in zone {runtime_zone} now, in {boot_zone} after a reload or reboot "
            f"(firewalld's permanent configuration): vrrpfw allows VRRP in both zones' permanent "
            f"configuration, and at runtime in {runtime_zone}")
    if network_manager:
        text += (f"; NetworkManager runs: it sets {iface}'s zone from its connection profile "
                 "(connection.zone, which firewalld cannot show) when it activates it, at boot too; "
                 "if the profile names neither zone, the allowance does not survive "
                 "(nmcli -g connection.zone connection show PROFILE)")
    return text


def source_note(runtime: Dict[str, List[str]], permanent: Dict[str, List[str]]) -> Optional[str]:
    """Where the source bindings of the two configurations differ, what the
    report says (None where they are the same)."""
    def pairs(m: Dict[str, List[str]]) -> List[str]:
        return sorted(f"{src} -> zone {zone}" for zone, srcs in m.items() for src in srcs)
    now, boot = pairs(runtime), pairs(permanent)
    if now == boot:
        return None
    gone = [p for p in now if p not in boot]
    new = [p for p in boot if p not in now]
    parts = []
    if gone:
        parts.append(f"bound at runtime only: {', '.join(gone)}")
    if new:
        parts.append(f"bound in the permanent configuration only: {', '.join(new)}")
    return ("firewalld binds source addresses to zones differently after a reload or reboot ("
            + "; ".join(parts) + "): those zones judge the adverts of the peers they cover, so vrrpfw "
            "cannot tell from the runtime which zone judges them then: an inbound allowance is "
            "persisted 'uncertain' at best")
