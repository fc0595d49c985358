"""Report ingest (agent-authenticated)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from collector.credentials import authenticate_agent, rotation_due, unauthorized
from collector.ingest import IngestError, read_report
from collector.ingest_queue import IngestQueue
from collector.schemas import ErrorDetail, ReportAccepted, ReportDuplicate
from collector.security import BearerDep, agent_token
from collector.settings import Settings
from collector.tokens import parse_agent_credential

router = APIRouter(tags=["agents"])

# Bodies up to this size (as sent, usually gzip) are parsed on the event loop.
_INLINE_PARSE_BYTES = 16 * 1024

# The body is read raw (it may be gzip-compressed), so its schema is declared here.
_REQUEST_BODY = {
    "required": True,
    "description": "A report (agent.report.Report), optionally with Content-Encoding: gzip.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}},
}


@router.post(
    "/reports",
    response_model=ReportAccepted,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={
        200: {"model": ReportDuplicate, "description": "Already stored; nothing changed"},
        400: {"model": ErrorDetail, "description": "Malformed JSON or gzip"},
        401: {"model": ErrorDetail, "description": "Missing, unknown or revoked credential"},
        409: {
            "model": ErrorDetail,
            "description": "Host mismatch, report_id of another host, or a software delta "
            "that does not apply (code 'resync_required': send the full inventory)",
        },
        413: {"model": ErrorDetail, "description": "Body too large (also after decompression)"},
        415: {"model": ErrorDetail, "description": "Unsupported Content-Encoding"},
        422: {"model": ErrorDetail, "description": "Unsupported schema_version or invalid report"},
    },
)
async def submit_report(request: Request, credentials: BearerDep) -> ReportAccepted | JSONResponse:
    """Ingest one report: validate, evaluate against the rules and store, idempotently.

    Reports arriving together are stored in one transaction, where their agents'
    credentials are authenticated (collector/ingest_queue.py); the answer comes once
    this report is committed."""
    settings: Settings = request.app.state.settings
    token = credentials.credentials if credentials is not None else ""
    if parse_agent_credential(token) is None:  # not an agent credential: 401 or 403
        await run_in_threadpool(agent_token, request, credentials)
    raw = await request.body()
    queue: IngestQueue = request.app.state.ingest_queue
    try:
        encoding = request.headers.get("content-encoding")
        try:
            if len(raw) <= _INLINE_PARSE_BYTES:  # a delta: quicker here than via a thread
                report = read_report(raw, encoding, settings.max_body_bytes)
            else:  # a full inventory: parsed in a thread, the event loop keeps serving
                report = await run_in_threadpool(
                    read_report, raw, encoding, settings.max_body_bytes
                )
        except IngestError:
            # An unknown or revoked credential: that answer comes before the body's.
            await run_in_threadpool(_authenticate, request.app.state.engine, token)
            raise
        result = await queue.submit(token, report)
    except IngestError as exc:
        if exc.code is not None:
            return JSONResponse({"detail": exc.detail, "code": exc.code}, exc.status_code)
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            raise unauthorized(exc.detail) from exc
        raise HTTPException(exc.status_code, detail=exc.detail) from exc
    assert result.agent is not None  # authenticated with its batch
    rotate = rotation_due(result.agent, settings)
    if result.status == "duplicate":
        duplicate = ReportDuplicate(
            report_id=result.report_id, host_id=result.host_id, rotate_credential=rotate
        )
        body = duplicate.model_dump(mode="json", exclude=None if rotate else {"rotate_credential"})
        return JSONResponse(body, status_code=status.HTTP_200_OK)
    return ReportAccepted.model_validate(
        {
            "report_id": result.report_id,
            "host_id": result.host_id,
            "summary": result.summary,
            "rotate_credential": rotate,
        }
    )


def _authenticate(engine: Engine, token: str) -> None:
    with Session(engine) as session:
        authenticate_agent(session, token)
