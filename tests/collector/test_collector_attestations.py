"""Attestations: a person confirms a requirement; expiry, revocation, evidence files."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from collector import attestations as att
from collector import compliance
from collector.models import Agency, EvidenceFile, Host
from collector.routes.attestations import content_disposition
from tests.collector.conftest import ADMIN_HEADERS, Agent, Api
from tests.factories import make_report

ROOM_ACCESS = "D16.2.L3.b"  # Kiểm soát ra vào phòng máy chủ (Mức độ 3–4)
LEVEL4_ONLY = "D16.2.L4.a"
HOST_CHECKED = "D19.2.c"  # verified by host checks, not by attestation

AWAITING = "Chờ cán bộ có thẩm quyền xác nhận"


def _now() -> datetime:
    return datetime.now(UTC)


def _report(agent: Agent, api: Api) -> None:
    report = make_report(now=_now(), hostname="pc-01", machine_id=agent.machine_id or "")
    r = api.post_report(agent, report)
    assert r.status_code == 201, r.text


def _attest(api: Api, agency_id: int, **body: Any):
    payload: dict[str, Any] = {
        "requirement_id": ROOM_ACCESS,
        "statement": "Phòng máy chủ có khóa từ và sổ theo dõi ra vào",
        "attested_by": "Nguyễn Văn A, Trưởng phòng CNTT",
    }
    payload.update(body)
    return api.client.post(
        f"/api/v1/agencies/{agency_id}/attestations", json=payload, headers=ADMIN_HEADERS
    )


def _host_verdicts(api: Api, host_id: int) -> dict[str, dict]:
    r = api.client.get(f"/api/v1/hosts/{host_id}/compliance", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    return {v["requirement_id"]: v for v in r.json()}


def _agency_verdicts(api: Api, agency_id: int) -> dict[str, dict]:
    r = api.client.get(f"/api/v1/agencies/{agency_id}/compliance", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    return {v["requirement_id"]: v for a in r.json() for v in a["requirements"]}


def _attestable(api: Api, agency_id: int) -> dict[str, dict]:
    r = api.client.get(
        f"/api/v1/agencies/{agency_id}/attestable-requirements", headers=ADMIN_HEADERS
    )
    assert r.status_code == 200, r.text
    return {item["id"]: item for item in r.json()}


def _agency_id(api: Api, agent: Agent) -> int:
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}", headers=ADMIN_HEADERS)
    return r.json()["agency_id"]


def _upload(api: Api, attestation_id: int, name: str, data: bytes, ctype: str = "application/pdf"):
    return api.client.post(
        f"/api/v1/attestations/{attestation_id}/evidence",
        files={"file": (name, data, ctype)},
        headers=ADMIN_HEADERS,
    )


# --- listing what can be attested ------------------------------------------------


def test_attestable_requirements_follow_the_agency_level(api: Api) -> None:
    level3 = api.create_agency(code="l3", level=3)
    level1 = api.create_agency(code="l1", level=1)

    items = _attestable(api, level3["id"])
    assert ROOM_ACCESS in items
    assert LEVEL4_ONLY not in items  # Mức độ 4 only
    assert HOST_CHECKED not in items  # not verified by attestation
    room = items[ROOM_ACCESS]
    assert room["state"] == "none" and room["attestation"] is None
    assert room["quote"] and room["title"]["vi"] and room["title"]["en"]
    assert room["reference"]["vi"].startswith("Điều 16")

    assert ROOM_ACCESS not in _attestable(api, level1["id"])


# --- attest, expire, revoke ---------------------------------------------------------


def test_attestation_passes_the_requirement_for_host_and_agency(api: Api, agent: Agent) -> None:
    agency_id = _agency_id(api, agent)
    _report(agent, api)
    before = _host_verdicts(api, agent.host_id)[ROOM_ACCESS]
    assert before["status"] == "unknown"
    assert before["reason"]["vi"] == AWAITING

    r = _attest(api, agency_id)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] == "valid" and created["status"] == "pass"
    assert created["revoked_at"] is None and created["evidence"] == []
    attested_at = datetime.fromisoformat(created["attested_at"])
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert expires_at - attested_at == timedelta(days=365)  # default: annual review

    host = _host_verdicts(api, agent.host_id)[ROOM_ACCESS]
    assert host["status"] == "pass"
    assert host["attestation"]["attested_by"].startswith("Nguyễn Văn A")
    assert host["attestation"]["expired"] is False
    agency = _agency_verdicts(api, agency_id)[ROOM_ACCESS]
    assert agency["status"] == "pass"
    assert "Nguyễn Văn A" in agency["evidence"][0]["vi"]

    state = _attestable(api, agency_id)[ROOM_ACCESS]
    assert state["state"] == "valid"
    assert state["attestation"]["id"] == created["id"]


def test_attestation_of_non_compliance_fails(api: Api) -> None:
    agency = api.create_agency()
    r = _attest(api, agency["id"], status="fail", statement="Chưa có sổ theo dõi ra vào")
    assert r.status_code == 201, r.text
    assert _agency_verdicts(api, agency["id"])[ROOM_ACCESS]["status"] == "fail"


def test_expired_attestation_turns_back_to_unknown(api: Api, agent: Agent) -> None:
    agency_id = _agency_id(api, agent)
    _report(agent, api)
    now = _now()
    r = _attest(
        api,
        agency_id,
        attested_at=(now - timedelta(days=400)).isoformat(),
        expires_at=(now - timedelta(days=35)).isoformat(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "expired"

    for verdict in (
        _host_verdicts(api, agent.host_id)[ROOM_ACCESS],
        _agency_verdicts(api, agency_id)[ROOM_ACCESS],
    ):
        assert verdict["status"] == "unknown"
        assert "hết hiệu lực" in verdict["reason"]["vi"]
        assert verdict["attestation"]["expired"] is True
    assert _attestable(api, agency_id)[ROOM_ACCESS]["state"] == "expired"

    active = api.client.get(
        f"/api/v1/agencies/{agency_id}/attestations?active=true", headers=ADMIN_HEADERS
    )
    assert active.json() == []
    everything = api.client.get(
        f"/api/v1/agencies/{agency_id}/attestations", headers=ADMIN_HEADERS
    )
    assert [a["state"] for a in everything.json()] == ["expired"]


def test_expiry_is_judged_at_the_time_given(api: Api, agent: Agent) -> None:
    """With a ``now`` under control: valid today, "hết hiệu lực" once its validity is over."""
    agency_id = _agency_id(api, agent)
    _report(agent, api)
    assert _attest(api, agency_id, valid_days=30).status_code == 201
    with Session(api.engine) as session:
        host = session.get(Host, agent.host_id)
        agency = session.get(Agency, agency_id)
        assert host is not None and agency is not None
        in_time = compliance.host_evaluation(session, host, agency, now=_now())
        late = compliance.host_evaluation(session, host, agency, now=_now() + timedelta(days=31))
    assert {v.requirement_id: v.status for v in in_time.requirements}[ROOM_ACCESS] == "pass"
    verdict = next(v for v in late.requirements if v.requirement_id == ROOM_ACCESS)
    assert verdict.status == "unknown"
    assert verdict.reason is not None and "hết hiệu lực" in verdict.reason.vi


def test_default_validity_is_a_setting(make_api) -> None:
    api = make_api(attestation_valid_days=30)
    agency = api.create_agency()
    created = _attest(api, agency["id"]).json()
    delta = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["attested_at"]
    )
    assert delta == timedelta(days=30)


def test_revoking_returns_to_awaiting_and_keeps_the_row(api: Api, agent: Agent) -> None:
    agency_id = _agency_id(api, agent)
    _report(agent, api)
    created = _attest(api, agency_id).json()

    r = api.client.delete(f"/api/v1/attestations/{created['id']}", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "revoked" and r.json()["revoked_at"] is not None
    again = api.client.delete(f"/api/v1/attestations/{created['id']}", headers=ADMIN_HEADERS)
    assert again.json()["revoked_at"] == r.json()["revoked_at"]  # idempotent

    for verdict in (
        _host_verdicts(api, agent.host_id)[ROOM_ACCESS],
        _agency_verdicts(api, agency_id)[ROOM_ACCESS],
    ):
        assert verdict["status"] == "unknown"
        assert verdict["reason"]["vi"] == AWAITING
        assert verdict["attestation"] is None
    assert _attestable(api, agency_id)[ROOM_ACCESS]["state"] == "none"
    listed = api.client.get(f"/api/v1/agencies/{agency_id}/attestations", headers=ADMIN_HEADERS)
    assert [a["id"] for a in listed.json()] == [created["id"]]

    missing = api.client.delete("/api/v1/attestations/9999", headers=ADMIN_HEADERS)
    assert missing.status_code == 404


def test_latest_non_revoked_attestation_decides(api: Api) -> None:
    agency = api.create_agency()
    now = _now()
    older = _attest(api, agency["id"], attested_at=(now - timedelta(days=10)).isoformat())
    newer = _attest(api, agency["id"], status="fail", statement="Khóa từ hỏng")
    assert _agency_verdicts(api, agency["id"])[ROOM_ACCESS]["status"] == "fail"

    api.client.delete(f"/api/v1/attestations/{newer.json()['id']}", headers=ADMIN_HEADERS)
    assert _agency_verdicts(api, agency["id"])[ROOM_ACCESS]["status"] == "pass"
    with Session(api.engine) as session:
        latest = att.attestations_for(session, agency["id"])
    assert latest[ROOM_ACCESS].id == older.json()["id"]


# --- refused attestations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"requirement_id": HOST_CHECKED}, "not by attestation"),
        ({"requirement_id": "D99.9"}, "unknown requirement"),
        ({"requirement_id": LEVEL4_ONLY}, "Mức độ 3"),
        ({"statement": "   "}, "statement"),
        ({"expires_at": "2020-01-01T00:00:00Z", "attested_at": "2021-01-01T00:00:00Z"}, "after"),
        ({"attested_at": "2999-01-01T00:00:00Z"}, "future"),
        ({"expires_at": "2999-01-01T00:00:00Z", "valid_days": 30}, "either"),
        ({"status": "waived"}, ""),
        ({"valid_days": 0}, ""),
    ],
)
def test_invalid_attestations_are_refused(api: Api, body: dict, message: str) -> None:
    agency = api.create_agency()
    before = api.counts()
    r = _attest(api, agency["id"], **body)
    assert r.status_code == 422, r.text
    assert message in str(r.json()["detail"])
    assert api.counts() == before


def test_unknown_agency_is_404(api: Api) -> None:
    assert _attest(api, 9999).status_code == 404
    r = api.client.get("/api/v1/agencies/9999/attestable-requirements", headers=ADMIN_HEADERS)
    assert r.status_code == 404


# --- evidence files --------------------------------------------------------------------


def test_evidence_round_trip(api: Api) -> None:
    agency = api.create_agency()
    created = _attest(api, agency["id"]).json()
    data = b"%PDF-1.4 bien ban kiem tra phong may\n" * 100
    name = "Biên bản kiểm tra phòng máy (2026).pdf"

    r = _upload(api, created["id"], name, data)
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["size"] == len(data)
    assert meta["filename"] == name
    assert meta["content_type"] == "application/pdf"

    download = api.client.get(meta["download_url"], headers=ADMIN_HEADERS)
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"")
    assert "filename*=UTF-8''Bi%C3%AAn%20b%E1%BA%A3n" in disposition
    assert 'filename="Bien ban kiem tra phong may (2026).pdf"' in disposition

    listed = api.client.get(f"/api/v1/attestations/{created['id']}", headers=ADMIN_HEADERS)
    assert [e["sha256"] for e in listed.json()["evidence"]] == [meta["sha256"]]
    verdict = _agency_verdicts(api, agency["id"])[ROOM_ACCESS]
    assert verdict["attestation"]["evidence_files"] == [name]


def test_content_disposition_is_safe() -> None:
    header = content_disposition('Đơn "x"\r\n;y.pdf')
    assert header.startswith('attachment; filename="Don _x____y.pdf"; ')
    assert header.endswith("filename*=UTF-8''%C4%90%C6%A1n%20%22x%22%0D%0A%3By.pdf")
    assert "\r" not in header and "\n" not in header


def test_evidence_file_names_lose_their_directories(api: Api) -> None:
    agency = api.create_agency()
    created = _attest(api, agency["id"]).json()
    r = _upload(api, created["id"], "..\\..\\etc/passwd", b"x", "text/html; charset=utf-8")
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "passwd"
    assert r.json()["content_type"] == "text/html"
    odd = _upload(api, created["id"], "scan.jpg", b"x", "not a type")
    assert odd.json()["content_type"] == "application/octet-stream"


def test_evidence_download_of_another_attestation_is_404(api: Api) -> None:
    agency = api.create_agency()
    first = _attest(api, agency["id"]).json()
    second = _attest(api, agency["id"]).json()
    meta = _upload(api, first["id"], "a.txt", b"a", "text/plain").json()
    r = api.client.get(
        f"/api/v1/attestations/{second['id']}/evidence/{meta['id']}", headers=ADMIN_HEADERS
    )
    assert r.status_code == 404
    r = api.client.get(f"/api/v1/attestations/{first['id']}/evidence/999", headers=ADMIN_HEADERS)
    assert r.status_code == 404
    assert _upload(api, 9999, "a.txt", b"a").status_code == 404


def test_evidence_size_limit_is_413(make_api) -> None:
    api = make_api(max_evidence_bytes=1000)
    agency = api.create_agency()
    created = _attest(api, agency["id"]).json()

    r = _upload(api, created["id"], "big.bin", b"x" * 1001, "application/octet-stream")
    assert r.status_code == 413, r.text
    assert "1000 bytes" in r.json()["detail"]
    with Session(api.engine) as session:
        assert session.exec(select(EvidenceFile)).all() == []

    ok = _upload(api, created["id"], "ok.bin", b"x" * 1000, "application/octet-stream")
    assert ok.status_code == 201, ok.text


def test_no_evidence_for_a_revoked_attestation(api: Api) -> None:
    agency = api.create_agency()
    created = _attest(api, agency["id"]).json()
    api.client.delete(f"/api/v1/attestations/{created['id']}", headers=ADMIN_HEADERS)
    r = _upload(api, created["id"], "late.pdf", b"x")
    assert r.status_code == 409
    assert "revoked" in r.json()["detail"]


# --- authentication -------------------------------------------------------------------------


def test_every_endpoint_needs_the_admin_token(api: Api) -> None:
    agency = api.create_agency()
    created = _attest(api, agency["id"]).json()
    meta = _upload(api, created["id"], "a.txt", b"a", "text/plain").json()
    calls = [
        ("GET", f"/api/v1/agencies/{agency['id']}/attestable-requirements", {}),
        ("GET", f"/api/v1/agencies/{agency['id']}/attestations", {}),
        (
            "POST",
            f"/api/v1/agencies/{agency['id']}/attestations",
            {"json": {"requirement_id": ROOM_ACCESS, "statement": "x", "attested_by": "y"}},
        ),
        ("GET", f"/api/v1/attestations/{created['id']}", {}),
        ("DELETE", f"/api/v1/attestations/{created['id']}", {}),
        (
            "POST",
            f"/api/v1/attestations/{created['id']}/evidence",
            {"files": {"file": ("b.txt", b"b", "text/plain")}},
        ),
        ("GET", meta["download_url"], {}),
    ]
    before = api.counts()
    for method, url, kwargs in calls:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = api.client.request(method, url, headers=headers, **kwargs)
            assert r.status_code == 401, (method, url, r.text)
    assert api.counts() == before


def test_evidence_may_exceed_the_report_body_limit_but_not_its_own(make_api) -> None:
    api = make_api(max_body_bytes=2000, max_evidence_bytes=50_000)
    agency = api.create_agency()
    created = _attest(api, agency["id"]).json()
    ok = _upload(api, created["id"], "scan.pdf", b"%PDF" + b"x" * 20_000, "application/pdf")
    assert ok.status_code == 201, ok.text
    too_big = _upload(api, created["id"], "huge.pdf", b"x" * 120_000, "application/pdf")
    assert too_big.status_code == 413
    # every other route keeps the general limit
    r = api.client.post(
        "/api/v1/agencies", json={"code": "X" * 3000, "name": "n", "level": 1},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 413
