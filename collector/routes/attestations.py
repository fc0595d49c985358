"""Attestations of requirements only a person can confirm, with evidence files (admin)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import (
    APIRouter,
    Depends,
    File,
    HTTPException,
    Path,
    Query,
    Response,
    UploadFile,
    status,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collector import attestations as att
from collector import audit
from collector.crud import NotFound
from collector.db import SessionDep, SettingsDep
from collector.models import AttestationRecord, utcnow
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep, ManagedAgencyDep
from collector.schemas import ErrorDetail
from collector.security import RequireUser, UserDep, authorize_manage, authorize_read
from policies.model import Text

router = APIRouter(tags=["attestations"], dependencies=[RequireUser], responses=ADMIN_RESPONSES)

AttestationState = Literal["valid", "expired", "revoked"]


def _utc(value: datetime | None) -> datetime | None:
    """Naive datetimes are taken as UTC (like the database columns)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AttestationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requirement_id: str = Field(min_length=1, max_length=64, examples=["D16.2.L3.b"])
    status: Literal["pass", "fail"] = Field(
        default="pass", description="'fail': the person confirms the requirement is NOT met."
    )
    statement: str = Field(min_length=1, max_length=10_000, description="What was verified.")
    attested_by: str = Field(min_length=1, max_length=255, description="Name and position.")
    attested_at: datetime | None = Field(
        default=None, description="When the person attested (default: now; not in the future)."
    )
    expires_at: datetime | None = Field(default=None, description="End of validity.")
    valid_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description=(
            "Validity from attested_at, instead of expires_at; without either, "
            "POSTURE_ATTESTATION_VALID_DAYS (default 365: annual review, Điều 20 khoản 3)."
        ),
    )

    _tz = field_validator("attested_at", "expires_at")(_utc)

    @model_validator(mode="after")
    def _one_expiry(self) -> AttestationCreate:
        if self.expires_at is not None and self.valid_days is not None:
            raise ValueError("give either expires_at or valid_days, not both")
        return self


class EvidencePublic(BaseModel):
    id: int
    attestation_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    download_url: str


class AttestationPublic(BaseModel):
    id: int
    agency_id: int
    requirement_id: str
    status: Literal["pass", "fail"]
    statement: str
    attested_by: str
    attested_at: datetime
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None
    state: AttestationState
    evidence: list[EvidencePublic] = Field(default_factory=list)


class AttestableRequirement(BaseModel):
    id: str
    article: int
    reference: Text
    title: Text
    quote: str
    min_level: int
    max_level: int
    modality: str
    state: Literal["none", "valid", "expired"] = Field(
        description="The latest non-revoked attestation: none, valid or expired."
    )
    attestation: AttestationPublic | None = None


def _evidence_public(info: att.EvidenceInfo) -> EvidencePublic:
    return EvidencePublic(
        id=info.id,
        attestation_id=info.attestation_id,
        filename=info.filename,
        content_type=info.content_type,
        size=info.size,
        sha256=info.sha256,
        created_at=info.created_at,
        download_url=f"/api/v1/attestations/{info.attestation_id}/evidence/{info.id}",
    )


def _state(row: AttestationRecord, now: datetime) -> AttestationState:
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if now >= row.expires_at else "valid"


def _publics(
    session: SessionDep, rows: list[AttestationRecord], now: datetime
) -> list[AttestationPublic]:
    evidence = att.list_evidence(session, [r.id for r in rows if r.id is not None])
    out = []
    for row in rows:
        assert row.id is not None
        out.append(
            AttestationPublic(
                id=row.id,
                agency_id=row.agency_id,
                requirement_id=row.requirement_id,
                status="fail" if row.status == "fail" else "pass",
                statement=row.statement,
                attested_by=row.attested_by,
                attested_at=row.attested_at,
                expires_at=row.expires_at,
                created_at=row.created_at,
                revoked_at=row.revoked_at,
                state=_state(row, now),
                evidence=[_evidence_public(e) for e in evidence.get(row.id, [])],
            )
        )
    return out


def attestation_or_404(
    session: SessionDep,
    principal: UserDep,
    attestation_id: Annotated[int, Path(description="Attestation id")],
) -> AttestationRecord:
    row = att.get_attestation(session, attestation_id)
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"attestation {attestation_id} not found"
        )
    authorize_read(principal, row.agency_id)
    return row


AttestationDep = Annotated[AttestationRecord, Depends(attestation_or_404)]


@router.get(
    "/agencies/{agency_id}/attestable-requirements", response_model=list[AttestableRequirement]
)
def attestable_requirements(agency: AgencyDep, session: SessionDep) -> list[AttestableRequirement]:
    """Requirements only a person can confirm that apply at the agency's Mức độ, with the
    state of their latest non-revoked attestation."""
    assert agency.id is not None
    now = utcnow()
    rows = att.list_attestations(session, agency.id, include_revoked=False)
    latest: dict[str, AttestationRecord] = {}
    for row in rows:  # newest first
        latest.setdefault(row.requirement_id, row)
    publics = {p.requirement_id: p for p in _publics(session, list(latest.values()), now)}
    out = []
    for req in att.attestable_requirements(agency.level):
        current = publics.get(req.id)
        out.append(
            AttestableRequirement(
                id=req.id,
                article=req.article,
                reference=req.reference,
                title=req.title,
                quote=req.quote,
                min_level=req.min_level,
                max_level=req.max_level,
                modality=req.modality,
                state="none" if current is None else current.state,  # type: ignore[arg-type]
                attestation=current,
            )
        )
    return out


