"""Installed programs on Windows, from the registry's Uninstall keys (never ``Win32_Product``,
which triggers MSI repairs):

* ``HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall`` (64-bit view),
* ``HKLM\\SOFTWARE\\WOW6432Node\\...\\Uninstall`` (32-bit programs),
* ``HKEY_USERS\\<SID>\\Software\\...\\Uninstall`` (per-user installs of loaded profiles).

Entries without ``DisplayName``, system components (``SystemComponent=1``) and
updates of another entry (``ParentKeyName``) are skipped, as Programs and
Features does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.windows.powershell import Script, ScriptError, as_int, as_list, as_str, run_script
from agent.report import Package, SoftwareSection

UNINSTALL = r"Microsoft\Windows\CurrentVersion\Uninstall\*"
SOFTWARE = Script(
    "installed_software",
    rf"""$views = @(
  @{{ Path = 'HKLM:\SOFTWARE\{UNINSTALL}'; Scope = 'x64' }},
  @{{ Path = 'HKLM:\SOFTWARE\WOW6432Node\{UNINSTALL}'; Scope = 'x86' }},
  @{{ Path = 'Registry::HKEY_USERS\*\Software\{UNINSTALL}'; Scope = 'user' }}
)
$items = foreach ($v in $views) {{
  Get-ItemProperty -Path $v.Path -ErrorAction SilentlyContinue | Where-Object {{ $_.DisplayName }} |
    ForEach-Object {{ [pscustomobject]@{{
      Scope = $v.Scope; Key = $_.PSChildName; DisplayName = $_.DisplayName
      DisplayVersion = $_.DisplayVersion; Publisher = $_.Publisher; InstallDate = $_.InstallDate
      SystemComponent = $_.SystemComponent; ParentKeyName = $_.ParentKeyName
    }} }}
}}
ConvertTo-Json -Compress -Depth 3 -InputObject @($items)""",
    timeout=30.0,
)


def parse_install_date(value: Any) -> datetime | None:
    """``InstallDate`` is ``yyyymmdd`` by convention (installers write what they like)."""
    text = as_str(value)
    if not text or len(text) != 8 or not text.isdigit():
        return None
    try:
        return datetime(int(text[:4]), int(text[4:6]), int(text[6:]), tzinfo=UTC)
    except ValueError:
        return None


def parse_programs(data: Any) -> list[Package]:
    found: dict[tuple[str, str, str], Package] = {}
    for row in as_list(data):
        name = as_str(row.get("DisplayName"))
        if not name or as_int(row.get("SystemComponent")) == 1 or as_str(row.get("ParentKeyName")):
            continue
        scope = as_str(row.get("Scope"))
        package = Package(
            name=name,
            version=as_str(row.get("DisplayVersion")) or "",
            arch=scope if scope in ("x64", "x86") else None,
            installed_at=parse_install_date(row.get("InstallDate")),
        )
        found.setdefault((package.name, package.arch or "", package.version), package)
    return [found[k] for k in sorted(found)]


def probe(ctx: ProbeContext) -> SoftwareSection:
    try:
        packages = parse_programs(run_script(ctx, SOFTWARE))
    except ScriptError as exc:
        return unknown(SoftwareSection, f"installed programs unreadable: {exc}")
    return SoftwareSection(
        manager="other",
        packages=packages,
        notes=["Windows: Uninstall registry keys (machine 64/32-bit and loaded user profiles)"],
    )
