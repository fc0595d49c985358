"""Hosts: details, latest findings, compliance, credential revocation (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from collector import compliance, crud
from collector.db import SessionDep
from collector.models import Agency, Host
from collector.routes.deps import ADMIN_RESPONSES, HostDep
from collector.schemas import HostPublic, RevokeResult
from collector.security import AdminDep
from policies.model import Finding, RequirementVerdict, Verdict

router = APIRouter(
    prefix="/hosts", tags=["hosts"], dependencies=[AdminDep], responses=ADMIN_RESPONSES
)


def _agency_of(session: SessionDep, host: Host) -> Agency:
    agency = crud.get_agency(session, host.agency_id)
    if agency is None:  # pragma: no cover - foreign keys prevent this
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"agency {host.agency_id} not found")
    return agency


@router.get("/{host_id}", response_model=HostPublic)
def get_host(host: HostDep) -> HostPublic:
    return HostPublic.model_validate(host)


@router.get("/{host_id}/findings", response_model=list[Finding])
def host_findings(
    host: HostDep,
    session: SessionDep,
    status_filter: Annotated[
        Verdict | None, Query(alias="status", description="Only findings with this status")
    ] = None,
) -> list[Finding]:
    """Findings of the host's latest report."""
    return crud.latest_findings(session, host, status=status_filter)


@router.get("/{host_id}/compliance", response_model=list[RequirementVerdict])
def host_compliance(host: HostDep, session: SessionDep) -> list[RequirementVerdict]:
    """Per-requirement verdicts of the host's latest report at the agency's current level."""
    return compliance.host_requirements(session, host, _agency_of(session, host))


@router.post("/{host_id}/revoke", response_model=RevokeResult)
def revoke_host(host: HostDep, session: SessionDep) -> RevokeResult:
    """Revoke every credential of the host; its agent must enroll again."""
    assert host.id is not None
    return RevokeResult(host_id=host.id, revoked=crud.revoke_host_credentials(session, host))
