"""Tests of the patch-level probe (apt, dnf/yum, zypper)."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.probes.base import CommandResult, CommandTimeout, ProbeContext, ToolMissing
from agent.probes.patches import (
    detect_manager,
    local_timezone,
    parse_apt_config,
    parse_apt_history,
    parse_apt_simulation,
    parse_dnf_automatic,
    parse_dnf_check_update,
    parse_dnf_updateinfo,
    parse_zypp_history,
    parse_zypper_security_patches,
    parse_zypper_updates,
    probe,
)
from agent.report import PatchesSection
from tests.probekit import FakeRunner, deny, result, set_mtime, write

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "patches"
APT_SIM = (FIXTURES / "apt-get-s-dist-upgrade.txt").read_text()
APT_SIM_NONE = (FIXTURES / "apt-get-s-upgrade-none.txt").read_text()
APT_HISTORY = (FIXTURES / "history.log").read_text()
DNF_CHECK = (FIXTURES / "dnf/check-update.txt").read_text()
DNF_SECURITY = (FIXTURES / "dnf/updateinfo-security.txt").read_text()
ZYPPER_UPDATES = (FIXTURES / "zypper/list-updates.xml").read_text()
ZYPPER_PATCHES = (FIXTURES / "zypper/list-patches-security.xml").read_text()

HCM = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7, no DST
# Newest Install/Upgrade entry of the recorded history.log (apt-get install clamdscan);
# the later "apt-get remove clamdscan" entry has only a Remove: line.
LAST_APT_INSTALL_LOCAL = datetime(2026, 11, 23, 13, 13, 48)


def apt_root(tmp_path: Path, auto: bool = True, reboot: bool = False) -> Path:
    """A Debian-like root: dpkg + apt-get, history, unattended-upgrades, Asia/Ho_Chi_Minh."""
    for tool in ("/usr/bin/dpkg", "/usr/bin/apt-get", "/usr/bin/unattended-upgrade"):
        write(tmp_path, tool, "#!/bin/sh\n")
    write(tmp_path, "/var/log/apt/history.log", APT_HISTORY)
    conf = tmp_path / "etc/apt/apt.conf.d"
    conf.mkdir(parents=True)
    for name in ("01autoremove", "70debconf", "docker-clean", "50unattended-upgrades"):
        shutil.copy(FIXTURES / "apt.conf.d" / name, conf / name)
    template = "20auto-upgrades" if auto else "20auto-upgrades-disabled"
    shutil.copy(FIXTURES / "apt.conf.d" / template, conf / "20auto-upgrades")
    write(tmp_path, "/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer")
    zone = write(tmp_path, "/usr/share/zoneinfo/Asia/Ho_Chi_Minh", _tzif("Asia/Ho_Chi_Minh"))
    (tmp_path / "etc/localtime").symlink_to("/usr/share/zoneinfo/Asia/Ho_Chi_Minh")
    assert zone.exists()
    stamp = write(tmp_path, "/var/lib/apt/periodic/update-success-stamp")
    set_mtime(stamp, datetime(2026, 11, 22, 6, 0, tzinfo=UTC))
    (tmp_path / "run").mkdir(exist_ok=True)
    if reboot:
        write(tmp_path, "/run/reboot-required", "*** System restart required ***\n")
    return tmp_path


def _tzif(name: str) -> bytes:
    for base in ("/usr/share/zoneinfo",):
        path = Path(base) / name
        if path.exists():
            return path.read_bytes()
    pytest.skip(f"no system tzdata for {name}")


def apt_runner(stdout: str = APT_SIM_NONE, returncode: int = 0) -> FakeRunner:
    return FakeRunner({"apt-get -s": result(stdout, returncode)})


# --- apt parsers ----------------------------------------------------------------


def test_parse_apt_simulation_recorded_bookworm_output() -> None:
    updates = parse_apt_simulation(APT_SIM)
    assert len(updates) == 136
    assert sum(u.security for u in updates) == 81
    by_name = {u.name: u for u in updates}
    ssl = by_name["libssl3"]
    assert (ssl.current_version, ssl.new_version) == ("3.0.19-1~deb12u2", "3.0.22-1~deb12u2")
    assert ssl.security is True
    assert ssl.origin == "Debian-Security:12/oldstable-security"
    bash = by_name["bash"]
    assert bash.security is False
    assert bash.origin == "Debian:12.15/oldstable"
    # two origins, one of them the security suite
    gcrypt = by_name["libgcrypt20"]
    assert gcrypt.security is True
    assert gcrypt.origin == "Debian:12.15/oldstable, Debian-Security:12/oldstable-security"
    # epoch in the version, trailing "[...]" dependency note ignored
    assert by_name["openssh-client"].new_version == "1:9.2p1-2+deb12u10"
    assert by_name["libpam-modules-bin"].current_version == "1.5.2-6+deb12u1"


def test_parse_apt_simulation_nothing_to_do() -> None:
    assert parse_apt_simulation(APT_SIM_NONE) == []


def test_parse_apt_simulation_new_package_and_ubuntu_origin() -> None:
    text = (
        "Inst linux-image-6.1.0-30-amd64 (6.1.124-1 Debian-Security:12/bookworm-security [amd64])\n"
        "Inst libssl3 [3.0.2-0ubuntu1.15] (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-updates, "
        "Ubuntu:22.04/jammy-security [amd64])\n"
        "Conf libssl3 (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-updates [amd64])\n"
    )
    new, ubuntu = parse_apt_simulation(text)
    assert new.current_version is None and new.security is True
    assert ubuntu.security is True and ubuntu.current_version == "3.0.2-0ubuntu1.15"


def test_parse_apt_history_recorded_log() -> None:
    assert parse_apt_history(APT_HISTORY, UTC) == LAST_APT_INSTALL_LOCAL.replace(tzinfo=UTC)
    in_hcm = parse_apt_history(APT_HISTORY, HCM)
    assert in_hcm is not None
    assert in_hcm.astimezone(UTC) == datetime(2026, 11, 23, 6, 13, 48, tzinfo=UTC)


def test_parse_apt_history_skips_failed_and_remove_only_entries() -> None:
    text = (
        "Start-Date: 2026-11-01  09:00:00\n"
        "Commandline: apt-get upgrade\n"
        "Upgrade: bash:amd64 (5.2.15-2+b7, 5.2.15-2+b8)\n"
        "End-Date: 2026-11-01  09:00:10\n"
        "\n"
        "Start-Date: 2026-11-05  09:00:00\n"
        "Commandline: apt-get upgrade\n"
        "Upgrade: libc6:amd64 (2.36-9+deb12u9, 2.36-9+deb12u10)\n"
        "Error: Sub-process /usr/bin/dpkg returned an error code (1)\n"
        "End-Date: 2026-11-05  09:00:30\n"
        "\n"
        "Start-Date: 2026-11-06  09:00:00\n"
        "Commandline: apt-get purge vim\n"
        "Purge: vim:amd64 (2:9.0.1378-2)\n"
        "End-Date: 2026-11-06  09:00:05\n"
    )
    assert parse_apt_history(text, UTC) == datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    assert parse_apt_history("", UTC) is None


def test_parse_apt_config_flat_nested_and_comments() -> None:
    real = (FIXTURES / "apt.conf.d/20auto-upgrades").read_text()
    assert parse_apt_config(real) == {
        "apt::periodic::update-package-lists": "1",
        "apt::periodic::unattended-upgrade": "1",
    }
    nested = (
        "// a comment\n"
        "/* block\n comment */\n"
        'APT {\n  Periodic {\n    Unattended-Upgrade "7"; // weekly\n  };\n};\n'
        'Acquire::http::Proxy "http://proxy:3128//x";\n'
        "#clear APT::Periodic\n"
    )
    options = parse_apt_config(nested)
    assert options["apt::periodic::unattended-upgrade"] == "7"
    assert options["acquire::http::proxy"] == "http://proxy:3128//x"
    # lists of the recorded 01autoremove do not leak as options
    lists = parse_apt_config((FIXTURES / "apt.conf.d/01autoremove").read_text())
    assert not any(k.startswith("apt::neverautoremove") for k in lists)


# --- apt probe ------------------------------------------------------------------


def test_apt_probe_healthy(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    runner = apt_runner(APT_SIM_NONE)
    section = probe(ProbeContext(root=root, runner=runner, is_root=True, live=True))
    assert isinstance(section, PatchesSection)
    assert section.status == "ok", section.reason
    assert section.manager == "apt"
    assert (section.pending_count, section.security_pending_count) == (0, 0)
    assert section.auto_updates is True
    assert section.reboot_required is False
    expected = LAST_APT_INSTALL_LOCAL.replace(tzinfo=HCM)
    assert section.last_update_at == expected
    assert section.last_update_at.utcoffset() == timedelta(hours=7)
    assert section.last_refresh_at == datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    argv, timeout = runner.calls[0]
    assert argv == ("apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade")
    assert timeout is not None and timeout >= 30


def test_apt_last_refresh_from_lists_when_newer_than_stamp(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    newer = datetime(2026, 11, 23, 13, 12, 50, tzinfo=UTC)
    release = write(root, "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease")
    set_mtime(release, newer)
    set_mtime(release.parent, newer - timedelta(days=30))
    section = probe(ProbeContext(root=root, runner=apt_runner(), live=True))
    assert section.last_refresh_at == newer
    assert any("lower bound" in n for n in section.notes)


def test_apt_probe_pending_security_updates_and_reboot(tmp_path: Path) -> None:
    root = apt_root(tmp_path, auto=False, reboot=True)
    section = probe(ProbeContext(root=root, runner=apt_runner(APT_SIM), live=True))
    assert section.status == "ok"
    assert section.pending_count == 136 == len(section.pending)
    assert section.security_pending_count == 81
    assert section.auto_updates is False
    assert section.reboot_required is True


def test_apt_probe_does_not_count_new_dependencies(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    text = (
        "Inst linux-image-6.1.0-30-amd64 (6.1.124-1 Debian-Security:12/bookworm-security [amd64])\n"
        "Inst linux-image-amd64 [6.1.123-1] (6.1.124-1 Debian-Security:12/bookworm-security "
        "[amd64])\n"
    )
    section = probe(ProbeContext(root=root, runner=apt_runner(text), live=True))
    assert [u.name for u in section.pending] == ["linux-image-amd64"]
    assert (section.pending_count, section.security_pending_count) == (1, 1)


def test_apt_auto_updates_needs_unattended_upgrades_installed(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    (root / "usr/bin/unattended-upgrade").unlink()
    section = probe(ProbeContext(root=root, runner=apt_runner(), live=True))
    assert section.auto_updates is False
    assert any("unattended-upgrades is not installed" in n for n in section.notes)


def test_apt_probe_tool_missing_is_unknown_but_keeps_file_facts(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    section = probe(ProbeContext(root=root, runner=FakeRunner(), live=True))
    assert section.status == "unknown"
    assert "apt-get" in (section.reason or "")
    assert section.pending_count is None and section.security_pending_count is None
    assert section.last_update_at == LAST_APT_INSTALL_LOCAL.replace(tzinfo=HCM)
    assert section.auto_updates is True


def test_apt_probe_timeout_is_unknown(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    runner = FakeRunner({"apt-get -s": CommandTimeout(["apt-get", "-s"], 30)})
    section = probe(ProbeContext(root=root, runner=runner, live=True))
    assert section.status == "unknown"
    assert "did not finish within 30s" in (section.reason or "")
    assert len(runner.calls) == 1  # no second attempt after a timeout


def test_apt_probe_nonzero_exit(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    err = result(
        "",
        100,
        "W: Target Packages is configured multiple times\n"
        "E: Unable to correct problems, you have held broken packages.\n",
    )
    section = probe(ProbeContext(root=root, runner=FakeRunner({"apt-get -s": err}), live=True))
    assert section.status == "unknown"
    assert "status 100" in (section.reason or "")
    assert "held broken packages" in (section.reason or "")


def test_apt_probe_falls_back_to_upgrade(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    runner = FakeRunner(
        {
            "apt-get -s -o Debug::NoLocking=1 dist-upgrade": result("", 100, "E: broken\n"),
            "apt-get -s -o Debug::NoLocking=1 upgrade": result(APT_SIM),
        }
    )
    section = probe(ProbeContext(root=root, runner=runner, live=True))
    assert section.status == "ok"
    assert section.pending_count == 136
    assert any("used upgrade" in n for n in section.notes)


def test_apt_probe_not_live_reads_files_only(tmp_path: Path) -> None:
    root = apt_root(tmp_path, reboot=True)
    runner = apt_runner(APT_SIM)
    section = probe(ProbeContext(root=root, runner=runner, live=False))
    assert runner.calls == []
    assert section.status == "ok"
    assert section.pending_count is None and section.security_pending_count is None
    assert any("need a live host" in n for n in section.notes)
    assert section.last_update_at is not None
    assert section.reboot_required is True


def test_apt_probe_not_live_without_reboot_flag_is_not_false(tmp_path: Path) -> None:
    root = apt_root(tmp_path, reboot=False)
    section = probe(ProbeContext(root=root, runner=FakeRunner(), live=False))
    assert section.reboot_required is None


def test_reboot_flag_does_not_follow_var_run_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = apt_root(tmp_path / "root")
    outside = tmp_path / "host-run"  # stands for the auditing host's own /run
    write(outside, "/reboot-required")
    (root / "var/run").symlink_to(outside)
    section = probe(ProbeContext(root=root, runner=apt_runner(), live=True))
    assert section.reboot_required is False


def test_apt_probe_unreadable_history_when_not_root(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    ctx = ProbeContext(root=root, runner=apt_runner(), is_root=False, live=True)
    section = probe(deny(ctx, "/var/log/apt/history.log"))
    assert section.status == "ok"
    assert section.last_update_at is None
    assert any(
        "/var/log/apt/history.log" in n and "not running as root" in n for n in section.notes
    )


def test_apt_history_rotated_file_used_when_current_is_empty(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    write(root, "/var/log/apt/history.log", "")
    write(root, "/var/log/apt/history.log.1", APT_HISTORY)
    section = probe(ProbeContext(root=root, runner=apt_runner(), live=True))
    assert section.last_update_at == LAST_APT_INSTALL_LOCAL.replace(tzinfo=HCM)


def test_local_timezone_of_root(tmp_path: Path) -> None:
    root = apt_root(tmp_path)
    tz, note = local_timezone(ProbeContext(root=root))
    assert note is None
    assert datetime(2026, 1, 1, tzinfo=tz).utcoffset() == timedelta(hours=7)
    bare, note = local_timezone(ProbeContext(root=tmp_path / "empty"))
    assert bare is UTC and note is not None


# --- dnf / yum ------------------------------------------------------------------


def test_parse_dnf_check_update() -> None:
    updates = parse_dnf_check_update(DNF_CHECK)
    names = [u.name for u in updates]
    assert names == [
        "NetworkManager",
        "curl",
        "kernel",
        "kernel-core",
        "libcurl",
        "python3-dnf-plugin-post-transaction-actions",  # wrapped row re-joined
        "tzdata",
    ]  # the Obsoleting Packages block is not an update list
    assert updates[0].new_version == "1:1.46.0-19.el9_4"
    assert updates[5].origin == "baseos"


def test_parse_dnf_updateinfo() -> None:
    assert parse_dnf_updateinfo(DNF_SECURITY) == {"kernel", "kernel-core", "curl", "libcurl"}
    dnf5 = (
        "Name                  Type     Severity  Package                            Issued\n"
        "FEDORA-2026-1a2b3c4d5e security Moderate curl-8.6.0-10.fc40.x86_64 2026-11-01 02:03:04\n"
    )
    assert parse_dnf_updateinfo(dnf5) == {"curl"}


def test_parse_dnf_automatic() -> None:
    assert parse_dnf_automatic((FIXTURES / "dnf/automatic.conf").read_text()) is True
    assert parse_dnf_automatic("[commands]\napply_updates = no\n") is False
    assert parse_dnf_automatic("[emitters]\nemit_via = stdio\n") is None


def dnf_root(tmp_path: Path) -> Path:
    for tool in ("/usr/bin/rpm", "/usr/bin/dnf"):
        write(tmp_path, tool, "#!/bin/sh\n")
    shutil.copy(FIXTURES / "dnf/automatic.conf", write(tmp_path, "/etc/dnf/automatic.conf"))
    write(tmp_path, "/etc/systemd/system/timers.target.wants/dnf-automatic.timer")
    db = tmp_path / "var/lib/dnf/history.sqlite"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE trans (id INTEGER PRIMARY KEY, dt_begin INTEGER, dt_end INTEGER)")
    conn.execute("INSERT INTO trans VALUES (1, 1793000000, 1793000100), (2, 1795000000, NULL)")
    conn.commit()
    conn.close()
    return tmp_path


def dnf_runner(**overrides: CommandResult | Exception) -> FakeRunner:
    responses: dict[str, CommandResult | Exception] = {
        "dnf -q -C check-update": result(DNF_CHECK, 100),
        "dnf -q -C updateinfo list --security": result(DNF_SECURITY),
        "needs-restarting -r": result("Reboot is required to fully utilize these updates.\n", 1),
    }
    keys = {"check": "dnf -q -C check-update", "sec": "dnf -q -C updateinfo list --security"}
    for name, value in overrides.items():
        responses[keys.get(name, "needs-restarting -r")] = value
    return FakeRunner(responses)


def test_dnf_probe_pending_security(tmp_path: Path) -> None:
    root = dnf_root(tmp_path)
    assert detect_manager(ProbeContext(root=root)) == "dnf"
    section = probe(ProbeContext(root=root, runner=dnf_runner(), live=True))
    assert section.status == "ok", section.reason
    assert section.manager == "dnf"
    assert section.pending_count == 7
    assert section.security_pending_count == 4
    assert {u.name for u in section.pending if u.security} == {
        "kernel",
        "kernel-core",
        "curl",
        "libcurl",
    }
    assert section.reboot_required is True
    assert section.auto_updates is True
    assert section.last_update_at == datetime.fromtimestamp(1793000100, UTC)


def test_dnf_probe_up_to_date(tmp_path: Path) -> None:
    root = dnf_root(tmp_path)
    runner = dnf_runner(check=result("", 0), sec=result(""), reboot=result("No core libraries", 0))
    section = probe(ProbeContext(root=root, runner=runner, live=True))
    assert section.status == "ok"
    assert (section.pending_count, section.security_pending_count) == (0, 0)
    assert section.reboot_required is False


def test_dnf_probe_error_exit_is_unknown(tmp_path: Path) -> None:
    root = dnf_root(tmp_path)
    err = result("", 1, "Error: Cache-only enabled but no cache for 'baseos'\n")
    section = probe(ProbeContext(root=root, runner=dnf_runner(check=err), live=True))
    assert section.status == "unknown"
    assert "status 1" in (section.reason or "") and "no cache" in (section.reason or "")
    assert section.pending_count is None


def test_dnf_probe_security_listing_fails_is_a_note(tmp_path: Path) -> None:
    root = dnf_root(tmp_path)
    runner = dnf_runner(sec=CommandTimeout(["dnf"], 30), reboot=ToolMissing("needs-restarting"))
    section = probe(ProbeContext(root=root, runner=runner, live=True))
    assert section.status == "ok"
    assert section.pending_count == 7
    assert section.security_pending_count is None
    assert section.reboot_required is None
    assert any("security classification unavailable" in n for n in section.notes)
    assert any("needs-restarting" in n for n in section.notes)


def test_dnf_auto_updates_off_without_timer(tmp_path: Path) -> None:
    root = dnf_root(tmp_path)
    (root / "etc/systemd/system/timers.target.wants/dnf-automatic.timer").unlink()
    section = probe(ProbeContext(root=root, runner=dnf_runner(), live=True))
    assert section.auto_updates is False
    assert any("timer is not enabled" in n for n in section.notes)


# --- zypper ---------------------------------------------------------------------


def test_parse_zypper_xml() -> None:
    updates = parse_zypper_updates(ZYPPER_UPDATES)
    assert [u.name for u in updates] == ["curl", "libcurl4", "timezone"]
    assert updates[0].current_version == "8.0.1-150400.5.41.1"
    assert updates[0].new_version == "8.0.1-150400.5.44.1"
    assert parse_zypper_security_patches(ZYPPER_PATCHES) == [
        "SUSE-SLE-Module-Basesystem-15-SP5-2024-2552"
    ]


def test_parse_zypp_history() -> None:
    text = (FIXTURES / "zypper/history").read_text()
    assert parse_zypp_history(text, UTC) == datetime(2026, 11, 10, 8, 1, 6, tzinfo=UTC)


def zypper_root(tmp_path: Path) -> Path:
    for tool in ("/usr/bin/rpm", "/usr/bin/zypper"):
        write(tmp_path, tool)
    write(tmp_path, "/var/log/zypp/history", (FIXTURES / "zypper/history").read_text())
    write(tmp_path, "/run/reboot-needed")
    return tmp_path


def test_zypper_probe(tmp_path: Path) -> None:
    root = zypper_root(tmp_path)
    base = "zypper --non-interactive --no-refresh --xmlout"
    runner = FakeRunner(
        {
            f"{base} list-updates": result(ZYPPER_UPDATES, 0),
            f"{base} list-patches --category security": result(ZYPPER_PATCHES, 101),
        }
    )
    section = probe(ProbeContext(root=root, runner=runner, live=True))
    assert section.status == "ok", section.reason
    assert section.manager == "zypper"
    assert (section.pending_count, section.security_pending_count) == (3, 1)
    assert section.reboot_required is True
    assert section.last_update_at == datetime(2026, 11, 10, 8, 1, 6, tzinfo=UTC)


def test_zypper_probe_bad_xml_is_unknown(tmp_path: Path) -> None:
    root = zypper_root(tmp_path)
    runner = FakeRunner({"zypper": result("<stream><update-list>", 0)})
    section = probe(ProbeContext(root=root, runner=runner, live=True))
    assert section.status == "unknown"
    assert "XML" in (section.reason or "")


# --- no manager, live host ------------------------------------------------------


def test_no_supported_manager_is_unknown(tmp_path: Path) -> None:
    write(tmp_path, "/usr/bin/pacman")
    section = probe(ProbeContext(root=tmp_path, runner=FakeRunner(), live=True))
    assert section.status == "unknown"
    assert "no supported package manager" in (section.reason or "")


def test_live_machine_returns_a_valid_section() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, PatchesSection)
    assert section.status in ("ok", "unknown")
    PatchesSection.model_validate(section.model_dump())
