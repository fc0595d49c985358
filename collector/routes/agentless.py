"""Agentless targets (admin): register, show and trust the host key, collect now.

Sync handlers: FastAPI runs them in its thread pool, so an SSH collection does
not block the event loop.
"""

from __future__ import annotations

from datetime import datetime
from types import ModuleType
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from collector import audit
from collector.db import SessionDep, SettingsDep
from collector.ingest import IngestError
from collector.models import AgentlessTarget
from collector.routes.deps import ADMIN_RESPONSES
from collector.schemas import ErrorDetail
from collector.security import (
    ProvinceAdminDep,
    RequireUser,
    UserDep,
    authorize_manage,
    authorize_read,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorDetail, "description": text}
    for code, text in (
        (404, "Unknown target"),
        (409, "Host key not trusted, or changed"),
        (422, "Invalid target (e.g. unknown agency) or request"),
        (501, "The 'agentless' extra (paramiko) is not installed"),
        (502, "The server could not be reached or refused the login"),
    )
}

router = APIRouter(
    prefix="/agentless",
    tags=["agentless"],
    dependencies=[RequireUser],
    responses={**ADMIN_RESPONSES, **_ERRORS},
)


class AgentlessTargetCreate(BaseModel):
    agency_id: int
    address: str = Field(min_length=1, max_length=255)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=64)
    key_path: str = Field(
        min_length=1, max_length=1000, description="Private key on the collector."
    )
    role: Literal["server", "workstation", "unknown"] = "server"
    interval_minutes: int = Field(default=1440, ge=1)


class AgentlessTargetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agency_id: int
    host_id: int | None
    address: str
    port: int
    username: str
    key_path: str
    role: str
    host_key_type: str | None
    host_key_sha256: str | None
    trusted_at: datetime | None
    trusted_by: str | None
    interval_minutes: int
    last_run_at: datetime | None
    last_error: str | None


class PresentedKey(BaseModel):
    key_type: str
    sha256: str
    pinned_sha256: str | None = None


class TrustRequest(BaseModel):
    fingerprint: str = Field(description="The SHA256 fingerprint the admin verified, e.g. SHA256:…")
    trusted_by: str | None = Field(
        default=None, max_length=255, description="Defaults to the caller's name."
    )


class CollectResult(BaseModel):
    status: str
    report_id: str
    host_id: int
    summary: dict[str, int]


def _modules() -> tuple[ModuleType, ModuleType]:
    """paramiko is an optional extra: without it the API answers 501, the app still runs."""
    try:
        from collector.agentless import service, ssh
    except ImportError as exc:
        raise HTTPException(
            status.HTTP_501_NOT_IMPLEMENTED,
            detail=f"agentless collection needs the 'agentless' extra (paramiko): {exc}",
        ) from exc
    return service, ssh


def _target(
    session: SessionDep, principal: UserDep, target_id: int, *, manage: bool = False
) -> AgentlessTarget:
    service, _ = _modules()
    try:
        target = service.get_target(session, target_id)
    except service.AgentlessError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    (authorize_manage if manage else authorize_read)(principal, target.agency_id)
    return target


@router.post("/targets", response_model=AgentlessTargetPublic, status_code=201)
def create_target(
    body: AgentlessTargetCreate, session: SessionDep, principal: ProvinceAdminDep
) -> AgentlessTargetPublic:
    """Register a server to collect over SSH (province administrators: the private key
    lives on the collector, so choosing it is the collector operator's call)."""
    service, _ = _modules()
    try:
        target = service.create_target(session, **body.model_dump())
    except service.AgentlessError as exc:
        # 422 by number: Starlette renamed the constant (…_CONTENT) and deprecates the old name.
        raise HTTPException(422, detail=str(exc)) from exc
    audit.record(
        session,
        principal,
        "agentless.create",
        agency_id=target.agency_id,
        target=f"agentless_target:{target.id}",
        detail=body.model_dump(),
    )
    session.commit()
    session.refresh(target)
    return AgentlessTargetPublic.model_validate(target)


@router.get("/targets", response_model=list[AgentlessTargetPublic])
def list_targets(
    session: SessionDep,
    principal: UserDep,
    agency_id: Annotated[int | None, Query(description="Only this agency")] = None,
) -> list[AgentlessTargetPublic]:
    """The agentless targets the caller may read."""
    query = select(AgentlessTarget).order_by(col(AgentlessTarget.id))
    if agency_id is not None:
        query = query.where(AgentlessTarget.agency_id == agency_id)
    return [
        AgentlessTargetPublic.model_validate(t)
        for t in session.exec(query).all()
        if principal.can_read_agency(t.agency_id)
    ]


@router.get("/targets/{target_id}", response_model=AgentlessTargetPublic)
def get_target(target_id: int, session: SessionDep, principal: UserDep) -> AgentlessTargetPublic:
    return AgentlessTargetPublic.model_validate(_target(session, principal, target_id))


@router.get("/targets/{target_id}/host-key", response_model=PresentedKey)
def presented_host_key(target_id: int, session: SessionDep, principal: UserDep) -> PresentedKey:
    """The key the server presents now (no login): verify it out of band, then trust it."""
    target = _target(session, principal, target_id, manage=True)
    service, ssh = _modules()
    try:
        key = service.presented_host_key(target)
    except ssh.SshError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from exc
    return PresentedKey(
        key_type=key.key_type, sha256=key.sha256, pinned_sha256=target.host_key_sha256
    )


@router.post("/targets/{target_id}/trust", response_model=AgentlessTargetPublic)
def trust_host_key(
    target_id: int, body: TrustRequest, session: SessionDep, principal: UserDep
) -> AgentlessTargetPublic:
    """Pin the key the server presents, if it matches the fingerprint verified out of band."""
    target = _target(session, principal, target_id, manage=True)
    service, ssh = _modules()
    event = audit.record(
        session,
        principal,
        "agentless.trust_host_key",
        agency_id=target.agency_id,
        target=f"agentless_target:{target.id}",
        detail={"fingerprint": body.fingerprint, "previous": target.host_key_sha256},
    )
    try:
        service.trust_host_key(
            session,
            target,
            fingerprint=body.fingerprint,
            trusted_by=body.trusted_by or principal.actor,
        )
    except service.FingerprintMismatch as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except ssh.SshError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from exc
    audit.complete(session, event)
    session.refresh(target)
    return AgentlessTargetPublic.model_validate(target)


@router.post("/targets/{target_id}/collect", response_model=CollectResult)
def collect_now(
    target_id: int, session: SessionDep, settings: SettingsDep, principal: UserDep
) -> CollectResult:
    """Collect now (the scheduler also collects every ``interval_minutes``)."""
    target = _target(session, principal, target_id, manage=True)
    service, ssh = _modules()
    try:
        result = service.collect_target(session, target, settings=settings)
    except (service.NotTrusted, ssh.UnknownHostKey, ssh.HostKeyChanged) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except ssh.SshError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from exc
    except IngestError as exc:
        raise HTTPException(exc.status_code, detail=exc.detail) from exc
    return CollectResult(
        status=result.status,
        report_id=str(result.report_id),
        host_id=result.host_id,
        summary=result.summary,
    )
