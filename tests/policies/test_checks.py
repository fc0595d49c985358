"""Each check on crafted facts: pass, fail and unknown."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.report import (
    AntivirusProduct,
    AntivirusSection,
    FirewallBackend,
    FirewallSection,
    IdsProduct,
    IdsSection,
    PatchesSection,
)
from policies import evaluate_host
from tests.factories import NOW, make_report, stale_patches


def statuses(report, level: int = 3, role: str | None = None) -> dict[str, str]:
    return {f.check_id: f.status for f in evaluate_host(report, level, role).findings}


def finding(report, check_id: str, role: str | None = None):
    return next(f for f in evaluate_host(report, 3, role).findings if f.check_id == check_id)


def test_healthy_machine_passes_every_check_that_applies_to_its_role():
    from policies.registry import load_checks

    checks = load_checks()
    windows_only = {"rdp_nla"}  # the healthy report is a Linux machine
    for role in ("server", "workstation"):
        got = statuses(make_report(), role=role)
        for check_id, status in got.items():
            applies = role in checks[check_id].roles and check_id not in windows_only
            expected = "pass" if applies else "not_applicable"
            assert status == expected, (role, check_id, status)


# --- antivirus (Điều 19 khoản 1) -------------------------------------------


def test_no_antivirus_fails_all_three_av_checks():
    got = statuses(make_report(antivirus=AntivirusSection(products=[])))
    assert got["av_installed"] == got["av_active"] == got["av_signatures_fresh"] == "fail"
    f = finding(make_report(antivirus=AntivirusSection(products=[])), "av_installed")
    assert f.evidence.vi == "Không tìm thấy phần mềm diệt virus nào trên máy"
    assert f.requirement_ids == ["D19.1.a"]


def test_stale_signatures_fail_with_age_in_evidence():
    product = AntivirusProduct(
        name="ClamAV", installed=True, running=True,
        signature_updated_at=NOW - timedelta(days=12, hours=12),
    )
    report = make_report(antivirus=AntivirusSection(products=[product]))
    f = finding(report, "av_signatures_fresh")
    assert f.status == "fail"
    assert "12,5 ngày" in f.evidence.vi and "12.5 days" in f.evidence.en
    assert f.data["max_days"] == 7


def test_signature_age_threshold_is_a_parameter():
    from policies.parameters import default_parameters, merge

    product = AntivirusProduct(
        name="ClamAV", installed=True, running=True,
        signature_updated_at=NOW - timedelta(days=12),
    )
    report = make_report(antivirus=AntivirusSection(products=[product]))
    relaxed = merge(default_parameters(), {"antivirus": {"max_signature_age_days": 14}})
    ev = evaluate_host(report, 3, params=relaxed)
    assert {f.check_id: f.status for f in ev.findings}["av_signatures_fresh"] == "pass"


def test_unknown_signature_date_is_unknown_not_pass():
    product = AntivirusProduct(name="ClamAV", installed=True, running=True)
    got = statuses(make_report(antivirus=AntivirusSection(products=[product])))
    assert got["av_signatures_fresh"] == "unknown"


def test_installed_but_idle_antivirus_fails_active_check():
    product = AntivirusProduct(
        name="ClamAV", installed=True, running=False, realtime=False,
        last_scan_at=NOW - timedelta(days=40), signature_updated_at=NOW,
    )
    got = statuses(make_report(antivirus=AntivirusSection(products=[product])))
    assert got["av_installed"] == "pass"
    assert got["av_active"] == "fail"


def test_recent_scan_counts_as_periodic_use():
    product = AntivirusProduct(
        name="ClamAV", installed=True, running=False,
        last_scan_at=NOW - timedelta(days=2), signature_updated_at=NOW,
    )
    report = make_report(antivirus=AntivirusSection(products=[product]))
    assert statuses(report)["av_active"] == "pass"


def test_unobserved_antivirus_section_is_unknown_with_reason():
    section = AntivirusSection(status="unknown", reason="not root")
    report = make_report(antivirus=section)
    f = finding(report, "av_installed")
    assert f.status == "unknown"
    assert "not root" in f.evidence.vi and "antivirus" in f.evidence.en


# --- patches (Điều 19 khoản 2) ----------------------------------------------


def test_pending_security_updates_fail_and_name_packages():
    report = make_report(patches=stale_patches())
    got = statuses(report)
    assert got["patch_security_pending"] == "fail"
    assert got["patch_recent_update"] == "fail"
    assert got["patch_reboot_pending"] == "fail"
    assert "openssl" in finding(report, "patch_security_pending").evidence.vi
    assert "tzdata" not in finding(report, "patch_security_pending").evidence.vi


def test_stale_package_lists_make_pending_count_unknown():
    patches = PatchesSection(
        manager="apt", pending_count=0, security_pending_count=0,
        last_refresh_at=NOW - timedelta(days=60), last_update_at=NOW - timedelta(days=1),
        reboot_required=False,
    )
    report = make_report(patches=patches)
    assert statuses(report)["patch_security_pending"] == "unknown"
    assert "60" not in finding(report, "patch_security_pending").evidence.en  # dates, not ages
    assert "refreshed" in finding(report, "patch_security_pending").evidence.en


def test_missing_patch_facts_are_unknown():
    patches = PatchesSection(manager="apt")
    got = statuses(make_report(patches=patches))
    assert got["patch_security_pending"] == "unknown"
    assert got["patch_recent_update"] == "unknown"
    assert got["patch_reboot_pending"] == "unknown"


# --- firewall (Điều 18 khoản 1) ---------------------------------------------


def test_inactive_firewall_fails_both_checks():
    fw = FirewallSection(
        backends=[FirewallBackend(name="ufw", installed=True, active=False)],
        active=False,
    )
    report = make_report(firewall=fw)
    got = statuses(report)
    assert got["fw_active"] == got["fw_default_deny"] == "fail"
    assert "ufw" in finding(report, "fw_active").evidence.vi


def test_accept_policy_fails_default_deny_only():
    fw = FirewallSection(
        backends=[FirewallBackend(name="nftables", installed=True, active=True,
                                  default_inbound="accept", rule_count=3)],
        active=True, default_inbound="accept",
    )
    got = statuses(make_report(firewall=fw))
    assert got["fw_active"] == "pass"
    assert got["fw_default_deny"] == "fail"


def test_firewall_unreadable_without_root_is_unknown():
    fw = FirewallSection(status="unknown", reason="reading the nftables ruleset needs root")
    got = statuses(make_report(firewall=fw))
    assert got["fw_active"] == got["fw_default_deny"] == "unknown"


def test_firewall_state_not_determined_is_unknown():
    fw = FirewallSection(backends=[FirewallBackend(name="iptables", installed=True)])
    got = statuses(make_report(firewall=fw))
    assert got["fw_active"] == got["fw_default_deny"] == "unknown"


# --- IDS (Điều 18 khoản 1) and roles ----------------------------------------


def test_no_ids_fails_on_server_and_does_not_apply_to_workstation():
    report = make_report(ids=IdsSection(products=[]))
    assert statuses(report, role="server")["ids_running"] == "fail"
    assert statuses(report, role="workstation")["ids_running"] == "not_applicable"


def test_stopped_ids_fails_and_unobservable_is_unknown():
    stopped = IdsSection(products=[IdsProduct(name="Suricata", kind="nids", installed=True,
                                              running=False)])
    assert statuses(make_report(ids=stopped))["ids_running"] == "fail"
    unseen = IdsSection(products=[IdsProduct(name="Suricata", kind="nids", installed=True)])
    assert statuses(make_report(ids=unseen))["ids_running"] == "unknown"


@pytest.mark.parametrize(
    ("configured", "host_role", "hint", "expected"),
    [
        ("workstation", "server", "server", "workstation"),
        (None, "server", "workstation", "server"),
        (None, "unknown", "workstation", "workstation"),
        (None, "unknown", "unknown", "unknown"),
    ],
)
def test_role_resolution_prefers_configuration_then_hints(configured, host_role, hint, expected):
    from policies.engine import resolve_role

    report = make_report(role=host_role)
    report.hardware.role_hint = hint
    assert resolve_role(report, configured) == expected
