"""Logging on Windows: the Security event log, the audit policy and log forwarding.

* Security log: ``Get-WinEvent -ListLog Security`` (``IsEnabled``, ``LogMode``
  Circular / AutoBackup / Retain, ``MaximumSizeInBytes``); ``wevtutil gl
  Security`` (``enabled``, ``retention``, ``autoBackup``, ``maxSize``) when
  the cmdlet fails.
* Audit policy: ``auditpol /get /category:* /r``, CSV with the columns
  ``Machine Name, Policy Target, Subcategory, Subcategory GUID, Inclusion
  Setting, Exclusion Setting``.  Subcategory names are localized; the GUID is
  not, so checks go by GUID.  The setting is read in English ("No Auditing",
  "Success", "Failure", "Success and Failure").
* Forwarding: Windows Event Forwarding subscription managers (group policy
  ``EventLog\\EventForwarding\\SubscriptionManager``) and log-shipping agents
  running as services (Wazuh, Winlogbeat, NXLog, Splunk forwarder…).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Literal

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.windows.powershell import (
    Script,
    ScriptError,
    as_bool,
    as_int,
    as_list,
    as_str,
    run_script,
)
from agent.probes.windows.services import SERVICES, Service, matching, parse_services
from agent.report import AuditSetting, LoggingSection

Retention = Literal["overwrite", "archive", "keep"]

SECURITY_LOG = Script(
    "security_log",
    r"""$log = Get-WinEvent -ListLog Security
$key = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\EventLog\EventForwarding\SubscriptionManager'
$wef = Get-ItemProperty -Path $key -ErrorAction SilentlyContinue
$managers = @(if ($wef) {
  $wef.PSObject.Properties | Where-Object { $_.Name -notlike 'PS*' } |
    ForEach-Object { [string]$_.Value }
})
[pscustomobject]@{
  LogName = $log.LogName; IsEnabled = $log.IsEnabled; LogMode = [string]$log.LogMode
  MaximumSizeInBytes = $log.MaximumSizeInBytes; RecordCount = $log.RecordCount
  LogFilePath = $log.LogFilePath; SubscriptionManagers = $managers
} | ConvertTo-Json -Compress -Depth 3""",
)
WEVTUTIL = Script(
    "wevtutil_security",
    "$out = & wevtutil.exe gl Security 2>&1 | Out-String\n"
    'if ($LASTEXITCODE -ne 0) { throw "wevtutil exited with ${LASTEXITCODE}: $out" }\n'
    "ConvertTo-Json -Compress -InputObject $out",
)
AUDITPOL = Script(
    "auditpol",
    "$out = & auditpol.exe /get /category:* /r 2>&1 | Out-String\n"
    'if ($LASTEXITCODE -ne 0) { throw "auditpol exited with ${LASTEXITCODE}: $out" }\n'
    "ConvertTo-Json -Compress -InputObject $out",
)

LOG_MODES: dict[str, Retention] = {
    "circular": "overwrite",
    "autobackup": "archive",
    "retain": "keep",
}
SHIPPER_SERVICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wazuh", ("wazuhsvc",)),
    ("ossec", ("ossecsvc",)),
    ("winlogbeat", ("winlogbeat",)),
    ("nxlog", ("nxlog",)),
    ("splunk-forwarder", ("splunkforwarder",)),
    ("fluent-bit", ("fluent-bit",)),
    ("elastic-agent", ("elastic agent", "elastic-agent")),
    ("filebeat", ("filebeat",)),
)
_SERVER = re.compile(r"Server=(?:https?://)?([^:/,\s]+)", re.IGNORECASE)


# --- pure parsers ---------------------------------------------------------------------


def parse_security_log(data: Any) -> dict[str, Any]:
    [log] = as_list(data) or [{}]
    mode = (as_str(log.get("LogMode")) or "").lower()
    targets = []
    for manager in log.get("SubscriptionManagers") or []:
        m = _SERVER.search(str(manager))
        if m:
            targets.append(m.group(1))
    return {
        "enabled": as_bool(log.get("IsEnabled")),
        "max_bytes": as_int(log.get("MaximumSizeInBytes")),
        "retention": LOG_MODES.get(mode),
        "targets": targets,
    }


def parse_wevtutil(text: str) -> dict[str, Any]:
    """``wevtutil gl Security``: ``key: value`` lines, nested by indentation."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and value.strip():
            values.setdefault(key.strip(), value.strip())
    retention = as_bool(values.get("retention"))
    auto_backup = as_bool(values.get("autoBackup"))
    mode: Retention | None = None
    if retention is False:
        mode = "overwrite"
    elif retention and auto_backup is not None:
        mode = "archive" if auto_backup else "keep"
    return {
        "enabled": as_bool(values.get("enabled")),
        "max_bytes": as_int(values.get("maxSize")),
        "retention": mode,
        "targets": [],
    }


