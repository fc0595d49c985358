"""The agency's network model (admin) and segmentation probing (agents).

Admin: ``GET/PUT /agencies/{id}/network`` (zones and allowed flows, one
document replaced atomically) and ``GET /agencies/{id}/network/probe-runs``.
Agents: ``GET /agent/probe-plan`` (the plan for the calling agent's host) and
``POST /agent/probe-results``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agent.netprobe.plan import ProbePlan, ProbeResults
from collector import audit, network, probe_plans
from collector.crud import NotFound
from collector.db import SessionDep, SettingsDep
from collector.models import ProbeRun
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep, ManagedAgencyDep
from collector.security import AgentDep, RequireUser, UserDep

admin_router = APIRouter(
    prefix="/agencies", tags=["network"], dependencies=[RequireUser], responses=ADMIN_RESPONSES
)
agent_router = APIRouter(prefix="/agent", tags=["agents"])


class NetworkModelPublic(network.NetworkModel):
    agency_id: int
    declared: bool = Field(description="False: no zones declared; the network rules say unknown.")


class ProbeRunPublic(BaseModel):
    plan_id: uuid.UUID
    host_id: int
    source_zone: str
    source_address: str | None
    method: str | None
    issued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    received_at: datetime | None
    status: Literal["issued", "received"]
    targets: int = Field(description="Targets in the plan.")
    open_ports: int = Field(description="Open ports in the results kept.")
    results: dict[str, Any] | None = None


class ProbeResultsAccepted(BaseModel):
    plan_id: uuid.UUID
    host_id: int
    status: Literal["accepted", "duplicate"]
    targets: int = Field(description="Target results kept.")
    ignored: list[str] = Field(default_factory=list, description="Results outside the plan.")


def _public_model(agency_id: int, model: network.NetworkModel) -> NetworkModelPublic:
    return NetworkModelPublic.model_construct(
        zones=model.zones, flows=model.flows, agency_id=agency_id, declared=bool(model.zones)
    )


def _public_run(run: ProbeRun, with_results: bool) -> ProbeRunPublic:
    results = run.results or {}
    open_ports = sum(
        1
        for target in results.get("results") or []
        for port in target.get("ports") or []
        if port.get("state") == "open"
    )
    return ProbeRunPublic(
        plan_id=run.plan_id,
        host_id=run.host_id,
        source_zone=run.source_zone,
        source_address=run.source_address,
        method=run.method,
        issued_at=run.issued_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        received_at=run.received_at,
        status="received" if run.results is not None else "issued",
        targets=len((run.plan or {}).get("targets") or []),
        open_ports=open_ports,
        results=run.results if with_results else None,
    )


# --- admin ------------------------------------------------------------------------


@admin_router.get("/{agency_id}/network", response_model=NetworkModelPublic)
def get_network(agency: AgencyDep, session: SessionDep) -> NetworkModelPublic:
    """The agency's declared zones and allowed flows."""
    assert agency.id is not None
    return _public_model(agency.id, network.get_model(session, agency.id))


@admin_router.put(
    "/{agency_id}/network",
    response_model=NetworkModelPublic,
    responses={
        409: {"description": "Changed concurrently"},
        422: {"description": "Invalid model (overlapping zones, unknown zone, bad port…)"},
    },
)
def put_network(
    body: network.NetworkModel, agency: ManagedAgencyDep, session: SessionDep, principal: UserDep
) -> NetworkModelPublic:
    """Replace the whole network model (zones and flows) in one step."""
    assert agency.id is not None
    audit.record(
        session,
        principal,
        "network.update",
        agency_id=agency.id,
        target=f"agency:{agency.id}",
        detail=body.model_dump(mode="json"),
    )
    try:
        model = network.replace_model(session, agency.id, body)
    except network.ModelConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return _public_model(agency.id, model)


@admin_router.get("/{agency_id}/network/probe-runs", response_model=list[ProbeRunPublic])
def get_probe_runs(
    agency: AgencyDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    results: Annotated[bool, Query(description="Include the results kept.")] = True,
) -> list[ProbeRunPublic]:
    """Probe plans issued to the agency's agents, newest first, with their results."""
    assert agency.id is not None
    return [_public_run(r, results) for r in probe_plans.list_runs(session, agency.id, limit)]


# --- agents -----------------------------------------------------------------------


@agent_router.get(
    "/probe-plan",
    response_model=ProbePlan,
    responses={
        401: {"description": "Missing, unknown or revoked credential"},
        409: {"description": "The host is not in any declared zone (or spans several)"},
    },
)
def get_probe_plan(agent: AgentDep, session: SessionDep, settings: SettingsDep) -> ProbePlan:
    """The segmentation probe plan of the calling agent's host (a new plan each call)."""
    agency, host = probe_plans.agency_of(session, agent.host_id)
    try:
        return probe_plans.issue_plan(session, agency, host, settings=settings)
    except network.NotInZone as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc


@agent_router.post(
    "/probe-results",
    response_model=ProbeResultsAccepted,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ProbeResultsAccepted, "description": "Already stored; nothing changed"},
        401: {"description": "Missing, unknown or revoked credential"},
        403: {"description": "The plan was issued to another host"},
        404: {"description": "Unknown plan id"},
        422: {"description": "Invalid results"},
    },
)
def post_probe_results(
    body: ProbeResults, agent: AgentDep, session: SessionDep
) -> ProbeResultsAccepted | JSONResponse:
    """Results of a plan issued to this host; kept once per plan, within the plan's scope."""
    try:
        recorded = probe_plans.record_results(session, agent.host_id, body)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except probe_plans.PlanForbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc
    except probe_plans.InvalidResults as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    run = recorded.run
    answer = ProbeResultsAccepted(
        plan_id=run.plan_id,
        host_id=run.host_id,
        status=recorded.status,
        targets=len((run.results or {}).get("results") or []),
        ignored=recorded.ignored,
    )
    if recorded.status == "duplicate":
        return JSONResponse(answer.model_dump(mode="json"), status_code=status.HTTP_200_OK)
    return answer
