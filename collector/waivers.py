"""Waivers: accepted exceptions to a check, on one host or agency-wide, until they expire.

Waivers are applied when findings are read, never at ingest: a waiver created,
revoked or expired later changes the views at once, without new reports.
Plain functions over a ``Session`` (they commit themselves, like ``collector.crud``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from collector.crud import CrudError, revoke_row
from collector.models import Agency, Host, WaiverRecord, utcnow
from policies.exceptions import Waiver, apply_waivers
from policies.model import Finding
from policies.registry import load_checks, load_fleet_rules

DEFAULT_MAX_DAYS = 365


class InvalidWaiver(CrudError):
    """The waiver cannot be created as asked (→ 422)."""


def waiver_state(row: WaiverRecord, now: datetime) -> str:
    """``active``, ``revoked``, ``expired`` or ``pending`` (created_at in the future)."""
    if row.revoked_at is not None:
        return "revoked"
    if now >= row.expires_at:
        return "expired"
    return "active" if row.created_at <= now else "pending"


def create_waiver(
    session: Session,
    agency: Agency,
    *,
    check_id: str,
    justification: str,
    author: str,
    expires_at: datetime,
    host_id: int | None = None,
    max_days: int = DEFAULT_MAX_DAYS,
    now: datetime | None = None,
) -> WaiverRecord:
    """Waive ``check_id`` for one host of ``agency`` (or all of them when ``host_id`` is None)."""
    assert agency.id is not None
    now = now or utcnow()
    is_check = check_id in load_checks()
    is_fleet_rule = check_id in load_fleet_rules()
    if not (is_check or is_fleet_rule):
        raise InvalidWaiver(f"unknown check or fleet rule {check_id!r}")
    if host_id is not None:
        if is_fleet_rule and not is_check:
            raise InvalidWaiver(
                f"{check_id} is an agency-wide fleet rule: waive it without host_id"
            )
        host = session.get(Host, host_id)
        if host is None or host.agency_id != agency.id:
            raise InvalidWaiver(f"host {host_id} does not belong to agency {agency.code}")
    if not justification.strip():
        raise InvalidWaiver("justification must not be empty")
    if not author.strip():
        raise InvalidWaiver("author must not be empty")
    if expires_at <= now:
        raise InvalidWaiver(f"expires_at {expires_at.isoformat()} must be in the future")
    if expires_at > now + timedelta(days=max_days):
        raise InvalidWaiver(
            f"expires_at {expires_at.isoformat()} is more than {max_days} days ahead "
            "(POSTURE_MAX_WAIVER_DAYS); renew the waiver when it expires"
        )
    row = WaiverRecord(
        agency_id=agency.id,
        host_id=host_id,
        check_id=check_id,
        justification=justification.strip(),
        author=author.strip(),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def list_waivers(
    session: Session,
    agency_id: int,
    active_only: bool = False,
    now: datetime | None = None,
) -> Sequence[WaiverRecord]:
    """An agency's waivers, newest first; ``active_only``: neither revoked nor expired."""
    query = select(WaiverRecord).where(WaiverRecord.agency_id == agency_id)
    if active_only:
        now = now or utcnow()
        query = query.where(
            col(WaiverRecord.revoked_at).is_(None),
            WaiverRecord.created_at <= now,
            WaiverRecord.expires_at > now,
        )
    query = query.order_by(col(WaiverRecord.created_at).desc(), col(WaiverRecord.id).desc())
    return session.exec(query).all()


def to_waiver(row: WaiverRecord) -> Waiver:
    """The engine's view of a stored waiver."""
    return Waiver(
        id=row.id,
        check_id=row.check_id,
        host_id=row.host_id,
        justification=row.justification,
        author=row.author,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def active_waivers(
    session: Session, agency_id: int, now: datetime, host_id: int | None = None
) -> list[Waiver]:
    """Waivers in force at ``now``; with ``host_id``, only those that can cover that host."""
    rows = list_waivers(session, agency_id, active_only=True, now=now)
    if host_id is not None:
        rows = [r for r in rows if r.host_id in (None, host_id)]
    return [to_waiver(r) for r in rows]


def waive_host_findings(
    session: Session,
    host: Host,
    findings: Iterable[Finding],
    now: datetime | None = None,
    waivers: Iterable[Waiver] | None = None,
) -> list[Finding]:
    """The host's findings with its active waivers applied (``waived`` + waiver note)."""
    now = now or utcnow()
    if waivers is None:
        waivers = active_waivers(session, host.agency_id, now, host.id)
    return apply_waivers(findings, waivers, now, host.id)


def revoke_waiver(session: Session, waiver_id: int, *, now: datetime | None = None) -> WaiverRecord:
    """Revoke a waiver (idempotent); the row is kept for the record."""
    return revoke_row(session, WaiverRecord, waiver_id, "waiver", now)
