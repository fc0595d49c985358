"""What every probe is given: an alternate filesystem root and a command runner.

Probes never raise for an ordinary gap (missing tool, not root, unreadable
file): they return their section with ``status="unknown"`` and a reason.
Anything unexpected is caught by the collection driver and turned into an
``unknown`` section as well, so one broken probe never spoils the report.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
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
    cache_dir: Path | None = None  # where expensive command results may be reused
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

    def cached_run(
        self,
        argv: Sequence[str],
        timeout: float,
        inputs: Sequence[str],
        max_age: float = 24 * 3600,
    ) -> CommandResult:
        """Run a command, or reuse its last successful result if nothing it reads changed.

        ``inputs`` are the files and folders the command's answer depends on
        (e.g. the dpkg status and apt's package lists for an upgrade
        simulation).  Their size and modification time, one level deep for
        folders, form the fingerprint; a result older than ``max_age`` is
        never reused.  Without a ``cache_dir`` this is a plain ``run``.
        """
        if self.cache_dir is None or not self.live:
            return self.runner.run(argv, timeout=timeout)
        fingerprint = _fingerprint(self, inputs)
        key = hashlib.sha256("\0".join(argv).encode()).hexdigest()[:32]
        path = self.cache_dir / f"cmd-{key}.json"
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if (
                cached["argv"] == list(argv)
                and cached["fingerprint"] == fingerprint
                and time.time() - cached["saved_at"] < max_age
            ):
                return CommandResult(tuple(argv), 0, cached["stdout"], cached["stderr"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        result = self.runner.run(argv, timeout=timeout)
        if result.ok:
            _save_cache(path, argv, fingerprint, result)
        return result

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


def _fingerprint(ctx: ProbeContext, inputs: Sequence[str]) -> list[list[object]]:
    out: list[list[object]] = []
    for absolute in inputs:
        path = ctx.path(absolute)
        try:
            st = path.stat()
        except OSError:
            out.append([absolute, None])
            continue
        out.append([absolute, st.st_mtime_ns, st.st_size])
        if path.is_dir():
            try:
                with os.scandir(path) as entries:
                    for entry in sorted(entries, key=lambda e: e.name):
                        est = entry.stat(follow_symlinks=False)
                        out.append([entry.name, est.st_mtime_ns, est.st_size])
            except OSError:
                out.append([absolute, "unreadable"])
    return out


def _save_cache(
    path: Path, argv: Sequence[str], fingerprint: list[list[object]], result: CommandResult
) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "argv": list(argv),
                    "fingerprint": fingerprint,
                    "saved_at": time.time(),
                    "stdout": result.stdout,
                    "stderr": result.stderr,
                }
            ),
            encoding="utf-8",
        )
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time


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
