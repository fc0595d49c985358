"""Backup evidence on Windows.

* Windows Server Backup: ``Get-WBSummary`` (``LastSuccessfulBackupTime``,
  ``LastBackupResultHR``, ``NextBackupTime``, ``NumberOfVersions``) and
  ``Get-WBPolicy`` (a schedule is configured).  Absent on workstations.
* File History: per-user configuration
  ``%LOCALAPPDATA%\\Microsoft\\Windows\\FileHistory\\Configuration\\Config*.xml``
  (presence only: its format is not documented, so no date is taken from it).
* Configured paths: ``[[path]]`` tables of
  ``%ProgramData%\\posture-agent\\backup.toml`` (same format as Linux), whose
  newest matching file gives the date.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from agent.probes.backup import load_agent_config, newest_file
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
from agent.report import BackupEvidence, BackupSection

WB_SUMMARY = Script(
    "wb_summary",
    """$s = Get-WBSummary
$p = Get-WBPolicy
[pscustomobject]@{
  LastSuccessfulBackupTime = $s.LastSuccessfulBackupTime; LastBackupTime = $s.LastBackupTime
  LastBackupResultHR = $s.LastBackupResultHR; NextBackupTime = $s.NextBackupTime
  NumberOfVersions = $s.NumberOfVersions; LastBackupTarget = [string]$s.LastBackupTarget
  PolicyConfigured = $null -ne $p
} | ConvertTo-Json -Compress""",
)
FILE_HISTORY = Script(
    "file_history",
    r"""$users = Get-ChildItem -Path "$env:SystemDrive\Users" -Directory -ErrorAction Ignore
$rows = foreach ($u in $users) {
  $cfg = Join-Path $u.FullName 'AppData\Local\Microsoft\Windows\FileHistory\Configuration'
  if (Test-Path $cfg) {
    $files = @(Get-ChildItem -Path $cfg -Filter 'Config*.xml' -ErrorAction SilentlyContinue)
    if ($files) { [pscustomobject]@{ User = $u.Name; Files = $files.Count } }
  }
}
ConvertTo-Json -Compress -InputObject @($rows)""",
)


def program_data_dir() -> Path:
    return Path(os.environ.get("PROGRAMDATA") or r"C:\ProgramData") / "posture-agent"


def parse_wb_summary(data: Any) -> BackupEvidence:
    [s] = as_list(data) or [{}]
    newest = parse_ps_datetime(s.get("LastSuccessfulBackupTime"))
    result = as_int(s.get("LastBackupResultHR"))
    details = [f"{as_int(s.get('NumberOfVersions')) or 0} version(s)"]
    if result:
        details.append(f"last backup failed (HRESULT 0x{result & 0xFFFFFFFF:08X})")
    if next_at := parse_ps_datetime(s.get("NextBackupTime")):
        details.append(f"next backup {next_at.isoformat()}")
    return BackupEvidence(
        tool="Windows Server Backup",
        location=as_str(s.get("LastBackupTarget")),
        newest_at=newest,
        scheduled=bool(s.get("PolicyConfigured")),
        detail="; ".join(details),
    )


def parse_file_history(data: Any) -> list[BackupEvidence]:
    return [
        BackupEvidence(
            tool="File History",
            location=f"user {row['User']}",
            scheduled=True,
            detail="File History configured (no backup date is read)",
        )
        for row in as_list(data)
        if as_str(row.get("User"))
    ]


def configured_paths(config_file: Path, notes: list[str]) -> list[BackupEvidence]:
    try:
        text = config_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        notes.append(f"{config_file} not readable: {exc}")
        return []
    try:
        entries = load_agent_config(text)["path"]
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        notes.append(f"{config_file} not understood: {exc}")
        return []
    found = []
    for entry in entries:
        location = str(entry.get("location") or "")
        pattern = str(entry.get("pattern") or "*")
        base = Path(location)
        if not location or not base.is_dir():
            missing = BackupEvidence(tool="path", location=location, detail="location not found")
            found.append(missing)
            continue
        newest, when, _ = newest_file(base, pattern)
        detail = f"newest {pattern}: {newest.name}" if newest else f"no file matches {pattern}"
        found.append(BackupEvidence(tool="path", location=location, newest_at=when, detail=detail))
    return found


def probe(ctx: ProbeContext) -> BackupSection:
    notes: list[str] = []
    evidence: list[BackupEvidence] = []
    tools: list[str] = []
    try:
        evidence.append(parse_wb_summary(run_script(ctx, WB_SUMMARY)))
        tools.append("Windows Server Backup")
    except ScriptError as exc:
        if exc.kind != "missing":
            notes.append(f"Windows Server Backup status unreadable: {exc}")
    try:
        history = parse_file_history(run_script(ctx, FILE_HISTORY))
        evidence += history
        if history:
            tools.append("File History")
    except ScriptError as exc:
        notes.append(f"File History configuration unreadable: {exc}")
    evidence += configured_paths(program_data_dir() / "backup.toml", notes)
    dated = [e.newest_at for e in evidence if e.newest_at]
    return BackupSection(
        tools_installed=tools,
        evidence=evidence,
        newest_backup_at=max(dated) if dated else None,
        notes=notes,
    )
