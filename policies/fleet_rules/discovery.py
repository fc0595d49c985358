"""Điều 16 khoản 1 / Điều 19 khoản 1: every live device is known and managed.

A live host of the latest discovery scan (nmap) without an enrolled agent is
unmanaged equipment: nobody knows its anti-virus or its patches.  No scan
yet means unknown, never pass.
"""

from __future__ import annotations

from policies.fleet import DiscoveredDevice, FleetContext
from policies.registry import Outcome, failed, fleet_rule, passed, undetermined

MAX_LISTED = 10


def _describe(device: DiscoveredDevice, ports_label: str) -> str:
    name = f" [{device.hostname}]" if device.hostname else ""
    ports = ", ".join(str(port) for _, port, _ in device.open_ports)
    return f"{device.address}{name}" + (f" ({ports_label}: {ports})" if ports else "")


def listing(devices: list[DiscoveredDevice], ports_label: str, more: str) -> str:
    """``"10.0.0.5 (open ports: 22, 80), …"``, at most :data:`MAX_LISTED` devices."""
    shown = [_describe(d, ports_label) for d in devices[:MAX_LISTED]]
    extra = len(devices) - len(shown)
    return ", ".join(shown) + (f", … (+{extra} {more})" if extra else "")


@fleet_rule("fleet_unmanaged_hosts")
def fleet_unmanaged_hosts(ctx: FleetContext) -> Outcome:
    if ctx.discovered is None:
        return undetermined("no_scan")
    live = list(ctx.discovered)
    unmanaged = [d for d in live if d.host_id is None]
    scanned = min((d.scanned_at for d in live if d.scanned_at), default=None)
    when = scanned.strftime("%Y-%m-%d") if scanned else "—"
    if unmanaged:
        return failed(
            "unmanaged",
            count=len(unmanaged),
            live=len(live),
            when=when,
            devices_vi=listing(unmanaged, "cổng mở", "thiết bị khác"),
            devices_en=listing(unmanaged, "open ports", "more"),
            addresses=[d.address for d in unmanaged],
        )
    return passed("all_managed", live=len(live), when=when)
