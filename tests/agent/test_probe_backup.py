"""Tests of the backup probe: tools, schedules (cron, systemd timers) and freshness."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.probes.backup import (
    cron_commands,
    load_agent_config,
    newest_file,
    parse_borg_list,
    parse_restic_snapshots,
    parse_rfc3339,
    parse_rsnapshot_root,
    probe,
    tools_in,
)
from agent.probes.base import CommandRunner, CommandTimeout, ProbeContext
from agent.report import BackupSection
from tests.probekit import (
    FakeRunner,
    ctx_for,
    fixture_text,
    make_root,
    result,
    set_mtime,
    write,
)

NOW = datetime.now(UTC).replace(microsecond=0)
RESTIC_NEWEST = datetime(2026, 11, 23, 13, 34, 42, 18602, tzinfo=UTC)
BORG_NEWEST_LOCAL = datetime(2026, 11, 23, 13, 34, 54)  # as printed, zone-less
CONFIG = "/etc/posture-agent/backup.toml"
RESTIC_CMD = (
    "restic -r /srv/restic --password-file /root/.restic-pass --no-lock --no-cache "
    "snapshots --json --latest 1"
)
RESTIC_TOML = '[[restic]]\nrepository = "/srv/restic"\npassword_file = "/root/.restic-pass"\n'
BORG_TOML = '[[borg]]\nrepository = "/srv/borg"\npasscommand = "cat /root/.borg-pass"\n'


def rsnapshot_root(tmp_path: Path, cron: str | None = None) -> Path:
    """A host with the Debian rsnapshot package, its cron file optionally replaced."""
    files = {
        "/etc/rsnapshot.conf": fixture_text("backup", "etc", "rsnapshot.conf"),
        "/etc/cron.d/rsnapshot": cron or fixture_text("backup", "etc", "cron.d", "rsnapshot"),
    }
    return make_root(tmp_path, files, bins=["/usr/bin/rsnapshot", "/usr/bin/rsync"])


def snapshot(root: Path, name: str, when: datetime) -> None:
    path = root / "var/cache/rsnapshot" / name
    path.mkdir(parents=True)
    set_mtime(path, when)


# --- parsers ------------------------------------------------------------------------


def test_parse_recorded_restic_outputs() -> None:
    assert parse_restic_snapshots(fixture_text("backup", "restic-snapshots-latest.json")) == (
        RESTIC_NEWEST
    )
    assert parse_restic_snapshots(fixture_text("backup", "restic-snapshots-all.json")) == (
        RESTIC_NEWEST
    )
    assert parse_restic_snapshots(fixture_text("backup", "restic-snapshots-empty.json")) is None
    with pytest.raises(ValueError):
        parse_restic_snapshots('{"snapshots": []}')


def test_parse_rfc3339_offsets_and_nanoseconds() -> None:
    got = parse_rfc3339("2026-11-23T20:34:42.018602925+07:00")
    assert got == RESTIC_NEWEST
    with pytest.raises(ValueError):
        parse_rfc3339("2026-11-23T20:34:42")


def test_parse_recorded_borg_outputs() -> None:
    hcm = ZoneInfo("Asia/Ho_Chi_Minh")
    newest, encrypted = parse_borg_list(fixture_text("backup", "borg-list-repokey.json"), hcm)
    assert newest == BORG_NEWEST_LOCAL.replace(tzinfo=hcm)
    assert newest.astimezone(UTC) == datetime(2026, 11, 23, 6, 34, 54, tzinfo=UTC)
    assert encrypted is True
    newest, encrypted = parse_borg_list(fixture_text("backup", "borg-list-none.json"), UTC)
    assert newest == datetime(2026, 11, 23, 13, 34, 56, tzinfo=UTC)
    assert encrypted is False
    assert parse_borg_list('{"archives": []}', UTC) == (None, None)
    assert parse_borg_list('{"archives": [], "encryption": {"mode": "authenticated"}}', UTC)[
        1
    ] is False


def test_rsnapshot_root_of_the_debian_default() -> None:
    conf = fixture_text("backup", "etc", "rsnapshot.conf")
    assert parse_rsnapshot_root(conf) == "/var/cache/rsnapshot/"


def test_debian_rsnapshot_cron_file_schedules_nothing() -> None:
    assert cron_commands(fixture_text("backup", "etc", "cron.d", "rsnapshot")) == []


def test_cron_commands_skip_variables_reboot_and_comments() -> None:
    text = (
        "SHELL=/bin/sh\nMAILTO=root\n# 0 1 * * * root restic backup /\n"
        "@reboot root /usr/bin/borg create ::boot /etc\n"
        "30 2 * * * root /usr/bin/rsnapshot daily\n"
        "@weekly root duply srv backup\n"
    )
    assert cron_commands(text) == ["/usr/bin/rsnapshot daily", "duply srv backup"]
    assert cron_commands("15 3 * * 1 restic backup /srv\n", user_field=False) == [
        "restic backup /srv"
    ]


@pytest.mark.parametrize(
    ("text", "tools"),
    [
        ("/usr/bin/rsnapshot alpha", {"rsnapshot"}),
        ("/usr/bin/rsnapshot-diff a b", set()),
        ("borgmatic --verbosity -1", {"borg"}),
        ("cd /srv && rsync -a --delete data/ nas:/backup/", {"rsync"}),
        ("restic-backup.sh", set()),
        ("echo borg-like", set()),
        ("RESTIC_PASSWORD_FILE=/root/p restic backup /srv", {"restic"}),
    ],
)
def test_tools_in(text: str, tools: set[str]) -> None:
    assert tools_in(text) == tools


def test_agent_config_shape() -> None:
    config = load_agent_config(RESTIC_TOML + BORG_TOML)
    assert config["restic"][0]["password_file"] == "/root/.restic-pass"
    assert config["borg"][0]["repository"] == "/srv/borg"
    assert config["path"] == []
    with pytest.raises(ValueError):
        load_agent_config('restic = "x"\n')


def test_newest_file_is_bounded(tmp_path: Path) -> None:
    for i in range(20):
        set_mtime(write(tmp_path, f"/d{i}/b{i}.tar.gz", "x"), NOW - timedelta(days=i))
    path, when, truncated = newest_file(tmp_path, "*.tar.gz")
    assert path is not None and path.name == "b0.tar.gz" and when == NOW
    assert truncated is False
    assert newest_file(tmp_path, "*.tar.gz", limit=5)[2] is True


# --- the probe ----------------------------------------------------------------------------


def test_nothing_at_all(tmp_path: Path) -> None:
    section = probe(ctx_for(make_root(tmp_path, {"/etc/hostname": "srv-01\n"})))
    assert section.status == "ok"
    assert section.tools_installed == [] and section.evidence == []
    assert section.newest_backup_at is None


def test_rsnapshot_scheduled_and_fresh(tmp_path: Path) -> None:
    cron = "# m h dom mon dow user command\n30 3 * * * root /usr/bin/rsnapshot alpha\n"
    root = rsnapshot_root(tmp_path, cron)
    snapshot(root, "alpha.0", NOW - timedelta(hours=6))
    snapshot(root, "alpha.1", NOW - timedelta(days=1, hours=6))
    snapshot(root, "beta.0", NOW - timedelta(days=3))
    section = probe(ctx_for(root))
    assert section.tools_installed == ["rsnapshot"]  # rsync runs under rsnapshot, not scheduled
    (evidence,) = section.evidence
    assert evidence.tool == "rsnapshot" and evidence.scheduled is True
    assert evidence.location == "/var/cache/rsnapshot/"
    assert evidence.newest_at == NOW - timedelta(hours=6)
    assert evidence.detail == "newest: alpha.0"
    assert evidence.encrypted is False
    assert section.newest_backup_at == NOW - timedelta(hours=6)


def test_debian_default_rsnapshot_is_not_scheduled_and_has_no_snapshot(tmp_path: Path) -> None:
    section = probe(ctx_for(rsnapshot_root(tmp_path)))
    assert section.tools_installed == ["rsnapshot"]  # rsync: installed but not scheduled
    (evidence,) = section.evidence
    assert evidence.scheduled is False
    assert evidence.newest_at is None
    assert evidence.detail == "/var/cache/rsnapshot/ does not exist"
    assert section.newest_backup_at is None


def test_stale_rsnapshot(tmp_path: Path) -> None:
    root = rsnapshot_root(tmp_path, "0 3 * * 1 root /usr/bin/rsnapshot gamma\n")
    snapshot(root, "gamma.0", NOW - timedelta(days=40))
    section = probe(ctx_for(root))
    assert section.newest_backup_at == NOW - timedelta(days=40)
    assert section.evidence[0].scheduled is True


def test_restic_via_agent_config_and_enabled_timer(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {
            CONFIG: RESTIC_TOML,
            "/root/.restic-pass": "secret\n",
            "/usr/local/bin/backup.sh": "#!/bin/sh\nset -e\nrestic backup --one-file-system /srv\n",
            "/etc/systemd/system/backup.timer": "[Timer]\nOnCalendar=daily\n",
            "/etc/systemd/system/backup.service": (
                "[Service]\nType=oneshot\nExecStart=/usr/local/bin/backup.sh\n"
            ),
            "/etc/systemd/system/timers.target.wants/backup.timer": "",
        },
        bins=["/usr/bin/restic"],
    )
    latest = fixture_text("backup", "restic-snapshots-latest.json")
    runner = FakeRunner({RESTIC_CMD: result(latest)})
    section = probe(ctx_for(root, runner))
    assert section.tools_installed == ["restic"]
    (evidence,) = section.evidence
    assert (evidence.tool, evidence.location) == ("restic", "/srv/restic")
    assert evidence.newest_at == RESTIC_NEWEST
    assert evidence.scheduled is True and evidence.encrypted is True
    assert section.newest_backup_at == RESTIC_NEWEST
    assert runner.calls[0][1] is not None  # always with a timeout


def test_restic_wrong_password_and_empty_repository(tmp_path: Path) -> None:
    toml = RESTIC_TOML + RESTIC_TOML.replace("/srv/restic", "/srv/empty")
    files = {CONFIG: toml, "/root/.restic-pass": "x\n"}
    root = make_root(tmp_path, files, bins=["/usr/bin/restic"])
    runner = FakeRunner(
        {
            RESTIC_CMD: result(
                "", returncode=1, stderr=fixture_text("backup", "restic-wrong-password.stderr")
            ),
            RESTIC_CMD.replace("/srv/restic", "/srv/empty"): result(
                fixture_text("backup", "restic-snapshots-empty.json")
            ),
        }
    )
    section = probe(ctx_for(root, runner))
    assert [e.detail for e in section.evidence] == [
        "exit 1: Fatal: wrong password or no key found",
        "the repository has no snapshot",
    ]
    assert section.newest_backup_at is None
    assert all(e.scheduled is False for e in section.evidence)


def test_restic_credentials_are_never_guessed(tmp_path: Path) -> None:
    toml = '[[restic]]\nrepository = "/srv/restic"\n' + RESTIC_TOML.replace(
        "/srv/restic", "/srv/other"
    )
    root = make_root(tmp_path, {CONFIG: toml}, bins=["/usr/bin/restic"])
    runner = FakeRunner()
    section = probe(ctx_for(root, runner))
    assert [e.detail for e in section.evidence] == [
        "no password_file or password_command configured: not queried",
        "password file /root/.restic-pass missing or not readable",
    ]
    assert runner.calls == []


def test_restic_timeout(tmp_path: Path) -> None:
    root = make_root(
        tmp_path, {CONFIG: RESTIC_TOML, "/root/.restic-pass": "x\n"}, bins=["/usr/bin/restic"]
    )
    runner = FakeRunner({RESTIC_CMD: CommandTimeout(RESTIC_CMD.split(), 12)})
    section = probe(ctx_for(root, runner))
    (evidence,) = section.evidence
    assert evidence.newest_at is None and "did not finish within 12s" in (evidence.detail or "")
    assert any("did not finish" in n for n in section.notes)


def test_restic_configured_but_not_installed(tmp_path: Path) -> None:
    root = make_root(tmp_path, {CONFIG: RESTIC_TOML, "/root/.restic-pass": "x\n"})
    section = probe(ctx_for(root))  # ForbiddenRunner: nothing may run
    assert section.tools_installed == []
    assert section.evidence[0].detail == "restic is not installed"


def test_borg_with_passcommand_in_local_time(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {CONFIG: BORG_TOML, "/etc/timezone": "Asia/Ho_Chi_Minh\n"},
        bins=["/usr/bin/borg"],
    )
    runner = FakeRunner({"env": result(fixture_text("backup", "borg-list-repokey.json"))})
    section = probe(ctx_for(root, runner))
    (evidence,) = section.evidence
    assert evidence.newest_at == datetime(2026, 11, 23, 6, 34, 54, tzinfo=UTC)
    assert evidence.encrypted is True
    argv = runner.calls[0][0]
    assert "BORG_PASSCOMMAND=cat /root/.borg-pass" in argv
    assert argv[0] == "env"
    assert argv[-7:] == ("borg", "list", "--json", "--last", "1", "--bypass-lock", "/srv/borg")


def test_borg_without_passcommand_fails_fast_instead_of_prompting(tmp_path: Path) -> None:
    toml = '[[borg]]\nrepository = "/srv/borg"\n'
    root = make_root(tmp_path, {CONFIG: toml}, bins=["/usr/bin/borg"])
    stderr = fixture_text("backup", "borg-passcommand-false.stderr")
    runner = FakeRunner({"env": result("", returncode=2, stderr=stderr)})
    section = probe(ctx_for(root, runner))
    assert "BORG_PASSCOMMAND=false" in runner.calls[0][0]
    (evidence,) = section.evidence
    assert evidence.newest_at is None
    assert evidence.detail is not None and evidence.detail.startswith("exit 2: passcommand")


def test_path_location_with_encrypted_archives(tmp_path: Path) -> None:
    toml = '[[path]]\nlocation = "/srv/backups"\npattern = "*.tar.gz*"\n'
    root = make_root(tmp_path, {CONFIG: toml})
    set_mtime(write(root, "/srv/backups/2026/db-1.tar.gz.gpg", "x"), NOW - timedelta(days=9))
    set_mtime(write(root, "/srv/backups/2026/db-2.tar.gz.gpg", "x"), NOW - timedelta(days=2))
    set_mtime(write(root, "/srv/backups/notes.txt", "x"), NOW)  # does not match
    section = probe(ctx_for(root))
    (evidence,) = section.evidence
    assert evidence.tool == "path" and evidence.location == "/srv/backups"
    assert evidence.newest_at == NOW - timedelta(days=2)
    assert evidence.encrypted is True and evidence.scheduled is None
    assert section.newest_backup_at == NOW - timedelta(days=2)


def test_path_location_missing(tmp_path: Path) -> None:
    root = make_root(tmp_path, {CONFIG: '[[path]]\nlocation = "/mnt/nas/backups"\n'})
    (evidence,) = probe(ctx_for(root)).evidence
    assert evidence.detail == "location not found" and evidence.newest_at is None


def test_broken_agent_config_is_noted(tmp_path: Path) -> None:
    root = make_root(tmp_path, {CONFIG: "[[restic]\nrepository = \n"})
    section = probe(ctx_for(root))
    assert section.status == "ok"
    assert any(n.startswith(f"{CONFIG} not understood") for n in section.notes)


def test_scheduled_tool_without_freshness_source(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {
            "/etc/cron.d/duply": "MAILTO=root\n0 1 * * * root /usr/bin/duply srv backup\n",
            "/etc/cron.daily/offsite": "#!/bin/sh\n# to the NAS\nrsync -a /srv/ nas:/b/\n",
        },
        bins=["/usr/bin/duplicity", "/usr/bin/rsync"],
    )
    section = probe(ctx_for(root))
    assert section.tools_installed == ["duplicity", "rsync"]
    assert [(e.tool, e.scheduled, e.location, e.newest_at) for e in section.evidence] == [
        ("duplicity", True, "/etc/cron.d/duply", None),
        ("rsync", True, "/etc/cron.daily/offsite", None),
    ]
    assert section.newest_backup_at is None


def test_script_called_from_cron_is_read_one_level(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {
            "/etc/crontab": "17 2 * * * root /usr/local/sbin/nightly >/dev/null 2>&1\n",
            "/usr/local/sbin/nightly": "#!/bin/bash\nborg create ::{now} /srv\n",
        },
        bins=["/usr/bin/borg"],
    )
    (evidence,) = probe(ctx_for(root)).evidence
    assert (evidence.tool, evidence.scheduled, evidence.location) == ("borg", True, "/etc/crontab")


def test_timer_not_enabled_does_not_count(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {
            "/etc/systemd/system/restic.timer": "[Timer]\nOnCalendar=daily\n",
            "/etc/systemd/system/restic.service": (
                "[Service]\nExecStart=/usr/bin/restic backup /\n"
            ),
        },
        bins=["/usr/bin/restic"],
    )
    section = probe(ctx_for(root))
    assert section.evidence == []
    assert "restic.timer runs restic but is not enabled" in section.notes


def test_user_crontab_as_root(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {"/var/spool/cron/crontabs/backup": "0 4 * * * /usr/bin/restic backup /home\n"},
        bins=["/usr/bin/restic"],
    )
    (evidence,) = probe(ctx_for(root)).evidence
    assert evidence.scheduled is True
    assert evidence.location == "/var/spool/cron/crontabs/backup"


def test_non_root_cannot_say_not_scheduled(tmp_path: Path) -> None:
    root = rsnapshot_root(tmp_path)
    (root / "var/spool/cron/crontabs").mkdir(parents=True)
    section = probe(ctx_for(root, is_root=False))
    assert section.evidence[0].scheduled is None  # a user crontab might schedule it
    assert "not root: user crontabs in /var/spool/cron/crontabs not read" in section.notes


def test_not_live_reads_files_but_queries_no_repository(tmp_path: Path) -> None:
    toml = RESTIC_TOML + '[[path]]\nlocation = "/srv/backups"\n'
    root = make_root(
        tmp_path,
        {
            CONFIG: toml,
            "/root/.restic-pass": "x\n",
            "/etc/cron.d/restic": "0 1 * * * root restic backup /\n",
        },
        bins=["/usr/bin/restic"],
    )
    set_mtime(write(root, "/srv/backups/etc.tar", "x"), NOW - timedelta(days=1))
    section = probe(ctx_for(root, live=False))  # ForbiddenRunner: nothing may run
    restic, path = section.evidence
    assert restic.detail == "not queried (not a live host)" and restic.scheduled is True
    assert path.newest_at == NOW - timedelta(days=1)
    assert "alternate root: restic/borg repositories were not queried" in section.notes


def test_not_live_empty_image_is_unknown(tmp_path: Path) -> None:
    section = probe(ctx_for(tmp_path, live=False))
    assert section.status == "unknown"
    assert section.reason == "the alternate root has no /etc to read"


# --- real restic ---------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("restic") is None, reason="restic is not installed (apt-get install restic)"
)
def test_real_restic_repository(tmp_path: Path) -> None:
    """Create a repository with the real restic and let the probe read it back."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello\n")
    password = tmp_path / "pass"
    password.write_text("not-a-real-secret\n")
    repo = tmp_path / "repo"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C"}
    for args in (["init"], ["backup", "--host", "srv-01", str(data)]):
        subprocess.run(
            ["restic", "-r", str(repo), "--password-file", str(password), "--no-cache", *args],
            check=True, capture_output=True, env=env, timeout=120,
        )  # fmt: skip
    before = datetime.now(UTC)
    # The probe reads its configuration under a fake root but runs restic on this host:
    # mirror the host's /usr (for the binary) and the directory holding tmp_path.
    toml = f'[[restic]]\nrepository = "{repo}"\npassword_file = "{password}"\n'
    root = make_root(tmp_path, {CONFIG: toml})
    for top in ("usr", tmp_path.parts[1]):
        (root / top).symlink_to(f"/{top}")
    section = probe(ProbeContext(root=root, runner=CommandRunner(), is_root=True, live=True))
    (evidence,) = [e for e in section.evidence if e.tool == "restic"]
    assert evidence.detail == "latest snapshot", evidence.detail
    assert evidence.newest_at is not None
    assert before - timedelta(minutes=10) < evidence.newest_at <= before + timedelta(minutes=1)
    assert "restic" in section.tools_installed


