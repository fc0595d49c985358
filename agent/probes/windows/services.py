"""The Windows service table (``Win32_Service``), shared by several probes."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.probes.windows.powershell import Script, as_list, as_str

SERVICES = Script(
    "services",
    "$svc = Get-CimInstance -ClassName Win32_Service |"
    " Select-Object Name, DisplayName, State, StartMode, PathName\n"
    "ConvertTo-Json -Compress -Depth 2 -InputObject @($svc)",
)


@dataclass(frozen=True)
class Service:
    name: str
    display_name: str | None
    state: str | None  # Running, Stopped, Start Pending… (Win32_Service.State)
    start_mode: str | None  # Auto, Manual, Disabled, Boot, System

    @property
    def running(self) -> bool:
        return (self.state or "").lower() == "running"

    def describe(self) -> str:
        label = f"{self.name} ({self.display_name})" if self.display_name else self.name
        return f"service {label}: {self.state or '?'}, start {self.start_mode or '?'}"


def parse_services(data: Any) -> dict[str, Service]:
    """``Win32_Service`` rows by lower-cased service name."""
    services: dict[str, Service] = {}
    for row in as_list(data):
        name = as_str(row.get("Name"))
        if not name:
            continue
        services[name.lower()] = Service(
            name=name,
            display_name=as_str(row.get("DisplayName")),
            state=as_str(row.get("State")),
            start_mode=as_str(row.get("StartMode")),
        )
    return services


def matching(services: dict[str, Service], patterns: Iterable[str]) -> list[Service]:
    """Services whose name or display name matches a (case-insensitive) glob."""
    wanted = [p.lower() for p in patterns]
    return [
        s
        for s in services.values()
        if any(
            fnmatch.fnmatchcase(s.name.lower(), p)
            or fnmatch.fnmatchcase((s.display_name or "").lower(), p)
            for p in wanted
        )
    ]
