"""Bulk read queries of the dashboard: a few queries per page, never one per host."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import ColumnElement, and_, case, distinct, false, func, or_
from sqlmodel import Session, col, select

from collector import fleet_data, province, waivers
from collector.history import policy_hash, score
from collector.models import (
    Agency,
    AgencyComplianceSummary,
    ComplianceSnapshot,
    Host,
    HostPackage,
    StoredFinding,
)
from collector.roles import Principal
from collector.settings import Settings
from policies import engine
from policies.exceptions import Waiver
from policies.framework import load_framework
from policies.model import Text, Verdict, combine
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

    Three queries, whatever the size of the agency: the active waivers; every
    host with the number of its failed and unknown checks (after waivers,
    counted in SQL: enough to sort and page); the check statuses of the page's
    hosts only.  The per-host verdicts are derived from statuses only, as the
    province view does.
    """
    assert agency.id is not None
    active = [w for w in waivers.active_waivers(session, agency.id, now) if w.active(now)]
    limit = silence_limit(agency, settings)
    summaries = _host_summaries(session, agency.id, active, now, limit)
    summaries.sort(key=_sort_key(sort, now))
    start = (max(page, 1) - 1) * per_page
    chosen = summaries[start : start + per_page]
    statuses = _statuses(session, [r.id for r in chosen])
    hosts = {h.id: h for h in _hosts(session, [r.id for r in chosen])}
    rows = [
        _host_row(hosts[r.id], statuses.get(r.id, {}), agency.level, active, now, limit)
        for r in chosen
        if r.id in hosts
    ]
    return rows, len(summaries)


@dataclass
class _HostSummary:
    """What sorting needs of a host: the fields of ``_sort_key``."""

    id: int
    hostname: str
    last_seen_at: datetime | None
    silent: bool
    fails: range  # len() is what sorting reads
    unknowns: int


def _waived(active: Sequence[Waiver]) -> ColumnElement[bool]:
    """SQL: the finding is covered by one of the waivers (``Waiver.covers``)."""
    terms = [
        col(StoredFinding.check_id) == w.check_id
        if w.host_id is None
        else and_(
            col(StoredFinding.check_id) == w.check_id, col(StoredFinding.host_id) == w.host_id
        )
        for w in active
    ]
    return or_(*terms) if terms else false()


def _host_summaries(
    session: Session, agency_id: int, active: Sequence[Waiver], now: datetime, limit: timedelta
) -> list[_HostSummary]:
    """Every host of the agency with its failed and unknown checks counted (one query)."""
    waived = _waived(active)

    def counted(status: str) -> ColumnElement[int]:
        hit = (
            and_(col(StoredFinding.status) == status, ~waived)
            if active
            else (col(StoredFinding.status) == status)
        )
        return func.count(distinct(case((hit, col(StoredFinding.check_id)))))

    query = (
        select(
            col(Host.id),
            col(Host.hostname),
            col(Host.last_seen_at),
            counted("fail"),
            counted("unknown"),
        )
        .outerjoin(
            StoredFinding,
            and_(
                col(StoredFinding.report_id) == col(Host.findings_report_id),
                col(StoredFinding.host_id) == col(Host.id),
            ),
        )
        .where(Host.agency_id == agency_id)
        .group_by(col(Host.id), col(Host.hostname), col(Host.last_seen_at))
    )
    out = []
    for host_id, hostname, last_seen_at, fails, unknowns in session.exec(query).all():
        last_seen_at = _aware(last_seen_at)
        out.append(
            _HostSummary(
                id=host_id,
                hostname=hostname,
                last_seen_at=last_seen_at,
                silent=last_seen_at is None or now - last_seen_at > limit,
                fails=range(int(fails)),
                unknowns=int(unknowns),
            )
        )
    return out


def _aware(value: datetime | None) -> datetime | None:
    """Raw column reads bypass the UTC type decorator on SQLite."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def hostnames(session: Session, host_ids: Iterable[int]) -> dict[int, str]:
    """Hostname of each of these hosts (one query)."""
    ids = sorted(set(host_ids))
    if not ids:
        return {}
    rows = session.exec(select(Host.id, Host.hostname).where(col(Host.id).in_(ids))).all()
    return {i: name for i, name in rows if i is not None}


def _hosts(session: Session, host_ids: list[int]) -> Sequence[Host]:
    if not host_ids:
        return []
    return session.exec(select(Host).where(col(Host.id).in_(host_ids))).all()


# --- an agency's verdicts by article --------------------------------------------------


@dataclass(frozen=True)
class ArticleRow:
    """One article of the agency page: what the template reads of ``ArticleVerdict``."""

    article: int
    title: Text
    status: Verdict
    counts: dict[str, int]


def _summary_fresh(
    row: AgencyComplianceSummary, agency: Agency, now: datetime, settings: Settings
) -> bool:
    """The row equals ``compliance.agency_articles`` at ``now``.

    Stricter than the overview's rule (``province._due``): a row with reports
    counted since it was computed is not used, so the page's verdicts are those
    of the latest reports, like the host list under them.
    """
    computed_at, valid_until = _aware(row.computed_at), _aware(row.valid_until)
    if computed_at is None or valid_until is None or computed_at <= province.EPOCH:
        return False
    if row.changes > 0 or row.ingests > 0 or now >= valid_until or now < computed_at:
        return False
    if row.level != agency.level or not row.articles:
        return False
    return row.policy_hash == policy_hash(fleet_data.agency_parameters(agency, settings))


def agency_article_rows(
    session: Session, agency: Agency, settings: Settings, *, now: datetime
) -> list[ArticleRow]:
    """The agency's verdict per article: its materialized summary (collector/province.py)
    when that is up to date, else recomputed with ``province.refresh_agency``
    (``compliance.agency_articles``, which also brings the row up to date; commits)."""
    assert agency.id is not None
    row = session.exec(
        select(AgencyComplianceSummary)
        .where(AgencyComplianceSummary.agency_id == agency.id)
        .execution_options(populate_existing=True)
    ).first()
    if row is not None and _summary_fresh(row, agency, now, settings):
        titles = load_framework().articles
        return [
            ArticleRow(
                article=int(a["article"]),
                title=titles[int(a["article"])],
                status=a["status"],
                counts={k: int(v) for k, v in a["counts"].items()},
            )
            for a in sorted(row.articles, key=lambda a: int(a["article"]))
        ]
    articles = province.refresh_agency(session, agency, now=now, settings=settings)
    return [
        ArticleRow(article=a.article, title=a.title, status=a.status, counts=dict(a.counts))
        for a in articles
    ]


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
            .join(Host, col(Host.findings_report_id) == col(StoredFinding.report_id))
            .where(col(Host.id).in_(chunk), col(StoredFinding.host_id) == col(Host.id))
            .order_by(col(StoredFinding.id))
        ).all()
        for host_id, check_id, status in rows:
            out.setdefault(host_id, {})[check_id] = status  # type: ignore[assignment]
    return out
