"""The content of a periodic security report, gathered once and rendered as PDF, XLSX or CSV.

Verdicts (per article, per requirement, the gaps and the machines) are those
in force when the report is generated: the collector keeps only each machine's
latest findings.  What happened *during* the period comes from the records
with dates: the compliance history (score per article over time), the
incidents that occurred in the period, and the waivers and attestations in
force at some time in the period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from collector import attestations, compliance, crud, fleet_data, history, incidents, waivers
from collector.models import Agency, AttestationRecord, Host, IncidentRecord, WaiverRecord, utcnow
from collector.reports.period import Period
from collector.settings import Settings
from policies import engine
from policies.framework import Framework, Requirement, load_framework
from policies.model import ArticleVerdict, Finding, RequirementVerdict, Text, Verdict
from policies.registry import load_checks, load_fleet_rules

PROVINCE_CONTEXT = Text(
    vi="Sở Thông tin và Truyền thông tỉnh Bình Dương",
    en="Department of Information and Communications of Bình Dương province (Sở TT&TT)",
)
SEVERITY_LABELS: dict[str, Text] = {
    "critical": Text(vi="Nghiêm trọng", en="Critical"),
    "high": Text(vi="Cao", en="High"),
    "medium": Text(vi="Trung bình", en="Medium"),
    "low": Text(vi="Thấp", en="Low"),
}
WAIVER_STATES: dict[str, Text] = {
    "active": Text(vi="Đang hiệu lực", en="In force"),
    "pending": Text(vi="Chưa có hiệu lực", en="Not yet in force"),
    "expired": Text(vi="Đã hết hạn", en="Expired"),
    "revoked": Text(vi="Đã thu hồi", en="Revoked"),
}
ATTESTATION_STATES: dict[str, Text] = {
    "valid": Text(vi="Còn hiệu lực", en="Valid"),
    "expired": Text(vi="Đã hết hiệu lực", en="Expired"),
    "revoked": Text(vi="Đã thu hồi", en="Revoked"),
}
ROLE_LABELS: dict[str, Text] = {
    "server": Text(vi="Máy chủ", en="Server"),
    "workstation": Text(vi="Máy trạm", en="Workstation"),
    "unknown": Text(vi="Chưa rõ", en="Unknown"),
}
ALL_HOSTS = Text(vi="Mọi máy của đơn vị", en="Every machine of the agency")
AGENCY_WIDE = Text(vi="Toàn đơn vị", en="Agency-wide")
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_STATUS_ORDER = {"fail": 0, "unknown": 1}


@dataclass
class HostRow:
    id: int
    hostname: str
    fqdn: str | None
    role: str
    os_family: str | None
    last_seen_at: datetime | None
    silent: bool
    failed_checks: list[str] = field(default_factory=list)
    unknown_checks: list[str] = field(default_factory=list)


@dataclass
class Gap:
    """A failing (or undetermined) check, fleet rule or requirement, with what to do."""

    key: str  # check id, fleet rule id or requirement id
    kind: str  # check | fleet | requirement
    status: Verdict
    title: Text
    severity: str | None
    requirement_ids: list[str]
    articles: list[int]
    remediation: Text
    hosts: list[str] = field(default_factory=list)  # hostnames concerned (checks)
    evidence: list[Text] = field(default_factory=list)

    @property
    def sort_key(self) -> tuple:
        return (
            _STATUS_ORDER.get(self.status, 2),
            _SEVERITY_ORDER.get(self.severity or "", 4),
            -len(self.hosts),
            self.key,
        )


@dataclass
class AttestationRow:
    requirement_id: str
    requirement: Text
    statement: str
    attested_by: str
    attested_at: datetime
    expires_at: datetime
    state: str  # valid | expired | revoked


@dataclass
class WaiverRow:
    id: int
    check_id: str
    check_title: Text
    hostname: str | None  # None: every machine of the agency
    justification: str
    author: str
    created_at: datetime
    expires_at: datetime
    state: str  # active | pending | expired | revoked


@dataclass
class IncidentRow:
    id: int
    agency_code: str
    hostname: str | None
    record: IncidentRecord


@dataclass
class AgencyReport:
    agency_id: int
    code: str
    name: str
    level: int
    period: Period
    generated_at: datetime
    framework: Framework
    silence_hours: float
    hosts: list[HostRow]
    articles: list[ArticleVerdict]
    gaps: list[Gap]
    attestations: list[AttestationRow]
    waivers: list[WaiverRow]
    incidents: list[IncidentRow]
    history: history.ComplianceHistory

    @property
    def machines(self) -> int:
        return len(self.hosts)

    @property
    def silent(self) -> list[HostRow]:
        return [h for h in self.hosts if h.silent]

    def requirements(self) -> list[RequirementVerdict]:
        return [r for a in self.articles for r in a.requirements]


@dataclass
class ProvinceGap:
    """A check or requirement failing somewhere in the province."""

    gap: Gap
    agencies: list[str]  # agency codes
    machines: int


@dataclass
class ProvinceReport:
    period: Period
    generated_at: datetime
    framework: Framework
    agencies: list[AgencyReport]
    source: str  # "province" (collector.province) or "agency_articles"

    @property
    def machines(self) -> int:
        return sum(a.machines for a in self.agencies)

    @property
    def silent(self) -> int:
        return sum(len(a.silent) for a in self.agencies)

    @property
    def incidents(self) -> list[IncidentRow]:
        rows = [i for a in self.agencies for i in a.incidents]
        return sorted(rows, key=lambda i: i.record.occurred_at, reverse=True)

    def worst_gaps(self, limit: int | None = None) -> list[ProvinceGap]:
        """Gaps across the province: failures first, then by machines and agencies concerned."""
        merged: dict[tuple[str, str], ProvinceGap] = {}
        for agency in self.agencies:
            for gap in agency.gaps:
                entry = merged.get((gap.key, gap.status))
                if entry is None:
                    entry = merged[(gap.key, gap.status)] = ProvinceGap(gap, [], 0)
                entry.agencies.append(agency.code)
                entry.machines += len(gap.hosts)
        rows = sorted(
            merged.values(),
            key=lambda p: (
                _STATUS_ORDER.get(p.gap.status, 2),
                -len(p.agencies),
                -p.machines,
                _SEVERITY_ORDER.get(p.gap.severity or "", 4),
                p.gap.key,
            ),
        )
        return rows[:limit] if limit is not None else rows


# --- gathering -----------------------------------------------------------------------


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _attestation_remediation(req: Requirement) -> Text:
    if req.attestation_evidence is not None:
        return Text(
            vi="Cán bộ có thẩm quyền kiểm tra và xác nhận yêu cầu trên bộ công cụ, kèm bằng "
            f"chứng: {req.attestation_evidence.vi}",
            en="An authorized officer checks the requirement and attests it in the collector, "
            f"with evidence: {req.attestation_evidence.en}",
        )
    return Text(
        vi="Cán bộ có thẩm quyền kiểm tra và xác nhận yêu cầu trên bộ công cụ",
        en="An authorized officer checks the requirement and attests it in the collector",
    )


def _host_gaps(
    session: Session,
    agency: Agency,
    fw: Framework,
    now: datetime,
    silence: timedelta,
) -> tuple[list[HostRow], list[Gap], list[dict[str, Verdict]]]:
    """Machines, gaps found on machines, and each machine's check statuses with the
    waivers in force applied (as ``compliance.agency_articles`` reads them)."""
    assert agency.id is not None
    checks = load_checks()
    applicable = [r for r in fw.requirements if r.applies_to_level(agency.level) and r.checks]
    reqs_of: dict[str, list[Requirement]] = {}
    for req in applicable:
        if req.verification == "attestation":
            continue
        for check_id in req.checks:
            reqs_of.setdefault(check_id, []).append(req)
    active = [w for w in waivers.active_waivers(session, agency.id, now) if w.active(now)]
    hosts: list[HostRow] = []
    gaps: dict[tuple[str, str], Gap] = {}
    per_host: list[dict[str, Verdict]] = []
    for host_id, (host, statuses) in compliance.host_check_statuses(session, agency.id).items():
        seen = _aware(host.last_seen_at)
        row = HostRow(
            id=host_id,
            hostname=host.hostname,
            fqdn=host.fqdn,
            role=host.role,
            os_family=host.os_family,
            last_seen_at=seen,
            silent=seen is None or now - seen > silence,
        )
        hosts.append(row)
        waived = dict(statuses)
        per_host.append(waived)
        for check_id, status in statuses.items():
            if status not in ("fail", "unknown"):
                continue
            if any(w.covers(check_id, host_id) for w in active):
                waived[check_id] = "waived"  # listed with the waivers, not as a gap
                continue
            if check_id not in reqs_of:
                continue
            (row.failed_checks if status == "fail" else row.unknown_checks).append(check_id)
            gap = gaps.get((check_id, status))
            if gap is None:
                spec = checks.get(check_id)
                reqs = reqs_of[check_id]
                gap = gaps[(check_id, status)] = Gap(
                    key=check_id,
                    kind="check",
                    status=status,  # type: ignore[arg-type]
                    title=spec.title if spec else Text(vi=check_id, en=check_id),
                    severity=spec.severity if spec else None,
                    requirement_ids=[r.id for r in reqs],
                    articles=sorted({r.article for r in reqs}),
                    remediation=spec.remediation if spec else Text(vi="", en=""),
                )
            gap.hosts.append(host.hostname)
    return hosts, list(gaps.values()), per_host


def _requirement_gaps(
    session: Session,
    agency: Agency,
    fw: Framework,
    articles: list[ArticleVerdict],
    fleet: Mapping[str, Finding],
) -> list[Gap]:
    """Failing requirements that no host check explains: fleet rules and attestations."""
    by_id = {r.id: r for r in fw.requirements}
    wanted = [
        v
        for a in articles
        for v in a.requirements
        if v.status in ("fail", "unknown") and not by_id[v.requirement_id].checks
    ]
    if not wanted:
        return []
    fleet_specs = load_fleet_rules()
    out: list[Gap] = []
    for verdict in wanted:
        req = by_id[verdict.requirement_id]
        evidence = list(verdict.evidence)
        if verdict.reason is not None:
            evidence.append(verdict.reason)
        severity = None
        if req.verification == "attestation":
            remediation = _attestation_remediation(req)
        elif req.fleet_rules:
            texts = []
            for rule_id in req.fleet_rules:
                finding = fleet.get(rule_id)
                spec = fleet_specs.get(rule_id)
                status = getattr(finding, "status", "unknown")
                if spec is not None and status in ("fail", "unknown"):
                    texts.append(spec.remediation)
                    rank = _SEVERITY_ORDER.get(spec.severity, 4)
                    if severity is None or rank < _SEVERITY_ORDER.get(severity, 4):
                        severity = spec.severity
            if texts:
                remediation = Text(
                    vi=" ".join(t.vi for t in texts), en=" ".join(t.en for t in texts)
                )
            else:
                remediation = verdict.reason or Text(vi="", en="")
        else:
            remediation = verdict.reason or Text(vi="", en="")
        out.append(
            Gap(
                key=req.id,
                kind="fleet" if req.fleet_rules else "requirement",
                status=verdict.status,
                title=req.title,
                severity=severity,
                requirement_ids=[req.id],
                articles=[req.article],
                remediation=remediation,
                evidence=evidence,
            )
        )
    return out


def _attestation_rows(
    session: Session, agency_id: int, fw: Framework, period: Period, now: datetime
) -> list[AttestationRow]:
    titles = {r.id: r.title for r in fw.requirements}
    rows: list[AttestationRow] = []
    record: AttestationRecord
    for record in attestations.list_attestations(session, agency_id):
        attested, expires = _aware(record.attested_at), _aware(record.expires_at)
        assert attested is not None and expires is not None
        if attested >= period.until or expires < period.since:
            continue  # not in force at any time of the period
        state = (
            "revoked"
            if record.revoked_at is not None
            else ("expired" if expires <= now else "valid")
        )
        rows.append(
            AttestationRow(
                requirement_id=record.requirement_id,
                requirement=titles.get(
                    record.requirement_id, Text(vi=record.requirement_id, en=record.requirement_id)
                ),
                statement=record.statement,
                attested_by=record.attested_by,
                attested_at=attested,
                expires_at=expires,
                state=state,
            )
        )
    return sorted(rows, key=lambda r: (r.requirement_id, r.attested_at))


def _waiver_rows(
    session: Session, agency_id: int, hostnames: dict[int, str], period: Period, now: datetime
) -> list[WaiverRow]:
    checks = load_checks()
    fleet_specs = load_fleet_rules()
    rows: list[WaiverRow] = []
    record: WaiverRecord
    for record in waivers.list_waivers(session, agency_id):
        created, expires = _aware(record.created_at), _aware(record.expires_at)
        assert created is not None and expires is not None
        if created >= period.until or expires < period.since:
            continue
        spec = checks.get(record.check_id) or fleet_specs.get(record.check_id)
        assert record.id is not None
        rows.append(
            WaiverRow(
                id=record.id,
                check_id=record.check_id,
                check_title=spec.title if spec else Text(vi=record.check_id, en=record.check_id),
                hostname=hostnames.get(record.host_id) if record.host_id is not None else None,
                justification=record.justification,
                author=record.author,
                created_at=created,
                expires_at=expires,
                state=waivers.waiver_state(record, now),
            )
        )
    return rows


def agency_report(
    session: Session,
    agency: Agency,
    period: Period,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> AgencyReport:
    """Everything the report of one agency shows, read in a few queries."""
    assert agency.id is not None
    now = now or utcnow()
    fw = load_framework()
    params = fleet_data.agency_parameters(agency, settings)
    silence_hours = float(params["fleet"]["max_silence_hours"])
    hosts, gaps, per_host = _host_gaps(session, agency, fw, now, timedelta(hours=silence_hours))
    # ``compliance.agency_articles``, with the fleet findings computed once for both uses
    fleet = fleet_data.fleet_findings(session, agency, now, settings)
    articles = engine.summarize_agency_statuses(
        [engine.host_requirement_statuses(statuses, agency.level) for statuses in per_host],
        agency.level,
        fleet_findings=fleet,
        attestations=attestations.attestations_for(session, agency.id),
        now=now,
    )
    gaps += _requirement_gaps(session, agency, fw, articles, {f.check_id: f for f in fleet})
    gaps.sort(key=lambda g: g.sort_key)
    hostnames = {h.id: h.hostname for h in hosts}
    incident_rows = [
        IncidentRow(
            id=row.id or 0,
            agency_code=agency.code,
            hostname=hostnames.get(row.host_id) if row.host_id is not None else None,
            record=row,
        )
        for row in incidents.list_incidents(
            session, agency.id, since=period.since, until=period.until
        )
    ]
    return AgencyReport(
        agency_id=agency.id,
        code=agency.code,
        name=agency.name,
        level=agency.level,
        period=period,
        generated_at=now,
        framework=fw,
        silence_hours=silence_hours,
        hosts=hosts,
        articles=articles,
        gaps=gaps,
        attestations=_attestation_rows(session, agency.id, fw, period, now),
        waivers=_waiver_rows(session, agency.id, hostnames, period, now),
        incidents=incident_rows,
        history=history.compliance_history(
            session, agency.id, since=period.since, until=period.until
        ),
    )


def province_report(
    session: Session,
    period: Period,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> ProvinceReport:
    """The report of every agency of the province.

    The agencies (and their order) come from the province view
    (``collector.province.province_compliance``) when it is available.
    """
    now = now or utcnow()
    source = "agency_articles"
    try:
        from collector import province

        summary = province.province_compliance(session, settings=settings, now=now)
        agency_ids = [a.id for a in summary.agencies]
        source = "province"
    except ImportError:  # pragma: no cover - the province view is not installed
        agency_ids = [a.id for a in crud.list_agencies(session) if a.id is not None]
    reports = []
    for agency_id in agency_ids:
        agency = session.get(Agency, agency_id)
        if agency is not None:
            reports.append(agency_report(session, agency, period, settings=settings, now=now))
    reports.sort(key=lambda r: r.code)
    return ProvinceReport(
        period=period, generated_at=now, framework=load_framework(), agencies=reports, source=source
    )


def host_by_id(session: Session, host_id: int | None) -> Host | None:
    return session.get(Host, host_id) if host_id is not None else None
