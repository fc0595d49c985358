"""Texts shared by all checks, and the rendering of evidence messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from policies.model import Text

SHARED: dict[str, Text] = {
    "section_unknown": Text(
        vi="Tác tử không thu thập được dữ kiện '{section}': {reason}",
        en="The agent could not collect '{section}' facts: {reason}",
    ),
    "section_missing": Text(
        vi="Phiên bản tác tử trên máy chưa thu thập dữ kiện '{section}'; cần nâng cấp tác tử",
        en="The agent version on this machine does not collect '{section}' facts; upgrade it",
    ),
    "role": Text(
        vi="Không áp dụng cho máy có vai trò '{role}'",
        en="Does not apply to a machine with role '{role}'",
    ),
    "check_error": Text(
        vi="Lỗi khi đánh giá: {error}",
        en="Evaluation error: {error}",
    ),
    "level_from": Text(
        vi="Áp dụng từ Mức độ {min}; đơn vị đang ở Mức độ {level}",
        en="Applies from Mức độ {min}; the agency is at Mức độ {level}",
    ),
    "level_only": Text(
        vi="Chỉ áp dụng cho Mức độ {min}; đơn vị đang ở Mức độ {level}",
        en="Applies to Mức độ {min} only; the agency is at Mức độ {level}",
    ),
    "level_range": Text(
        vi="Áp dụng cho Mức độ {min}–{max}; đơn vị đang ở Mức độ {level}",
        en="Applies to Mức độ {min}–{max}; the agency is at Mức độ {level}",
    ),
    "not_evaluated": Text(
        vi="Chưa đánh giá kiểm tra {check}",
        en="Check {check} was not evaluated",
    ),
    "no_hosts": Text(
        vi="Chưa có máy nào của đơn vị gửi báo cáo",
        en="No machine of the agency has reported yet",
    ),
    "host_counts": Text(
        vi="{hosts} máy: {pass} đạt, {fail} không đạt, {unknown} chưa xác định, "
        "{waived} được miễn trừ",
        en="{hosts} machines: {pass} pass, {fail} fail, {unknown} unknown, {waived} waived",
    ),
    "agency_level": Text(
        vi="Được đánh giá trên toàn đơn vị (xem kết quả của đơn vị)",
        en="Evaluated for the agency as a whole (see the agency's compliance)",
    ),
    "attested": Text(
        vi="Xác nhận bởi {by} lúc {at}, hiệu lực đến {until}: {statement}",
        en="Attested by {by} at {at}, valid until {until}: {statement}",
    ),
    "attestation_expired": Text(
        vi="Xác nhận của {by} đã hết hiệu lực từ {until}; cần xác nhận lại",
        en="The attestation by {by} expired at {until}; it must be renewed",
    ),
}

# Why a requirement without checks has no verdict yet, by how it is verified.
PENDING_REASON: dict[str, Text] = {
    "host": Text(
        vi="Chưa có phép kiểm tra tự động trên máy cho yêu cầu này",
        en="No automated host check for this requirement yet",
    ),
    "fleet": Text(
        vi="Cần đánh giá trên toàn bộ máy của đơn vị; chưa có quy tắc tự động",
        en="Needs a fleet-wide rule, not automated yet",
    ),
    "network": Text(
        vi="Chưa có thăm dò mạng",
        en="No network probe yet",
    ),
    "attestation": Text(
        vi="Chờ cán bộ có thẩm quyền xác nhận",
        en="Awaiting a person's attestation",
    ),
}


def _render(value: Any, lang: str) -> str:
    if isinstance(value, Text):
        return value.get(lang)
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        return value.strftime("%d/%m/%Y %H:%M UTC" if lang == "vi" else "%Y-%m-%d %H:%M UTC")
    if isinstance(value, (list, tuple)):
        return ", ".join(_render(v, lang) for v in value) or "—"
    if isinstance(value, float):
        text = f"{value:g}"
        return text.replace(".", ",") if lang == "vi" else text
    if value is None:
        return "—"
    return str(value)


# Rendered texts by template and parameters: most findings of a report read word
# for word like the ones of the reports before it (the same names, counts, roles).
# ``Text`` is immutable, so the findings share them.  Cleared when full.
_RENDERED: dict[tuple[Any, ...], Text] = {}
_RENDERED_MAX = 8192


def format_message(text: Text, params: dict[str, Any]) -> Text:
    """Fill a bilingual template; dates and numbers follow each language's usage.

    Runs for every finding of every report ingested: a template already filled with
    the same parameters (equal values of the same types) is not rendered again."""
    try:
        key = (
            text.vi,
            text.en,
            *((k, type(v), _key(v) if type(v) is list else v) for k, v in params.items()),
        )
        rendered = _RENDERED.get(key)
    except TypeError:  # a parameter that cannot be a key (a dict): rendered each time
        return _format(text, params)
    if rendered is None:
        rendered = _format(text, params)
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        _RENDERED[key] = rendered
    return rendered


def _key(values: list[Any]) -> tuple[Any, ...]:
    return tuple((type(v), v) for v in values)


def _format(text: Text, params: dict[str, Any]) -> Text:
    # Strings and integers (most parameters) read the same in both languages.
    vi: dict[str, Any] = {}
    en: dict[str, Any] = {}
    for key, value in params.items():
        kind = type(value)
        if kind is str or kind is int:
            vi[key] = en[key] = value
        else:
            vi[key] = _render(value, "vi")
            en[key] = _render(value, "en")
    return Text(vi=text.vi.format_map(vi), en=text.en.format_map(en))
