"""Backups: which tools are installed, whether they are scheduled, how fresh the newest is.

Tools (``TOOLS``) are recognised by their binaries under the root.  ``rsync`` is a
general copy tool: it only counts when a schedule runs it.

Schedules, read from files (so an alternate root works too):

* cron: ``/etc/crontab``, ``/etc/cron.d/*``, ``/etc/anacrontab`` (system format, with
  a user field) and ``/var/spool/cron/crontabs/*``, ``/var/spool/cron/*`` (user
  crontabs, read only as root); the scripts of ``/etc/cron.{hourly,daily,weekly,monthly}``.
  Commented lines, variable assignments and ``@reboot`` jobs do not count.
* systemd: every ``*.timer`` of ``/etc/systemd/system`` and every timer enabled in
  one of its ``*.wants`` directories; a timer counts when it is enabled and its
  service (``Unit=`` or the same name) has an ``ExecStart`` naming a backup tool.
* A scheduled command that is a script under the root (``#!``, at most 256 KiB) is
  read one level deep: ``/usr/local/bin/backup.sh`` calling ``restic`` counts.

Freshness, never by guessing credentials:

* rsnapshot: ``snapshot_root`` of ``/etc/rsnapshot.conf``; the newest mtime of its
  ``<interval>.0`` directories (rsnapshot touches ``.0`` at the end of each run).
* restic and borg: only repositories declared in ``/etc/posture-agent/backup.toml``::

      [[restic]]
      repository = "/srv/restic"
      password_file = "/root/.restic-pass"      # or password_command = "…"

      [[borg]]
      repository = "/srv/borg"
      passcommand = "cat /root/.borg-pass"      # optional for unencrypted repos

      [[path]]
      location = "/srv/backups"
      pattern = "*.tar.gz"

  ``restic -r REPO --password-file F --no-lock --no-cache snapshots --json --latest 1``
  (``time`` is RFC 3339) and ``borg list --json --last 1 --bypass-lock REPO`` with
  ``BORG_PASSCOMMAND`` (``archives[].time``/``start`` are local time without zone;
  the same output gives ``encryption.mode``).  Both run read-only (no lock, no
  cache) with a timeout, and only on a live host.  Commands run with a fixed
  environment: repositories needing cloud credentials in the environment are
  not supported.  Without a ``passcommand`` borg gets ``BORG_PASSCOMMAND=false``
  so that an encrypted repository fails at once instead of prompting on a tty.
  Borg still records the repository in its security directory under the agent
  user's home (``~/.config/borg/security``), as any borg client does.
* ``[[path]]``: the newest mtime of the files matching ``pattern`` below
  ``location`` (recursively, at most ``MAX_WALK_ENTRIES`` entries).

``newest_backup_at`` is the newest time over all evidence.  ``encrypted`` is True
for restic (always encrypted), from borg's ``encryption.mode``, True for a
``[[path]]`` whose newest file ends in ``.gpg``/``.age``/``.enc`` (else unknown),
and False for rsnapshot (plain copies).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from agent.probes import unknown
from agent.probes.base import CommandResult, CommandTimeout, ProbeContext, ToolMissing
from agent.probes.patches import local_timezone
from agent.report import BackupEvidence, BackupSection

AGENT_CONFIG = "/etc/posture-agent/backup.toml"
RSNAPSHOT_CONF = "/etc/rsnapshot.conf"
BIN_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin")
SYSTEM_CRONTABS = ("/etc/crontab", "/etc/anacrontab")
SYSTEM_CRON_DIR = "/etc/cron.d"
CRON_SCRIPT_DIRS = tuple(f"/etc/cron.{p}" for p in ("hourly", "daily", "weekly", "monthly"))
USER_CRON_DIRS = ("/var/spool/cron/crontabs", "/var/spool/cron")
SYSTEMD_ETC = "/etc/systemd/system"
SYSTEMD_UNIT_DIRS = (
    SYSTEMD_ETC,
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
COMMAND_TIMEOUT = 12.0
MAX_WALK_ENTRIES = 10_000
MAX_SCRIPT_BYTES = 256 * 1024
ENCRYPTED_SUFFIXES = (".gpg", ".age", ".enc")
# cron and run-parts skip package-manager leftovers and editor backups.
_IGNORED_SUFFIXES = (".dpkg-old", ".dpkg-dist", ".dpkg-new", ".rpmsave", ".rpmnew", "~", ".swp")
_IGNORED_NAMES = frozenset({".placeholder", "README"})


@dataclass(frozen=True)
class BackupTool:
    name: str
    binaries: tuple[str, ...]
    commands: tuple[str, ...] = ()
    """Command words that run the tool in a schedule (wrappers included)."""
    schedule_only: bool = False


TOOLS: tuple[BackupTool, ...] = (
    BackupTool("restic", ("restic",), ("restic", "resticprofile", "autorestic")),
    BackupTool("borg", ("borg", "borgbackup"), ("borg", "borgbackup", "borgmatic")),
    BackupTool("rsnapshot", ("rsnapshot",), ("rsnapshot",)),
    BackupTool("duplicity", ("duplicity",), ("duplicity", "duply")),
    # File daemons: their jobs are scheduled by the Director, on another machine.
    BackupTool("bacula-fd", ("bacula-fd",)),
    BackupTool("bareos-fd", ("bareos-fd",)),
    BackupTool("veeam", ("veeamconfig", "veeamservice"), ("veeamconfig",)),
    BackupTool("timeshift", ("timeshift",), ("timeshift",)),
    BackupTool("rdiff-backup", ("rdiff-backup",), ("rdiff-backup",)),
    BackupTool("rsync", ("rsync",), ("rsync",), schedule_only=True),
)
TOOL_NAMES = tuple(t.name for t in TOOLS)

_ENV_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")
_WORD = {
    t.name: re.compile(
        r"(?<![\w.@-])(?:[\w./-]*/)?(?:" + "|".join(map(re.escape, t.commands)) + r")(?![\w.-])"
    )
    for t in TOOLS
    if t.commands
}
_FRACTION = re.compile(r"(\.\d{6})\d+")


# --- schedules --------------------------------------------------------------------


def tools_in(text: str) -> set[str]:
    """Backup tools a command line or script text runs."""
    return {name for name, word in _WORD.items() if word.search(text)}


def _cron_command(line: str, user_field: bool) -> str | None:
    """The command of one crontab line, None for comments, variables and @reboot."""
    line = line.strip()
    if not line or line.startswith("#") or _ENV_LINE.match(line):
        return None
    fields = line.split()
    if fields[0].startswith("@"):
        if fields[0] == "@reboot":
            return None
        skip = 1
    else:
        skip = 5
    skip += 1 if user_field else 0
    return " ".join(fields[skip:]) or None


def _anacron_command(line: str) -> str | None:
    line = line.strip()
    if not line or line.startswith("#") or _ENV_LINE.match(line):
        return None
    fields = line.split()  # period delay job-identifier command
    return " ".join(fields[3:]) or None


def cron_commands(text: str, user_field: bool = True) -> list[str]:
    """Commands of a crontab (system format with a user field, or a user crontab)."""
    return [c for c in (_cron_command(line, user_field) for line in text.splitlines()) if c]


def script_lines(text: str) -> str:
    """A shell script without its comment lines."""
    return "\n".join(
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as section -> key -> values (repeated keys kept in order)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line and current is not None:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


@dataclass
class Schedules:
    found: dict[str, list[str]] = field(default_factory=dict)
    """tool -> where it is scheduled."""
    complete: bool = True
    """Every schedule source could be read (so 'not found' means not scheduled)."""
    notes: list[str] = field(default_factory=list)

    def add(self, tools: Iterable[str], where: str) -> None:
        for tool in tools:
            places = self.found.setdefault(tool, [])
            if where not in places:
                places.append(where)

    def state(self, tool: str) -> bool | None:
        if tool in self.found:
            return True
        return False if self.complete else None


def _listdir(path: Path) -> list[Path] | None:
    try:
        return sorted((p for p in path.iterdir() if p.is_file()), key=lambda p: p.name)
    except OSError:
        return None


def _wanted(path: Path) -> bool:
    return path.name not in _IGNORED_NAMES and not path.name.endswith(_IGNORED_SUFFIXES)


def _host_path(ctx: ProbeContext, path: Path) -> str:
    return "/" + str(path.relative_to(ctx.root)).lstrip("/")


def _read(path: Path, limit: int = MAX_SCRIPT_BYTES) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except (OSError, ValueError):
        return None


def _followed(ctx: ProbeContext, command: str) -> set[str]:
    """Tools run by a command, reading a script it starts one level deep."""
    tools = tools_in(command)
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    for word in words[:3]:  # "/usr/local/bin/backup.sh", "sh /usr/local/bin/backup.sh"
        if not word.startswith("/"):
            continue
        path = ctx.path(word)
        try:
            if not path.is_file() or path.stat().st_size > MAX_SCRIPT_BYTES:
                continue
        except OSError:
            continue
        text = _read(path)
        if text is not None and text.startswith("#!"):
            tools |= tools_in(script_lines(text))
    return tools


def find_schedules(ctx: ProbeContext) -> Schedules:
    sched = Schedules()
    for crontab in SYSTEM_CRONTABS:
        text = ctx.read_text(crontab)
        if text is None:
            continue
        commands = (
            [c for c in map(_anacron_command, text.splitlines()) if c]
            if crontab.endswith("anacrontab")
            else cron_commands(text)
        )
        for command in commands:
            sched.add(_followed(ctx, command), crontab)
    for path in _listdir(ctx.path(SYSTEM_CRON_DIR)) or []:
        if _wanted(path) and (text := _read(path)) is not None:
            for command in cron_commands(text):
                sched.add(_followed(ctx, command), _host_path(ctx, path))
    for folder in CRON_SCRIPT_DIRS:
        for path in _listdir(ctx.path(folder)) or []:
            if _wanted(path) and (text := _read(path)) is not None:
                body = script_lines(text)
                tools = tools_in(body)
                for line in body.splitlines():
                    tools |= _followed(ctx, line.strip())
                sched.add(tools, _host_path(ctx, path))
    for folder in USER_CRON_DIRS:
        base = ctx.path(folder)
        if not base.is_dir():
            continue
        if not ctx.is_root:  # 1730 root:crontab on Debian, 0700 on RHEL
            sched.complete = False
            sched.notes.append(f"not root: user crontabs in {folder} not read")
            break
        files = _listdir(base)
        if files is None:
            sched.complete = False
            sched.notes.append(f"{folder} not readable (needs root): user crontabs not read")
            continue
        for path in files:
            text = _read(path)
            if text is None:
                sched.complete = False
                sched.notes.append(f"{_host_path(ctx, path)} not readable")
                continue
            for command in cron_commands(text, user_field=False):
                sched.add(_followed(ctx, command), _host_path(ctx, path))
    _systemd_timers(ctx, sched)
    return sched


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _unit_file(ctx: ProbeContext, name: str) -> Path | None:
    for folder in SYSTEMD_UNIT_DIRS:
        path = ctx.path(f"{folder}/{name}")
        if _exists(path):
            return path
    return None


def _systemd_timers(ctx: ProbeContext, sched: Schedules) -> None:
    etc = ctx.path(SYSTEMD_ETC)
    enabled: set[str] = set()
    timers: set[str] = set()
    try:
        for entry in etc.iterdir():
            if entry.name.endswith(".timer"):
                timers.add(entry.name)
            elif entry.name.endswith(".wants") and entry.is_dir():
                for link in entry.iterdir():
                    if link.name.endswith(".timer"):
                        enabled.add(link.name)
                        timers.add(link.name)
    except OSError:
        return
    for timer in sorted(timers):
        unit_path = _unit_file(ctx, timer)
        if unit_path is None:
            continue
        text = _read(unit_path) or ""
        service = (parse_unit(text).get("Timer", {}).get("Unit") or [None])[-1]
        service = service or timer.removesuffix(".timer") + ".service"
        service_path = _unit_file(ctx, service)
        if service_path is None:
            continue
        exec_lines = parse_unit(_read(service_path) or "").get("Service", {})
        tools: set[str] = set()
        for key, values in exec_lines.items():
            if key.startswith("ExecStart"):
                for value in values:
                    tools |= _followed(ctx, value.lstrip("@-:+!"))
        if not tools:
            continue
        if timer not in enabled:
            sched.notes.append(f"{timer} runs {', '.join(sorted(tools))} but is not enabled")
            continue
        sched.add(tools, f"{timer} ({service})")


# --- freshness --------------------------------------------------------------------


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds (restic) to an aware datetime.  Raises ValueError."""
    value = _FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"no time zone in {text!r}")
    return parsed


