"""Shared helpers for probe tests: fake command runners, fake roots, contexts."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from agent.probes.base import CommandResult, CommandRunner, ProbeContext, ToolMissing

FIXTURES = Path(__file__).resolve().parent / "fixtures"

Canned = CommandResult | Exception


def result(stdout: str = "", returncode: int = 0, stderr: str = "") -> CommandResult:
    """A canned command result (argv is filled in by the runner)."""
    return CommandResult((), returncode, stdout, stderr)


class FakeRunner(CommandRunner):
    """Answers keyed by a command line or its prefix; anything unlisted is 'not installed'.

    ``FakeRunner({"sshd -T": result(out), "auditctl": PermissionError()})``: the
    longest key that equals the command line, or is a prefix of it followed by
    a space, wins.  An exception is raised instead of answering.
    """

    def __init__(self, responses: Mapping[str, Canned] | None = None) -> None:
        super().__init__()
        self.responses = dict(responses or {})
        self.calls: list[tuple[tuple[str, ...], float | None]] = []

    def which(self, tool: str) -> str | None:
        return f"/usr/bin/{tool}" if any(k.split()[0] == tool for k in self.responses) else None

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        self.calls.append((tuple(argv), timeout))
        line = " ".join(argv)
        keys = [k for k in self.responses if line == k or line.startswith(k + " ")]
        if not keys:
            raise ToolMissing(argv[0])
        answer = self.responses[max(keys, key=len)]
        if isinstance(answer, Exception):
            raise answer
        return CommandResult(tuple(argv), answer.returncode, answer.stdout, answer.stderr)

    def ran(self, prefix: str) -> bool:
        return any(" ".join(argv).startswith(prefix) for argv, _ in self.calls)

    @property
    def argvs(self) -> list[tuple[str, ...]]:
        """The command lines run so far, in order, without their timeouts."""
        return [argv for argv, _ in self.calls]


class ForbiddenRunner(CommandRunner):
    """For probes or modes that must not run any command."""

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        raise AssertionError(f"no command may run here, got {list(argv)}")


def write(root: Path, absolute: str, content: str | bytes = "", mode: int | None = None) -> Path:
    """Create a file at an absolute host path under a fake root."""
    path = root / absolute.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)
    return path


def make_root(
    tmp_path: Path,
    files: Mapping[str, str | bytes] | None = None,
    bins: Sequence[str] = (),
    dirs: Sequence[str] = (),
) -> Path:
    """A fake filesystem root with the given files, (empty, executable) binaries and dirs.

    The root is ``tmp_path / "root"``; ``tmp_path`` itself is created if needed.
    """
    root = tmp_path / "root"
    root.mkdir(parents=True, exist_ok=True)
    for directory in dirs:
        (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for binary in bins:
        write(root, binary, "#!/bin/sh\n", mode=0o755)
    for absolute, content in (files or {}).items():
        write(root, absolute, content)
    return root


def set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def deny(ctx: ProbeContext, *paths: str) -> ProbeContext:
    """Make files unreadable through ``ctx.read_text``, as for a non-root agent.

    The tests may well run as root, so chmod would not do.  Returns ``ctx``.
    """
    original = ctx.read_text

    def read_text(absolute: str, limit: int = 4 * 1024 * 1024) -> str | None:
        return None if absolute in paths else original(absolute, limit)

    ctx.read_text = read_text  # type: ignore[method-assign]
    return ctx


def ctx_for(
    root: Path,
    runner: CommandRunner | None = None,
    *,
    is_root: bool = True,
    live: bool = True,
    processes: set[str] | Callable[[], set[str]] | None = None,
) -> ProbeContext:
    names = processes if callable(processes) else (lambda: set(processes or ()))
    return ProbeContext(
        root=root,
        runner=runner or ForbiddenRunner(),
        is_root=is_root,
        live=live,
        process_names=names,
    )


def fixture_text(*parts: str) -> str:
    return FIXTURES.joinpath(*parts).read_text(encoding="utf-8")