@router.post(
    "/agencies/{agency_id}/attestations",
    response_model=AttestationPublic,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": ErrorDetail, "description": "Requirement not attestable here"}},
)
def create_attestation(
    body: AttestationCreate,
    agency: ManagedAgencyDep,
    session: SessionDep,
    settings: SettingsDep,
    principal: UserDep,
) -> AttestationPublic:
    """Record a person's attestation of a requirement (default validity: 365 days)."""
    now = utcnow()
    event = audit.record(
        session,
        principal,
        "attestation.create",
        agency_id=agency.id,
        detail=body.model_dump(mode="json", exclude={"statement"}),
    )
    try:
        row = att.record_attestation(
            session,
            agency,
            requirement_id=body.requirement_id,
            status=body.status,
            statement=body.statement,
            attested_by=body.attested_by,
            attested_at=body.attested_at,
            expires_at=body.expires_at,
            valid_days=body.valid_days,
            default_valid_days=settings.attestation_valid_days,
            now=now,
        )
    except att.InvalidAttestation as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    audit.complete(session, event, target=f"attestation:{row.id}")
    session.refresh(row)
    return _publics(session, [row], now)[0]


@router.get("/agencies/{agency_id}/attestations", response_model=list[AttestationPublic])
def list_attestations(
    agency: AgencyDep,
    session: SessionDep,
    active: Annotated[
        bool, Query(description="Only attestations neither revoked nor expired")
    ] = False,
) -> list[AttestationPublic]:
    """The agency's attestations, newest first (revoked and expired ones included)."""
    assert agency.id is not None
    now = utcnow()
    rows = att.list_attestations(
        session, agency.id, include_expired=not active, include_revoked=not active, now=now
    )
    return _publics(session, list(rows), now)


@router.get("/attestations/{attestation_id}", response_model=AttestationPublic)
def get_attestation(row: AttestationDep, session: SessionDep) -> AttestationPublic:
    return _publics(session, [row], utcnow())[0]


@router.delete("/attestations/{attestation_id}", response_model=AttestationPublic)
def revoke_attestation(
    row: AttestationDep, session: SessionDep, principal: UserDep
) -> AttestationPublic:
    """Revoke the attestation; the record and its evidence are kept."""
    assert row.id is not None
    authorize_manage(principal, row.agency_id)
    if row.revoked_at is None:
        audit.record(
            session,
            principal,
            "attestation.revoke",
            agency_id=row.agency_id,
            target=f"attestation:{row.id}",
        )
    revoked = att.revoke_attestation(session, row.id)
    return _publics(session, [revoked], utcnow())[0]


@router.post(
    "/attestations/{attestation_id}/evidence",
    response_model=EvidencePublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {"model": ErrorDetail, "description": "Attestation revoked"},
        413: {"model": ErrorDetail, "description": "File above POSTURE_MAX_EVIDENCE_BYTES"},
    },
)
def upload_evidence(
    row: AttestationDep,
    session: SessionDep,
    settings: SettingsDep,
    principal: UserDep,
    file: Annotated[UploadFile, File(description="The evidence (scan, photo, minutes…)")],
) -> EvidencePublic:
    """Attach a file to the attestation; stored in the database with its SHA-256.

    Uploads are also bounded by POSTURE_MAX_BODY_BYTES (every request body).
    """
    authorize_manage(principal, row.agency_id)
    event = audit.record(
        session,
        principal,
        "attestation.evidence_upload",
        agency_id=row.agency_id,
        target=f"attestation:{row.id}",
        detail={"filename": file.filename, "content_type": file.content_type},
    )
    try:
        data = att.read_limited(file.file, settings.max_evidence_bytes)
        info = att.add_evidence_file(
            session,
            row,
            filename=file.filename,
            content_type=file.content_type,
            data=data,
            max_bytes=settings.max_evidence_bytes,
        )
    except att.EvidenceTooLarge as exc:
        raise HTTPException(413, detail=str(exc)) from exc
    except att.AttestationRevoked as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    audit.complete(
        session, event, detail={"evidence_id": info.id, "size": info.size, "sha256": info.sha256}
    )
    return _evidence_public(info)


_D_STROKE = str.maketrans({"đ": "d", "Đ": "D"})  # no decomposition in Unicode


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266/5987)."""
    ascii_name = unicodedata.normalize("NFKD", filename.translate(_D_STROKE))
    ascii_name = ascii_name.encode("ascii", "ignore").decode()
    ascii_name = (
        "".join(ch if ch.isalnum() or ch in " ._-()[]" else "_" for ch in ascii_name).strip()
        or "evidence"
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(
    "/attestations/{attestation_id}/evidence/{file_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
def download_evidence(
    row: AttestationDep,
    session: SessionDep,
    file_id: Annotated[int, Path(description="Evidence file id")],
) -> Response:
    """The evidence file as uploaded, always as an attachment."""
    assert row.id is not None
    try:
        evidence = att.get_evidence_file(session, row.id, file_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    return Response(
        content=evidence.data,
        media_type=evidence.content_type,
        headers={
            "Content-Disposition": content_disposition(evidence.filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "X-Evidence-SHA256": evidence.sha256,
        },
    )
