"""``posture-collector report``: the periodic security report of an agency or of the
province, as PDF, XLSX or CSV, written to a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session

from collector import crud
from collector.db import create_db_engine, init_db
from collector.settings import Settings


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from collector import reports

    try:
        period = reports.parse_period(args.period)
    except reports.PeriodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fmt = args.format or (args.out.suffix.lstrip(".").lower() if args.out.suffix else "pdf")
    if fmt not in reports.FORMATS:
        print(
            f"error: unknown format {fmt!r}; one of: {', '.join(reports.FORMATS)}", file=sys.stderr
        )
        return 2
    engine = create_db_engine(settings)
    try:
        init_db(engine)
        with Session(engine) as session:
            if args.province:
                doc = reports.render_province(session, period, fmt, args.lang, settings=settings)
            else:
                agency = crud.get_agency_by_code(session, args.agency)
                if agency is None:
                    print(f"error: no agency with code {args.agency!r}", file=sys.stderr)
                    return 1
                doc = reports.render_agency(
                    session, agency, period, fmt, args.lang, settings=settings
                )
    finally:
        engine.dispose()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(doc.data)
    pages = f", {doc.pages} pages" if doc.pages else ""
    print(f"wrote {args.out} ({fmt}, {len(doc.data)} bytes{pages}; {period.label(args.lang)})")
    return 0


def register(sub: Any) -> None:
    """Add the ``report`` subcommand to the main parser."""
    rep = sub.add_parser(
        "report",
        help="write the periodic security report of an agency or of the province",
        description="Periodic security report (Vietnamese by default). Periods: 2026 (year), "
        "2026-H1 / 2026-H2 (six months), 2026-Q4 (quarter) or 2026-01-01..2026-06-30. "
        "CSV: the list of gaps, UTF-8 with BOM (opens in Excel).",
    )
    who = rep.add_mutually_exclusive_group(required=True)
    who.add_argument("--agency", metavar="CODE", help="the agency's code")
    who.add_argument("--province", action="store_true", help="every agency of the province")
    rep.add_argument("--period", required=True, help="e.g. 2026-H1, 2026, 2026-Q4")
    rep.add_argument(
        "--format",
        choices=("pdf", "xlsx", "csv"),
        default=None,
        help="default: from the --out file's extension, else pdf",
    )
    rep.add_argument("--out", required=True, type=Path, metavar="FILE")
    rep.add_argument("--lang", choices=("vi", "en"), default="vi")
    rep.set_defaults(func=cmd_report)
