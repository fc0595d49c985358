"""Patch level: pending updates, last upgrade, list refresh, automatic updates, reboot flag.

Supported package managers, chosen by what is installed under the root:

* **apt** (``/usr/bin/dpkg`` + ``/usr/bin/apt-get``).  Pending updates come from
  ``apt-get -s -o Debug::NoLocking=1 dist-upgrade`` (a simulation: no root, no
  lock, no network; it reflects the package lists as last refreshed).
  ``dist-upgrade`` rather than ``upgrade`` because ``upgrade`` keeps back
  updates that pull in new packages (e.g. Ubuntu kernel ABI bumps), which would
  hide real pending updates; ``upgrade`` is the fallback when ``dist-upgrade``
  fails.  An update is *security* when one of its origins is a ``*-security``
  suite (``Debian-Security:12/bookworm-security``, ``Ubuntu:22.04/jammy-security``).
  The last upgrade time is the newest ``Start-Date:`` of a
  ``/var/log/apt/history.log*`` entry that installed or upgraded something and
  did not record an ``Error:``; apt writes it in local time.
* **dnf / yum** (``/usr/bin/rpm`` + ``dnf`` or ``yum``).  ``check-update`` exits
  100 when updates exist, 0 when none and 1 on error; ``updateinfo list
  --security`` marks the security ones.  Both run with ``-C`` (metadata cache
  only), like apt's simulation: the agent never reaches the network itself.
  ``needs-restarting -r`` exits 1 when a reboot is needed.
* **zypper** (``/usr/bin/rpm`` + ``/usr/bin/zypper``).  ``--xmlout
  list-updates`` and ``list-patches --category security`` with
  ``--no-refresh``; ``/run/reboot-needed`` (zypp-boot-plugin) for the reboot.

When ``ctx.live`` is False (auditing a mounted root) only file-based facts are
reported; pending counts stay None with a note, since they need the host's own
package manager.  A failing or missing pending-update command makes the
section ``unknown`` (the core fact could not be observed) while the file-based
facts that were observed are still filled in.
"""

from __future__ import annotations

import configparser
import contextlib
import gzip
import os
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.probes import unknown
from agent.probes.base import CommandResult, CommandTimeout, ProbeContext, ToolMissing
from agent.report import PatchesSection, PendingUpdate

APT_SIMULATION_TIMEOUT = 30.0
# What an apt upgrade simulation depends on: installed packages, package lists,
# sources and pinning.  While none of them changes, its answer cannot change.
APT_SIMULATION_INPUTS = (
    "/var/lib/dpkg/status",
    "/var/lib/apt/lists",
    "/etc/apt/sources.list",
    "/etc/apt/sources.list.d",
    "/etc/apt/preferences.d",
    "/etc/apt/apt.conf.d",
)
RPM_QUERY_TIMEOUT = 30.0
REBOOT_CHECK_TIMEOUT = 15.0

APT_HISTORY_FILES = (
    "/var/log/apt/history.log",
    "/var/log/apt/history.log.1",
    "/var/log/apt/history.log.1.gz",
    "/var/log/apt/history.log.2.gz",
)
APT_CONF_DIR = "/etc/apt/apt.conf.d"
APT_CONF_MAIN = "/etc/apt/apt.conf"
APT_REFRESH_STAMPS = (
    "/var/lib/apt/periodic/update-success-stamp",  # update-notifier (Ubuntu), on success only
    "/var/lib/apt/periodic/update-stamp",  # apt.systemd.daily
)
APT_LISTS_DIR = "/var/lib/apt/lists"
# Files apt itself skips in apt.conf.d (Dir::Ignore-Files-Silently defaults).
_APT_IGNORED_CONF = re.compile(
    r"(~|\.disabled|\.bak|\.dpkg-[a-z]+|\.ucf-[a-z]+|\.save|\.orig|\.distUpgrade)$"
)

DNF_AUTOMATIC_CONFS = (
    "/etc/dnf/automatic.conf",
    "/etc/dnf/dnf5-plugins/automatic.conf",
)
YUM_CRON_CONF = "/etc/yum/yum-cron.conf"
DNF_HISTORY_DBS = (
    "/var/lib/dnf/history.sqlite",
    "/usr/lib/sysimage/libdnf5/transaction_history.sqlite",
)
DNF_CACHE_DIRS = ("/var/cache/dnf", "/var/cache/libdnf5", "/var/cache/yum")
ZYPP_HISTORY = "/var/log/zypp/history"
ZYPP_AUTO_UPDATE_CONF = "/etc/sysconfig/automatic_online_update"

