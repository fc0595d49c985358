"""Logging and auth checks on crafted facts: pass, fail and unknown, and role applicability."""

from __future__ import annotations

from typing import Any

import pytest

from agent.report import AuthSection, LoggingSection
from policies import evaluate_host
from policies.framework import load_framework
from policies.model import Finding
from policies.parameters import default_parameters, merge
from tests.factories import healthy_auth, healthy_logging, make_report

LOGGING_CHECKS = ("log_persistent", "log_audit", "log_remote")
AUTH_CHECKS = (
    "ssh_no_empty_passwords",
    "ssh_root_login",
    "password_policy",
    "single_uid0",
    "ssh_password_auth_server",
    "admin_group_small",
)


good_logging = healthy_logging
good_auth = healthy_auth


def find(
    check_id: str,
    role: str = "server",
    params: dict[str, Any] | None = None,
    **sections: Any,
) -> Finding:
    sections.setdefault("logging", good_logging())
    sections.setdefault("auth", good_auth())
    report = make_report(**sections)
    evaluation = evaluate_host(report, 3, role, params=params)
    return next(f for f in evaluation.findings if f.check_id == check_id)


def status(check_id: str, role: str = "server", **sections: Any) -> str:
    return find(check_id, role, **sections).status


# --- wiring ---------------------------------------------------------------------------


def test_checks_are_mapped_to_their_requirements() -> None:
    fw = load_framework()
    expected = {
        "D18.1.c": ["ssh_no_empty_passwords", "ssh_root_login", "password_policy", "rdp_nla"],
        "D18.1.d": ["single_uid0"],
        "D18.1.e": ["log_persistent", "log_audit", "log_remote"],
        "D19.2.a": ["ssh_password_auth_server"],
        "D19.3.f": ["admin_group_small"],
    }
    by_id = {r.id: list(r.checks) for r in fw.requirements}
    for requirement, checks in expected.items():
        assert by_id[requirement] == checks


def test_healthy_facts_pass_every_new_check() -> None:
    for check_id in LOGGING_CHECKS + AUTH_CHECKS:
        role = "workstation" if check_id == "admin_group_small" else "server"
        assert status(check_id, role) == "pass", check_id


@pytest.mark.parametrize(
    ("role", "not_applicable"),
    [
        ("server", {"admin_group_small"}),
        ("workstation", {"log_audit", "log_remote", "ssh_password_auth_server"}),
    ],
)
def test_role_applicability(role: str, not_applicable: set[str]) -> None:
    evaluation = evaluate_host(
        make_report(logging=good_logging(), auth=good_auth()), 3, role
    )
    got = {
        f.check_id: f.status
        for f in evaluation.findings
        if f.check_id in LOGGING_CHECKS + AUTH_CHECKS
    }
    assert {c for c, s in got.items() if s == "not_applicable"} == not_applicable
    assert {s for c, s in got.items() if c not in not_applicable} == {"pass"}


def test_unknown_role_runs_every_check() -> None:
    report = make_report(logging=good_logging(), auth=good_auth())
    report.hardware.role_hint = "unknown"
    evaluation = evaluate_host(report, 3)
    assert evaluation.role == "unknown"
    got = {f.check_id: f.status for f in evaluation.findings}
    assert all(got[c] == "pass" for c in LOGGING_CHECKS + AUTH_CHECKS)


@pytest.mark.parametrize("check_id", LOGGING_CHECKS + AUTH_CHECKS)
def test_missing_or_unobserved_sections_are_unknown(check_id: str) -> None:
    family = "logging" if check_id in LOGGING_CHECKS else "auth"
    role = "workstation" if check_id == "admin_group_small" else "server"
    assert status(check_id, role, **{family: None}) == "unknown"
    model = LoggingSection if family == "logging" else AuthSection
    f = find(check_id, role, **{family: model(status="unknown", reason="probe crashed")})
    assert f.status == "unknown" and "probe crashed" in f.evidence.vi


# --- log_persistent ---------------------------------------------------------------------


def test_log_persistent_journal_or_syslog_is_enough() -> None:
    only_syslog = good_logging(journald_storage="volatile", journald_persistent=False)
    f = find("log_persistent", logging=only_syslog)
    assert f.status == "pass" and "rsyslog" in f.evidence.vi
    only_journal = good_logging(syslog_running=False)
    f = find("log_persistent", logging=only_journal)
    assert f.status == "pass" and "Storage=persistent" in f.evidence.en


