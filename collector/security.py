"""Secrets (enrollment tokens, agent credentials) and the auth dependencies.

Only SHA-256 hashes of secrets are stored.  The secrets are 256-bit random
values, so a fast hash is enough (no password stretching needed); comparisons
are constant-time.

* enrollment token: ``pe_<urlsafe random>``
* agent credential: ``pa_<credential id>_<urlsafe random>``
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from collector.db import SessionDep, SettingsDep
from collector.models import AgentCredential, Host

ENROLLMENT_TOKEN_PREFIX = "pe_"
AGENT_CREDENTIAL_PREFIX = "pa_"
_TOKEN_BYTES = 32

_BEARER_HEADERS = {"WWW-Authenticate": "Bearer"}

admin_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="The collector's admin token (POSTURE_ADMIN_TOKEN).",
)
agent_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AgentCredential",
    description="The agent credential returned by POST /api/v1/enroll (pa_…).",
)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secrets_match(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(plaintext), stored_hash)


def new_enrollment_token() -> tuple[str, str]:
    """Return ``(plaintext, sha256 hash)`` of a fresh enrollment token."""
    token = ENROLLMENT_TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    return token, hash_secret(token)


def new_agent_secret() -> tuple[str, str]:
    """Return ``(secret, sha256 hash)``; the credential is built once the row has an id."""
    secret = secrets.token_urlsafe(_TOKEN_BYTES)
    return secret, hash_secret(secret)


def format_agent_credential(credential_id: int, secret: str) -> str:
    return f"{AGENT_CREDENTIAL_PREFIX}{credential_id}_{secret}"


def parse_agent_credential(value: str) -> tuple[int, str] | None:
    """Split ``pa_<id>_<secret>``; None when the shape is wrong."""
    if not value.startswith(AGENT_CREDENTIAL_PREFIX):
        return None
    parts = value[len(AGENT_CREDENTIAL_PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1]:
        return None
    return int(parts[0]), parts[1]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_BEARER_HEADERS)


# --- admin ------------------------------------------------------------------


def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    expected = settings.admin_token_value
    if expected is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=(
                "the admin API is disabled because no admin token is configured; "
                "set the POSTURE_ADMIN_TOKEN environment variable and restart the collector"
            ),
        )
    if credentials is None:
        raise _unauthorized("missing admin token: send 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise _unauthorized("invalid admin token")


AdminDep = Depends(require_admin)


# --- agents -----------------------------------------------------------------


@dataclass(frozen=True)
class AgentContext:
    """The authenticated agent: its credential, host and agency."""

    credential_id: int
    host_id: int
    agency_id: int


def authenticate_agent(session: Session, token: str) -> AgentContext:
    parsed = parse_agent_credential(token)
    if parsed is None:
        raise _unauthorized("unknown agent credential")
    credential_id, secret = parsed
    credential = session.get(AgentCredential, credential_id)
    if credential is None or not secrets_match(secret, credential.secret_hash):
        raise _unauthorized("unknown agent credential")
    if credential.revoked_at is not None:
        raise _unauthorized(
            f"agent credential has been revoked (at {credential.revoked_at.isoformat()}); "
            "re-enroll the agent with a new enrollment token"
        )
    host = session.get(Host, credential.host_id)
    if host is None:  # pragma: no cover - foreign keys prevent this
        raise _unauthorized("unknown agent credential")
    assert host.id is not None and credential.id is not None
    return AgentContext(credential_id=credential.id, host_id=host.id, agency_id=host.agency_id)


def require_agent(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(agent_bearer)],
) -> AgentContext:
    if credentials is None:
        raise _unauthorized(
            "missing agent credential: send 'Authorization: Bearer pa_…' "
            "(obtained from POST /api/v1/enroll)"
        )
    return authenticate_agent(session, credentials.credentials)


AgentDep = Annotated[AgentContext, Depends(require_agent)]