def parse_restic_snapshots(json_text: str) -> datetime | None:
    """Newest ``time`` of ``restic snapshots --json`` output; None for an empty repository."""
    data = json.loads(json_text or "null")
    if not isinstance(data, list):
        raise ValueError("not a 'restic snapshots --json' document")
    times = [parse_rfc3339(s["time"]) for s in data if isinstance(s, dict) and s.get("time")]
    return max(times, default=None)


def parse_borg_list(json_text: str, tz: tzinfo) -> tuple[datetime | None, bool | None]:
    """(newest archive time, encrypted) of ``borg list --json`` output.

    Borg 1.x prints archive times as local time without a zone: ``tz`` is the host's.
    """
    data = json.loads(json_text)
    archives = data.get("archives") if isinstance(data, dict) else None
    if not isinstance(archives, list):
        raise ValueError("not a 'borg list --json' document")
    times: list[datetime] = []
    for archive in archives:
        if not isinstance(archive, dict):
            continue
        raw = archive.get("time") or archive.get("start")
        if raw:
            parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", str(raw)))
            times.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=tz))
    mode = (data.get("encryption") or {}).get("mode") if isinstance(data, dict) else None
    encrypted = None if not mode else not (mode == "none" or mode.startswith("authenticated"))
    return max(times, default=None), encrypted


