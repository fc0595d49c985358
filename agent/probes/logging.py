"""Logging: persistent local logs, remote forwarding and the kernel audit trail.

* **journald** ``Storage=`` is read from ``/etc/systemd/journald.conf`` and then
  the drop-ins ``*.conf`` of ``/etc``, ``/run``, ``/usr/local/lib`` and
  ``/usr/lib`` ``/systemd/journald.conf.d`` (journald.conf(5)): drop-ins are
  applied in the lexical order of their file names, a drop-in in ``/etc``
  masking one of the same name further down the list, and the last assignment
  wins.  An invalid value is ignored, as journald does.  The default ``auto``
  is persistent only when ``/var/log/journal`` exists.  A host without
  ``systemd-journald`` has no persistent journal (``journald_persistent`` False).
* **syslog daemon**: rsyslog (``rsyslogd``) or syslog-ng (``syslog-ng``),
  installed when its binary exists, running when its process does; another
  ``syslogd``/``klogd`` process is reported as ``other``.
* **remote forwarding** (``remote_targets``, ``host`` or ``host:port`` as
  configured): rsyslog legacy actions ``@host``/``@@host`` and
  ``:omrelp:host:port`` and RainerScript ``action(type="omfwd"|"omrelp"
  target=…)`` in ``/etc/rsyslog.conf`` and ``/etc/rsyslog.d/*.conf``; syslog-ng
  ``network()``/``tcp()``/``udp()``/``syslog()`` drivers inside ``destination``
  blocks of ``/etc/syslog-ng/syslog-ng.conf`` and ``conf.d/*.conf``; and
  ``URL=`` of ``/etc/systemd/journal-upload.conf`` (+ drop-ins) when
  ``systemd-journal-upload`` is enabled or running (otherwise only a note).
  Commented lines never count.  Forwarding configured for a daemon that is not
  installed is left out with a note (its configuration files outlive it).
* **log shippers**: agents that forward logs, by process name.
* **auditd**: installed when ``/sbin/auditd`` or ``/usr/sbin/auditd`` exists,
  running when an ``auditd`` process does (the kernel thread ``kauditd`` is
  not the daemon).  The rule count is that of the loaded rules, ``auditctl -l``
  (root, live; ``No rules`` is 0).  Otherwise the rule files are counted: the
  ``/etc/audit/rules.d/*.rules`` that ``augenrules`` compiles, or
  ``/etc/audit/audit.rules`` when that directory holds none (``audit.rules`` is
  generated from ``rules.d``, counting both would count twice); a note then says
  that the loaded rules were not read.  A rule is an ``-a``/``-A``/``-w`` line;
  control lines (``-D``, ``-b``, ``-f``, ``-e``…) are not rules.

When ``ctx.live`` is False (alternate root) no command runs and no process is
looked at: every ``*_running`` field is None and shippers are not listed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.report import LoggingSection

OFFLINE_NOTE = "live state (processes, loaded audit rules) was not observed: alternate root"

JOURNALD_CONF = "/etc/systemd/journald.conf"
JOURNALD_DROPIN_DIRS = (
    "/etc/systemd/journald.conf.d",
    "/run/systemd/journald.conf.d",
    "/usr/local/lib/systemd/journald.conf.d",
    "/usr/lib/systemd/journald.conf.d",
)
JOURNALD_BINARIES = ("/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald")
JOURNAL_DIR = "/var/log/journal"
JOURNALD_DEFAULT_STORAGE = "auto"
JOURNALD_STORAGE_VALUES = frozenset({"volatile", "persistent", "auto", "none"})

JOURNAL_UPLOAD_CONF = "/etc/systemd/journal-upload.conf"
JOURNAL_UPLOAD_DROPIN_DIRS = (
    "/etc/systemd/journal-upload.conf.d",
    "/run/systemd/journal-upload.conf.d",
    "/usr/lib/systemd/journal-upload.conf.d",
)
JOURNAL_UPLOAD_UNIT = "systemd-journal-upload.service"
JOURNAL_UPLOAD_PROCESS = "systemd-journal-upload"
SYSTEMD_WANTS_DIR = "/etc/systemd/system"

RSYSLOG_BINARIES = ("/usr/sbin/rsyslogd", "/sbin/rsyslogd")
RSYSLOG_CONF = "/etc/rsyslog.conf"
RSYSLOG_DIR = "/etc/rsyslog.d"
SYSLOG_NG_BINARIES = ("/usr/sbin/syslog-ng", "/sbin/syslog-ng")
SYSLOG_NG_CONF = "/etc/syslog-ng/syslog-ng.conf"
SYSLOG_NG_DIR = "/etc/syslog-ng/conf.d"
OTHER_SYSLOG_PROCESSES = ("syslogd", "klogd", "busybox-syslogd")

LOG_SHIPPERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("filebeat", ("filebeat",)),
    ("fluent-bit", ("fluent-bit",)),
    ("td-agent", ("td-agent", "fluentd")),
    ("wazuh-logcollector", ("wazuh-logcollector", "ossec-logcollector")),
    ("splunkd", ("splunkd",)),
    ("nxlog", ("nxlog",)),
    ("vector", ("vector",)),
)

AUDITD_BINARIES = ("/sbin/auditd", "/usr/sbin/auditd")
AUDIT_RULES_DIR = "/etc/audit/rules.d"
AUDIT_RULES_FILE = "/etc/audit/audit.rules"
AUDITCTL_TIMEOUT = 10.0
_AUDIT_RULE_RE = re.compile(r"^\s*-[aAw]\s")


# --- small helpers ---------------------------------------------------------------


def _first_existing(ctx: ProbeContext, paths: Iterable[str]) -> str | None:
    return next((p for p in paths if ctx.exists(p)), None)


def _glob(ctx: ProbeContext, directory: str, pattern: str) -> list[str]:
    """Absolute host paths of ``directory/pattern`` under the root, sorted by name."""
    base = ctx.path(directory)
    try:
        names = sorted(p.name for p in base.glob(pattern) if p.is_file())
    except OSError:
        return []
    return [f"{directory}/{name}" for name in names]


def _strip_hash_comment(line: str) -> str:
    """Drop a ``#`` comment that is not inside double or single quotes."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _strip_comments(text: str) -> str:
    text = re.sub(r"(?:^|(?<=\s))/\*.*?\*/", " ", text, flags=re.DOTALL | re.MULTILINE)
    return "\n".join(_strip_hash_comment(line) for line in text.splitlines())


