"""One incident of the register as a document the agency sends to the Sở TT&TT
(Điều 20 khoản 5): who, what, when, how it was handled and escalated, signed
by the reporter and the head of the agency."""

from __future__ import annotations

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer, Table, TableStyle

from collector import incidents
from collector.models import Agency, Host, IncidentRecord, utcnow
from collector.reports.data import PROVINCE_CONTEXT
from collector.reports.labels import check_lang, fmt_datetime, word
from collector.reports.pdf import PdfResult, build, c, cover_header, p, signature_block, styles


def incident_pdf(
    row: IncidentRecord,
    agency: Agency,
    host: Host | None = None,
    lang: str = "vi",
) -> PdfResult:
    check_lang(lang)
    s = styles()
    width = A4[0] - 30 * mm
    story: list[Flowable] = cover_header(lang, agency.name)
    story += [Spacer(1, 6 * mm), p(word(lang, "incident_title"), s.title)]
    story += [p(f"{word(lang, 'to')}: {PROVINCE_CONTEXT.get(lang)}", s.body), Spacer(1, 4 * mm)]
    leadership = (
        fmt_datetime(row.leadership_informed_at, lang)
        if row.leadership_informed_at
        else word(lang, "no")
    )
    fields = [
        (word(lang, "agency"), f"{agency.name} ({agency.code})"),
        (word(lang, "incident_no"), f"#{row.id}"),
        (word(lang, "incident_name"), row.title),
        (word(lang, "category"), incidents.label(incidents.CATEGORIES, row.category, lang)),
        (word(lang, "scope"), incidents.label(incidents.SCOPES, row.scope, lang)),
        (word(lang, "status"), incidents.label(incidents.STATUSES, row.status, lang)),
        (word(lang, "machine"), (host.fqdn or host.hostname) if host else word(lang, "none")),
        (word(lang, "occurred"), fmt_datetime(row.occurred_at, lang)),
        (word(lang, "detected"), fmt_datetime(row.detected_at, lang)),
        (word(lang, "reported_by"), row.reported_by),
        (word(lang, "leadership"), leadership),
        (
            word(lang, "escalated_at"),
            fmt_datetime(row.escalated_at, lang)
            if row.escalated_at
            else word(lang, "not_escalated"),
        ),
        (word(lang, "escalated_to"), row.escalated_to or "—"),
        (word(lang, "resolved"), fmt_datetime(row.resolved_at, lang)),
    ]
    t = Table([[c(k, bold=True), c(v)] for k, v in fields], colWidths=[55 * mm, width - 55 * mm])
    t.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, "#9e9e9e"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(t)
    for key, text in (
        ("description", row.description),
        ("handling", row.handling),
    ):
        story += [p(word(lang, key), s.h2), p(text or word(lang, "none"))]
    escalation = (
        f"{fmt_datetime(row.escalated_at, lang)} — {row.escalated_to or PROVINCE_CONTEXT.get(lang)}"
        if row.escalated_at
        else word(lang, "not_escalated")
    )
    story += [p(word(lang, "escalation"), s.h2), p(escalation)]
    story += [Spacer(1, 3 * mm), p(word(lang, "incident_basis"), s.small), Spacer(1, 8 * mm)]
    story.append(
        signature_block(lang, width, utcnow(), left_key="reported_by", left_name=row.reported_by)
    )
    footer = f"{agency.name} — {word(lang, 'incident_title').capitalize()} #{row.id}"
    return build(story, footer, lang)
