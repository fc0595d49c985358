"""Database operations.  Plain functions over a ``Session``; no HTTP here.

Functions that change data commit themselves unless documented otherwise, so
each call is one transaction.  Domain errors are raised as the exceptions
below and turned into HTTP answers by the routes (or messages by the CLI).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from agent.report import (
    DeliveryInfo,
)
from collector.models import (
    MAX_LEVEL,
    MIN_LEVEL,
    Agency,
    AgentCredential,
    EnrollmentToken,
    Host,
    HostInventory,
    HostPackage,
    ReportLoss,
    SoftwareChange,
    StoredFinding,
    StoredReport,
    utcnow,
)
from collector.tokens import (
    format_agent_credential,
    hash_secret,
    new_agent_secret,
    new_enrollment_token,
    secrets_match,
)
from policies.model import Finding

log = logging.getLogger(__name__)


class CrudError(Exception):
    """Base class of domain errors; ``str(exc)`` is a user-facing message."""


class AlreadyExists(CrudError):
    pass


class NotFound(CrudError):
    pass


class EnrollmentRejected(CrudError):
    pass


# --- agencies ---------------------------------------------------------------


def create_agency(session: Session, *, code: str, name: str, level: int) -> Agency:
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"level must be between {MIN_LEVEL} and {MAX_LEVEL}, got {level}")
    if get_agency_by_code(session, code) is not None:
        raise AlreadyExists(f"an agency with code {code!r} already exists")
    agency = Agency(code=code, name=name, level=level)
    session.add(agency)
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent insert won the race
        session.rollback()
        raise AlreadyExists(f"an agency with code {code!r} already exists") from exc
    session.refresh(agency)
    return agency


def list_agencies(session: Session) -> Sequence[Agency]:
    return session.exec(select(Agency).order_by(col(Agency.code))).all()


def get_agency(session: Session, agency_id: int) -> Agency | None:
    return session.get(Agency, agency_id)


def get_agency_by_code(session: Session, code: str) -> Agency | None:
    return session.exec(select(Agency).where(Agency.code == code)).first()


# --- enrollment tokens ------------------------------------------------------


@dataclass(frozen=True)
class IssuedEnrollmentToken:
    row: EnrollmentToken
    token: str  # plaintext, returned once and never stored


def create_enrollment_token(
    session: Session,
    agency: Agency,
    *,
    label: str | None = None,
    expires_in_hours: float | None = None,
) -> IssuedEnrollmentToken:
    assert agency.id is not None
    token, token_hash = new_enrollment_token()
    now = utcnow()
    expires_at = now + timedelta(hours=expires_in_hours) if expires_in_hours else None
    row = EnrollmentToken(
        agency_id=agency.id,
        token_hash=token_hash,
        label=label,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return IssuedEnrollmentToken(row=row, token=token)


def revoke_enrollment_token(session: Session, token_id: int) -> EnrollmentToken:
    row = session.get(EnrollmentToken, token_id)
    if row is None:
        raise NotFound(f"enrollment token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
    return row


def _find_enrollment_token(session: Session, token: str) -> EnrollmentToken | None:
    row = session.exec(
        select(EnrollmentToken).where(EnrollmentToken.token_hash == hash_secret(token))
    ).first()
    # The lookup is by hash; compare again in constant time for good measure.
    if row is None or not secrets_match(token, row.token_hash):
        return None
    return row


# --- enrollment -------------------------------------------------------------


@dataclass(frozen=True)
class Enrollment:
    agency: Agency
    host: Host
    credential: AgentCredential
    plaintext: str  # the agent credential, returned once


def enroll(
    session: Session,
    *,
    token: str,
    hostname: str,
    machine_id: str | None = None,
    fqdn: str | None = None,
    os_family: str | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> Enrollment:
    """Enroll an agent with an enrollment token; one transaction.

    With a ``machine_id``, the agency's host of that machine is reused (an
    agent re-enrolling after a reinstall keeps its history) and its previous
    credentials are revoked.  Without one, a new host is created each time.
    """
    now = now or utcnow()
    row = _find_enrollment_token(session, token)
    if row is None:
        raise EnrollmentRejected("unknown enrollment token")
    if row.revoked_at is not None:
        raise EnrollmentRejected("enrollment token has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise EnrollmentRejected(f"enrollment token expired at {row.expires_at.isoformat()}")
    agency = session.get(Agency, row.agency_id)
    assert agency is not None and agency.id is not None

    host: Host | None = None
    if machine_id:
        host = session.exec(
            select(Host).where(Host.agency_id == agency.id, Host.machine_id == machine_id)
        ).first()
    if host is None:
        host = Host(
            agency_id=agency.id,
            hostname=hostname,
            machine_id=machine_id or None,
            enrolled_at=now,
        )
    host.hostname = hostname
    if fqdn is not None:
        host.fqdn = fqdn
    if os_family is not None:
        host.os_family = os_family
    if role is not None:
        host.role = role
    session.add(host)
    session.flush()
    assert host.id is not None

    for old in session.exec(
        select(AgentCredential).where(
            AgentCredential.host_id == host.id, col(AgentCredential.revoked_at).is_(None)
        )
    ).all():
        old.revoked_at = now
        session.add(old)

    secret, secret_hash = new_agent_secret()
    credential = AgentCredential(host_id=host.id, secret_hash=secret_hash, created_at=now)
    session.add(credential)
    row.uses += 1
    session.add(row)
    try:
        session.flush()
        assert credential.id is not None
        plaintext = format_agent_credential(credential.id, secret)
        session.commit()
    except Exception:
        session.rollback()
        raise
    for obj in (agency, host, credential):
        session.refresh(obj)
    return Enrollment(agency=agency, host=host, credential=credential, plaintext=plaintext)


def revoke_host_credentials(session: Session, host: Host, *, now: datetime | None = None) -> int:
    """Revoke every active credential of ``host``; returns how many were revoked."""
    now = now or utcnow()
    active = session.exec(
        select(AgentCredential).where(
            AgentCredential.host_id == host.id, col(AgentCredential.revoked_at).is_(None)
        )
    ).all()
    for credential in active:
        credential.revoked_at = now
        session.add(credential)
    session.commit()
    return len(active)


def revoke_credential(session: Session, credential_id: int) -> AgentCredential:
    credential = session.get(AgentCredential, credential_id)
    if credential is None:
        raise NotFound(f"agent credential {credential_id} not found")
    if credential.revoked_at is None:
        credential.revoked_at = utcnow()
        session.add(credential)
        session.commit()
        session.refresh(credential)
    return credential


# --- hosts ------------------------------------------------------------------


def get_host(session: Session, host_id: int) -> Host | None:
    return session.get(Host, host_id)


def list_hosts(session: Session, agency_id: int) -> Sequence[Host]:
    return session.exec(
        select(Host).where(Host.agency_id == agency_id).order_by(col(Host.hostname), col(Host.id))
    ).all()


# --- reports and findings ---------------------------------------------------


def get_report(session: Session, report_id: uuid.UUID) -> StoredReport | None:
    return session.get(StoredReport, report_id)


def latest_report(session: Session, host: Host) -> StoredReport | None:
    if host.latest_report_id is None:
        return None
    return session.get(StoredReport, host.latest_report_id)


def latest_findings(session: Session, host: Host, *, status: str | None = None) -> list[Finding]:
    """Findings of the host's latest report, optionally only those with ``status``
    (stored with that report, or with the earlier one it evaluated the same as)."""
    if host.findings_report_id is None:
        return []
    query = select(StoredFinding).where(
        StoredFinding.host_id == host.id, StoredFinding.report_id == host.findings_report_id
    )
    if status is not None:
        query = query.where(StoredFinding.status == status)
    rows = session.exec(query.order_by(col(StoredFinding.id))).all()
    return [Finding.model_validate(row.payload) for row in rows]


# --- software inventory (deltas) --------------------------------------------


def get_inventory(session: Session, host_id: int) -> HostInventory | None:
    return session.get(HostInventory, host_id)


def host_packages(session: Session, host_id: int, name: str | None = None) -> list[HostPackage]:
    """Current packages of a host, sorted; ``name`` filters by case-insensitive substring."""
    query = select(HostPackage).where(HostPackage.host_id == host_id)
    if name:
        query = query.where(func.lower(HostPackage.name).contains(name.lower(), autoescape=True))
    rows = session.exec(query).all()
    return sorted(rows, key=lambda r: (r.name, r.arch, r.version))


def software_changes(
    session: Session, host_id: int, *, since: datetime | None = None, limit: int = 1000
) -> Sequence[SoftwareChange]:
    """A host's software history, newest report first (by name within a report)."""
    query = select(SoftwareChange).where(SoftwareChange.host_id == host_id)
    if since is not None:
        query = query.where(SoftwareChange.collected_at >= since)
    query = query.order_by(col(SoftwareChange.collected_at).desc(), col(SoftwareChange.id)).limit(
        limit
    )
    return session.exec(query).all()


