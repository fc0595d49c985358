"""Waivers: an accepted exception shows as ``waived`` (never ``pass``) until it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from collector import waivers
from collector.models import Agency, WaiverRecord
from tests.collector.conftest import ADMIN_HEADERS, Agent, Api
from tests.factories import healthy_sections, make_report

FAILING = "patch_reboot_pending"  # fails on the reports below, alone in D19.2.c
REQUIREMENT = "D19.2.c"
PASSING = "av_installed"


def _now() -> datetime:
    return datetime.now(UTC)


def _in(days: float) -> str:
    return (_now() + timedelta(days=days)).isoformat()


def _report_reboot_pending(api: Api, agent: Agent, hostname: str) -> None:
    now = _now()
    patches = healthy_sections(now)["patches"].model_copy(update={"reboot_required": True})
    report = make_report(
        now=now, hostname=hostname, machine_id=agent.machine_id or "", patches=patches
    )
    r = api.post_report(agent, report)
    assert r.status_code == 201, r.text


@pytest.fixture
def fleet(api: Api) -> tuple[int, Agent, Agent]:
    """An agency with two hosts whose reports fail ``patch_reboot_pending``."""
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    first = api.enroll(token, machine_id="machine-0001", hostname="pc-01")
    second = api.enroll(token, machine_id="machine-0002", hostname="pc-02")
    _report_reboot_pending(api, first, "pc-01")
    _report_reboot_pending(api, second, "pc-02")
    return agency["id"], first, second


def _waive(api: Api, agency_id: int, **body: Any):
    payload: dict[str, Any] = {
        "check_id": FAILING,
        "justification": "Máy chủ kế toán chỉ khởi động lại vào cuối quý",
        "author": "Trần Thị B, Giám đốc Sở",
        "expires_at": _in(30),
    }
    payload.update(body)
    return api.client.post(
        f"/api/v1/agencies/{agency_id}/waivers", json=payload, headers=ADMIN_HEADERS
    )


def _finding(api: Api, host_id: int, check_id: str = FAILING) -> dict:
    r = api.client.get(f"/api/v1/hosts/{host_id}/findings", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    return next(f for f in r.json() if f["check_id"] == check_id)


def _host_status(api: Api, host_id: int, requirement: str = REQUIREMENT) -> str:
    r = api.client.get(f"/api/v1/hosts/{host_id}/compliance", headers=ADMIN_HEADERS)
    return next(v["status"] for v in r.json() if v["requirement_id"] == requirement)


def _agency_status(api: Api, agency_id: int, requirement: str = REQUIREMENT) -> str:
    r = api.client.get(f"/api/v1/agencies/{agency_id}/compliance", headers=ADMIN_HEADERS)
    verdicts = {v["requirement_id"]: v for a in r.json() for v in a["requirements"]}
    return verdicts[requirement]["status"]


def test_host_waiver_shows_waived_on_that_host_only(api: Api, fleet) -> None:
    agency_id, first, second = fleet
    assert _finding(api, first.host_id)["status"] == "fail"

    r = _waive(api, agency_id, host_id=first.host_id)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] == "active" and created["hostname"] == "pc-01"
    assert created["check_title"]["vi"]

    waived = _finding(api, first.host_id)
    assert waived["status"] == "waived"
    assert waived["waiver"]["waiver_id"] == created["id"]
    assert waived["waiver"]["original_status"] == "fail"
    assert waived["waiver"]["author"] == "Trần Thị B, Giám đốc Sở"
    assert "Được miễn trừ" in waived["evidence"]["vi"]
    assert _host_status(api, first.host_id) == "waived"

    assert _finding(api, second.host_id)["status"] == "fail"
    assert _finding(api, second.host_id)["waiver"] is None
    assert _host_status(api, second.host_id) == "fail"
    assert _agency_status(api, agency_id) == "fail"  # one host still fails

    by_status = api.client.get(
        f"/api/v1/hosts/{first.host_id}/findings?status=waived", headers=ADMIN_HEADERS
    ).json()
    assert [f["check_id"] for f in by_status] == [FAILING]
    failing = api.client.get(
        f"/api/v1/hosts/{first.host_id}/findings?status=fail", headers=ADMIN_HEADERS
    ).json()
    assert FAILING not in [f["check_id"] for f in failing]


def test_agency_wide_waiver_covers_every_host(api: Api, fleet) -> None:
    agency_id, first, second = fleet
    r = _waive(api, agency_id)
    assert r.status_code == 201, r.text
    assert r.json()["host_id"] is None
    for agent in (first, second):
        assert _finding(api, agent.host_id)["status"] == "waived"
        assert _host_status(api, agent.host_id) == "waived"
    assert _agency_status(api, agency_id) == "waived"


def test_revoked_waiver_turns_back_to_fail(api: Api, fleet) -> None:
    agency_id, first, _ = fleet
    created = _waive(api, agency_id, host_id=first.host_id).json()
    r = api.client.delete(f"/api/v1/waivers/{created['id']}", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "revoked" and r.json()["revoked_at"]

    assert _finding(api, first.host_id)["status"] == "fail"
    assert _host_status(api, first.host_id) == "fail"
    listed = api.client.get(f"/api/v1/agencies/{agency_id}/waivers", headers=ADMIN_HEADERS)
    assert [w["state"] for w in listed.json()] == ["revoked"]
    active = api.client.get(
        f"/api/v1/agencies/{agency_id}/waivers?active=true", headers=ADMIN_HEADERS
    )
    assert active.json() == []
    assert api.client.delete("/api/v1/waivers/9999", headers=ADMIN_HEADERS).status_code == 404


def test_expired_waiver_turns_back_to_fail(api: Api, fleet) -> None:
    agency_id, first, _ = fleet
    created = _waive(api, agency_id).json()
    assert _finding(api, first.host_id)["status"] == "waived"
    with Session(api.engine) as session:  # time passes: the waiver runs out
        row = session.get(WaiverRecord, created["id"])
        assert row is not None
        row.expires_at = _now() - timedelta(minutes=1)
        session.add(row)
        session.commit()

    assert _finding(api, first.host_id)["status"] == "fail"
    assert _host_status(api, first.host_id) == "fail"
    assert _agency_status(api, agency_id) == "fail"
    listed = api.client.get(f"/api/v1/agencies/{agency_id}/waivers", headers=ADMIN_HEADERS)
    assert [w["state"] for w in listed.json()] == ["expired"]
    active = api.client.get(
        f"/api/v1/agencies/{agency_id}/waivers?active=true", headers=ADMIN_HEADERS
    )
    assert active.json() == []


def test_active_waivers_at_a_given_time(api: Api, fleet) -> None:
    agency_id, first, _ = fleet
    _waive(api, agency_id, host_id=first.host_id, expires_at=_in(10))
    with Session(api.engine) as session:
        assert len(waivers.active_waivers(session, agency_id, _now())) == 1
        assert waivers.active_waivers(session, agency_id, _now() + timedelta(days=11)) == []
        assert waivers.active_waivers(session, agency_id, _now() - timedelta(days=1)) == []
        assert len(waivers.list_waivers(session, agency_id)) == 1


def test_waiver_never_changes_a_pass(api: Api, fleet) -> None:
    agency_id, first, _ = fleet
    assert _finding(api, first.host_id, PASSING)["status"] == "pass"
    assert _waive(api, agency_id, check_id=PASSING).status_code == 201
    finding = _finding(api, first.host_id, PASSING)
    assert finding["status"] == "pass"
    assert finding["waiver"] is None
    assert _host_status(api, first.host_id, "D19.1.a") == "pass"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"check_id": "no_such_check"}, "unknown check"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "in the future"),
        ({"expires_at": _in(400)}, "365 days"),
        ({"justification": "   "}, "justification"),
        ({"justification": ""}, ""),
        ({"author": " "}, "author"),
        ({"check_id": "fleet_hosts_reporting", "host_id": "FIRST"}, "without host_id"),
        ({"host_id": 9999}, "does not belong"),
    ],
)
def test_invalid_waivers_are_refused(api: Api, fleet, body: dict, message: str) -> None:
    agency_id, first, _ = fleet
    if body.get("host_id") == "FIRST":
        body = {**body, "host_id": first.host_id}
    before = api.counts()
    r = _waive(api, agency_id, **body)
    assert r.status_code == 422, r.text
    assert message in str(r.json()["detail"])
    assert api.counts() == before


def test_fleet_rule_can_be_waived_agency_wide(api: Api, fleet) -> None:
    agency_id, _, _ = fleet
    api.enroll(api.create_token(agency_id), machine_id="machine-0003", hostname="silent")
    assert _agency_status(api, agency_id, "D16.1.b") == "fail"  # a host never reported
    assert _waive(api, agency_id, check_id="fleet_hosts_reporting").status_code == 201
    # the silent-host failure is waived; the requirement still waits for a
    # discovery sweep (fleet_unmanaged_hosts), so it is undetermined, not failed
    assert _agency_status(api, agency_id, "D16.1.b") == "unknown"
    fleet_findings = api.client.get(
        f"/api/v1/agencies/{agency_id}/fleet", headers=ADMIN_HEADERS
    ).json()
    reporting = next(f for f in fleet_findings if f["check_id"] == "fleet_hosts_reporting")
    assert reporting["status"] == "waived"
    assert reporting["waiver"]["original_status"] == "fail"


def test_host_of_another_agency_is_refused(api: Api, fleet) -> None:
    agency_id, _, _ = fleet
    other = api.create_agency(code="so-khac")
    stranger = api.enroll(api.create_token(other["id"]), machine_id="machine-9", hostname="x")
    r = _waive(api, agency_id, host_id=stranger.host_id)
    assert r.status_code == 422
    assert "does not belong" in r.json()["detail"]
    assert _waive(api, 9999).status_code == 404


def test_max_waiver_days_is_a_setting(make_api) -> None:
    api = make_api(max_waiver_days=7)
    agency = api.create_agency()
    assert _waive(api, agency["id"], expires_at=_in(8)).status_code == 422
    assert _waive(api, agency["id"], expires_at=_in(6)).status_code == 201


def test_other_agencies_are_unaffected(api: Api, fleet) -> None:
    agency_id, _, _ = fleet
    _waive(api, agency_id)
    other = api.create_agency(code="so-khac")
    stranger = api.enroll(api.create_token(other["id"]), machine_id="machine-9", hostname="x")
    _report_reboot_pending(api, stranger, "x")
    assert _finding(api, stranger.host_id)["status"] == "fail"
    with Session(api.engine) as session:
        agency = session.get(Agency, other["id"])
        assert agency is not None and agency.id is not None
        assert waivers.list_waivers(session, agency.id) == []


def test_every_endpoint_needs_the_admin_token(api: Api, fleet) -> None:
    agency_id, _, _ = fleet
    created = _waive(api, agency_id).json()
    body = {"check_id": FAILING, "justification": "x", "author": "y", "expires_at": _in(3)}
    calls = [
        ("POST", f"/api/v1/agencies/{agency_id}/waivers", {"json": body}),
        ("GET", f"/api/v1/agencies/{agency_id}/waivers", {}),
        ("GET", f"/api/v1/agencies/{agency_id}/waivers?active=true", {}),
        ("GET", f"/api/v1/waivers/{created['id']}", {}),
        ("DELETE", f"/api/v1/waivers/{created['id']}", {}),
    ]
    before = api.counts()
    for method, url, kwargs in calls:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = api.client.request(method, url, headers=headers, **kwargs)
            assert r.status_code == 401, (method, url, r.text)
    assert api.counts() == before
