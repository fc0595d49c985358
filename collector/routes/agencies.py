"""Agencies, their enrollment tokens, hosts and compliance (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from sqlmodel import col, select

from collector import audit, compliance, crud, tls
from collector.db import SessionDep, SettingsDep
from collector.models import EnrollmentToken, utcnow
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep, ManagedAgencyDep
from collector.schemas import (
    AgencyCreate,
    AgencyPublic,
    AgencyUpdate,
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
    EnrollmentTokenPublic,
    ErrorDetail,
    HostPublic,
)
from collector.security import ProvinceAdminDep, RequireUser, UserDep
from policies.model import ArticleVerdict

router = APIRouter(
    prefix="/agencies", tags=["agencies"], dependencies=[RequireUser], responses=ADMIN_RESPONSES
)


@router.post(
    "",
    response_model=AgencyPublic,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorDetail, "description": "Code already used"}},
)
def create_agency(
    body: AgencyCreate, session: SessionDep, principal: ProvinceAdminDep
) -> AgencyPublic:
    """Register an agency with its Mức độ (province administrators)."""
    event = audit.record(session, principal, "agency.create", detail=body.model_dump())
    try:
        agency = crud.create_agency(session, code=body.code, name=body.name, level=body.level)
    except crud.AlreadyExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    audit.complete(session, event, target=f"agency:{agency.id}", agency_id=agency.id)
    session.refresh(agency)
    return AgencyPublic.model_validate(agency)


@router.get("", response_model=list[AgencyPublic])
def list_agencies(session: SessionDep, principal: UserDep) -> list[AgencyPublic]:
    """The agencies the caller may read (all of them for the province roles)."""
    return [
        AgencyPublic.model_validate(a)
        for a in crud.list_agencies(session)
        if a.id is not None and principal.can_read_agency(a.id)
    ]


@router.get("/{agency_id}", response_model=AgencyPublic)
def get_agency(agency: AgencyDep) -> AgencyPublic:
    return AgencyPublic.model_validate(agency)


@router.patch("/{agency_id}", response_model=AgencyPublic)
def update_agency(
    agency: AgencyDep, body: AgencyUpdate, session: SessionDep, principal: ProvinceAdminDep
) -> AgencyPublic:
    """Rename an agency or change its Mức độ (province administrators).

    Verdicts are recomputed at the new level on the next read; no new report is needed.
    """
    changes = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if getattr(agency, k) != v
    }
    if changes:
        before = {k: getattr(agency, k) for k in changes}
        audit.record(
            session,
            principal,
            "agency.update",
            agency_id=agency.id,
            target=f"agency:{agency.id}",
            detail={"before": before, "after": changes},
        )
        for key, value in changes.items():
            setattr(agency, key, value)
        session.add(agency)
        session.commit()
        session.refresh(agency)
    return AgencyPublic.model_validate(agency)


@router.post(
    "/{agency_id}/enrollment-tokens",
    response_model=EnrollmentTokenCreated,
    status_code=status.HTTP_201_CREATED,
)
def create_enrollment_token(
    agency: ManagedAgencyDep,
    session: SessionDep,
    principal: UserDep,
    settings: SettingsDep,
    body: EnrollmentTokenCreate | None = None,
) -> EnrollmentTokenCreated:
    """Issue an enrollment token; the plaintext is returned only in this response."""
    body = body or EnrollmentTokenCreate()
    event = audit.record(
        session,
        principal,
        "enrollment_token.create",
        agency_id=agency.id,
        detail=body.model_dump(),
    )
    issued = crud.create_enrollment_token(
        session, agency, label=body.label, expires_in_hours=body.expires_in_hours
    )
    row = issued.row
    assert row.id is not None
    audit.complete(session, event, target=f"enrollment_token:{row.id}")
    session.refresh(row)
    return EnrollmentTokenCreated(
        id=row.id,
        agency_id=row.agency_id,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        token=issued.token,
        **tls.enrollment_hints(issued.token, settings),
    )


@router.get("/{agency_id}/enrollment-tokens", response_model=list[EnrollmentTokenPublic])
def list_enrollment_tokens(agency: AgencyDep, session: SessionDep) -> list[EnrollmentTokenPublic]:
    """The agency's enrollment tokens (never their plaintext), newest first."""
    rows = session.exec(
        select(EnrollmentToken)
        .where(EnrollmentToken.agency_id == agency.id)
        .order_by(col(EnrollmentToken.id).desc())
    ).all()
    now = utcnow()
    return [EnrollmentTokenPublic.from_row(row, now) for row in rows]


@router.delete("/{agency_id}/enrollment-tokens/{token_id}", response_model=EnrollmentTokenPublic)
def revoke_enrollment_token(
    agency: ManagedAgencyDep,
    token_id: Annotated[int, Path(description="Enrollment token id")],
    session: SessionDep,
    principal: UserDep,
) -> EnrollmentTokenPublic:
    """Revoke an enrollment token: no new agent can enroll with it (enrolled ones keep working)."""
    row = session.get(EnrollmentToken, token_id)
    if row is None or row.agency_id != agency.id:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"enrollment token {token_id} not found in agency {agency.id}",
        )
    if row.revoked_at is None:
        audit.record(
            session,
            principal,
            "enrollment_token.revoke",
            agency_id=agency.id,
            target=f"enrollment_token:{token_id}",
        )
        row = crud.revoke_enrollment_token(session, token_id)
    return EnrollmentTokenPublic.from_row(row, utcnow())


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
