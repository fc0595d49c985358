"""The incident register through the API and the CLI: labels, filters, audit, refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector import cli
from collector.settings import Settings
from tests.collector.conftest import ADMIN_HEADERS, Api, make_report

T0 = datetime(2026, 10, 5, 8, 30, tzinfo=UTC)


def body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "category": "wan_devices",
        "title": "Bộ định tuyến WAN mất kết nối",
        "occurred_at": T0.isoformat(),
        "reported_by": "Lê Văn C, cán bộ chuyên trách CNTT",
    }
    values.update(overrides)
    return values


def audit_events(api: Api, action: str) -> list[dict[str, Any]]:
    r = api.client.get("/api/v1/audit", params={"action": action}, headers=ADMIN_HEADERS)
    assert r.status_code == 200
    return r.json()


def test_create_get_list_and_patch_with_labels_and_audit(api: Api) -> None:
    agent = api.new_agent()
    assert api.post_report(agent, make_report()).status_code == 201
    agency = api.client.get("/api/v1/agencies", headers=ADMIN_HEADERS).json()[0]["id"]

    r = api.client.post(
        f"/api/v1/agencies/{agency}/incidents",
        json=body(host_id=agent.host_id, description="Mất kết nối tới mạng TSLCD"),
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["category_label"] == {
        "vi": "Sự cố thiết bị kết nối mạng WAN",
        "en": "Incident of WAN connection devices",
    }
    assert created["scope"] == "local"
    assert created["scope_label"]["vi"] == "Cục bộ, không nghiêm trọng"
    assert created["status_label"] == {"vi": "Mới ghi nhận", "en": "Open"}
    assert created["hostname"] == "pc-01"
    assert created["agency_code"] == "so-tttt"
    assert datetime.fromisoformat(created["occurred_at"]) == T0
    incident = created["id"]

    (event,) = audit_events(api, "incident.create")
    assert event["target"] == f"incident:{incident}"
    assert event["actor"] == "admin-token"
    assert event["agency_id"] == agency
    assert event["detail"]["title"] == "Bộ định tuyến WAN mất kết nối"

    r = api.client.get(f"/api/v1/incidents/{incident}", headers=ADMIN_HEADERS)
    assert r.status_code == 200 and r.json() == created

    r = api.client.patch(
        f"/api/v1/incidents/{incident}",
        json={
            "status": "resolved",
            "handling": "Thay bộ nguồn của bộ định tuyến, kết nối đã khôi phục.",
            "leadership_informed_at": (T0 + timedelta(hours=1)).isoformat(),
        },
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["status_label"]["vi"] == "Đã xử lý xong"
    assert patched["resolved_at"] is not None  # set when resolved
    (update,) = audit_events(api, "incident.update")
    assert update["target"] == f"incident:{incident}"
    assert set(update["detail"]["changed"]) == {"status", "handling", "leadership_informed_at"}

    # the same values again: nothing changes, nothing is audited
    r = api.client.patch(
        f"/api/v1/incidents/{incident}", json={"status": "resolved"}, headers=ADMIN_HEADERS
    )
    assert r.status_code == 200
    assert len(audit_events(api, "incident.update")) == 1

    listed = api.client.get(f"/api/v1/agencies/{agency}/incidents", headers=ADMIN_HEADERS).json()
    assert [i["id"] for i in listed] == [incident]


def test_filters_and_the_province_view(api: Api) -> None:
    a = api.create_agency(code="so-tttt")["id"]
    b = api.create_agency(code="ubnd-bc", name="UBND Bến Cát", level=2)["id"]

    def create(agency: int, **overrides: Any) -> int:
        r = api.client.post(
            f"/api/v1/agencies/{agency}/incidents", json=body(**overrides), headers=ADMIN_HEADERS
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    old = create(a, occurred_at=(T0 - timedelta(days=200)).isoformat())
    wan = create(a)
    wide = create(
        a,
        category="information_security",
        scope="wide",
        status="handling",
        occurred_at=(T0 + timedelta(days=1)).isoformat(),
    )
    escalated = create(
        b, category="transmission_lines", escalated_at=T0.isoformat(), escalated_to="Sở TT&TT"
    )
    create(b, category="server_operation")  # local, not escalated

    def ids(path: str, **params: Any) -> list[int]:
        r = api.client.get(path, params=params, headers=ADMIN_HEADERS)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()]

    agency_a = f"/api/v1/agencies/{a}/incidents"
    assert ids(agency_a) == [wide, wan, old]  # newest first
    assert ids(agency_a, since=(T0 - timedelta(days=1)).isoformat()) == [wide, wan]
    assert ids(agency_a, until=T0.isoformat()) == [old]
    assert ids(agency_a, category="information_security") == [wide]
    assert ids(agency_a, status="handling") == [wide]

    province = "/api/v1/province/incidents"
    assert set(ids(province)) == {wide, escalated}
    assert ids(province, agency_id=b) == [escalated]
    assert ids(province, category="transmission_lines") == [escalated]
    assert len(ids(province, all_scopes=True)) == 5


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"category": "fire"}, "unknown category"),
        ({"scope": "global"}, "unknown scope"),
        ({"status": "lost"}, "unknown status"),
        (
            {"occurred_at": T0.isoformat(), "resolved_at": (T0 - timedelta(days=1)).isoformat()},
            "resolved_at is before occurred_at",
        ),
    ],
)
def test_invalid_incidents_are_refused(api: Api, overrides: dict[str, Any], fragment: str) -> None:
    agency = api.create_agency()["id"]
    before = api.counts()
    r = api.client.post(
        f"/api/v1/agencies/{agency}/incidents", json=body(**overrides), headers=ADMIN_HEADERS
    )
    assert r.status_code == 422
    assert fragment in r.json()["detail"]
    assert api.counts() == before  # no incident, no audit event


def test_host_of_another_agency_and_emptied_fields_are_refused(api: Api) -> None:
    other = api.new_agent(agency_code="ubnd-bc", level=2)
    agency = api.create_agency(code="so-tttt")["id"]
    r = api.client.post(
        f"/api/v1/agencies/{agency}/incidents",
        json=body(host_id=other.host_id),
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 422
    assert "is not a machine of agency" in r.json()["detail"]

    r = api.client.post(f"/api/v1/agencies/{agency}/incidents", json=body(), headers=ADMIN_HEADERS)
    incident = r.json()["id"]
    for patch, status in (
        ({"title": None}, 422),
        ({"host_id": other.host_id}, 422),
        ({"category": "fire"}, 422),
        ({"colour": "red"}, 422),
    ):
        r = api.client.patch(f"/api/v1/incidents/{incident}", json=patch, headers=ADMIN_HEADERS)
        assert r.status_code == status, (patch, r.text)
    assert api.client.get("/api/v1/incidents/999999", headers=ADMIN_HEADERS).status_code == 404
    assert audit_events(api, "incident.update") == []


def test_cli_add_list_update_is_audited(
    api: Api,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = api.new_agent()
    assert api.post_report(agent, make_report()).status_code == 201
    monkeypatch.setenv("POSTURE_DATABASE_URL", settings.database_url)
    code = cli.main(
        [
            "incident",
            "add",
            "--agency",
            "so-tttt",
            "--category",
            "server_operation",
            "--title",
            "Máy chủ cổng thông tin điện tử treo",
            "--occurred-at",
            "2026-10-05T08:30:00+07:00",
            "--reported-by",
            "Phạm Văn D",
            "--host",
            "pc-01",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    incident = int(out.split()[-1])

    assert cli.main(["incident", "update", str(incident), "--status", "handling"]) == 0
    assert "status" in capsys.readouterr().out
    assert cli.main(["incident", "list", "--agency", "so-tttt"]) == 0
    line = capsys.readouterr().out.strip()
    assert "Sự cố trong quá trình vận hành máy chủ" in line
    assert "Đang xử lý" in line
    assert "Máy chủ cổng thông tin điện tử treo" in line
    assert cli.main(["incident", "list", "--json"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["host_id"] == agent.host_id
    assert datetime.fromisoformat(row["occurred_at"]) == datetime(2026, 10, 5, 1, 30, tzinfo=UTC)
    assert row["status_label"]["en"] == "Being handled"

    actors = {e["action"]: e["actor"] for e in audit_events(api, "incident.")}
    assert set(actors) == {"incident.create", "incident.update"}
    assert all(a.startswith("cli:") for a in actors.values())

    assert cli.main(["incident", "update", "999999", "--status", "resolved"]) == 1
    code = cli.main(["incident", "update", str(incident), "--host", "no-such-machine"])
    assert code == 1
    assert "no machine" in capsys.readouterr().err
