"""Windows updates: installed hotfixes, pending updates, reboot pending, update policy.

* Installed: ``Win32_QuickFixEngineering`` (what ``Get-HotFix`` reads):
  ``HotFixID``, ``Description``, ``InstalledOn``.  Only component-based
  servicing updates are listed (not MSI or Store updates).
* Pending: the Windows Update Agent API, ``Microsoft.Update.Session`` ->
  ``CreateUpdateSearcher().Search("IsInstalled=0 and Type='Software' and
  IsHidden=0")``; an update counts as a security update when it has an
  ``MsrcSeverity`` or is in the "Security Updates" category.  The search asks
  Windows Update or the WSUS server, so it is slow: it has its own timeout and
  its result is reused while the update datastore does not change.
  ``Microsoft.Update.AutoUpdate`` gives the last successful installation and
  the notification level; ``Microsoft.Update.SystemInfo`` the reboot flag.
* Reboot pending: the ``WindowsUpdate\\Auto Update\\RebootRequired`` and
  ``Component Based Servicing\\RebootPending`` registry keys.
* Policy: ``HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU``
  ``NoAutoUpdate`` / ``AUOptions`` (4 = download and install automatically).
"""

from __future__ import annotations

from typing import Any

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.probes.windows.powershell import (
    Script,
    ScriptError,
    as_bool,
    as_int,
    as_list,
    as_str,
    parse_ps_datetime,
    parse_script_output,
    run_script,
)
from agent.report import InstalledUpdate, PatchesSection, PendingUpdate

WUA_TIMEOUT = 25.0
WUA_CACHE_INPUTS = ("C:/Windows/SoftwareDistribution/DataStore",)
WUA_CACHE_MAX_AGE = 6 * 3600.0
SECURITY_CATEGORIES = ("security updates", "critical updates")

HOTFIXES = Script(
    "hotfixes",
    "$h = Get-CimInstance -ClassName Win32_QuickFixEngineering |"
    " Select-Object HotFixID, Description, InstalledOn, InstalledBy\n"
    "ConvertTo-Json -Compress -InputObject @($h)",
)
WINDOWS_UPDATE = Script(
    "windows_update",
    """function Iso($d) { if ($d -is [datetime]) { $d.ToString('s') } else { $null } }
$session = New-Object -ComObject Microsoft.Update.Session
$searcher = $session.CreateUpdateSearcher()
$result = $searcher.Search("IsInstalled=0 and Type='Software' and IsHidden=0")
$updates = @(foreach ($u in $result.Updates) {
  [pscustomobject]@{
    Title = $u.Title; KBArticleIDs = @($u.KBArticleIDs); MsrcSeverity = $u.MsrcSeverity
    Categories = @($u.Categories | ForEach-Object { $_.Name }); IsDownloaded = $u.IsDownloaded
  }
})
$au = New-Object -ComObject Microsoft.Update.AutoUpdate
$sys = New-Object -ComObject Microsoft.Update.SystemInfo
[pscustomobject]@{
  ResultCode = [int]$result.ResultCode; Updates = $updates
  SearchedAt = (Get-Date).ToUniversalTime().ToString('o')
  LastSearchSuccessDate = Iso $au.Results.LastSearchSuccessDate
  LastInstallationSuccessDate = Iso $au.Results.LastInstallationSuccessDate
  ServiceEnabled = $au.ServiceEnabled; NotificationLevel = $au.Settings.NotificationLevel
  RebootRequired = $sys.RebootRequired
} | ConvertTo-Json -Compress -Depth 4""",
    timeout=WUA_TIMEOUT,
)
UPDATE_POLICY = Script(
    "update_policy",
    r"""function Reg($p) { Get-ItemProperty -Path $p -ErrorAction SilentlyContinue }
$au = Reg 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU'
$wu = Reg 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate'
$sm = (Reg 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager').PendingFileRenameOperations
$cv = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion'
[pscustomobject]@{
  NoAutoUpdate = $au.NoAutoUpdate; AUOptions = $au.AUOptions
  UseWUServer = $au.UseWUServer; WUServer = $wu.WUServer
  RebootRequired = Test-Path "$cv\WindowsUpdate\Auto Update\RebootRequired"
  CbsRebootPending = Test-Path "$cv\Component Based Servicing\RebootPending"
  PendingFileRenameOperations = $null -ne $sm
} | ConvertTo-Json -Compress""",
)

# --- pure parsers ---------------------------------------------------------------------


def parse_hotfixes(data: Any) -> list[InstalledUpdate]:
    updates: dict[str, InstalledUpdate] = {}
    for row in as_list(data):
        kb = as_str(row.get("HotFixID"))
        if not kb or kb.lower() == "file 1":  # placeholder rows of very old systems
            continue
        update = InstalledUpdate(
            id=kb,
            description=as_str(row.get("Description")),
            installed_at=parse_ps_datetime(row.get("InstalledOn")),
        )
        current = updates.get(kb)
        if current is None or (current.installed_at is None and update.installed_at):
            updates[kb] = update
    return sorted(updates.values(), key=lambda u: u.id)


