"""Detecting what to notify and queueing it durably (events + one delivery per destination).

Three kinds of events:

- ``new_failure``: a critical/high check that fails in a host's report where it
  did not fail in the host's previous report (or in its first report); queued
  inside the ingest transaction, so it exists exactly when the report does;
- ``silent``: a host whose ``last_seen_at`` is older than the agency's
  ``fleet.max_silence_hours``; queued by the periodic scan, once per silence
  (the dedupe key holds ``last_seen_at``: a host that comes back and falls
  silent again is notified again);
- ``incident``: a new wide-scope or escalated incident of the register.

Every event gets one ``NotificationDelivery`` per destination (the webhook, the
province recipients, the agency's own recipients), each sent and retried on
its own by ``collector.notify.sender``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from collector.models import (
    Agency,
    Host,
    IncidentRecord,
    NotificationDelivery,
    NotificationEvent,
    StoredFinding,
    StoredReport,
    utcnow,
)
from collector.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from agent.report import Report
    from policies.model import HostEvaluation

log = logging.getLogger(__name__)

# Severities of policies/checks/*.yaml that are worth waking somebody up for.
NOTIFY_SEVERITIES = frozenset({"critical", "high"})
WEBHOOK = "webhook"
EMAIL = "email"


def email_recipients(settings: Settings) -> list[str]:
    """The province-wide addresses (POSTURE_NOTIFY_EMAIL_TO, comma-separated)."""
    return [a.strip() for a in settings.notify_email_to.split(",") if a.strip()]


def email_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host) and (
        bool(email_recipients(settings)) or any(settings.notify_agency_emails.values())
    )


def is_configured(settings: Settings) -> bool:
    """Is any channel set up? When not, nothing is queued and no sender runs."""
    return bool(settings.notify_webhook_url) or email_configured(settings)


def destinations(settings: Settings, agency_code: str | None) -> list[tuple[str, str]]:
    """(channel, recipient) pairs that receive an event of the agency ``agency_code``."""
    out: list[tuple[str, str]] = []
    if settings.notify_webhook_url:
        out.append((WEBHOOK, settings.notify_webhook_url))
    if settings.smtp_host:
        addresses = email_recipients(settings)
        if agency_code is not None:
            addresses += settings.notify_agency_emails.get(agency_code, [])
        for address in dict.fromkeys(a.strip() for a in addresses if a.strip()):
            out.append((EMAIL, address))
    return out


def _agency_payload(agency: Agency | None) -> dict[str, Any]:
    if agency is None:
        return {"agency_code": None, "agency_name": None}
    return {"agency_code": agency.code, "agency_name": agency.name}


def _add_event(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    dedupe_key: str,
    agency: Agency | None,
    host_id: int | None,
    payload: dict[str, Any],
    now: datetime,
) -> NotificationEvent | None:
    """Add the event and its deliveries to the session (not committed)."""
    targets = destinations(settings, agency.code if agency else None)
    if not targets:
        return None
    event = NotificationEvent(
        kind=kind,
        dedupe_key=dedupe_key[:255],
        agency_id=agency.id if agency else None,
        host_id=host_id,
        payload={**_agency_payload(agency), **payload},
        created_at=now,
    )
    session.add(event)
    session.flush()
    assert event.id is not None
    due = now + timedelta(minutes=settings.notify_digest_minutes)
    for channel, recipient in targets:
        session.add(
            NotificationDelivery(
                event_id=event.id,
                channel=channel,
                recipient=recipient,
                next_attempt_at=due,
                created_at=now,
            )
        )
    return event


# --- at ingest --------------------------------------------------------------------


def queue_from_ingest(
    session: Session,
    host: Host,
    report: Report,
    evaluation: HostEvaluation,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> int:
    """Queue the host's new critical/high failures; call before the report is stored
    (``host.latest_report_id`` still names the previous report). Inside the ingest
    transaction; returns the number of events queued.

    Costs two attribute reads when no channel is configured, and one indexed query
    when the report has critical/high failures.
    """
    if settings is None or not is_configured(settings):
        return 0
    severe = [
        f for f in evaluation.findings if f.status == "fail" and f.severity in NOTIFY_SEVERITIES
    ]
    if not severe or host.id is None:
        return 0
    failing_before: set[str] = set()
    if host.latest_report_id is not None:
        previous_at = session.exec(
            select(StoredReport.collected_at).where(StoredReport.report_id == host.latest_report_id)
        ).first()
        if previous_at is not None and report.collected_at < previous_at:
            return 0  # a late report from the agent's spool: not the machine's current state
        failing_before = set(
            session.exec(
                select(StoredFinding.check_id).where(
                    StoredFinding.report_id == host.findings_report_id,
                    StoredFinding.status == "fail",
                )
            ).all()
        )
    new = [f for f in severe if f.check_id not in failing_before]
    if not new:
        return 0
    agency = session.get(Agency, host.agency_id)
    now = now or utcnow()
    hostname = report.host.hostname or host.hostname
    for finding in new:
        _add_event(
            session,
            settings,
            kind="new_failure",
            dedupe_key=f"fail:{report.report_id}:{finding.check_id}",
            agency=agency,
            host_id=host.id,
            payload={
                "host_id": host.id,
                "hostname": hostname,
                "check_id": finding.check_id,
                "severity": finding.severity,
                "title": finding.title.model_dump(),
                "remediation": finding.remediation.model_dump(),
                "collected_at": report.collected_at.isoformat(),
                "first_report": host.latest_report_id is None,
            },
            now=now,
        )
    return len(new)


# --- incidents --------------------------------------------------------------------


def incident_is_notifiable(row: IncidentRecord) -> bool:
    return row.scope == "wide" or row.escalated_at is not None


def queue_incident(
    session: Session, row: IncidentRecord, settings: Settings, *, now: datetime | None = None
) -> NotificationEvent | None:
    """Queue a wide-scope or escalated incident once (not committed)."""
    if not settings.notify_incidents or not is_configured(settings):
        return None
    if row.id is None or not incident_is_notifiable(row):
        return None
    key = f"incident:{row.id}"
    exists = session.exec(
        select(NotificationEvent.id).where(NotificationEvent.dedupe_key == key)
    ).first()
    if exists is not None:
        return None
    from collector import incidents

    hostname = None
    if row.host_id is not None:
        host = session.get(Host, row.host_id)
        hostname = host.hostname if host else None
    return _add_event(
        session,
        settings,
        kind="incident",
        dedupe_key=key,
        agency=session.get(Agency, row.agency_id),
        host_id=row.host_id,
        payload={
            "incident_id": row.id,
            "hostname": hostname,
            "title_text": row.title,
            "category": row.category,
            "category_label": incidents.CATEGORIES.get(row.category, {}),
            "scope": row.scope,
            "scope_label": incidents.SCOPES.get(row.scope, {}),
            "status": row.status,
            "status_label": incidents.STATUSES.get(row.status, {}),
            "occurred_at": row.occurred_at.isoformat(),
            "escalated_to": row.escalated_to,
            "reported_by": row.reported_by,
        },
        now=now or utcnow(),
    )


# --- silence ----------------------------------------------------------------------


def _silence_key(host_id: int, last_seen_at: datetime) -> str:
    return f"silent:{host_id}:{last_seen_at.isoformat()}"


def scan_silence(engine: Engine, settings: Settings, *, now: datetime | None = None) -> int:
    """Queue the hosts that went silent; safe to run from several processes at once.

    Reads in one short transaction, then inserts each new event in its own
    transaction (a concurrent scan's duplicate hits the unique dedupe key and is
    dropped). Returns the number of events queued by this call.
    """
    if not is_configured(settings):
        return 0
    from collector.fleet_data import agency_parameters

    now = now or utcnow()
    candidates: list[tuple[Agency, Host, float]] = []
    with Session(engine) as session:
        for agency in session.exec(select(Agency)).all():
            hours = float(agency_parameters(agency, settings)["fleet"]["max_silence_hours"])
            cutoff = now - timedelta(hours=hours)
            hosts = session.exec(
                select(Host).where(
                    Host.agency_id == agency.id,
                    col(Host.last_seen_at).is_not(None),
                    col(Host.last_seen_at) < cutoff,
                )
            ).all()
            candidates += [(agency, host, hours) for host in hosts]
        if not candidates:
            return 0
        keys = [_silence_key(h.id, h.last_seen_at) for _, h, _ in candidates]  # type: ignore[arg-type]
        known = _existing_keys(session, keys)
        session.expunge_all()
    queued = 0
    for (agency, host, hours), key in zip(candidates, keys, strict=True):
        if key in known:
            continue
        assert host.last_seen_at is not None
        with Session(engine) as session:
            try:
                _add_event(
                    session,
                    settings,
                    kind="silent",
                    dedupe_key=key,
                    agency=agency,
                    host_id=host.id,
                    payload={
                        "host_id": host.id,
                        "hostname": host.hostname,
                        "last_seen_at": host.last_seen_at.isoformat(),
                        "max_silence_hours": hours,
                    },
                    now=now,
                )
                session.commit()
                queued += 1
            except IntegrityError:
                session.rollback()  # another process queued it first
    return queued


def _existing_keys(session: Session, keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(
            session.exec(
                select(NotificationEvent.dedupe_key).where(
                    col(NotificationEvent.dedupe_key).in_(chunk)
                )
            ).all()
        )
    return found
