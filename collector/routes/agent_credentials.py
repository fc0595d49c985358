"""An agent's own credential: inspect it and rotate it (agent-authenticated)."""

from __future__ import annotations

from fastapi import APIRouter, status
from starlette.concurrency import run_in_threadpool

from collector import credentials
from collector.db import SessionDep, SettingsDep
from collector.schemas import AgentCredentialInfo, CredentialRotated, ErrorDetail
from collector.security import AgentDep

router = APIRouter(prefix="/agent/credential", tags=["agents"])

_UNAUTHORIZED = {
    401: {"model": ErrorDetail, "description": "Missing, unknown, revoked or expired credential"}
}


@router.get("", response_model=AgentCredentialInfo, responses=_UNAUTHORIZED)
def credential_info(agent: AgentDep, settings: SettingsDep) -> AgentCredentialInfo:
    """The credential this request was authenticated with.

    Calling it with a freshly rotated credential confirms the rotation: the
    old credential is revoked at this first use.
    """
    return AgentCredentialInfo(
        agent_id=agent.credential_id,
        host_id=agent.host_id,
        created_at=agent.credential_created_at,
        superseded_until=agent.superseded_until,
        rotate_credential=credentials.rotation_due(agent, settings),
    )


@router.post(
    "/rotate",
    response_model=CredentialRotated,
    status_code=status.HTTP_201_CREATED,
    responses=_UNAUTHORIZED,
)
async def rotate_credential(
    agent: AgentDep, session: SessionDep, settings: SettingsDep
) -> CredentialRotated:
    """Issue a new credential for this agent; the plaintext is returned only here.

    The current credential keeps working until the new one is first used (it
    is then revoked at once) or until ``credential_grace_hours`` have passed.
    If this response is lost, call again with the current credential: the
    unused credential issued before is revoked and a new one returned.
    """
    rotated = await run_in_threadpool(credentials.rotate, session, agent, settings)
    new, old = rotated.credential, rotated.replaced
    assert new.id is not None and old.id is not None and old.grace_until is not None
    return CredentialRotated(
        agent_id=new.id,
        host_id=new.host_id,
        credential=rotated.plaintext,
        replaces_id=old.id,
        old_valid_until=old.grace_until,
    )
