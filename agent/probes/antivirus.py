"""Antivirus presence, activity and signature freshness (Linux).

ClamAV is examined in depth, from files under the probed root:

* installed: a ``clamscan``/``clamd``/``freshclam`` binary in the usual
  ``/usr/{,local/}{bin,sbin}`` directories (looked up under ``ctx.root``, not on
  the agent's ``PATH``, so auditing a mounted root works);
* running / updater running: ``clamd`` / ``freshclam`` processes (live only);
* signatures: the 512-byte header of ``daily``/``main``/``bytecode``
  (``.cvd`` or ``.cld``, or the ``.info`` file of an unpacked ``daily``
  directory) in freshclam's ``DatabaseDirectory``:
  ``ClamAV-VDB:<time>:<version>:<sigs>:<flevel>:<md5>:<dsig>:<builder>:<stime>``.
  ``stime`` (epoch seconds) is the build time; the ``<time>`` field
  (``"%d %b %Y %H-%M %z"``) and then the file's mtime are fallbacks, with a note;
* last scan: the newest scan result in clamd's log (``<ctime> -> path: ... FOUND``
  or ``: OK`` with ``LogClean``) or the ``End Date:`` of a clamscan ``--log``
  summary (both local time);
* realtime: clamd running, an ``OnAccessIncludePath``/``OnAccessMountPath`` in
  clamd.conf and the ``clamonacc`` client running (or legacy ``ScanOnAccess``).

Other products are recognised from a data table (``PRODUCTS``) of install
paths and daemon process names (Lynis tests_malware plus newer layouts).
Generic daemon names (``scand``, ``wdserver``) only count when the product's
install path exists.  Microsoft Defender for Endpoint is also asked
``mdatp health --output json`` on a live host.

Status: an empty product list with ``status="ok"`` means "looked and found
none".  The section is ``unknown`` only when neither source is available: the
root is not live (no process table) *and* it has no ``/usr`` to look in (an
unmounted or empty image), so absence of evidence would mean nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.probes.patches import local_timezone
from agent.report import AntivirusProduct, AntivirusSection

BIN_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
CLAMAV_BINARIES = ("clamscan", "clamd", "freshclam")
FRESHCLAM_CONFS = (
    "/etc/clamav/freshclam.conf",
    "/etc/freshclam.conf",
    "/usr/local/etc/freshclam.conf",
)
CLAMD_CONFS = (
    "/etc/clamav/clamd.conf",
    "/etc/clamd.d/scan.conf",
    "/etc/clamd.conf",
    "/usr/local/etc/clamd.conf",
)
DEFAULT_CLAMAV_DB = "/var/lib/clamav"
CLAMAV_DATABASES = ("daily", "main", "bytecode")
CLAMD_LOG_DEFAULT = "/var/log/clamav/clamav.log"
CLAMSCAN_LOGS = (
    "/var/log/clamav/clamscan.log",
    "/var/log/clamav/scan.log",
    "/var/log/clamscan.log",
)
LOG_TAIL_BYTES = 1024 * 1024
MDATP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ProductSignature:
    """How to recognise one antivirus / endpoint protection product."""

    name: str
    paths: tuple[str, ...] = ()
    """Install paths (files or directories) under the root."""
    daemons: tuple[str, ...] = ()
    """Distinctive scanning-daemon process names: seen alone, they prove the product."""
    path_daemons: tuple[str, ...] = ()
    """Generic process names, trusted only when one of ``paths`` exists."""


PRODUCTS: tuple[ProductSignature, ...] = (
    ProductSignature(
        "ESET",
        paths=("/opt/eset/esets", "/opt/eset/eea", "/opt/eset/efs"),
        daemons=("esets_daemon", "oaeventd"),
        path_daemons=("startd", "scand"),
    ),
    ProductSignature(
        "Bitdefender",
        paths=("/opt/bitdefender-security-tools", "/opt/BitDefender"),
        daemons=("bdagentd", "epagd", "bdsecd"),
    ),
    ProductSignature(
        "Kaspersky Endpoint Security",
        paths=("/opt/kaspersky/kesl",),
        path_daemons=("wdserver", "kesl"),
    ),
    ProductSignature(
        "McAfee / Trellix",
        paths=(
            "/opt/McAfee/ens",
            "/opt/isec/ens",
            "/opt/NAI/LinuxShield",
            "/usr/local/uvscan/uvscan",
        ),
        daemons=("isectpd", "isecav", "mfetpd", "cmdagent"),
    ),
    ProductSignature(
        "Sophos",
        paths=("/opt/sophos-av", "/opt/sophos-spl"),
        daemons=("savscand", "SophosScanD", "sophos_threat_detector"),
    ),
    ProductSignature(
        "Symantec Endpoint Protection",
        paths=("/opt/Symantec",),
        daemons=("rtvscand", "smcd", "symcfgd"),
    ),
    ProductSignature(
        "CrowdStrike Falcon",
        paths=("/opt/CrowdStrike",),
        daemons=("falcon-sensor",),
    ),
    ProductSignature(
        "SentinelOne",
        paths=("/opt/sentinelone",),
        daemons=("s1-agent",),
    ),
    ProductSignature(
        "Trend Micro Deep Security",
        paths=("/opt/ds_agent",),
        daemons=("ds_am",),
    ),
    ProductSignature(
        "Avira",
        paths=("/usr/lib/AntiVir",),
        daemons=("avqmd",),
    ),
    ProductSignature(
        "Microsoft Defender for Endpoint",
        paths=("/opt/microsoft/mdatp", "/usr/bin/mdatp"),
        daemons=("wdavdaemon",),
    ),
    ProductSignature(
        "Linux Malware Detect",
        paths=("/usr/local/maldetect", "/usr/local/sbin/maldet"),
    ),
)


# --- pure parsers -------------------------------------------------------------

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}


@dataclass(frozen=True)
class CvdHeader:
    """The fields of a ClamAV database header that matter here."""

    version: int | None
    built_at: datetime | None
    """From ``stime``, else from the ``<time>`` field; None if neither parses."""
    built_from: str | None
    """"stime" or "time": which field ``built_at`` came from."""


_CVD_TIME = re.compile(r"^(\d{1,2}) (\w{3}) (\d{4}) (\d{2})-(\d{2}) ([+-])(\d{2})(\d{2})$")


def _parse_cvd_time(text: str) -> datetime | None:
    m = _CVD_TIME.match(text.strip())
    if not m or m.group(2) not in _MONTHS:
        return None
    offset = timedelta(hours=int(m.group(7)), minutes=int(m.group(8)))
    if m.group(6) == "-":
        offset = -offset
    try:
        local = datetime(
            int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)), int(m.group(4)), int(m.group(5))
        )
    except ValueError:
        return None
    return (local - offset).replace(tzinfo=UTC)


def parse_cvd_header(data: bytes) -> CvdHeader | None:
    """Parse the first 512 bytes of a ``.cvd``/``.cld`` (or a ``.info`` first line).

    Returns None when the data is not a ClamAV database header.
    """
    text = data[:512].split(b"\n", 1)[0].decode("ascii", errors="replace").strip("\x00 \r")
    fields = text.split(":")
    if len(fields) < 3 or fields[0] != "ClamAV-VDB":
        return None
    version = int(fields[2]) if fields[2].strip().isdigit() else None
    if len(fields) > 8 and fields[8].strip().isdigit() and int(fields[8]) > 0:
        built = datetime.fromtimestamp(int(fields[8].strip()), UTC)
        return CvdHeader(version, built, "stime")
    built = _parse_cvd_time(fields[1])
    return CvdHeader(version, built, "time" if built else None)


def parse_clamav_conf(text: str) -> dict[str, list[str]]:
    """Options of a clamd.conf / freshclam.conf (``Name value`` lines, ``#`` comments).

    Options may repeat (``OnAccessIncludePath``), so every value is kept.
    """
    options: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        options.setdefault(name.strip(), []).append(value.strip())
    return options


# "Mon Nov 23 13:13:54 2026 -> /path: Sig.Name FOUND"
_CLAMD_LOG_LINE = re.compile(
    r"^\w{3} (?P<mon>\w{3}) +(?P<day>\d{1,2}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) "
    r"(?P<year>\d{4}) -> (?P<msg>.*)$"
)
# "End Date:   2026:11:23 13:13:41" in a clamscan --log summary
_CLAMSCAN_END = re.compile(r"^End Date:\s+(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})\s*$")


def _is_scan_result(msg: str) -> bool:
    """``<path>: <signature> FOUND`` or ``<path>: OK`` (clean files, with LogClean)."""
    return msg.endswith((" FOUND", ": OK")) and ": " in msg


def parse_clamav_scan_log(text: str, tz: tzinfo) -> datetime | None:
    """Newest scan in a clamd log (result lines) or a clamscan ``--log`` file (``End Date``).

    Both are written in local time; ``tz`` is the host's zone.  Daemon
    housekeeping lines (start, self-check, database reload) are not scans.
    """
    newest: datetime | None = None
    for line in text.splitlines():
        when: datetime | None = None
        m = _CLAMD_LOG_LINE.match(line)
        if m and m.group("mon") in _MONTHS and _is_scan_result(m.group("msg")):
            try:
                when = datetime(
                    int(m.group("year")),
                    _MONTHS[m.group("mon")],
                    int(m.group("day")),
                    int(m.group("h")),
                    int(m.group("m")),
                    int(m.group("s")),
                    tzinfo=tz,
                )
            except ValueError:
                when = None
        else:
            e = _CLAMSCAN_END.match(line)
            if e:
                try:
                    when = datetime(*(int(g) for g in e.groups()), tzinfo=tz)  # type: ignore[misc]
                except ValueError:
                    when = None
        if when is not None and (newest is None or when > newest):
            newest = when
    return newest


def _health_value(data: dict, key: str) -> object:
    """``mdatp health --output json`` wraps some values as ``{"value": ...}``."""
    value = data.get(key)
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


def parse_mdatp_health(text: str, now: datetime | None = None) -> dict[str, object]:
    """Facts from ``mdatp health --output json``: realtime, healthy, definitions version/time."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("mdatp health JSON is not an object")
    facts: dict[str, object] = {}
    rtp = _health_value(data, "real_time_protection_enabled")
    if isinstance(rtp, bool):
        facts["realtime"] = rtp
    healthy = _health_value(data, "healthy")
    if isinstance(healthy, bool):
        facts["healthy"] = healthy
    version = _health_value(data, "definitions_version")
    if isinstance(version, str) and version:
        facts["signature_version"] = version
    updated = _health_value(data, "definitions_updated")
    when: datetime | None = None
    if isinstance(updated, int | float) and not isinstance(updated, bool) and updated > 0:
        seconds = updated / 1000 if updated > 10**11 else updated  # milliseconds or seconds
        when = datetime.fromtimestamp(seconds, UTC)
    if when is None:
        ago = _health_value(data, "definitions_updated_minutes_ago")
        if isinstance(ago, int | float) and not isinstance(ago, bool):
            when = (now or datetime.now(UTC)) - timedelta(minutes=ago)
    if when is not None:
        facts["signature_updated_at"] = when
    status = _health_value(data, "definitions_status")
    if isinstance(status, str):
        facts["definitions_status"] = status
    return facts


# --- helpers ------------------------------------------------------------------


class _Processes:
    """Running process names, or None when they cannot be known (not live, error)."""

    def __init__(self, ctx: ProbeContext, notes: list[str]) -> None:
        self.names: set[str] | None
        if not ctx.live and ctx.process_names is None:
            self.names = None
            return
        try:
            self.names = ctx.running_processes()
        except Exception as exc:  # psutil errors must not break the probe
            notes.append(f"process table not readable: {type(exc).__name__}: {exc}")
            self.names = None

    def running(self, *names: str) -> bool | None:
        if self.names is None:
            return None
        return any(n in self.names for n in names)

    def found(self, names: Iterable[str]) -> list[str]:
        if self.names is None:
            return []
        return [n for n in names if n in self.names]


def _unreadable_note(ctx: ProbeContext, absolute: str) -> str:
    hint = " (agent is not running as root)" if not ctx.is_root else ""
    return f"{absolute} exists but is not readable{hint}"


def _read_conf(ctx: ProbeContext, candidates: Iterable[str], notes: list[str]) -> tuple[str, str]:
    """First readable config among candidates: (path, text); ("", "") if none."""
    for absolute in candidates:
        text = ctx.read_text(absolute)
        if text is not None:
            return absolute, text
        if ctx.exists(absolute):
            notes.append(_unreadable_note(ctx, absolute))
    return "", ""


def _read_head(ctx: ProbeContext, absolute: str, size: int = 512) -> bytes | None:
    try:
        with open(ctx.path(absolute), "rb") as fh:
            return fh.read(size)
    except OSError:
        return None


def _read_tail(ctx: ProbeContext, absolute: str, size: int = LOG_TAIL_BYTES) -> str | None:
    try:
        with open(ctx.path(absolute), "rb") as fh:
            fh.seek(0, 2)
            end = fh.tell()
            fh.seek(max(0, end - size))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def _mtime(ctx: ProbeContext, absolute: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(ctx.path(absolute).stat().st_mtime, UTC)
    except OSError:
        return None


# --- ClamAV -------------------------------------------------------------------


@dataclass
class _Signatures:
    version: str | None = None
    updated_at: datetime | None = None


def _clamav_signatures(
    ctx: ProbeContext, db_dir: str, evidence: list[str], notes: list[str]
) -> _Signatures:
    result = _Signatures()
    best_daily: tuple[int, datetime | None] | None = None
    for db in CLAMAV_DATABASES:
        candidates = [f"{db_dir}/{db}.cvd", f"{db_dir}/{db}.cld"]
        for sub in (db, f"{db}.inc"):  # unpacked layout of older freshclam
            candidates.append(f"{db_dir}/{sub}/{db}.info")
        for absolute in candidates:
            head = _read_head(ctx, absolute)
            if head is None:
                if ctx.exists(absolute):
                    notes.append(_unreadable_note(ctx, absolute))
                continue
            header = parse_cvd_header(head)
            name = absolute.rsplit("/", 1)[1]
            if header is None:
                notes.append(f"{absolute} has no ClamAV-VDB header")
                continue
            built = header.built_at
            if header.built_from != "stime":
                mtime = _mtime(ctx, absolute)
                if built is None:
                    built = mtime
                    notes.append(f"{name}: header has no usable build time; using file mtime")
                else:
                    notes.append(f"{name}: header has no stime; using its <time> field")
            built_text = built.isoformat() if built else "unknown time"
            evidence.append(f"{name} version {header.version} built {built_text}")
            if db == "daily" and (best_daily is None or (header.version or 0) > best_daily[0]):
                best_daily = (header.version or 0, built)
                result.version = str(header.version) if header.version is not None else None
    if best_daily is not None:
        result.updated_at = best_daily[1]
    else:
        notes.append(f"ClamAV: no daily signature database found in {db_dir}")
    return result


def _clamav_last_scan(
    ctx: ProbeContext, clamd_conf: dict[str, list[str]], evidence: list[str], notes: list[str]
) -> datetime | None:
    logs = [CLAMD_LOG_DEFAULT]
    for value in clamd_conf.get("LogFile", []):
        if value.startswith("/") and value not in logs:
            logs.insert(0, value)
    logs += list(CLAMSCAN_LOGS)
    tz, tz_note = local_timezone(ctx)
    newest: datetime | None = None
    for absolute in logs:
        text = _read_tail(ctx, absolute)
        if text is None:
            if ctx.exists(absolute):
                notes.append(_unreadable_note(ctx, absolute))
            continue
        when = parse_clamav_scan_log(text, tz)
        if when is not None:
            evidence.append(f"last scan {when.isoformat()} in {absolute}")
            if newest is None or when > newest:
                newest = when
    if newest is not None and tz_note:
        notes.append(tz_note)
    return newest


def _on_access_configured(clamd_conf: dict[str, list[str]]) -> tuple[bool, bool]:
    """(an on-access path is configured, legacy in-daemon ScanOnAccess is on)."""
    paths = any(clamd_conf.get(k) for k in ("OnAccessIncludePath", "OnAccessMountPath"))
    legacy = any(v.lower() in ("yes", "true", "1") for v in clamd_conf.get("ScanOnAccess", []))
    return paths, legacy


def _probe_clamav(
    ctx: ProbeContext, procs: _Processes, notes: list[str]
) -> AntivirusProduct | None:
    evidence: list[str] = []
    binaries = [f"{d}/{b}" for b in CLAMAV_BINARIES for d in BIN_DIRS if ctx.exists(f"{d}/{b}")]
    if not binaries:
        return None
    evidence += [f"binary {b}" for b in binaries]

    running = procs.running("clamd")
    updater = procs.running("freshclam")
    onacc_client = procs.running("clamonacc")
    for name, state in (("clamd", running), ("freshclam", updater), ("clamonacc", onacc_client)):
        if state:
            evidence.append(f"process {name}")

    _, fresh_text = _read_conf(ctx, FRESHCLAM_CONFS, notes)
    fresh = parse_clamav_conf(fresh_text)
    db_dir = (fresh.get("DatabaseDirectory") or [DEFAULT_CLAMAV_DB])[-1].rstrip("/") or "/"
    sigs = _clamav_signatures(ctx, db_dir, evidence, notes)

    clamd_path, clamd_text = _read_conf(ctx, CLAMD_CONFS, notes)
    clamd_conf = parse_clamav_conf(clamd_text)
    last_scan = _clamav_last_scan(ctx, clamd_conf, evidence, notes)

    realtime: bool | None
    if not clamd_path:
        realtime = None if any(ctx.exists(c) for c in CLAMD_CONFS) else False
    else:
        paths, legacy = _on_access_configured(clamd_conf)
        if paths or legacy:
            evidence.append(f"on-access scanning configured in {clamd_path}")
        if running is None:
            realtime = None
        else:
            realtime = bool(running and ((paths and onacc_client) or legacy))
            if running and paths and not onacc_client and not legacy:
                notes.append("ClamAV on-access paths are configured but clamonacc is not running")

    return AntivirusProduct(
        name="ClamAV",
        installed=True,
        running=running,
        updater_running=updater,
        realtime=realtime,
        signature_version=sigs.version,
        signature_updated_at=sigs.updated_at,
        last_scan_at=last_scan,
        evidence=evidence,
    )


# --- table-driven products ----------------------------------------------------


def _probe_signature(
    ctx: ProbeContext, sig: ProductSignature, procs: _Processes
) -> AntivirusProduct | None:
    paths = [p for p in sig.paths if ctx.exists(p)]
    daemons = procs.found(sig.daemons)
    if paths:
        daemons += procs.found(sig.path_daemons)
    if not paths and not daemons:
        return None
    evidence = [f"path {p}" for p in paths] + [f"process {d}" for d in daemons]
    running: bool | None = None
    if procs.names is not None and (sig.daemons or sig.path_daemons):
        running = bool(daemons)
    return AntivirusProduct(name=sig.name, installed=True, running=running, evidence=evidence)


def _enrich_mdatp(ctx: ProbeContext, product: AntivirusProduct, notes: list[str]) -> None:
    if not ctx.live:
        return
    argv = ["mdatp", "health", "--output", "json"]
    try:
        result = ctx.runner.run(argv, timeout=MDATP_TIMEOUT)
    except (ToolMissing, CommandTimeout, OSError) as exc:
        notes.append(f"Defender health unavailable: {exc}")
        return
    if not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()[:1]
        notes.append(f"'mdatp health' exited with status {result.returncode}: {''.join(detail)}")
        return
    try:
        facts = parse_mdatp_health(result.stdout)
    except ValueError as exc:
        notes.append(f"'mdatp health' output not understood: {exc}")
        return
    product.evidence.append("mdatp health --output json")
    if "realtime" in facts:
        product.realtime = bool(facts["realtime"])
    if "signature_version" in facts:
        product.signature_version = str(facts["signature_version"])
    updated = facts.get("signature_updated_at")
    if isinstance(updated, datetime):
        product.signature_updated_at = updated
    for key in ("healthy", "definitions_status"):
        if key in facts:
            product.evidence.append(f"{key} {facts[key]}")


# --- entry point --------------------------------------------------------------


def probe(ctx: ProbeContext) -> AntivirusSection:
    notes: list[str] = []
    procs = _Processes(ctx, notes)
    if procs.names is None and not ctx.path("/usr").is_dir():
        return unknown(
            AntivirusSection,
            f"no process table (root is not live) and no /usr under {ctx.root} to inspect",
            notes=notes,
        )
    if procs.names is None and not ctx.live:
        notes.append("root is not live: daemon and realtime state not observed")

    products: list[AntivirusProduct] = []
    clamav = _probe_clamav(ctx, procs, notes)
    if clamav is not None:
        products.append(clamav)
    for sig in PRODUCTS:
        product = _probe_signature(ctx, sig, procs)
        if product is None:
            continue
        if sig.name == "Microsoft Defender for Endpoint":
            _enrich_mdatp(ctx, product, notes)
        products.append(product)
    return AntivirusSection(products=products, notes=notes)
