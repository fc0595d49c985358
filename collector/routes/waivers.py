"""Waivers: accepted exceptions to a check, shown as ``waived`` (never ``pass``) (admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session

from collector import audit, waivers
from collector.db import SessionDep, SettingsDep
from collector.models import Host, WaiverRecord, utcnow
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep, ManagedAgencyDep
from collector.schemas import ErrorDetail
from collector.security import RequireUser, UserDep, authorize_manage, authorize_read
from policies.model import Text
from policies.registry import load_checks, load_fleet_rules

router = APIRouter(tags=["waivers"], dependencies=[RequireUser], responses=ADMIN_RESPONSES)


class WaiverCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_id: str = Field(min_length=1, max_length=128, examples=["patch_reboot_pending"])
    host_id: int | None = Field(
        default=None, description="The host it applies to; omitted: every host of the agency."
    )
    justification: str = Field(min_length=1, max_length=10_000)
    author: str = Field(min_length=1, max_length=255, description="Who accepted the exception.")
    expires_at: datetime = Field(
        description="In the future, at most POSTURE_MAX_WAIVER_DAYS (default 365) days ahead."
    )

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class WaiverPublic(BaseModel):
    id: int
    agency_id: int
    host_id: int | None = Field(description="None: agency-wide.")
    hostname: str | None = None
    check_id: str
    check_title: Text | None = None
    justification: str
    author: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    state: Literal["active", "expired", "revoked", "pending"]


def _publics(session: Session, rows: list[WaiverRecord], now: datetime) -> list[WaiverPublic]:
    specs = {**load_fleet_rules(), **load_checks()}
    hostnames: dict[int, str] = {}
    out = []
    for row in rows:
        assert row.id is not None
        if row.host_id is not None and row.host_id not in hostnames:
            host = session.get(Host, row.host_id)
            hostnames[row.host_id] = host.hostname if host else ""
        spec = specs.get(row.check_id)
        out.append(
            WaiverPublic(
                id=row.id,
                agency_id=row.agency_id,
                host_id=row.host_id,
                hostname=hostnames.get(row.host_id) if row.host_id is not None else None,
                check_id=row.check_id,
                check_title=spec.title if spec else None,
                justification=row.justification,
                author=row.author,
                created_at=row.created_at,
                expires_at=row.expires_at,
                revoked_at=row.revoked_at,
                state=waivers.waiver_state(row, now),  # type: ignore[arg-type]
            )
        )
    return out


def waiver_or_404(
    session: SessionDep,
    principal: UserDep,
    waiver_id: Annotated[int, Path(description="Waiver id")],
) -> WaiverRecord:
    row = session.get(WaiverRecord, waiver_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"waiver {waiver_id} not found")
    authorize_read(principal, row.agency_id)
    return row


WaiverDep = Annotated[WaiverRecord, Depends(waiver_or_404)]


@router.post(
    "/agencies/{agency_id}/waivers",
    response_model=WaiverPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        422: {"model": ErrorDetail, "description": "Unknown check, foreign host, bad expiry"}
    },
)
def create_waiver(
    body: WaiverCreate,
    agency: ManagedAgencyDep,
    session: SessionDep,
    settings: SettingsDep,
    principal: UserDep,
) -> WaiverPublic:
    """Waive a check on one host (``host_id``) or the whole agency until ``expires_at``.

    Covered ``fail``/``unknown`` findings show as ``waived`` with the waiver;
    a ``pass`` stays a pass.
    """
    now = utcnow()
    event = audit.record(
        session,
        principal,
        "waiver.create",
        agency_id=agency.id,
        detail=body.model_dump(mode="json"),
    )
    try:
        row = waivers.create_waiver(
            session,
            agency,
            check_id=body.check_id,
            host_id=body.host_id,
            justification=body.justification,
            author=body.author,
            expires_at=body.expires_at,
            max_days=settings.max_waiver_days,
            now=now,
        )
    except waivers.InvalidWaiver as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    audit.complete(session, event, target=f"waiver:{row.id}")
    session.refresh(row)
    return _publics(session, [row], now)[0]


@router.get("/agencies/{agency_id}/waivers", response_model=list[WaiverPublic])
def list_waivers(
    agency: AgencyDep,
    session: SessionDep,
    active: Annotated[bool, Query(description="Only waivers in force now")] = False,
) -> list[WaiverPublic]:
    """The agency's waivers, newest first (revoked and expired ones included by default)."""
    assert agency.id is not None
    now = utcnow()
    rows = waivers.list_waivers(session, agency.id, active_only=active, now=now)
    return _publics(session, list(rows), now)


@router.get("/waivers/{waiver_id}", response_model=WaiverPublic)
def get_waiver(row: WaiverDep, session: SessionDep) -> WaiverPublic:
    return _publics(session, [row], utcnow())[0]


@router.delete("/waivers/{waiver_id}", response_model=WaiverPublic)
def revoke_waiver(row: WaiverDep, session: SessionDep, principal: UserDep) -> WaiverPublic:
    """Revoke the waiver: the findings it covered show their own result again."""
    assert row.id is not None
    authorize_manage(principal, row.agency_id)
    if row.revoked_at is None:
        audit.record(
            session, principal, "waiver.revoke", agency_id=row.agency_id, target=f"waiver:{row.id}"
        )
    revoked = waivers.revoke_waiver(session, row.id)
    return _publics(session, [revoked], utcnow())[0]
