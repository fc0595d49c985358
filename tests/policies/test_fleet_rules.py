"""Agency-wide rules on crafted fleets: pass, fail and unknown for each rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from agent.report import (
    AntivirusProduct,
    AntivirusSection,
    BackupSection,
    ListeningSocket,
    NetworkSection,
    Package,
    PatchesSection,
    SoftwareSection,
)
from policies import evaluate_fleet, evaluate_host
from policies.exceptions import Waiver, apply_waivers
from policies.fleet import (
    ApprovedSoftware,
    BackupObservation,
    FleetContext,
    FleetHost,
    SoftwareChange,
)
from policies.model import Finding
from policies.parameters import default_parameters
from tests.factories import NOW, make_report


def fleet_host(
    i: int,
    role: str = "workstation",
    seen_hours_ago: float | None = 1,
    reported: bool = True,
    waive: str | None = None,
    **sections: Any,
) -> FleetHost:
    report = make_report(hostname=f"pc-{i:02d}", machine_id=f"m{i}", **sections)
    findings: dict[str, Finding] = {}
    if reported:
        found = evaluate_host(report, 3, role).findings
        if waive:
            waiver = Waiver(check_id=waive, host_id=i, justification="Thiết bị đo", author="B",
                            created_at=NOW - timedelta(days=1), expires_at=NOW + timedelta(days=9))
            found = apply_waivers(found, [waiver], NOW, i)
        findings = {f.check_id: f for f in found}
    seen = None if seen_hours_ago is None else NOW - timedelta(hours=seen_hours_ago)
    return FleetHost(
        host_id=i,
        hostname=f"pc-{i:02d}",
        role=role,
        enrolled_at=NOW - timedelta(days=90),
        last_seen_at=seen if reported else None,
        findings=findings,
        report=report if reported else None,
    )


def ctx(hosts: list[FleetHost], **kw: Any) -> FleetContext:
    return FleetContext(level=3, now=NOW, params=default_parameters(), hosts=hosts, **kw)


def rule(context: FleetContext, rule_id: str) -> Finding:
    return next(f for f in evaluate_fleet(context) if f.check_id == rule_id)


NO_AV = {"antivirus": AntivirusSection(products=[])}
AV_UNKNOWN = {"antivirus": AntivirusSection(status="unknown", reason="permission denied")}
STALE_AV = {
    "antivirus": AntivirusSection(
        products=[
            AntivirusProduct(name="ClamAV", installed=True, running=True,
                             signature_updated_at=NOW - timedelta(days=40))
        ]
    )
}

RULES = [
    "fleet_av_coverage",
    "fleet_av_signatures",
    "fleet_patch_coverage",
    "fleet_software_approved",
    "fleet_backup_before_install",
    "fleet_central_storage",
    "fleet_parallel_servers",
]


@pytest.mark.parametrize("rule_id", RULES)
def test_no_hosts_is_unknown_and_every_text_is_bilingual(rule_id: str) -> None:
    f = rule(ctx([]), rule_id)
    assert f.status == "unknown"
    assert f.evidence.vi and f.evidence.en and f.evidence.vi != f.evidence.en
    assert f.title.vi and f.title.en and f.remediation.vi and f.remediation.en
    assert f.requirement_ids


def test_rules_are_mapped_to_their_requirements() -> None:
    findings = {f.check_id: f.requirement_ids for f in evaluate_fleet(ctx([fleet_host(1)]))}
    assert findings["fleet_av_coverage"] == ["D19.1.a"]
    assert findings["fleet_av_signatures"] == ["D19.1.c"]
    assert findings["fleet_patch_coverage"] == ["D19.2.f"]
    assert sorted(findings["fleet_software_approved"]) == ["D19.3.e", "D19.3.f"]
    assert findings["fleet_backup_before_install"] == ["D19.3.b"]
    assert findings["fleet_central_storage"] == ["D17.1.a"]
    assert findings["fleet_parallel_servers"] == ["D17.1.L3.a"]


# --- anti-virus -------------------------------------------------------------------


def test_av_coverage_pass_fail_unknown_waived() -> None:
    ok = rule(ctx([fleet_host(1), fleet_host(2, role="server")]), "fleet_av_coverage")
    assert ok.status == "pass" and ok.evidence.vi.startswith("2/2 máy có phần mềm diệt virus")

    hosts = [fleet_host(1), fleet_host(2, **NO_AV), fleet_host(3, reported=False)]
    bad = rule(ctx(hosts), "fleet_av_coverage")
    assert bad.status == "fail"
    assert bad.evidence.vi.startswith("1/3 máy có phần mềm diệt virus; thiếu: pc-02")
    assert "pc-03" in bad.evidence.vi  # never reported: unknown, named
    assert bad.data["missing"] == ["pc-02"] and bad.data["unknown"] == ["pc-03"]

    unknown = rule(ctx([fleet_host(1), fleet_host(2, **AV_UNKNOWN)]), "fleet_av_coverage")
    assert unknown.status == "unknown" and "pc-02" in unknown.evidence.en

    never = rule(ctx([fleet_host(1), fleet_host(2, reported=False)]), "fleet_av_coverage")
    assert never.status == "unknown"

    waived = rule(
        ctx([fleet_host(1), fleet_host(2, waive="av_installed", **NO_AV)]), "fleet_av_coverage"
    )
    assert waived.status == "waived" and "pc-02" in waived.evidence.vi


def test_silent_host_counts_by_its_last_findings() -> None:
    silent_ok = fleet_host(2, seen_hours_ago=24 * 30)
    assert rule(ctx([fleet_host(1), silent_ok]), "fleet_av_coverage").status == "pass"
    silent_bad = fleet_host(2, seen_hours_ago=24 * 30, **NO_AV)
    assert rule(ctx([fleet_host(1), silent_bad]), "fleet_av_coverage").status == "fail"


def test_av_signatures_share_and_stale_hosts() -> None:
    ok = rule(ctx([fleet_host(1), fleet_host(2)]), "fleet_av_signatures")
    assert ok.status == "pass" and "100%" in ok.evidence.vi

    hosts = [fleet_host(1), fleet_host(2, **STALE_AV), fleet_host(3), fleet_host(4)]
    bad = rule(ctx(hosts), "fleet_av_signatures")
    assert bad.status == "fail" and "75%" in bad.evidence.vi and "pc-02" in bad.evidence.vi
    assert bad.data["share"] == 75

    unknown = rule(ctx([fleet_host(1), fleet_host(2, **AV_UNKNOWN)]), "fleet_av_signatures")
    assert unknown.status == "unknown"


# --- patches (regular flaw checks) ------------------------------------------------


def test_patch_coverage() -> None:
    ok = rule(ctx([fleet_host(1), fleet_host(2)]), "fleet_patch_coverage")
    assert ok.status == "pass"

    silent = rule(ctx([fleet_host(1), fleet_host(2, seen_hours_ago=72)]), "fleet_patch_coverage")
    assert silent.status == "fail" and silent.data["silent"] == ["pc-02"]

    unchecked_patches = {"patches": PatchesSection(status="unknown", reason="apt locked")}
    unchecked = rule(
        ctx([fleet_host(1), fleet_host(2, **unchecked_patches)]), "fleet_patch_coverage"
    )
    assert unchecked.status == "fail" and unchecked.data["unchecked"] == ["pc-02"]
    assert "pc-02" in unchecked.evidence.vi

    never = rule(ctx([fleet_host(1), fleet_host(2, reported=False)]), "fleet_patch_coverage")
    assert never.status == "fail" and never.data["silent"] == ["pc-02"]


# --- software register ------------------------------------------------------------


def change(
    host: int, name: str, version: str, days_ago: float, kind: str = "installed"
) -> SoftwareChange:
    return SoftwareChange(
        host_id=host, hostname=f"pc-{host:02d}", change=kind, name=name, arch="amd64",
        old_version="1.0" if kind == "upgraded" else None,
        new_version=None if kind == "removed" else version,
        collected_at=NOW - timedelta(days=days_ago),
    )


def test_software_approved() -> None:
    hosts = [fleet_host(1), fleet_host(2)]
    changes = [
        change(1, "libreoffice-writer", "4:7.4.7", 2),
        change(2, "anydesk", "6.3.0", 3),
        change(2, "firefox-esr", "128.5", 4, kind="upgraded"),
        change(2, "telnet", "0.17", 5, kind="removed"),  # removals need no approval
        change(1, "games", "1.0", 45),  # outside the 30-day window
    ]
    register = [ApprovedSoftware("libreoffice*"), ApprovedSoftware("firefox-esr", "128.*")]

    no_register = rule(ctx(hosts, software_changes=changes), "fleet_software_approved")
    assert no_register.status == "unknown"
    assert "approved-software" in no_register.evidence.vi and "khai báo" in no_register.evidence.vi

    bad = rule(
        ctx(hosts, software_changes=changes, approved_software=register), "fleet_software_approved"
    )
    assert bad.status == "fail" and bad.data["count"] == 1 and bad.data["total"] == 3
    date_vi = (NOW - timedelta(days=3)).strftime("%d/%m/%Y")
    assert f"pc-02: anydesk 6.3.0 ({date_vi})" in bad.evidence.vi
    assert "libreoffice" not in bad.evidence.vi and "games" not in bad.evidence.vi

    ok = rule(
        ctx(hosts, software_changes=changes,
            approved_software=[*register, ApprovedSoftware("anydesk")]),
        "fleet_software_approved",
    )
    assert ok.status == "pass"

    wrong_version = [ApprovedSoftware("libreoffice*"), ApprovedSoftware("firefox-esr", "115.*"),
                     ApprovedSoftware("anydesk")]
    assert rule(
        ctx(hosts, software_changes=changes, approved_software=wrong_version),
        "fleet_software_approved",
    ).status == "fail"

    empty = rule(ctx(hosts, software_changes=changes, approved_software=[]),
                 "fleet_software_approved")
    assert empty.status == "fail" and empty.data["count"] == 3

    quiet = rule(ctx(hosts, approved_software=[]), "fleet_software_approved")
    assert quiet.status == "pass"


# --- backup before install --------------------------------------------------------


def backups(*points: tuple[float, float | None]) -> list[BackupObservation]:
    """(report days ago, newest backup days ago or None = no backup facts)."""
    return [
        BackupObservation(
            collected_at=NOW - timedelta(days=r),
            observed=b is not None,
            newest_backup_at=None if b is None else NOW - timedelta(days=b),
        )
        for r, b in points
    ]


def test_backup_before_install() -> None:
    hosts = [fleet_host(1, role="server"), fleet_host(2, role="server")]
    installs = [change(1, "nginx", "1.22", 5), change(2, "postgresql-15", "15.8", 10)]

    def judge(history: dict[int, list[BackupObservation]]) -> Finding:
        return rule(
            ctx(hosts, software_changes=installs, backups=history),
            "fleet_backup_before_install",
        )

    # backup 1 day before each install (as seen by the report that showed it)
    ok = judge({1: backups((5, 6)), 2: backups((12, 11), (10, 11))})
    assert ok.status == "pass"

    # host 2's latest report at/before its install saw a 20-day-old backup; a newer
    # backup after the install does not count
    bad = judge({1: backups((5, 6)), 2: backups((10, 30), (1, 1))})
    assert bad.status == "fail" and bad.data["count"] == 1
    assert "pc-02: postgresql-15 15.8" in bad.evidence.vi and "nginx" not in bad.evidence.vi

    unknown = judge({1: backups((5, 6)), 2: backups((10, None))})
    assert unknown.status == "unknown" and unknown.data["unknown_hosts"] == ["pc-02"]

    no_report_before = judge({1: backups((5, 6)), 2: backups((2, 1))})
    assert no_report_before.status == "unknown"

    assert rule(ctx(hosts), "fleet_backup_before_install").status == "pass"  # nothing installed


def test_backup_before_install_falls_back_on_latest_report() -> None:
    no_backup = {"backup": BackupSection(status="unknown", reason="not configured")}
    hosts = [fleet_host(1, role="server", **no_backup)]
    installs = [change(1, "nginx", "1.22", 0)]
    f = rule(ctx(hosts, software_changes=installs), "fleet_backup_before_install")
    assert f.status == "unknown"
    recent = [fleet_host(1, role="server")]  # factories: backup 1 day before NOW
    f = rule(ctx(recent, software_changes=installs), "fleet_backup_before_install")
    assert f.status == "pass"


# --- storage ----------------------------------------------------------------------


def _software(*names: str) -> SoftwareSection:
    return SoftwareSection(manager="dpkg", packages=[Package(name=n, version="1") for n in names])


def test_central_storage() -> None:
    samba = fleet_host(1, role="server", software=_software("clamav", "samba"))
    ok = rule(ctx([samba, fleet_host(2)]), "fleet_central_storage")
    assert ok.status == "pass" and "pc-01 (samba)" in ok.evidence.vi

    nfs_port = fleet_host(
        1, role="server",
        network=NetworkSection(listening=[ListeningSocket(protocol="tcp", address="0.0.0.0",
                                                          port=2049)]),
    )
    assert rule(ctx([nfs_port]), "fleet_central_storage").status == "pass"

    loopback = fleet_host(
        1, role="server",
        network=NetworkSection(listening=[ListeningSocket(protocol="tcp", address="127.0.0.1",
                                                          port=445)]),
    )
    workstation_share = fleet_host(2, role="workstation", software=_software("samba"))
    none = rule(ctx([loopback, workstation_share]), "fleet_central_storage")
    assert none.status == "unknown"  # never a failure: a NAS without agent needs attestation
    assert "NAS" in none.evidence.vi and "attest" in none.evidence.en


def test_parallel_servers() -> None:
    two = [fleet_host(1, role="server"), fleet_host(2, role="server"), fleet_host(3)]
    ok = rule(ctx(two), "fleet_parallel_servers")
    assert ok.status == "pass" and ok.severity == "low"

    one_silent = [fleet_host(1, role="server"), fleet_host(2, role="server", seen_hours_ago=100)]
    bad = rule(ctx(one_silent), "fleet_parallel_servers")
    assert bad.status == "fail" and bad.data["reporting"] == 1 and bad.data["servers"] == 2
    assert "1/2" in bad.evidence.vi

    assert rule(ctx([fleet_host(1)]), "fleet_parallel_servers").status == "fail"


def test_stricter_parameters_change_the_outcome() -> None:
    params = {k: dict(v) for k, v in default_parameters().items()}
    params["fleet"]["min_parallel_servers"] = 3
    two = [fleet_host(1, role="server"), fleet_host(2, role="server")]
    context = FleetContext(level=3, now=NOW, params=params, hosts=two)
    assert rule(context, "fleet_parallel_servers").status == "fail"


def test_now_is_respected() -> None:
    later = datetime(2027, 1, 1, tzinfo=NOW.tzinfo)
    context = FleetContext(
        level=3, now=later, params=default_parameters(), hosts=[fleet_host(1)],
        software_changes=[change(1, "anydesk", "6", 3)], approved_software=[],
    )
    # the change is more than 30 days before `now`
    assert rule(context, "fleet_software_approved").status == "pass"