@pytest.mark.skipif(
    shutil.which("borg") is None, reason="borg is not installed (apt-get install borgbackup)"
)
def test_real_borg_repository(tmp_path: Path) -> None:
    """Create a repokey repository with the real borg and let the probe list it."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello\n")
    password = tmp_path / "pass"
    password.write_text("not-a-real-secret\n")
    repo = tmp_path / "repo"
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C",
        "BORG_PASSCOMMAND": f"cat {password}",
    }  # fmt: skip
    subprocess.run(["borg", "init", "--encryption=repokey", str(repo)],
                   check=True, capture_output=True, env=env, timeout=120)  # fmt: skip
    subprocess.run(["borg", "create", f"{repo}::first", str(data)],
                   check=True, capture_output=True, env=env, timeout=120)  # fmt: skip
    before = datetime.now(UTC)
    toml = f'[[borg]]\nrepository = "{repo}"\npasscommand = "cat {password}"\n'
    root = make_root(tmp_path, {CONFIG: toml})
    for top in ("usr", tmp_path.parts[1]):
        (root / top).symlink_to(f"/{top}")
    section = probe(ProbeContext(root=root, runner=CommandRunner(), is_root=True, live=True))
    (evidence,) = [e for e in section.evidence if e.tool == "borg"]
    assert evidence.detail == "latest archive", evidence.detail
    assert evidence.encrypted is True
    assert evidence.newest_at is not None
    # borg prints local time without a zone; the fake root has no /etc/localtime: UTC
    if datetime.now().astimezone().utcoffset() == timedelta(0):
        assert before - timedelta(minutes=10) < evidence.newest_at <= before + timedelta(minutes=1)


# --- this machine ---------------------------------------------------------------------------


def test_probe_live_machine() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, BackupSection)
    BackupSection.model_validate(section.model_dump())
    assert section.status == "ok"
