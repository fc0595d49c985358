"""Hosts: details, software inventory and history, latest findings, compliance, revocation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from collector import audit, compliance, crud, waivers
from collector.db import SessionDep
from collector.models import Agency, Host
from collector.routes.deps import ADMIN_RESPONSES, HostDep, ManagedHostDep
from collector.schemas import (
    HostPublic,
    HostSoftware,
    HostSoftwareChanges,
    InstalledPackage,
    RevokeResult,
    SoftwareChangePublic,
)
from collector.security import RequireUser, UserDep
from policies.model import Finding, RequirementVerdict, Verdict

router = APIRouter(
    prefix="/hosts", tags=["hosts"], dependencies=[RequireUser], responses=ADMIN_RESPONSES
)


def _agency_of(session: SessionDep, host: Host) -> Agency:
    agency = crud.get_agency(session, host.agency_id)
    if agency is None:  # pragma: no cover - foreign keys prevent this
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"agency {host.agency_id} not found")
    return agency


def host_public(session: SessionDep, host: Host, lost: int | None = None) -> HostPublic:
    assert host.id is not None
    if lost is None:
        lost = crud.reports_lost(session, [host.id])[host.id]
    return HostPublic.model_validate(host).model_copy(update={"reports_lost": lost})


@router.get("/{host_id}", response_model=HostPublic)
def get_host(host: HostDep, session: SessionDep) -> HostPublic:
    """The host, with ``reports_lost``: reports its agent had to evict before delivery."""
    return host_public(session, host)


@router.get("/{host_id}/software", response_model=HostSoftware)
def host_software(
    host: HostDep,
    session: SessionDep,
    name: Annotated[
        str | None, Query(description="Only packages whose name contains this (any case)")
    ] = None,
) -> HostSoftware:
    """Current software inventory, reconstructed from the full lists and deltas received."""
    assert host.id is not None
    state = crud.get_inventory(session, host.id)
    rows = crud.host_packages(session, host.id, name=name)
    return HostSoftware(
        host_id=host.id,
        report_id=state.report_id if state else None,
        collected_at=state.collected_at if state else None,
        inventory_hash=state.inventory_hash if state else None,
        manager=state.manager if state else None,
        baseline_report_id=state.baseline_report_id if state else None,
        baseline_collected_at=state.baseline_collected_at if state else None,
        package_count=state.package_count if state else 0,
        packages=[
            InstalledPackage.model_validate(r).model_copy(update={"arch": r.arch or None})
            for r in rows
        ],
    )


@router.get("/{host_id}/software/changes", response_model=HostSoftwareChanges)
def host_software_changes(
    host: HostDep,
    session: SessionDep,
    since: Annotated[
        datetime | None, Query(description="Only changes collected at or after this time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> HostSoftwareChanges:
    """Software installed, removed or upgraded, newest first (evidence for Điều 19 khoản 3).

    The history starts at the baseline (the first full inventory received),
    which itself produces no "installed" rows.
    """
    assert host.id is not None
    state = crud.get_inventory(session, host.id)
    rows = crud.software_changes(session, host.id, since=since, limit=limit)
    return HostSoftwareChanges(
        host_id=host.id,
        baseline_report_id=state.baseline_report_id if state else None,
        baseline_collected_at=state.baseline_collected_at if state else None,
        changes=[
            SoftwareChangePublic.model_validate(r).model_copy(update={"arch": r.arch or None})
            for r in rows
        ],
    )


@router.get("/{host_id}/findings", response_model=list[Finding])
def host_findings(
    host: HostDep,
    session: SessionDep,
    status_filter: Annotated[
        Verdict | None, Query(alias="status", description="Only findings with this status")
    ] = None,
) -> list[Finding]:
    """Findings of the host's latest report, with the waivers in force now applied."""
    findings = waivers.waive_host_findings(session, host, crud.latest_findings(session, host))
    # Filter after the waivers: a stored "fail" may now read "waived".
    return [f for f in findings if status_filter is None or f.status == status_filter]


@router.get("/{host_id}/compliance", response_model=list[RequirementVerdict])
def host_compliance(host: HostDep, session: SessionDep) -> list[RequirementVerdict]:
    """Per-requirement verdicts of the host's latest report at the agency's current level."""
    return compliance.host_requirements(session, host, _agency_of(session, host))


@router.post("/{host_id}/revoke", response_model=RevokeResult)
def revoke_host(host: ManagedHostDep, session: SessionDep, principal: UserDep) -> RevokeResult:
    """Revoke every credential of the host; its agent must enroll again."""
    assert host.id is not None
    event = audit.record(
        session, principal, "host.revoke", agency_id=host.agency_id, target=f"host:{host.id}"
    )
    revoked = crud.revoke_host_credentials(session, host)
    audit.complete(session, event, detail={"credentials_revoked": revoked})
    return RevokeResult(host_id=host.id, revoked=revoked)
