"""Evidence messages: bilingual templates filled with each language's usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

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


def test_a_text_rendered_again_reads_as_its_parameters_say() -> None:
    """Rendered texts are reused for equal parameters of the same types only: 1,
    1.0 and True are equal keys in Python but read differently."""
    template = Text(vi="giá trị {x}", en="value {x}")
    cases = [
        (1, "giá trị 1", "value 1"),
        (True, "giá trị True", "value True"),
        (1.5, "giá trị 1,5", "value 1.5"),
        ([1, 2.5], "giá trị 1, 2,5", "value 1, 2.5"),
        ([True, 2.5], "giá trị True, 2,5", "value True, 2.5"),
        ((1, 2.5), "giá trị 1, 2,5", "value 1, 2.5"),
        ({"a": 1}, "giá trị {'a': 1}", "value {'a': 1}"),  # cannot be a key
        (
            datetime(2026, 12, 7, 2, 30, tzinfo=UTC),
            "giá trị 07/12/2026 02:30 UTC",
            "value 2026-12-07 02:30 UTC",
        ),
    ]
    for _ in range(2):  # rendered, then reused
        for value, vi, en in cases:
            assert format_message(template, {"x": value}) == Text(vi=vi, en=en), value
    # Equal instants in two time zones read the same, whichever came first.
    local = datetime(2026, 12, 7, 9, 30, tzinfo=timezone(timedelta(hours=7)))
    assert format_message(template, {"x": local}).en == "value 2026-12-07 02:30 UTC"
    # Another template with the same parameters is another text.
    other = format_message(Text(vi="khác {x}", en="other {x}"), {"x": 1})
    assert other == Text(vi="khác 1", en="other 1")


def test_rendered_texts_are_immutable_and_bounded() -> None:
    import pydantic
    import pytest

    from policies import texts

    shared = format_message(Text(vi="{n} máy", en="{n} machines"), {"n": 7})
    with pytest.raises(pydantic.ValidationError):
        shared.vi = "sửa"  # type: ignore[misc]
    for n in range(texts._RENDERED_MAX + 10):
        format_message(Text(vi="{n} máy", en="{n} machines"), {"n": n})
    assert len(texts._RENDERED) <= texts._RENDERED_MAX
    assert format_message(Text(vi="{n} máy", en="{n} machines"), {"n": 7}) == shared
