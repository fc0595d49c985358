"""Evidence messages: bilingual templates filled with each language's usage."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from policies.model import Text
from policies.texts import format_message

TEMPLATE = Text(
    vi="{n} gói, {name}: {ratio} ({when}; {items}; {flag}; {none})",
    en="{n} packages, {name}: {ratio} ({when}; {items}; {flag}; {none})",
)


def test_strings_and_integers_read_the_same_in_both_languages() -> None:
    text = format_message(
        Text(vi="{n} máy ({name})", en="{n} machines ({name})"), {"n": 1234, "name": "pc-01"}
    )
    assert text == Text(vi="1234 máy (pc-01)", en="1234 machines (pc-01)")


def test_dates_numbers_lists_and_missing_values_follow_each_language() -> None:
    when = datetime(2026, 12, 7, 9, 30, tzinfo=timezone(timedelta(hours=7)))
    text = format_message(
        TEMPLATE,
        {
            "n": 3,
            "name": "clamav",
            "ratio": 0.5,
            "when": when,
            "items": ["a", 2, 1.5],
            "flag": True,
            "none": None,
        },
    )
    assert text.vi == "3 gói, clamav: 0,5 (07/12/2026 02:30 UTC; a, 2, 1,5; True; —)"
    assert text.en == "3 packages, clamav: 0.5 (2026-12-07 02:30 UTC; a, 2, 1.5; True; —)"
    assert format_message(Text(vi="{x}", en="{x}"), {"x": []}) == Text(vi="—", en="—")