RPM_ARCHES = frozenset(
    {
        "x86_64", "noarch", "i686", "i586", "i386", "aarch64", "ppc64le", "ppc64",
        "s390x", "armv7hl", "riscv64", "src",
    }
)  # fmt: skip


# --- pure parsers -------------------------------------------------------------

# Inst <name> [<current>] (<new> <origin>[, <origin>...] [<arch>]) [...]
_APT_INST = re.compile(
    r"^Inst\s+(?P<name>\S+)"
    r"(?:\s+\[(?P<cur>[^\]]*)\])?"
    r"\s+\((?P<new>\S+)(?P<origins>.*?)\s*(?:\[(?P<arch>[^\]]+)\])?\)"
)


def _is_security_origin(origin: str) -> bool:
    return "-security" in origin.lower() or "debian-security" in origin.lower()


def parse_apt_simulation(text: str) -> list[PendingUpdate]:
    """``Inst`` lines of ``apt-get -s upgrade|dist-upgrade``, upgrades and new installs alike.

    A newly installed dependency has no ``[current]`` version
    (``current_version`` None).
    """
    updates: list[PendingUpdate] = []
    for line in text.splitlines():
        m = _APT_INST.match(line)
        if not m:
            continue
        origins = [o.strip() for o in m.group("origins").split(",") if o.strip()]
        updates.append(
            PendingUpdate(
                name=m.group("name"),
                current_version=m.group("cur") or None,
                new_version=m.group("new"),
                security=any(_is_security_origin(o) for o in origins),
                origin=", ".join(origins) or None,
            )
        )
    return updates


_APT_HISTORY_DATE = re.compile(r"^Start-Date:\s*(\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2})\s*$")


def parse_apt_history(text: str, tz: tzinfo) -> datetime | None:
    """Newest ``Start-Date`` of an entry that installed or upgraded packages without error.

    apt writes local wall-clock time (``2026-11-20  10:01:02``); ``tz`` is the
    host's zone.  The result is timezone-aware.
    """
    newest: datetime | None = None
    start: datetime | None = None
    changed = failed = False

    def close() -> None:
        nonlocal newest
        if start is not None and changed and not failed and (newest is None or start > newest):
            newest = start

    for line in text.splitlines():
        m = _APT_HISTORY_DATE.match(line)
        if m:
            close()
            try:
                start = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}").replace(tzinfo=tz)
            except ValueError:
                start = None
            changed = failed = False
        elif line.startswith(("Install:", "Upgrade:")):
            changed = True
        elif line.startswith("Error:"):
            failed = True
    close()
    return newest


def _apt_value_enabled(value: str | None) -> bool:
    """APT::Periodic values are intervals in days ("1", "7") or "always"; "0" is off."""
    if value is None:
        return False
    value = value.strip().lower()
    if value == "always":
        return True
    try:
        return float(value) > 0
    except ValueError:
        return False


def _strip_apt_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):  # '#clear', '#include' directives and comments
            continue
        # '//' starts a comment unless it is inside a quoted value (URLs).
        in_quote = False
        for i, ch in enumerate(line):
            if ch == '"':
                in_quote = not in_quote
            elif ch == "/" and not in_quote and line[i : i + 2] == "//":
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


_APT_TOKEN = re.compile(r'"(?P<q>[^"]*)"|(?P<w>[^\s{};"]+)|(?P<p>[{};])')


def parse_apt_config(text: str) -> dict[str, str]:
    """Scalar options of an apt.conf fragment, flat (``A::B "v";``) or nested (``A { B "v"; };``).

    Keys are lower-cased (apt option names are case-insensitive).  List values
    (``A { "x"; "y"; };``) are not needed here and are ignored.
    """
    options: dict[str, str] = {}
    scope: list[str] = []
    pending: list[str] = []  # words of the statement being read
    for m in _APT_TOKEN.finditer(_strip_apt_comments(text)):
        if m.group("p") == "{":
            if pending:
                scope.append(pending[0])
            else:
                scope.append("")
            pending = []
        elif m.group("p") == "}":
            if scope:
                scope.pop()
            pending = []
        elif m.group("p") == ";":
            if len(pending) >= 2:
                key = "::".join([*(s for s in scope if s), pending[0]]).lower()
                options[key] = pending[1]
            pending = []
        else:
            pending.append(m.group("q") if m.group("q") is not None else m.group("w"))
    return options


