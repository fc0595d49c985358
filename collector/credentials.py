"""Agent credentials: authentication and rotation.

A credential is ``pa_<id>_<secret>``; only the SHA-256 of the secret is stored
(collector.tokens).  Rotation never locks an agent out:

* ``rotate`` issues a new credential whose ``replaces_id`` names the current
  one, and gives the current one a ``grace_until`` (now + grace hours);
* the old credential keeps working until the new one is first used — it is
  then revoked at once — or until the grace period ends;
* if the rotation response is lost, the agent still holds the old credential
  and simply rotates again: the unused spare issued before is revoked and a
  fresh one issued, so there is never more than one spare.

The collector asks for a rotation (``rotate_credential`` in the report
response) when a credential is older than ``credential_max_age_days``, and
keeps asking an agent that still uses a superseded credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException, status
from sqlmodel import Session, col, select

from collector.models import AgentCredential, Host, utcnow
from collector.settings import Settings
from collector.tokens import (
    format_agent_credential,
    new_agent_secret,
    parse_agent_credential,
    secrets_match,
)

BEARER_HEADERS = {"WWW-Authenticate": "Bearer"}


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=BEARER_HEADERS)


@dataclass(frozen=True)
class AgentContext:
    """The authenticated agent: its credential, host and agency."""

    credential_id: int
    host_id: int
    agency_id: int
    # When the credential was issued, and until when it stays valid because it
    # was superseded by a rotation (None: not superseded).
    credential_created_at: datetime | None = None
    superseded_until: datetime | None = None


def authenticate_agent(
    session: Session, token: str, *, now: datetime | None = None
) -> AgentContext:
    """The agent a credential belongs to; 401 when it is unknown, revoked or expired.

    The first use of a credential issued by a rotation is recorded
    (``first_used_at``) and revokes the credential it replaces.  (Credentials
    issued at enrollment are not written to on use: authenticating a request
    that is then refused changes nothing in the database.)
    """
    outcome = authenticate_agents(session, [token], now=now)[token]
    if isinstance(outcome, str):
        raise unauthorized(outcome)
    return outcome


def authenticate_agents(
    session: Session, tokens: Sequence[str], *, now: datetime | None = None
) -> dict[str, AgentContext | str]:
    """Authenticate many agent credentials with one query: per token, its agent or
    why it is refused (the 401 detail).  The report API authenticates a whole batch
    of reports this way, in the transaction that stores them (collector/ingest_store.py).
    """
    parsed = {token: parse_agent_credential(token) for token in tokens}
    ids = sorted({p[0] for p in parsed.values() if p is not None})
    rows = (
        {
            row.id: row
            for row in session.connection().execute(
                select(
                    AgentCredential.id,
                    AgentCredential.host_id,
                    AgentCredential.secret_hash,
                    AgentCredential.revoked_at,
                    AgentCredential.grace_until,
                    AgentCredential.created_at,
                    AgentCredential.replaces_id,
                    AgentCredential.first_used_at,
                    Host.agency_id,
                )
                .join(Host, col(Host.id) == col(AgentCredential.host_id))
                .where(col(AgentCredential.id).in_(ids))
            )
        }
        if ids
        else {}
    )
    now = now or utcnow()
    out: dict[str, AgentContext | str] = {}
    for token, credential in parsed.items():
        row = rows.get(credential[0]) if credential is not None else None
        if row is None or credential is None or not secrets_match(credential[1], row.secret_hash):
            out[token] = "unknown agent credential"
            continue
        refused = credential_refused(row.revoked_at, row.grace_until, now)
        if refused is not None:
            out[token] = refused
            continue
        if row.replaces_id is not None and row.first_used_at is None:
            used = session.get(AgentCredential, row.id)
            assert used is not None
            _record_first_use(session, used, now)
        out[token] = AgentContext(
            credential_id=row.id,
            host_id=row.host_id,
            agency_id=row.agency_id,
            credential_created_at=row.created_at,
            superseded_until=row.grace_until,
        )
    return out


def credential_refused(
    revoked_at: datetime | None, grace_until: datetime | None, now: datetime
) -> str | None:
    """Why a known credential may no longer be used (revoked, or its grace period over)."""
    if revoked_at is not None:
        return (
            f"agent credential has been revoked (at {revoked_at.isoformat()}); "
            "re-enroll the agent with a new enrollment token"
        )
    if grace_until is not None and grace_until <= now:
        return (
            "agent credential was replaced by a rotation and its grace period ended at "
            f"{grace_until.isoformat()}; use the new credential, or re-enroll "
            "the agent with a new enrollment token"
        )
    return None


def _record_first_use(session: Session, credential: AgentCredential, now: datetime) -> None:
    """Mark a rotated-in ``credential`` used: the credentials it replaces die at once."""
    credential.first_used_at = now
    session.add(credential)
    # The replaced credential, and any other spare issued for it by an earlier
    # (lost) rotation: from now on only this credential is valid.
    for other in session.exec(
        select(AgentCredential).where(
            AgentCredential.host_id == credential.host_id,
            col(AgentCredential.revoked_at).is_(None),
            col(AgentCredential.id) != credential.id,
            (col(AgentCredential.id) == credential.replaces_id)
            | (col(AgentCredential.replaces_id) == credential.replaces_id),
        )
    ).all():
        other.revoked_at = now
        session.add(other)
    session.commit()
    session.refresh(credential)


def rotation_due(agent: AgentContext, settings: Settings, *, now: datetime | None = None) -> bool:
    """Should the agent rotate its credential now?

    Yes when it still uses a superseded credential (its rotation response was
    lost, or it never switched), or when the credential is older than
    ``credential_max_age_days`` (0: age never triggers a rotation).
    """
    if agent.superseded_until is not None:
        return True
    max_age = settings.credential_max_age_days
    if not max_age or agent.credential_created_at is None:
        return False
    now = now or utcnow()
    return agent.credential_created_at <= now - timedelta(days=max_age)


@dataclass(frozen=True)
class Rotated:
    credential: AgentCredential
    plaintext: str
    replaced: AgentCredential


def rotate(
    session: Session, agent: AgentContext, settings: Settings, *, now: datetime | None = None
) -> Rotated:
    """Issue a new credential replacing the one ``agent`` authenticated with; one transaction.

    The current credential stays valid until the new one is first used or its
    grace period (set at the first rotation, not extended by retries) ends.
    Spares issued by earlier rotations of the same credential, never used,
    are revoked: at most one spare exists at any time.
    """
    now = now or utcnow()
    current = session.exec(
        select(AgentCredential)
        .where(AgentCredential.id == agent.credential_id)
        .with_for_update()  # serialises concurrent rotations (PostgreSQL)
    ).one()
    if current.revoked_at is not None:  # revoked since the request was authenticated
        raise unauthorized("agent credential has been revoked; re-enroll the agent")
    for spare in session.exec(
        select(AgentCredential).where(
            AgentCredential.replaces_id == current.id,
            col(AgentCredential.revoked_at).is_(None),
        )
    ).all():
        spare.revoked_at = now
        session.add(spare)
    if current.grace_until is None:
        current.grace_until = now + timedelta(hours=settings.credential_grace_hours)
        session.add(current)
    secret, secret_hash = new_agent_secret()
    credential = AgentCredential(
        host_id=current.host_id, secret_hash=secret_hash, created_at=now, replaces_id=current.id
    )
    session.add(credential)
    try:
        session.flush()
        assert credential.id is not None
        plaintext = format_agent_credential(credential.id, secret)
        session.commit()
    except Exception:
        session.rollback()
        raise
    session.refresh(credential)
    session.refresh(current)
    return Rotated(credential=credential, plaintext=plaintext, replaced=current)
