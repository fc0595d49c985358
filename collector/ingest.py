"""The report ingest pipeline.

raw bytes → decompress (gzip, capped) → JSON → schema_version → ``Report``
→ idempotency by ``report_id`` → host identity check → software inventory
(apply the full list or delta; 409 ``resync_required`` when a delta does not
apply) → evaluation of the reconstructed report → store (body as received,
findings, software history, reports the agent lost).

Everything that touches the database happens in one transaction: a failure at
any step leaves nothing behind.  Errors are raised as ``IngestError`` with the
HTTP status and message the API answers with.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from agent.report import SUPPORTED_MAJOR, Report, SoftwareSection, schema_major
from collector import crud, notify, province
from collector.credentials import AgentContext
from collector.models import Agency, Host
from collector.parameters import InvalidParameters, effective_parameters
from collector.settings import Settings
from policies import engine
from policies.model import VERDICTS, HostEvaluation
from policies.parameters import Parameters
from policies.registry import sections_read

_GZIP_WBITS = 16 + zlib.MAX_WBITS


RESYNC_REQUIRED = "resync_required"


class IngestError(Exception):
    """``code`` is a machine-readable reason the agent acts on (e.g. ``resync_required``)."""

    def __init__(self, status_code: int, detail: Any, code: str | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.code = code


def too_large(limit: int) -> IngestError:
    return IngestError(413, f"request body exceeds the limit of {limit} bytes")


# --- decoding ---------------------------------------------------------------


def decompress_gzip(data: bytes, max_bytes: int) -> bytes:
    """Inflate a gzip body, never producing more than ``max_bytes`` (gzip bombs → 413)."""
    out: list[bytes] = []
    total = 0
    remaining_input = data
    try:
        while True:  # one iteration per gzip member (concatenated members are valid gzip)
            inflater = zlib.decompressobj(_GZIP_WBITS)
            pending = remaining_input
            while True:
                chunk = inflater.decompress(pending, max_bytes + 1 - total)
                total += len(chunk)
                if total > max_bytes:
                    raise too_large(max_bytes)
                out.append(chunk)
                if inflater.eof:
                    break
                pending = inflater.unconsumed_tail
                if not pending and not chunk:
                    raise IngestError(400, "invalid gzip body: truncated stream")
            remaining_input = inflater.unused_data
            if not remaining_input.strip(b"\0"):
                break
    except zlib.error as exc:
        raise IngestError(400, f"invalid gzip body: {exc}") from exc
    return b"".join(out)


def decode_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return decompress_gzip(raw, max_bytes)
    raise IngestError(
        415, f"unsupported Content-Encoding {content_encoding!r}; send gzip or identity"
    )


def parse_report(data: bytes) -> Report:
    """JSON → schema version check → ``Report``."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(400, f"malformed JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise IngestError(422, "a report must be a JSON object")

    accepted = f"this collector accepts {SUPPORTED_MAJOR}.x"
    version = document.get("schema_version")
    if version is None:
        raise IngestError(422, f"missing schema_version; {accepted}")
    if not isinstance(version, str) or schema_major(version) != SUPPORTED_MAJOR:
        raise IngestError(422, f"unsupported schema_version {version!r}; {accepted}")

    try:
        return Report.model_validate(document)
    except ValidationError as exc:
        errors = json.loads(exc.json(include_url=False, include_input=False))
        raise IngestError(422, errors) from exc


# --- storing ----------------------------------------------------------------


@dataclass
class IngestResult:
    status: Literal["accepted", "duplicate"]
    report_id: uuid.UUID
    host_id: int
    summary: dict[str, int] = field(default_factory=dict)


def _check_identity(session: Session, host: Host, report: Report) -> None:
    reported = report.host.machine_id or None
    if reported is None:
        return
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
        host.machine_id = reported
        return
    if reported != host.machine_id:
        raise IngestError(
            409,
            f"report is for machine_id {reported!r} but this agent credential belongs to "
            f"host {host.id} ({host.hostname}) with machine_id {host.machine_id!r}; "
            "a credential cannot be shared between machines: enroll the other machine",
        )


def _existing(session: Session, report_id: uuid.UUID, host_id: int) -> IngestResult | None:
    stored = crud.get_report(session, report_id)
    if stored is None:
        return None
    if stored.host_id != host_id:
        raise IngestError(409, f"report_id {report_id} was already submitted by another host")
    return IngestResult(status="duplicate", report_id=report_id, host_id=host_id)


