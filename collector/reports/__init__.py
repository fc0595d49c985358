"""Periodic security reports of an agency and of the province (PDF, XLSX, CSV),
and the report of one incident.

``render_agency``/``render_province`` gather the data (collector.reports.data)
and render it; the renderers import reportlab/openpyxl only when used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from collector.models import Agency, IncidentRecord
from collector.reports.period import Period, PeriodError, parse_period
from collector.settings import Settings

FORMATS: dict[str, str] = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}

__all__ = [
    "FORMATS",
    "Document",
    "Period",
    "PeriodError",
    "parse_period",
    "render_agency",
    "render_incident",
    "render_province",
]


@dataclass(frozen=True)
class Document:
    data: bytes
    media_type: str
    filename: str
    pages: int | None = None  # PDFs only


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}")
    return fmt


def _filename(scope: str, period: Period, fmt: str, lang: str) -> str:
    suffix = "" if lang == "vi" else f"-{lang}"
    return f"bao-cao-attt-{scope}-{period.slug}{suffix}.{fmt}"


def render_agency(
    session: Session,
    agency: Agency,
    period: Period,
    fmt: str = "pdf",
    lang: str = "vi",
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Document:
    from collector.reports import data
    from collector.reports.labels import check_lang

    _check_format(fmt)
    check_lang(lang)
    report = data.agency_report(session, agency, period, settings=settings, now=now)
    pages = None
    if fmt == "pdf":
        from collector.reports.pdf import agency_pdf

        result = agency_pdf(report, lang)
        body, pages = result.data, result.pages
    elif fmt == "xlsx":
        from collector.reports.xlsx import agency_xlsx

        body = agency_xlsx(report, lang)
    else:
        from collector.reports.csv_export import agency_csv

        body = agency_csv(report, lang)
    return Document(body, FORMATS[fmt], _filename(agency.code, period, fmt, lang), pages)


def render_province(
    session: Session,
    period: Period,
    fmt: str = "pdf",
    lang: str = "vi",
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Document:
    from collector.reports import data
    from collector.reports.labels import check_lang

    _check_format(fmt)
    check_lang(lang)
    report = data.province_report(session, period, settings=settings, now=now)
    pages = None
    if fmt == "pdf":
        from collector.reports.pdf import province_pdf

        result = province_pdf(report, lang)
        body, pages = result.data, result.pages
    elif fmt == "xlsx":
        from collector.reports.xlsx import province_xlsx

        body = province_xlsx(report, lang)
    else:
        from collector.reports.csv_export import province_csv

        body = province_csv(report, lang)
    return Document(body, FORMATS[fmt], _filename("tinh", period, fmt, lang), pages)


def render_incident(session: Session, row: IncidentRecord, lang: str = "vi") -> Document:
    from collector.models import Host
    from collector.reports.incident_pdf import incident_pdf
    from collector.reports.labels import check_lang

    check_lang(lang)
    agency = session.get(Agency, row.agency_id)
    assert agency is not None
    host = session.get(Host, row.host_id) if row.host_id is not None else None
    result = incident_pdf(row, agency, host, lang)
    suffix = "" if lang == "vi" else f"-{lang}"
    name = f"bao-cao-su-co-{agency.code}-{row.id}{suffix}.pdf"
    return Document(result.data, FORMATS["pdf"], name, result.pages)
