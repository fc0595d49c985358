"""Attestations: a person confirms a requirement no agent can check, with evidence files.

Plain functions over a ``Session`` (they commit themselves, like ``collector.crud``);
domain errors are ``crud.CrudError`` subclasses the routes turn into HTTP answers.
Rows convert to ``policies.exceptions.Attestation`` for the engine.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from sqlmodel import Session, col, select

from collector.crud import CrudError, NotFound, revoke_row
from collector.models import Agency, AttestationRecord, EvidenceFile, utcnow
from policies.exceptions import Attestation, latest_attestations
from policies.framework import DEFAULT_FRAMEWORK, Requirement, load_framework

DEFAULT_VALID_DAYS = 365  # Điều 20 khoản 3: security is reviewed every year
# An attestation may be recorded a little "ahead" of the collector's clock.
CLOCK_SKEW = timedelta(minutes=5)
_CHUNK = 1024 * 1024
_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")


class InvalidAttestation(CrudError):
    """The attestation cannot be recorded as asked (→ 422)."""


class AttestationRevoked(CrudError):
    """The attestation was revoked: no evidence can be added any more (→ 409)."""


class EvidenceTooLarge(CrudError):
    """The evidence file exceeds ``POSTURE_MAX_EVIDENCE_BYTES`` (→ 413)."""


# --- requirements -------------------------------------------------------------


def attestable_requirements(level: int, framework: str = DEFAULT_FRAMEWORK) -> list[Requirement]:
    """Requirements verified by a person's attestation that apply at Mức độ ``level``."""
    return [
        r
        for r in load_framework(framework).requirements
        if r.verification == "attestation" and r.applies_to_level(level)
    ]


def attestable_requirement(
    agency: Agency, requirement_id: str, framework: str = DEFAULT_FRAMEWORK
) -> Requirement:
    """The requirement, if an attestation of ``agency`` can be recorded for it."""
    fw = load_framework(framework)
    req = next((r for r in fw.requirements if r.id == requirement_id), None)
    if req is None:
        raise InvalidAttestation(f"unknown requirement {requirement_id!r} in framework {fw.id}")
    if req.verification != "attestation":
        raise InvalidAttestation(
            f"requirement {req.id} is verified by '{req.verification}', not by attestation; "
            "list the attestable ones with GET /api/v1/agencies/{id}/attestable-requirements"
        )
    if not req.applies_to_level(agency.level):
        raise InvalidAttestation(
            f"requirement {req.id} applies to Mức độ {req.min_level}–{req.max_level}, "
            f"not to agency {agency.code} (Mức độ {agency.level})"
        )
    return req


# --- attestations -----------------------------------------------------------------


