"""Bulk read queries of the dashboard: a few queries per page, never one per host."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import func
from sqlmodel import Session, col, select

from collector import compliance, fleet_data, waivers
from collector.history import score
from collector.models import Agency, ComplianceSnapshot, Host, HostPackage, StoredFinding
from collector.roles import Principal
from collector.settings import Settings
from policies import engine
from policies.exceptions import Waiver
from policies.framework import load_framework
from policies.model import Verdict, combine
from policies.registry import load_checks

PAGE_SIZE = 50
SORTS = ("worst", "name", "seen")


@cache
def article_numbers() -> tuple[int, ...]:
    return tuple(sorted(load_framework().articles))


@cache
def requirement_articles() -> dict[str, int]:
    return {r.id: r.article for r in load_framework().requirements}


def check_title(check_id: str) -> object:
    spec = load_checks().get(check_id)
    return spec.title if spec is not None else check_id


def check_severity(check_id: str) -> str:
    spec = load_checks().get(check_id)
    return spec.severity if spec is not None else "low"


def silence_limit(agency: Agency, settings: Settings) -> timedelta:
    params = fleet_data.agency_parameters(agency, settings)
    return timedelta(hours=float(params["fleet"]["max_silence_hours"]))


def _waive(
    statuses: Mapping[str, Verdict], host_id: int, active: list[Waiver]
) -> dict[str, Verdict]:
    out = dict(statuses)
    if active:
        for check_id, status in statuses.items():
            if status in ("fail", "unknown") and any(w.covers(check_id, host_id) for w in active):
                out[check_id] = "waived"
    return out


def article_verdicts(requirement_statuses: Mapping[str, Verdict]) -> dict[int, Verdict]:
    """A host's verdict per article: the worst of its requirements' there."""
    by_article: dict[int, list[Verdict]] = {}
    articles = requirement_articles()
    for req_id, status in requirement_statuses.items():
        by_article.setdefault(articles[req_id], []).append(status)
    return {n: combine(by_article.get(n, [])) for n in article_numbers()}


@dataclass
class HostRow:
    id: int
    hostname: str
    role: str
    os_family: str | None
    last_seen_at: datetime | None
    silent: bool
    reported: bool
    fails: list[str] = field(default_factory=list)  # failed check ids, most severe first
    unknowns: int = 0
    articles: dict[int, Verdict] = field(default_factory=dict)
    agency_id: int = 0
    agency_code: str = ""

    @property
    def worst(self) -> Verdict:
        return combine(list(self.articles.values()))


SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _host_row(
    host: Host,
    statuses: Mapping[str, Verdict],
    level: int,
    active: list[Waiver],
    now: datetime,
    limit: timedelta,
) -> HostRow:
    assert host.id is not None
    waived = _waive(statuses, host.id, active)
    fails = sorted(
        (c for c, s in waived.items() if s == "fail"),
        key=lambda c: (SEVERITY_RANK.get(check_severity(c), 9), c),
    )
    return HostRow(
        id=host.id,
        hostname=host.hostname,
        role=host.role,
        os_family=host.os_family,
        last_seen_at=host.last_seen_at,
        silent=host.last_seen_at is None or now - host.last_seen_at > limit,
        reported=host.latest_report_id is not None,
        fails=fails,
        unknowns=sum(1 for s in waived.values() if s == "unknown"),
        articles=article_verdicts(engine.host_requirement_statuses(waived, level)),
        agency_id=host.agency_id,
    )


def agency_host_rows(
    session: Session,
    agency: Agency,
    settings: Settings,
    *,
    now: datetime,
    sort: str = "worst",
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> tuple[list[HostRow], int]:
    """One page of the agency's machines with their gaps, and the number of machines.

    Two queries (hosts with their latest check statuses, active waivers); the
    per-host verdicts are derived from statuses only, as the province view does.
    """
    assert agency.id is not None
    active = [w for w in waivers.active_waivers(session, agency.id, now) if w.active(now)]
    limit = silence_limit(agency, settings)
    rows = [
        _host_row(host, statuses, agency.level, active, now, limit)
        for host, statuses in compliance.host_check_statuses(session, agency.id).values()
    ]
    rows.sort(key=_sort_key(sort, now))
    start = (max(page, 1) - 1) * per_page
    return rows[start : start + per_page], len(rows)


def _sort_key(sort: str, now: datetime):  # type: ignore[no-untyped-def]
    if sort == "name":
        return lambda r: (r.hostname.lower(), r.id)
    if sort == "seen":
        return lambda r: (r.last_seen_at or datetime.min.replace(tzinfo=now.tzinfo), r.id)
    return lambda r: (-len(r.fails), -r.unknowns, not r.silent, r.hostname.lower(), r.id)


# --- trends -------------------------------------------------------------------------


@dataclass
class Trend:
    overall: str = "none"  # up | down | same | none
    articles: dict[int, str] = field(default_factory=dict)


def _direction(latest: float | None, previous: float | None) -> str:
    if latest is None or previous is None:
        return "none"
    if latest > previous + 1e-9:
        return "up"
    if latest < previous - 1e-9:
        return "down"
    return "same"


def trends(session: Session, agency_ids: Sequence[int] | None = None) -> dict[int, Trend]:
    """Latest compliance snapshot against the previous one, per agency and article.

    One query: the two most recent rows of each (agency, article) by a window function.
    """
    ranked = select(
        ComplianceSnapshot.agency_id,
        ComplianceSnapshot.article,
        ComplianceSnapshot.counts,
        func.row_number()
        .over(
            partition_by=(col(ComplianceSnapshot.agency_id), col(ComplianceSnapshot.article)),
            order_by=(col(ComplianceSnapshot.taken_at).desc(), col(ComplianceSnapshot.id).desc()),
        )
        .label("rn"),
    )
    if agency_ids is not None:
        ranked = ranked.where(col(ComplianceSnapshot.agency_id).in_(list(agency_ids)))
    sub = ranked.subquery()
    rows = session.execute(
        select(sub.c.agency_id, sub.c.article, sub.c.counts, sub.c.rn).where(sub.c.rn <= 2)
    ).all()
    latest: dict[int, dict[int, dict[str, int]]] = {}
    previous: dict[int, dict[int, dict[str, int]]] = {}
    for agency_id, article, counts, rn in rows:
        target = latest if rn == 1 else previous
        target.setdefault(agency_id, {})[article] = {k: int(v) for k, v in (counts or {}).items()}
    out: dict[int, Trend] = {}
    for agency_id, arts in latest.items():
        prev = previous.get(agency_id, {})
        trend = Trend()
        for article, counts in arts.items():
            trend.articles[article] = _direction(
                score(counts), score(prev[article]) if article in prev else None
            )
        if prev:
            trend.overall = _direction(_total_score(arts.values()), _total_score(prev.values()))
        out[agency_id] = trend
    return out


def _total_score(counts: Iterable[dict[str, int]]) -> float | None:
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return score(total)


def score_series(
    session: Session, agency_id: int, limit: int = 200
) -> list[tuple[datetime, float]]:
    """The agency's overall score (share of applicable requirements passed) per snapshot."""
    rows = session.exec(
        select(ComplianceSnapshot.taken_at, ComplianceSnapshot.counts)
        .where(ComplianceSnapshot.agency_id == agency_id)
        .order_by(col(ComplianceSnapshot.taken_at).desc())
        .limit(limit * 8)
    ).all()
    by_time: dict[datetime, list[dict[str, int]]] = {}
    for taken_at, counts in rows:
        by_time.setdefault(taken_at, []).append({k: int(v) for k, v in (counts or {}).items()})
    series = []
    for taken_at in sorted(by_time)[-limit:]:
        value = _total_score(by_time[taken_at])
        if value is not None:
            series.append((taken_at, value))
    return series


