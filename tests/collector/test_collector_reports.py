"""Report ingest: acceptance, idempotency, rejection of bad input, atomicity."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import timedelta

from sqlmodel import Session, col, select

import policies.engine
from agent.report import SCHEMA_VERSION, AntivirusSection, FirewallSection
from collector.models import Host, StoredFinding, StoredReport


def _stored(api) -> tuple[list[StoredReport], list[StoredFinding]]:
    with Session(api.engine) as session:
        reports = list(session.exec(select(StoredReport)).all())
        findings = list(session.exec(select(StoredFinding).order_by(col(StoredFinding.id))).all())
        return reports, findings


def test_report_accepted_and_findings_stored(api, agent, report_factory) -> None:
    report = report_factory()
    r = api.post_report(agent, report)
    assert r.status_code == 201, r.text
    data = r.json()
    assert data["status"] == "accepted"
    assert data["report_id"] == str(report.report_id)
    assert data["host_id"] == agent.host_id

    expected = policies.evaluate_host(report, 3, "workstation")
    summary = {
        s: sum(f.status == s for f in expected.findings)
        for s in ("pass", "fail", "unknown", "not_applicable")
    }
    assert data["summary"] == summary
    assert summary["pass"] > 0

    reports, findings = _stored(api)
    assert [s.report_id for s in reports] == [report.report_id]
    stored = reports[0]
    assert stored.host_id == agent.host_id
    assert stored.evaluated_role == "workstation"
    assert stored.evaluated_level == 3
    assert stored.schema_version == SCHEMA_VERSION
    assert stored.body["host"]["machine_id"] == "machine-0001"
    assert stored.collected_at == report.collected_at

    assert [f.check_id for f in findings] == [f.check_id for f in expected.findings]
    assert all(f.report_id == report.report_id and f.host_id == agent.host_id for f in findings)
    by_check = {f.check_id: f for f in findings}
    assert by_check["av_installed"].status == "pass"
    assert by_check["av_installed"].severity == "critical"
    payload = by_check["av_installed"].payload
    assert payload["check_id"] == "av_installed"
    assert payload["title"]["vi"] and payload["remediation"]["en"]
    assert payload["requirement_ids"] == ["D19.1.a"]

    with Session(api.engine) as session:
        host = session.get(Host, agent.host_id)
        assert host is not None
        assert host.latest_report_id == report.report_id
        assert host.last_seen_at is not None


def test_insecure_report_produces_failures(api, agent, report_factory, insecure) -> None:
    r = api.post_report(agent, report_factory(**insecure))
    assert r.status_code == 201
    assert r.json()["summary"]["fail"] >= 3
    _, findings = _stored(api)
    assert {f.check_id for f in findings if f.status == "fail"} >= {
        "av_installed",
        "fw_active",
        "fw_default_deny",
    }


def test_enrolled_role_overrides_report_role(api, report_factory) -> None:
    agency = api.create_agency()
    server = api.enroll(api.create_token(agency["id"]), role="server")
    # The report claims a workstation; the administrator said server at enrollment.
    assert api.post_report(server, report_factory(role="workstation")).status_code == 201
    reports, findings = _stored(api)
    assert reports[0].evaluated_role == "server"
    ids = {f.check_id: f.status for f in findings}
    assert ids["ids_running"] == "pass"  # applies to servers only


def test_unknown_enrolled_role_takes_report_role(api, report_factory) -> None:
    agency = api.create_agency()
    agent = api.enroll(api.create_token(agency["id"]), role=None)
    assert api.post_report(agent, report_factory(role="server")).status_code == 201
    reports, _ = _stored(api)
    assert reports[0].evaluated_role == "server"


def test_duplicate_report_changes_nothing(api, agent, report_factory) -> None:
    report = report_factory()
    assert api.post_report(agent, report).status_code == 201
    before = api.snapshot()

    r = api.post_report(agent, report)
    assert r.status_code == 200
    assert r.json() == {
        "status": "duplicate",
        "report_id": str(report.report_id),
        "host_id": agent.host_id,
    }
    # Even with different content under the same id: still a duplicate, still no change.
    changed = report.model_copy(update={"antivirus": AntivirusSection(products=[])})
    assert api.post_report(agent, changed).json()["status"] == "duplicate"
    assert api.snapshot() == before


def test_same_report_id_from_another_host_conflicts(api, report_factory) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    a = api.enroll(token, machine_id="m-a", hostname="a")
    b = api.enroll(token, machine_id="m-b", hostname="b")
    report_id = uuid.uuid4()
    assert (
        api.post_report(
            a, report_factory(machine_id="m-a").model_copy(update={"report_id": report_id})
        ).status_code
        == 201
    )
    before = api.snapshot()

    r = api.post_report(
        b, report_factory(machine_id="m-b").model_copy(update={"report_id": report_id})
    )
    assert r.status_code == 409
    assert "another host" in r.json()["detail"]
    assert api.snapshot() == before


def test_machine_id_mismatch_conflicts(api, agent, report_factory) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    before = api.snapshot()
    r = api.post_report(agent, report_factory(machine_id="some-other-machine"))
    assert r.status_code == 409
    detail = r.json()["detail"]
    assert "some-other-machine" in detail and "machine-0001" in detail
    assert api.snapshot() == before


def test_host_without_machine_id_adopts_reported_one(api, report_factory) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    agent = api.enroll(token, machine_id=None)
    assert api.post_report(agent, report_factory(machine_id="m-new")).status_code == 201
    with Session(api.engine) as session:
        host = session.get(Host, agent.host_id)
        assert host is not None and host.machine_id == "m-new"
    assert api.post_report(agent, report_factory(machine_id="m-other")).status_code == 409


def test_malformed_json(api, agent, report_factory) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    before = api.snapshot()
    for body in (b'{"schema_version": "1.0",', b"\xff\xfe not json", b""):
        r = api.post_report(agent, body)
        assert r.status_code == 400, body
        assert r.json()["detail"].startswith("malformed JSON: ")
    assert api.snapshot() == before


def test_json_orjson_refuses_is_read_as_before() -> None:
    """Reports are parsed with orjson; what it refuses but the standard library
    reads (NaN) is still read, and the model decides (a measurement may be NaN)."""
    import math

    from collector.ingest import parse_report
    from tests.collector.conftest import make_report

    body = make_report().model_dump_json().replace(
        '"collection_seconds":1.5', '"collection_seconds":NaN'
    )
    assert "NaN" in body
    report = parse_report(body.encode())
    assert math.isnan(report.collection_seconds)


def test_wrong_schema_version(api, agent, report_factory) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    before = api.snapshot()
    good = json.loads(report_factory().model_dump_json())
    for version in ("2.0", "0.9", "banana", 1):
        body = {**good, "schema_version": version}
        r = api.post_report(agent, json.dumps(body))
        assert r.status_code == 422, version
        assert r.json()["detail"] == (
            f"unsupported schema_version {version!r}; this collector accepts 1.x"
        )
    missing = {k: v for k, v in good.items() if k != "schema_version"}
    r = api.post_report(agent, json.dumps(missing))
    assert r.status_code == 422
    assert "schema_version" in r.json()["detail"]
    assert api.snapshot() == before


def test_schema_version_checked_before_validation(api, agent) -> None:
    # A future major version with an unknown layout must get the version error,
    # not a pile of validation errors.
    r = api.post_report(agent, json.dumps({"schema_version": "2.1", "whatever": True}))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("unsupported schema_version '2.1'")


def test_minor_version_accepted(api, agent, report_factory) -> None:
    body = json.loads(report_factory().model_dump_json())
    body["schema_version"] = "1.7"
    r = api.post_report(agent, json.dumps(body))
    assert r.status_code == 201, r.text


def test_invalid_section(api, agent, report_factory) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    before = api.snapshot()
    body = json.loads(report_factory().model_dump_json())
    body["firewall"]["default_inbound"] = "sometimes"
    del body["antivirus"]
    r = api.post_report(agent, json.dumps(body))
    assert r.status_code == 422
    errors = r.json()["detail"]
    assert isinstance(errors, list)
    locs = {tuple(e["loc"]) for e in errors}
    assert ("firewall", "default_inbound") in locs
    assert ("antivirus",) in locs
    assert all("msg" in e and "type" in e for e in errors)
    # Not a JSON object at all.
    assert api.post_report(agent, b"[1, 2]").status_code == 422
    assert api.snapshot() == before


def test_unknown_section_status_is_accepted_and_unknown(api, agent, report_factory) -> None:
    report = report_factory(
        antivirus=AntivirusSection(status="unknown", reason="not root"),
        firewall=FirewallSection(status="unknown", reason="nft missing"),
    )
    r = api.post_report(agent, report)
    assert r.status_code == 201
    _, findings = _stored(api)
    statuses = {f.check_id: f.status for f in findings}
    assert statuses["av_installed"] == "unknown"
    assert statuses["fw_active"] == "unknown"


def test_gzip_body_accepted(api, agent, report_factory) -> None:
    report = report_factory()
    r = api.post_report(
        agent,
        gzip.compress(report.model_dump_json().encode()),
        headers={"Content-Encoding": "gzip"},
    )
    assert r.status_code == 201, r.text
    reports, _ = _stored(api)
    assert [s.report_id for s in reports] == [report.report_id]


def test_bad_gzip_and_unknown_encoding(api, agent, report_factory) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    before = api.snapshot()
    body = report_factory().model_dump_json().encode()
    r = api.post_report(agent, body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert "gzip" in r.json()["detail"]
    r = api.post_report(agent, gzip.compress(body)[:-20], headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400
    r = api.post_report(agent, body, headers={"Content-Encoding": "br"})
    assert r.status_code == 415
    assert api.snapshot() == before


def test_gzip_bomb_rejected(api, agent, report_factory) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    before = api.snapshot()
    # 11 MiB of JSON (over the default 10 MiB limit) compressing to a few KiB.
    inflated = b'{"schema_version": "1.0", "pad": "' + b"A" * (11 * 1024 * 1024) + b'"}'
    bomb = gzip.compress(inflated)
    assert len(bomb) < 100_000
    r = api.post_report(agent, bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
    assert api.snapshot() == before


def test_unknown_credential(api, agent, report_factory) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    before = api.snapshot()
    wrong_secret = agent.credential[:-4] + (
        "AAAA" if not agent.credential.endswith("AAAA") else "BBBB"
    )
    for credential in (f"pa_999_{'x' * 43}", wrong_secret, "pa_1", "garbage"):
        r = api.client.post(
            "/api/v1/reports",
            content=report_factory().model_dump_json(),
            headers={"Authorization": f"Bearer {credential}"},
        )
        assert r.status_code == 401, credential
        expected = "invalid token" if credential == "garbage" else "unknown agent credential"
        assert r.json()["detail"] == expected
        assert r.headers["www-authenticate"] == "Bearer"
    r = api.client.post("/api/v1/reports", content=report_factory().model_dump_json())
    assert r.status_code == 401
    assert "missing token" in r.json()["detail"]
    assert api.snapshot() == before


def test_revoked_credential_is_refused_and_report_not_stored(
    api, agent, report_factory, admin_headers
) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    r = api.client.post(f"/api/v1/hosts/{agent.host_id}/revoke", headers=admin_headers)
    assert r.json() == {"host_id": agent.host_id, "revoked": 1}
    before = api.snapshot()

    r = api.post_report(agent, report_factory())
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    assert api.snapshot() == before


def test_failure_during_evaluation_stores_nothing(api, agent, report_factory, monkeypatch) -> None:
    assert api.post_report(agent, report_factory()).status_code == 201
    before = api.snapshot()

    def broken(*args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(policies.engine, "evaluate_host", broken)
    from fastapi.testclient import TestClient

    with TestClient(api.client.app, raise_server_exceptions=False) as client:
        r = client.post(
            "/api/v1/reports", content=report_factory().model_dump_json(), headers=agent.headers
        )
    assert r.status_code == 500
    assert api.snapshot() == before


def test_late_older_report_does_not_replace_latest(api, agent, report_factory) -> None:
    newer = report_factory()
    older = report_factory(
        collected_at=newer.collected_at - timedelta(hours=5),
        hostname="old-name",
        **{"antivirus": AntivirusSection(products=[])},
    )
    assert api.post_report(agent, newer).status_code == 201
    assert api.post_report(agent, older).status_code == 201
    with Session(api.engine) as session:
        host = session.get(Host, agent.host_id)
        assert host is not None
        assert host.latest_report_id == newer.report_id
        assert host.hostname == "pc-01"
        assert len(session.exec(select(StoredReport)).all()) == 2
