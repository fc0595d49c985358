"""Compliance views rebuilt from stored findings (host and agency level).

Verdicts are recomputed from the stored findings at the agency's *current*
level, so changing an agency's Mức độ takes effect without new reports.  A
host that has never reported counts with no findings: every requirement that
applies to it is ``unknown``, never silently left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session, col, select

from collector import attestations, crud, fleet_data, waivers
from collector.models import Agency, Host, StoredFinding, utcnow
from policies import engine
from policies.exceptions import Attestation, Waiver
from policies.model import ArticleVerdict, HostEvaluation, RequirementVerdict, Verdict


def host_evaluation(
    session: Session,
    host: Host,
    agency: Agency,
    *,
    now: datetime | None = None,
    host_waivers: list[Waiver] | None = None,
    agency_attestations: Mapping[str, Attestation] | None = None,
) -> HostEvaluation:
    """The host's latest evaluation, rebuilt from stored findings.

    Waivers and attestations in force at ``now`` (default: the current time)
    are applied here, at read time; they are loaded unless given.
    """
    assert agency.id is not None
    now = now or utcnow()
    report = crud.latest_report(session, host)
    role = report.evaluated_role if report is not None else host.role
    if role not in ("server", "workstation"):
        role = "unknown"
    findings = crud.latest_findings(session, host) if report is not None else []
    findings = waivers.waive_host_findings(session, host, findings, now, host_waivers)
    if agency_attestations is None:
        agency_attestations = attestations.attestations_for(session, agency.id)
    return HostEvaluation(
        role=role,  # type: ignore[arg-type]
        level=agency.level,
        findings=findings,
        requirements=engine.requirement_verdicts(
            findings, agency.level, role, attestations=agency_attestations, now=now
        ),
    )


def host_requirements(session: Session, host: Host, agency: Agency) -> list[RequirementVerdict]:
    return host_evaluation(session, host, agency).requirements


def host_check_statuses(
    session: Session, agency_id: int
) -> dict[int, tuple[Host, dict[str, Verdict]]]:
    """Every host of the agency with the status of each check of its latest report.

    One query over the ``status`` column (no finding payloads); hosts that never
    reported have no statuses.  Ordered like ``crud.list_hosts``.
    """
    hosts = crud.list_hosts(session, agency_id)
    out: dict[int, tuple[Host, dict[str, Verdict]]] = {}
    for host in hosts:
        assert host.id is not None
        out[host.id] = (host, {})
    rows = session.exec(
        select(StoredFinding.host_id, StoredFinding.check_id, StoredFinding.status)
        .join(Host, col(Host.findings_report_id) == col(StoredFinding.report_id))
        .where(Host.agency_id == agency_id, col(StoredFinding.host_id) == col(Host.id))
        .order_by(col(StoredFinding.id))
    ).all()
    for host_id, check_id, status in rows:
        entry = out.get(host_id)
        if entry is not None:
            # Like ``{f.check_id: f for f in findings}``: the last one of a check wins.
            entry[1][check_id] = status  # type: ignore[assignment]
    return out


def _waive(
    statuses: Mapping[str, Verdict], host_id: int, active: list[Waiver]
) -> Mapping[str, Verdict]:
    """``policies.exceptions.apply_waivers`` on statuses only."""
    if not active:
        return statuses
    out = dict(statuses)
    for check_id, status in statuses.items():
        if status in ("fail", "unknown") and any(w.covers(check_id, host_id) for w in active):
            out[check_id] = "waived"
    return out


def agency_articles(
    session: Session, agency: Agency, *, now: datetime | None = None
) -> list[ArticleVerdict]:
    """Compliance by article over every enrolled host of the agency, at ``now``.

    Equal to ``engine.summarize_agency`` over each host's :func:`host_evaluation`
    (tests/collector/test_collector_province.py checks it), computed from the
    stored check statuses in a few queries instead of several per host.
    """
    assert agency.id is not None
    now = now or utcnow()
    agency_waivers = waivers.active_waivers(session, agency.id, now)
    active = [w for w in agency_waivers if w.active(now)]
    agency_attestations = attestations.attestations_for(session, agency.id)
    per_host = [
        engine.host_requirement_statuses(_waive(statuses, host_id, active), agency.level)
        for host_id, (_host, statuses) in host_check_statuses(session, agency.id).items()
    ]
    return engine.summarize_agency_statuses(
        per_host,
        agency.level,
        fleet_findings=fleet_data.fleet_findings(session, agency, now),
        attestations=agency_attestations,
        now=now,
    )
