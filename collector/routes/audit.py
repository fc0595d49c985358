"""The audit log, read-only: province roles see everything, an agency admin their agency."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from collector import audit
from collector.db import SessionDep
from collector.routes.deps import ADMIN_RESPONSES
from collector.security import UserDep, authorize_read

router = APIRouter(tags=["audit"], responses=ADMIN_RESPONSES)


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    actor_role: str
    user_id: int | None
    agency_id: int | None
    action: str
    target: str | None
    detail: dict[str, Any]
    source: str | None


@router.get("/audit", response_model=list[AuditEventPublic])
def list_audit_events(
    session: SessionDep,
    principal: UserDep,
    agency_id: Annotated[int | None, Query(description="Only this agency")] = None,
    action: Annotated[str | None, Query(description="Action or prefix, e.g. 'waiver.'")] = None,
    actor: Annotated[str | None, Query(description="e.g. user:alice, admin-token")] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[AuditEventPublic]:
    """Administrative actions, newest first."""
    if not principal.is_province:
        agency_id = agency_id if agency_id is not None else principal.agency_id
        assert agency_id is not None
    if agency_id is not None:
        authorize_read(principal, agency_id)
    rows = audit.list_events(
        session,
        agency_id=agency_id,
        action=action,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [AuditEventPublic.model_validate(r) for r in rows]
