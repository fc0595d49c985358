"""The province-wide compliance view: every agency's verdict per article, fast.

``GET /api/v1/province/compliance`` must answer in milliseconds for 10,000
hosts in 100 agencies, while ``compliance.agency_articles`` reads every host's
findings and the agency's fleet facts.  So each agency's result is
materialized in ``AgencyComplianceSummary`` and the view only reads those
rows; a row is recomputed (with ``agency_articles`` itself, so the view is
always *exactly* what it returned at ``as_of``) when it may be out of date:

* **changes** (waivers, attestations, register of approved software, zones,
  flows, probe runs, discovery scans, hosts enrolled, removed or given another
  role, the agency's level or parameters): counted in the same transaction by a
  session listener (:func:`_count_changes`), whatever code path made them; the
  next read recomputes the agency at once.
* **reports**: ingest counts them in its transaction (:func:`count_ingests`);
  after the commit the ingesting worker recomputes the agency when its row is
  older than ``POSTURE_PROVINCE_REFRESH_SECONDS`` (default 300), so a busy
  agency costs one recomputation per interval, not one per report; a read
  recomputes an agency with reports pending once the interval has passed.
* **time**: a verdict can change with no write at all (a waiver or an
  attestation expires, a host falls silent); ``valid_until`` is the earliest
  such instant (at most ``POSTURE_PROVINCE_MAX_AGE_SECONDS``, default 900,
  for the time-based fleet rules), after which a read recomputes the row.
* **rules**: the row keeps the agency's level and the hash of the policies and
  parameters it was computed with; a different one at read time recomputes it.

Counters, not flags: a refresh subtracts the counts it saw when it claimed the
row, so a change committed while it computes stays counted.  Only one worker
refreshes a row at a time (``refreshing_until`` is claimed with a conditional
UPDATE; no lock is held while computing, so ingest never waits for it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from sqlalchemy import case, event, func, insert, inspect, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState
from sqlmodel import Session, col, select

from collector import attestations, compliance, fleet_data, waivers
from collector.models import (
    Agency,
    AgencyComplianceSummary,
    AllowedFlow,
    ApprovedSoftwareRecord,
    AttestationRecord,
    DiscoveredHost,
    DiscoveryScan,
    Host,
    ProbeRun,
    SoftwareRegisterDeclaration,
    WaiverRecord,
    Zone,
    utcnow,
)
from collector.settings import Settings
from policies.framework import DEFAULT_FRAMEWORK
from policies.model import ArticleVerdict, Verdict

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A claim older than this is considered abandoned (the worker died mid-refresh).
CLAIM_SECONDS = 300


def refresh_seconds() -> float:
    """After reports, an agency is recomputed at most once per this many seconds."""
    return float(os.environ.get("POSTURE_PROVINCE_REFRESH_SECONDS", "300"))


def max_age_seconds() -> float:
    """Longest a row is served without recomputation (time-based fleet rules)."""
    return float(os.environ.get("POSTURE_PROVINCE_MAX_AGE_SECONDS", "900"))


# --- response models ------------------------------------------------------------------


class ArticleSummary(BaseModel):
    article: int = Field(description="Điều of the framework (14, 16, 17, 18, 19, 20).")
    status: Verdict
    counts: dict[str, int] = Field(description="Requirements of the article by verdict.")


class AgencyCompliance(BaseModel):
    id: int
    code: str
    name: str
    level: int = Field(description="Mức độ (1–4) the verdicts were computed for.")
    hosts: int = Field(description="Enrolled hosts.")
    hosts_silent: int = Field(
        description="Hosts not seen for more than the parameter fleet.max_silence_hours "
        "(or never), at as_of."
    )
    as_of: datetime = Field(description="When these figures were computed.")
    articles: list[ArticleSummary]


class ProvinceCompliance(BaseModel):
    framework_id: str
    generated_at: datetime
    agencies: list[AgencyCompliance]


# --- counting changes ---------------------------------------------------------------

_TABLE = AgencyComplianceSummary.__table__  # type: ignore[attr-defined]

# Rows whose creation, change or deletion can change an agency's verdicts
# (other than the reports themselves, which ingest counts).
_WATCHED: tuple[type, ...] = (
    AttestationRecord,
    WaiverRecord,
    ApprovedSoftwareRecord,
    SoftwareRegisterDeclaration,
    DiscoveryScan,
    DiscoveredHost,
    Zone,
    AllowedFlow,
    ProbeRun,
)
# Host columns ingest updates (counted by ``count_ingests``); any other change counts.
INGEST_HOST_FIELDS = frozenset(
    {
        "last_seen_at",
        "latest_report_id",
        "findings_report_id",
        "findings_digest",
        "hostname",
        "fqdn",
        "os_family",
        "machine_id",
    }
)


def _host_changed(host: Host) -> bool:
    state = inspect(host)
    return any(
        attr.key not in INGEST_HOST_FIELDS and attr.history.has_changes() for attr in state.attrs
    )


def _changed_agencies(session: Session) -> set[int]:
    ids: set[int] = set()
    for obj in chain(session.new, session.deleted):
        if isinstance(obj, Agency):
            continue  # a new agency has no row yet; a deleted one takes its row along
        if isinstance(obj, (Host, *_WATCHED)):
            ids.add(obj.agency_id)  # type: ignore[attr-defined]
    for obj in session.dirty:
        if isinstance(obj, Agency):
            if obj.id is not None and session.is_modified(obj):
                ids.add(obj.id)
        elif isinstance(obj, Host):
            if _host_changed(obj):
                ids.add(obj.agency_id)
                for previous in inspect(obj).attrs.agency_id.history.deleted or ():
                    ids.add(previous)
        elif isinstance(obj, _WATCHED) and session.is_modified(obj):
            ids.add(obj.agency_id)  # type: ignore[attr-defined]
    return {i for i in ids if i is not None}


def _mark(connection: Any, agency_ids: Iterable[int] | None) -> None:
    statement = update(_TABLE).values(changes=_TABLE.c.changes + 1)
    if agency_ids is not None:
        statement = statement.where(_TABLE.c.agency_id.in_(sorted(agency_ids)))
    connection.execute(statement)


@event.listens_for(Session, "after_flush")
def _count_changes(session: Session, _context: Any) -> None:
    """Count the verdict-changing writes of this flush, in its transaction."""
    ids = _changed_agencies(session)
    if ids:
        _mark(session.connection(), ids)


@event.listens_for(Session, "do_orm_execute")
def _count_bulk_changes(state: ORMExecuteState) -> None:
    """Bulk UPDATE/DELETE statements on watched tables (e.g. replacing the zones)."""
    if not (state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, (Host, Agency, *_WATCHED)):
        _mark(state.session.connection(), None)  # which agency is unknown here: all


class SummaryState(NamedTuple):
    """Where an agency's row stood when ingest counted a report."""

    computed_at: datetime
    valid_until: datetime
    snapshot_at: datetime | None
    refreshing_until: datetime | None


