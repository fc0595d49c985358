"""Compliance views rebuilt from stored findings (host and agency level).

Verdicts are recomputed from the stored findings at the agency's *current*
level, so changing an agency's Mức độ takes effect without new reports.  A
host that has never reported counts with no findings: every requirement that
applies to it is ``unknown``, never silently left out.
"""

from __future__ import annotations

from sqlmodel import Session

from collector import crud
from collector.models import Agency, Host
from policies import engine
from policies.model import ArticleVerdict, HostEvaluation, RequirementVerdict


def host_evaluation(session: Session, host: Host, agency: Agency) -> HostEvaluation:
    """The host's latest evaluation, rebuilt from stored findings."""
    report = crud.latest_report(session, host)
    role = report.evaluated_role if report is not None else host.role
    if role not in ("server", "workstation"):
        role = "unknown"
    findings = crud.latest_findings(session, host) if report is not None else []
    return HostEvaluation(
        role=role,  # type: ignore[arg-type]
        level=agency.level,
        findings=findings,
        requirements=engine.requirement_verdicts(findings, agency.level, role),
    )


def host_requirements(session: Session, host: Host, agency: Agency) -> list[RequirementVerdict]:
    return host_evaluation(session, host, agency).requirements


def agency_articles(session: Session, agency: Agency) -> list[ArticleVerdict]:
    """Compliance by article over every enrolled host of the agency."""
    assert agency.id is not None
    evaluations = [
        host_evaluation(session, host, agency) for host in crud.list_hosts(session, agency.id)
    ]
    return engine.summarize_agency(evaluations, agency.level)
