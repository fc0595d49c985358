"""Agency-wide rules of Điều 14 khoản 4 and Điều 20 (policies/fleet_rules/governance.py)."""

from __future__ import annotations

from datetime import timedelta

from agent.report import ListeningSocket, NetworkSection
from policies import evaluate_fleet, summarize_agency
from policies.fleet import FleetContext, FleetHost
from policies.parameters import default_parameters, merge
from tests.factories import NOW, make_report


def host(i: int, role: str = "workstation", days_ago: float | None = 1, report=None) -> FleetHost:
    seen = None if days_ago is None else NOW - timedelta(days=days_ago)
    return FleetHost(
        host_id=i,
        hostname=f"{'srv' if role == 'server' else 'pc'}-{i:02d}",
        role=role,
        enrolled_at=NOW - timedelta(days=800),
        last_seen_at=seen,
        report=report,
    )


def finding(hosts, rule: str, level: int = 3, params=None):
    ctx = FleetContext(level=level, now=NOW, params=params or default_parameters(), hosts=hosts)
    return next(f for f in evaluate_fleet(ctx) if f.check_id == rule)


def test_servers_present_d14_4_a():
    f = finding([host(1), host(2, "server"), host(3, "server")], "fleet_servers_present")
    assert f.status == "pass" and f.requirement_ids == ["D14.4.a"]
    assert "srv-02, srv-03" in f.evidence.en and "pc-01" not in f.evidence.en
    assert finding([host(1), host(2)], "fleet_servers_present").status == "fail"
    unknown = finding([host(1), host(2, "unknown")], "fleet_servers_present")
    assert unknown.status == "unknown" and "pc-02" in unknown.evidence.vi
    assert finding([], "fleet_servers_present").status == "unknown"


def test_servers_present_names_directory_servers():
    ldap = make_report(
        hostname="srv-01",
        network=NetworkSection(
            listening=[ListeningSocket(protocol="tcp", address="0.0.0.0", port=389)]
        ),
    )
    f = finding([host(1, "server", report=ldap), host(2, "server")], "fleet_servers_present")
    assert f.status == "pass"
    assert f.evidence.en.endswith(
        "directory/authentication service (LDAP, Kerberos) seen on: srv-01"
    )
    assert f.data["directory"] == ["srv-01"]


def test_assessment_recent_d20_3_b():
    recent = finding([host(1, days_ago=400), host(2, days_ago=30)], "fleet_assessment_recent")
    assert recent.status == "pass" and recent.requirement_ids == ["D20.3.b"]
    assert (NOW - timedelta(days=30)).strftime("%d/%m/%Y") in recent.evidence.vi
    assert "365" in recent.evidence.en
    stale = finding([host(1, days_ago=400)], "fleet_assessment_recent")
    assert stale.status == "fail" and "400 days old" in stale.evidence.en
    assert finding([host(1, days_ago=None)], "fleet_assessment_recent").status == "unknown"
    # the report's own collection time is preferred over the last contact
    old_report = make_report(now=NOW - timedelta(days=500))
    f = finding([host(1, days_ago=1, report=old_report)], "fleet_assessment_recent")
    assert f.status == "fail"


def test_assessment_age_is_a_parameter():
    params = merge(default_parameters(), {"fleet": {"assessment_max_age_days": 14}})
    assert default_parameters()["fleet"]["assessment_max_age_days"] == 365
    f = finding([host(1, days_ago=30)], "fleet_assessment_recent", params=params)
    assert f.status == "fail" and "14" in f.evidence.en


def test_security_report_d20_6():
    f = finding([host(1), host(2, days_ago=None)], "fleet_security_report")
    assert f.status == "pass" and f.requirement_ids == ["D20.6"]
    assert "1 of 2 machines reported" in f.evidence.en
    assert finding([host(1, days_ago=None)], "fleet_security_report").status == "unknown"
    assert finding([], "fleet_security_report").status == "unknown"


def test_agency_summary_uses_the_new_rules_and_levels():
    hosts = [host(1), host(2, "server")]
    for level, d14 in ((1, "not_applicable"), (2, "pass")):
        ctx = FleetContext(level=level, now=NOW, params=default_parameters(), hosts=hosts)
        articles = {
            a.article: a
            for a in summarize_agency([], level, fleet_findings=evaluate_fleet(ctx), now=NOW)
        }
        by_id = {r.requirement_id: r for a in articles.values() for r in a.requirements}
        assert by_id["D14.4.a"].status == d14
        assert by_id["D20.3.b"].status == "pass"
        assert by_id["D20.6"].status == "pass"
        assert by_id["D20.4"].status == "not_applicable"
        assert by_id["D20.1"].status == "unknown"  # awaiting attestation