def parse_rsnapshot_root(text: str) -> str | None:
    """``snapshot_root`` of an rsnapshot configuration (fields are tab-separated)."""
    root: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        fields = [f for f in line.split("\t") if f]
        if len(fields) >= 2 and fields[0] == "snapshot_root":
            root = fields[1].strip()
    return root


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def newest_file(location: Path, pattern: str, limit: int = MAX_WALK_ENTRIES) -> tuple[
    Path | None, datetime | None, bool
]:
    """(newest matching file, its mtime, walk truncated) below ``location``."""
    newest: tuple[Path | None, datetime | None] = (None, None)
    seen = 0
    truncated = False
    stack = [location]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > limit:
                truncated = True
                stack.clear()
                break
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file() and fnmatch.fnmatch(entry.name, pattern):
                    when = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                    if newest[1] is None or when > newest[1]:
                        newest = (Path(entry.path), when)
            except OSError:
                continue
    return newest[0], newest[1], truncated


@dataclass
class _Found:
    ctx: ProbeContext
    schedules: Schedules
    installed: set[str]
    evidence: list[BackupEvidence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, tool: str, **fields: Any) -> None:
        fields.setdefault("scheduled", self.schedules.state(tool))
        self.evidence.append(BackupEvidence(tool=tool, **fields))


