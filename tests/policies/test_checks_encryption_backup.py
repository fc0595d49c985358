"""Encryption and backup checks on crafted facts: pass, fail, unknown and role applicability."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent.report import (
    BackupEvidence,
    BackupSection,
    EncryptedVolume,
    EncryptionSection,
    NetworkSection,
    PlaintextService,
    Report,
)
from policies import evaluate_host
from policies.framework import load_framework
from policies.model import Finding
from policies.parameters import Parameters, default_parameters, merge
from tests.factories import NOW, make_report

LUKS_ROOT = EncryptedVolume(
    name="sda5_crypt", device="/dev/mapper/sda5_crypt", kind="LUKS2", mountpoint="/"
)
TELNET = PlaintextService(address="0.0.0.0", port=23, service="telnet", process="inetd")
HTTP = PlaintextService(
    address="::", port=80, service="http (plain HTTP listener)", process="apache2"
)


def encryption(**changes: Any) -> EncryptionSection:
    base = EncryptionSection(volumes=[LUKS_ROOT], root_encrypted=True, swap_encrypted=True)
    return base.model_copy(update=changes)


def restic_backup(age: timedelta, **changes: Any) -> BackupSection:
    evidence = BackupEvidence(
        tool="restic", location="/srv/restic", newest_at=NOW - age, scheduled=True,
        encrypted=True, detail="latest snapshot",
    )  # fmt: skip
    base = BackupSection(
        tools_installed=["restic"], evidence=[evidence], newest_backup_at=NOW - age
    )
    return base.model_copy(update=changes)


def report(**sections: Any) -> Report:
    sections.setdefault("encryption", encryption())
    sections.setdefault("backup", restic_backup(timedelta(days=1)))
    return make_report(**sections)


def finding(
    rep: Report, check_id: str, role: str | None = "server", params: Parameters | None = None
) -> Finding:
    ev = evaluate_host(rep, 3, role, params=params)
    return next(f for f in ev.findings if f.check_id == check_id)


# --- wiring -----------------------------------------------------------------------------


def test_framework_maps_the_checks() -> None:
    fw = load_framework()
    reqs = {r.id: r for r in fw.requirements}
    assert reqs["D17.1.b"].checks == ["disk_encrypted"]
    assert reqs["D17.1.c"].checks == ["no_plaintext_services"]
    assert reqs["D17.1.c"].verification == "host"
    assert reqs["D17.1.d"].checks == ["backup_recent"]


def test_parameters_defaults() -> None:
    params = default_parameters()
    assert params["backup"]["max_age_days"] == 7
    assert params["encryption"]["important_paths"] == ["/", "/srv", "/var/lib", "/home"]
    assert params["encryption"]["allowed_plaintext_ports"] == []


def test_healthy_encryption_and_backup_pass_with_requirements() -> None:
    ev = evaluate_host(report(), 3, "server")
    got = {f.check_id: (f.status, f.requirement_ids) for f in ev.findings}
    assert got["disk_encrypted"] == ("pass", ["D17.1.b"])
    assert got["no_plaintext_services"] == ("pass", ["D17.1.c"])
    assert got["backup_recent"] == ("pass", ["D17.1.d"])
    verdicts = {v.requirement_id: v.status for v in ev.requirements}
    assert verdicts["D17.1.b"] == verdicts["D17.1.c"] == verdicts["D17.1.d"] == "pass"


def test_requirements_do_not_apply_below_level_2() -> None:
    ev = evaluate_host(report(backup=BackupSection()), 1, "server")
    verdicts = {v.requirement_id: v.status for v in ev.requirements}
    assert verdicts["D17.1.b"] == verdicts["D17.1.c"] == verdicts["D17.1.d"] == "not_applicable"


@pytest.mark.parametrize("check_id", ["disk_encrypted", "no_plaintext_services", "backup_recent"])
def test_agent_without_the_sections_is_unknown(check_id: str) -> None:
    # an agent of schema 1.0 sends no such sections
    f = finding(make_report(encryption=None, backup=None), check_id)
    assert f.status == "unknown"
    assert "cần nâng cấp tác tử" in f.evidence.vi


@pytest.mark.parametrize("check_id", ["disk_encrypted", "no_plaintext_services"])
def test_unobserved_encryption_section_is_unknown(check_id: str) -> None:
    section = EncryptionSection(status="unknown", reason="neither /sys/block nor lsblk")
    f = finding(report(encryption=section), check_id)
    assert f.status == "unknown"
    assert "neither /sys/block nor lsblk" in f.evidence.en


# --- disk_encrypted (D17.1.b) ---------------------------------------------------------------


def test_encrypted_root_passes_and_admits_the_undefined_term() -> None:
    f = finding(report(), "disk_encrypted")
    assert f.status == "pass"
    assert f.severity == "medium"
    assert "Quy chế không định nghĩa “thông tin quan trọng”" in f.evidence.vi
    assert 'does not define "important information"' in f.evidence.en
    assert "/, /srv, /var/lib, /home" in f.evidence.en


def test_encrypted_data_volume_under_an_important_path_passes() -> None:
    srv = EncryptedVolume(name="d", device="/dev/mapper/d", kind="LUKS1", mountpoint="/srv/db")
    section = encryption(volumes=[srv], root_encrypted=False)
    f = finding(report(encryption=section), "disk_encrypted")
    assert f.status == "pass"
    assert f.data["mountpoints"] == ["/srv/db"]


def test_encrypted_volume_elsewhere_fails() -> None:
    usb = EncryptedVolume(name="usb", device="/dev/mapper/usb", kind="other",
                          mountpoint="/mnt/usb")  # fmt: skip
    swap = EncryptedVolume(name="cryptswap", device="/dev/mapper/cryptswap", kind="plain",
                           mountpoint="[SWAP]")  # fmt: skip
    section = encryption(volumes=[usb, swap], root_encrypted=False)
    f = finding(report(encryption=section), "disk_encrypted")
    assert f.status == "fail"
    assert "/mnt/usb" in f.evidence.vi and "encryption.important_paths" in f.evidence.vi


def test_no_encryption_at_all_fails() -> None:
    section = EncryptionSection(root_encrypted=False, swap_encrypted=False)
    f = finding(report(encryption=section), "disk_encrypted")
    assert f.status == "fail"
    assert f.evidence.vi.startswith("Không có phân vùng mã hóa nào")


def test_root_undecided_without_volumes_is_unknown() -> None:
    section = EncryptionSection(root_encrypted=None, notes=["no block device is mounted on /"])
    assert finding(report(encryption=section), "disk_encrypted").status == "unknown"


def test_important_paths_are_a_parameter() -> None:
    data = EncryptedVolume(name="d", device="/dev/mapper/d", kind="LUKS2", mountpoint="/data")
    section = encryption(volumes=[data], root_encrypted=False)
    assert finding(report(encryption=section), "disk_encrypted").status == "fail"
    params = merge(default_parameters(), {"encryption": {"important_paths": ["/data"]}})
    assert finding(report(encryption=section), "disk_encrypted", params=params).status == "pass"


def test_disk_encryption_applies_to_workstations() -> None:
    section = EncryptionSection(root_encrypted=False)
    assert finding(report(encryption=section), "disk_encrypted", "workstation").status == "fail"


# --- no_plaintext_services (D17.1.c) ---------------------------------------------------------


def test_plaintext_services_fail_naming_each_endpoint_and_process() -> None:
    rep = report(encryption=encryption(plaintext_services=[TELNET, HTTP]))
    f = finding(rep, "no_plaintext_services")
    assert f.status == "fail"
    assert f.severity == "high"
    assert "telnet 0.0.0.0:23 (inetd)" in f.evidence.vi
    assert "http (plain HTTP listener) [::]:80 (apache2)" in f.evidence.en
    assert f.evidence.vi.startswith("2 dịch vụ không mã hóa")


def test_unknown_process_is_shown_as_such() -> None:
    svc = PlaintextService(address="10.0.0.5", port=3306, service="mysql (TLS not verified)")
    f = finding(report(encryption=encryption(plaintext_services=[svc])), "no_plaintext_services")
    assert f.status == "fail"
    assert "mysql (TLS not verified) 10.0.0.5:3306 (?)" in f.evidence.en


def test_allowed_plaintext_port_passes() -> None:
    params = merge(default_parameters(), {"encryption": {"allowed_plaintext_ports": [80]}})
    rep = report(encryption=encryption(plaintext_services=[HTTP]))
    f = finding(rep, "no_plaintext_services", params=params)
    assert f.status == "pass"
    assert f.evidence.en == "Only unencrypted ports the agency accepts are open: 80"
    assert finding(rep, "no_plaintext_services").status == "fail"


def test_no_plaintext_without_observed_sockets_is_unknown() -> None:
    network = NetworkSection(status="unknown", reason="network state needs a live host")
    f = finding(report(network=network), "no_plaintext_services")
    assert f.status == "unknown"
    assert "network state needs a live host" in f.evidence.en


def test_plaintext_check_applies_to_workstations() -> None:
    rep = report(encryption=encryption(plaintext_services=[TELNET]))
    assert finding(rep, "no_plaintext_services", "workstation").status == "fail"


# --- backup_recent (D17.1.d) -------------------------------------------------------------------


def test_recent_backup_passes() -> None:
    f = finding(report(backup=restic_backup(timedelta(days=2))), "backup_recent")
    assert f.status == "pass"
    assert f.data["age_days"] == 2.0 and f.data["max_days"] == 7
    assert "restic /srv/restic" in f.evidence.en


def test_exactly_one_week_still_passes() -> None:
    rep = report(backup=restic_backup(timedelta(days=7)))
    assert finding(rep, "backup_recent").status == "pass"


def test_stale_backup_fails_quoting_the_weekly_rule() -> None:
    f = finding(report(backup=restic_backup(timedelta(days=10, hours=12))), "backup_recent")
    assert f.status == "fail"
    assert "tối thiểu 01 lần/tuần" in f.evidence.vi
    assert "10,5 ngày" in f.evidence.vi and "10.5 days" in f.evidence.en


def test_backup_age_is_a_parameter() -> None:
    params = merge(default_parameters(), {"backup": {"max_age_days": 14}})
    rep = report(backup=restic_backup(timedelta(days=10)))
    assert finding(rep, "backup_recent", params=params).status == "pass"


def test_no_backup_evidence_fails_and_explains_backup_toml() -> None:
    f = finding(report(backup=BackupSection()), "backup_recent")
    assert f.status == "fail"
    assert "/etc/posture-agent/backup.toml" in f.evidence.vi
    assert "Không tìm thấy công cụ sao lưu" in f.evidence.vi
    assert "[[path]]" in f.evidence.en


def test_scheduled_without_date_is_unknown() -> None:
    evidence = BackupEvidence(
        tool="duplicity", location="/etc/cron.d/duply", scheduled=True,
        detail="scheduled in /etc/cron.d/duply; the time of the last run is not readable",
    )  # fmt: skip
    f = finding(report(backup=BackupSection(tools_installed=["duplicity"], evidence=[evidence])),
                "backup_recent")  # fmt: skip
    assert f.status == "unknown"
    assert f.data["tools"] == ["duplicity"]
    assert "backup.toml" in f.evidence.en


def test_tool_installed_without_schedule_or_date_is_unknown() -> None:
    f = finding(report(backup=BackupSection(tools_installed=["bacula-fd"])), "backup_recent")
    assert f.status == "unknown"
    assert "bacula-fd" in f.evidence.vi and "máy khác" in f.evidence.vi


def test_backup_check_is_for_servers_only() -> None:
    rep = report(backup=BackupSection())
    assert finding(rep, "backup_recent", "workstation").status == "not_applicable"
    assert finding(rep, "backup_recent", None).status == "fail"  # role inferred: server chassis
