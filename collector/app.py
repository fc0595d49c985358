"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from agent.report import Report
from collector.db import create_db_engine, init_db
from collector.limits import BodySizeLimitMiddleware
from collector.routes import api_router, health
from collector.settings import Settings

API_DESCRIPTION = """\
Central collector of the security posture scanner: enrolls agents, ingests
their fact reports and evaluates them against Quy chế 02/2013 (Bình Dương),
Điều 16–19.

Agents authenticate with their credential (`pa_…`), administrators with the
admin token (`POSTURE_ADMIN_TOKEN`).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = create_db_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        init_db(engine)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="Posture collector",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        # evidence files of attestations have their own, larger limit
        overrides=[
            (r"/api/v1/attestations/\d+/evidence", settings.max_evidence_bytes + 64 * 1024)
        ],
    )
    app.include_router(health.router)
    app.include_router(api_router)
    _document_report_schema(app)
    return app


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
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
