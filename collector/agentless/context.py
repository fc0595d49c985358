"""Run the agent's probes, unchanged, against a remote host over one SSH connection.

* Commands go through ``RemoteRunner`` (``LC_ALL=C``, a timeout enforced on
  both ends, a missing tool → ``ToolMissing``, a timeout → ``CommandTimeout``).
* ``read_text``/``exists`` read the live remote files over SFTP.
* Probes that walk folders with ``ctx.path(...)`` see a *staging root*: the
  remote ``/etc``, cron spools and apt logs copied with their contents, and a
  skeleton (names, types, modification times, symlinks) of the folders probes
  list (``/boot``, ``/lib/modules``, ``/usr/bin``, systemd units, ...).
* Facts the agent reads with psutil/platform on the *local* machine cannot be
  observed agentless; ``adjust_sections`` replaces them with the remote values
  (kernel, architecture, uptime, memory) or marks them unknown.  The network and
  encryption probes are replaced by ``REMOTE_PROBES`` (``network.py``: ``ip``,
  ``ss`` and ``/proc`` of the remote host).
"""

from __future__ import annotations

import os
import shlex
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paramiko

from agent import __version__
from agent.collect import DEFAULT_PROBE_TIMEOUT, Probe, collect_sections
from agent.probes.base import (
    _COMMAND_ENV,
    DEFAULT_COMMAND_TIMEOUT,
    CommandResult,
    CommandRunner,
    CommandTimeout,
    ProbeContext,
    ToolMissing,
)
from agent.report import (
    HardwareSection,
    HostIdentity,
    HostRole,
    OsSection,
    Report,
    Section,
)
from collector.agentless.network import encryption_probe, network_probe

NOT_AGENTLESS = "not available agentless"
_MISSING_MARK = "__posture_tool_missing__"
MAX_CHANNELS = 6  # sshd's MaxSessions defaults to 10 per connection
STAGE_TIMEOUT = 120.0
STAGE_MAX_BYTES = 64 * 1024 * 1024
# Probes whose agent version asks psutil about the local machine.
REMOTE_PROBES: dict[str, Probe] = {"network": network_probe, "encryption": encryption_probe}

# Copied with their contents (small, configuration-like).
STAGED_TREES = ("etc", "usr/lib/os-release", "var/spool/cron", "var/log/apt")
# Listed only: (folder, depth).
SKELETON = (
    ("/", 1),
    ("/boot", 1),
    ("/lib/modules", 1),
    ("/usr/lib/modules", 1),
    ("/var", 1),
    ("/var/lib", 1),
    ("/var/lib/dpkg/info", 1),
    ("/var/lib/apt", 2),
    ("/var/lib/clamav", 1),
    ("/var/log", 2),
    ("/var/backups", 2),
    ("/usr/bin", 1),
    ("/usr/sbin", 1),
    ("/usr/local/bin", 1),
    ("/usr/local/sbin", 1),
    ("/opt", 2),
    ("/srv", 2),
    ("/run", 1),
    ("/lib/systemd/system", 1),
    ("/usr/lib/systemd/system", 1),
)


