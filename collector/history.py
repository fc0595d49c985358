"""Compliance history: an agency's verdict per article over time.

A snapshot (one ``ComplianceSnapshot`` row per article) is taken after an
ingest — at most once per agency every ``POSTURE_SNAPSHOT_MIN_INTERVAL_MINUTES``,
so a fleet reporting hourly stays cheap — and after every re-evaluation.
Each row records the hash of the policies in force (framework, checks, fleet
rules and the agency's parameters), so a change of score can be told apart
from a change of rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from functools import cache
from importlib import resources

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from collector import fleet_data
from collector.models import Agency, ComplianceSnapshot, utcnow
from collector.settings import Settings
from policies.framework import DEFAULT_FRAMEWORK, load_framework
from policies.model import Text
from policies.parameters import Parameters

log = logging.getLogger(__name__)

TRIGGERS = ("ingest", "reevaluate", "manual")


@cache
def _policy_files_digest(framework: str) -> str:
    digest = hashlib.sha256()
    digest.update(resources.files("policies.frameworks").joinpath(f"{framework}.yaml").read_bytes())
    for package in ("policies.checks", "policies.fleet_rules"):
        for entry in sorted(resources.files(package).iterdir(), key=lambda p: p.name):
            if entry.name.endswith((".yaml", ".py")):
                digest.update(entry.name.encode())
                digest.update(entry.read_bytes())
    return digest.hexdigest()


def policy_hash(params: Parameters, framework: str = DEFAULT_FRAMEWORK) -> str:
    """Fingerprint of the rules an agency is judged by: policy files and parameters."""
    digest = hashlib.sha256(_policy_files_digest(framework).encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# --- taking snapshots ---------------------------------------------------------------


def take_snapshot(
    session: Session,
    agency: Agency,
    *,
    trigger: str = "manual",
    now: datetime | None = None,
    settings: Settings | None = None,
) -> list[ComplianceSnapshot]:
    """Record the agency's current verdict per article (commits).

    The same computation refreshes the agency's row of the province view.
    """
    from collector import province

    assert agency.id is not None
    now = now or utcnow()
    articles = province.refresh_agency(session, agency, now=now, settings=settings, snapshot=True)
    agency = session.get(Agency, agency.id) or agency
    assert agency.id is not None
    fingerprint = policy_hash(fleet_data.agency_parameters(agency, settings))
    rows = [
        ComplianceSnapshot(
            agency_id=agency.id,
            taken_at=now,
            article=a.article,
            status=a.status,
            counts=dict(a.counts),
            framework_id=DEFAULT_FRAMEWORK,
            framework_hash=fingerprint,
            trigger=trigger,
        )
        for a in articles
    ]
    session.add_all(rows)
    session.commit()
    return rows


def latest_snapshot_at(session: Session, agency_id: int) -> datetime | None:
    return session.exec(
        select(ComplianceSnapshot.taken_at)
        .where(ComplianceSnapshot.agency_id == agency_id)
        .order_by(col(ComplianceSnapshot.taken_at).desc())
        .limit(1)
    ).first()


def snapshot_after_ingest(
    session: Session,
    agency_id: int,
    *,
    min_interval_minutes: float,
    now: datetime | None = None,
) -> bool:
    """Best effort: snapshot unless one is more recent than the interval.  Never raises.

    Ingest uses ``province.after_ingest``, which also decides this (without a
    query per report); this stays for callers that only want the snapshot.
    """
    now = now or utcnow()
    try:
        latest = latest_snapshot_at(session, agency_id)
        if latest is not None and now - latest < timedelta(minutes=min_interval_minutes):
            return False
        agency = session.get(Agency, agency_id)
        if agency is None:
            return False
        take_snapshot(session, agency, trigger="ingest", now=now)
        return True
    except Exception:  # the report is already stored; history must not fail the ingest
        log.exception("compliance snapshot of agency %s failed", agency_id)
        session.rollback()
        return False


# --- reading the series -------------------------------------------------------------


class HistoryPoint(BaseModel):
    taken_at: datetime
    status: str
    counts: dict[str, int]
    score: float | None = Field(
        description="Share of applicable requirements that pass (0–1); null if none applies."
    )
    framework_hash: str
    trigger: str


class ArticleHistory(BaseModel):
    article: int
    title: Text
    points: list[HistoryPoint]


class ComplianceHistory(BaseModel):
    agency_id: int
    framework_id: str
    since: datetime | None = None
    until: datetime | None = None
    articles: list[ArticleHistory]


def score(counts: dict[str, int]) -> float | None:
    applicable = sum(counts.get(k, 0) for k in ("pass", "fail", "unknown", "waived"))
    return round(counts.get("pass", 0) / applicable, 4) if applicable else None


def compliance_history(
    session: Session,
    agency_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ComplianceHistory:
    """The agency's snapshots per article, oldest first (every article of the framework)."""
    query = select(ComplianceSnapshot).where(ComplianceSnapshot.agency_id == agency_id)
    if since is not None:
        query = query.where(ComplianceSnapshot.taken_at >= since)
    if until is not None:
        query = query.where(ComplianceSnapshot.taken_at <= until)
    rows = session.exec(
        query.order_by(col(ComplianceSnapshot.taken_at), col(ComplianceSnapshot.id))
    ).all()
    fw = load_framework()
    by_article: dict[int, list[HistoryPoint]] = {number: [] for number in sorted(fw.articles)}
    for row in rows:
        counts = {k: int(v) for k, v in (row.counts or {}).items()}
        by_article.setdefault(row.article, []).append(
            HistoryPoint(
                taken_at=row.taken_at,
                status=row.status,
                counts=counts,
                score=score(counts),
                framework_hash=row.framework_hash,
                trigger=row.trigger,
            )
        )
    unknown_title = Text(vi="Điều {n}", en="Article {n}")
    return ComplianceHistory(
        agency_id=agency_id,
        framework_id=fw.id,
        since=since,
        until=until,
        articles=[
            ArticleHistory(
                article=number,
                title=fw.articles.get(number)
                or Text(vi=unknown_title.vi.format(n=number), en=unknown_title.en.format(n=number)),
                points=points,
            )
            for number, points in sorted(by_article.items())
        ],
    )
