"""Path-parameter lookups shared by the admin routers (404 with a clear message)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, status

from collector import crud
from collector.db import SessionDep
from collector.models import Agency, Host


def agency_or_404(
    session: SessionDep, agency_id: Annotated[int, Path(description="Agency id")]
) -> Agency:
    agency = crud.get_agency(session, agency_id)
    if agency is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"agency {agency_id} not found")
    return agency


def host_or_404(session: SessionDep, host_id: Annotated[int, Path(description="Host id")]) -> Host:
    host = crud.get_host(session, host_id)
    if host is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"host {host_id} not found")
    return host


AgencyDep = Annotated[Agency, Depends(agency_or_404)]
HostDep = Annotated[Host, Depends(host_or_404)]

ADMIN_RESPONSES: dict[int | str, dict] = {
    401: {"description": "Missing or invalid admin token"},
    404: {"description": "Not found"},
    503: {"description": "Admin API disabled (POSTURE_ADMIN_TOKEN not set)"},
}