class RemoteRunner(CommandRunner):
    """Runs a command on the remote host over SSH, like ``CommandRunner`` does locally."""

    def __init__(
        self, client: paramiko.SSHClient, default_timeout: float = DEFAULT_COMMAND_TIMEOUT
    ) -> None:
        super().__init__(default_timeout)
        self.client = client
        self._slots = threading.BoundedSemaphore(MAX_CHANNELS)
        self._which: dict[str, str | None] = {}

    @staticmethod
    def _env() -> str:
        return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in _COMMAND_ENV.items())

    def command_line(self, argv: Sequence[str], timeout: float) -> str:
        tool = shlex.quote(argv[0])
        cmd = shlex.join(argv)
        limit = max(1, int(timeout + 0.999))
        return (
            f"{self._env()}; "
            f"command -v {tool} >/dev/null 2>&1 || {{ echo {_MISSING_MARK} >&2; exit 127; }}; "
            # The remote side kills the command too when coreutils' timeout exists.
            f"if command -v timeout >/dev/null 2>&1; then exec timeout -k 2 {limit} {cmd}; "
            f"else exec {cmd}; fi"
        )

    def exec_raw(self, command: str, timeout: float) -> tuple[int, bytes, bytes] | None:
        """Run a shell command line; None when it did not finish within ``timeout``."""
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise OSError("the SSH connection is closed")
        with self._slots:
            chan = transport.open_session(timeout=timeout)
            try:
                chan.exec_command(command)
                chan.shutdown_write()
                out, err = bytearray(), bytearray()
                deadline = time.monotonic() + timeout
                while True:
                    busy = False
                    if chan.recv_ready():
                        out += chan.recv(65536)
                        busy = True
                    if chan.recv_stderr_ready():
                        err += chan.recv_stderr(65536)
                        busy = True
                    if busy:
                        continue
                    if chan.exit_status_ready() and chan.eof_received:
                        return chan.recv_exit_status(), bytes(out), bytes(err)
                    if time.monotonic() > deadline:
                        return None
                    time.sleep(0.005)
            finally:
                chan.close()

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        limit = timeout or self.default_timeout
        result = self.exec_raw(self.command_line(argv, limit), limit)
        if result is None:
            raise CommandTimeout(argv, limit)
        code, out, err = result
        stderr = err.decode("utf-8", "replace")
        if code == 127 and _MISSING_MARK in stderr:
            raise ToolMissing(argv[0])
        return CommandResult(tuple(argv), code, out.decode("utf-8", "replace"), stderr)

    def which(self, tool: str) -> str | None:
        if tool not in self._which:
            result = self.exec_raw(f"{self._env()}; command -v {shlex.quote(tool)}", 10.0)
            path = result[1].decode("utf-8", "replace").strip() if result and result[0] == 0 else ""
            self._which[tool] = path or None
        return self._which[tool]

    def shell(self, command: str, timeout: float = 30.0) -> str:
        """Output of a fixed shell snippet ('' on failure or timeout)."""
        result = self.exec_raw(f"{self._env()}; {command}", timeout)
        return result[1].decode("utf-8", "replace") if result else ""


