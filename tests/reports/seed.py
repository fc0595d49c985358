"""A realistic agency for the report tests, seeded through the real API and ingest.

Three machines of "Sở Tài nguyên và Môi trường": a well-kept server, a
workstation without anti-virus and with the firewall off, and a machine that
enrolled but never reported; a waiver, an attestation, two incidents of the
period and compliance snapshots at two instants (the trend chart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from collector import history, incidents
from collector.models import Agency, utcnow
from tests.collector.conftest import ADMIN_HEADERS, Api, insecure_sections, make_report

AGENCY_NAME = "Sở Tài nguyên và Môi trường tỉnh Bình Dương"
GOOD_HOST = "may-chu-du-lieu"
BAD_HOST = "may-tram-ke-toan"
SILENT_HOST = "may-tram-kho"
WAIVER_JUSTIFICATION = "Máy đo đạc chuyên dụng, nhà sản xuất không cho cài phần mềm diệt virus."
INCIDENT_TITLE = "Mã độc mã hóa dữ liệu trên máy trạm kế toán"


@dataclass
class Seeded:
    agency_id: int
    code: str
    other_agency_id: int
    bad_host_id: int
    incident_id: int


def _incident(api: Api, agency_id: int, **values: Any) -> int:
    with Session(api.engine) as session:
        agency = session.get(Agency, agency_id)
        assert agency is not None
        row = incidents.create_incident(session, agency, **values)
        session.commit()
        assert row.id is not None
        return row.id


def seed_agency(api: Api, code: str = "so-tnmt", level: int = 3) -> Seeded:
    agency_id = api.create_agency(code=code, level=level, name=AGENCY_NAME)["id"]
    other = api.create_agency(code=f"{code}-khac", level=2, name="UBND thị xã Bến Cát")["id"]
    token = api.create_token(agency_id)
    good = api.enroll(token, machine_id="m-good", hostname=GOOD_HOST, role="server")
    bad = api.enroll(token, machine_id="m-bad", hostname=BAD_HOST)
    api.enroll(token, machine_id="m-silent", hostname=SILENT_HOST)
    r = api.post_report(good, make_report(hostname=GOOD_HOST, machine_id="m-good", role="server"))
    assert r.status_code == 201, r.text
    report = make_report(hostname=BAD_HOST, machine_id="m-bad", **insecure_sections())
    r = api.post_report(bad, report)
    assert r.status_code == 201, r.text
    now = utcnow()
    r = api.client.post(
        f"/api/v1/agencies/{agency_id}/waivers",
        json={
            "check_id": "av_signatures_fresh",
            "host_id": bad.host_id,
            "justification": WAIVER_JUSTIFICATION,
            "author": "Giám đốc Sở",
            "expires_at": (now + timedelta(days=90)).isoformat(),
        },
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    attestable = api.client.get(
        f"/api/v1/agencies/{agency_id}/attestable-requirements", headers=ADMIN_HEADERS
    ).json()
    r = api.client.post(
        f"/api/v1/agencies/{agency_id}/attestations",
        json={
            "requirement_id": attestable[0]["id"],
            "statement": "Đã kiểm tra phòng máy chủ, có khóa cửa và sổ theo dõi ra vào.",
            "attested_by": "Nguyễn Văn An, Trưởng phòng CNTT",
        },
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    incident_id = _incident(
        api,
        agency_id,
        host_id=bad.host_id,
        category="information_security",
        scope="wide",
        status="resolved",
        title=INCIDENT_TITLE,
        description="Nhiều tệp tài liệu trên máy bị đổi đuôi và không mở được.",
        handling="Cách ly máy khỏi mạng, khôi phục dữ liệu từ bản sao lưu, cài lại hệ điều hành.",
        occurred_at=now - timedelta(days=2),
        detected_at=now - timedelta(days=2, hours=-1),
        reported_by="Trần Thị Bình",
        leadership_informed_at=now - timedelta(days=2, hours=-2),
        escalated_at=now - timedelta(days=1),
        escalated_to="Sở Thông tin và Truyền thông",
        resolved_at=now - timedelta(hours=5),
    )
    _incident(
        api,
        agency_id,
        category="transmission_lines",
        title="Mất kết nối đường truyền số liệu chuyên dùng",
        occurred_at=now - timedelta(days=1),
        reported_by="Lê Văn Cường",
    )
    with Session(api.engine) as session:
        agency = session.get(Agency, agency_id)
        assert agency is not None
        history.take_snapshot(session, agency, trigger="manual", now=now - timedelta(days=3))
        agency = session.get(Agency, agency_id)
        assert agency is not None
        history.take_snapshot(session, agency, trigger="manual", now=now)
    return Seeded(agency_id, code, other, bad.host_id, incident_id)
