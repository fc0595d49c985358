"""An agency's check thresholds: the values in force and the agency's own overrides (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from collector import audit
from collector.db import SessionDep, SettingsDep
from collector.parameters import (
    InvalidParameters,
    effective_parameters,
    province_parameters,
    validate_overrides,
)
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep
from collector.schemas import ErrorDetail
from collector.security import ProvinceAdminDep, RequireUser

router = APIRouter(
    prefix="/agencies", tags=["parameters"], dependencies=[RequireUser], responses=ADMIN_RESPONSES
)


class AgencyParameters(BaseModel):
    agency_id: int
    effective: dict[str, dict[str, Any]] = Field(
        description="Values in force: defaults ← province file ← the agency's overrides."
    )
    overrides: dict[str, dict[str, Any]] = Field(
        description="The agency's own overrides, {family: {key: value}}."
    )
    province_file: str | None = Field(
        default=None, description="The province-wide override file (POSTURE_PARAMETERS_FILE)."
    )


def _view(agency: Any, settings: Any) -> AgencyParameters:
    try:
        effective = effective_parameters(settings, agency)
    except InvalidParameters as exc:  # a broken province file: the operator must fix it
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail=str(exc)) from exc
    return AgencyParameters(
        agency_id=agency.id,
        effective=effective,
        overrides=agency.parameters or {},
        province_file=str(settings.parameters_file) if settings.parameters_file else None,
    )


@router.get("/{agency_id}/parameters", response_model=AgencyParameters)
def get_parameters(agency: AgencyDep, settings: SettingsDep) -> AgencyParameters:
    """The thresholds this agency's reports are evaluated with."""
    return _view(agency, settings)


@router.put(
    "/{agency_id}/parameters",
    response_model=AgencyParameters,
    responses={422: {"model": ErrorDetail, "description": "Unknown parameter or wrong type"}},
)
def put_parameters(
    agency: AgencyDep,
    session: SessionDep,
    settings: SettingsDep,
    principal: ProvinceAdminDep,
    body: dict[str, dict[str, Any]],
) -> AgencyParameters:
    """Replace the agency's overrides (``{}`` clears them) — province administrators only,
    since the thresholds are the province's standard, not the agency's choice.

    Only known parameters are accepted (``policies/parameters.yaml``); a new
    value applies to the reports received from now on.
    """
    try:
        base = province_parameters(settings)
    except InvalidParameters as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail=str(exc)) from exc
    try:
        overrides = validate_overrides(body, base)
    except InvalidParameters as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    audit.record(
        session,
        principal,
        "parameters.update",
        agency_id=agency.id,
        target=f"agency:{agency.id}",
        detail={"before": agency.parameters or {}, "after": overrides},
    )
    agency.parameters = overrides  # a new object, so the JSON column is marked dirty
    session.add(agency)
    session.commit()
    session.refresh(agency)
    return _view(agency, settings)
