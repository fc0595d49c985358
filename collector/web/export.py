"""Bridge to the report module (collector.reports), imported lazily.

The dashboard's download links use the session cookie, where the report API
(``/api/v1/agencies/{id}/report``) takes bearer tokens; both call the same
module.  Its entry point is looked up by name and called with the keyword
arguments it declares, so the dashboard does not break while that module
evolves; when it is missing the page says so plainly.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from collector.models import Agency
from collector.settings import Settings

FORMATS = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
PERIOD = re.compile(r"^[0-9A-Za-z._-]{1,32}$")
_ENTRY_POINTS = (
    "agency_report",
    "render_agency_report",
    "build_agency_report",
    "generate_agency_report",
    "render_report",
    "generate",
    "render",
)


class ReportsUnavailable(Exception):  # noqa: N818
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


def _entry_point() -> Any:
    try:
        module = importlib.import_module("collector.reports")
    except ImportError as exc:
        raise ReportsUnavailable(str(exc)) from exc
    for name in _ENTRY_POINTS:
        fn = getattr(module, name, None)
        if callable(fn):
            return fn
    raise ReportsUnavailable("collector.reports has no agency report entry point")


def render(
    session: Session,
    agency: Agency,
    *,
    period: str,
    fmt: str,
    lang: str,
    settings: Settings,
) -> Download:
    fn = _entry_point()
    offered: dict[str, Any] = {
        "session": session,
        "agency": agency,
        "agency_id": agency.id,
        "period": period,
        "format": fmt,
        "fmt": fmt,
        "kind": fmt,
        "lang": lang,
        "settings": settings,
    }
    params = inspect.signature(fn).parameters
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in params.items():
        if name not in offered:
            if param.default is inspect.Parameter.empty and param.kind not in (
                inspect.Parameter.VAR_KEYWORD,
                inspect.Parameter.VAR_POSITIONAL,
            ):
                raise ReportsUnavailable(f"unexpected parameter {name!r} of the report module")
            continue
        if param.kind == inspect.Parameter.POSITIONAL_ONLY:
            args.append(offered[name])
        else:
            kwargs[name] = offered[name]
    result = fn(*args, **kwargs)
    return _download(result, agency, period, fmt)


def _download(result: Any, agency: Agency, period: str, fmt: str) -> Download:
    filename = f"bao-cao-{agency.code}-{period}.{fmt}"
    media_type = FORMATS[fmt]
    content: Any = result
    if isinstance(result, tuple):
        content = result[0]
        if len(result) > 1 and result[1]:
            media_type = str(result[1])
        if len(result) > 2 and result[2]:
            filename = str(result[2])
    elif not isinstance(result, (bytes, bytearray, str)):
        for attr in ("content", "body", "data"):
            if hasattr(result, attr):
                content = getattr(result, attr)
                break
        media_type = str(getattr(result, "media_type", None) or media_type)
        filename = str(getattr(result, "filename", None) or filename)
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not isinstance(content, (bytes, bytearray)):
        raise ReportsUnavailable("the report module returned no file content")
    return Download(bytes(content), media_type, filename)
