"""Replay of PowerShell script outputs for the Windows probe tests (no Windows needed).

``ScriptRunner`` answers each ``Script.argv()`` by the script's name (decoded
from the ``-EncodedCommand`` argument); a script without an answer fails as
PowerShell does for a cmdlet that is not installed (wrapped error, exit 3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from agent.probes.base import CommandResult, CommandRunner, ProbeContext
from agent.probes.windows.powershell import ERROR_EXIT, script_name

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "windows"

Answer = CommandResult | Exception


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def ok(stdout: str) -> CommandResult:
    return CommandResult((), 0, stdout, "")


def json_file(name: str) -> CommandResult:
    """A script printing a fixture written as ConvertTo-Json output."""
    return ok(fixture(name))


def text_file(name: str) -> CommandResult:
    """A script printing a native tool's output through ``ConvertTo-Json`` (a JSON string)."""
    return ok(json.dumps(fixture(name)))


def error(
    message: str, category: str = "NotSpecified", error_id: str = "", hresult: int = -2146233087
) -> CommandResult:
    """The wrapper's error object for a terminating error, with exit status 3."""
    body = {
        "posture_error": message,
        "category": category,
        "error_id": error_id,
        "hresult": hresult,
    }
    return CommandResult((), ERROR_EXIT, json.dumps(body), "")


def not_installed(cmdlet: str) -> CommandResult:
    return error(
        f"The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script "
        "file, or operable program.",
        category="ObjectNotFound",
        error_id="CommandNotFoundException",
        hresult=-2146233087,
    )


def access_denied(message: str = "Access denied") -> CommandResult:
    return error(message, category="PermissionDenied", hresult=-2147217405)


def invalid_namespace() -> CommandResult:
    return error(
        "Invalid namespace ",
        category="MetadataError",
        error_id="HRESULT 0x8004100e,"
        "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
        hresult=-2147217394,
    )


class ScriptRunner(CommandRunner):
    def __init__(self, answers: Mapping[str, Answer] | None = None) -> None:
        super().__init__()
        self.answers = dict(answers or {})
        self.ran: list[str] = []

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        name = script_name(list(argv))
        assert name is not None, f"not a posture-agent script: {argv[:3]}"
        assert timeout, "every script runs with a timeout"
        self.ran.append(name)
        answer = self.answers.get(name)
        if answer is None:
            answer = not_installed(name)
        if isinstance(answer, Exception):
            raise answer
        return CommandResult(tuple(argv), answer.returncode, answer.stdout, answer.stderr)


def healthy_answers() -> dict[str, Answer]:
    """Every script of a well-kept Windows 11 workstation, from the fixtures."""
    answers: dict[str, Answer] = {
        name: json_file(f"{name}.json")
        for name in (
            "defender_status",
            "wsc_antivirus",
            "services",
            "firewall_profiles",
            "hotfixes",
            "windows_update",
            "update_policy",
            "hardware",
            "os_info",
            "installed_software",
            "security_log",
            "local_admins",
            "remote_desktop",
            "bitlocker_volumes",
            "file_history",
        )
    }
    answers["auditpol"] = text_file("auditpol.csv")
    answers["secedit_export"] = text_file("secedit_export.inf")
    answers["wevtutil_security"] = text_file("wevtutil_security.txt")
    answers["net_accounts"] = text_file("net_accounts.txt")
    answers["wb_summary"] = not_installed("Get-WBSummary")
    return answers


def windows_ctx(answers: Mapping[str, Answer] | None = None) -> ProbeContext:
    return ProbeContext(
        root=Path("/nonexistent-windows-root"),
        runner=ScriptRunner(healthy_answers() if answers is None else answers),
        is_root=True,
        live=True,
        process_names=set,
    )
