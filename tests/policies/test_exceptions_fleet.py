"""Attestations, waivers and fleet rules in the engine."""

from __future__ import annotations

from datetime import timedelta

from agent.report import AntivirusSection
from policies import evaluate_fleet, evaluate_host, requirement_verdicts, summarize_agency
from policies.exceptions import Attestation, Waiver, apply_waivers, latest_attestations
from policies.fleet import ApprovedSoftware, FleetContext, FleetHost
from policies.parameters import default_parameters
from tests.factories import NOW, make_report


def attestation(req: str = "D16.2.L3.a", days_valid: int = 365, **kw) -> Attestation:
    at = NOW - timedelta(days=10)
    return Attestation(
        requirement_id=req,
        statement="Phòng máy chủ riêng tầng 3, khóa từ",
        attested_by="Nguyễn Văn A",
        attested_at=at,
        expires_at=at + timedelta(days=days_valid),
        **kw,
    )


def by_id(verdicts):
    return {v.requirement_id: v for v in verdicts}


def test_attestation_turns_awaiting_into_its_status_until_it_expires():
    ev = evaluate_host(make_report(), 3)
    assert by_id(ev.requirements)["D16.2.L3.a"].status == "unknown"

    valid = {"D16.2.L3.a": attestation()}
    got = by_id(requirement_verdicts(ev.findings, 3, "server", attestations=valid, now=NOW))
    v = got["D16.2.L3.a"]
    assert v.status == "pass"
    assert "Nguyễn Văn A" in v.evidence[0].vi and v.attestation.attested_by == "Nguyễn Văn A"

    expired = {"D16.2.L3.a": attestation(days_valid=5)}
    got = by_id(requirement_verdicts(ev.findings, 3, "server", attestations=expired, now=NOW))
    assert got["D16.2.L3.a"].status == "unknown"
    assert "hết hiệu lực" in got["D16.2.L3.a"].reason.vi
    assert got["D16.2.L3.a"].attestation.expired is True

    negative = {"D16.2.L3.a": attestation(status="fail")}
    got = by_id(requirement_verdicts(ev.findings, 3, "server", attestations=negative, now=NOW))
    assert got["D16.2.L3.a"].status == "fail"


def test_latest_attestation_wins():
    old = attestation(status="fail")
    new = attestation().model_copy(update={"attested_at": NOW - timedelta(days=1)})
    assert latest_attestations([new, old])["D16.2.L3.a"].status == "pass"


def waiver(check_id: str, host_id: int | None = 7, days: int = 30) -> Waiver:
    return Waiver(
        id=1,
        check_id=check_id,
        host_id=host_id,
        justification="Máy đo lường không hỗ trợ ClamAV",
        author="Trần Thị B",
        created_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=days),
    )


def test_waiver_marks_failures_waived_never_pass_and_expires():
    ev = evaluate_host(make_report(antivirus=AntivirusSection(products=[])), 2)
    waived = apply_waivers(ev.findings, [waiver("av_installed")], NOW, host_id=7)
    f = next(f for f in waived if f.check_id == "av_installed")
    assert f.status == "waived" and f.waiver.original_status == "fail"
    assert "Trần Thị B" in f.evidence.vi and "Không đạt" in f.evidence.vi
    # other hosts, other checks, passing checks and expired waivers are untouched
    assert next(f for f in apply_waivers(ev.findings, [waiver("av_installed")], NOW, 8)
                if f.check_id == "av_installed").status == "fail"
    assert next(f for f in apply_waivers(ev.findings, [waiver("av_installed", days=-2)], NOW, 7)
                if f.check_id == "av_installed").status == "fail"
    passing = next(f for f in apply_waivers(ev.findings, [waiver("fw_active")], NOW, 7)
                   if f.check_id == "fw_active")
    assert passing.status == "pass" and passing.waiver is None
    # agency-wide waiver covers every host
    assert next(f for f in apply_waivers(ev.findings, [waiver("av_installed", None)], NOW, 99)
                if f.check_id == "av_installed").status == "waived"
    verdicts = by_id(requirement_verdicts(waived, 2, "server", now=NOW))
    assert verdicts["D19.1.a"].status == "waived"


def fleet(hosts, **kw) -> FleetContext:
    return FleetContext(level=3, now=NOW, params=default_parameters(), hosts=hosts, **kw)


def host(i: int, seen_hours_ago: float | None) -> FleetHost:
    seen = None if seen_hours_ago is None else NOW - timedelta(hours=seen_hours_ago)
    return FleetHost(host_id=i, hostname=f"pc-{i:02d}", role="workstation",
                     enrolled_at=NOW - timedelta(days=90), last_seen_at=seen)


def test_silent_hosts_fail_d16_1_b_at_agency_level():
    findings = evaluate_fleet(fleet([host(1, 2), host(2, 72), host(3, None)]))
    f = next(f for f in findings if f.check_id == "fleet_hosts_reporting")
    assert f.status == "fail" and f.requirement_ids == ["D16.1.b"]
    assert "pc-02" in f.evidence.vi and "pc-03" in f.evidence.vi and "pc-01" not in f.evidence.vi
    articles = {a.article: a for a in summarize_agency([], 3, fleet_findings=findings)}
    d16 = by_id(articles[16].requirements)
    assert d16["D16.1.b"].status == "fail"
    ok = evaluate_fleet(fleet([host(1, 2)]))
    assert next(f for f in ok if f.check_id == "fleet_hosts_reporting").status == "pass"
    none = evaluate_fleet(fleet([]))
    assert next(f for f in none if f.check_id == "fleet_hosts_reporting").status == "unknown"


def test_host_view_of_a_fleet_requirement_points_to_the_agency():
    ev = evaluate_host(make_report(), 3)
    v = by_id(ev.requirements)["D16.1.b"]
    assert v.status == "unknown" and "toàn đơn vị" in v.reason.vi


def test_approved_software_patterns():
    entry = ApprovedSoftware(name="libreoffice*", version="7.*")
    assert entry.matches("libreoffice-writer", "7.4.7")
    assert not entry.matches("libreoffice-writer", "24.2")
    assert not entry.matches("teamviewer", "15")
    assert ApprovedSoftware(name="firefox-esr").matches("firefox-esr", None)