@dataclass
class RemoteProbeContext(ProbeContext):
    """A ``ProbeContext`` whose files and commands are those of the SSH peer."""

    client: paramiko.SSHClient | None = None
    sftp: paramiko.SFTPClient | None = None
    stage_notes: list[str] = field(default_factory=list)
    _sftp_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def open(
        cls,
        client: paramiko.SSHClient,
        staging: Path,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> RemoteProbeContext:
        runner = RemoteRunner(client, command_timeout)
        uid = runner.shell("id -u", 10).strip()
        ctx = cls(
            root=staging,
            runner=runner,
            is_root=uid == "0",
            live=True,
            client=client,
            sftp=_open_sftp(client),
        )
        if ctx.sftp is None:
            ctx.stage_notes.append("SFTP unavailable: files read with cat over SSH")
        ctx.process_names = ctx._remote_processes
        ctx.stage()
        return ctx

    @property
    def remote(self) -> RemoteRunner:
        assert isinstance(self.runner, RemoteRunner)
        return self.runner

    # --- live files over SFTP -------------------------------------------------

    def read_text(self, absolute: str, limit: int = 4 * 1024 * 1024) -> str | None:
        if self.sftp is None:
            quoted = shlex.quote(absolute)
            result = self.remote.exec_raw(f"head -c {int(limit)} -- {quoted}", 30.0)
            if result is None or result[0] != 0:
                return None
            return result[1].decode("utf-8", "replace")
        try:
            with self._sftp_lock, self.sftp.open(absolute, "rb") as fh:
                data = fh.read(limit)
        except (OSError, paramiko.SSHException, EOFError):
            return None
        return data.decode("utf-8", "replace")

    def exists(self, absolute: str) -> bool:
        if self.sftp is None:
            result = self.remote.exec_raw(f"test -e {shlex.quote(absolute)}", 10.0)
            return result is not None and result[0] == 0
        try:
            with self._sftp_lock:
                self.sftp.stat(absolute)
        except (OSError, paramiko.SSHException, EOFError):
            return False
        return True

    def close(self) -> None:
        if self.sftp is not None:
            self.sftp.close()

    # --- processes ------------------------------------------------------------

    def _remote_processes(self) -> set[str]:
        with self._lock:
            if self._process_cache is None:
                out = self.remote.shell("ps -eo comm=; echo ' --- '; ps -eo args=", 30)
                comms, _, args = out.partition(" --- ")
                names = {line.strip() for line in comms.splitlines() if line.strip()}
                for line in args.splitlines():
                    for word in line.split()[:2]:
                        names.add(os.path.basename(word))
                names.discard("")
                self._process_cache = names
            return self._process_cache

    # --- staging root -----------------------------------------------------------

    def stage(self) -> None:
        """Copy the configuration trees and list the folders probes walk."""
        self._stage_trees()
        self._stage_skeleton()

    def _inside(self, relative: str) -> Path | None:
        parts = [p for p in relative.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            return None
        # Staged symlinks (/lib -> usr/lib) are followed for the parent folders;
        # one leading outside the staging root is refused.
        parent = os.path.realpath(self.root.joinpath(*parts[:-1]))
        root = os.path.realpath(self.root)
        if parent != root and not parent.startswith(root + os.sep):
            return None
        os.makedirs(parent, exist_ok=True)
        return Path(parent) / parts[-1]

    def _stage_trees(self) -> None:
        assert self.client is not None
        transport = self.client.get_transport()
        assert transport is not None
        trees = " ".join(shlex.quote(t) for t in STAGED_TREES)
        command = (
            f"{RemoteRunner._env()}; cd / && tar -cf - --ignore-failed-read "
            f"--warning=no-file-changed {trees} 2>/dev/null"
        )
        with self.remote._slots:
            chan = transport.open_session(timeout=STAGE_TIMEOUT)
            try:
                chan.settimeout(STAGE_TIMEOUT)
                chan.exec_command(command)
                chan.shutdown_write()
                with chan.makefile("rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                    self._extract(tar)
            except (OSError, tarfile.TarError, paramiko.SSHException, EOFError) as exc:
                self.stage_notes.append(f"configuration copy incomplete: {exc}")
            finally:
                chan.close()

    def _extract(self, tar: tarfile.TarFile) -> None:
        total = 0
        for member in tar:
            target = self._inside(member.name)
            if target is None or target.exists() or target.is_symlink():
                continue
            if member.isdir():
                target.mkdir(exist_ok=True)
            elif member.issym():
                os.symlink(member.linkname, target)
                continue
            elif member.isfile():
                total += member.size
                if total > STAGE_MAX_BYTES:
                    self.stage_notes.append("configuration copy truncated (size limit)")
                    return
                source = tar.extractfile(member)
                if source is None:
                    continue
                with open(target, "wb") as out:
                    out.write(source.read())
            else:
                continue
            os.utime(target, (member.mtime, member.mtime))

    def _stage_skeleton(self) -> None:
        parts = [
            f"find {shlex.quote(folder)} -maxdepth {depth} "
            "-printf '%y\\0%T@\\0%l\\0%p\\0' 2>/dev/null"
            for folder, depth in SKELETON
        ]
        out = self.remote.shell("; ".join(parts), 60)
        fields = out.split("\0")
        dirs_mtime: list[tuple[Path, float]] = []
        for i in range(0, len(fields) - 3, 4):
            kind, mtime_raw, link, path = fields[i : i + 4]
            target = self._inside(path)
            if target is None or target.exists() or target.is_symlink():
                continue
            try:
                mtime = float(mtime_raw)
            except ValueError:
                mtime = 0.0
            if kind == "d":
                target.mkdir(exist_ok=True)
                dirs_mtime.append((target, mtime))
            elif kind == "l":
                os.symlink(link, target)
            else:
                target.touch()
                os.utime(target, (mtime, mtime))
        for target, mtime in reversed(dirs_mtime):
            os.utime(target, (mtime, mtime))


def _open_sftp(client: paramiko.SSHClient) -> paramiko.SFTPClient | None:
    try:
        return client.open_sftp()
    except (OSError, paramiko.SSHException, EOFError):
        return None


# --- identity and facts the probes take from the local machine -------------------


def remote_identity(ctx: RemoteProbeContext, role: HostRole = "unknown") -> HostIdentity:
    hostname = (ctx.read_text("/etc/hostname") or "").strip()
    if not hostname:
        hostname = ctx.remote.shell("uname -n", 10).strip() or "unknown"
    machine_id = (ctx.read_text("/etc/machine-id") or "").strip() or None
    return HostIdentity(hostname=hostname, machine_id=machine_id, os_family="linux", role=role)


def adjust_sections(ctx: RemoteProbeContext, sections: dict[str, Section]) -> None:
    """Replace what the probes read from the collector itself (psutil, platform)."""
    from agent.probes.osinfo import kernel_fields

    os_section = sections.get("os")
    if isinstance(os_section, OsSection):
        kernel = ctx.remote.shell("uname -r", 10).strip() or None
        arch = ctx.remote.shell("uname -m", 10).strip() or None
        notes = [n for n in os_section.notes if "kernel" not in n and "boot time" not in n]
        update: dict[str, object] = {
            "kernel": kernel,
            "arch": arch,
            "boot_time": None,
            "uptime_seconds": None,
            "kernel_newest_installed": None,
            "kernel_reboot_pending": None,
        }
        try:
            uptime = float((ctx.read_text("/proc/uptime") or "").split()[0])
            update["uptime_seconds"] = int(uptime)
            update["boot_time"] = datetime.fromtimestamp(time.time() - uptime, UTC)
        except (IndexError, ValueError):
            notes.append("boot time unreadable (/proc/uptime)")
        update.update(kernel_fields(ctx, kernel, notes))
        update["notes"] = notes
        sections["os"] = os_section.model_copy(update=update)

    hardware = sections.get("hardware")
    if isinstance(hardware, HardwareSection) and hardware.status == "ok":
        memory = None
        for line in (ctx.read_text("/proc/meminfo") or "").splitlines():
            if line.startswith("MemTotal:"):
                try:
                    memory = int(line.split()[1]) * 1024
                except (IndexError, ValueError):
                    memory = None
        cpuinfo = ctx.read_text("/proc/cpuinfo") or ""
        logical = sum(1 for line in cpuinfo.splitlines() if line.startswith("processor"))
        notes = [n for n in hardware.notes if "psutil" not in n and "temperature" not in n]
        notes.append(f"disks, temperatures and physical core count {NOT_AGENTLESS}")
        sections["hardware"] = hardware.model_copy(
            update={
                "memory_bytes": memory,
                "cpu_cores_logical": logical or None,
                "cpu_cores_physical": None,
                "disks": [],
                "temperatures": [],
                "notes": notes,
            }
        )


def collect_remote(
    client: paramiko.SSHClient,
    role: HostRole = "unknown",
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    runner_factory: type[RemoteRunner] = RemoteRunner,
) -> Report:
    """Collect a full report from the host at the other end of ``client``."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="posture-agentless-") as tmp:
        staging = Path(tmp) / "root"
        staging.mkdir(mode=0o700)
        ctx = RemoteProbeContext.open(client, staging, command_timeout)
        ctx.runner = runner_factory(client, command_timeout)
        try:
            sections = collect_sections(ctx, timeout=timeout, probes=REMOTE_PROBES)
            adjust_sections(ctx, sections)
            identity = remote_identity(ctx, role)
        finally:
            ctx.close()
    for name in ("hardware", "os", "software"):
        section = sections[name]
        if ctx.stage_notes and section.status == "ok":
            sections[name] = section.model_copy(update={"notes": section.notes + ctx.stage_notes})
    return Report(
        agent_version=f"{__version__}+agentless",
        host=identity,
        collection_seconds=round(time.monotonic() - started, 3),
        **sections,
    )


__all__ = [
    "NOT_AGENTLESS",
    "RemoteProbeContext",
    "RemoteRunner",
    "adjust_sections",
    "collect_remote",
    "remote_identity",
]