def _target(host: str, port: str | None) -> str:
    host = host.strip().strip("\"'")
    return f"{host}:{port}" if port else host


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- journald --------------------------------------------------------------------


def _systemd_dropins(ctx: ProbeContext, dirs: Iterable[str]) -> list[str]:
    """Drop-in files in systemd order: by file name, the first directory masking the others."""
    chosen: dict[str, str] = {}
    for directory in dirs:
        for path in _glob(ctx, directory, "*.conf"):
            chosen.setdefault(PurePosixPath(path).name, path)
    return [chosen[name] for name in sorted(chosen)]


def _ini_values(text: str, section: str, key: str) -> list[str]:
    """Every ``key=value`` of ``[section]`` in a systemd-style configuration file."""
    values: list[str] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        if current != section or "=" not in line:
            continue
        name, value = line.split("=", 1)
        if name.strip() == key:
            values.append(value.strip())
    return values


def journald_storage(ctx: ProbeContext, notes: list[str]) -> tuple[str, str]:
    """Effective ``Storage=`` and the file that set it (``default`` when none did)."""
    storage, source = JOURNALD_DEFAULT_STORAGE, "default"
    for path in [JOURNALD_CONF, *_systemd_dropins(ctx, JOURNALD_DROPIN_DIRS)]:
        text = ctx.read_text(path)
        if text is None:
            continue
        for value in _ini_values(text, "Journal", "Storage"):
            if value in JOURNALD_STORAGE_VALUES:
                storage, source = value, path
            elif value == "":
                storage, source = JOURNALD_DEFAULT_STORAGE, path  # empty resets
            else:
                notes.append(f"{path}: invalid Storage={value} ignored (as journald does)")
    return storage, source


