"""Agencies, their enrollment tokens, hosts and compliance (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from collector import compliance, crud
from collector.db import SessionDep
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep
from collector.schemas import (
    AgencyCreate,
    AgencyPublic,
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
    ErrorDetail,
    HostPublic,
)
from collector.security import AdminDep
from policies.model import ArticleVerdict

router = APIRouter(
    prefix="/agencies", tags=["agencies"], dependencies=[AdminDep], responses=ADMIN_RESPONSES
)


@router.post(
    "",
    response_model=AgencyPublic,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorDetail, "description": "Code already used"}},
)
def create_agency(body: AgencyCreate, session: SessionDep) -> AgencyPublic:
    try:
        agency = crud.create_agency(session, code=body.code, name=body.name, level=body.level)
    except crud.AlreadyExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return AgencyPublic.model_validate(agency)


@router.get("", response_model=list[AgencyPublic])
def list_agencies(session: SessionDep) -> list[AgencyPublic]:
    return [AgencyPublic.model_validate(a) for a in crud.list_agencies(session)]


@router.get("/{agency_id}", response_model=AgencyPublic)
def get_agency(agency: AgencyDep) -> AgencyPublic:
    return AgencyPublic.model_validate(agency)


@router.post(
    "/{agency_id}/enrollment-tokens",
    response_model=EnrollmentTokenCreated,
    status_code=status.HTTP_201_CREATED,
)
def create_enrollment_token(
    agency: AgencyDep, session: SessionDep, body: EnrollmentTokenCreate | None = None
) -> EnrollmentTokenCreated:
    """Issue an enrollment token; the plaintext is returned only in this response."""
    body = body or EnrollmentTokenCreate()
    issued = crud.create_enrollment_token(
        session, agency, label=body.label, expires_in_hours=body.expires_in_hours
    )
    row = issued.row
    assert row.id is not None
    return EnrollmentTokenCreated(
        id=row.id,
        agency_id=row.agency_id,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        token=issued.token,
    )


@router.get("/{agency_id}/hosts", response_model=list[HostPublic])
def list_hosts(agency: AgencyDep, session: SessionDep) -> list[HostPublic]:
    assert agency.id is not None
    hosts = crud.list_hosts(session, agency.id)
    lost = crud.reports_lost(session, [h.id for h in hosts if h.id is not None])
    return [
        HostPublic.model_validate(h).model_copy(update={"reports_lost": lost.get(h.id or 0, 0)})
        for h in hosts
    ]


@router.get("/{agency_id}/compliance", response_model=list[ArticleVerdict])
def agency_compliance(agency: AgencyDep, session: SessionDep) -> list[ArticleVerdict]:
    """Compliance by article (Điều 16–19) over the latest report of each host."""
    return compliance.agency_articles(session, agency)
