"""Agent credentials: authentication (and, later, rotation)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, status
from sqlmodel import Session

from collector.models import AgentCredential, Host
from collector.tokens import parse_agent_credential, secrets_match

BEARER_HEADERS = {"WWW-Authenticate": "Bearer"}


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=BEARER_HEADERS)


@dataclass(frozen=True)
class AgentContext:
    """The authenticated agent: its credential, host and agency."""

    credential_id: int
    host_id: int
    agency_id: int


def authenticate_agent(session: Session, token: str) -> AgentContext:
    parsed = parse_agent_credential(token)
    if parsed is None:
        raise unauthorized("unknown agent credential")
    credential_id, secret = parsed
    credential = session.get(AgentCredential, credential_id)
    if credential is None or not secrets_match(secret, credential.secret_hash):
        raise unauthorized("unknown agent credential")
    if credential.revoked_at is not None:
        raise unauthorized(
            f"agent credential has been revoked (at {credential.revoked_at.isoformat()}); "
            "re-enroll the agent with a new enrollment token"
        )
    host = session.get(Host, credential.host_id)
    if host is None:  # pragma: no cover - foreign keys prevent this
        raise unauthorized("unknown agent credential")
    assert host.id is not None and credential.id is not None
    return AgentContext(credential_id=credential.id, host_id=host.id, agency_id=host.agency_id)