def evaluate_report(
    report: Report, software: SoftwareSection, host: Host, agency: Agency, params: Parameters
) -> HostEvaluation:
    """Evaluate a report as ingest does: on the host's full software inventory
    (``software``, reconstructed from deltas), with the role set at enrollment.
    Also used to re-evaluate stored reports (collector/reevaluate.py)."""
    evaluated = report.model_copy(update={"software": software})
    role = host.role if host.role and host.role != "unknown" else None
    return engine.evaluate_host(evaluated, agency.level, role, params=params)


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


def store_report(
    session: Session, agent: AgentContext, report: Report, *, settings: Settings | None = None
) -> IngestResult:
    """Evaluate and store ``report`` for the authenticated agent; one transaction.

    The checks use the agency's thresholds (defaults ← province file of
    ``settings`` ← agency overrides); without ``settings`` they come from the
    environment.
    """
    try:
        # The host row is locked (SELECT … FOR UPDATE; SQLite serialises writers
        # anyway) for the whole ingest: concurrent reports of one host, on any
        # number of collector processes, are applied one after the other, so a
        # report id is stored once, the inventory is never applied from a stale
        # base and the latest report only moves forward.
        host = session.get(Host, agent.host_id, with_for_update=True, populate_existing=True)
        agency = session.get(Agency, agent.agency_id)
        if host is None or agency is None or host.id is None:  # pragma: no cover
            raise IngestError(401, "unknown agent credential")

        duplicate = _existing(session, report.report_id, host.id)
        if duplicate is not None:
            # Nothing is applied twice; only an eviction record that grew since the
            # first delivery (the agent's acknowledgement got lost) is updated.
            crud.record_report_loss(session, host.id, report.report_id, report.delivery)
            session.commit()
            return duplicate
        _check_identity(session, host, report)

        try:
            software = crud.apply_software(
                session,
                host,
                report_id=report.report_id,
                collected_at=report.collected_at,
                software=report.software,
            )
        except crud.InventoryConflict as exc:
            raise IngestError(409, str(exc), code=RESYNC_REQUIRED) from exc
        except crud.InvalidInventory as exc:
            raise IngestError(422, str(exc)) from exc

        try:
            params = effective_parameters(settings or Settings(), agency)
        except InvalidParameters as exc:
            raise IngestError(500, f"collector misconfigured: {exc}") from exc
        # Checks see the reconstructed full inventory (rebuilt only if a check reads
        # the software section); the body is stored as received.
        section = software.section if "software" in sections_read() else report.software
        evaluation = evaluate_report(report, section, host, agency, params)
        # New critical failures, compared with the host's previous report (still its latest
        # here); one attribute check when notifications are not configured.
        notify.queue_from_ingest(session, host, report, evaluation, settings)

        crud.add_report(
            session,
            host,
            report_id=report.report_id,
            collected_at=report.collected_at,
            schema_version=report.schema_version,
            agent_version=report.agent_version,
            body=stored_body(report),
            role=evaluation.role,
            level=evaluation.level,
            findings=evaluation.findings,
            hostname=report.host.hostname,
            fqdn=report.host.fqdn,
            os_family=report.host.os_family,
        )
        for change in software.changes:
            session.add(change)
        crud.record_report_loss(session, host.id, report.report_id, report.delivery)
        summary = province.count_ingest(session, agency.id)
        session.commit()
    except IntegrityError as exc:
        # Another request stored the same report_id between our check and commit.
        session.rollback()
        duplicate = _existing(session, report.report_id, agent.host_id)
        if duplicate is not None:
            return duplicate
        raise IngestError(409, f"report could not be stored: {exc.orig}") from exc
    except BaseException:
        session.rollback()
        raise

    # Best effort, after the commit: never fails the ingest; the compliance snapshot
    # and the province view's row are recomputed at most once per interval.
    province.after_ingest(session, agent.agency_id, summary, settings=settings or Settings())
    counts = Counter(f.status for f in evaluation.findings)
    return IngestResult(
        status="accepted",
        report_id=report.report_id,
        host_id=host.id,
        summary={verdict: counts.get(verdict, 0) for verdict in VERDICTS},
    )


def ingest(
    session: Session,
    agent: AgentContext,
    raw: bytes,
    *,
    content_encoding: str | None,
    max_bytes: int,
    settings: Settings | None = None,
) -> IngestResult:
    """The whole pipeline, from the request body to the stored evaluation."""
    report = parse_report(decode_body(raw, content_encoding, max_bytes))
    return store_report(session, agent, report, settings=settings)
