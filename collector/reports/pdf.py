"""The periodic report as a PDF (reportlab), Vietnamese by default.

Text is drawn with DejaVu Sans, bundled in ``collector/reports/fonts`` (the
PDF base fonts have no Vietnamese glyphs), so a pip-installed collector
produces the same document anywhere.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from collector import incidents
from collector.reports.data import (
    ATTESTATION_STATES,
    PROVINCE_CONTEXT,
    ROLE_LABELS,
    SEVERITY_LABELS,
    WAIVER_STATES,
    AgencyReport,
    Gap,
    IncidentRow,
    ProvinceReport,
)
from collector.reports.labels import (
    VERDICT_ORDER,
    check_lang,
    fmt_date,
    fmt_datetime,
    local,
    verdict,
    word,
)

FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
MAX_HOSTS_LISTED = 40  # per gap in the PDF; the XLSX and CSV list them all
PROVINCE_TOP_GAPS = 30
AGENCY_TOP_GAPS = 12

VERDICT_COLORS: dict[str, Any] = {
    "pass": colors.HexColor("#c8e6c9"),
    "fail": colors.HexColor("#ffcdd2"),
    "unknown": colors.HexColor("#fff3c4"),
    "not_applicable": colors.HexColor("#eeeeee"),
    "waived": colors.HexColor("#d0e4f7"),
}
HEADER_BG = colors.HexColor("#1f4e79")
LINE_COLORS = [
    colors.HexColor(c) for c in ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
]


@cache
def register_fonts() -> None:
    """Register the bundled DejaVu Sans (regular and bold) once per process."""
    from reportlab.lib.fonts import addMapping

    folder = resources.files("collector.reports").joinpath("fonts")
    for name, filename in ((FONT, "DejaVuSans.ttf"), (FONT_BOLD, "DejaVuSans-Bold.ttf")):
        with resources.as_file(folder.joinpath(filename)) as path:
            pdfmetrics.registerFont(TTFont(name, str(path)))
    for bold, italic, name in ((0, 0, FONT), (1, 0, FONT_BOLD), (0, 1, FONT), (1, 1, FONT_BOLD)):
        addMapping(FONT, bold, italic, name)


@dataclass(frozen=True)
class Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_bold: ParagraphStyle
    head: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    title: ParagraphStyle
    center: ParagraphStyle


@cache
def styles() -> Styles:
    register_fonts()
    body = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=12.5)
    cell = ParagraphStyle("cell", parent=body, fontSize=7.5, leading=9.5)
    return Styles(
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=8, leading=10, textColor="#555555"),
        cell=cell,
        cell_bold=ParagraphStyle("cellb", parent=cell, fontName=FONT_BOLD),
        head=ParagraphStyle("head", parent=cell, fontName=FONT_BOLD, textColor=colors.white),
        h1=ParagraphStyle(
            "h1",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=14,
            leading=18,
            spaceBefore=6,
            spaceAfter=6,
            textColor=HEADER_BG,
        ),
        h2=ParagraphStyle(
            "h2",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=11,
            leading=14,
            spaceBefore=6,
            spaceAfter=4,
        ),
        title=ParagraphStyle(
            "title",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=17,
            leading=23,
            alignment=TA_CENTER,
            spaceAfter=10,
        ),
        center=ParagraphStyle("center", parent=body, alignment=TA_CENTER),
    )


def p(text: str, style: ParagraphStyle | None = None) -> Paragraph:
    """A paragraph of plain text (escaped; newlines kept)."""
    return Paragraph(escape(text).replace("\n", "<br/>"), style or styles().body)


def c(text: str, bold: bool = False) -> Paragraph:
    return p(text, styles().cell_bold if bold else styles().cell)


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    *,
    verdict_cells: Sequence[tuple[int, int, str]] = (),
) -> Table:
    """A table with a coloured header row repeated on each page; ``verdict_cells``
    (column, row, status) are filled with the colour of their verdict."""
    data = [[p(h, styles().head) for h in header]]
    data += [[x if isinstance(x, Flowable) else c(str(x)) for x in row] for row in rows]
    out = Table(data, colWidths=list(widths), repeatRows=1)
    commands: list[tuple] = [
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9e9e9e")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    for col, row, status in verdict_cells:
        commands.append(("BACKGROUND", (col, row + 1), (col, row + 1), VERDICT_COLORS[status]))
    out.setStyle(TableStyle(commands))
    return out


class _Doc(SimpleDocTemplate):
    def __init__(self, buffer: io.BytesIO, footer: str, lang: str, **kwargs: Any) -> None:
        super().__init__(buffer, **kwargs)
        self.footer = footer
        self.lang = lang

    def _footer(self, canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(doc.leftMargin, 10 * mm, self.footer)
        canvas.drawRightString(
            doc.pagesize[0] - doc.rightMargin, 10 * mm, word(self.lang, "page", n=doc.page)
        )
        canvas.restoreState()


@dataclass(frozen=True)
class PdfResult:
    data: bytes
    pages: int


def build(story: list[Flowable], footer: str, lang: str, *, wide: bool = False) -> PdfResult:
    """Lay out the flowables on A4 pages (landscape when ``wide``) with a footer."""
    register_fonts()
    buffer = io.BytesIO()
    doc = _Doc(
        buffer,
        footer,
        lang,
        pagesize=landscape(A4) if wide else A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=footer,
        author="posture-collector",
    )
    doc.build(story, onFirstPage=doc._footer, onLaterPages=doc._footer)
    return PdfResult(buffer.getvalue(), doc.page)


# --- pieces ---------------------------------------------------------------------------


def cover(
    title: str,
    lines: list[tuple[str, str]],
    lang: str,
    year: int,
    agency_name: str | None = None,
) -> list[Flowable]:
    s = styles()
    out: list[Flowable] = [
        *cover_header(lang, agency_name),
        Spacer(1, 28 * mm),
        p(title, s.title),
        Spacer(1, 10 * mm),
    ]
    rows = [[c(k, bold=True), c(v)] for k, v in lines]
    t = Table(rows, colWidths=[55 * mm, 110 * mm])
    t.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.3, colors.HexColor("#bdbdbd")),
            ]
        )
    )
    out += [t, Spacer(1, 10 * mm), p(word(lang, "due", year=year), s.small)]
    out += [p(word(lang, "as_of_note"), s.small), p(word(lang, "time_note"), s.small)]
    return out


def article_summary(report: AgencyReport, lang: str, width: float) -> Table:
    header = [word(lang, "article_col"), word(lang, "verdict")]
    header += [verdict(lang, v) for v in VERDICT_ORDER]
    rows, marks = [], []
    for i, a in enumerate(report.articles):
        rows.append(
            [
                c(f"{word(lang, 'article')} {a.article}. {a.title.get(lang)}", bold=True),
                c(verdict(lang, a.status), bold=True),
                *[str(a.counts.get(v, 0)) for v in VERDICT_ORDER],
            ]
        )
        marks.append((1, i, a.status))
    first = width - 6 * 27 * mm
    return table(header, rows, [first] + [27 * mm] * 6, verdict_cells=marks)


def trend_chart(report: AgencyReport, lang: str, width: float, height: float = 62 * mm) -> Flowable:
    """Score (share of applicable requirements that pass) per article over the period."""
    period = report.period
    span = max((period.until - period.since).total_seconds() / 86400, 1.0)
    series: list[tuple[str, list[tuple[float, float]]]] = []
    for art in report.history.articles:
        points = [
            ((pt.taken_at - period.since).total_seconds() / 86400, pt.score * 100)
            for pt in art.points
            if pt.score is not None
        ]
        if points:
            series.append((f"{word(lang, 'article')} {art.article}", points))
    if not series:
        return p(word(lang, "no_history"), styles().small)
    drawing = Drawing(width, height)
    plot = LinePlot()
    plot.x, plot.y = 32, 30
    plot.width, plot.height = width - 130, height - 45
    plot.data = [pts for _, pts in series]
    for i in range(len(series)):
        line = plot.lines[i]
        line.strokeColor = LINE_COLORS[i % len(LINE_COLORS)]
        line.strokeWidth = 1.4
        line.symbol = makeMarker("FilledCircle", size=3)
        line.symbol.fillColor = LINE_COLORS[i % len(LINE_COLORS)]
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, span
    plot.xValueAxis.valueSteps = [span * k / 6 for k in range(7)]
    since = period.since

    def day_label(value: float) -> str:
        from datetime import timedelta

        day: datetime = since + timedelta(days=value)
        return day.strftime("%d/%m" if lang != "en" else "%m-%d")

    plot.xValueAxis.labelTextFormat = day_label
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = 0, 100
    plot.yValueAxis.valueSteps = [0, 25, 50, 75, 100]
    for axis in (plot.xValueAxis, plot.yValueAxis):
        axis.labels.fontName = FONT
        axis.labels.fontSize = 7
    drawing.add(plot)
    drawing.add(String(2, height - 10, word(lang, "trend_axis"), fontName=FONT, fontSize=7.5))
    legend = Legend()
    legend.x, legend.y = width - 90, height - 20
    legend.fontName, legend.fontSize = FONT, 7.5
    legend.alignment = "right"
    legend.colorNamePairs = [
        (LINE_COLORS[i % len(LINE_COLORS)], name) for i, (name, _) in enumerate(series)
    ]
    drawing.add(legend)
    return drawing


def requirement_tables(report: AgencyReport, lang: str, width: float) -> list[Flowable]:
    out: list[Flowable] = []
    widths = [24 * mm, width - 24 * mm - 26 * mm - 80 * mm, 26 * mm, 80 * mm]
    header = [word(lang, "requirement"), word(lang, "content"), word(lang, "verdict")]
    header.append(word(lang, "evidence"))
    for a in report.articles:
        out.append(CondPageBreak(40 * mm))
        title = f"{word(lang, 'article')} {a.article}. {a.title.get(lang)} — "
        out.append(p(title + verdict(lang, a.status), styles().h2))
        rows, marks = [], []
        for i, r in enumerate(a.requirements):
            evidence = [e.get(lang) for e in r.evidence]
            if r.reason is not None:
                evidence.append(r.reason.get(lang))
            rows.append(
                [
                    c(f"{r.requirement_id}\n{r.reference.get(lang)}"),
                    c(r.title.get(lang)),
                    c(verdict(lang, r.status), bold=True),
                    c("\n".join(evidence)),
                ]
            )
            marks.append((2, i, r.status))
        out.append(table(header, rows, widths, verdict_cells=marks))
    return out


def _hosts_text(gap: Gap, lang: str) -> str:
    if not gap.hosts:
        return word(lang, "agency_wide")
    shown = ", ".join(gap.hosts[:MAX_HOSTS_LISTED])
    extra = len(gap.hosts) - MAX_HOSTS_LISTED
    text = f"({len(gap.hosts)}) {shown}"
    return text + (" " + word(lang, "and_more", n=extra) if extra > 0 else "")


def _gap_title(gap: Gap, lang: str) -> str:
    refs = ", ".join(gap.requirement_ids)
    if gap.requirement_ids == [gap.key]:
        return f"{gap.title.get(lang)}\n{refs}"
    return f"{gap.title.get(lang)}\n[{gap.key}] {refs}"


def gap_table(gaps: Sequence[Gap], lang: str, width: float) -> Flowable:
    if not gaps:
        return p(word(lang, "no_gaps"))
    header = [
        word(lang, "n"),
        word(lang, "check"),
        word(lang, "verdict"),
        word(lang, "severity"),
        word(lang, "hosts"),
        word(lang, "remediation"),
    ]
    fixed = 9 * mm + 26 * mm + 22 * mm
    rest = width - fixed
    widths = [9 * mm, rest * 0.3, 26 * mm, 22 * mm, rest * 0.3, rest * 0.4]
    rows, marks = [], []
    for i, g in enumerate(gaps):
        evidence = "\n".join(e.get(lang) for e in g.evidence)
        rows.append(
            [
                str(i + 1),
                c(_gap_title(g, lang)),
                c(verdict(lang, g.status), bold=True),
                c(SEVERITY_LABELS[g.severity].get(lang) if g.severity else "—"),
                c(_hosts_text(g, lang) + (f"\n{evidence}" if evidence else "")),
                c(g.remediation.get(lang)),
            ]
        )
        marks.append((2, i, g.status))
    return table(header, rows, widths, verdict_cells=marks)


def silent_table(report: AgencyReport, lang: str, width: float) -> Flowable:
    silent = report.silent
    if not silent:
        return p(word(lang, "no_silent"))
    header = [word(lang, "hostname"), word(lang, "role"), word(lang, "os")]
    header.append(word(lang, "last_seen"))
    rows = [
        [
            c(h.fqdn or h.hostname),
            c(ROLE_LABELS.get(h.role, ROLE_LABELS["unknown"]).get(lang)),
            c(h.os_family or "—"),
            c(fmt_datetime(h.last_seen_at, lang) if h.last_seen_at else word(lang, "never")),
        ]
        for h in silent
    ]
    return table(header, rows, [width * 0.4, width * 0.15, width * 0.15, width * 0.3])


def attestation_table(report: AgencyReport, lang: str, width: float) -> Flowable:
    if not report.attestations:
        return p(word(lang, "no_attestations"))
    header = [
        word(lang, "requirement"),
        word(lang, "statement"),
        word(lang, "attested_by"),
        word(lang, "attested_at"),
        word(lang, "expires"),
        word(lang, "state"),
    ]
    rows = [
        [
            c(f"{a.requirement_id}\n{a.requirement.get(lang)}"),
            c(a.statement),
            c(a.attested_by),
            c(fmt_date(a.attested_at, lang)),
            c(fmt_date(a.expires_at, lang)),
            c(ATTESTATION_STATES[a.state].get(lang)),
        ]
        for a in report.attestations
    ]
    rest = width - 3 * 25 * mm
    return table(header, rows, [rest * 0.3, rest * 0.45, rest * 0.25] + [25 * mm] * 3)


def waiver_table(report: AgencyReport, lang: str, width: float) -> Flowable:
    if not report.waivers:
        return p(word(lang, "no_waivers"))
    header = [
        word(lang, "check"),
        word(lang, "scope_hosts"),
        word(lang, "justification"),
        word(lang, "author"),
        word(lang, "created"),
        word(lang, "expires"),
        word(lang, "state"),
    ]
    rows = [
        [
            c(f"{w.check_title.get(lang)}\n[{w.check_id}]"),
            c(w.hostname or word(lang, "agency_wide")),
            c(w.justification),
            c(w.author),
            c(fmt_date(w.created_at, lang)),
            c(fmt_date(w.expires_at, lang)),
            c(WAIVER_STATES[w.state].get(lang)),
        ]
        for w in report.waivers
    ]
    rest = width - 3 * 25 * mm
    widths = [rest * 0.25, rest * 0.15, rest * 0.4, rest * 0.2] + [25 * mm] * 3
    return table(header, rows, widths)


def incident_table(
    rows: Sequence[IncidentRow], lang: str, width: float, *, agency: bool
) -> Flowable:
    if not rows:
        return p(word(lang, "no_incidents"))
    header = [word(lang, "occurred"), word(lang, "incident_name"), word(lang, "category")]
    header += [word(lang, "scope"), word(lang, "status"), word(lang, "escalated")]
    if agency:
        header.insert(0, word(lang, "code"))
    out = []
    for i in rows:
        r = i.record
        escalated = (
            f"{fmt_datetime(r.escalated_at, lang)} {r.escalated_to or ''}".strip()
            if r.escalated_at
            else word(lang, "not_escalated")
        )
        title = f"#{i.id} {r.title}" + (f"\n{i.hostname}" if i.hostname else "")
        row = [
            c(fmt_datetime(r.occurred_at, lang)),
            c(title),
            c(incidents.label(incidents.CATEGORIES, r.category, lang)),
            c(incidents.label(incidents.SCOPES, r.scope, lang)),
            c(incidents.label(incidents.STATUSES, r.status, lang)),
            c(escalated),
        ]
        if agency:
            row.insert(0, c(i.agency_code))
        out.append(row)
    base = [26 * mm, 0.0, 60 * mm, 36 * mm, 26 * mm, 40 * mm]
    if agency:
        base.insert(0, 20 * mm)
    base[base.index(0.0)] = width - sum(base)
    return table(header, out, base)


def signature_block(
    lang: str,
    width: float,
    when: datetime,
    *,
    left_key: str = "signature_left",
    left_name: str | None = None,
) -> Flowable:
    """The reporter ("Người lập báo cáo" / "Người báo cáo") and "Thủ trưởng cơ quan",
    with room to sign."""
    s = styles()
    day = local(when)
    center, head, hint = _centered(s.body), _centered(s.h2), _centered(s.small)
    place = word(lang, "place_date", d=f"{day:%d}", m=f"{day:%m}", y=f"{day:%Y}")
    left = [p(" ", center), p(word(lang, left_key), head), p(word(lang, "signature_hint"), hint)]
    right = [p(place, center), p(word(lang, "signature_right"), head)]
    right.append(p(word(lang, "signature_hint_seal"), hint))
    if left_name:
        left += [Spacer(1, 18 * mm), p(left_name, _centered(s.cell_bold))]
    t = Table([[left, right]], colWidths=[width / 2, width / 2], rowHeights=[50 * mm])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return t


def cover_header(lang: str, agency_name: str | None = None) -> list[Flowable]:
    """The two-column heading of an administrative document: the issuer and the motto."""
    s = styles()
    left = [p((agency_name or PROVINCE_CONTEXT.get(lang)).upper(), _centered(s.cell_bold))]
    right = [
        p("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", _centered(s.cell_bold)),
        p("Độc lập - Tự do - Hạnh phúc", _centered(s.cell_bold)),
    ]
    t = Table([[left, right]], colWidths=[85 * mm, 95 * mm])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [t]


def _centered(style: ParagraphStyle) -> ParagraphStyle:
    return ParagraphStyle(style.name + "-c", parent=style, alignment=TA_CENTER)


# --- documents ------------------------------------------------------------------------


def _agency_cover_lines(report: AgencyReport, lang: str) -> list[tuple[str, str]]:
    return [
        (word(lang, "to"), PROVINCE_CONTEXT.get(lang)),
        (word(lang, "agency"), report.name),
        (word(lang, "code"), report.code),
        (word(lang, "level"), str(report.level)),
        (word(lang, "period"), f"{report.period.label(lang)} ({report.period.dates(lang)})"),
        (word(lang, "generated"), fmt_date(report.generated_at, lang)),
        (word(lang, "framework"), report.framework.title.get(lang)),
    ]


def _agency_figures(report: AgencyReport, lang: str, width: float) -> Table:
    rows = [
        (word(lang, "machines"), report.machines),
        (word(lang, "silent", hours=f"{report.silence_hours:g}"), len(report.silent)),
        (word(lang, "gaps_count"), sum(1 for g in report.gaps if g.status == "fail")),
        (word(lang, "incidents_count"), len(report.incidents)),
    ]
    t = Table([[c(k), c(str(v), bold=True)] for k, v in rows], colWidths=[width * 0.6, 30 * mm])
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#bdbdbd"))]))
    return t


def agency_story(report: AgencyReport, lang: str, width: float) -> list[Flowable]:
    s = styles()
    story: list[Flowable] = cover(
        word(lang, "title"),
        _agency_cover_lines(report, lang),
        lang,
        report.period.end.year,
        report.name,
    )
    story += [
        PageBreak(),
        p(f"1. {word(lang, 'summary')}", s.h1),
        _agency_figures(report, lang, width),
    ]
    story += [Spacer(1, 4 * mm), article_summary(report, lang, width), Spacer(1, 4 * mm)]
    story += [p(word(lang, "trends"), s.h2), trend_chart(report, lang, width)]
    story += [PageBreak(), p(f"2. {word(lang, 'by_article')}", s.h1)]
    story += requirement_tables(report, lang, width)
    story += [PageBreak(), p(f"3. {word(lang, 'gaps')}", s.h1), gap_table(report.gaps, lang, width)]
    story += [CondPageBreak(50 * mm), p(f"4. {word(lang, 'silent_list')}", s.h1)]
    story.append(silent_table(report, lang, width))
    story += [CondPageBreak(50 * mm), p(f"5. {word(lang, 'attestations')}", s.h1)]
    story.append(attestation_table(report, lang, width))
    story += [CondPageBreak(50 * mm), p(f"6. {word(lang, 'waivers')}", s.h1)]
    story.append(waiver_table(report, lang, width))
    story += [CondPageBreak(50 * mm), p(f"7. {word(lang, 'incidents')}", s.h1)]
    story.append(incident_table(report.incidents, lang, width, agency=False))
    story += [Spacer(1, 8 * mm), KeepTogether(signature_block(lang, width, report.generated_at))]
    return story


def agency_pdf(report: AgencyReport, lang: str = "vi") -> PdfResult:
    check_lang(lang)
    width = landscape(A4)[0] - 30 * mm
    footer = f"{report.name} — {word(lang, 'title').capitalize()} — {report.period.label(lang)}"
    return build(agency_story(report, lang, width), footer, lang, wide=True)


def _matrix(report: ProvinceReport, lang: str, width: float) -> Flowable:
    articles = sorted(report.framework.articles)
    header = [word(lang, "agency"), word(lang, "level"), word(lang, "machines")]
    header += [word(lang, "silent_col")]
    header += [f"{word(lang, 'article')} {n}" for n in articles]
    rows, marks = [], []
    for i, a in enumerate(report.agencies):
        by_number = {x.article: x.status for x in a.articles}
        row = [c(f"{a.name}\n({a.code})"), str(a.level), str(a.machines), str(len(a.silent))]
        for j, n in enumerate(articles):
            status = by_number.get(n, "unknown")
            row.append(c(verdict(lang, status), bold=True))
            marks.append((4 + j, i, status))
        rows.append(row)
    fixed = 16 * mm + 16 * mm + 20 * mm + len(articles) * 26 * mm
    widths = [width - fixed, 16 * mm, 16 * mm, 20 * mm] + [26 * mm] * len(articles)
    return table(header, rows, widths, verdict_cells=marks)


def _province_gaps(report: ProvinceReport, lang: str, width: float) -> Flowable:
    gaps = report.worst_gaps(PROVINCE_TOP_GAPS)
    if not gaps:
        return p(word(lang, "no_gaps"))
    header = [word(lang, "n"), word(lang, "check"), word(lang, "verdict")]
    header += [word(lang, "agencies_concerned"), word(lang, "machines_concerned")]
    header.append(word(lang, "remediation"))
    rows, marks = [], []
    for i, pg in enumerate(gaps):
        rows.append(
            [
                str(i + 1),
                c(_gap_title(pg.gap, lang)),
                c(verdict(lang, pg.gap.status), bold=True),
                c(f"({len(pg.agencies)}) " + ", ".join(pg.agencies)),
                str(pg.machines),
                c(pg.gap.remediation.get(lang)),
            ]
        )
        marks.append((2, i, pg.gap.status))
    rest = width - 9 * mm - 26 * mm - 16 * mm
    widths = [9 * mm, rest * 0.3, 26 * mm, rest * 0.25, 16 * mm, rest * 0.45]
    return table(header, rows, widths, verdict_cells=marks)


def _silent_agencies(report: ProvinceReport, lang: str, width: float) -> Flowable:
    rows = [
        [
            c(f"{a.name} ({a.code})"),
            str(a.machines),
            str(len(a.silent)),
            c(", ".join(h.hostname for h in a.silent[:MAX_HOSTS_LISTED])),
        ]
        for a in report.agencies
        if a.silent
    ]
    if not rows:
        return p(word(lang, "no_silent_agencies"))
    header = [word(lang, "agency"), word(lang, "machines"), word(lang, "silent_col")]
    header.append(word(lang, "silent_list"))
    return table(header, rows, [width * 0.3, 20 * mm, 20 * mm, width * 0.7 - 40 * mm])


def province_pdf(report: ProvinceReport, lang: str = "vi") -> PdfResult:
    check_lang(lang)
    s = styles()
    width = landscape(A4)[0] - 30 * mm
    lines = [
        (word(lang, "to"), PROVINCE_CONTEXT.get(lang)),
        (word(lang, "period"), f"{report.period.label(lang)} ({report.period.dates(lang)})"),
        (word(lang, "generated"), fmt_date(report.generated_at, lang)),
        (word(lang, "agencies"), str(len(report.agencies))),
        (word(lang, "machines"), str(report.machines)),
        (word(lang, "framework"), report.framework.title.get(lang)),
    ]
    story: list[Flowable] = cover(word(lang, "province_title"), lines, lang, report.period.end.year)
    story += [PageBreak(), p(f"1. {word(lang, 'matrix')}", s.h1), _matrix(report, lang, width)]
    story += [CondPageBreak(50 * mm), p(f"2. {word(lang, 'silent_agencies')}", s.h1)]
    story.append(_silent_agencies(report, lang, width))
    story += [PageBreak(), p(f"3. {word(lang, 'worst_gaps')}", s.h1)]
    story.append(_province_gaps(report, lang, width))
    story += [CondPageBreak(50 * mm), p(f"4. {word(lang, 'incidents')}", s.h1)]
    story.append(incident_table(report.incidents, lang, width, agency=True))
    story += [PageBreak(), p(f"5. {word(lang, 'per_agency')}", s.h1)]
    for n, a in enumerate(report.agencies, start=1):
        if n > 1:
            story.append(PageBreak())
        story.append(p(f"5.{n}. {a.name} ({a.code}) — {word(lang, 'level')} {a.level}", s.h2))
        story += [_agency_figures(a, lang, width), Spacer(1, 3 * mm)]
        story += [article_summary(a, lang, width), Spacer(1, 3 * mm)]
        story += [trend_chart(a, lang, width, height=50 * mm), p(word(lang, "top_gaps"), s.h2)]
        story.append(gap_table(a.gaps[:AGENCY_TOP_GAPS], lang, width))
        if len(a.gaps) > AGENCY_TOP_GAPS:
            story.append(p(word(lang, "more_gaps", n=len(a.gaps) - AGENCY_TOP_GAPS), s.small))
    footer = f"{PROVINCE_CONTEXT.get(lang)} — {report.period.label(lang)}"
    return build(story, footer, lang, wide=True)
