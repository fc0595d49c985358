"""Reporting periods: the accepted forms, their bounds in Vietnam's time, clear errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from collector.reports.period import PeriodError, parse_period


@pytest.mark.parametrize(
    ("text", "start", "end", "vi", "en"),
    [
        ("2026", date(2026, 1, 1), date(2026, 12, 31), "Năm 2026", "Year 2026"),
        (
            "2026-H1",
            date(2026, 1, 1),
            date(2026, 6, 30),
            "6 tháng đầu năm 2026",
            "First half of 2026",
        ),
        (
            "2026-h2",
            date(2026, 7, 1),
            date(2026, 12, 31),
            "6 tháng cuối năm 2026",
            "Second half of 2026",
        ),
        ("2026-Q1", date(2026, 1, 1), date(2026, 3, 31), "Quý I năm 2026", "Q1 2026"),
        ("2024-Q1", date(2024, 1, 1), date(2024, 3, 31), "Quý I năm 2024", "Q1 2024"),
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), "Quý IV năm 2026", "Q4 2026"),
        (
            "2026-01-01..2026-06-30",
            date(2026, 1, 1),
            date(2026, 6, 30),
            "Từ ngày 01/01/2026 đến ngày 30/06/2026",
            "2026-01-01 to 2026-06-30",
        ),
        (
            " 2026-02-01..2026-02-01 ",
            date(2026, 2, 1),
            date(2026, 2, 1),
            "Từ ngày 01/02/2026 đến ngày 01/02/2026",
            "2026-02-01 to 2026-02-01",
        ),
    ],
)
def test_forms(text: str, start: date, end: date, vi: str, en: str) -> None:
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)
    assert period.label("vi") == vi
    assert period.label("en") == en


def test_bounds_are_vietnam_days() -> None:
    period = parse_period("2026-H1")
    assert period.since == datetime(2025, 12, 31, 17, 0, tzinfo=UTC)
    assert period.until == datetime(2026, 6, 30, 17, 0, tzinfo=UTC)
    # the last evening of June in Hà Nội is inside, the first minute of July is not
    assert period.since <= datetime(2026, 6, 30, 16, 59, tzinfo=UTC) < period.until
    assert not datetime(2026, 6, 30, 17, 0, tzinfo=UTC) < period.until
    assert parse_period("2026-01-01..2026-06-30").slug == "2026-01-01_2026-06-30"
    assert parse_period("2026-h1").key == "2026-H1"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty period"),
        ("2026-H3", "unknown period '2026-H3'"),
        ("2026-Q5", "unknown period"),
        ("26", "unknown period"),
        ("1999", "year must be between"),
        ("2026-02-30..2026-03-01", "'2026-02-30' is not a valid date"),
        ("2026-06-30..2026-01-01", "before the start"),
        ("2026-01-01...2026-02-01", "unknown period"),
    ],
)
def test_errors(text: str, fragment: str) -> None:
    with pytest.raises(PeriodError) as err:
        parse_period(text)
    assert fragment in str(err.value)
    if "unknown" in fragment or "empty" in fragment:
        assert "YYYY-H1" in str(err.value)  # the message lists the accepted forms