def _journald_facts(ctx: ProbeContext, notes: list[str]) -> tuple[str | None, bool]:
    if _first_existing(ctx, JOURNALD_BINARIES) is None and not ctx.exists(JOURNALD_CONF):
        notes.append("systemd-journald is not installed: no journal")
        return None, False
    storage, _ = journald_storage(ctx, notes)
    if storage == "persistent":
        return storage, True
    if storage == "auto":
        return storage, ctx.path(JOURNAL_DIR).is_dir()
    return storage, False


# --- rsyslog ---------------------------------------------------------------------

# A selector (``*.*``, ``auth,authpriv.*``, ``kern.!info``) or a property filter
# (``:msg, contains, "x"``) followed by a forwarding action.
_SELECTOR = r"(?:&|[\w*.,;!=<>-]+|:[\w$!-]+\s*,\s*!?[\w-]+\s*,\s*\"[^\"]*\")"
_HOST = r"(\[[^\]]+\]|[^\s:;\[\]()\"']+)"
_LEGACY_FWD_RE = re.compile(
    rf"^\s*{_SELECTOR}\s+@@?(?:\([^)]*\))?{_HOST}(?::(\d+))?", re.MULTILINE
)
_LEGACY_RELP_RE = re.compile(rf"^\s*{_SELECTOR}\s+:omrelp:{_HOST}(?::(\d+))?", re.MULTILINE)
_ACTION_RE = re.compile(r"\baction\s*\((.*?)\)", re.DOTALL | re.IGNORECASE)
_PARAM_RE = re.compile(r"([\w.]+)\s*=\s*\"([^\"]*)\"")


def parse_rsyslog(text: str) -> list[str]:
    """Remote targets of one rsyslog configuration file."""
    clean = _strip_comments(text)
    targets: list[str] = []
    for regex in (_LEGACY_FWD_RE, _LEGACY_RELP_RE):
        targets += [_target(m.group(1), m.group(2)) for m in regex.finditer(clean)]
    for m in _ACTION_RE.finditer(clean):
        params = {k.lower(): v for k, v in _PARAM_RE.findall(m.group(1))}
        if params.get("type", "").lower() in ("omfwd", "omrelp") and params.get("target"):
            targets.append(_target(params["target"], params.get("port")))
    return _dedupe(targets)


def rsyslog_files(ctx: ProbeContext) -> list[str]:
    return [RSYSLOG_CONF, *_glob(ctx, RSYSLOG_DIR, "*.conf")]


# --- syslog-ng -------------------------------------------------------------------

_DESTINATION_RE = re.compile(r"\bdestination\s+[\w-]+\s*\{")
_NG_DRIVER_RE = re.compile(r"\b(network|tcp6?|udp6?|syslog)\s*\(")
_NG_HOST_RE = re.compile(r"\s*(?:\"([^\"]+)\"|'([^']+)'|([\w.:-]+)(?![\w.:-]|\s*\())")
_NG_PORT_RE = re.compile(r"\bport\s*\(\s*(\d+)\s*\)")


def _balanced(text: str, start: int, open_ch: str, close_ch: str) -> str:
    """The text after ``start`` (just past an opening bracket) up to its matching close."""
    depth = 1
    quote: str | None = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return text[start:i]
    return text[start:]


def parse_syslog_ng(text: str) -> list[str]:
    """Remote targets of the network drivers inside ``destination`` blocks."""
    clean = _strip_comments(text)
    targets: list[str] = []
    for block in _DESTINATION_RE.finditer(clean):
        body = _balanced(clean, block.end(), "{", "}")
        for driver in _NG_DRIVER_RE.finditer(body):
            args = _balanced(body, driver.end(), "(", ")")
            host = _NG_HOST_RE.match(args)
            if not host:
                continue
            name = host.group(1) or host.group(2) or host.group(3)
            port = _NG_PORT_RE.search(args)
            targets.append(_target(name, port.group(1) if port else None))
    return _dedupe(targets)