def parse_dnf_check_update(text: str) -> list[PendingUpdate]:
    """Rows ``name.arch  version  repo`` of ``dnf|yum -q check-update`` (or dnf5 ``check-upgrade``).

    Stops at the ``Obsoleting Packages`` block; joins rows that dnf wraps when
    the package name is too long for its column.
    """
    updates: list[PendingUpdate] = []
    carry: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            carry = []
            continue
        if line.lower().startswith("obsoleting packages"):
            break
        if line.lower().startswith(("last metadata expiration", "security:", "loaded plugins")):
            continue
        tokens = carry + line.split()
        carry = []
        if len(tokens) < 3:
            carry = tokens  # a wrapped row continues on the next line
            continue
        name_arch, version, repo = tokens[0], tokens[1], tokens[2]
        name, _, arch = name_arch.rpartition(".")
        if not name or arch not in RPM_ARCHES:
            continue
        updates.append(PendingUpdate(name=name, new_version=version, origin=repo))
    return updates


_NEVRA = re.compile(r"^(?P<name>.+)-(?P<ver>[^-]+)-(?P<rel>[^-]+)\.(?P<arch>[^.]+)$")


def parse_dnf_updateinfo(text: str) -> set[str]:
    """Package names listed by ``dnf|yum -q updateinfo list --security``.

    dnf4 rows are ``ADVISORY  Severity/Sec.  name-version-release.arch``; dnf5
    adds columns, so the package is taken as the token that parses as a NEVRA.
    """
    names: set[str] = set()
    for line in text.splitlines():
        for token in reversed(line.split()):
            m = _NEVRA.match(token)
            if m and m.group("arch") in RPM_ARCHES:
                names.add(m.group("name"))  # an epoch stays in the version part
                break
    return names


def _xml_root(text: str) -> ET.Element:
    # zypper may print non-XML noise before the declaration.
    start = text.find("<?xml")
    if start < 0:
        start = text.find("<stream")
    return ET.fromstring(text[max(start, 0) :])


def parse_zypper_updates(text: str) -> list[PendingUpdate]:
    """``<update kind="package">`` entries of ``zypper --xmlout list-updates``.

    Raises ``xml.etree.ElementTree.ParseError`` on malformed output.
    """
    updates: list[PendingUpdate] = []
    for upd in _xml_root(text).iter("update"):
        if upd.get("kind", "package") != "package" or not upd.get("name"):
            continue
        source = upd.find("source")
        updates.append(
            PendingUpdate(
                name=upd.get("name", ""),
                current_version=upd.get("edition-old"),
                new_version=upd.get("edition"),
                origin=source.get("alias") if source is not None else None,
            )
        )
    return updates


def parse_zypper_security_patches(text: str) -> list[str]:
    """Names of needed security patches in ``zypper --xmlout list-patches`` output."""
    names: list[str] = []
    for upd in _xml_root(text).iter("update"):
        if upd.get("kind", "patch") != "patch":
            continue
        if upd.get("category", "").lower() != "security":
            continue
        if upd.get("status", "needed").lower() not in ("needed", "unwanted"):
            continue
        names.append(upd.get("name", ""))
    return names


# Action names are space-padded to a fixed width ("patch  ", "remove ").
_ZYPP_HISTORY_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})\|(install|patch) *\|")


def parse_zypp_history(text: str, tz: tzinfo) -> datetime | None:
    """Newest install/patch action in ``/var/log/zypp/history`` (local time)."""
    newest: datetime | None = None
    for line in text.splitlines():
        m = _ZYPP_HISTORY_LINE.match(line)
        if not m:
            continue
        try:
            when = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}").replace(tzinfo=tz)
        except ValueError:
            continue
        if newest is None or when > newest:
            newest = when
    return newest