def test_log_persistent_fails_when_nothing_survives_reboot() -> None:
    facts = good_logging(journald_storage="volatile", journald_persistent=False,
                         syslog_running=False)
    f = find("log_persistent", logging=facts)
    assert f.status == "fail"
    assert "Storage=volatile" in f.evidence.vi and "rsyslog" in f.evidence.en


def test_log_persistent_unknown_without_running_state() -> None:
    facts = good_logging(journald_storage="volatile", journald_persistent=False,
                         syslog_running=None)
    assert status("log_persistent", logging=facts) == "unknown"


# --- log_audit --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected", "text"),
    [
        ({}, "pass", "12"),
        ({"auditd_installed": False, "auditd_running": False, "audit_rule_count": None},
         "fail", "auditd"),
        ({"auditd_running": False, "audit_rule_count": 3}, "fail", "3"),
        ({"audit_rule_count": 0}, "fail", "No rules"),
        ({"audit_rule_count": None}, "unknown", "auditd"),
        ({"auditd_running": None}, "unknown", "12"),
    ],
)
def test_log_audit(changes: dict[str, Any], expected: str, text: str) -> None:
    f = find("log_audit", logging=good_logging(**changes))
    assert f.status == expected
    assert text in f.evidence.vi and text in f.evidence.en


# --- log_remote -------------------------------------------------------------------------


def test_log_remote_pass_by_target_or_shipper() -> None:
    f = find("log_remote")
    assert f.status == "pass" and "loghost.binhduong.gov.vn:514" in f.evidence.vi
    shipper = good_logging(remote_targets=[], log_shippers=["wazuh-logcollector"])
    f = find("log_remote", logging=shipper)
    assert f.status == "pass" and "wazuh-logcollector" in f.evidence.en


def test_log_remote_fail_and_unknown() -> None:
    local = good_logging(remote_targets=[])
    f = find("log_remote", logging=local)
    assert f.status == "fail" and f.severity == "medium"
    offline = good_logging(remote_targets=[], syslog_running=None, auditd_running=None)
    assert status("log_remote", logging=offline) == "unknown"


# --- ssh checks ----------------------------------------------------------------------


def test_no_sshd_passes_ssh_checks_with_a_message() -> None:
    no_sshd = good_auth(
        sshd_installed=False, sshd_running=False, sshd_config_source=None,
        permit_root_login=None, password_authentication=None, permit_empty_passwords=None,
    )
    for check_id in ("ssh_no_empty_passwords", "ssh_root_login", "ssh_password_auth_server"):
        f = find(check_id, auth=no_sshd)
        assert f.status == "pass", check_id
        assert "SSH" in f.evidence.vi and "sshd" in f.evidence.en


def test_ssh_no_empty_passwords_fail_and_unknown() -> None:
    f = find("ssh_no_empty_passwords", auth=good_auth(permit_empty_passwords=True))
    assert f.status == "fail" and "PermitEmptyPasswords yes" in f.evidence.vi
    f = find("ssh_no_empty_passwords", auth=good_auth(empty_password_accounts=["opsadmin"]))
    assert f.status == "fail" and "opsadmin" in f.evidence.vi and "opsadmin" in f.evidence.en
    f = find("ssh_no_empty_passwords", auth=good_auth(empty_password_accounts=None))
    assert f.status == "unknown" and "/etc/shadow" in f.evidence.vi
    assert status("ssh_no_empty_passwords", auth=good_auth(permit_empty_passwords=None)) == (
        "unknown"
    )
    # no SSH server does not hide an empty-password account, nor an unreadable shadow
    no_sshd = dict(sshd_installed=False, permit_empty_passwords=None)
    assert status("ssh_no_empty_passwords",
                  auth=good_auth(**no_sshd, empty_password_accounts=["x"])) == "fail"
    assert status("ssh_no_empty_passwords",
                  auth=good_auth(**no_sshd, empty_password_accounts=None)) == "unknown"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("no", "pass"),
        ("prohibit-password", "pass"),
        ("forced-commands-only", "pass"),
        ("yes", "fail"),
        (None, "unknown"),
    ],
)
def test_ssh_root_login(value: str | None, expected: str) -> None:
    f = find("ssh_root_login", auth=good_auth(permit_root_login=value))
    assert f.status == expected
    if value:
        assert f"PermitRootLogin {value}" in f.evidence.en


def test_ssh_evidence_names_the_source_in_each_language() -> None:
    facts = good_auth(sshd_config_source="config files", permit_root_login="yes")
    f = find("ssh_root_login", auth=facts)
    assert "tệp cấu hình sshd_config" in f.evidence.vi
    assert "the sshd_config files" in f.evidence.en


