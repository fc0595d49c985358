"""The report's data as an XLSX workbook (openpyxl), one sheet per part of the report.

Sheets: Tóm tắt (agency × article, with counts per verdict), Yêu cầu, Lỗ hổng
(the gaps, every machine listed), Máy, Chứng thực, Miễn trừ, Sự cố; English
names with ``lang="en"``.  Each row names its agency, so the province
workbook is the agencies' rows one after the other.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from collector.reports.data import AgencyReport, ProvinceReport
from collector.reports.labels import VERDICT_ORDER, check_lang, verdict, word
from collector.reports.tables import all_sheets

_FILLS = {
    "pass": "C8E6C9",
    "fail": "FFCDD2",
    "unknown": "FFF3C4",
    "not_applicable": "EEEEEE",
    "waived": "D0E4F7",
}
_MAX_WIDTH = 60


def _cell_value(value: object) -> object:
    """Control characters (from a machine's facts, an agency name…) are illegal in
    XLSX; they are replaced by U+FFFD rather than failing the whole report."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return value


def workbook_bytes(reports: Sequence[AgencyReport], lang: str = "vi") -> bytes:
    check_lang(lang)
    fills = {verdict(lang, v): PatternFill("solid", fgColor=_FILLS[v]) for v in VERDICT_ORDER}
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    for name, header, rows in all_sheets(reports, lang):
        ws = wb.create_sheet(name)
        ws.append(header)
        for cell in ws[1]:
            cell.font = Font(bold=True, color="FFFFFF")
            cell.fill = PatternFill("solid", fgColor="1F4E79")
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        verdict_cols = [i for i, h in enumerate(header, start=1) if h == word(lang, "verdict")]
        for row in rows:
            ws.append([_cell_value(v) for v in row])
        for col in verdict_cols:
            for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
                fill = fills.get(str(cell.value))
                if fill is not None:
                    cell.fill = fill
        for i, h in enumerate(header, start=1):
            longest = max([len(str(h))] + [len(str(r[i - 1]).split("\n")[0]) for r in rows[:500]])
            ws.column_dimensions[get_column_letter(i)].width = min(max(10, longest + 2), _MAX_WIDTH)
        for row_cells in ws.iter_rows(min_row=2):
            for cell in row_cells:
                if isinstance(cell.value, str) and (
                    len(cell.value) > _MAX_WIDTH or "\n" in cell.value
                ):
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def agency_xlsx(report: AgencyReport, lang: str = "vi") -> bytes:
    return workbook_bytes([report], lang)


def province_xlsx(report: ProvinceReport, lang: str = "vi") -> bytes:
    return workbook_bytes(report.agencies, lang)
