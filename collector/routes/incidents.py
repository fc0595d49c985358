"""The incident register (Điều 20 khoản 5; Bắc Giang Điều 7 khoản 2): record, list, update.

An agency's administrator records and updates the agency's incidents; the Sở
TT&TT reads every agency's wide-scope or escalated incidents.  Every change is
written to the audit log in the same transaction; a new wide-scope or escalated
incident is also queued for notification (when notifications are configured).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session

from collector import audit, incidents, notify
from collector.db import SessionDep, SettingsDep
from collector.models import Agency, Host, IncidentRecord
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep, ManagedAgencyDep
from collector.schemas import ErrorDetail
from collector.security import (
    RequireProvinceReader,
    RequireUser,
    UserDep,
    authorize_manage,
    authorize_read,
)
from collector.settings import Settings
from policies.model import Text

router = APIRouter(tags=["incidents"], dependencies=[RequireUser], responses=ADMIN_RESPONSES)

INVALID = {
    422: {"model": ErrorDetail, "description": "Unknown category/scope/status, foreign host"}
}
_CATEGORY_HELP = "One of: " + ", ".join(incidents.CATEGORIES)
_SCOPE_HELP = "One of: " + ", ".join(incidents.SCOPES)
_STATUS_HELP = "One of: " + ", ".join(incidents.STATUSES)
# Columns that cannot be emptied by a PATCH.
_REQUIRED = ("category", "scope", "status", "title", "description", "handling")
_REQUIRED += ("occurred_at", "reported_by")


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _IncidentFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host_id: int | None = Field(default=None, description="The machine concerned, if any.")
    description: str | None = Field(default=None, max_length=20_000)
    handling: str | None = Field(
        default=None, max_length=20_000, description="What was done to handle it."
    )
    detected_at: datetime | None = None
    leadership_informed_at: datetime | None = Field(
        default=None, description="When the agency's leadership was informed."
    )
    escalated_at: datetime | None = Field(
        default=None, description="When it was reported to the Sở TT&TT (escalation)."
    )
    escalated_to: str | None = Field(default=None, max_length=255)
    resolved_at: datetime | None = None

    @field_validator(
        "detected_at",
        "leadership_informed_at",
        "escalated_at",
        "resolved_at",
        "occurred_at",
        check_fields=False,
    )
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class IncidentCreate(_IncidentFields):
    category: str = Field(max_length=32, description=_CATEGORY_HELP, examples=["server_operation"])
    scope: str = Field(default="local", max_length=8, description=_SCOPE_HELP)
    status: str = Field(default="open", max_length=16, description=_STATUS_HELP)
    title: str = Field(min_length=1, max_length=255)
    occurred_at: datetime
    reported_by: str = Field(min_length=1, max_length=255, description="Who recorded it.")


class IncidentUpdate(_IncidentFields):
    """Only the fields given are changed; ``null`` clears an optional field."""

    category: str | None = Field(default=None, max_length=32, description=_CATEGORY_HELP)
    scope: str | None = Field(default=None, max_length=8, description=_SCOPE_HELP)
    status: str | None = Field(default=None, max_length=16, description=_STATUS_HELP)
    title: str | None = Field(default=None, min_length=1, max_length=255)
    occurred_at: datetime | None = None
    reported_by: str | None = Field(default=None, min_length=1, max_length=255)


class IncidentPublic(BaseModel):
    id: int
    agency_id: int
    agency_code: str
    agency_name: str
    host_id: int | None
    hostname: str | None = None
    category: str
    category_label: Text
    scope: str
    scope_label: Text
    status: str
    status_label: Text
    title: str
    description: str
    handling: str
    occurred_at: datetime
    detected_at: datetime | None
    reported_by: str
    leadership_informed_at: datetime | None
    escalated_at: datetime | None
    escalated_to: str | None
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _label(table: dict[str, dict[str, str]], key: str) -> Text:
    return Text(vi=incidents.label(table, key, "vi"), en=incidents.label(table, key, "en"))


def to_public(session: Session, rows: list[IncidentRecord]) -> list[IncidentPublic]:
    agencies: dict[int, Agency | None] = {}
    hostnames: dict[int, str | None] = {}
    out = []
    for row in rows:
        assert row.id is not None
        if row.agency_id not in agencies:
            agencies[row.agency_id] = session.get(Agency, row.agency_id)
        if row.host_id is not None and row.host_id not in hostnames:
            host = session.get(Host, row.host_id)
            hostnames[row.host_id] = host.hostname if host else None
        agency = agencies[row.agency_id]
        out.append(
            IncidentPublic(
                **row.model_dump(),
                agency_code=agency.code if agency else "",
                agency_name=agency.name if agency else "",
                hostname=hostnames.get(row.host_id) if row.host_id is not None else None,
                category_label=_label(incidents.CATEGORIES, row.category),
                scope_label=_label(incidents.SCOPES, row.scope),
                status_label=_label(incidents.STATUSES, row.status),
            )
        )
    return out


def _detail(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _notify(session: Session, row: IncidentRecord, settings: Settings) -> None:
    if notify.is_configured(settings):
        notify.queue_incident(session, row, settings)


def incident_or_404(
    session: SessionDep,
    principal: UserDep,
    incident_id: Annotated[int, Path(description="Incident id")],
) -> IncidentRecord:
    row = incidents.get_incident(session, incident_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"incident {incident_id} not found")
    authorize_read(principal, row.agency_id)
    return row


IncidentDep = Annotated[IncidentRecord, Depends(incident_or_404)]


@router.post(
    "/agencies/{agency_id}/incidents",
    response_model=IncidentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=INVALID,
)
def create_incident(
    body: IncidentCreate,
    agency: ManagedAgencyDep,
    session: SessionDep,
    settings: SettingsDep,
    principal: UserDep,
) -> IncidentPublic:
    """Record an incident of the agency (category, scope, handling, escalation)."""
    values = body.model_dump(exclude_none=True)
    event = audit.record(
        session, principal, "incident.create", agency_id=agency.id, detail=_detail(values)
    )
    try:
        row = incidents.create_incident(session, agency, **values)
    except incidents.InvalidIncident as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    _notify(session, row, settings)
    audit.complete(session, event, target=f"incident:{row.id}")
    session.refresh(row)
    return to_public(session, [row])[0]


@router.get("/agencies/{agency_id}/incidents", response_model=list[IncidentPublic])
def list_agency_incidents(
    agency: AgencyDep,
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="Occurred at or after")] = None,
    until: Annotated[datetime | None, Query(description="Occurred before")] = None,
    category: Annotated[str | None, Query(description=_CATEGORY_HELP)] = None,
    status_: Annotated[str | None, Query(alias="status", description=_STATUS_HELP)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[IncidentPublic]:
    """The agency's register, newest first."""
    assert agency.id is not None
    rows = incidents.list_incidents(
        session,
        agency.id,
        since=_utc(since),
        until=_utc(until),
        category=category,
        status=status_,
        limit=limit,
    )
    return to_public(session, list(rows))