def syslog_ng_files(ctx: ProbeContext) -> list[str]:
    return [SYSLOG_NG_CONF, *_glob(ctx, SYSLOG_NG_DIR, "*.conf")]


# --- journal upload --------------------------------------------------------------


def journal_upload_target(ctx: ProbeContext) -> tuple[str | None, str | None]:
    """(target, file) of the effective ``URL=`` of systemd-journal-upload."""
    target: str | None = None
    source: str | None = None
    files = [JOURNAL_UPLOAD_CONF, *_systemd_dropins(ctx, JOURNAL_UPLOAD_DROPIN_DIRS)]
    for path in files:
        text = ctx.read_text(path)
        if text is None:
            continue
        for url in _ini_values(text, "Upload", "URL"):
            if not url:
                target, source = None, path
                continue
            try:
                parts = urlsplit(url if "://" in url else f"https://{url}")
                host, port = parts.hostname, parts.port
            except ValueError:  # a malformed URL: journal-upload refuses it too
                continue
            if host:
                host = f"[{host}]" if ":" in host else host
                target, source = _target(host, str(port) if port else None), path
    return target, source


def _unit_enabled(ctx: ProbeContext, unit: str) -> bool:
    """A ``*.wants/<unit>`` link exists (its absolute target may lie outside the root)."""
    base = ctx.path(SYSTEMD_WANTS_DIR)
    try:
        return any(os.path.lexists(wants / unit) for wants in base.glob("*.wants"))
    except OSError:
        return False


# --- auditd ----------------------------------------------------------------------


def count_audit_rules(text: str) -> int:
    """Rule lines (``-a``/``-A``/``-w``) of a rules file or of ``auditctl -l`` output."""
    return sum(1 for line in _strip_comments(text).splitlines() if _AUDIT_RULE_RE.match(line))