def parse_dnf_automatic(text: str) -> bool | None:
    """``[commands] apply_updates`` of dnf-automatic / yum-cron; None if not set."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    if not parser.has_option("commands", "apply_updates"):
        return None
    return parser.get("commands", "apply_updates").strip().lower() in ("yes", "true", "1", "on")


# --- helpers ------------------------------------------------------------------


def local_timezone(ctx: ProbeContext) -> tuple[tzinfo, str | None]:
    """The probed root's local zone (from its /etc/localtime), and a note if it was guessed."""
    localtime = ctx.path("/etc/localtime")
    try:
        target = os.readlink(localtime)
    except OSError:
        target = None
    if target is not None:
        resolved = ctx.path(target) if target.startswith("/") else localtime.parent / target
        try:
            with open(resolved, "rb") as fh:
                return ZoneInfo.from_file(fh, key=_zone_key(target)), None
        except (OSError, ValueError):
            pass
    try:
        with open(localtime, "rb") as fh:
            return ZoneInfo.from_file(fh), None
    except (OSError, ValueError):
        pass
    name = (ctx.read_text("/etc/timezone") or "").strip()
    if name:
        try:
            return ZoneInfo(name), None
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if ctx.root == Path("/"):
        return datetime.now().astimezone().tzinfo or UTC, None
    return UTC, "local time zone of the root not found; local timestamps read as UTC"


def _zone_key(target: str) -> str | None:
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def _read_maybe_gz(ctx: ProbeContext, absolute: str) -> str | None:
    if not absolute.endswith(".gz"):
        return ctx.read_text(absolute)
    try:
        with gzip.open(ctx.path(absolute), "rt", encoding="utf-8", errors="replace") as fh:
            return fh.read(16 * 1024 * 1024)
    except (OSError, EOFError, ValueError):
        return None


def _unreadable_note(ctx: ProbeContext, absolute: str) -> str:
    hint = " (agent is not running as root)" if not ctx.is_root else ""
    return f"{absolute} exists but is not readable{hint}"


def _reboot_flag(ctx: ProbeContext, names: Iterable[str], notes: list[str]) -> bool | None:
    """A reboot flag file in /run.  An offline root carries no /run state: None then."""
    for name in names:
        for base in ("/run", "/var/run"):
            if base == "/var/run" and ctx.path(base).is_symlink():
                continue  # /var/run -> /run, already checked (and must not escape the root)
            if ctx.exists(f"{base}/{name}"):
                return True
    if not ctx.live:
        notes.append("reboot flag lives in /run, which an offline root does not carry")
        return None
    return False


def _run(
    ctx: ProbeContext, argv: list[str], timeout: float, inputs: tuple[str, ...] = ()
) -> tuple[CommandResult | None, str | None]:
    """Run a command; return (result, None) or (None, reason it could not run).

    With ``inputs``, an unchanged result of the previous run may be reused
    (``ProbeContext.cached_run``).
    """
    try:
        if inputs:
            return ctx.cached_run(argv, timeout, inputs), None
        return ctx.runner.run(argv, timeout=timeout), None
    except (ToolMissing, CommandTimeout) as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"'{argv[0]}' could not be run: {exc}"


