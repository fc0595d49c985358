"""Re-evaluation of stored facts with the current policies, without waiting for agents.

After a change of checks, framework, parameters or an agency's Mức độ, the
latest report of every host is evaluated again exactly as ingest does
(``ingest.evaluate_report`` on the full reconstructed software inventory),
its stored findings are replaced, and a compliance snapshot is recorded per
agency (trigger ``reevaluate``).  Older reports keep the findings they had.
"""

from __future__ import annotations

import logging
from collections import Counter

from pydantic import BaseModel, Field
from sqlmodel import Session, col, delete, select

from collector import crud, fleet_data, history
from collector.ingest_store import evaluate_report, findings_digest
from collector.models import Agency, StoredFinding
from collector.settings import Settings

log = logging.getLogger(__name__)


class ReevaluationStats(BaseModel):
    agencies: int = 0
    hosts: int = 0
    reports: int = Field(default=0, description="Latest reports evaluated again.")
    skipped: int = Field(default=0, description="Hosts without a usable stored report.")
    findings: int = Field(default=0, description="Findings stored.")
    changed: int = Field(default=0, description="Findings whose status changed.")
    snapshots: int = Field(default=0, description="Compliance snapshots recorded (rows).")
    by_status: dict[str, int] = Field(default_factory=dict)


def _reevaluate_agency(
    session: Session, agency: Agency, stats: ReevaluationStats, settings: Settings | None
) -> None:
    assert agency.id is not None
    params = fleet_data.agency_parameters(agency, settings)
    for host in crud.list_hosts(session, agency.id):
        stats.hosts += 1
        stored = crud.latest_report(session, host)
        report = fleet_data.rebuild_report(session, stored) if stored is not None else None
        if stored is None or report is None:
            stats.skipped += 1
            continue
        evaluation = evaluate_report(report, report.software, host, agency, params)
        before = {
            row.check_id: row.status
            for row in session.exec(
                select(StoredFinding).where(StoredFinding.report_id == host.findings_report_id)
            ).all()
        }
        # The new findings are the latest report's own rows; rows of an earlier report
        # that it evaluated the same as stay, as that report's record.
        session.exec(delete(StoredFinding).where(col(StoredFinding.report_id) == stored.report_id))
        host.findings_report_id = stored.report_id
        host.findings_digest = findings_digest(evaluation.findings)
        session.add(host)
        for finding in evaluation.findings:
            session.add(
                StoredFinding(
                    host_id=stored.host_id,
                    report_id=stored.report_id,
                    check_id=finding.check_id,
                    status=finding.status,
                    severity=finding.severity,
                    payload=finding.model_dump(mode="json"),
                )
            )
            stats.changed += before.get(finding.check_id) != finding.status
        stored.evaluated_role = evaluation.role
        stored.evaluated_level = evaluation.level
        session.add(stored)
        stats.reports += 1
        stats.findings += len(evaluation.findings)
        counts = Counter(f.status for f in evaluation.findings)
        for status, n in counts.items():
            stats.by_status[status] = stats.by_status.get(status, 0) + n
    session.commit()
    stats.snapshots += len(history.take_snapshot(session, agency, trigger="reevaluate"))
    stats.agencies += 1


def reevaluate(
    session: Session, agency_id: int | None = None, *, settings: Settings | None = None
) -> ReevaluationStats:
    """Re-evaluate the latest report of every host (of one agency, or of all)."""
    stats = ReevaluationStats()
    if agency_id is not None:
        agency = crud.get_agency(session, agency_id)
        if agency is None:
            raise crud.NotFound(f"agency {agency_id} not found")
        agencies = [agency]
    else:
        agencies = list(crud.list_agencies(session))
    for agency in agencies:
        try:
            _reevaluate_agency(session, agency, stats, settings)
        except Exception:
            session.rollback()
            raise
    return stats
