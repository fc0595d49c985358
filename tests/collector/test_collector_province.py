"""The province-wide compliance view (GET /api/v1/province/compliance).

Every figure of the view must be what ``compliance.agency_articles`` returns
for that agency at ``as_of``; here it is checked against a reference rebuilt
the slow way (every host's ``host_evaluation`` and the fleet context built
host by host, as the collector did before the summary existed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from collector import attestations, compliance, crud, fleet_data, province, waivers
from collector.models import Agency, AgencyComplianceSummary
from policies import engine
from policies.exceptions import apply_waivers
from policies.fleet import FleetContext, FleetHost, SoftwareChange
from policies.model import ArticleVerdict
from tests.collector.conftest import ADMIN_HEADERS, Agent, Api, insecure_sections, make_report
from tests.factories import healthy_sections, stale_patches

URL = "/api/v1/province/compliance"


# --- the reference: the per-host computation ------------------------------------------


def _reference_fleet_context(session: Session, agency: Agency, now: datetime) -> FleetContext:
    """``fleet_data.fleet_context`` as it was: several queries per host."""
    assert agency.id is not None
    params = fleet_data.agency_parameters(agency)
    since = now - timedelta(days=params["fleet"]["software_change_window_days"])
    active = waivers.active_waivers(session, agency.id, now)
    hosts: list[FleetHost] = []
    changes: list[SoftwareChange] = []
    for host in crud.list_hosts(session, agency.id):
        assert host.id is not None
        stored = crud.latest_report(session, host)
        hosts.append(
            FleetHost(
                host_id=host.id,
                hostname=host.hostname,
                role=fleet_data._role(host, stored),
                enrolled_at=host.enrolled_at,
                last_seen_at=host.last_seen_at,
                findings=fleet_data.host_findings(session, host, now, active) if stored else {},
                report=fleet_data.rebuild_report(session, stored) if stored else None,
            )
        )
        changes += [
            SoftwareChange(
                host_id=host.id,
                hostname=host.hostname,
                change=row.change,
                name=row.name,
                arch=row.arch or None,
                old_version=row.old_version,
                new_version=row.new_version,
                collected_at=row.collected_at,
            )
            for row in crud.software_changes(session, host.id, since=since)
            if row.collected_at <= now
        ]
    return FleetContext(
        level=agency.level,
        now=now,
        params=params,
        hosts=hosts,
        software_changes=changes,
        approved_software=fleet_data.approved_register(session, agency.id),
        backups=fleet_data.backup_history(session, changes),
        network=fleet_data._network_facts(session, agency, now),
        discovered=fleet_data.discovered_devices(session, agency.id),
    )


def reference_articles(session: Session, agency: Agency, now: datetime) -> list[ArticleVerdict]:
    assert agency.id is not None
    active = waivers.active_waivers(session, agency.id, now)
    attested = attestations.attestations_for(session, agency.id)
    evaluations = [
        compliance.host_evaluation(
            session, host, agency, now=now, host_waivers=active, agency_attestations=attested
        )
        for host in crud.list_hosts(session, agency.id)
    ]
    fleet = engine.evaluate_fleet(_reference_fleet_context(session, agency, now))
    fleet = apply_waivers(fleet, active, now, None)
    return engine.summarize_agency(
        evaluations, agency.level, fleet_findings=fleet, attestations=attested, now=now
    )


def _as_view(articles: list[ArticleVerdict]) -> list[dict[str, Any]]:
    return [{"article": a.article, "status": a.status, "counts": dict(a.counts)} for a in articles]


def _view(api: Api) -> dict[int, dict[str, Any]]:
    r = api.client.get(URL, headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    return {a["id"]: a for a in r.json()["agencies"]}


def assert_view_matches(api: Api) -> dict[int, dict[str, Any]]:
    """The view equals the reference of every agency at its ``as_of`` (and so does the
    fast ``agency_articles``, in full: requirements, evidence, reasons)."""
    view = _view(api)
    with Session(api.engine) as session:
        agencies = crud.list_agencies(session)
        assert sorted(view) == sorted(a.id for a in agencies)
        for agency in agencies:
            assert agency.id is not None
            entry = view[agency.id]
            as_of = datetime.fromisoformat(entry["as_of"])
            expected = reference_articles(session, agency, as_of)
            assert compliance.agency_articles(session, agency, now=as_of) == expected
            assert entry["articles"] == _as_view(expected), agency.code
            assert [a["article"] for a in entry["articles"]] == [14, 16, 17, 18, 19, 20]
            assert entry["level"] == agency.level
            assert (entry["code"], entry["name"]) == (agency.code, agency.name)
            hosts = crud.list_hosts(session, agency.id)
            limit = timedelta(
                hours=fleet_data.agency_parameters(agency)["fleet"]["max_silence_hours"]
            )
            assert entry["hosts"] == len(hosts)
            assert entry["hosts_silent"] == sum(
                1 for h in hosts if h.last_seen_at is None or as_of - h.last_seen_at > limit
            )
    return view


# --- a seeded province ------------------------------------------------------------------


def _post(api: Api, agent: Agent, hostname: str, **sections: Any) -> None:
    now = datetime.now(UTC)
    report = make_report(
        hostname=hostname, machine_id=agent.machine_id, collected_at=now, **sections
    )
    r = api.post_report(agent, report)
    assert r.status_code == 201, r.text


@pytest.fixture
def province_db(api: Api) -> dict[str, Any]:
    """Three agencies (Mức độ 1, 3, 4): healthy, insecure and stale hosts, a server,
    a host that never reported, waivers and an attestation."""
    made: dict[str, Any] = {"agencies": {}, "agents": {}}
    for code, level in (("so-a", 1), ("so-b", 3), ("so-c", 4)):
        agency = api.create_agency(code=code, level=level, name=f"Sở {code}")
        made["agencies"][code] = agency["id"]
        token = api.create_token(agency["id"])
        for i, kind in enumerate(("healthy", "insecure", "stale", "server", "silent")):
            role = "server" if kind == "server" else "workstation"
            agent = api.enroll(token, f"{code}-m{i}", f"{code}-pc{i}", role=role)
            made["agents"][(code, kind)] = agent
            if kind == "insecure":
                _post(api, agent, f"{code}-pc{i}", **insecure_sections())
            elif kind == "stale":
                _post(api, agent, f"{code}-pc{i}", patches=stale_patches(datetime.now(UTC)))
            elif kind == "server":
                _post(api, agent, f"{code}-pc{i}", **healthy_sections(datetime.now(UTC)))
            elif kind == "healthy":
                _post(api, agent, f"{code}-pc{i}")
    b = made["agencies"]["so-b"]
    r = api.client.post(
        f"/api/v1/agencies/{b}/waivers",
        json={
            "check_id": "patch_reboot_pending",
            "justification": "Khởi động lại cuối quý",
            "author": "Trần Thị B",
            "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    insecure = made["agents"][("so-b", "insecure")]
    r = api.client.post(
        f"/api/v1/agencies/{b}/waivers",
        json={
            "check_id": "av_installed",
            "host_id": insecure.host_id,
            "justification": "Máy cách ly",
            "author": "Trần Thị B",
            "expires_at": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
        },
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    c = made["agencies"]["so-c"]
    r = api.client.get(f"/api/v1/agencies/{c}/attestable-requirements", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    requirement = r.json()[0]["id"]
    r = api.client.post(
        f"/api/v1/agencies/{c}/attestations",
        json={"requirement_id": requirement, "statement": "Đã rà soát", "attested_by": "Lê C"},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    made["attestation"] = r.json()
    return made


def test_view_equals_agency_articles_for_every_agency(api: Api, province_db) -> None:
    view = assert_view_matches(api)
    assert len(view) == 3
    b = view[province_db["agencies"]["so-b"]]
    assert b["hosts"] == 5 and b["hosts_silent"] == 1  # the host that never reported
    statuses = {a["status"] for e in view.values() for a in e["articles"]}
    assert {"fail", "waived"} & statuses or "fail" in statuses
    # Served from the stored rows: a second read computes nothing and answers the same.
    assert _view(api) == view


def test_changes_show_at_once(api: Api, province_db) -> None:
    """Waivers, revocations, attestations and Mức độ changes are reflected by the next read."""
    before = assert_view_matches(api)
    c = province_db["agencies"]["so-c"]
    # A new agency-wide waiver of a failing check of agency C.
    r = api.client.post(
        f"/api/v1/agencies/{c}/waivers",
        json={
            "check_id": "av_installed",
            "justification": "Chờ mua bản quyền",
            "author": "Lê C",
            "expires_at": (datetime.now(UTC) + timedelta(days=5)).isoformat(),
        },
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    waiver_id = r.json()["id"]
    after = assert_view_matches(api)
    assert after[c]["as_of"] > before[c]["as_of"]
    assert after[c]["articles"] != before[c]["articles"]  # av_installed failed on a host
    b = province_db["agencies"]["so-b"]
    assert after[b]["as_of"] == before[b]["as_of"]  # other agencies are not recomputed

    r = api.client.delete(f"/api/v1/waivers/{waiver_id}", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    revoked = assert_view_matches(api)
    assert revoked[c]["articles"] == before[c]["articles"]

    attestation = province_db["attestation"]["id"]
    r = api.client.delete(f"/api/v1/attestations/{attestation}", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    unattested = assert_view_matches(api)
    assert unattested[c]["as_of"] > revoked[c]["as_of"]

    r = api.client.patch(f"/api/v1/agencies/{b}", json={"level": 1}, headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    relevelled = assert_view_matches(api)
    assert relevelled[b]["level"] == 1 and before[b]["level"] == 3


def test_reports_are_reflected_within_the_refresh_interval(
    api: Api, province_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_view_matches(api)
    monkeypatch.setenv("POSTURE_PROVINCE_REFRESH_SECONDS", "3600")
    a = province_db["agencies"]["so-a"]
    first = _view(api)[a]
    assert first["hosts_silent"] == 1
    agent = province_db["agents"][("so-a", "silent")]
    _post(api, agent, "so-a-pc4")  # the host that never reported does
    with Session(api.engine) as session:
        row = session.get(AgencyComplianceSummary, a)
        assert row is not None and row.ingests == 1  # counted, not yet recomputed
    stale = _view(api)[a]
    assert stale == first  # served as of its computation, and says so
    monkeypatch.setenv("POSTURE_PROVINCE_REFRESH_SECONDS", "0")
    fresh = assert_view_matches(api)[a]
    assert fresh["as_of"] > first["as_of"]
    assert fresh["hosts_silent"] == 0
    with Session(api.engine) as session:
        row = session.get(AgencyComplianceSummary, a)
        assert row is not None and (row.ingests, row.changes) == (0, 0)
        assert province.pending_rows(session) == 0


def test_row_expires_with_the_first_waiver_or_attestation_that_does(api: Api, province_db) -> None:
    assert_view_matches(api)
    b = province_db["agencies"]["so-b"]
    with Session(api.engine) as session:
        row = session.get(AgencyComplianceSummary, b)
        agency = session.get(Agency, b)
        assert row is not None and agency is not None
        soonest = min(w.expires_at for w in waivers.list_waivers(session, b))
        assert row.valid_until == min(
            soonest, row.computed_at + timedelta(seconds=province.max_age_seconds())
        )
        assert not province._due(row, agency, row.computed_at, row.policy_hash)
        assert province._due(row, agency, row.valid_until, row.policy_hash)


def test_province_view_requires_a_province_role(api: Api, agent: Agent) -> None:
    assert api.client.get(URL).status_code == 401
    r = api.client.get(URL, headers={"Authorization": f"Bearer {agent.credential}"})
    assert r.status_code == 403