def _first_line(text: str) -> str:
    """The first error line ("E: ..." for apt, "Error: ..." for dnf), else the first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "Error"))]
    return (errors or lines or [""])[0][:200]


def _failure(argv: list[str], result: CommandResult) -> str:
    detail = _first_line(result.stderr) or _first_line(result.stdout)
    msg = f"'{' '.join(argv)}' exited with status {result.returncode}"
    return f"{msg}: {detail}" if detail else msg


@dataclass
class _Facts:
    """What a manager-specific collector found; turned into the section at the end."""

    manager: str
    pending: list[PendingUpdate] | None = None
    security_count: int | None = None
    failure: str | None = None  # the pending-update query itself failed
    last_update_at: datetime | None = None
    last_refresh_at: datetime | None = None
    auto_updates: bool | None = None
    reboot_required: bool | None = None
    notes: list[str] = field(default_factory=list)

    def section(self) -> PatchesSection:
        pending = self.pending or []
        fields: dict[str, object] = {
            "manager": self.manager,
            "pending": pending,
            "pending_count": len(pending) if self.pending is not None else None,
            "security_pending_count": self.security_count,
            "last_update_at": self.last_update_at,
            "last_refresh_at": self.last_refresh_at,
            "auto_updates": self.auto_updates,
            "reboot_required": self.reboot_required,
            "notes": self.notes,
        }
        if self.failure is not None:
            fields["pending_count"] = None
            fields["security_pending_count"] = None
            return unknown(PatchesSection, self.failure, **fields)
        return PatchesSection(**fields)  # type: ignore[arg-type]


# --- apt ----------------------------------------------------------------------


def _apt_config(ctx: ProbeContext) -> dict[str, str]:
    """Merged options from apt.conf.d (lexical order) then apt.conf, as apt reads them."""
    options: dict[str, str] = {}
    conf_dir = ctx.path(APT_CONF_DIR)
    try:
        names = sorted(p.name for p in conf_dir.iterdir() if p.is_file())
    except OSError:
        names = []
    for name in names:
        if _APT_IGNORED_CONF.search(name) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            continue
        text = ctx.read_text(f"{APT_CONF_DIR}/{name}")
        if text is not None:
            options.update(parse_apt_config(text))
    main = ctx.read_text(APT_CONF_MAIN)
    if main is not None:
        options.update(parse_apt_config(main))
    return options


def _apt_auto_updates(ctx: ProbeContext, notes: list[str]) -> bool:
    options = _apt_config(ctx)
    lists = _apt_value_enabled(options.get("apt::periodic::update-package-lists"))
    upgrade = _apt_value_enabled(options.get("apt::periodic::unattended-upgrade"))
    if not (lists and upgrade):
        return False
    if not (
        ctx.exists("/usr/bin/unattended-upgrade") or ctx.exists("/usr/bin/unattended-upgrades")
    ):
        notes.append(
            "APT::Periodic::Unattended-Upgrade is enabled but unattended-upgrades is not installed"
        )
        return False
    if not (
        ctx.exists("/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer")
        or ctx.exists("/etc/cron.daily/apt-compat")
    ):
        notes.append("neither apt-daily-upgrade.timer nor /etc/cron.daily/apt-compat is enabled")
    return True


def _apt_last_update(ctx: ProbeContext, notes: list[str]) -> datetime | None:
    tz, tz_note = local_timezone(ctx)
    if tz_note:
        notes.append(tz_note)
    for absolute in APT_HISTORY_FILES:
        text = _read_maybe_gz(ctx, absolute)
        if text is None:
            if ctx.exists(absolute):
                notes.append(_unreadable_note(ctx, absolute))
            continue
        found = parse_apt_history(text, tz)
        if found is not None:
            return found  # older rotations only hold older entries
    return None


def _apt_last_refresh(ctx: ProbeContext, notes: list[str]) -> datetime | None:
    """Newest of the periodic stamps (exact, but only written by the daily job) and of
    the lists' modification times (any ``apt-get update``, but only a lower bound)."""
    stamps = [_mtime(ctx.path(stamp)) for stamp in APT_REFRESH_STAMPS]
    stamp = max((s for s in stamps if s is not None), default=None)
    lists = ctx.path(APT_LISTS_DIR)
    candidates = [_mtime(lists)]
    with contextlib.suppress(OSError):
        candidates += [
            _mtime(p) for p in lists.iterdir() if p.name.endswith(("Release", "InRelease"))
        ]
    from_lists = max((c for c in candidates if c is not None), default=None)
    if from_lists is not None and (stamp is None or from_lists > stamp):
        notes.append(
            "last_refresh_at taken from /var/lib/apt/lists modification times (a lower bound: "
            "apt leaves unchanged lists untouched)"
        )
        return from_lists
    return stamp


def _apt_pending(ctx: ProbeContext, facts: _Facts) -> None:
    reasons: list[str] = []
    for mode in ("dist-upgrade", "upgrade"):
        argv = ["apt-get", "-s", "-o", "Debug::NoLocking=1", mode]
        result, reason = _run(ctx, argv, APT_SIMULATION_TIMEOUT, inputs=APT_SIMULATION_INPUTS)
        if result is None:
            facts.failure = f"pending updates unknown: {reason}"
            return  # missing tool or timeout: the other mode would fare no better
        if result.returncode != 0:
            reasons.append(_failure(argv, result))
            continue
        updates = parse_apt_simulation(result.stdout)
        # New dependencies pulled in by an upgrade are not updates of installed software.
        facts.pending = [u for u in updates if u.current_version is not None]
        facts.security_count = sum(1 for u in facts.pending if u.security)
        if reasons:
            facts.notes.append(f"dist-upgrade simulation failed, used upgrade: {reasons[0]}")
        return
    facts.failure = "pending updates unknown: " + "; ".join(reasons)


def _probe_apt(ctx: ProbeContext) -> _Facts:
    facts = _Facts(manager="apt")
    if ctx.live:
        _apt_pending(ctx, facts)
    facts.last_update_at = _apt_last_update(ctx, facts.notes)
    facts.last_refresh_at = _apt_last_refresh(ctx, facts.notes)
    facts.auto_updates = _apt_auto_updates(ctx, facts.notes)
    facts.reboot_required = _reboot_flag(ctx, ("reboot-required",), facts.notes)
    return facts


