"""Path-parameter lookups shared by the routers, with the caller's rights checked.

``AgencyDep``/``HostDep`` give an object the caller may *read*;
``ManagedAgencyDep``/``ManagedHostDep`` one it may *manage*.  A missing object
is 404; an existing one outside the caller's rights is 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, status

from collector import crud
from collector.db import SessionDep
from collector.models import Agency, Host
from collector.security import UserDep, authorize_manage, authorize_read


def _agency(session: SessionDep, agency_id: int) -> Agency:
    agency = crud.get_agency(session, agency_id)
    if agency is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"agency {agency_id} not found")
    return agency


def _host(session: SessionDep, host_id: int) -> Host:
    host = crud.get_host(session, host_id)
    if host is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"host {host_id} not found")
    return host


AgencyId = Annotated[int, Path(description="Agency id")]
HostId = Annotated[int, Path(description="Host id")]


def agency_or_404(session: SessionDep, principal: UserDep, agency_id: AgencyId) -> Agency:
    agency = _agency(session, agency_id)
    authorize_read(principal, agency_id)
    return agency


def managed_agency_or_404(session: SessionDep, principal: UserDep, agency_id: AgencyId) -> Agency:
    agency = _agency(session, agency_id)
    authorize_manage(principal, agency_id)
    return agency


def host_or_404(session: SessionDep, principal: UserDep, host_id: HostId) -> Host:
    host = _host(session, host_id)
    authorize_read(principal, host.agency_id)
    return host


def managed_host_or_404(session: SessionDep, principal: UserDep, host_id: HostId) -> Host:
    host = _host(session, host_id)
    authorize_manage(principal, host.agency_id)
    return host


AgencyDep = Annotated[Agency, Depends(agency_or_404)]
ManagedAgencyDep = Annotated[Agency, Depends(managed_agency_or_404)]
HostDep = Annotated[Host, Depends(host_or_404)]
ManagedHostDep = Annotated[Host, Depends(managed_host_or_404)]

ADMIN_RESPONSES: dict[int | str, dict] = {
    401: {"description": "Missing, unknown, expired or revoked token"},
    403: {"description": "Authenticated, but the role does not allow it"},
    404: {"description": "Not found"},
}
