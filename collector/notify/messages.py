"""The texts of notifications: Vietnamese (with diacritics) first, English optional.

A message lists one or more events (a digest); the same text goes into the
e-mail body and the webhook's ``text`` field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from collector.models import NotificationEvent

# Times are shown in Vietnam's time (UTC+7, no daylight saving).
VIETNAM = timezone(timedelta(hours=7))

SEVERITY_LABELS: dict[str, dict[str, str]] = {
    "critical": {"vi": "nghiêm trọng", "en": "critical"},
    "high": {"vi": "cao", "en": "high"},
    "medium": {"vi": "trung bình", "en": "medium"},
    "low": {"vi": "thấp", "en": "low"},
}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str  # Vietnamese, then English when asked for
    text_vi: str
    text_en: str


def _when(value: str | None, lang: str) -> str:
    if not value:
        return "?"
    at = datetime.fromisoformat(value).astimezone(VIETNAM)
    if lang == "vi":
        return f"{at:%H:%M ngày %d/%m/%Y} (giờ Việt Nam)"
    return f"{at:%Y-%m-%d %H:%M} (UTC+7)"


def _pick(texts: Any, lang: str, default: str = "") -> str:
    if isinstance(texts, dict):
        return str(texts.get(lang) or texts.get("vi") or default)
    return str(texts or default)


def _where(p: dict[str, Any], lang: str) -> str:
    agency = p.get("agency_name") or p.get("agency_code") or ("cơ quan ?" if lang == "vi" else "?")
    return f"{p.get('hostname') or '?'} ({agency})"


def event_line(event: NotificationEvent, lang: str) -> str:
    p = event.payload or {}
    if event.kind == "new_failure":
        severity = _pick(
            SEVERITY_LABELS.get(p.get("severity", ""), {}), lang, p.get("severity", "")
        )
        title = _pick(p.get("title"), lang, p.get("check_id", ""))
        fix = _pick(p.get("remediation"), lang)
        if lang == "vi":
            line = (
                f"• Lỗi mới, mức độ {severity}, trên máy {_where(p, lang)}: {title} "
                f"(kiểm tra {p.get('check_id')}; báo cáo lúc {_when(p.get('collected_at'), lang)})."
            )
            return line + (f"\n  Cách khắc phục: {fix}" if fix else "")
        line = (
            f"• New {severity} failure on {_where(p, lang)}: {title} "
            f"(check {p.get('check_id')}; reported {_when(p.get('collected_at'), lang)})."
        )
        return line + (f"\n  Remediation: {fix}" if fix else "")
    if event.kind == "silent":
        hours = p.get("max_silence_hours")
        hours_text = f"{hours:g}" if isinstance(hours, (int, float)) else str(hours)
        if lang == "vi":
            return (
                f"• Máy {_where(p, lang)} không gửi báo cáo từ "
                f"{_when(p.get('last_seen_at'), lang)}, quá {hours_text} giờ."
            )
        return (
            f"• Machine {_where(p, lang)} has not reported since "
            f"{_when(p.get('last_seen_at'), lang)}, over {hours_text} hours."
        )
    if event.kind == "incident":
        agency = p.get("agency_name") or p.get("agency_code") or "?"
        category = _pick(p.get("category_label"), lang, p.get("category", ""))
        scope = _pick(p.get("scope_label"), lang, p.get("scope", ""))
        status = _pick(p.get("status_label"), lang, p.get("status", ""))
        if lang == "vi":
            return (
                f"• Sự cố tại {agency}: {p.get('title_text')} — {category}; phạm vi: {scope}; "
                f"trạng thái: {status}; xảy ra lúc {_when(p.get('occurred_at'), lang)} "
                f"(số {p.get('incident_id')})."
            )
        return (
            f"• Incident at {agency}: {p.get('title_text')} — {category}; scope: {scope}; "
            f"status: {status}; occurred {_when(p.get('occurred_at'), lang)} "
            f"(no. {p.get('incident_id')})."
        )
    return f"• {event.kind}: {p}"


def _subject(events: Sequence[NotificationEvent]) -> str:
    if len(events) == 1:
        p = events[0].payload or {}
        kind = events[0].kind
        if kind == "new_failure":
            title = _pick(p.get("title"), "vi", p.get("check_id", ""))
            return f"[Giám sát ATTT] Lỗi mới trên máy {p.get('hostname')}: {title}"
        if kind == "silent":
            return f"[Giám sát ATTT] Máy {p.get('hostname')} không gửi báo cáo"
        if kind == "incident":
            return f"[Giám sát ATTT] Sự cố tại {p.get('agency_name') or p.get('agency_code')}"
    return f"[Giám sát ATTT] {len(events)} cảnh báo mới"


def _body(events: Sequence[NotificationEvent], lang: str) -> str:
    counts = {
        kind: sum(1 for e in events if e.kind == kind)
        for kind in ("new_failure", "silent", "incident")
    }
    if lang == "vi":
        head = [
            f"Hệ thống giám sát an toàn thông tin ghi nhận {len(events)} cảnh báo mới "
            f"({counts['new_failure']} lỗi mới mức độ cao trở lên, "
            f"{counts['silent']} máy không gửi báo cáo, {counts['incident']} sự cố).",
            "",
        ]
        tail = ["", "Thư này được gửi tự động bởi posture-collector; vui lòng không trả lời."]
    else:
        head = [
            f"The security posture collector recorded {len(events)} new alerts "
            f"({counts['new_failure']} new critical/high failures, "
            f"{counts['silent']} silent machines, {counts['incident']} incidents).",
            "",
        ]
        tail = ["", "Sent automatically by posture-collector; please do not reply."]
    return "\n".join(head + [event_line(e, lang) for e in events] + tail)


def render(events: Sequence[NotificationEvent], *, english: bool = False) -> Message:
    """The message listing ``events`` (oldest first)."""
    ordered = sorted(events, key=lambda e: (e.created_at, e.id or 0))
    text_vi = _body(ordered, "vi")
    text_en = _body(ordered, "en")
    text = text_vi + ("\n\n— English —\n\n" + text_en if english else "")
    return Message(subject=_subject(ordered), text=text, text_vi=text_vi, text_en=text_en)