def count_ingests(session: Session, counts: dict[int, int]) -> dict[int, SummaryState | None]:
    """Count stored reports per agency (``counts``: agency id → reports), inside the
    ingest transaction, in two statements whatever the number of agencies; per
    agency, its row's state (None: no row yet)."""
    ids = sorted(counts)
    if not ids:
        return {}
    if len(ids) > 1:
        # Rows locked in agency order first: concurrent batches never deadlock on them
        # (the UPDATE alone locks in whatever order its plan meets the rows).
        session.connection().execute(
            select(_TABLE.c.agency_id)
            .where(_TABLE.c.agency_id.in_(ids))
            .order_by(_TABLE.c.agency_id)
            .with_for_update()
        )
    added = (
        case(counts, value=_TABLE.c.agency_id, else_=0)
        if len(set(counts.values())) > 1
        else (counts[ids[0]])
    )
    rows = session.connection().execute(
        update(_TABLE)
        .where(_TABLE.c.agency_id.in_(ids))
        .values(ingests=_TABLE.c.ingests + added)
        .returning(
            _TABLE.c.agency_id,
            _TABLE.c.computed_at,
            _TABLE.c.valid_until,
            _TABLE.c.snapshot_at,
            _TABLE.c.refreshing_until,
        )
    ).all()
    states: dict[int, SummaryState | None] = dict.fromkeys(ids)
    for agency_id, *values in rows:
        computed_at, valid_until, snapshot_at, refreshing_until = (_aware(v) for v in values)
        assert computed_at is not None and valid_until is not None
        states[agency_id] = SummaryState(computed_at, valid_until, snapshot_at, refreshing_until)
    return states


def _aware(value: datetime | None) -> datetime | None:  # raw rows bypass UTCDateTime on SQLite
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- computing a row ----------------------------------------------------------------


def _silence_limit(agency: Agency, settings: Settings) -> timedelta:
    params = fleet_data.agency_parameters(agency, settings)
    return timedelta(hours=float(params["fleet"]["max_silence_hours"]))


