"""Bridge to the report module (collector.reports), imported lazily.

The dashboard's download links use the session cookie, where the report API
(``/api/v1/agencies/{id}/report``) takes bearer tokens; both call
``collector.reports.render_agency``.  When that module (or a renderer library
it needs) is missing, the page says so plainly instead of failing.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from collector.models import Agency
from collector.settings import Settings

FORMATS = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
PERIOD = re.compile(r"^[0-9A-Za-z._-]{1,32}$")


class ReportsUnavailable(Exception):
    """collector.reports is not installed, or has no usable entry point."""


@dataclass
class Download:
    content: bytes
    media_type: str
    filename: str


def default_periods(now: datetime) -> list[tuple[str, str, int]]:
    """(period value, catalogue key, year) choices: this year's halves and year, last year's."""
    year = now.year
    out = [(f"{year}-H1", "period_half1", year)]
    if now.month > 6:
        out.insert(0, (f"{year}-H2", "period_half2", year))
    out.append((str(year), "period_year", year))
    out += [
        (f"{year - 1}-H2", "period_half2", year - 1),
        (f"{year - 1}-H1", "period_half1", year - 1),
        (str(year - 1), "period_year", year - 1),
    ]
    return out


def render(
    session: Session,
    agency: Agency,
    *,
    period: str,
    fmt: str,
    lang: str,
    settings: Settings,
) -> Download:
    """The agency's periodic report for ``period`` as a file.

    Raises :class:`ReportsUnavailable` when the report module (or a renderer
    library it needs) is missing, ``ValueError`` for a period it cannot parse.
    """
    try:
        reports = importlib.import_module("collector.reports")
    except ImportError as exc:
        raise ReportsUnavailable(str(exc)) from exc
    try:
        parsed = reports.parse_period(period)
    except reports.PeriodError as exc:
        raise ValueError(str(exc)) from exc
    try:
        document = reports.render_agency(session, agency, parsed, fmt, lang, settings=settings)
    except ImportError as exc:  # reportlab / openpyxl not installed
        raise ReportsUnavailable(str(exc)) from exc
    return Download(document.data, document.media_type, document.filename)
