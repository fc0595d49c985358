"""A whole Windows collection, replayed from the fixture outputs, evaluated by the checks.

The Windows probes run through ``agent.collect.collect(platform="win32")`` with
a runner that replays the documented outputs of tests/fixtures/windows; the
report then goes through ``policies.evaluate_host`` and, once, through a real
collector ingest (SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.collect import collect
from agent.probes.windows import bitlocker, network
from agent.report import ListeningSocket, NetworkSection, Report
from collector.app import create_app
from collector.settings import Settings
from policies import evaluate_host
from tests.agent.windows.winkit import (
    Answer,
    error,
    healthy_answers,
    json_file,
    text_file,
    windows_ctx,
)
from tests.collector.conftest import ADMIN_TOKEN, Api
from tests.factories import make_report

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def live_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interfaces and sockets of the pretend host, not of the machine running the tests."""
    monkeypatch.setattr(network, "probe", lambda ctx: NetworkSection())
    sockets: list[ListeningSocket] = []
    monkeypatch.setattr(bitlocker, "listening_tcp", lambda ctx, notes: sockets)


def windows_report(
    changes: Mapping[str, Answer] | None = None, role: str = "workstation"
) -> Report:
    answers = healthy_answers() | dict(changes or {})
    report = collect(windows_ctx(answers), role=role, platform="win32")  # type: ignore[arg-type]
    return report.model_copy(update={"collected_at": NOW})


def verdicts(report: Report, role: str = "workstation") -> dict[str, str]:
    evaluation = evaluate_host(report, level=3, role=role, now=NOW)
    return {f.check_id: f.status for f in evaluation.findings}


def test_the_report_is_a_windows_report_with_every_section() -> None:
    report = windows_report()
    assert report.host.os_family == "windows"
    assert report.os.id == "windows" and report.hardware.role_hint == "workstation"
    observed = {n for n in ("antivirus", "patches", "firewall", "ids", "logging", "auth",
                            "encryption", "backup", "software", "hardware", "os")
                if getattr(report, n).status == "ok"}  # fmt: skip
    assert len(observed) == 11
    assert report.databases is not None and report.databases.status == "unknown"
    Report.model_validate_json(report.model_dump_json())  # survives the wire


@pytest.mark.parametrize("role", ["workstation", "server"])
def test_healthy_windows_host_passes(role: str) -> None:
    status = verdicts(windows_report(role=role), role)
    expected_pass = {
        "av_installed", "av_active", "av_signatures_fresh", "fw_active", "fw_default_deny",
        "patch_security_pending", "patch_recent_update", "patch_reboot_pending",
        "password_policy", "log_persistent", "disk_encrypted", "no_plaintext_services",
        "ssh_root_login", "rdp_nla",
    }  # fmt: skip
    expected_pass |= (
        {"admin_group_small"}
        if role == "workstation"
        else {"ids_running", "log_audit", "log_remote", "ssh_password_auth_server"}
    )
    assert {c for c in expected_pass if status[c] != "pass"} == set()
    assert status["single_uid0"] == "not_applicable"
    assert "fail" not in {s for c, s in status.items() if c != "backup_recent"}


def test_remote_desktop_without_nla_fails_and_linux_is_not_concerned() -> None:
    report = windows_report({"remote_desktop": json_file("remote_desktop_open.json")})
    assert verdicts(report)["rdp_nla"] == "fail"
    assert report.auth is not None and report.auth.remote_desktop_enabled is True
    linux = make_report()
    assert verdicts(linux)["rdp_nla"] == "not_applicable"


def test_defender_off_fails_av_active_and_signatures() -> None:
    status = verdicts(windows_report({"defender_status": json_file("defender_status_off.json")}))
    assert status["av_installed"] == "pass"
    assert status["av_active"] == "fail"
    assert status["av_signatures_fresh"] == "fail"