def parse_auditpol_csv(text: str) -> list[AuditSetting]:
    """Rows of ``auditpol /get /category:* /r``.  Raises ValueError if it is not that CSV."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or "Subcategory" not in lines[0]:
        raise ValueError("not auditpol /r output (no 'Subcategory' column)")
    settings = []
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        name = (row.get("Subcategory") or "").strip()
        if not name:
            continue
        setting = (row.get("Inclusion Setting") or "").strip()
        lowered = setting.lower()
        known = lowered in ("no auditing", "success", "failure", "success and failure")
        settings.append(
            AuditSetting(
                subcategory=name,
                guid=(row.get("Subcategory GUID") or "").strip().strip("{}").upper() or None,
                success="success" in lowered if known else None,
                failure="failure" in lowered if known else None,
                setting=setting or None,
            )
        )
    return settings


def shippers_from_services(services: dict[str, Service]) -> list[str]:
    return [
        name
        for name, patterns in SHIPPER_SERVICES
        if any(s.running for s in matching(services, patterns))
    ]


def audited_count(audit: list[AuditSetting] | None) -> int | None:
    """Subcategories with success or failure auditing on (the Windows "audit rules")."""
    return None if audit is None else sum(bool(a.success or a.failure) for a in audit)


# --- the probe ------------------------------------------------------------------------


def _security_log(ctx: ProbeContext, notes: list[str]) -> dict[str, Any] | None:
    try:
        return parse_security_log(run_script(ctx, SECURITY_LOG))
    except ScriptError as exc:
        notes.append(f"Get-WinEvent -ListLog Security failed: {exc.message}")
    try:
        text = run_script(ctx, WEVTUTIL)
        return parse_wevtutil(text if isinstance(text, str) else "")
    except ScriptError as exc:
        notes.append(f"Security log settings unreadable: {exc}")
    return None


def probe(ctx: ProbeContext) -> LoggingSection:
    notes: list[str] = []
    log = _security_log(ctx, notes)
    audit: list[AuditSetting] | None = None
    try:
        output = run_script(ctx, AUDITPOL)
        audit = parse_auditpol_csv(output if isinstance(output, str) else "")
    except (ScriptError, ValueError) as exc:
        notes.append(f"audit policy unreadable: {exc}")
    services: dict[str, Service] | None = None
    try:
        services = parse_services(run_script(ctx, SERVICES))
    except ScriptError as exc:
        notes.append(f"service table unreadable: {exc}")
    if log is None and audit is None and services is None:
        return unknown(LoggingSection, "; ".join(notes), notes=notes)
    if audit is not None and any(a.success is None for a in audit):
        notes.append("some audit settings are not in English and were not interpreted")
    eventlog = services.get("eventlog") if services is not None else None
    return LoggingSection(
        event_log_running=eventlog.running if eventlog else (False if services else None),
        security_log_enabled=log["enabled"] if log else None,
        security_log_max_bytes=log["max_bytes"] if log else None,
        security_log_retention=log["retention"] if log else None,
        remote_targets=log["targets"] if log else [],
        log_shippers=shippers_from_services(services) if services is not None else [],
        audit_policy=audit,
        audit_rule_count=audited_count(audit),
        notes=notes,
    )
