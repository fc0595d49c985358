"""``posture-collector incident add|list|update``: the incident register from the shell.

Run by the collector's operator against the database directly; every change is
written to the audit log as ``cli:<os user>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from collector import audit, crud, incidents, notify
from collector.db import create_db_engine, init_db
from collector.models import Host, IncidentRecord, utcnow
from collector.roles import cli_principal
from collector.settings import Settings


def _session(settings: Settings) -> Session:
    engine = create_db_engine(settings)
    init_db(engine)
    return Session(engine)


def _when(value: str) -> datetime:
    """ISO 8601 date or date-time (UTC when no offset), or ``now``."""
    if value == "now":
        return utcnow()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date/time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _host_id(session: Session, agency_id: int, name: str | None) -> int | None:
    """A host given by id or by hostname, within the agency."""
    if name is None:
        return None
    if name.isdigit():
        return int(name)
    host = session.exec(
        select(Host).where(Host.agency_id == agency_id, Host.hostname == name)
    ).first()
    if host is None:
        raise incidents.InvalidIncident(f"no machine {name!r} in this agency")
    return host.id


def _values(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in (
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
    ):
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    return values


def _detail(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _row_dict(row: IncidentRecord) -> dict[str, Any]:
    data = row.model_dump(mode="json")
    data["category_label"] = incidents.CATEGORIES.get(row.category)
    data["scope_label"] = incidents.SCOPES.get(row.scope)
    data["status_label"] = incidents.STATUSES.get(row.status)
    return data


def _print(row: IncidentRecord, lang: str) -> None:
    print(
        f"{row.id}\t{row.occurred_at:%Y-%m-%d %H:%M}\t"
        f"{incidents.label(incidents.CATEGORIES, row.category, lang)}\t"
        f"{incidents.label(incidents.SCOPES, row.scope, lang)}\t"
        f"{incidents.label(incidents.STATUSES, row.status, lang)}\t{row.title}"
    )


def cmd_incident_add(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        try:
            agency = crud.get_agency_by_code(session, args.agency)
            if agency is None or agency.id is None:
                raise crud.NotFound(f"no agency with code {args.agency!r}")
            values = _values(args)
            host_id = _host_id(session, agency.id, args.host)
            if host_id is not None:
                values["host_id"] = host_id
            row = incidents.create_incident(session, agency, **values)
        except crud.CrudError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        audit.record(
            session,
            cli_principal(),
            "incident.create",
            agency_id=agency.id,
            target=f"incident:{row.id}",
            detail=_detail(values),
        )
        notify.queue_incident(session, row, settings)
        session.commit()
        print(f"recorded incident {row.id}")
    return 0


def cmd_incident_list(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        agency_id = None
        if args.agency:
            agency = crud.get_agency_by_code(session, args.agency)
            if agency is None:
                print(f"error: no agency with code {args.agency!r}", file=sys.stderr)
                return 1
            agency_id = agency.id
        rows = incidents.list_incidents(
            session,
            agency_id,
            since=args.since,
            until=args.until,
            category=args.category,
            status=args.status,
            reportable_only=args.reportable,
        )
        for row in rows:
            if args.json:
                print(json.dumps(_row_dict(row), ensure_ascii=False))
            else:
                _print(row, args.lang)
        if not rows and not args.json:
            print("không có sự cố nào / no incidents")
    return 0


def cmd_incident_update(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        row = incidents.get_incident(session, args.id)
        if row is None:
            print(f"error: incident {args.id} not found", file=sys.stderr)
            return 1
        try:
            values = _values(args)
            host_id = _host_id(session, row.agency_id, args.host)
            if host_id is not None:
                values["host_id"] = host_id
            changed = incidents.update_incident(session, row, **values)
        except crud.CrudError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if changed:
            audit.record(
                session,
                cli_principal(),
                "incident.update",
                agency_id=row.agency_id,
                target=f"incident:{row.id}",
                detail={"changed": _detail({k: values[k] for k in changed})},
            )
            notify.queue_incident(session, row, settings)
        session.commit()
        print(f"incident {row.id}: {', '.join(changed) or 'nothing changed'}")
    return 0


def _fields(p: argparse.ArgumentParser, *, adding: bool) -> None:
    p.add_argument("--category", required=adding, choices=list(incidents.CATEGORIES))
    p.add_argument("--scope", choices=list(incidents.SCOPES))
    p.add_argument("--status", choices=list(incidents.STATUSES))
    p.add_argument("--title", required=adding)
    p.add_argument("--description")
    p.add_argument("--handling", help="what was done to handle it")
    p.add_argument("--occurred-at", dest="occurred_at", type=_when, required=adding)
    p.add_argument("--detected-at", dest="detected_at", type=_when)
    p.add_argument("--reported-by", dest="reported_by", required=adding)
    p.add_argument("--leadership-informed-at", dest="leadership_informed_at", type=_when)
    p.add_argument(
        "--escalated-at", dest="escalated_at", type=_when, help="reported to the Sở TT&TT"
    )
    p.add_argument("--escalated-to", dest="escalated_to")
    p.add_argument("--resolved-at", dest="resolved_at", type=_when)
    p.add_argument("--host", help="machine concerned: host id or hostname")


def register(sub: Any) -> None:
    """Add the ``incident`` subcommand to the main parser."""
    parser = sub.add_parser(
        "incident", help="the incident register (Điều 20 khoản 5): add, list, update"
    )
    isub = parser.add_subparsers(dest="incident_command", required=True)

    add = isub.add_parser("add", help="record an incident; times are ISO 8601 or 'now'")
    add.add_argument("--agency", required=True, metavar="CODE")
    _fields(add, adding=True)
    add.set_defaults(func=cmd_incident_add)

    listing = isub.add_parser("list", help="list incidents, newest first")
    listing.add_argument("--agency", metavar="CODE")
    listing.add_argument("--since", type=_when)
    listing.add_argument("--until", type=_when)
    listing.add_argument("--category", choices=list(incidents.CATEGORIES))
    listing.add_argument("--status", choices=list(incidents.STATUSES))
    listing.add_argument(
        "--reportable", action="store_true", help="only wide-scope or escalated ones"
    )
    listing.add_argument("--lang", choices=("vi", "en"), default="vi")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_incident_list)

    update = isub.add_parser("update", help="change an incident (handling, status, escalation…)")
    update.add_argument("id", type=int)
    _fields(update, adding=False)
    update.set_defaults(func=cmd_incident_update)
