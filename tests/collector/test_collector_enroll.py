"""Enrollment: tokens, hosts, credentials."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from collector import crud
from collector.models import AgentCredential, EnrollmentToken, Host, utcnow


def test_enroll_happy_path(api, admin_headers) -> None:
    agency = api.create_agency(code="ubnd-tdm", level=2, name="UBND Thủ Dầu Một")
    token = api.create_token(agency["id"], label="batch 1")
    assert token.startswith("pe_")

    r = api.client.post(
        "/api/v1/enroll",
        json={
            "token": token,
            "hostname": "srv-01",
            "machine_id": "m-1",
            "fqdn": "srv-01.gov.vn",
            "os_family": "linux",
            "role": "server",
        },
    )
    assert r.status_code == 201, r.text
    data = r.json()
    assert data["agency"] == {
        "id": agency["id"],
        "code": "ubnd-tdm",
        "name": "UBND Thủ Dầu Một",
        "level": 2,
    }
    assert data["credential"].startswith(f"pa_{data['agent_id']}_")

    with Session(api.engine) as session:
        host = session.get(Host, data["host_id"])
        assert host is not None
        assert (host.hostname, host.machine_id, host.fqdn, host.os_family, host.role) == (
            "srv-01",
            "m-1",
            "srv-01.gov.vn",
            "linux",
            "server",
        )
        credential = session.get(AgentCredential, data["agent_id"])
        assert credential is not None and credential.host_id == host.id
        # Only hashes are stored.
        assert data["credential"] not in credential.secret_hash
        row = session.exec(select(EnrollmentToken)).one()
        assert row.uses == 1 and row.label == "batch 1" and token != row.token_hash

    host = api.client.get(f"/api/v1/hosts/{data['host_id']}", headers=admin_headers)
    assert host.json()["role"] == "server"


def test_enroll_without_role_is_unknown(api) -> None:
    agency = api.create_agency()
    agent = api.enroll(api.create_token(agency["id"]), role=None)
    with Session(api.engine) as session:
        host = session.get(Host, agent.host_id)
        assert host is not None and host.role == "unknown"


def test_reenroll_same_machine_reuses_host_and_revokes_old_credential(api, report_factory) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    first = api.enroll(token, machine_id="m-1", hostname="old-name")
    second = api.enroll(token, machine_id="m-1", hostname="new-name")
    other = api.enroll(token, machine_id="m-2", hostname="other")

    assert second.host_id == first.host_id
    assert other.host_id != first.host_id
    assert second.agent_id != first.agent_id

    r = api.post_report(first, report_factory(machine_id="m-1"))
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    assert api.post_report(second, report_factory(machine_id="m-1")).status_code == 201
    with Session(api.engine) as session:
        host = session.get(Host, first.host_id)
        assert host is not None and host.hostname == "pc-01"  # from the report
        assert session.exec(select(EnrollmentToken)).one().uses == 3


def test_enroll_without_machine_id_creates_new_hosts(api) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    a = api.enroll(token, machine_id=None)
    b = api.enroll(token, machine_id=None)
    assert a.host_id != b.host_id


def test_enroll_unknown_token(api) -> None:
    agency = api.create_agency()
    api.enroll(api.create_token(agency["id"]))
    before = api.snapshot()
    for bad in ("pe_notatoken", "", "x" * 50):
        r = api.client.post("/api/v1/enroll", json={"token": bad, "hostname": "h"})
        assert r.status_code in (401, 422), r.text
        if bad:
            assert r.status_code == 401
            assert r.json()["detail"] == "unknown enrollment token"
    assert api.snapshot() == before


def test_enroll_revoked_token(api) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    api.enroll(token, machine_id="m-1")
    with Session(api.engine) as session:
        row = session.exec(select(EnrollmentToken)).one()
        assert row.id is not None
        crud.revoke_enrollment_token(session, row.id)
    before = api.snapshot()

    r = api.client.post(
        "/api/v1/enroll", json={"token": token, "hostname": "h", "machine_id": "m-1"}
    )
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    assert api.snapshot() == before


def test_enroll_expired_token(api) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"], expires_in_hours=1)
    with Session(api.engine) as session:
        row = session.exec(select(EnrollmentToken)).one()
        assert row.expires_at is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()
    before = api.snapshot()

    r = api.client.post("/api/v1/enroll", json={"token": token, "hostname": "h"})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]
    assert api.snapshot() == before


def test_token_with_future_expiry_works(api) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"], expires_in_hours=2)
    assert api.enroll(token).host_id > 0


def test_enroll_invalid_body(api) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    before = api.snapshot()
    for body in (
        {"token": token},  # no hostname
        {"token": token, "hostname": "h", "role": "router"},
        {"token": token, "hostname": "h", "unexpected": 1},
    ):
        r = api.client.post("/api/v1/enroll", json=body)
        assert r.status_code == 422, body
    assert api.snapshot() == before
