"""The audit log of administrative actions (who did what, to what, when, from where).

``record`` adds the event to the caller's session, so it is committed in the
same transaction as the change it describes: a change without its audit entry
(or the reverse) cannot happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from collector.models import AuditEvent, utcnow
from collector.roles import Principal


def record(
    session: Session,
    principal: Principal,
    action: str,
    *,
    agency_id: int | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        at=utcnow(),
        actor=principal.actor,
        actor_role=principal.role.value,
        user_id=principal.user_id,
        agency_id=agency_id,
        action=action,
        target=target,
        detail=detail or {},
        source=principal.source,
    )
    session.add(event)
    return event


def record_failed_login(session: Session, username: str, *, source: str | None) -> AuditEvent:
    """A refused password login (nobody is authenticated, so there is no principal)."""
    event = AuditEvent(
        at=utcnow(),
        actor=f"login:{username}"[:255],
        actor_role="anonymous",
        action="auth.login_failed",
        detail={"username": username},
        source=source,
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    agency_id: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AuditEvent]:
    """Events, newest first, optionally filtered."""
    query = select(AuditEvent)
    if agency_id is not None:
        query = query.where(AuditEvent.agency_id == agency_id)
    if action is not None:
        query = query.where(col(AuditEvent.action).startswith(action))
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    query = query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    return session.exec(query.offset(offset).limit(limit)).all()


def complete(
    session: Session,
    event: AuditEvent,
    *,
    target: str | None = None,
    agency_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Fill in what was only known after the change (e.g. the new row's id) and commit.

    Use: ``event = record(...)`` *before* the change, so that the change's own
    commit also commits the event; then ``complete(...)`` with the ids.
    """
    if target is not None:
        event.target = target
    if agency_id is not None:
        event.agency_id = agency_id
    if detail:
        event.detail = {**(event.detail or {}), **detail}
    session.add(event)
    session.commit()