@router.get("/incidents/{incident_id}", response_model=IncidentPublic)
def get_incident(row: IncidentDep, session: SessionDep) -> IncidentPublic:
    return to_public(session, [row])[0]


@router.patch("/incidents/{incident_id}", response_model=IncidentPublic, responses=INVALID)
def update_incident(
    body: IncidentUpdate,
    row: IncidentDep,
    session: SessionDep,
    settings: SettingsDep,
    principal: UserDep,
) -> IncidentPublic:
    """Change an incident: handling, status, scope, escalation to the Sở TT&TT…"""
    authorize_manage(principal, row.agency_id)
    values = body.model_dump(exclude_unset=True)
    emptied = sorted(k for k in _REQUIRED if k in values and values[k] is None)
    if emptied:
        raise HTTPException(422, detail=f"cannot be empty: {', '.join(emptied)}")
    for key in ("description", "handling"):
        if key in values and values[key] is None:
            values[key] = ""
    try:
        changed = incidents.update_incident(session, row, **values)
    except incidents.InvalidIncident as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    if changed:
        audit.record(
            session,
            principal,
            "incident.update",
            agency_id=row.agency_id,
            target=f"incident:{row.id}",
            detail={"changed": _detail({k: values[k] for k in changed})},
        )
        _notify(session, row, settings)
        session.commit()
        session.refresh(row)
    return to_public(session, [row])[0]


@router.get(
    "/province/incidents",
    response_model=list[IncidentPublic],
    dependencies=[RequireProvinceReader],
)
def list_province_incidents(
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="Occurred at or after")] = None,
    until: Annotated[datetime | None, Query(description="Occurred before")] = None,
    category: Annotated[str | None, Query(description=_CATEGORY_HELP)] = None,
    status_: Annotated[str | None, Query(alias="status", description=_STATUS_HELP)] = None,
    agency_id: Annotated[int | None, Query(description="Only this agency")] = None,
    all_scopes: Annotated[
        bool,
        Query(description="Also local, non-escalated incidents (default: only wide/escalated)"),
    ] = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[IncidentPublic]:
    """Every agency's incidents the Sở TT&TT is concerned with: wide scope or escalated."""
    rows = incidents.list_incidents(
        session,
        agency_id,
        since=_utc(since),
        until=_utc(until),
        category=category,
        status=status_,
        limit=limit,
        reportable_only=not all_scopes,
    )
    return to_public(session, list(rows))