def test_third_party_antivirus_from_security_center_counts() -> None:
    changes = {
        "defender_status": error("Operation failed with the following error: 0x800106ba"),
        "wsc_antivirus": json_file("wsc_antivirus_third_party.json"),
    }
    status = verdicts(windows_report(changes))
    assert status["av_active"] == "pass"  # Kaspersky is on
    assert status["av_signatures_fresh"] == "pass"  # Kaspersky says up to date


def test_public_profile_off_fails_fw_active() -> None:
    report = windows_report({"firewall_profiles": json_file("firewall_profiles_public_off.json")})
    evaluation = evaluate_host(report, level=3, role="workstation", now=NOW)
    finding = next(f for f in evaluation.findings if f.check_id == "fw_active")
    assert finding.status == "fail"
    assert "Public" in finding.evidence.vi and "Public" in finding.evidence.en
    assert verdicts(report)["fw_default_deny"] == "fail"


def test_weak_password_policy_and_extra_administrator_fail() -> None:
    status = verdicts(
        windows_report(
            {
                "secedit_export": text_file("secedit_export_weak.inf"),
                "local_admins": json_file("local_admins_user.json"),
            }
        )
    )
    assert status["password_policy"] == "fail"
    assert status["admin_group_small"] == "fail"


def test_approved_administrator_may_be_named_without_domain() -> None:
    from policies.parameters import default_parameters, merge

    report = windows_report({"local_admins": json_file("local_admins_user.json")})
    params = merge(default_parameters(), {"auth": {"allowed_admins": ["nguyen.van.a"]}})
    evaluation = evaluate_host(report, level=3, role="workstation", params=params, now=NOW)
    assert (
        next(f for f in evaluation.findings if f.check_id == "admin_group_small").status == "pass"
    )


def test_pending_update_reboot_and_default_audit_policy_fail_on_a_server() -> None:
    status = verdicts(
        windows_report(
            {
                "windows_update": json_file("windows_update_pending.json"),
                "auditpol": text_file("auditpol_default.csv"),
            },
            role="server",
        ),
        role="server",
    )
    assert status["patch_security_pending"] == "fail"
    assert status["patch_reboot_pending"] == "fail"
    assert status["log_audit"] == "fail"


def test_suspended_bitlocker_fails_disk_encrypted() -> None:
    report = windows_report({"bitlocker_volumes": json_file("bitlocker_volumes_suspended.json")})
    assert verdicts(report)["disk_encrypted"] == "fail"


def test_server_backup_from_windows_server_backup() -> None:
    report = windows_report({"wb_summary": json_file("wb_summary.json")}, role="server")
    assert verdicts(report, "server")["backup_recent"] == "pass"
    assert verdicts(windows_report(role="server"), "server")["backup_recent"] == "fail"


def test_tool_missing_makes_checks_unknown_not_passing() -> None:
    from agent.probes.base import ToolMissing

    no_powershell = {name: ToolMissing("powershell.exe") for name in healthy_answers()}
    status = verdicts(windows_report(no_powershell))
    for check in ("av_installed", "fw_active", "password_policy", "log_persistent",
                  "disk_encrypted", "patch_security_pending"):  # fmt: skip
        assert status[check] == "unknown", check


# --- one real collector ingest ---------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'collector.db'}", admin_token=ADMIN_TOKEN
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield Api(client, app.state.engine)


def test_collector_ingests_a_windows_report(api: Api) -> None:
    agent = api.new_agent(machine_id="3f2504e0-4f89-11d3-9a0c-0305e82c3301", hostname="PC-KT-01")
    report = windows_report({"firewall_profiles": json_file("firewall_profiles_public_off.json")})
    response = api.post_report(agent, report)
    assert response.status_code in (200, 201, 202), response.text
    findings = api.client.get(
        f"/api/v1/hosts/{agent.host_id}/findings",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert findings.status_code == 200, findings.text
    status = {f["check_id"]: f["status"] for f in findings.json()}
    assert status["fw_active"] == "fail"
    assert status["av_active"] == "pass" and status["password_policy"] == "pass"
    assert status["single_uid0"] == "not_applicable"
