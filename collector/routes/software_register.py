"""The agency's register of approved software (Điều 19 khoản 3) (admin).

An agency has a register once it declared one: by adding its first entry,
or explicitly with ``POST …/approved-software/declare`` (an empty register:
nothing is approved, every new install fails ``fleet_software_approved``).
Without a declaration the fleet rule says ``unknown``.  Deleting entries
never withdraws the declaration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from collector import audit, fleet_data
from collector.db import SessionDep
from collector.models import (
    Agency,
    ApprovedSoftwareRecord,
    SoftwareRegisterDeclaration,
    utcnow,
)
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep, ManagedAgencyDep
from collector.security import RequireUser, UserDep, authorize_manage

router = APIRouter(
    tags=["software register"], dependencies=[RequireUser], responses=ADMIN_RESPONSES
)


class ApprovedSoftwareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=255, description="Package name or glob", examples=["libreoffice*"]
    )
    version: str | None = Field(
        default=None, min_length=1, max_length=255, description="Version glob; omitted: any"
    )
    note: str | None = Field(default=None, max_length=1000, examples=["Quyết định số 12/QĐ"])
    added_by: str = Field(min_length=1, max_length=255, description="Who approved it.")


class ApprovedSoftwarePublic(BaseModel):
    id: int
    agency_id: int
    name: str
    version: str | None
    note: str | None
    added_by: str
    created_at: datetime


class RegisterDeclare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    declared_by: str = Field(min_length=1, max_length=255)


class SoftwareRegister(BaseModel):
    agency_id: int
    declared: bool = Field(description="False: no register; the fleet rule says unknown.")
    declared_at: datetime | None = None
    declared_by: str | None = None
    entries: list[ApprovedSoftwarePublic]


def _public(row: ApprovedSoftwareRecord) -> ApprovedSoftwarePublic:
    assert row.id is not None
    return ApprovedSoftwarePublic(
        id=row.id,
        agency_id=row.agency_id,
        name=row.name_pattern,
        version=row.version_pattern,
        note=row.note,
        added_by=row.added_by,
        created_at=row.created_at,
    )


def _register(session: Session, agency: Agency) -> SoftwareRegister:
    assert agency.id is not None
    declaration = fleet_data.register_declaration(session, agency.id)
    return SoftwareRegister(
        agency_id=agency.id,
        declared=declaration is not None,
        declared_at=declaration.declared_at if declaration else None,
        declared_by=declaration.declared_by if declaration else None,
        entries=[_public(r) for r in fleet_data.register_entries(session, agency.id)],
    )


def _declare(session: Session, agency_id: int, by: str) -> None:
    """Declare the register if not yet declared (no commit)."""
    if fleet_data.register_declaration(session, agency_id) is None:
        session.add(
            SoftwareRegisterDeclaration(agency_id=agency_id, declared_at=utcnow(), declared_by=by)
        )


@router.get("/agencies/{agency_id}/approved-software", response_model=SoftwareRegister)
def get_register(agency: AgencyDep, session: SessionDep) -> SoftwareRegister:
    """The register of approved software and whether the agency declared it."""
    return _register(session, agency)


@router.post(
    "/agencies/{agency_id}/approved-software",
    response_model=ApprovedSoftwarePublic,
    status_code=status.HTTP_201_CREATED,
)
def add_entry(
    body: ApprovedSoftwareCreate, agency: ManagedAgencyDep, session: SessionDep, principal: UserDep
) -> ApprovedSoftwarePublic:
    """Approve a package (name or glob, optionally a version glob); declares the register."""
    assert agency.id is not None
    _declare(session, agency.id, body.added_by)
    row = ApprovedSoftwareRecord(
        agency_id=agency.id,
        name_pattern=body.name,
        version_pattern=body.version,
        note=body.note,
        added_by=body.added_by,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        principal,
        "approved_software.add",
        agency_id=agency.id,
        target=f"approved_software:{row.id}",
        detail=body.model_dump(),
    )
    session.commit()
    session.refresh(row)
    return _public(row)


@router.post("/agencies/{agency_id}/approved-software/declare", response_model=SoftwareRegister)
def declare_register(
    body: RegisterDeclare, agency: ManagedAgencyDep, session: SessionDep, principal: UserDep
) -> SoftwareRegister:
    """Declare the register, possibly empty (idempotent: the first declaration is kept)."""
    assert agency.id is not None
    if fleet_data.register_declaration(session, agency.id) is None:
        audit.record(
            session,
            principal,
            "approved_software.declare",
            agency_id=agency.id,
            target=f"agency:{agency.id}",
            detail=body.model_dump(),
        )
    _declare(session, agency.id, body.declared_by)
    session.commit()
    return _register(session, agency)


@router.delete("/approved-software/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_entry(
    session: SessionDep,
    principal: UserDep,
    entry_id: Annotated[int, Path(description="Register entry id")],
) -> Response:
    """Remove an entry; the register stays declared."""
    row = session.get(ApprovedSoftwareRecord, entry_id)
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"approved software entry {entry_id} not found"
        )
    authorize_manage(principal, row.agency_id)
    audit.record(
        session,
        principal,
        "approved_software.remove",
        agency_id=row.agency_id,
        target=f"approved_software:{entry_id}",
        detail={"name": row.name_pattern, "version": row.version_pattern},
    )
    session.delete(row)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
