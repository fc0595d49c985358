"""Storing reports: evaluate and store a batch of reports in one transaction.

A batch holds reports of different hosts (``store_batch`` splits a list into
such rounds, keeping each host's order).  Per round:

1. read: the hosts, locked (``SELECT … FOR UPDATE`` in id order, so batches of
   several collector processes never deadlock on them), their agencies, the
   report ids already stored, the software inventories and the collection
   time of each host's latest report: a handful of statements in all;
2. per report, in memory: duplicate and identity checks, the software plan
   (``collector/inventory.py``), the evaluation, notifications.  A report
   refused here (409 ``resync_required``, 409 identity, 422) gets its own
   error and is left out; the others go on;
3. write: the report rows, the inventories, the findings, the hosts' new state
   and the province counters, each as one multi-row statement; one commit.

A report is answered only once its transaction has committed.  When a batch
cannot be stored as a whole (a concurrent duplicate, package rows out of step
with their keys, a deadlock), it is rolled back and its reports are stored
one by one, each in its own transaction, which is exactly what
``ingest.store_report`` does for a single report.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from agent.report import Report, SoftwareSection
from collector import bulk, crud, inventory, notify, province
from collector.credentials import AgentContext, authenticate_agents
from collector.ingest_outcome import RESYNC_REQUIRED, IngestError, IngestResult, Outcome
from collector.models import (
    Agency,
    Host,
    StoredFinding,
    StoredReport,
    utcnow,
)
from collector.parameters import InvalidParameters, effective_parameters
from collector.settings import Settings
from policies import engine
from policies.model import VERDICTS, Finding, HostEvaluation
from policies.parameters import Parameters
from policies.registry import sections_read

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """One parsed report and the agent that sent it: already authenticated
    (``agent``), or by its credential (``token``, authenticated with the batch)."""

    agent: AgentContext | None
    report: Report
    token: str | None = None

    @property
    def host_id(self) -> int:
        assert self.agent is not None, "authenticated first (store_batch)"
        return self.agent.host_id


@dataclass
class _Accepted:
    submission: Submission
    host: Host
    agency: Agency
    plan: inventory.Plan | None
    evaluation: HostEvaluation


def evaluate_report(
    report: Report, software: SoftwareSection, host: Host, agency: Agency, params: Parameters
) -> HostEvaluation:
    """Evaluate a report as ingest does: on the host's full software inventory
    (``software``, reconstructed from deltas), with the role set at enrollment.
    Also used to re-evaluate stored reports (collector/reevaluate.py).  Only the
    findings are stored, so the per-requirement verdicts are not computed."""
    evaluated = report.model_copy(update={"software": software})
    role = host.role if host.role and host.role != "unknown" else None
    return engine.evaluate_host(evaluated, agency.level, role, params=params, requirements=False)


def findings_digest(findings: Sequence[Finding]) -> str:
    """Identifies a host's findings: reports with equal digests evaluated to the same
    findings, texts, evidence and data included (every field of ``Finding``)."""
    keys = [
        [
            f.check_id,
            f.status,
            f.severity,
            f.title.vi,
            f.title.en,
            f.evidence.vi,
            f.evidence.en,
            f.remediation.vi,
            f.remediation.en,
            f.requirement_ids,
            f.data,
            f.waiver.model_dump(mode="json") if f.waiver is not None else None,
        ]
        for f in findings
    ]
    try:
        encoded = orjson.dumps(keys)
    except (TypeError, orjson.JSONEncodeError):  # data orjson cannot encode: the slow way
        encoded = json.dumps([f.model_dump(mode="json") for f in findings]).encode()
    return hashlib.sha256(encoded).hexdigest()


def stored_body(report: Report) -> dict[str, Any]:
    """The report as stored: as received, except a full inventory's package list.

    The packages live once in the host's inventory (``HostPackage``, with the
    baseline and every change in ``SoftwareChange``); readers rebuild the
    software section from there (``fleet_data.rebuild_report``).  Keeping
    ~1,500 packages again in every full report's body would double the
    biggest write of ingest for nothing.  ``packages_stored`` keeps the count.
    """
    software = report.software
    if software.status != "ok" or software.mode != "full":
        return report.model_dump(mode="json")
    body = report.model_dump(mode="json", exclude={"software": {"packages"}})
    body["software"]["packages"] = []
    body["software"]["packages_stored"] = len(software.packages)
    return body


def store_batch(
    session: Session, items: list[Submission], *, settings: Settings | None = None
) -> list[Outcome]:
    """Store ``items``; one outcome per item, in order (never raises ``IngestError``)."""
    settings = settings or Settings()
    outcomes: list[Outcome | None] = [None] * len(items)
    items = _authenticate(session, items, outcomes)
    for indexes in _rounds(items, outcomes):
        if len(indexes) > 1:
            try:
                batch = _store(session, [items[i] for i in indexes], settings, repair=False)
                for i, outcome in zip(indexes, batch, strict=True):
                    outcomes[i] = outcome
                continue
            except (inventory.OutOfStep, IntegrityError, OperationalError) as exc:
                session.rollback()
                log.info("a batch of %d reports is stored one by one: %s", len(indexes), exc)
        for i in indexes:
            outcomes[i] = _store_one(session, items[i], settings)
    return [outcome for outcome in outcomes if outcome is not None]


def _authenticate(
    session: Session, items: list[Submission], outcomes: list[Outcome | None]
) -> list[Submission]:
    """Authenticate the items sent with a credential, all with one query (it opens
    the first round's transaction); a refused one gets its 401 in ``outcomes``."""
    tokens = [item.token for item in items if item.agent is None and item.token is not None]
    if not tokens:
        return items
    agents = authenticate_agents(session, tokens)
    out: list[Submission] = []
    for index, item in enumerate(items):
        if item.agent is None:
            agent = agents.get(item.token) if item.token is not None else None
            if not isinstance(agent, AgentContext):
                outcomes[index] = IngestError(401, agent or "unknown agent credential")
            item = replace(item, agent=agent if isinstance(agent, AgentContext) else None)
        out.append(item)
    return out


def _rounds(items: list[Submission], outcomes: list[Outcome | None]) -> list[list[int]]:
    """Indexes of ``items`` (those without an outcome yet) in rounds with distinct
    hosts and report ids; a host's reports stay in their order (each lands in a later
    round than the one before)."""
    rounds: list[tuple[set[int], set[Any], list[int]]] = []
    last_round: dict[int, int] = {}
    for index, item in enumerate(items):
        if outcomes[index] is not None:
            continue
        host_id, report_id = item.host_id, item.report.report_id
        start = last_round.get(host_id, -1) + 1
        for number in range(start, len(rounds) + 1):
            if number == len(rounds):
                rounds.append((set(), set(), []))
            hosts, report_ids, members = rounds[number]
            if host_id not in hosts and report_id not in report_ids:
                break
        hosts.add(host_id)
        report_ids.add(report_id)
        members.append(index)
        last_round[host_id] = number
    return [members for _, _, members in rounds]


def _store_one(session: Session, item: Submission, settings: Settings) -> Outcome:
    try:
        return _store(session, [item], settings, repair=True)[0]
    except inventory.InventoryConflict as exc:  # a delta on rows out of step (rolled back)
        return IngestError(409, str(exc), code=RESYNC_REQUIRED)
    except IntegrityError as exc:
        # Another request stored the same report_id between our check and commit.
        session.rollback()
        existing = _existing(session, item.report.report_id, item.host_id)
        if existing is not None:
            return existing
        return IngestError(409, f"report could not be stored: {exc.orig}")


def _existing(session: Session, report_id: Any, host_id: int) -> Outcome | None:
    stored = crud.get_report(session, report_id)
    if stored is None:
        return None
    return _duplicate(report_id, stored.host_id, host_id)


def _duplicate(report_id: Any, stored_by: int, host_id: int) -> Outcome:
    if stored_by != host_id:
        return IngestError(409, f"report_id {report_id} was already submitted by another host")
    return IngestResult(status="duplicate", report_id=report_id, host_id=host_id)


def _store(
    session: Session, items: list[Submission], settings: Settings, *, repair: bool
) -> list[Outcome]:
    """One transaction for ``items`` (distinct hosts and report ids)."""
    summaries: dict[int, province.SummaryState | None] = {}
    try:
        outcomes, accepted = _prepare(session, items, settings)
        if accepted:
            summaries = _write(session, accepted, repair=repair)
        else:
            session.flush()  # eviction records of duplicates
        session.commit()
    except BaseException:
        session.rollback()
        raise
    # Best effort, after the commit: never fails the ingest; the compliance snapshot
    # and the province view's row are recomputed at most once per interval.
    for agency_id, summary in summaries.items():
        province.after_ingest(session, agency_id, summary, settings=settings)
    return outcomes


def _prepare(
    session: Session, items: list[Submission], settings: Settings
) -> tuple[list[Outcome], list[_Accepted]]:
    """Read what the batch needs, then check and evaluate each report in memory."""
    agents = [item.agent for item in items if item.agent is not None]
    assert len(agents) == len(items), "authenticated first (store_batch)"
    host_ids = sorted({agent.host_id for agent in agents})
    # The host rows are locked for the whole transaction: concurrent reports of one
    # host, on any number of collector processes, are applied one after the other,
    # so a report id is stored once, the inventory is never applied from a stale
    # base and the latest report only moves forward.
    hosts = {
        host.id: host
        for host in session.exec(
            select(Host)
            .where(col(Host.id).in_(host_ids))
            .order_by(col(Host.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
    }
    agency_ids = sorted({agent.agency_id for agent in agents})
    agencies = {
        agency.id: agency
        for agency in session.exec(select(Agency).where(col(Agency.id).in_(agency_ids))).all()
    }
    stored = {
        report_id: host_id
        for report_id, host_id in session.connection().execute(
            select(StoredReport.report_id, StoredReport.host_id).where(
                col(StoredReport.report_id).in_([item.report.report_id for item in items])
            )
        )
    }
    states = inventory.load_states(
        session, [item.host_id for item in items if item.report.software.status == "ok"]
    )
    params: dict[int, Parameters | IngestError] = {}
    outcomes: list[Outcome] = []
    accepted: list[_Accepted] = []
    for item, agent in zip(items, agents, strict=True):
        host, agency = hosts.get(agent.host_id), agencies.get(agent.agency_id)
        if host is None or agency is None or host.id is None or agency.id is None:
            outcomes.append(IngestError(401, "unknown agent credential"))
            continue
        report = item.report
        if report.report_id in stored:
            # Nothing is applied twice; only an eviction record that grew since the
            # first delivery (the agent's acknowledgement got lost) is updated.
            outcome = _duplicate(report.report_id, stored[report.report_id], host.id)
            if isinstance(outcome, IngestResult):
                outcome.agent = agent
                crud.record_report_loss(session, host.id, report.report_id, report.delivery)
            outcomes.append(outcome)
            continue
        if agency.id not in params:
            try:
                params[agency.id] = effective_parameters(settings, agency)
            except InvalidParameters as exc:
                params[agency.id] = IngestError(500, f"collector misconfigured: {exc}")
        try:
            adopt = _check_identity(session, host, report)
            agency_params = params[agency.id]
            if isinstance(agency_params, IngestError):
                raise agency_params
            plan = inventory.plan(
                session,
                states.get(host.id),
                host_id=host.id,
                report_id=report.report_id,
                collected_at=report.collected_at,
                software=report.software,
            )
        except inventory.InventoryConflict as exc:
            outcomes.append(IngestError(409, str(exc), code=RESYNC_REQUIRED))
            continue
        except inventory.InvalidInventory as exc:
            outcomes.append(IngestError(422, str(exc)))
            continue
        except IngestError as exc:
            outcomes.append(exc)
            continue
        if adopt is not None:
            host.machine_id = adopt
        # Checks see the reconstructed full inventory (rebuilt only if a check reads
        # the software section); the body is stored as received.
        software = report.software
        if plan is not None and "software" in sections_read():
            software = inventory.section_loader(session, plan)()
        evaluation = evaluate_report(report, software, host, agency, agency_params)
        # New critical failures, compared with the host's previous report (still its
        # latest here); one attribute check when notifications are not configured.
        notify.queue_from_ingest(session, host, report, evaluation, settings)
        accepted.append(_Accepted(item, host, agency, plan, evaluation))
        outcomes.append(
            IngestResult(
                status="accepted",
                report_id=report.report_id,
                host_id=host.id,
                summary=_summary(evaluation),
                agent=agent,
            )
        )
    return outcomes, accepted


def _summary(evaluation: HostEvaluation) -> dict[str, int]:
    counts = Counter(f.status for f in evaluation.findings)
    return {verdict: counts.get(verdict, 0) for verdict in VERDICTS}


def _check_identity(session: Session, host: Host, report: Report) -> str | None:
    """Refuse a report of another machine; the machine id to adopt, if any."""
    reported = report.host.machine_id or None
    if reported is None:
        return None
    if host.machine_id is None:
        # Enrolled without a machine id: adopt the first one reported, unless
        # another host of the agency already has it.
        other = session.exec(
            select(Host).where(Host.agency_id == host.agency_id, Host.machine_id == reported)
        ).first()
        if other is not None and other.id != host.id:
            raise IngestError(
                409,
                f"report is for machine_id {reported!r}, which belongs to host {other.id} "
                f"({other.hostname}), not to the host of this credential ({host.id}); "
                "check which credential the agent uses",
            )
        return reported
    if reported != host.machine_id:
        raise IngestError(
            409,
            f"report is for machine_id {reported!r} but this agent credential belongs to "
            f"host {host.id} ({host.hostname}) with machine_id {host.machine_id!r}; "
            "a credential cannot be shared between machines: enroll the other machine",
        )
    return None


def _write(
    session: Session, accepted: list[_Accepted], *, repair: bool
) -> dict[int, province.SummaryState | None]:
    """The batch's rows, a few multi-row statements; returns the province counters' state."""
    now = utcnow()
    # The collection time of each host's current latest report (not its body).
    latest_ids = [a.host.latest_report_id for a in accepted if a.host.latest_report_id]
    latest_at = (
        {
            report_id: collected_at
            for report_id, collected_at in session.connection().execute(
                select(StoredReport.report_id, StoredReport.collected_at).where(
                    col(StoredReport.report_id).in_(latest_ids)
                )
            )
        }
        if latest_ids
        else {}
    )
    bulk.insert_rows(
        session,
        StoredReport,
        [
            {
                "report_id": a.submission.report.report_id,
                "host_id": a.host.id,
                "received_at": now,
                "collected_at": a.submission.report.collected_at,
                "schema_version": a.submission.report.schema_version,
                "agent_version": a.submission.report.agent_version,
                "evaluated_role": a.evaluation.role,
                "evaluated_level": a.evaluation.level,
                "body": stored_body(a.submission.report),
            }
            for a in accepted
        ],
    )
    inventory.write(session, [a.plan for a in accepted if a.plan is not None], repair=repair)
    findings: list[dict[str, Any]] = []
    per_agency: Counter[int] = Counter()
    host_states: list[dict[str, Any]] = []
    for a in accepted:
        report, host = a.submission.report, a.host
        crud.record_report_loss(session, host.id, report.report_id, report.delivery)  # type: ignore[arg-type]
        # The latest report only moves forward in collection time: a report delivered
        # late from the agent's spool does not hide a newer one.
        current_at = latest_at.get(host.latest_report_id) if host.latest_report_id else None
        latest = current_at is None or report.collected_at >= current_at
        # A new latest report that evaluates to the host's current findings, word for
        # word, stores no finding rows: the host keeps pointing at the rows it has.
        digest = findings_digest(a.evaluation.findings)
        unchanged = (
            latest and host.findings_report_id is not None and (digest == host.findings_digest)
        )
        if not unchanged:
            findings += [
                {
                    "host_id": host.id,
                    "report_id": report.report_id,
                    "check_id": finding.check_id,
                    "status": finding.status,
                    "severity": finding.severity,
                    "payload": finding.model_dump(mode="json"),
                }
                for finding in a.evaluation.findings
            ]
        state = {
            "id_": host.id,
            "last_seen_at": now,
            "latest_report_id": host.latest_report_id,
            "findings_report_id": host.findings_report_id,
            "findings_digest": host.findings_digest,
            "hostname": host.hostname,
            "fqdn": host.fqdn,
            "os_family": host.os_family,
        }
        if latest:
            state["latest_report_id"] = report.report_id
            if not unchanged:
                state.update(findings_report_id=report.report_id, findings_digest=digest)
            if report.host.hostname:
                state["hostname"] = report.host.hostname
            if report.host.fqdn is not None:
                state["fqdn"] = report.host.fqdn
            if report.host.os_family is not None:
                state["os_family"] = report.host.os_family
        host_states.append(state)
        per_agency[a.agency.id] += 1  # type: ignore[index]
    bulk.update_rows(session, _UPDATE_HOSTS, host_states)
    bulk.insert_rows(session, StoredFinding, findings)
    return province.count_ingests(session, dict(per_agency))


# The columns ingest moves forward (province.INGEST_HOST_FIELDS; the machine id, adopted
# once, goes through the ORM), for all hosts of a batch in one statement.  Not through
# the ORM: its listeners count other changes of a host as agency changes
# (collector/province.py); these columns are counted by ``count_ingests``.
_UPDATE_HOSTS = bulk.update_by_key(
    Host.__table__,  # type: ignore[attr-defined]
    "id",
    sorted(province.INGEST_HOST_FIELDS - {"machine_id"}),
)