# --- reports lost by agents ---------------------------------------------------


def record_report_loss(
    session: Session, host_id: int, report_id: uuid.UUID, delivery: DeliveryInfo | None
) -> ReportLoss | None:
    """Store the eviction record a report carries, idempotently (no commit)."""
    if delivery is None or delivery.evicted_count <= 0:
        return None
    first = delivery.evicted_first_report_id or report_id
    row = session.exec(
        select(ReportLoss).where(ReportLoss.host_id == host_id, ReportLoss.first_report_id == first)
    ).first()
    if row is None:
        row = ReportLoss(host_id=host_id, first_report_id=first, count=0, reported_in=report_id)
    elif delivery.evicted_count <= row.count:
        return row  # already known (a resend)
    row.count = delivery.evicted_count
    row.last_report_id = delivery.evicted_last_report_id
    row.evicted_since = delivery.evicted_since
    row.evicted_until = delivery.evicted_until
    row.reported_in = report_id
    row.received_at = utcnow()
    session.add(row)
    return row


def reports_lost(session: Session, host_ids: Iterable[int]) -> dict[int, int]:
    """Total reports each host's agent evicted before delivery (0 when none)."""
    ids = list(host_ids)
    totals = dict.fromkeys(ids, 0)
    if ids:
        query = (
            select(ReportLoss.host_id, func.sum(ReportLoss.count))
            .where(col(ReportLoss.host_id).in_(ids))
            .group_by(ReportLoss.host_id)
        )
        for host_id, total in session.exec(query).all():
            totals[host_id] = int(total or 0)
    return totals


RevocableT = TypeVar("RevocableT", bound=SQLModel)


def revoke_row(
    session: Session, model: type[RevocableT], row_id: int, label: str, now: datetime | None
) -> RevocableT:
    """Set ``revoked_at`` once (idempotent); the row is kept for the record."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"{label} {row_id} not found")
    if row.revoked_at is None:  # type: ignore[attr-defined]
        row.revoked_at = now or utcnow()  # type: ignore[attr-defined]
        session.add(row)
        session.commit()
        session.refresh(row)
    return row