def _rsnapshot(found: _Found) -> None:
    ctx = found.ctx
    conf = ctx.read_text(RSNAPSHOT_CONF)
    if conf is None:
        found.add("rsnapshot", location=None, detail=f"{RSNAPSHOT_CONF} not readable")
        return
    root = parse_rsnapshot_root(conf)
    if not root:
        found.add("rsnapshot", detail=f"no snapshot_root in {RSNAPSHOT_CONF}")
        return
    base = ctx.path(root)
    try:
        snapshots = [p for p in base.iterdir() if p.name.endswith(".0") and p.is_dir()]
    except FileNotFoundError:
        found.add("rsnapshot", location=root, encrypted=False, detail=f"{root} does not exist")
        return
    except OSError:
        found.add("rsnapshot", location=root, encrypted=False, detail=f"{root} not readable")
        return
    dated = [(when, p.name) for p in snapshots if (when := _mtime(p)) is not None]
    if not dated:
        found.add("rsnapshot", location=root, encrypted=False, detail="no <interval>.0 snapshot")
        return
    when, name = max(dated)
    found.add(
        "rsnapshot", location=root, newest_at=when, encrypted=False, detail=f"newest: {name}"
    )


def _command_error(result: CommandResult) -> str:
    lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
    return f"exit {result.returncode}: {lines[-1] if lines else 'no output'}"