# --- dnf / yum ----------------------------------------------------------------


def _rpm_pending(ctx: ProbeContext, tool: str, facts: _Facts) -> None:
    argv = [tool, "-q", "-C", "check-update"]
    result, reason = _run(ctx, argv, RPM_QUERY_TIMEOUT)
    if result is None:
        facts.failure = f"pending updates unknown: {reason}"
        return
    if result.returncode == 0:
        facts.pending = []
    elif result.returncode == 100:
        facts.pending = parse_dnf_check_update(result.stdout)
        if not facts.pending:
            facts.failure = f"'{' '.join(argv)}' reported updates but none could be parsed"
            return
    else:
        facts.failure = "pending updates unknown: " + _failure(argv, result)
        return

    sec_argv = [tool, "-q", "-C", "updateinfo", "list", "--security"]
    sec, reason = _run(ctx, sec_argv, RPM_QUERY_TIMEOUT)
    if sec is None or sec.returncode != 0:
        why = reason if sec is None else _failure(sec_argv, sec)
        facts.notes.append(f"security classification unavailable: {why}")
        return
    secure = parse_dnf_updateinfo(sec.stdout)
    marked = [u.model_copy(update={"security": u.name in secure}) for u in facts.pending]
    facts.pending = marked
    facts.security_count = sum(1 for u in marked if u.security)


def _rpm_auto_updates(ctx: ProbeContext, tool: str, notes: list[str]) -> bool | None:
    wants = "/etc/systemd/system/timers.target.wants"
    if ctx.exists(f"{wants}/dnf-automatic-install.timer"):
        return True  # this timer applies updates whatever automatic.conf says
    confs = (YUM_CRON_CONF,) if tool == "yum" else DNF_AUTOMATIC_CONFS
    for conf in confs:
        text = ctx.read_text(conf)
        if text is None:
            if ctx.exists(conf):
                notes.append(_unreadable_note(ctx, conf))
            continue
        apply = parse_dnf_automatic(text)
        if not apply:
            return False
        if tool == "yum":
            return True  # yum-cron runs from cron.daily once installed
        if ctx.exists(f"{wants}/dnf-automatic.timer") or ctx.exists(
            f"{wants}/dnf5-automatic.timer"
        ):
            return True
        notes.append(f"{conf} has apply_updates = yes but the dnf-automatic timer is not enabled")
        return False
    return False


def _dnf_last_update(ctx: ProbeContext, notes: list[str]) -> datetime | None:
    for db in DNF_HISTORY_DBS:
        path = ctx.path(db)
        if not path.exists():
            continue
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
            try:
                row = conn.execute("SELECT MAX(dt_end) FROM trans").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            hint = "" if ctx.is_root else " (agent is not running as root)"
            notes.append(f"{db} not readable: {exc}{hint}")
            continue
        if row and row[0]:
            return datetime.fromtimestamp(int(row[0]), UTC)
    return None


def _dnf_last_refresh(ctx: ProbeContext) -> datetime | None:
    found: list[datetime] = []
    for cache in DNF_CACHE_DIRS:
        for repomd in ctx.path(cache).glob("*/repodata/repomd.xml"):
            when = _mtime(repomd)
            if when is not None:
                found.append(when)
    return max(found) if found else None


def _dnf_reboot(ctx: ProbeContext, notes: list[str]) -> bool | None:
    if not ctx.live:
        return None
    argv = ["needs-restarting", "-r"]
    result, reason = _run(ctx, argv, REBOOT_CHECK_TIMEOUT)
    if result is None:
        notes.append(f"reboot requirement unknown: {reason}")
        return None
    if result.returncode in (0, 1):
        return result.returncode == 1
    notes.append(f"reboot requirement unknown: {_failure(argv, result)}")
    return None


def _probe_rpm(ctx: ProbeContext, manager: str) -> _Facts:
    facts = _Facts(manager=manager)
    # Fedora 41+ may ship only dnf5 (``/usr/bin/dnf`` is usually a symlink to it).
    tool = "dnf5" if manager == "dnf" and not _has(ctx, "dnf") else manager
    if ctx.live:
        _rpm_pending(ctx, tool, facts)
    facts.last_update_at = _dnf_last_update(ctx, facts.notes)
    facts.last_refresh_at = _dnf_last_refresh(ctx)
    facts.auto_updates = _rpm_auto_updates(ctx, tool, facts.notes)
    facts.reboot_required = _dnf_reboot(ctx, facts.notes)
    return facts