@pytest.mark.parametrize(
    ("value", "expected"), [(False, "pass"), (True, "fail"), (None, "unknown")]
)
def test_ssh_password_auth_server(value: bool | None, expected: str) -> None:
    f = find("ssh_password_auth_server", auth=good_auth(password_authentication=value))
    assert f.status == expected
    if value is not None:
        assert ("PasswordAuthentication yes" in f.evidence.vi) is value


# --- password_policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected", "texts"),
    [
        ({}, "pass", ["90", "pam_pwquality", "12"]),
        ({"pass_max_days": 99999}, "fail", ["99999", "180"]),
        ({"pass_max_days": -1}, "fail", ["-1"]),
        ({"pass_max_days": 0}, "fail", ["PASS_MAX_DAYS"]),
        ({"password_quality_module": None, "pass_min_len": None}, "fail", ["pam_pwquality"]),
        ({"pass_min_len": 6}, "fail", ["6", "8"]),
        ({"pass_max_days": 99999, "pass_min_len": 6}, "fail", ["99999", "6"]),
        ({"pass_max_days": 99999, "password_quality_module": None, "pass_min_len": None},
         "fail", ["99999", "pam_passwdqc"]),
        ({"pass_max_days": None}, "unknown", ["PASS_MAX_DAYS"]),
    ],
)
def test_password_policy(changes: dict[str, Any], expected: str, texts: list[str]) -> None:
    f = find("password_policy", auth=good_auth(**changes))
    assert f.status == expected
    for text in texts:
        assert text in f.evidence.vi and text in f.evidence.en


def test_password_policy_unknown_when_pam_was_not_read() -> None:
    facts = good_auth(password_quality_module=None, pass_min_len=None, pam_password_stack=None)
    assert status("password_policy", auth=facts) == "unknown"


def test_password_thresholds_are_parameters() -> None:
    strict = merge(default_parameters(),
                   {"auth": {"max_pass_max_days": 60, "min_password_length": 14}})
    f = find("password_policy", params=strict)
    assert f.status == "fail"
    assert f.data["max_allowed"] == 60 and f.data["min_required"] == 14


# --- single_uid0 ------------------------------------------------------------------------


def test_single_uid0() -> None:
    assert status("single_uid0") == "pass"
    f = find("single_uid0", auth=good_auth(uid0_accounts=["root", "toor"]))
    assert f.status == "fail" and f.evidence.en.endswith("/etc/passwd: toor")
    assert f.data["accounts"] == ["toor"]
    assert status("single_uid0", auth=good_auth(uid0_accounts=[])) == "unknown"


# --- admin_group_small ------------------------------------------------------------------


def test_admin_group_small_fails_on_ordinary_members_naming_them() -> None:
    facts = good_auth(admin_group_members={"sudo": ["root", "nguyenvana"], "wheel": ["opsadmin"]})
    f = find("admin_group_small", "workstation", auth=facts)
    assert f.status == "fail"
    assert "nguyenvana (sudo)" in f.evidence.vi and "opsadmin (wheel)" in f.evidence.en
    assert "root (sudo)" not in f.evidence.vi


def test_admin_group_small_allowed_admins_parameter() -> None:
    facts = good_auth(admin_group_members={"sudo": ["nguyenvana"]})
    allowed = merge(default_parameters(), {"auth": {"allowed_admins": ["nguyenvana"]}})
    f = find("admin_group_small", "workstation", params=allowed, auth=facts)
    assert f.status == "pass" and "nguyenvana (sudo)" in f.evidence.vi


def test_admin_group_small_pass_and_unknown() -> None:
    assert status("admin_group_small", "workstation",
                  auth=good_auth(admin_group_members={})) == "pass"
    unreadable = good_auth(admin_group_members=None)
    assert status("admin_group_small", "workstation", auth=unreadable) == "unknown"


def test_auth_parameters_have_documented_defaults() -> None:
    params = default_parameters()["auth"]
    assert params == {"max_pass_max_days": 180, "min_password_length": 8, "allowed_admins": []}


def test_requirement_verdict_combines_the_new_checks() -> None:
    report = make_report(logging=good_logging(remote_targets=[]), auth=good_auth())
    verdicts = {v.requirement_id: v for v in evaluate_host(report, 3, "server").requirements}
    assert verdicts["D18.1.e"].status == "fail"
    assert verdicts["D18.1.c"].status == "pass"
    assert verdicts["D19.3.f"].status == "not_applicable"
