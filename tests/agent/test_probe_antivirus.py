"""Tests of the antivirus probe (ClamAV in depth, other products from the table)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from agent.probes.antivirus import (
    PRODUCTS,
    parse_clamav_conf,
    parse_clamav_scan_log,
    parse_cvd_header,
    parse_mdatp_health,
    probe,
)
from agent.probes.base import CommandTimeout, ProbeContext
from agent.report import AntivirusProduct, AntivirusSection
from tests.probekit import (
    FakeRunner,
    ForbiddenRunner,
    ctx_for,
    deny,
    make_root,
    result,
    set_mtime,
    write,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "antivirus"
CLAMD_CONF = (FIXTURES / "etc/clamav/clamd.conf").read_text()
FRESHCLAM_CONF = (FIXTURES / "etc/clamav/freshclam.conf").read_text()
CLAMD_LOG = (FIXTURES / "logs/clamd.log").read_text()
CLAMSCAN_LOG = (FIXTURES / "logs/clamscan.log").read_text()
MDATP_HEALTH = (FIXTURES / "mdatp/health.json").read_text()

DAILY_FIXTURE_BUILT = datetime(2026, 11, 20, 9, 27, tzinfo=UTC)  # stime 1795166820
# Newest scan result in the recorded clamd log ("/tmp/clamrec/scan/clean.txt: OK"); the
# later "--- Stopped at" line (13:13:55) is housekeeping, not a scan.
CLAMD_LAST_SCAN = datetime(2026, 11, 23, 13, 13, 54, tzinfo=UTC)
CLAMSCAN_END = datetime(2026, 11, 23, 13, 13, 41, tzinfo=UTC)


def cvd_header(
    version: int, built: datetime, *, stime: bool = True, builder: str = "raynman"
) -> bytes:
    """A ClamAV database header built from the documented layout (see fixtures README).

    ``ClamAV-VDB:<time>:<version>:<sigs>:<flevel>:<md5>:<dsig>:<builder>:<stime>``,
    ``<time>`` as strftime("%d %b %Y %H-%M %z"), padded with spaces to 512 bytes and
    followed by the gzip body.  Without ``stime`` the header ends after ``<builder>``,
    like databases built by old sigtool versions.
    """
    local = built.astimezone(timezone(timedelta(hours=-5)))
    body = gzip.compress(b"daily.info\0", mtime=0)
    fields = [
        "ClamAV-VDB",
        local.strftime("%d %b %Y %H-%M %z"),
        str(version),
        "2081234",
        "90",
        hashlib.md5(body).hexdigest(),
        "FixtureSignatureNotARealDsig",
        builder,
    ]
    if stime:
        fields.append(str(int(built.timestamp())))
    return ":".join(fields).encode().ljust(512, b" ") + body


def clamav_root(
    tmp_path: Path,
    *,
    daily: bytes | None = None,
    on_access: bool = False,
    db_dir: str = "/var/lib/clamav",
) -> Path:
    """A Debian-like ClamAV install: binaries, the recorded configs, databases, clamd log."""
    for binary in ("/usr/bin/clamscan", "/usr/bin/freshclam", "/usr/sbin/clamd"):
        write(tmp_path, binary, "\x7fELF")
    fresh = FRESHCLAM_CONF
    if db_dir != "/var/lib/clamav":
        fresh = fresh.replace("DatabaseDirectory /var/lib/clamav", f"DatabaseDirectory {db_dir}")
    write(tmp_path, "/etc/clamav/freshclam.conf", fresh)
    clamd = CLAMD_CONF + ("OnAccessIncludePath /home\n" if on_access else "")
    write(tmp_path, "/etc/clamav/clamd.conf", clamd)
    if daily is None:
        shutil.copy(FIXTURES / "clamav-db/daily.cvd", write(tmp_path, f"{db_dir}/daily.cvd"))
    else:
        write(tmp_path, f"{db_dir}/daily.cvd", daily)
    shutil.copy(FIXTURES / "clamav-db/main.cvd", write(tmp_path, f"{db_dir}/main.cvd"))
    shutil.copy(FIXTURES / "clamav-db/bytecode.cvd", write(tmp_path, f"{db_dir}/bytecode.cvd"))
    write(tmp_path, "/var/log/clamav/clamav.log", CLAMD_LOG)
    return tmp_path


def offline(root: Path) -> ProbeContext:
    """An alternate root: not live and no process list at all (running state unknown)."""
    return ProbeContext(root=root, runner=ForbiddenRunner(), live=False)


def only(section: AntivirusSection, name: str) -> AntivirusProduct:
    matches = [p for p in section.products if p.name == name]
    assert len(matches) == 1, section.products
    return matches[0]


# --- parsers --------------------------------------------------------------------


def test_parse_cvd_header_fixture() -> None:
    header = parse_cvd_header((FIXTURES / "clamav-db/daily.cvd").read_bytes()[:512])
    assert header is not None
    assert header.version == 28195
    assert header.built_at == DAILY_FIXTURE_BUILT
    assert header.built_from == "stime"
    main = parse_cvd_header((FIXTURES / "clamav-db/main.cvd").read_bytes())
    assert main is not None and main.version == 62


def test_parse_cvd_header_without_stime_uses_time_field() -> None:
    built = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    header = parse_cvd_header(cvd_header(26000, built, stime=False))
    assert header is not None
    assert header.built_from == "time"
    assert header.built_at == built  # "-0500" offset applied back to UTC


def test_parse_cvd_header_rejects_other_data() -> None:
    assert parse_cvd_header(b"\x1f\x8b\x08\x00garbage") is None
    assert parse_cvd_header(b"") is None
    broken = parse_cvd_header(b"ClamAV-VDB:not a date:27000:1:90:x:y:z:")
    assert broken is not None and broken.built_at is None and broken.version == 27000


def test_parse_clamav_scan_logs_recorded() -> None:
    assert parse_clamav_scan_log(CLAMD_LOG, UTC) == CLAMD_LAST_SCAN
    assert parse_clamav_scan_log(CLAMSCAN_LOG, UTC) == CLAMSCAN_END
    hcm = timezone(timedelta(hours=7))
    assert parse_clamav_scan_log(CLAMSCAN_LOG, hcm) == CLAMSCAN_END.replace(tzinfo=hcm)
    housekeeping = "\n".join(
        line for line in CLAMD_LOG.splitlines() if "FOUND" not in line and ": OK" not in line
    )
    assert parse_clamav_scan_log(housekeeping, UTC) is None


def test_parse_clamav_conf_recorded() -> None:
    conf = parse_clamav_conf(CLAMD_CONF)
    assert conf["LogFile"] == ["/var/log/clamav/clamav.log"]
    assert "OnAccessIncludePath" not in conf
    assert parse_clamav_conf(FRESHCLAM_CONF)["DatabaseMirror"] == [
        "db.local.clamav.net",
        "database.clamav.net",
    ]


def test_parse_mdatp_health() -> None:
    facts = parse_mdatp_health(MDATP_HEALTH)
    assert facts["realtime"] is True
    assert facts["signature_version"] == "1.421.1234.0"
    assert facts["signature_updated_at"] == DAILY_FIXTURE_BUILT
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    plain = parse_mdatp_health(
        '{"real_time_protection_enabled": false, "definitions_updated_minutes_ago": 90}', now
    )
    assert plain["realtime"] is False
    assert plain["signature_updated_at"] == now - timedelta(minutes=90)


# --- ClamAV ---------------------------------------------------------------------


def test_clamav_healthy(tmp_path: Path) -> None:
    built = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    root = clamav_root(tmp_path, daily=cvd_header(28196, built), on_access=True)
    section = probe(ctx_for(root, processes={"clamd", "freshclam", "clamonacc", "sshd"}))
    assert section.status == "ok"
    clam = only(section, "ClamAV")
    assert clam.installed is True
    assert clam.running is True
    assert clam.updater_running is True
    assert clam.realtime is True
    assert clam.signature_version == "28196"
    assert clam.signature_updated_at == built
    assert clam.last_scan_at == CLAMD_LAST_SCAN
    assert "binary /usr/bin/clamscan" in clam.evidence
    assert "process clamd" in clam.evidence
    assert any(e.startswith("daily.cvd version 28196 built ") for e in clam.evidence)
    assert any(e.startswith("main.cvd version 62 ") for e in clam.evidence)


def test_clamav_stale_and_stopped(tmp_path: Path) -> None:
    stale = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    root = clamav_root(tmp_path, daily=cvd_header(26000, stale))
    section = probe(ctx_for(root, processes={"sshd"}))
    clam = only(section, "ClamAV")
    assert clam.signature_updated_at == stale
    assert clam.signature_version == "26000"
    assert clam.running is False
    assert clam.updater_running is False
    assert clam.realtime is False


def test_clamav_on_access_configured_but_client_not_running(tmp_path: Path) -> None:
    root = clamav_root(tmp_path, on_access=True)
    section = probe(ctx_for(root, processes={"clamd", "freshclam"}))
    clam = only(section, "ClamAV")
    assert clam.realtime is False
    assert any("clamonacc is not running" in n for n in section.notes)


def test_clamav_newer_cld_wins_and_custom_database_directory(tmp_path: Path) -> None:
    root = clamav_root(tmp_path, db_dir="/srv/clamav")
    cld_built = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    write(root, "/srv/clamav/daily.cld", cvd_header(28250, cld_built))
    clam = only(probe(ctx_for(root, processes={"clamd"})), "ClamAV")
    assert clam.signature_version == "28250"
    assert clam.signature_updated_at == cld_built
    assert any(e.startswith("daily.cld version 28250") for e in clam.evidence)


def test_clamav_stale_leftover_cld_does_not_win(tmp_path: Path) -> None:
    root = clamav_root(tmp_path)
    write(root, "/var/lib/clamav/daily.cld", cvd_header(27000, datetime(2025, 1, 1, tzinfo=UTC)))
    clam = only(probe(ctx_for(root, processes={"clamd"})), "ClamAV")
    assert clam.signature_version == "28195"
    assert clam.signature_updated_at == DAILY_FIXTURE_BUILT


def test_clamav_unpacked_daily_directory(tmp_path: Path) -> None:
    root = clamav_root(tmp_path)
    (root / "var/lib/clamav/daily.cvd").unlink()
    built = datetime(2026, 11, 21, 1, 2, 3, tzinfo=UTC)
    info = cvd_header(28200, built)[:512].rstrip() + b"\n"
    write(root, "/var/lib/clamav/daily.inc/daily.info", info + b"daily.ndb:123\n")
    clam = only(probe(ctx_for(root, processes={"clamd"})), "ClamAV")
    assert clam.signature_version == "28200"
    assert clam.signature_updated_at == built


def test_clamav_header_without_build_time_falls_back_to_mtime(tmp_path: Path) -> None:
    root = clamav_root(tmp_path, daily=b"ClamAV-VDB:garbled:27999:1:90:x:y:z:".ljust(512))
    mtime = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    set_mtime(root / "var/lib/clamav/daily.cvd", mtime)
    section = probe(ctx_for(root, processes={"clamd"}))
    clam = only(section, "ClamAV")
    assert clam.signature_version == "27999"
    assert clam.signature_updated_at == mtime
    assert any("using file mtime" in n for n in section.notes)


def test_clamav_without_databases(tmp_path: Path) -> None:
    root = clamav_root(tmp_path)
    for db in (root / "var/lib/clamav").iterdir():
        db.unlink()
    section = probe(ctx_for(root, processes={"clamd"}))
    clam = only(section, "ClamAV")
    assert clam.signature_updated_at is None and clam.signature_version is None
    assert any("no daily signature database" in n for n in section.notes)


def test_clamav_not_root_unreadable_config(tmp_path: Path) -> None:
    root = clamav_root(tmp_path, db_dir="/srv/clamav")
    ctx = ctx_for(root, FakeRunner(), is_root=False, processes={"clamd"})
    section = probe(deny(ctx, "/etc/clamav/freshclam.conf", "/etc/clamav/clamd.conf"))
    assert section.status == "ok"
    notes = " | ".join(section.notes)
    assert "/etc/clamav/freshclam.conf exists but is not readable" in notes
    assert "not running as root" in notes
    clam = only(section, "ClamAV")
    # DatabaseDirectory unknown: the default /var/lib/clamav holds nothing here
    assert clam.signature_updated_at is None
    assert clam.realtime is None  # clamd.conf exists but could not be read


def test_clamav_not_live_root(tmp_path: Path) -> None:
    root = clamav_root(tmp_path)
    section = probe(offline(root))
    assert section.status == "ok"
    clam = only(section, "ClamAV")
    assert clam.running is None and clam.updater_running is None and clam.realtime is None
    assert clam.signature_updated_at == DAILY_FIXTURE_BUILT  # file facts still read
    assert any("not live" in n for n in section.notes)


# --- other products and section status ------------------------------------------


def test_nothing_installed_is_ok_and_empty(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/usr/bin"])
    section = probe(ctx_for(root, processes={"sshd", "systemd"}))
    assert section.status == "ok"
    assert section.products == []


def test_empty_offline_root_is_unknown(tmp_path: Path) -> None:
    section = probe(offline(tmp_path))
    assert section.status == "unknown"
    assert "no /usr" in (section.reason or "")


def test_product_detected_by_process_alone(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/usr"])
    falcon = only(probe(ctx_for(root, processes={"falcon-sensor"})), "CrowdStrike Falcon")
    assert falcon.installed is True and falcon.running is True
    assert falcon.evidence == ["process falcon-sensor"]


def test_generic_process_names_need_the_install_path(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/usr"])
    assert probe(ctx_for(root, processes={"scand", "startd"})).products == []
    (root / "opt/eset/eea").mkdir(parents=True)
    eset = only(probe(ctx_for(root, processes={"scand", "startd"})), "ESET")
    assert eset.running is True
    assert eset.evidence == ["path /opt/eset/eea", "process startd", "process scand"]
    stopped = only(probe(ctx_for(root, processes={"sshd"})), "ESET")
    assert stopped.running is False


def test_product_table_is_data() -> None:
    names = [p.name for p in PRODUCTS]
    assert len(names) == len(set(names))
    assert all(p.paths or p.daemons for p in PRODUCTS)


def test_defender_health(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/opt/microsoft/mdatp"])
    runner = FakeRunner({"mdatp": result(MDATP_HEALTH)})
    section = probe(ctx_for(root, runner, processes={"wdavdaemon"}))
    mde = only(section, "Microsoft Defender for Endpoint")
    assert runner.argvs == [("mdatp", "health", "--output", "json")]
    assert mde.running is True
    assert mde.realtime is True
    assert mde.signature_version == "1.421.1234.0"
    assert mde.signature_updated_at == DAILY_FIXTURE_BUILT
    assert "definitions_status up_to_date" in mde.evidence


def test_defender_health_tool_missing_or_timeout(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/opt/microsoft/mdatp"])
    section = probe(ctx_for(root, FakeRunner(), processes={"wdavdaemon"}))
    mde = only(section, "Microsoft Defender for Endpoint")
    assert mde.realtime is None
    assert any("'mdatp' is not installed" in n for n in section.notes)

    timeout = FakeRunner({"mdatp": CommandTimeout(["mdatp", "health"], 15)})
    section = probe(ctx_for(root, timeout, processes={"wdavdaemon"}))
    assert only(section, "Microsoft Defender for Endpoint").signature_updated_at is None
    assert any("did not finish" in n for n in section.notes)

    broken = FakeRunner({"mdatp": result("not json")})
    section = probe(ctx_for(root, broken, processes={"wdavdaemon"}))
    assert any("not understood" in n for n in section.notes)


def test_live_machine_returns_a_valid_section() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, AntivirusSection)
    assert section.status in ("ok", "unknown")
    AntivirusSection.model_validate(section.model_dump())