# --- zypper -------------------------------------------------------------------

_ZYPPER_OK = (0, 100, 101, 106)  # 100/101: updates/security patches; 106: some repos skipped


def _zypper_pending(ctx: ProbeContext, facts: _Facts) -> None:
    base = ["zypper", "--non-interactive", "--no-refresh", "--xmlout"]
    argv = [*base, "list-updates"]
    result, reason = _run(ctx, argv, RPM_QUERY_TIMEOUT)
    if result is None:
        facts.failure = f"pending updates unknown: {reason}"
        return
    if result.returncode not in _ZYPPER_OK:
        facts.failure = "pending updates unknown: " + _failure(argv, result)
        return
    try:
        facts.pending = parse_zypper_updates(result.stdout)
    except ET.ParseError as exc:
        facts.failure = f"pending updates unknown: unparsable zypper XML: {exc}"
        return
    if result.returncode == 106:
        facts.notes.append("zypper skipped some repositories; the list may be incomplete")

    sec_argv = [*base, "list-patches", "--category", "security"]
    sec, reason = _run(ctx, sec_argv, RPM_QUERY_TIMEOUT)
    if sec is None or sec.returncode not in _ZYPPER_OK:
        why = reason if sec is None else _failure(sec_argv, sec)
        facts.notes.append(f"security classification unavailable: {why}")
        return
    try:
        patches = parse_zypper_security_patches(sec.stdout)
    except ET.ParseError as exc:
        facts.notes.append(f"security classification unavailable: unparsable XML: {exc}")
        return
    facts.security_count = len(patches)
    facts.notes.append("security_pending_count counts needed zypper security patches, not packages")


def _zypper_auto_updates(ctx: ProbeContext) -> bool | None:
    text = ctx.read_text(ZYPP_AUTO_UPDATE_CONF)
    if text is None:
        return None
    m = re.search(r'^\s*AOU_ENABLE_CRONJOB\s*=\s*"?(\w+)"?', text, flags=re.M)
    return bool(m and m.group(1).lower() in ("true", "yes"))


def _probe_zypper(ctx: ProbeContext) -> _Facts:
    facts = _Facts(manager="zypper")
    if ctx.live:
        _zypper_pending(ctx, facts)
    tz, tz_note = local_timezone(ctx)
    text = ctx.read_text(ZYPP_HISTORY)
    if text is not None:
        facts.last_update_at = parse_zypp_history(text, tz)
        if tz_note:
            facts.notes.append(tz_note)
    elif ctx.exists(ZYPP_HISTORY):
        facts.notes.append(_unreadable_note(ctx, ZYPP_HISTORY))
    facts.auto_updates = _zypper_auto_updates(ctx)
    if facts.auto_updates is None:
        facts.notes.append(f"automatic updates unknown: {ZYPP_AUTO_UPDATE_CONF} not found")
    facts.reboot_required = _reboot_flag(ctx, ("reboot-needed",), facts.notes)
    return facts


# --- entry point --------------------------------------------------------------


def _has(ctx: ProbeContext, *names: str) -> bool:
    return any(ctx.exists(f"{d}/{n}") for n in names for d in ("/usr/bin", "/bin"))


def detect_manager(ctx: ProbeContext) -> str | None:
    """Which supported package manager the root uses: apt, dnf, yum, zypper or None."""
    if _has(ctx, "dpkg") and _has(ctx, "apt-get"):
        return "apt"
    if _has(ctx, "rpm"):
        if _has(ctx, "zypper"):
            return "zypper"
        if _has(ctx, "dnf", "dnf5"):
            return "dnf"
        if _has(ctx, "yum"):
            return "yum"
    return None


def probe(ctx: ProbeContext) -> PatchesSection:
    manager = detect_manager(ctx)
    if manager is None:
        return unknown(
            PatchesSection,
            f"no supported package manager (apt, dnf, yum, zypper) found under {ctx.root}",
        )
    if manager == "apt":
        facts = _probe_apt(ctx)
    elif manager == "zypper":
        facts = _probe_zypper(ctx)
    else:
        facts = _probe_rpm(ctx, manager)
    if not ctx.live:
        facts.notes.append("pending updates need a live host; not collected for this root")
    return facts.section()
