"""Downloads of the periodic reports (PDF, XLSX, CSV) and of one incident's report.

``GET /agencies/{id}/report`` for whoever may read the agency, ``GET
/province/report`` for the province roles, ``GET /incidents/{id}/report.pdf``
for whoever may read the incident's agency.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool

from collector import incidents, reports
from collector.db import SessionDep, SettingsDep
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep
from collector.security import RequireProvinceReader, RequireUser, UserDep, authorize_read

router = APIRouter(tags=["reports"], dependencies=[RequireUser], responses=ADMIN_RESPONSES)

PeriodQuery = Annotated[
    str,
    Query(
        description="2026 (year), 2026-H1 / 2026-H2 (six months), 2026-Q4 (quarter) or "
        "2026-01-01..2026-06-30 (both days included)",
        examples=["2026-H1"],
    ),
]
FormatQuery = Annotated[Literal["pdf", "xlsx", "csv"], Query(description="pdf, xlsx or csv")]
LangQuery = Annotated[Literal["vi", "en"], Query(description="vi (default) or en")]
_FILES = {
    200: {
        "description": "The report as a file (Content-Disposition: attachment)",
        "content": {media: {} for media in reports.FORMATS.values()},
    },
    422: {"description": "Unknown period, format or language"},
}


def _period(value: str) -> reports.Period:
    try:
        return reports.parse_period(value)
    except reports.PeriodError as exc:
        raise HTTPException(422, detail=str(exc)) from exc


def _file(doc: reports.Document) -> Response:
    ascii_name = doc.filename.encode("ascii", "replace").decode()
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(doc.filename)}"
    return Response(
        content=doc.data,
        media_type=doc.media_type,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


@router.get("/agencies/{agency_id}/report", response_class=Response, responses=_FILES)
async def agency_report(
    agency: AgencyDep,
    session: SessionDep,
    settings: SettingsDep,
    period: PeriodQuery,
    format: FormatQuery = "pdf",
    lang: LangQuery = "vi",
) -> Response:
    """The agency's periodic security report: verdicts per article and requirement,
    gaps with machines and remediation, attestations, waivers, incidents and trends."""
    parsed = _period(period)
    doc = await run_in_threadpool(
        reports.render_agency, session, agency, parsed, format, lang, settings=settings
    )
    return _file(doc)


@router.get(
    "/province/report",
    response_class=Response,
    responses=_FILES,
    dependencies=[RequireProvinceReader],
)
async def province_report(
    session: SessionDep,
    settings: SettingsDep,
    period: PeriodQuery,
    format: FormatQuery = "pdf",
    lang: LangQuery = "vi",
) -> Response:
    """The province's report: agencies × articles, the most widespread gaps, agencies
    with silent machines, incidents, and each agency's summary."""
    parsed = _period(period)
    doc = await run_in_threadpool(
        reports.render_province, session, parsed, format, lang, settings=settings
    )
    return _file(doc)


@router.get(
    "/incidents/{incident_id}/report.pdf",
    response_class=Response,
    responses={
        200: {"description": "The incident report (PDF)", "content": {"application/pdf": {}}}
    },
)
async def incident_report(
    session: SessionDep,
    principal: UserDep,
    incident_id: Annotated[int, Path(description="Incident id")],
    lang: LangQuery = "vi",
) -> Response:
    """One incident as a document the agency sends to the Sở TT&TT, with signature blocks."""
    row = incidents.get_incident(session, incident_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"incident {incident_id} not found")
    authorize_read(principal, row.agency_id)
    doc = await run_in_threadpool(reports.render_incident, session, row, lang)
    return _file(doc)
