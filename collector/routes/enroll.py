"""Agent enrollment with a per-agency enrollment token."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from collector import crud
from collector.db import SessionDep
from collector.ratelimit import enroll_rate_limit
from collector.schemas import AgencyRef, EnrollRequest, EnrollResponse, ErrorDetail

router = APIRouter(tags=["agents"])


@router.post(
    "/enroll",
    response_model=EnrollResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        401: {"model": ErrorDetail, "description": "Unknown, revoked or expired token"},
        429: {"model": ErrorDetail, "description": "Too many attempts from this address"},
    },
    dependencies=[Depends(enroll_rate_limit)],
)
def enroll(body: EnrollRequest, session: SessionDep) -> EnrollResponse:
    """Exchange an enrollment token for an agent credential (shown only once)."""
    try:
        result = crud.enroll(
            session,
            token=body.token,
            hostname=body.hostname,
            machine_id=body.machine_id,
            fqdn=body.fqdn,
            os_family=body.os_family,
            role=body.role,
        )
    except crud.EnrollmentRejected as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    assert result.credential.id is not None and result.host.id is not None
    return EnrollResponse(
        agent_id=result.credential.id,
        host_id=result.host.id,
        credential=result.plaintext,
        agency=AgencyRef.model_validate(result.agency),
    )
