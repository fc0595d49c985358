"""Readable terminal tables of verdicts, in Vietnamese by default."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text as RichText

from policies.model import VERDICT_LABELS, ArticleVerdict, Finding

_STYLE = {"pass": "green", "fail": "bold red", "unknown": "yellow", "not_applicable": "dim"}

_HEAD = {
    "vi": {
        "req": "Yêu cầu",
        "content": "Nội dung",
        "verdict": "Kết quả",
        "evidence": "Bằng chứng",
        "article": "Điều",
        "summary": "Tổng hợp",
        "check": "Kiểm tra",
        "fix": "Biện pháp khắc phục",
    },
    "en": {
        "req": "Requirement",
        "content": "Content",
        "verdict": "Verdict",
        "evidence": "Evidence",
        "article": "Article",
        "summary": "Summary",
        "check": "Check",
        "fix": "Remediation",
    },
}


def verdict_cell(status: str, lang: str) -> RichText:
    return RichText(VERDICT_LABELS[lang][status], style=_STYLE[status])  # type: ignore[index]


def articles_table(articles: Iterable[ArticleVerdict], title: str, lang: str = "vi") -> Table:
    """One row per requirement, grouped under its article."""
    h = _HEAD[lang]
    table = Table(title=title, show_lines=True, expand=True)
    table.add_column(h["req"], no_wrap=True)
    table.add_column(h["content"], ratio=3, min_width=16)
    table.add_column(h["verdict"], no_wrap=True)
    table.add_column(h["evidence"], ratio=4, min_width=16)
    for article in articles:
        table.add_row(
            RichText(f"{h['article']} {article.article}", style="bold"),
            RichText(article.title.get(lang), style="bold"),
            verdict_cell(article.status, lang),
            "",
            end_section=True,
        )
        for req in article.requirements:
            lines = [e.get(lang) for e in req.evidence]
            if req.reason is not None:
                lines.append(req.reason.get(lang))
            content = RichText(req.title.get(lang))
            content.append("\n" + req.reference.get(lang), style="dim")
            table.add_row(
                req.requirement_id,
                content,
                verdict_cell(req.status, lang),
                "\n".join(lines),
            )
    return table


def failures_table(findings: Iterable[Finding], lang: str = "vi") -> Table | None:
    """What to fix: failed and undetermined checks with their remediation."""
    h = _HEAD[lang]
    rows = [f for f in findings if f.status in ("fail", "unknown")]
    if not rows:
        return None
    title = "Cần khắc phục" if lang == "vi" else "To fix"
    table = Table(title=title, show_lines=True, expand=True)
    table.add_column(h["check"], no_wrap=True)
    table.add_column(h["verdict"], no_wrap=True)
    table.add_column(h["fix"], ratio=3)
    order = {"fail": 0, "unknown": 1}
    for f in sorted(rows, key=lambda f: (order[f.status], f.check_id)):
        table.add_row(
            f"{f.check_id}\n{', '.join(f.requirement_ids)}",
            verdict_cell(f.status, lang),
            f.remediation.get(lang),
        )
    return table


def make_console(width: int | None = None) -> Console:
    return Console(width=width, soft_wrap=False, highlight=False)
