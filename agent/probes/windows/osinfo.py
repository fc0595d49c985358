"""Operating system on Windows: Win32_OperatingSystem plus the ``CurrentVersion`` registry
key (``DisplayVersion`` such as 23H2, ``UBR``: the update build revision)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.windows.powershell import (
    Script,
    ScriptError,
    as_int,
    as_list,
    as_str,
    parse_ps_datetime,
    run_script,
)
from agent.report import OsSection

OS_INFO = Script(
    "os_info",
    r"""$os = Get-CimInstance -ClassName Win32_OperatingSystem
$key = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$cv = Get-ItemProperty -Path $key -ErrorAction SilentlyContinue
[pscustomobject]@{
  Caption = $os.Caption; Version = $os.Version; BuildNumber = $os.BuildNumber
  ProductType = $os.ProductType; Architecture = $env:PROCESSOR_ARCHITECTURE
  LastBootUpTime = $os.LastBootUpTime.ToUniversalTime().ToString('o')
  DisplayVersion = $cv.DisplayVersion; UBR = $cv.UBR
} | ConvertTo-Json -Compress""",
)


def parse_os(data: Any, now: datetime | None = None) -> OsSection:
    [os_] = as_list(data) or [{}]
    version = as_str(os_.get("Version"))
    ubr = as_int(os_.get("UBR"))
    boot = parse_ps_datetime(os_.get("LastBootUpTime"))
    now = now or datetime.now(UTC)
    return OsSection(
        name=as_str(os_.get("Caption")),
        id="windows",
        version=as_str(os_.get("DisplayVersion")) or version,
        kernel=f"{version}.{ubr}" if version and ubr is not None else version,
        arch=as_str(os_.get("Architecture")),
        boot_time=boot,
        uptime_seconds=int((now - boot).total_seconds()) if boot else None,
    )


def probe(ctx: ProbeContext) -> OsSection:
    try:
        return parse_os(run_script(ctx, OS_INFO))
    except ScriptError as exc:
        return unknown(OsSection, f"operating system unreadable: {exc}")
