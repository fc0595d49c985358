"""Reporting periods: ``2026`` (year), ``2026-H1``/``2026-H2`` (six months),
``2026-Q4`` (quarter) or an explicit range ``2026-01-01..2026-06-30`` (both days included).

Periods are calendar days in Vietnam's time (UTC+7, no daylight saving time):
``since`` is the first instant of the first day, ``until`` the first instant
after the last day (exclusive), both as aware datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

VN_TZ = timezone(timedelta(hours=7), "UTC+7")
FORMS = "YYYY, YYYY-H1, YYYY-H2, YYYY-Q1…YYYY-Q4 or YYYY-MM-DD..YYYY-MM-DD"
_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
MIN_YEAR, MAX_YEAR = 2000, 2100


class PeriodError(ValueError):
    """A period that cannot be parsed; the message says which forms are accepted."""


@dataclass(frozen=True)
class Period:
    key: str  # as given, normalized (e.g. "2026-H1")
    start: date  # first day
    end: date  # last day (included)
    kind: str  # year | half | quarter | range

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), VN_TZ)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), VN_TZ)

    @property
    def slug(self) -> str:
        """For file names: ``2026-H1``, ``2026-01-01_2026-06-30``."""
        return self.key.replace("..", "_")

    def label(self, lang: str = "vi") -> str:
        year = self.start.year
        if self.kind == "year":
            return f"Năm {year}" if lang != "en" else f"Year {year}"
        if self.kind == "half":
            first = self.start.month == 1
            if lang == "en":
                return f"{'First' if first else 'Second'} half of {year}"
            return f"6 tháng {'đầu' if first else 'cuối'} năm {year}"
        if self.kind == "quarter":
            quarter = (self.start.month - 1) // 3 + 1
            return f"Quý {_ROMAN[quarter]} năm {year}" if lang != "en" else f"Q{quarter} {year}"
        if lang == "en":
            return f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"
        return f"Từ ngày {self.start:%d/%m/%Y} đến ngày {self.end:%d/%m/%Y}"

    def dates(self, lang: str = "vi") -> str:
        if lang == "en":
            return f"{self.start:%Y-%m-%d} – {self.end:%Y-%m-%d}"
        return f"{self.start:%d/%m/%Y} – {self.end:%d/%m/%Y}"


def _year(text: str, value: str) -> int:
    year = int(text)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PeriodError(f"period {value!r}: year must be between {MIN_YEAR} and {MAX_YEAR}")
    return year


def _day(text: str, value: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise PeriodError(f"period {value!r}: {text!r} is not a valid date (YYYY-MM-DD)") from exc
    _year(str(day.year), value)
    return day


def parse_period(value: str) -> Period:
    """Parse a period; raises :class:`PeriodError` with the accepted forms."""
    text = (value or "").strip().upper()
    if not text:
        raise PeriodError(f"empty period; expected {FORMS}")
    if m := re.fullmatch(r"(\d{4})", text):
        year = _year(m[1], value)
        return Period(text, date(year, 1, 1), date(year, 12, 31), "year")
    if m := re.fullmatch(r"(\d{4})-H([12])", text):
        year = _year(m[1], value)
        if m[2] == "1":
            return Period(text, date(year, 1, 1), date(year, 6, 30), "half")
        return Period(text, date(year, 7, 1), date(year, 12, 31), "half")
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
        year = _year(m[1], value)
        quarter = int(m[2])
        start = date(year, 3 * quarter - 2, 1)
        end = (date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)) - (
            timedelta(days=1)
        )
        return Period(text, start, end, "quarter")
    if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", text):
        start, end = _day(m[1], value), _day(m[2], value)
        if end < start:
            raise PeriodError(f"period {value!r}: the end {end} is before the start {start}")
        return Period(f"{start}..{end}", start, end, "range")
    raise PeriodError(f"unknown period {value!r}; expected {FORMS}")
