"""Windows Defender Firewall: the Domain, Private and Public profiles.

``Get-NetFirewallProfile -PolicyStore ActiveStore`` gives the effective state
(local settings merged with Group Policy; the default store would ignore
GPO).  ``Enabled`` is a ``GpoBoolean`` (0 False, 1 True, 2 NotConfigured) and
``DefaultInboundAction`` an ``Action`` (0 NotConfigured, 2 Allow, 4 Block)
— see ``MSFT_NetFirewallProfile`` — and the script prints their names.  In
the active store "NotConfigured" means the built-in default: enabled, block.

The backend is active only when every profile is enabled (the network a
machine joins decides which profile applies, and a laptop changes networks);
the effective inbound default is the most permissive one of the profiles.
"""

from __future__ import annotations

from typing import Any

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.windows.powershell import Script, ScriptError, as_list, as_str, run_script
from agent.report import FirewallBackend, FirewallProfile, FirewallSection, InboundPolicy

PROFILES = Script(
    "firewall_profiles",
    "$p = Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name,"
    " @{n='Enabled';e={[string]$_.Enabled}},"
    " @{n='DefaultInboundAction';e={[string]$_.DefaultInboundAction}},"
    " @{n='DefaultOutboundAction';e={[string]$_.DefaultOutboundAction}}\n"
    "ConvertTo-Json -Compress -InputObject @($p)",
)

_ENABLED = {"true": True, "1": True, "false": False, "0": False, "notconfigured": True, "2": True}
_INBOUND: dict[str, InboundPolicy] = {
    "block": "drop",
    "4": "drop",
    "notconfigured": "drop",
    "0": "drop",
    "allow": "accept",
    "2": "accept",
}
_ORDER: tuple[InboundPolicy, ...] = ("accept", "reject", "drop")


def parse_profiles(data: Any) -> list[FirewallProfile]:
    profiles = []
    for row in as_list(data):
        name = as_str(row.get("Name"))
        if not name:
            continue
        enabled = _ENABLED.get(str(row.get("Enabled")).strip().lower())
        inbound = _INBOUND.get(str(row.get("DefaultInboundAction")).strip().lower())
        profiles.append(FirewallProfile(name=name, enabled=enabled, default_inbound=inbound))
    return profiles


def section_from_profiles(profiles: list[FirewallProfile]) -> FirewallSection:
    if not profiles:
        return unknown(FirewallSection, "Get-NetFirewallProfile returned no profile")
    states = [p.enabled for p in profiles]
    active: bool | None = None if None in states else all(states)
    on = [p.default_inbound for p in profiles if p.enabled]
    default: InboundPolicy | None = None
    if on and None not in on:
        default = min(on, key=_ORDER.index)  # type: ignore[arg-type]
    evidence = [
        f"{p.name}: {'enabled' if p.enabled else 'disabled' if p.enabled is False else '?'}, "
        f"inbound {p.default_inbound or '?'}"
        for p in profiles
    ]
    backend = FirewallBackend(
        name="windows",
        installed=True,
        active=active,
        default_inbound=default if active else None,
        evidence=evidence,
        profiles=profiles,
    )
    return FirewallSection(
        backends=[backend], active=active, default_inbound=default if active else None
    )


def probe(ctx: ProbeContext) -> FirewallSection:
    try:
        data = run_script(ctx, PROFILES)
    except ScriptError as exc:
        return unknown(FirewallSection, f"firewall profiles unreadable: {exc}")
    return section_from_profiles(parse_profiles(data))
