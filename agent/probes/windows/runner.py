"""The command runner and context used on a Windows host.

The Linux ``CommandRunner`` looks tools up on a fixed Unix ``PATH`` and runs
them in the C locale with a minimal environment; PowerShell needs its normal
environment (``SystemRoot``, ``PSModulePath``…).  ``WindowsCommandRunner``
finds ``powershell.exe`` under ``%SystemRoot%`` (the 64-bit one, through
``Sysnative``, when the agent is a 32-bit Python on 64-bit Windows), keeps the
environment, decodes output as UTF-8 (the scripts set it) and never opens a
console window.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from agent.probes.base import (
    CommandResult,
    CommandRunner,
    CommandTimeout,
    ProbeContext,
    ToolMissing,
)

CREATE_NO_WINDOW = 0x08000000  # subprocess.CREATE_NO_WINDOW, only defined on Windows


def system_dirs(system_root: str | None = None) -> list[Path]:
    """Folders holding system tools, 64-bit view first."""
    root = Path(system_root or os.environ.get("SYSTEMROOT") or r"C:\Windows")
    return [
        root / "Sysnative" / "WindowsPowerShell" / "v1.0",
        root / "System32" / "WindowsPowerShell" / "v1.0",
        root / "Sysnative",
        root / "System32",
    ]


class WindowsCommandRunner(CommandRunner):
    def which(self, tool: str) -> str | None:
        for folder in system_dirs():
            candidate = folder / tool
            if candidate.is_file():
                return str(candidate)
        return shutil.which(tool)

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        exe = self.which(argv[0])
        if exe is None:
            raise ToolMissing(argv[0])
        limit = timeout or self.default_timeout
        try:
            proc = subprocess.run(
                [exe, *argv[1:]],
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                timeout=limit,
                stdin=subprocess.DEVNULL,
                check=False,
                creationflags=CREATE_NO_WINDOW,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeout(argv, limit) from exc
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def prepare_context(ctx: ProbeContext) -> ProbeContext:
    """The context for Windows probes: a Windows runner unless a custom one was given.

    A test's fake runner (any subclass) is kept; only the stock Linux runner is
    replaced.  The Windows service runs as LocalSystem, hence ``is_root``.
    """
    if type(ctx.runner) is CommandRunner:
        runner = WindowsCommandRunner(ctx.runner.default_timeout)
        return dataclasses.replace(ctx, runner=runner, is_root=True)
    return ctx


def machine_guid() -> str | None:
    """``HKLM\\SOFTWARE\\Microsoft\\Cryptography\\MachineGuid``: the stable machine id."""
    try:
        import winreg
    except ImportError:  # not Windows
        return None
    try:
        with winreg.OpenKey(
            winreg.HKEY_LOCAL_MACHINE,
            r"SOFTWARE\Microsoft\Cryptography",
            0,
            winreg.KEY_READ | winreg.KEY_WOW64_64KEY,
        ) as key:
            value, _ = winreg.QueryValueEx(key, "MachineGuid")
    except OSError:
        return None
    return str(value).strip().lower() or None
