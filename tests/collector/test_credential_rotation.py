"""Agent credential rotation: grace period, revocation at first use, lost responses, max age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import HTTPException
from sqlmodel import Session, col, select

from collector import credentials
from collector.models import AgentCredential
from collector.tokens import parse_agent_credential
from tests.collector.conftest import Agent, Api

ROTATE = "/api/v1/agent/credential/rotate"


def _rotate(api: Api, credential: str) -> dict:
    r = api.client.post(ROTATE, headers={"Authorization": f"Bearer {credential}"})
    assert r.status_code == 201, r.text
    return r.json()


def _as(agent: Agent, credential: str) -> Agent:
    return Agent(agent.agent_id, agent.host_id, credential, agent.machine_id)


def _rows(api: Api, host_id: int) -> dict[int, AgentCredential]:
    with Session(api.engine) as session:
        rows = session.exec(select(AgentCredential).where(AgentCredential.host_id == host_id))
        return {row.id: row for row in rows.all() if row.id is not None}


def _valid_ids(api: Api, host_id: int, now: datetime | None = None) -> set[int]:
    """Credentials of the host that would still authenticate at ``now``."""
    now = now or datetime.now(UTC)
    return {
        i
        for i, row in _rows(api, host_id).items()
        if row.revoked_at is None and (row.grace_until is None or row.grace_until > now)
    }


def _report_status(api: Api, agent: Agent, credential: str, report_factory) -> int:
    return api.post_report(_as(agent, credential), report_factory()).status_code


def test_rotation_keeps_the_old_credential_until_the_new_one_is_used(
    api: Api, agent: Agent, report_factory
) -> None:
    old_id = agent.agent_id
    before = datetime.now(UTC)
    rotated = _rotate(api, agent.credential)
    after = datetime.now(UTC)

    new = rotated["credential"]
    parsed = parse_agent_credential(new)
    assert parsed is not None and parsed[0] == rotated["agent_id"] != old_id
    assert rotated["replaces_id"] == old_id and rotated["host_id"] == agent.host_id
    valid_until = datetime.fromisoformat(rotated["old_valid_until"])
    assert before + timedelta(hours=24) <= valid_until <= after + timedelta(hours=24)

    # Both work until the new one is used ...
    assert _report_status(api, agent, agent.credential, report_factory) == 201
    assert _valid_ids(api, agent.host_id) == {old_id, rotated["agent_id"]}
    rows = _rows(api, agent.host_id)
    assert rows[rotated["agent_id"]].replaces_id == old_id
    assert rows[rotated["agent_id"]].first_used_at is None

    # ... and its first use revokes the old one at once.
    assert _report_status(api, agent, new, report_factory) == 201
    rows = _rows(api, agent.host_id)
    assert rows[rotated["agent_id"]].first_used_at is not None
    assert rows[old_id].revoked_at is not None
    r = api.post_report(agent, report_factory())
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert _report_status(api, agent, new, report_factory) == 201
    assert _valid_ids(api, agent.host_id) == {rotated["agent_id"]}


def test_the_old_credential_dies_when_the_grace_period_ends(api: Api, agent: Agent) -> None:
    rotated = _rotate(api, agent.credential)
    valid_until = datetime.fromisoformat(rotated["old_valid_until"])
    with Session(api.engine) as session:
        context = credentials.authenticate_agent(
            session, agent.credential, now=valid_until - timedelta(seconds=1)
        )
        assert context.superseded_until == valid_until
        with pytest.raises(HTTPException) as refused:
            credentials.authenticate_agent(session, agent.credential, now=valid_until)
        assert refused.value.status_code == 401
        assert "grace period ended" in str(refused.value.detail)
        # the new credential is unaffected by the end of the old one's grace
        context = credentials.authenticate_agent(
            session, rotated["credential"], now=valid_until + timedelta(days=1)
        )
        assert context.credential_id == rotated["agent_id"]


def test_grace_period_comes_from_the_settings(make_api) -> None:
    api = make_api(credential_grace_hours=2)
    agent = api.new_agent()
    before = datetime.now(UTC)
    valid_until = datetime.fromisoformat(_rotate(api, agent.credential)["old_valid_until"])
    assert before + timedelta(hours=2) <= valid_until <= datetime.now(UTC) + timedelta(hours=2)


def test_a_lost_rotation_response_is_retried_without_piling_up_spares(
    api: Api, agent: Agent, report_factory
) -> None:
    old_id = agent.agent_id
    lost = _rotate(api, agent.credential)  # the agent never received this answer
    retried = _rotate(api, agent.credential)  # so it rotates again with the old credential

    assert retried["agent_id"] not in (old_id, lost["agent_id"])
    assert retried["replaces_id"] == old_id
    # the grace period is not extended by retries
    assert retried["old_valid_until"] == lost["old_valid_until"]
    # one spare at most: the unused credential of the lost answer is revoked
    assert _valid_ids(api, agent.host_id) == {old_id, retried["agent_id"]}
    r = api.post_report(_as(agent, lost["credential"]), report_factory())
    assert r.status_code == 401 and "revoked" in r.json()["detail"]

    assert _report_status(api, agent, agent.credential, report_factory) == 201
    assert _report_status(api, agent, retried["credential"], report_factory) == 201
    assert _valid_ids(api, agent.host_id) == {retried["agent_id"]}
    assert _report_status(api, agent, agent.credential, report_factory) == 401


def test_rotating_with_the_new_credential_before_it_was_used(api: Api, agent: Agent) -> None:
    first = _rotate(api, agent.credential)
    second = _rotate(api, first["credential"])  # first use of `first`: the original dies
    assert second["replaces_id"] == first["agent_id"]
    assert _valid_ids(api, agent.host_id) == {first["agent_id"], second["agent_id"]}
    rows = _rows(api, agent.host_id)
    assert rows[agent.agent_id].revoked_at is not None


def test_get_credential_confirms_a_rotation(api: Api, agent: Agent) -> None:
    rotated = _rotate(api, agent.credential)
    r = api.client.get(
        "/api/v1/agent/credential", headers={"Authorization": f"Bearer {agent.credential}"}
    )
    assert r.status_code == 200
    info = r.json()
    assert info["agent_id"] == agent.agent_id
    assert info["superseded_until"] is not None and info["rotate_credential"] is True

    r = api.client.get(
        "/api/v1/agent/credential",
        headers={"Authorization": f"Bearer {rotated['credential']}"},
    )
    assert r.status_code == 200
    assert r.json()["agent_id"] == rotated["agent_id"]
    assert r.json()["rotate_credential"] is False
    assert _valid_ids(api, agent.host_id) == {rotated["agent_id"]}


def test_rotation_needs_a_valid_agent_credential(
    api: Api, agent: Agent, admin_headers: dict[str, str]
) -> None:
    assert api.client.post(ROTATE).status_code == 401
    bogus = f"pa_{agent.agent_id}_not-the-secret"
    assert api.client.post(ROTATE, headers={"Authorization": f"Bearer {bogus}"}).status_code == 401
    # an administrator is not an agent
    assert api.client.post(ROTATE, headers=admin_headers).status_code in (401, 403)
    assert _valid_ids(api, agent.host_id) == {agent.agent_id}


def _age(api: Api, credential_id: int, days: float) -> None:
    with Session(api.engine) as session:
        row = session.get(AgentCredential, credential_id)
        assert row is not None
        row.created_at = datetime.now(UTC) - timedelta(days=days)
        session.add(row)
        session.commit()


def test_ingest_asks_for_rotation_past_the_max_age(api: Api, agent: Agent, report_factory) -> None:
    report = report_factory()
    r = api.post_report(agent, report)
    assert r.status_code == 201 and r.json()["rotate_credential"] is False

    _age(api, agent.agent_id, days=91)  # default credential_max_age_days: 90
    r = api.post_report(agent, report_factory())
    assert r.status_code == 201 and r.json()["rotate_credential"] is True
    duplicate = api.post_report(agent, report)
    assert duplicate.status_code == 200 and duplicate.json()["rotate_credential"] is True

    rotated = _rotate(api, agent.credential)
    # still using the superseded credential: keep asking (the answer may have been lost)
    assert api.post_report(agent, report_factory()).json()["rotate_credential"] is True
    r = api.post_report(_as(agent, rotated["credential"]), report_factory())
    assert r.status_code == 201 and r.json()["rotate_credential"] is False


def test_max_age_zero_never_asks(make_api, report_factory) -> None:
    api = make_api(credential_max_age_days=0)
    agent = api.new_agent()
    _age(api, agent.agent_id, days=3650)
    r = api.post_report(agent, report_factory())
    assert r.status_code == 201 and r.json()["rotate_credential"] is False


def test_short_max_age_from_the_settings(make_api, report_factory) -> None:
    api = make_api(credential_max_age_days=1)
    agent = api.new_agent()
    assert api.post_report(agent, report_factory()).json()["rotate_credential"] is False
    _age(api, agent.agent_id, days=2)
    assert api.post_report(agent, report_factory()).json()["rotate_credential"] is True


def test_revoking_the_host_revokes_pending_credentials_too(
    api: Api, agent: Agent, report_factory, admin_headers: dict[str, str]
) -> None:
    lost = _rotate(api, agent.credential)
    spare = _rotate(api, agent.credential)
    assert _valid_ids(api, agent.host_id) == {agent.agent_id, spare["agent_id"]}

    r = api.client.post(f"/api/v1/hosts/{agent.host_id}/revoke", headers=admin_headers)
    assert r.status_code == 200
    assert r.json() == {"host_id": agent.host_id, "revoked": 2}  # the old one and the spare
    assert _valid_ids(api, agent.host_id) == set()
    with Session(api.engine) as session:
        unrevoked = session.exec(
            select(AgentCredential).where(
                AgentCredential.host_id == agent.host_id,
                col(AgentCredential.revoked_at).is_(None),
            )
        ).all()
    assert unrevoked == []
    for credential in (agent.credential, lost["credential"], spare["credential"]):
        assert _report_status(api, agent, credential, report_factory) == 401
        headers = {"Authorization": f"Bearer {credential}"}
        assert api.client.post(ROTATE, headers=headers).status_code == 401


def test_re_enrollment_revokes_pending_credentials(api: Api, agent: Agent, report_factory) -> None:
    spare = _rotate(api, agent.credential)
    agency_id = api.client.get(
        f"/api/v1/hosts/{agent.host_id}", headers={"Authorization": "Bearer test-admin-token"}
    ).json()["agency_id"]
    again = api.enroll(api.create_token(agency_id), machine_id=agent.machine_id)
    assert again.host_id == agent.host_id
    assert _valid_ids(api, agent.host_id) == {again.agent_id}
    assert _report_status(api, agent, spare["credential"], report_factory) == 401
