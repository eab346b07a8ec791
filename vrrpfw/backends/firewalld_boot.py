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
"""

from __future__ import annotations

from typing import List, Optional, Sequence

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