def _policy_hash(agency: Agency, settings: Settings) -> str:
    from collector import history

    return history.policy_hash(fleet_data.agency_parameters(agency, settings))


def _next_instants(session: Session, agency: Agency, now: datetime) -> list[datetime]:
    """When waivers and attestations of the agency start or stop being in force."""
    assert agency.id is not None
    instants: list[datetime] = []
    for w in waivers.list_waivers(session, agency.id):
        if w.revoked_at is None:
            instants += [t for t in (w.created_at, w.expires_at) if t > now]
    for a in attestations.attestations_for(session, agency.id).values():
        if a.expires_at > now:
            instants.append(a.expires_at)
    return instants


def compute(
    session: Session, agency: Agency, *, now: datetime, settings: Settings
) -> tuple[list[ArticleVerdict], dict[str, Any]]:
    """``agency_articles`` at ``now`` and the row that materializes it (not stored)."""
    assert agency.id is not None
    articles = compliance.agency_articles(session, agency, now=now)
    limit = _silence_limit(agency, settings)
    seen = session.exec(select(Host.last_seen_at).where(Host.agency_id == agency.id)).all()
    silent = sum(1 for t in seen if t is None or now - t > limit)
    instants = [now + timedelta(seconds=max_age_seconds())]
    instants += [t + limit for t in seen if t is not None and t + limit >= now]
    instants += _next_instants(session, agency, now)
    values = {
        "computed_at": now,
        "valid_until": min(instants),
        "level": agency.level,
        "policy_hash": _policy_hash(agency, settings),
        "hosts": len(seen),
        "hosts_silent": silent,
        "articles": [
            {"article": a.article, "status": a.status, "counts": dict(a.counts)} for a in articles
        ],
    }
    return articles, values


def ensure_rows(session: Session, agency_ids: Sequence[int] | None = None) -> None:
    """Create the (out of date) rows of agencies that have none yet."""
    query = select(Agency.id).where(
        ~select(AgencyComplianceSummary.agency_id)
        .where(AgencyComplianceSummary.agency_id == Agency.id)
        .exists()
    )
    if agency_ids is not None:
        query = query.where(col(Agency.id).in_(list(agency_ids)))
    missing = [i for i in session.exec(query).all() if i is not None]
    if not missing:
        return
    try:
        session.execute(
            insert(_TABLE),
            [
                {
                    "agency_id": i,
                    "computed_at": EPOCH,
                    "valid_until": EPOCH,
                    "level": 0,
                    "policy_hash": "",
                    "hosts": 0,
                    "hosts_silent": 0,
                    "articles": [],
                    "ingests": 0,
                    "changes": 0,
                }
                for i in missing
            ],
        )
        session.commit()
    except IntegrityError:  # another worker created them first
        session.rollback()


def _claim(session: Session, agency_id: int, now: datetime) -> tuple[int, int] | None:
    """Take the right to refresh the row; returns the counts it will account for."""
    row = session.execute(
        update(_TABLE)
        .where(
            _TABLE.c.agency_id == agency_id,
            (_TABLE.c.refreshing_until.is_(None)) | (_TABLE.c.refreshing_until < now),
        )
        .values(refreshing_until=now + timedelta(seconds=CLAIM_SECONDS))
        .returning(_TABLE.c.ingests, _TABLE.c.changes)
    ).first()
    session.commit()
    return (int(row[0]), int(row[1])) if row is not None else None


def refresh_agency(
    session: Session,
    agency: Agency,
    *,
    now: datetime | None = None,
    settings: Settings | None = None,
    snapshot: bool = False,
) -> list[ArticleVerdict]:
    """Recompute ``agency``'s row (commits) and return ``agency_articles`` at ``now``.

    When another worker is refreshing the row, the articles are computed but
    the row is left to it.  ``snapshot`` records that a compliance snapshot of
    these figures is being taken (collector/history.py).
    """
    assert agency.id is not None
    settings = settings or Settings()
    ensure_rows(session, [agency.id])
    start = utcnow()
    seen = _claim(session, agency.id, start)
    now = now or start
    try:
        articles, values = compute(session, agency, now=now, settings=settings)
    except BaseException:
        session.rollback()
        if seen is not None:
            session.execute(
                update(_TABLE).where(_TABLE.c.agency_id == agency.id).values(refreshing_until=None)
            )
            session.commit()
        raise
    if seen is not None:
        ingests, changes = seen
        if snapshot:
            values["snapshot_at"] = now
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.agency_id == agency.id)
            .values(
                ingests=_TABLE.c.ingests - ingests,
                changes=_TABLE.c.changes - changes,
                refreshing_until=None,
                **values,
            )
        )
        session.commit()
    return articles


