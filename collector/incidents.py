"""The incident register of an agency (Điều 20 khoản 5; Bắc Giang Điều 7 khoản 2).

Categories follow the four named in Bắc Giang's Quy định 445/2013 Điều 7 khoản 2;
the scope follows Bình Dương's Quy chế 02/2013 Điều 20 khoản 5 (a local incident
is handled by the IT officer and reported to leadership; a wide, serious one
is contained, reported and, when needed, escalated to the Sở TT&TT and the
national CERT).  This module is the one place that reads and writes the register.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from collector.crud import CrudError
from collector.models import Agency, Host, IncidentRecord, utcnow

CATEGORIES: dict[str, dict[str, str]] = {
    "server_operation": {
        "vi": "Sự cố trong quá trình vận hành máy chủ",
        "en": "Incident in server operation",
    },
    "wan_devices": {
        "vi": "Sự cố thiết bị kết nối mạng WAN",
        "en": "Incident of WAN connection devices",
    },
    "transmission_lines": {
        "vi": "Sự cố đường truyền",
        "en": "Incident of transmission lines",
    },
    "information_security": {
        "vi": "Sự cố gây mất an toàn, an ninh thông tin",
        "en": "Incident causing loss of information security",
    },
}
SCOPES: dict[str, dict[str, str]] = {
    "local": {"vi": "Cục bộ, không nghiêm trọng", "en": "Local, not serious"},
    "wide": {"vi": "Diện rộng, nghiêm trọng", "en": "Wide, serious"},
}
STATUSES: dict[str, dict[str, str]] = {
    "open": {"vi": "Mới ghi nhận", "en": "Open"},
    "handling": {"vi": "Đang xử lý", "en": "Being handled"},
    "resolved": {"vi": "Đã xử lý xong", "en": "Resolved"},
}
# Fields a caller may set; the others are kept by this module.
EDITABLE = (
    "host_id",
    "category",
    "scope",
    "status",
    "title",
    "description",
    "handling",
    "occurred_at",
    "detected_at",
    "reported_by",
    "leadership_informed_at",
    "escalated_at",
    "escalated_to",
    "resolved_at",
)


class InvalidIncident(CrudError):
    """An incident that cannot be recorded as given; the message says why."""


def _validate(session: Session, agency_id: int, values: dict[str, Any]) -> None:
    if "category" in values and values["category"] not in CATEGORIES:
        raise InvalidIncident(
            f"unknown category {values['category']!r}; one of: {', '.join(CATEGORIES)}"
        )
    if "scope" in values and values["scope"] not in SCOPES:
        raise InvalidIncident(f"unknown scope {values['scope']!r}; one of: {', '.join(SCOPES)}")
    if "status" in values and values["status"] not in STATUSES:
        raise InvalidIncident(f"unknown status {values['status']!r}; one of: {', '.join(STATUSES)}")
    host_id = values.get("host_id")
    if host_id is not None:
        host = session.get(Host, host_id)
        if host is None or host.agency_id != agency_id:
            raise InvalidIncident(f"host {host_id} is not a machine of agency {agency_id}")


def _check_order(row: IncidentRecord) -> None:
    if row.resolved_at is not None and row.resolved_at < row.occurred_at:
        raise InvalidIncident("resolved_at is before occurred_at")
    if row.status == "resolved" and row.resolved_at is None:
        row.resolved_at = utcnow()


def create_incident(session: Session, agency: Agency, **values: Any) -> IncidentRecord:
    """Record an incident (flushed, not committed). Requires category, title, occurred_at,
    reported_by; the rest is optional."""
    assert agency.id is not None
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise InvalidIncident(f"unknown fields: {', '.join(sorted(unknown))}")
    for required in ("category", "title", "occurred_at", "reported_by"):
        if not values.get(required):
            raise InvalidIncident(f"{required} is required")
    _validate(session, agency.id, values)
    now = utcnow()
    row = IncidentRecord(agency_id=agency.id, created_at=now, updated_at=now, **values)
    _check_order(row)
    session.add(row)
    session.flush()
    return row


def update_incident(session: Session, row: IncidentRecord, **values: Any) -> list[str]:
    """Change an incident (not committed); returns the names of the fields changed."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise InvalidIncident(f"unknown fields: {', '.join(sorted(unknown))}")
    _validate(session, row.agency_id, values)
    changed = [k for k, v in values.items() if getattr(row, k) != v]
    for key in changed:
        setattr(row, key, values[key])
    if changed:
        _check_order(row)
        row.updated_at = utcnow()
        session.add(row)
    return changed


def get_incident(session: Session, incident_id: int) -> IncidentRecord | None:
    return session.get(IncidentRecord, incident_id)


def list_incidents(
    session: Session,
    agency_id: int | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    category: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    scope: str | None = None,
    reportable_only: bool = False,
) -> Sequence[IncidentRecord]:
    """Incidents that occurred in ``[since, until)``, newest first (all agencies if None).

    ``reportable_only``: only those the Sở TT&TT is concerned with (wide scope or
    escalated)."""
    query = select(IncidentRecord)
    if scope is not None:
        query = query.where(IncidentRecord.scope == scope)
    if reportable_only:
        query = query.where(
            or_(IncidentRecord.scope == "wide", col(IncidentRecord.escalated_at).is_not(None))
        )
    if agency_id is not None:
        query = query.where(IncidentRecord.agency_id == agency_id)
    if since is not None:
        query = query.where(IncidentRecord.occurred_at >= since)
    if until is not None:
        query = query.where(IncidentRecord.occurred_at < until)
    if category is not None:
        query = query.where(IncidentRecord.category == category)
    if status is not None:
        query = query.where(IncidentRecord.status == status)
    query = query.order_by(col(IncidentRecord.occurred_at).desc(), col(IncidentRecord.id).desc())
    if limit is not None:
        query = query.limit(limit)
    return session.exec(query).all()


def label(table: dict[str, dict[str, str]], key: str, lang: str = "vi") -> str:
    """The Vietnamese (or English) label of a category, scope or status."""
    entry = table.get(key)
    return entry.get(lang, entry["vi"]) if entry else key
