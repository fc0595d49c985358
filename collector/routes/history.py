"""Compliance history of an agency, and re-evaluation of stored facts (admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from collector import audit, crud, history
from collector.db import SessionDep, SettingsDep
from collector.reevaluate import ReevaluationStats, reevaluate
from collector.roles import Role
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep
from collector.security import RequireUser, UserDep, authorize_manage, forbidden

router = APIRouter(tags=["history"], dependencies=[RequireUser], responses=ADMIN_RESPONSES)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("/agencies/{agency_id}/compliance/history", response_model=history.ComplianceHistory)
def compliance_history(
    agency: AgencyDep,
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="From this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="Up to this time (inclusive)")] = None,
) -> history.ComplianceHistory:
    """The agency's verdict, counts and score per article over time, oldest first."""
    assert agency.id is not None
    return history.compliance_history(session, agency.id, since=_utc(since), until=_utc(until))


@router.post("/reevaluate", response_model=ReevaluationStats)
async def reevaluate_stored(
    session: SessionDep,
    settings: SettingsDep,
    principal: UserDep,
    agency_id: Annotated[int | None, Query(description="Only this agency")] = None,
) -> ReevaluationStats:
    """Evaluate every host's latest stored report again with the current policies.

    The whole province needs a province administrator; one agency, its manager.
    """
    if agency_id is None:
        if principal.role != Role.PROVINCE_ADMIN:
            raise forbidden("only a province administrator may re-evaluate every agency")
    else:
        if crud.get_agency(session, agency_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"agency {agency_id} not found")
        authorize_manage(principal, agency_id)
    try:
        stats = await run_in_threadpool(reevaluate, session, agency_id, settings=settings)
    except crud.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    audit.record(
        session,
        principal,
        "reevaluate",
        agency_id=agency_id,
        target=f"agency:{agency_id}" if agency_id is not None else "province",
        detail=stats.model_dump(mode="json"),
    )
    session.commit()
    return stats