def record_attestation(
    session: Session,
    agency: Agency,
    *,
    requirement_id: str,
    statement: str,
    attested_by: str,
    status: str = "pass",
    attested_at: datetime | None = None,
    expires_at: datetime | None = None,
    valid_days: int | None = None,
    default_valid_days: int = DEFAULT_VALID_DAYS,
    now: datetime | None = None,
    framework: str = DEFAULT_FRAMEWORK,
) -> AttestationRecord:
    """Record an attestation of ``agency`` for an attestable requirement.

    The expiry is ``expires_at``, else ``attested_at + valid_days``, else
    ``attested_at + default_valid_days``.  ``attested_at`` (default now) may lie
    in the past, so an earlier review can be recorded, even one already expired.
    """
    assert agency.id is not None
    now = now or utcnow()
    req = attestable_requirement(agency, requirement_id, framework)
    if status not in ("pass", "fail"):
        raise InvalidAttestation(f"status must be 'pass' or 'fail', got {status!r}")
    if not statement.strip():
        raise InvalidAttestation("statement must not be empty")
    if not attested_by.strip():
        raise InvalidAttestation("attested_by must not be empty")
    if expires_at is not None and valid_days is not None:
        raise InvalidAttestation("give either expires_at or valid_days, not both")
    attested_at = attested_at or now
    if attested_at > now + CLOCK_SKEW:
        raise InvalidAttestation(
            f"attested_at {attested_at.isoformat()} is in the future (now {now.isoformat()})"
        )
    if expires_at is None:
        expires_at = attested_at + timedelta(days=valid_days or default_valid_days)
    if expires_at <= attested_at:
        raise InvalidAttestation(
            f"expires_at {expires_at.isoformat()} must be after attested_at "
            f"{attested_at.isoformat()}"
        )
    row = AttestationRecord(
        agency_id=agency.id,
        requirement_id=req.id,
        status=status,
        statement=statement.strip(),
        attested_by=attested_by.strip(),
        attested_at=attested_at,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def get_attestation(session: Session, attestation_id: int) -> AttestationRecord | None:
    return session.get(AttestationRecord, attestation_id)


def list_attestations(
    session: Session,
    agency_id: int,
    include_expired: bool = True,
    *,
    include_revoked: bool = True,
    now: datetime | None = None,
) -> Sequence[AttestationRecord]:
    """An agency's attestations, newest first."""
    query = select(AttestationRecord).where(AttestationRecord.agency_id == agency_id)
    if not include_expired:
        query = query.where(AttestationRecord.expires_at > (now or utcnow()))
    if not include_revoked:
        query = query.where(col(AttestationRecord.revoked_at).is_(None))
    query = query.order_by(
        col(AttestationRecord.attested_at).desc(), col(AttestationRecord.id).desc()
    )
    return session.exec(query).all()


def revoke_attestation(
    session: Session, attestation_id: int, *, now: datetime | None = None
) -> AttestationRecord:
    """Revoke an attestation (idempotent); the row and its evidence are kept."""
    return revoke_row(session, AttestationRecord, attestation_id, "attestation", now)


def to_attestation(row: AttestationRecord, evidence_files: list[str] | None = None) -> Attestation:
    """The engine's view of a stored attestation."""
    return Attestation(
        id=row.id,
        requirement_id=row.requirement_id,
        status="fail" if row.status == "fail" else "pass",
        statement=row.statement,
        attested_by=row.attested_by,
        attested_at=row.attested_at,
        expires_at=row.expires_at,
        evidence_files=evidence_files or [],
    )


def attestations_for(session: Session, agency_id: int) -> Mapping[str, Attestation]:
    """The latest non-revoked attestation of each requirement, expired ones included.

    An expired one is kept so that the engine reports the requirement as
    ``unknown`` with "hết hiệu lực" instead of merely "awaiting attestation".
    """
    rows = session.exec(
        select(AttestationRecord)
        .where(
            AttestationRecord.agency_id == agency_id,
            col(AttestationRecord.revoked_at).is_(None),
        )
        .order_by(col(AttestationRecord.attested_at), col(AttestationRecord.id))
    ).all()
    names = evidence_names(session, [r.id for r in rows if r.id is not None])
    return latest_attestations(to_attestation(r, names.get(r.id or 0)) for r in rows)


# --- evidence files -----------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceInfo:
    """Metadata of a stored evidence file (without its content)."""

    id: int
    attestation_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


_INFO_COLUMNS = (
    EvidenceFile.id,
    EvidenceFile.attestation_id,
    EvidenceFile.filename,
    EvidenceFile.content_type,
    EvidenceFile.size,
    EvidenceFile.sha256,
    EvidenceFile.created_at,
)


def safe_filename(name: str | None) -> str:
    """A file name without directories or control characters, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    return base[:255] or "evidence"


def safe_content_type(value: str | None) -> str:
    """The media type without parameters if well-formed, else application/octet-stream."""
    media = (value or "").split(";", 1)[0].strip().lower()
    return media if _MIME.fullmatch(media) and len(media) <= 255 else "application/octet-stream"


def read_limited(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read a whole stream, refusing (``EvidenceTooLarge``) once it passes ``max_bytes``."""
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise EvidenceTooLarge(f"evidence file exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def add_evidence_file(
    session: Session,
    attestation: AttestationRecord,
    *,
    filename: str | None,
    content_type: str | None,
    data: bytes,
    max_bytes: int,
) -> EvidenceInfo:
    """Store a file supporting ``attestation``, with its SHA-256."""
    assert attestation.id is not None
    if len(data) > max_bytes:
        raise EvidenceTooLarge(f"evidence file exceeds the limit of {max_bytes} bytes")
    if attestation.revoked_at is not None:
        raise AttestationRevoked(
            f"attestation {attestation.id} was revoked at {attestation.revoked_at.isoformat()}; "
            "record a new attestation"
        )
    row = EvidenceFile(
        attestation_id=attestation.id,
        filename=safe_filename(filename),
        content_type=safe_content_type(content_type),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return _info(row)


def _info(row: EvidenceFile | tuple) -> EvidenceInfo:
    if isinstance(row, EvidenceFile):
        values = tuple(getattr(row, c.key) for c in _INFO_COLUMNS)
    else:
        values = tuple(row)
    return EvidenceInfo(*values)


def list_evidence(
    session: Session, attestation_ids: Sequence[int]
) -> dict[int, list[EvidenceInfo]]:
    """Evidence metadata per attestation (the contents are not loaded)."""
    out: dict[int, list[EvidenceInfo]] = {i: [] for i in attestation_ids}
    if not attestation_ids:
        return out
    rows = session.exec(
        select(*_INFO_COLUMNS)
        .where(col(EvidenceFile.attestation_id).in_(list(attestation_ids)))
        .order_by(col(EvidenceFile.id))
    ).all()
    for row in rows:
        info = _info(row)
        out.setdefault(info.attestation_id, []).append(info)
    return out


def evidence_names(session: Session, attestation_ids: Sequence[int]) -> dict[int, list[str]]:
    return {
        aid: [f.filename for f in files]
        for aid, files in list_evidence(session, attestation_ids).items()
    }


def get_evidence_file(session: Session, attestation_id: int, file_id: int) -> EvidenceFile:
    row = session.get(EvidenceFile, file_id)
    if row is None or row.attestation_id != attestation_id:
        raise NotFound(f"evidence file {file_id} of attestation {attestation_id} not found")
    return row