def _is_security(row: dict[str, Any]) -> bool:
    if as_str(row.get("MsrcSeverity")):
        return True
    categories = [str(c).lower() for c in (row.get("Categories") or []) if c]
    return any(c in SECURITY_CATEGORIES for c in categories)


def parse_windows_update(data: Any) -> dict[str, Any]:
    """Facts from the ``windows_update`` script; raises ValueError on a failed search."""
    [answer] = as_list(data) or [{}]
    code = as_int(answer.get("ResultCode"))
    if code not in (2, 3):  # OperationResultCode: 2 succeeded, 3 succeeded with errors
        raise ValueError(f"update search result code {code}")
    pending = []
    for row in as_list(answer.get("Updates")):
        title = as_str(row.get("Title"))
        if not title:
            continue
        kbs = [f"KB{k}" for k in (row.get("KBArticleIDs") or []) if k]
        categories = ", ".join(str(c) for c in (row.get("Categories") or []) if c)
        pending.append(
            PendingUpdate(
                name=title,
                new_version=kbs[0] if kbs else None,
                security=_is_security(row),
                origin=categories or None,
            )
        )
    level = as_int(answer.get("NotificationLevel"))
    return {
        "pending": pending,
        "pending_count": len(pending),
        "security_pending_count": sum(p.security for p in pending),
        "searched_at": parse_ps_datetime(answer.get("SearchedAt")),
        "last_install": parse_ps_datetime(answer.get("LastInstallationSuccessDate")),
        "service_enabled": as_bool(answer.get("ServiceEnabled")),
        "notification_level": level,
        "reboot_required": as_bool(answer.get("RebootRequired")),
    }


def auto_updates_from(policy: dict[str, Any], notification_level: int | None) -> bool | None:
    """Whether updates install without anyone acting: group policy first, then WUA."""
    if as_int(policy.get("NoAutoUpdate")) == 1:
        return False
    option = as_int(policy.get("AUOptions"))
    if option in (2, 3, 7):
        return False
    if option == 4:
        return True
    # AUOptions 5 (local admin chooses) or no policy: what the agent is set to.
    if notification_level in (1, 2, 3):
        return False
    if notification_level == 4:
        return True
    return None


# --- the probe ------------------------------------------------------------------------


def _windows_update(ctx: ProbeContext, notes: list[str]) -> dict[str, Any] | None:
    try:
        result = ctx.cached_run(
            WINDOWS_UPDATE.argv(),
            timeout=WINDOWS_UPDATE.timeout,
            inputs=WUA_CACHE_INPUTS,
            max_age=WUA_CACHE_MAX_AGE,
        )
        return parse_windows_update(parse_script_output(WINDOWS_UPDATE.name, result))
    except ToolMissing:
        notes.append("windows_update: PowerShell (powershell.exe) not found")
    except CommandTimeout:
        notes.append(f"windows_update: search did not finish within {WUA_TIMEOUT:g}s")
    except (ScriptError, ValueError) as exc:
        notes.append(f"pending updates unknown: {exc}")
    return None


def probe(ctx: ProbeContext) -> PatchesSection:
    notes: list[str] = []
    hotfixes: list[InstalledUpdate] | None = None
    try:
        hotfixes = parse_hotfixes(run_script(ctx, HOTFIXES))
    except ScriptError as exc:
        notes.append(f"installed hotfixes unreadable: {exc}")
    policy: dict[str, Any] | None = None
    try:
        policy = (as_list(run_script(ctx, UPDATE_POLICY)) or [{}])[0]
    except ScriptError as exc:
        notes.append(f"update policy and reboot keys unreadable: {exc}")
    wua = _windows_update(ctx, notes)
    if hotfixes is None and policy is None and wua is None:
        return unknown(PatchesSection, "; ".join(notes), notes=notes)

    dates = [u.installed_at for u in hotfixes or [] if u.installed_at]
    if wua and wua["last_install"]:
        dates.append(wua["last_install"])
    reboot: bool | None = None
    if policy is not None:
        keys = (as_bool(policy.get(k)) for k in ("RebootRequired", "CbsRebootPending"))
        reboot = any(keys)
        if as_bool(policy.get("PendingFileRenameOperations")):
            notes.append("PendingFileRenameOperations is set (not counted as a pending reboot)")
        if server := as_str(policy.get("WUServer")):
            notes.append(f"updates come from WSUS {server}")
    if wua and wua["reboot_required"]:
        reboot = True
    auto = None
    if policy is not None or wua is not None:
        level = wua["notification_level"] if wua else None
        auto = auto_updates_from(policy or {}, level)
        if wua and wua["service_enabled"] is False:
            auto = False
    return PatchesSection(
        manager="other",
        pending_count=wua["pending_count"] if wua else None,
        security_pending_count=wua["security_pending_count"] if wua else None,
        pending=wua["pending"] if wua else [],
        last_update_at=max(dates) if dates else None,
        last_refresh_at=wua["searched_at"] if wua else None,
        auto_updates=auto,
        reboot_required=reboot,
        installed_updates=hotfixes or [],
        notes=notes,
    )
