"""Run a PowerShell script that prints JSON, and read its answer.

Every Windows fact is collected by one small script per query, run as
``powershell.exe -NoProfile -NonInteractive -EncodedCommand <base64>`` with a
timeout.  The script text is wrapped so that:

* output is UTF-8 and progress bars are off;
* any terminating error is caught and printed as one JSON object
  ``{"posture_error": message, "category": ..., "error_id": ..., "hresult": ...}``
  with exit status 3, instead of PowerShell's CLIXML error stream;
* a comment line ``# posture-agent script: <name>`` names the script (logs and
  test replay use it).

``parse_script_output`` (pure) turns a command result into the decoded JSON or
a ``ScriptError`` whose ``kind`` says why: ``missing`` (PowerShell, a cmdlet,
a CIM namespace or class is absent), ``denied`` (not enough rights),
``timeout`` or ``failed``.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from agent.probes.base import CommandResult, CommandTimeout, ProbeContext, ToolMissing

POWERSHELL = "powershell.exe"
POWERSHELL_ARGS = (
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
)
DEFAULT_SCRIPT_TIMEOUT = 20.0
ERROR_EXIT = 3
NAME_MARKER = "# posture-agent script: "

_PREAMBLE = (
    "$ErrorActionPreference = 'Stop'\n"
    "$ProgressPreference = 'SilentlyContinue'\n"
    "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8\n"
)
_CATCH = (
    "} catch {\n"
    "  $e = $_\n"
    "  $err = [ordered]@{ posture_error = [string]$e.Exception.Message;"
    " category = [string]$e.CategoryInfo.Category;"
    " error_id = [string]$e.FullyQualifiedErrorId;"
    " hresult = $e.Exception.HResult }\n"
    "  [Console]::Out.Write(($err | ConvertTo-Json -Compress))\n"
    f"  exit {ERROR_EXIT}\n"
    "}\n"
)

ErrorKind = Literal["missing", "denied", "timeout", "failed"]

# HRESULTs (signed 32-bit, as .NET reports them) that mean "not there" or "not allowed".
_MISSING_HRESULTS = {
    -2147217394,  # 0x8004100E WBEM_E_INVALID_NAMESPACE (no SecurityCenter2 on Server)
    -2147217392,  # 0x80041010 WBEM_E_INVALID_CLASS
    -2147024894,  # 0x80070002 file not found
    -2147221005,  # 0x800401F3 CO_E_CLASSSTRING: COM class (ProgID) not registered
}
_DENIED_HRESULTS = {-2147024891, -2147217405}  # 0x80070005 E_ACCESSDENIED, WBEM_E_ACCESS_DENIED


@dataclass(frozen=True)
class Script:
    """A named PowerShell script that writes JSON (``ConvertTo-Json``) to stdout."""

    name: str
    body: str
    timeout: float = DEFAULT_SCRIPT_TIMEOUT

    def text(self) -> str:
        return f"{_PREAMBLE}{NAME_MARKER}{self.name}\ntry {{\n{self.body.strip()}\n{_CATCH}"

    def argv(self) -> list[str]:
        encoded = base64.b64encode(self.text().encode("utf-16-le")).decode("ascii")
        return [POWERSHELL, *POWERSHELL_ARGS, encoded]


class ScriptError(Exception):
    def __init__(self, script: str, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{script}: {message}")
        self.script = script
        self.kind = kind
        self.message = message


def script_name(argv: tuple[str, ...] | list[str]) -> str | None:
    """The name of the script an ``argv`` built by ``Script.argv`` runs; None otherwise."""
    if len(argv) < 2 or argv[0] != POWERSHELL or argv[-2] != "-EncodedCommand":
        return None
    try:
        text = base64.b64decode(argv[-1]).decode("utf-16-le")
    except (ValueError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith(NAME_MARKER):
            return line[len(NAME_MARKER) :].strip()
    return None


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "CLIXML" not in ln]
    return lines[0] if lines else ""


def classify_error(error: dict[str, Any]) -> ErrorKind:
    """Why a wrapped script failed, from its error object."""
    message = str(error.get("posture_error") or "")
    error_id = str(error.get("error_id") or "")
    category = str(error.get("category") or "")
    hresult = error.get("hresult")
    lowered = message.lower()
    if (
        "CommandNotFoundException" in error_id
        or hresult in _MISSING_HRESULTS
        or "invalid namespace" in lowered
        or "invalid class" in lowered
        or "is not recognized as the name of a cmdlet" in lowered
    ):
        return "missing"
    if (
        category == "PermissionDenied"
        or hresult in _DENIED_HRESULTS
        or "access is denied" in lowered
        or "access denied" in lowered
        or "requires elevation" in lowered
        or "privilege is not held" in lowered
        or "unauthorized operation" in lowered
    ):
        return "denied"
    return "failed"


def parse_script_output(name: str, result: CommandResult) -> Any:
    """Decoded JSON of a script's stdout (None when it printed nothing).  Raises ScriptError."""
    stdout = result.stdout.lstrip("\ufeff").strip()
    if result.returncode == ERROR_EXIT and stdout.startswith("{"):
        try:
            error = json.loads(stdout)
        except ValueError:
            error = None
        if isinstance(error, dict) and "posture_error" in error:
            message = str(error.get("posture_error") or "unknown error").strip()
            raise ScriptError(name, classify_error(error), message.splitlines()[0])
    if not result.ok:
        detail = _first_line(result.stderr) or _first_line(result.stdout)
        raise ScriptError(name, "failed", detail or f"exit status {result.returncode}")
    if not stdout:
        return None
    try:
        return json.loads(stdout)
    except ValueError as exc:
        raise ScriptError(name, "failed", f"output is not JSON ({exc})") from exc


