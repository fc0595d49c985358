"""The list of gaps as one CSV file, UTF-8 with a byte order mark so that Excel
shows the Vietnamese text correctly; comma-separated, one row per gap (check,
fleet rule or requirement) and agency, with every machine concerned in one cell.

The other parts of the report (requirements, machines, waivers…) are in the XLSX.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from collector.reports.data import AgencyReport, ProvinceReport
from collector.reports.labels import check_lang
from collector.reports.tables import gap_rows


def gaps_csv(reports: Sequence[AgencyReport], lang: str = "vi") -> bytes:
    check_lang(lang)
    header, rows = gap_rows(reports, lang)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def agency_csv(report: AgencyReport, lang: str = "vi") -> bytes:
    return gaps_csv([report], lang)


def province_csv(report: ProvinceReport, lang: str = "vi") -> bytes:
    return gaps_csv(report.agencies, lang)
