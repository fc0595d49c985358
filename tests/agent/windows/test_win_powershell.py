"""The PowerShell runner helper: script wrapping, error classes, PowerShell output shapes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from agent.probes.base import CommandResult, CommandTimeout, ToolMissing
from agent.probes.windows.powershell import (
    Script,
    ScriptError,
    as_bool,
    as_list,
    parse_ps_datetime,
    parse_script_output,
    run_script,
    script_name,
)
from tests.agent.windows.winkit import (
    ScriptRunner,
    access_denied,
    error,
    invalid_namespace,
    not_installed,
    ok,
    windows_ctx,
)

SCRIPT = Script("example", "Get-Thing | ConvertTo-Json -Compress", timeout=7.0)


def test_argv_is_an_encoded_wrapped_script() -> None:
    argv = SCRIPT.argv()
    assert argv[0] == "powershell.exe" and argv[-2] == "-EncodedCommand"
    assert "-NonInteractive" in argv and "-NoProfile" in argv
    text = base64.b64decode(argv[-1]).decode("utf-16-le")
    assert "$ErrorActionPreference = 'Stop'" in text
    assert "Get-Thing | ConvertTo-Json -Compress" in text
    assert "posture_error" in text and "exit 3" in text
    assert script_name(argv) == "example"
    assert script_name(["powershell.exe", "-Command", "x"]) is None


def test_run_script_passes_the_timeout_and_decodes_json() -> None:
    runner = ScriptRunner({"example": ok('{"A":1}')})
    ctx = windows_ctx({})
    ctx.runner = runner
    assert run_script(ctx, SCRIPT) == {"A": 1}
    assert runner.ran == ["example"]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (not_installed("Get-Thing"), "missing"),
        (invalid_namespace(), "missing"),
        (access_denied(), "denied"),
        (
            error("auditpol exited with 1: A required privilege is not held by the client."),
            "denied",
        ),
        (error("The RPC server is unavailable."), "failed"),
        (CommandResult((), 1, "", "#< CLIXML\nsomething broke\n"), "failed"),
        (ok("not json"), "failed"),
    ],
)
def test_errors_are_classified(answer: CommandResult, kind: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script_output("example", answer)
    assert caught.value.kind == kind
    assert caught.value.message


def test_missing_powershell_and_timeout() -> None:
    ctx = windows_ctx({})
    ctx.runner = ScriptRunner({"example": ToolMissing("powershell.exe")})
    with pytest.raises(ScriptError) as missing:
        run_script(ctx, SCRIPT)
    assert missing.value.kind == "missing" and "PowerShell" in missing.value.message
    ctx.runner = ScriptRunner({"example": CommandTimeout(["powershell.exe"], 7.0)})
    with pytest.raises(ScriptError) as slow:
        run_script(ctx, SCRIPT)
    assert slow.value.kind == "timeout"


def test_empty_output_is_none_and_lists_are_normalised() -> None:
    assert parse_script_output("x", ok("")) is None
    assert as_list(None) == [] and as_list({"a": 1}) == [{"a": 1}]
    assert as_list([{"a": 1}, "noise"]) == [{"a": 1}]
    assert as_bool("True") is True and as_bool(0) is False and as_bool("maybe") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/Date(1795130104000)/", datetime(2026, 11, 19, 23, 15, 4, tzinfo=UTC)),
        (
            {"value": "/Date(1795130104000)/", "DateTime": "x"},
            datetime(2026, 11, 19, 23, 15, 4, tzinfo=UTC),
        ),
        ("2026-11-20T07:58:11.5012345Z", datetime(2026, 11, 20, 7, 58, 11, 501234, tzinfo=UTC)),
        ("2026-11-13T03:05:10", datetime(2026, 11, 13, 3, 5, 10, tzinfo=UTC)),
        ("20240601094035.000000+420", datetime(2024, 6, 1, 2, 40, 35, tzinfo=UTC)),
        ("11/13/2026", datetime(2026, 11, 13, tzinfo=UTC)),
        ("01d1e39c40adf280", datetime(2016, 7, 21, 22, 7, 21, tzinfo=UTC)),
        ("/Date(-62135596800000)/", None),
        ("0001-01-01T00:00:00", None),
        ("", None),
        (None, None),
        ("next tuesday", None),
    ],
)
def test_parse_ps_datetime(value: object, expected: datetime | None) -> None:
    assert parse_ps_datetime(value) == expected
