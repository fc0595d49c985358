"""Authentication and access on Windows.

* Password and lockout policy: ``secedit /export /areas SECURITYPOLICY``
  (the ``[System Access]`` section of the exported INF: ``MaximumPasswordAge``,
  ``MinimumPasswordAge``, ``MinimumPasswordLength``, ``PasswordComplexity``,
  ``LockoutBadCount``, ``LockoutDuration``); ``net accounts`` (English output
  only) when secedit is not allowed.
* Members of the local Administrators group (well-known SID S-1-5-32-544, so
  the localized group name does not matter): ``Get-LocalGroupMember``.
  Administrators can install software, which Điều 19 khoản 3 reserves to
  the assigned staff.
* Remote Desktop: ``fDenyTSConnections`` (0 = connections allowed) and the
  RDP-Tcp ``UserAuthentication`` (1 = Network Level Authentication required),
  group policy values (``Policies\\...\\Terminal Services``) taking precedence.
* OpenSSH Server: the ``sshd`` service.
"""

from __future__ import annotations

import re
from typing import Any

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.windows.powershell import (
    Script,
    ScriptError,
    as_int,
    as_list,
    as_str,
    run_script,
)
from agent.probes.windows.services import SERVICES, parse_services
from agent.report import AuthSection

ADMINISTRATORS_SID = "S-1-5-32-544"
ADMINISTRATORS_GROUP = "Administrators"

SECEDIT = Script(
    "secedit_export",
    r"""$tmp = Join-Path $env:TEMP ('posture-secedit-' + [guid]::NewGuid().ToString() + '.inf')
try {
  $out = & secedit.exe /export /cfg $tmp /areas SECURITYPOLICY /quiet 2>&1 | Out-String
  if ($LASTEXITCODE -ne 0 -or -not (Test-Path $tmp)) {
    throw "secedit /export failed (${LASTEXITCODE}): $out"
  }
  ConvertTo-Json -Compress -InputObject (Get-Content -Path $tmp -Raw)
} finally { Remove-Item -Path $tmp -ErrorAction SilentlyContinue }""",
)
NET_ACCOUNTS = Script(
    "net_accounts",
    "$out = & net.exe accounts 2>&1 | Out-String\n"
    'if ($LASTEXITCODE -ne 0) { throw "net accounts exited with ${LASTEXITCODE}: $out" }\n'
    "ConvertTo-Json -Compress -InputObject $out",
)
ADMINS = Script(
    "local_admins",
    f"""$m = Get-LocalGroupMember -SID '{ADMINISTRATORS_SID}' |
  Select-Object Name, @{{n='SID';e={{[string]$_.SID}}}},
    @{{n='ObjectClass';e={{[string]$_.ObjectClass}}}},
    @{{n='PrincipalSource';e={{[string]$_.PrincipalSource}}}}
ConvertTo-Json -Compress -InputObject @($m)""",
)
REMOTE_DESKTOP = Script(
    "remote_desktop",
    r"""function Reg($p) { Get-ItemProperty -Path $p -ErrorAction SilentlyContinue }
$ts = Reg 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server'
$rdp = Reg 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'
$pol = Reg 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services'
[pscustomobject]@{
  fDenyTSConnections = $ts.fDenyTSConnections; UserAuthentication = $rdp.UserAuthentication
  PortNumber = $rdp.PortNumber; PolicyDenyTSConnections = $pol.fDenyTSConnections
  PolicyUserAuthentication = $pol.UserAuthentication
} | ConvertTo-Json -Compress""",
)

# --- pure parsers ---------------------------------------------------------------------


def parse_inf_section(text: str, section: str) -> dict[str, str]:
    """``key = value`` lines of one ``[section]`` of a secedit INF export."""
    values: dict[str, str] = {}
    current = None
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        if current == section and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    return values


def policy_from_secedit(text: str) -> dict[str, Any]:
    access = parse_inf_section(text, "System Access")
    if not access:
        raise ValueError("no [System Access] section in the secedit export")
    threshold = as_int(access.get("LockoutBadCount"))
    complexity = as_int(access.get("PasswordComplexity"))
    return {
        "pass_max_days": as_int(access.get("MaximumPasswordAge")),
        "pass_min_days": as_int(access.get("MinimumPasswordAge")),
        "pass_min_len": as_int(access.get("MinimumPasswordLength")),
        "password_complexity": None if complexity is None else complexity == 1,
        "lockout_threshold": threshold,
        "lockout_duration_minutes": as_int(access.get("LockoutDuration")) if threshold else None,
        "password_policy_source": "secedit",
    }


