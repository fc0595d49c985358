"""Windows Security log, audit policy, password policy, administrators, Remote Desktop."""

from __future__ import annotations

from agent.probes.windows import auth, eventlog
from agent.probes.windows.eventlog import parse_auditpol_csv, parse_wevtutil
from tests.agent.windows.winkit import (
    access_denied,
    error,
    fixture,
    healthy_answers,
    json_file,
    not_installed,
    ok,
    text_file,
    windows_ctx,
)

LOGON = "0CCE9215-69AE-11D9-BED3-505054503030"


def test_auditpol_csv() -> None:
    settings = parse_auditpol_csv(fixture("auditpol.csv"))
    assert len(settings) == 59
    logon = next(s for s in settings if s.guid == LOGON)
    assert logon.subcategory == "Logon" and logon.success and logon.failure
    fs = next(s for s in settings if s.subcategory == "File System")
    assert fs.success is False and fs.failure is False
    localized = fixture("auditpol.csv").replace("Success and Failure", "Thành công và Thất bại")
    assert next(s for s in parse_auditpol_csv(localized) if s.guid == LOGON).success is None


def test_wevtutil() -> None:
    facts = parse_wevtutil(fixture("wevtutil_security.txt"))
    assert facts == {"enabled": True, "max_bytes": 201326592, "retention": "archive", "targets": []}


def test_logging_healthy() -> None:
    section = eventlog.probe(windows_ctx())
    assert section.status == "ok"
    assert section.event_log_running is True and section.security_log_enabled is True
    assert section.security_log_max_bytes == 201326592
    assert section.security_log_retention == "overwrite"
    assert section.remote_targets == ["wec.sotttt.example.vn"]
    assert section.log_shippers == ["wazuh"]
    assert section.audit_rule_count == 14 and len(section.audit_policy or []) == 59


def test_logging_falls_back_to_wevtutil_and_reports_gaps() -> None:
    answers = healthy_answers() | {
        "security_log": error("Attempted to perform an unauthorized operation."),
        "auditpol": error(
            "auditpol exited with 1: Error 0x00000522 occurred: "
            "A required privilege is not held by the client."
        ),
    }
    section = eventlog.probe(windows_ctx(answers))
    assert section.security_log_retention == "archive" and section.audit_policy is None
    assert any("audit policy unreadable" in n for n in section.notes)


def test_logging_eventlog_stopped() -> None:
    services = '[{"Name":"EventLog","DisplayName":"Windows Event Log","State":"Stopped"}]'
    section = eventlog.probe(windows_ctx(healthy_answers() | {"services": ok(services)}))
    assert section.event_log_running is False and section.log_shippers == []


def test_logging_all_missing_is_unknown() -> None:
    section = eventlog.probe(windows_ctx({}))
    assert section.status == "unknown" and section.reason


def test_auth_healthy() -> None:
    section = auth.probe(windows_ctx())
    assert section.status == "ok"
    assert section.password_policy_source == "secedit"
    assert (section.pass_max_days, section.pass_min_days, section.pass_min_len) == (90, 1, 12)
    assert section.password_complexity is True
    assert (section.lockout_threshold, section.lockout_duration_minutes) == (5, 15)
    assert section.admin_group_members == {
        "Administrators": ["PC-KT-01\\Administrator", "SOTTTT\\Domain Admins"]
    }
    assert section.remote_desktop_enabled is False and section.remote_desktop_nla is True
    assert section.sshd_installed is False


def test_auth_weak_policy_extra_admin_open_rdp() -> None:
    answers = healthy_answers() | {
        "secedit_export": text_file("secedit_export_weak.inf"),
        "local_admins": json_file("local_admins_user.json"),
        "remote_desktop": json_file("remote_desktop_open.json"),
    }
    section = auth.probe(windows_ctx(answers))
    assert (section.pass_max_days, section.pass_min_len, section.password_complexity) == (
        -1,
        0,
        False,
    )
    assert section.lockout_threshold == 0 and section.lockout_duration_minutes is None
    assert "SOTTTT\\nguyen.van.a" in section.admin_group_members["Administrators"]
    assert section.remote_desktop_enabled is True and section.remote_desktop_nla is False


def test_auth_falls_back_to_net_accounts() -> None:
    answers = healthy_answers() | {"secedit_export": access_denied("secedit /export failed (1)")}
    section = auth.probe(windows_ctx(answers))
    assert section.password_policy_source == "net accounts"
    assert (section.pass_max_days, section.pass_min_len, section.lockout_threshold) == (42, 0, 0)
    assert section.password_complexity is None


def test_auth_all_missing_is_unknown() -> None:
    section = auth.probe(windows_ctx({"services": not_installed("Get-CimInstance")}))
    assert section.status == "unknown"
