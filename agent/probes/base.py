"""What every probe is given: an alternate filesystem root and a command runner.

Probes never raise for an ordinary gap (missing tool, not root, unreadable
file): they return their section with ``status="unknown"`` and a reason.
Anything unexpected is caught by the collection driver and turned into an
``unknown`` section as well, so one broken probe never spoils the report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_COMMAND_TIMEOUT = 10.0

# Commands run with a fixed C locale so their output can be parsed.
_COMMAND_ENV = {
    "LC_ALL": "C",
    "LANG": "C",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}


class ToolMissing(Exception):
    """The executable a probe needs is not installed."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"'{tool}' is not installed")
        self.tool = tool


class CommandTimeout(Exception):
    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(f"'{' '.join(argv)}' did not finish within {timeout:g}s")


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandRunner:
    """Runs commands with a timeout and the C locale.  Replaceable in tests."""

    def __init__(self, default_timeout: float = DEFAULT_COMMAND_TIMEOUT) -> None:
        self.default_timeout = default_timeout

    def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=_COMMAND_ENV["PATH"])

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        exe = self.which(argv[0])
        if exe is None:
            raise ToolMissing(argv[0])
        limit = timeout or self.default_timeout
        try:
            proc = subprocess.run(
                [exe, *argv[1:]],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=limit,
                env=_COMMAND_ENV,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeout(argv, limit) from exc
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


@dataclass
class ProbeContext:
    """Everything a probe may look at.

    ``root`` is the filesystem root file-based facts are read from ("/" on a
    live host, a mounted image or a test fixture otherwise).  ``live`` is
    False when auditing an alternate root: live-only sources (processes,
    sockets, commands) must then be skipped and reported as unknown.
    """

    root: Path = field(default_factory=lambda: Path("/"))
    runner: CommandRunner = field(default_factory=CommandRunner)
    is_root: bool = field(default_factory=lambda: hasattr(os, "geteuid") and os.geteuid() == 0)
    live: bool = True
    process_names: Callable[[], set[str]] | None = None
    _process_cache: set[str] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def path(self, absolute: str) -> Path:
        """Map an absolute host path into the probed root."""
        return self.root / absolute.lstrip("/")

    def read_text(self, absolute: str, limit: int = 4 * 1024 * 1024) -> str | None:
        """Read a text file under the root; None if it is absent or unreadable."""
        try:
            with open(self.path(absolute), encoding="utf-8", errors="replace") as fh:
                return fh.read(limit)
        except (OSError, ValueError):
            return None

    def exists(self, absolute: str) -> bool:
        try:
            return self.path(absolute).exists()
        except OSError:
            return False

    def running_processes(self) -> set[str]:
        """Names, executable basenames and argv[0] basenames of running processes."""
        if self.process_names is not None:
            return self.process_names()
        if not self.live:
            return set()
        with self._lock:  # probes run in threads; snapshot the process table once
            if self._process_cache is None:
                self._process_cache = _snapshot_processes()
            return self._process_cache


def _snapshot_processes() -> set[str]:
    import psutil

    names: set[str] = set()
    for proc in psutil.process_iter(["name", "exe", "cmdline"]):
        info = proc.info
        if info.get("name"):
            names.add(info["name"])
        if info.get("exe"):
            names.add(os.path.basename(info["exe"]))
        cmdline = info.get("cmdline") or []
        # Interpreted daemons (fail2ban-server is Python) show their script in argv.
        for arg in cmdline[:2]:
            if arg:
                names.add(os.path.basename(arg.split()[0]))
    return names