def run_script(ctx: ProbeContext, script: Script) -> Any:
    """Run ``script`` through ``ctx.runner``; decoded JSON or ScriptError."""
    try:
        result = ctx.runner.run(script.argv(), timeout=script.timeout)
    except ToolMissing as exc:
        raise ScriptError(script.name, "missing", "PowerShell (powershell.exe) not found") from exc
    except CommandTimeout as exc:
        raise ScriptError(
            script.name, "timeout", f"did not finish within {script.timeout:g}s"
        ) from exc
    return parse_script_output(script.name, result)


# --- shapes of ConvertTo-Json output --------------------------------------------------


def as_list(data: Any) -> list[dict[str, Any]]:
    """ConvertTo-Json prints one object bare and several as an array: always a list."""
    if data is None:
        return []
    items = data if isinstance(data, list) else [data]
    return [i for i in items if isinstance(i, dict)]


def as_bool(value: Any) -> bool | None:
    """A boolean as PowerShell may print it: true/false, 1/0, "True"/"False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def as_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_DMTF = re.compile(r"^(\d{14})\.(\d{6})([+-])(\d{3})$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def parse_ps_datetime(value: Any) -> datetime | None:
    """A date as it comes out of PowerShell or WMI, in UTC; None if absent or unreadable.

    * ``/Date(1732086035000)/``: Windows PowerShell 5.1 ``ConvertTo-Json`` of a
      ``DateTime`` (milliseconds since 1970 UTC), also wrapped as
      ``{"value": ..., "DateTime": ...}`` when the object carries note properties;
    * ISO 8601 (PowerShell 7, or ``.ToString('o')`` in a script); naive = UTC;
    * CIM/DMTF ``yyyymmddHHMMSS.mmmmmm+UUU`` (offset in minutes);
    * ``M/d/yyyy``: ``Win32_QuickFixEngineering.InstalledOn``;
    * 16 hex digits: a FILETIME, as old hotfix entries hold.
    """
    if isinstance(value, dict):
        value = value.get("value", value.get("DateTime"))
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if m := _MS_DATE.match(text):
        millis = int(m.group(1))
        if millis <= 0:
            return None  # DateTime.MinValue / "never"
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    if m := _DMTF.match(text):
        try:
            local = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
        except ValueError:
            return None
        offset = timedelta(minutes=int(m.group(4)))
        tz = timezone(offset if m.group(3) == "+" else -offset)
        return local.replace(tzinfo=tz).astimezone(UTC)
    if m := _US_DATE.match(text):
        try:
            return datetime(int(m.group(3)), int(m.group(1)), int(m.group(2)), tzinfo=UTC)
        except ValueError:
            return None
    if re.fullmatch(r"[0-9a-fA-F]{16}", text):
        ticks = int(text, 16)
        return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10) if ticks else None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= 1601:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