def parse_auditctl_list(stdout: str) -> int:
    """Number of loaded rules from ``auditctl -l``."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if lines == ["No rules"]:
        return 0
    return sum(1 for line in lines if line.startswith("-"))


def _audit_rules_from_files(ctx: ProbeContext) -> tuple[int | None, str | None]:
    files = _glob(ctx, AUDIT_RULES_DIR, "*.rules")
    if not files and ctx.exists(AUDIT_RULES_FILE):
        files = [AUDIT_RULES_FILE]
    texts = [t for path in files if (t := ctx.read_text(path)) is not None]
    if not texts:
        return None, None
    where = AUDIT_RULES_DIR + "/*.rules" if files[0] != AUDIT_RULES_FILE else AUDIT_RULES_FILE
    return sum(count_audit_rules(t) for t in texts), where


def _audit_rule_count(ctx: ProbeContext, notes: list[str]) -> int | None:
    why_not_loaded: str | None = None
    if not ctx.live:
        why_not_loaded = "alternate root"
    elif not ctx.is_root:
        why_not_loaded = "auditctl -l needs root"
    else:
        try:
            res = ctx.runner.run(["auditctl", "-l"], timeout=AUDITCTL_TIMEOUT)
        except ToolMissing:
            why_not_loaded = "auditctl is not installed"
        except CommandTimeout as exc:
            why_not_loaded = str(exc)
        else:
            if res.ok:
                return parse_auditctl_list(res.stdout)
            detail = (res.stderr or res.stdout).strip().splitlines()
            why_not_loaded = (
                f"auditctl -l failed (exit {res.returncode}"
                + (f": {detail[0]}" if detail else "")
                + ")"
            )
    count, where = _audit_rules_from_files(ctx)
    if count is None:
        notes.append(f"audit rules unknown: {why_not_loaded}; no rule file readable")
        return None
    notes.append(
        f"loaded audit rules were not read ({why_not_loaded}): "
        f"{count} rule(s) counted in {where}"
    )
    return count


# --- the probe -------------------------------------------------------------------


def _processes(ctx: ProbeContext, notes: list[str]) -> set[str] | None:
    if not ctx.live:
        notes.append(OFFLINE_NOTE)
        return None
    try:
        return ctx.running_processes()
    except Exception as exc:  # psutil trouble: keep the file-based facts
        notes.append(f"process list unavailable, running state unknown ({exc})")
        return None


SyslogDaemon = Literal["rsyslog", "syslog-ng", "other"]


def _syslog_daemon(
    ctx: ProbeContext, processes: set[str] | None
) -> tuple[SyslogDaemon | None, bool | None]:
    """(daemon, running) of the syslog daemon; a running one wins over an installed one."""
    candidates: tuple[tuple[SyslogDaemon, tuple[str, ...], str], ...] = (
        ("rsyslog", RSYSLOG_BINARIES, "rsyslogd"),
        ("syslog-ng", SYSLOG_NG_BINARIES, "syslog-ng"),
    )
    installed: list[tuple[SyslogDaemon, bool]] = []
    for name, binaries, process in candidates:
        is_running = processes is not None and process in processes
        if is_running or _first_existing(ctx, binaries):
            installed.append((name, is_running))
    if installed:
        name, is_running = max(installed, key=lambda item: item[1])
        return name, (is_running if processes is not None else None)
    if processes is not None and any(p in processes for p in OTHER_SYSLOG_PROCESSES):
        return "other", True
    return None, (False if processes is not None else None)


def _remote_targets(
    ctx: ProbeContext, daemon: str | None, processes: set[str] | None, notes: list[str]
) -> list[str]:
    targets: list[str] = []
    for name, files, parse in (
        ("rsyslog", rsyslog_files(ctx), parse_rsyslog),
        ("syslog-ng", syslog_ng_files(ctx), parse_syslog_ng),
    ):
        found: list[str] = []
        for path in files:
            text = ctx.read_text(path)
            if text is not None:
                found += parse(text)
        if not found:
            continue
        if daemon == name:
            targets += found
        else:
            notes.append(
                f"{name} forwarding to {', '.join(_dedupe(found))} configured, "
                f"but {name} is not installed"
            )
    upload, source = journal_upload_target(ctx)
    if upload:
        running = processes is not None and JOURNAL_UPLOAD_PROCESS in processes
        if running or _unit_enabled(ctx, JOURNAL_UPLOAD_UNIT):
            targets.append(upload)
        else:
            notes.append(
                f"{source}: URL to {upload} set, but {JOURNAL_UPLOAD_UNIT} is neither "
                "enabled nor running"
            )
    return _dedupe(targets)


def probe(ctx: ProbeContext) -> LoggingSection:
    if not ctx.path("/etc").is_dir():
        return unknown(LoggingSection, "no /etc directory under the probed root")
    notes: list[str] = []
    processes = _processes(ctx, notes)

    storage, persistent = _journald_facts(ctx, notes)
    daemon, syslog_running = _syslog_daemon(ctx, processes)
    targets = _remote_targets(ctx, daemon, processes, notes)
    shippers = (
        [name for name, names in LOG_SHIPPERS if any(n in processes for n in names)]
        if processes is not None
        else []
    )

    auditd_installed = _first_existing(ctx, AUDITD_BINARIES) is not None
    auditd_running = None if processes is None else "auditd" in processes
    rule_count = (
        _audit_rule_count(ctx, notes) if auditd_installed or auditd_running else None
    )
    return LoggingSection(
        journald_storage=storage,
        journald_persistent=persistent,
        syslog_daemon=daemon,
        syslog_running=syslog_running,
        remote_targets=targets,
        log_shippers=shippers,
        auditd_installed=auditd_installed or bool(auditd_running),
        auditd_running=auditd_running,
        audit_rule_count=rule_count,
        notes=notes,
    )