def _run(found: _Found, tool: str, repo: str, argv: list[str]) -> CommandResult | None:
    try:
        return found.ctx.runner.run(argv, timeout=COMMAND_TIMEOUT)
    except ToolMissing:
        found.add(tool, location=repo, detail=f"{argv[0]} is not installed")
    except CommandTimeout as exc:
        found.add(tool, location=repo, detail=str(exc))
        found.notes.append(f"{tool} {repo}: {exc}")
    return None


def _readable(ctx: ProbeContext, absolute: str) -> bool:
    path = ctx.path(absolute)
    return path.is_file() and os.access(path, os.R_OK)


def _restic(found: _Found, entry: dict[str, Any]) -> None:
    ctx = found.ctx
    repo = str(entry.get("repository") or "")
    if not repo:
        found.notes.append(f"{AGENT_CONFIG}: a [[restic]] entry has no repository")
        return
    if "restic" not in found.installed:
        found.add("restic", location=repo, encrypted=True, detail="restic is not installed")
        return
    if not ctx.live:
        found.add("restic", location=repo, encrypted=True, detail="not queried (not a live host)")
        return
    if entry.get("password_file"):
        secret = str(entry["password_file"])
        if not _readable(ctx, secret):
            found.add(
                "restic", location=repo, encrypted=True,
                detail=f"password file {secret} missing or not readable",
            )
            return
        credentials = ["--password-file", secret]
    elif entry.get("password_command"):
        credentials = ["--password-command", str(entry["password_command"])]
    else:
        found.add(
            "restic", location=repo, encrypted=True,
            detail="no password_file or password_command configured: not queried",
        )
        return
    argv = ["restic", "-r", repo, *credentials, "--no-lock", "--no-cache",
            "snapshots", "--json", "--latest", "1"]  # fmt: skip
    result = _run(found, "restic", repo, argv)
    if result is None:
        return
    if not result.ok:
        found.add("restic", location=repo, encrypted=True, detail=_command_error(result))
        return
    try:
        newest = parse_restic_snapshots(result.stdout)
    except (ValueError, KeyError, TypeError) as exc:
        found.add("restic", location=repo, encrypted=True, detail=f"output not understood: {exc}")
        return
    detail = "latest snapshot" if newest else "the repository has no snapshot"
    found.add("restic", location=repo, newest_at=newest, encrypted=True, detail=detail)


def _borg(found: _Found, entry: dict[str, Any], tz: tzinfo) -> None:
    ctx = found.ctx
    repo = str(entry.get("repository") or "")
    if not repo:
        found.notes.append(f"{AGENT_CONFIG}: a [[borg]] entry has no repository")
        return
    if "borg" not in found.installed:
        found.add("borg", location=repo, detail="borg is not installed")
        return
    if not ctx.live:
        found.add("borg", location=repo, detail="not queried (not a live host)")
        return
    passcommand = str(entry.get("passcommand") or "false")
    argv = [
        "env",
        f"BORG_PASSCOMMAND={passcommand}",
        # The repository was declared by the administrator: no interactive questions.
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes",
        "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes",
        "borg", "list", "--json", "--last", "1", "--bypass-lock", repo,
    ]  # fmt: skip
    result = _run(found, "borg", repo, argv)
    if result is None:
        return
    if result.returncode not in (0, 1):  # 1 is a borg warning, the output is still valid
        found.add("borg", location=repo, detail=_command_error(result))
        return
    try:
        newest, encrypted = parse_borg_list(result.stdout, tz)
    except (ValueError, TypeError, AttributeError) as exc:
        found.add("borg", location=repo, detail=f"output not understood: {exc}")
        return
    detail = "latest archive" if newest else "the repository has no archive"
    found.add("borg", location=repo, newest_at=newest, encrypted=encrypted, detail=detail)