# --- search -------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    verdict: str | None = None
    article: int | None = None
    role: str | None = None
    os: str | None = None
    software: str | None = None
    version: str | None = None

    @property
    def any(self) -> bool:
        return any(v not in (None, "") for v in vars(self).values())


def os_families(session: Session) -> list[str]:
    rows = session.exec(select(Host.os_family).distinct()).all()
    return sorted(r for r in rows if r)


def search_hosts(
    session: Session,
    principal: Principal,
    filters: Filters,
    settings: Settings,
    *,
    now: datetime,
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> tuple[list[HostRow], int]:
    """Machines the principal may read matching the filters, worst first.

    Role, OS and software are SQL conditions (the software name uses the index
    on ``hostpackage.name``); the verdict filter reads the matching hosts'
    latest check statuses in bulk.
    """
    query = select(Host, Agency).join(Agency, col(Agency.id) == col(Host.agency_id))
    if not principal.is_province:
        query = query.where(Host.agency_id == (principal.agency_id or -1))
    if filters.role:
        query = query.where(Host.role == filters.role)
    if filters.os:
        query = query.where(Host.os_family == filters.os)
    if filters.software:
        packages = select(HostPackage.host_id).where(HostPackage.name == filters.software)
        if filters.version:
            packages = packages.where(
                col(HostPackage.version).startswith(filters.version, autoescape=True)
            )
        query = query.where(col(Host.id).in_(packages))
    pairs = session.exec(query.order_by(col(Agency.code), col(Host.hostname), col(Host.id))).all()
    statuses = _statuses(session, [h.id for h, _ in pairs if h.id is not None])
    agency_waivers: dict[int, list[Waiver]] = {}
    limits: dict[int, timedelta] = {}
    rows: list[HostRow] = []
    for host, agency in pairs:
        assert host.id is not None and agency.id is not None
        if agency.id not in agency_waivers:
            agency_waivers[agency.id] = [
                w for w in waivers.active_waivers(session, agency.id, now) if w.active(now)
            ]
            limits[agency.id] = silence_limit(agency, settings)
        row = _host_row(
            host,
            statuses.get(host.id, {}),
            agency.level,
            agency_waivers[agency.id],
            now,
            limits[agency.id],
        )
        row.agency_code = agency.code
        if filters.verdict:
            if filters.article is not None:
                if row.articles.get(filters.article) != filters.verdict:
                    continue
            elif filters.verdict not in row.articles.values():
                continue
        rows.append(row)
    rows.sort(key=_sort_key("worst", now))
    start = (max(page, 1) - 1) * per_page
    return rows[start : start + per_page], len(rows)


def _statuses(session: Session, host_ids: list[int]) -> dict[int, dict[str, Verdict]]:
    out: dict[int, dict[str, Verdict]] = {}
    for i in range(0, len(host_ids), 500):
        chunk = host_ids[i : i + 500]
        rows = session.exec(
            select(StoredFinding.host_id, StoredFinding.check_id, StoredFinding.status)
            .join(Host, col(Host.latest_report_id) == col(StoredFinding.report_id))
            .where(col(Host.id).in_(chunk), col(StoredFinding.host_id) == col(Host.id))
            .order_by(col(StoredFinding.id))
        ).all()
        for host_id, check_id, status in rows:
            out.setdefault(host_id, {})[check_id] = status  # type: ignore[assignment]
    return out
