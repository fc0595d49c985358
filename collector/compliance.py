"""Compliance views rebuilt from stored findings (host and agency level).

Verdicts are recomputed from the stored findings at the agency's *current*
level, so changing an agency's Mức độ takes effect without new reports.  A
host that has never reported counts with no findings: every requirement that
applies to it is ``unknown``, never silently left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session

from collector import attestations, crud, fleet_data, waivers
from collector.models import Agency, Host, utcnow
from policies import engine
from policies.exceptions import Attestation, Waiver
from policies.model import ArticleVerdict, HostEvaluation, RequirementVerdict


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


def agency_articles(session: Session, agency: Agency) -> list[ArticleVerdict]:
    """Compliance by article over every enrolled host of the agency."""
    assert agency.id is not None
    now = utcnow()
    agency_waivers = waivers.active_waivers(session, agency.id, now)
    agency_attestations = attestations.attestations_for(session, agency.id)
    evaluations = [
        host_evaluation(
            session,
            host,
            agency,
            now=now,
            host_waivers=agency_waivers,
            agency_attestations=agency_attestations,
        )
        for host in crud.list_hosts(session, agency.id)
    ]
    return engine.summarize_agency(
        evaluations,
        agency.level,
        fleet_findings=fleet_data.fleet_findings(session, agency, now),
        attestations=agency_attestations,
        now=now,
    )
