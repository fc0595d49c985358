"""Agency-wide (fleet) rule results (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from collector import fleet_data
from collector.db import SessionDep, SettingsDep
from collector.models import utcnow
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep
from collector.security import RequireUser
from policies.model import Finding

router = APIRouter(tags=["fleet"], dependencies=[RequireUser], responses=ADMIN_RESPONSES)


@router.get("/agencies/{agency_id}/fleet", response_model=list[Finding])
def agency_fleet(agency: AgencyDep, session: SessionDep, settings: SettingsDep) -> list[Finding]:
    """Results of the agency-wide rules (agency-wide waivers applied): silent machines,
    anti-virus coverage, software installed without approval, backups before installs…"""
    return fleet_data.fleet_findings(session, agency, utcnow(), settings=settings)