def _due(
    row: AgencyComplianceSummary,
    agency: Agency,
    now: datetime,
    policy_hash: str | None,
) -> bool:
    if row.changes > 0 or now >= row.valid_until or row.level != agency.level:
        return True
    if policy_hash is not None and row.policy_hash != policy_hash:
        return True
    return row.ingests > 0 and (now - row.computed_at).total_seconds() >= refresh_seconds()


def after_ingest(
    session: Session,
    agency_id: int,
    seen: SummaryState | None,
    *,
    settings: Settings,
    now: datetime | None = None,
) -> None:
    """After an ingest commit (best effort, never raises): take the compliance
    snapshot when due, else recompute the agency's row when due.

    ``seen`` is the row's state ``count_ingests`` returned (None: no row yet).
    """
    from collector import history

    now = now or utcnow()
    try:
        if seen is not None and seen.refreshing_until is not None and seen.refreshing_until > now:
            return  # another worker is at it
        interval = timedelta(minutes=settings.snapshot_min_interval_minutes)
        last_snapshot = seen.snapshot_at if seen is not None else None
        if last_snapshot is None:
            last_snapshot = history.latest_snapshot_at(session, agency_id)
        snapshot_due = last_snapshot is None or now - last_snapshot >= interval
        row_due = (
            seen is None
            or now >= seen.valid_until
            or (now - seen.computed_at).total_seconds() >= refresh_seconds()
        )
        if not (snapshot_due or row_due):
            return
        agency = session.get(Agency, agency_id)
        if agency is None:
            return
        if snapshot_due:
            history.take_snapshot(session, agency, trigger="ingest", now=now, settings=settings)
        else:
            refresh_agency(session, agency, now=now, settings=settings)
    except Exception:  # the report is stored; the summary must not fail the ingest
        log.exception("compliance summary of agency %s failed", agency_id)
        session.rollback()


# --- the view -------------------------------------------------------------------------


def province_compliance(
    session: Session, *, settings: Settings | None = None, now: datetime | None = None
) -> ProvinceCompliance:
    """Every agency with its materialized verdicts, recomputing rows that are out of date."""
    settings = settings or Settings()
    ensure_rows(session)
    now = now or utcnow()
    pairs = session.exec(
        select(Agency, AgencyComplianceSummary)
        .join(AgencyComplianceSummary, col(AgencyComplianceSummary.agency_id) == col(Agency.id))
        .order_by(col(Agency.code))
    ).all()
    # Read everything first: a refresh commits, which expires loaded objects.
    entries: list[tuple[int, AgencyCompliance, bool]] = []
    for agency, row in pairs:
        assert agency.id is not None
        busy = row.refreshing_until is not None and row.refreshing_until > now
        due = not busy and _due(row, agency, now, _policy_hash(agency, settings))
        entries.append((agency.id, _public(agency, row), due))
    result: list[AgencyCompliance] = []
    for agency_id, public, due in entries:
        if due:
            agency = session.get(Agency, agency_id)
            if agency is not None:
                refresh_agency(session, agency, settings=settings)
                row = session.get(AgencyComplianceSummary, agency_id, populate_existing=True)
                agency = session.get(Agency, agency_id)
                if row is not None and agency is not None:
                    public = _public(agency, row)
        result.append(public)
    return ProvinceCompliance(framework_id=DEFAULT_FRAMEWORK, generated_at=now, agencies=result)


def _public(agency: Agency, row: AgencyComplianceSummary) -> AgencyCompliance:
    assert agency.id is not None
    return AgencyCompliance(
        id=agency.id,
        code=agency.code,
        name=agency.name,
        level=row.level or agency.level,
        hosts=row.hosts,
        hosts_silent=row.hosts_silent,
        as_of=row.computed_at,
        articles=[ArticleSummary.model_validate(a) for a in row.articles],
    )


def pending_rows(session: Session) -> int:
    """Rows with changes not yet reflected (for tests and monitoring)."""
    return int(
        session.exec(
            select(func.count()).where(
                (col(AgencyComplianceSummary.changes) > 0)
                | (col(AgencyComplianceSummary.ingests) > 0)
            )
        ).one()
    )