_NET_FIELDS = {
    "maximum password age": "pass_max_days",
    "minimum password age": "pass_min_days",
    "minimum password length": "pass_min_len",
    "lockout threshold": "lockout_threshold",
    "lockout duration": "lockout_duration_minutes",
}


def policy_from_net_accounts(text: str) -> dict[str, Any]:
    """``net accounts`` in English; "Unlimited" age is -1 and "Never" lockout 0, as secedit."""
    facts: dict[str, Any] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if not sep:
            continue
        label = re.sub(r"\s*\(.*\)\s*$", "", label.strip()).lower()
        key = _NET_FIELDS.get(label)
        if key is None:
            continue
        word = value.strip().lower()
        facts[key] = {"unlimited": -1, "never": 0, "none": 0}.get(word, as_int(word))
    if not facts:
        raise ValueError("net accounts output not understood (not English?)")
    if not facts.get("lockout_threshold"):
        facts["lockout_duration_minutes"] = None
    return {**facts, "password_complexity": None, "password_policy_source": "net accounts"}


def parse_admins(data: Any) -> list[str]:
    return sorted({name for row in as_list(data) if (name := as_str(row.get("Name")))})


def parse_remote_desktop(data: Any) -> tuple[bool | None, bool | None]:
    """(connections allowed, NLA required); group policy values win over local ones."""
    [rdp] = as_list(data) or [{}]
    deny = as_int(rdp.get("PolicyDenyTSConnections"))
    if deny is None:
        deny = as_int(rdp.get("fDenyTSConnections"))
    nla = as_int(rdp.get("PolicyUserAuthentication"))
    if nla is None:
        nla = as_int(rdp.get("UserAuthentication"))
    return (None if deny is None else deny == 0), (None if nla is None else nla == 1)


# --- the probe ------------------------------------------------------------------------


def _password_policy(ctx: ProbeContext, notes: list[str]) -> dict[str, Any]:
    try:
        inf = run_script(ctx, SECEDIT)
        return policy_from_secedit(inf if isinstance(inf, str) else "")
    except (ScriptError, ValueError) as exc:
        notes.append(f"secedit export unavailable: {exc}")
    try:
        text = run_script(ctx, NET_ACCOUNTS)
        return policy_from_net_accounts(text if isinstance(text, str) else "")
    except (ScriptError, ValueError) as exc:
        notes.append(f"password policy unreadable: {exc}")
    return {}


def probe(ctx: ProbeContext) -> AuthSection:
    notes: list[str] = []
    observed = 0
    policy = _password_policy(ctx, notes)
    observed += bool(policy)
    admins: dict[str, list[str]] | None = None
    try:
        admins = {ADMINISTRATORS_GROUP: parse_admins(run_script(ctx, ADMINS))}
        observed += 1
    except ScriptError as exc:
        notes.append(f"Administrators members unreadable: {exc}")
    rdp: tuple[bool | None, bool | None] = (None, None)
    try:
        rdp = parse_remote_desktop(run_script(ctx, REMOTE_DESKTOP))
        observed += 1
    except ScriptError as exc:
        notes.append(f"Remote Desktop settings unreadable: {exc}")
    sshd_installed = sshd_running = None
    try:
        sshd = parse_services(run_script(ctx, SERVICES)).get("sshd")
        sshd_installed, sshd_running = sshd is not None, bool(sshd and sshd.running)
        observed += 1
        if sshd is not None:
            notes.append("OpenSSH Server is installed: its sshd_config is not read on Windows")
    except ScriptError as exc:
        notes.append(f"service table unreadable: {exc}")
    if not observed:
        return unknown(AuthSection, "; ".join(notes), notes=notes)
    return AuthSection(
        sshd_installed=sshd_installed,
        sshd_running=sshd_running,
        admin_group_members=admins,
        remote_desktop_enabled=rdp[0],
        remote_desktop_nla=rdp[1],
        notes=notes,
        **policy,
    )
