"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from agent.report import Report
from collector.db import create_db_engine, init_db
from collector.ingest_queue import IngestQueue
from collector.limits import BodySizeLimitMiddleware
from collector.routes import api_router, health
from collector.settings import Settings
from policies import engine as policy_engine

API_DESCRIPTION = """\
Central collector of the security posture scanner: enrolls agents, ingests
their fact reports and evaluates them against Quy chế 02/2013 (Bình Dương),
Điều 14 and 16–20.

Agents authenticate with their credential (`pa_…`), administrators with the
admin token (`POSTURE_ADMIN_TOKEN`).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = create_db_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        init_db(engine)
        from collector import notify  # the sender loop runs only when a channel is configured

        notifier = notify.start_background(engine, settings)
        policy_engine.preload()  # before the first report, and before the freeze below
        # What exists now (modules, rules, texts) lives as long as the process: keep it
        # out of the garbage collector's scans.  Each report allocates thousands of
        # short-lived objects, and every full collection would walk all of this again
        # (ingest costs ~30 % less CPU per report with the freeze).
        gc.collect()
        gc.freeze()
        # Collect the young generation every 50,000 allocations rather than 700: a batch
        # of reports allocates hundreds of thousands of short-lived objects, and the
        # default made the collector the largest single cost of ingest (py-spy).
        gc.set_threshold(50_000, 20, 100)
        try:
            yield
        finally:
            if notifier is not None:
                notifier.stop()
            engine.dispose()

    app = FastAPI(
        title="Posture collector",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.ingest_queue = IngestQueue(engine, settings)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        # evidence files of attestations have their own, larger limit
        overrides=[(r"/api/v1/attestations/\d+/evidence", settings.max_evidence_bytes + 64 * 1024)],
    )
    app.add_exception_handler(OverflowError, _number_out_of_range)
    app.add_exception_handler(DataError, _number_out_of_range)  # PostgreSQL's version
    app.include_router(health.router)
    app.include_router(api_router)
    from collector.web import install as install_dashboard  # the dashboard, under /ui

    install_dashboard(app)
    _document_report_schema(app)
    return app


async def _number_out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """An id or number the database cannot hold is bad input, not a crash."""
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return JSONResponse(
        status_code=422, content={"detail": f"a value in the request is out of range: {reason}"}
    )


def _document_report_schema(app: FastAPI) -> None:
    """Add the wire-contract ``Report`` schema, which the ingest route reads raw, to OpenAPI."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        report_schema = Report.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in report_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["Report"] = report_schema
        _document_error_details(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_error_details(schema: dict[str, Any]) -> None:
    """A 422 carries either FastAPI's list of validation errors or our own message.

    Routes refuse semantically invalid requests (unknown requirement, host of
    another agency…) with ``{"detail": "<message>"}``; FastAPI documents every
    422 as its validation-error list only.  Document both shapes.
    """
    components = schema.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in components:
        return
    components["HTTPValidationError"] = {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {
                "title": "Detail",
                "anyOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                    {"type": "string"},
                ],
            }
        },
    }
