"""The report's data as rows of plain values: shared by the XLSX and CSV exports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector import incidents
from collector.reports.data import (
    ATTESTATION_STATES,
    ROLE_LABELS,
    SEVERITY_LABELS,
    WAIVER_STATES,
    AgencyReport,
)
from collector.reports.labels import VERDICT_ORDER, fmt_date, fmt_datetime, verdict, word

SHEETS: dict[str, dict[str, str]] = {
    "vi": {
        "summary": "Tóm tắt",
        "requirements": "Yêu cầu",
        "gaps": "Lỗ hổng",
        "machines": "Máy",
        "attestations": "Chứng thực",
        "waivers": "Miễn trừ",
        "incidents": "Sự cố",
    },
    "en": {
        "summary": "Summary",
        "requirements": "Requirements",
        "gaps": "Gaps",
        "machines": "Machines",
        "attestations": "Attestations",
        "waivers": "Waivers",
        "incidents": "Incidents",
    },
}

Rows = list[list[Any]]


def _agency_cols(lang: str) -> list[str]:
    return [word(lang, "code"), word(lang, "agency")]


def gap_rows(reports: Sequence[AgencyReport], lang: str) -> tuple[list[str], Rows]:
    header = [
        *_agency_cols(lang),
        word(lang, "n"),
        word(lang, "check"),
        word(lang, "content"),
        word(lang, "requirement"),
        word(lang, "article"),
        word(lang, "verdict"),
        word(lang, "severity"),
        word(lang, "machines_concerned"),
        word(lang, "hosts"),
        word(lang, "remediation"),
        word(lang, "evidence"),
    ]
    rows: Rows = []
    for r in reports:
        for i, g in enumerate(r.gaps, start=1):
            rows.append(
                [
                    r.code,
                    r.name,
                    i,
                    g.key,
                    g.title.get(lang),
                    ", ".join(g.requirement_ids),
                    ", ".join(str(a) for a in g.articles),
                    verdict(lang, g.status),
                    SEVERITY_LABELS[g.severity].get(lang) if g.severity else "",
                    len(g.hosts),
                    ", ".join(g.hosts) if g.hosts else word(lang, "agency_wide"),
                    g.remediation.get(lang),
                    "\n".join(e.get(lang) for e in g.evidence),
                ]
            )
    return header, rows


def summary_rows(reports: Sequence[AgencyReport], lang: str) -> tuple[list[str], Rows]:
    """One row per agency and article, with the counts of requirements by verdict."""
    header = [
        *_agency_cols(lang),
        word(lang, "level"),
        word(lang, "machines"),
        word(lang, "silent_col"),
        word(lang, "article"),
        word(lang, "content"),
        word(lang, "verdict"),
        *[verdict(lang, v) for v in VERDICT_ORDER],
    ]
    rows: Rows = []
    for r in reports:
        for a in r.articles:
            rows.append(
                [
                    r.code,
                    r.name,
                    r.level,
                    r.machines,
                    len(r.silent),
                    a.article,
                    a.title.get(lang),
                    verdict(lang, a.status),
                    *[a.counts.get(v, 0) for v in VERDICT_ORDER],
                ]
            )
    return header, rows


def requirement_rows(reports: Sequence[AgencyReport], lang: str) -> tuple[list[str], Rows]:
    header = [
        *_agency_cols(lang),
        word(lang, "article"),
        word(lang, "requirement"),
        word(lang, "reference"),
        word(lang, "content"),
        word(lang, "verdict"),
        word(lang, "evidence"),
    ]
    rows: Rows = []
    for r in reports:
        for req in r.requirements():
            evidence = [e.get(lang) for e in req.evidence]
            if req.reason is not None:
                evidence.append(req.reason.get(lang))
            rows.append(
                [
                    r.code,
                    r.name,
                    req.article,
                    req.requirement_id,
                    req.reference.get(lang),
                    req.title.get(lang),
                    verdict(lang, req.status),
                    "\n".join(evidence),
                ]
            )
    return header, rows


def machine_rows(reports: Sequence[AgencyReport], lang: str) -> tuple[list[str], Rows]:
    header = [
        *_agency_cols(lang),
        word(lang, "hostname"),
        "FQDN",
        word(lang, "role"),
        word(lang, "os"),
        word(lang, "last_seen"),
        word(lang, "silent_col"),
        word(lang, "failed_checks"),
        word(lang, "unknown_checks"),
        word(lang, "check"),
    ]
    rows: Rows = []
    for r in reports:
        for h in r.hosts:
            rows.append(
                [
                    r.code,
                    r.name,
                    h.hostname,
                    h.fqdn or "",
                    ROLE_LABELS.get(h.role, ROLE_LABELS["unknown"]).get(lang),
                    h.os_family or "",
                    fmt_datetime(h.last_seen_at, lang) if h.last_seen_at else word(lang, "never"),
                    word(lang, "yes") if h.silent else word(lang, "no"),
                    len(h.failed_checks),
                    len(h.unknown_checks),
                    ", ".join(h.failed_checks),
                ]
            )
    return header, rows


def attestation_rows(reports: Sequence[AgencyReport], lang: str) -> tuple[list[str], Rows]:
    header = [
        *_agency_cols(lang),
        word(lang, "requirement"),
        word(lang, "content"),
        word(lang, "statement"),
        word(lang, "attested_by"),
        word(lang, "attested_at"),
        word(lang, "expires"),
        word(lang, "state"),
    ]
    rows: Rows = [
        [
            r.code,
            r.name,
            a.requirement_id,
            a.requirement.get(lang),
            a.statement,
            a.attested_by,
            fmt_date(a.attested_at, lang),
            fmt_date(a.expires_at, lang),
            ATTESTATION_STATES[a.state].get(lang),
        ]
        for r in reports
        for a in r.attestations
    ]
    return header, rows


def waiver_rows(reports: Sequence[AgencyReport], lang: str) -> tuple[list[str], Rows]:
    header = [
        *_agency_cols(lang),
        word(lang, "check"),
        word(lang, "content"),
        word(lang, "scope_hosts"),
        word(lang, "justification"),
        word(lang, "author"),
        word(lang, "created"),
        word(lang, "expires"),
        word(lang, "state"),
    ]
    rows: Rows = [
        [
            r.code,
            r.name,
            w.check_id,
            w.check_title.get(lang),
            w.hostname or word(lang, "agency_wide"),
            w.justification,
            w.author,
            fmt_date(w.created_at, lang),
            fmt_date(w.expires_at, lang),
            WAIVER_STATES[w.state].get(lang),
        ]
        for r in reports
        for w in r.waivers
    ]
    return header, rows


def incident_rows(reports: Sequence[AgencyReport], lang: str) -> tuple[list[str], Rows]:
    header = [
        *_agency_cols(lang),
        "#",
        word(lang, "incident_name"),
        word(lang, "category"),
        word(lang, "scope"),
        word(lang, "status"),
        word(lang, "machine"),
        word(lang, "occurred"),
        word(lang, "reported_by"),
        word(lang, "escalated_at"),
        word(lang, "escalated_to"),
        word(lang, "resolved"),
        word(lang, "handling"),
    ]
    rows: Rows = []
    for r in reports:
        for i in r.incidents:
            x = i.record
            rows.append(
                [
                    r.code,
                    r.name,
                    i.id,
                    x.title,
                    incidents.label(incidents.CATEGORIES, x.category, lang),
                    incidents.label(incidents.SCOPES, x.scope, lang),
                    incidents.label(incidents.STATUSES, x.status, lang),
                    i.hostname or "",
                    fmt_datetime(x.occurred_at, lang),
                    x.reported_by,
                    fmt_datetime(x.escalated_at, lang) if x.escalated_at else "",
                    x.escalated_to or "",
                    fmt_datetime(x.resolved_at, lang) if x.resolved_at else "",
                    x.handling,
                ]
            )
    return header, rows


def all_sheets(reports: Sequence[AgencyReport], lang: str) -> list[tuple[str, list[str], Rows]]:
    names = SHEETS.get(lang, SHEETS["vi"])
    return [
        (names["summary"], *summary_rows(reports, lang)),
        (names["requirements"], *requirement_rows(reports, lang)),
        (names["gaps"], *gap_rows(reports, lang)),
        (names["machines"], *machine_rows(reports, lang)),
        (names["attestations"], *attestation_rows(reports, lang)),
        (names["waivers"], *waiver_rows(reports, lang)),
        (names["incidents"], *incident_rows(reports, lang)),
    ]