def _path(found: _Found, entry: dict[str, Any]) -> None:
    location = str(entry.get("location") or "")
    pattern = str(entry.get("pattern") or "*")
    if not location:
        found.notes.append(f"{AGENT_CONFIG}: a [[path]] entry has no location")
        return
    base = found.ctx.path(location)
    if not base.is_dir():
        found.add("path", location=location, scheduled=None, detail="location not found")
        return
    newest, when, truncated = newest_file(base, pattern)
    detail = f"newest {pattern}: {newest.name}" if newest else f"no file matches {pattern}"
    if truncated:
        detail += f" (walk stopped after {MAX_WALK_ENTRIES} entries)"
    encrypted = True if newest and newest.name.endswith(ENCRYPTED_SUFFIXES) else None
    found.add(
        "path", location=location, newest_at=when, scheduled=None, encrypted=encrypted,
        detail=detail,
    )


def load_agent_config(text: str) -> dict[str, list[dict[str, Any]]]:
    """The ``[[restic]]``, ``[[borg]]`` and ``[[path]]`` tables of backup.toml.

    Raises ValueError (``tomllib.TOMLDecodeError`` is one).
    """
    data = tomllib.loads(text)
    config: dict[str, list[dict[str, Any]]] = {}
    for kind in ("restic", "borg", "path"):
        entries = data.get(kind, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError(f"'{kind}' must be an array of tables ([[{kind}]])")
        config[kind] = entries
    return config


def installed_tools(ctx: ProbeContext) -> set[str]:
    found: set[str] = set()
    for tool in TOOLS:
        for binary in tool.binaries:
            if any(_exists(ctx.path(f"{d}/{binary}")) for d in BIN_DIRS):
                found.add(tool.name)
                break
    return found


def _iter_config(found: _Found) -> Iterator[tuple[str, dict[str, Any]]]:
    text = found.ctx.read_text(AGENT_CONFIG)
    if text is None:
        if found.ctx.exists(AGENT_CONFIG):
            found.notes.append(f"{AGENT_CONFIG} not readable")
        return
    try:
        config = load_agent_config(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        found.notes.append(f"{AGENT_CONFIG} not understood: {exc}")
        return
    for kind, entries in config.items():
        for entry in entries:
            yield kind, entry


def probe(ctx: ProbeContext) -> BackupSection:
    if not ctx.live and not ctx.path("/etc").is_dir():
        return unknown(BackupSection, "the alternate root has no /etc to read")
    schedules = find_schedules(ctx)
    present = installed_tools(ctx)
    by_name = {t.name: t for t in TOOLS}
    installed = {
        name for name in present
        if not by_name[name].schedule_only or name in schedules.found
    }  # fmt: skip
    found = _Found(ctx=ctx, schedules=schedules, installed=installed, notes=list(schedules.notes))
    if not ctx.live:
        found.notes.append("alternate root: restic/borg repositories were not queried")

    if "rsnapshot" in installed or "rsnapshot" in schedules.found:
        _rsnapshot(found)
    tz: tzinfo | None = None
    for kind, entry in _iter_config(found):
        if kind == "restic":
            _restic(found, entry)
        elif kind == "borg":
            if tz is None:
                tz, tz_note = local_timezone(ctx)
                if tz_note:
                    found.notes.append(tz_note)
            _borg(found, entry, tz)
        else:
            _path(found, entry)

    # Scheduled tools with no freshness source: the schedule is the only evidence.
    covered = {e.tool for e in found.evidence}
    for tool in TOOL_NAMES:
        if tool in schedules.found and tool not in covered:
            where = ", ".join(schedules.found[tool])
            found.add(
                tool,
                location=where,
                scheduled=True,
                detail=f"scheduled in {where}; the time of the last run is not readable",
            )
    dates = [e.newest_at for e in found.evidence if e.newest_at is not None]
    return BackupSection(
        tools_installed=[t for t in TOOL_NAMES if t in installed],
        evidence=found.evidence,
        newest_backup_at=max(dates, default=None),
        notes=found.notes,
    )
