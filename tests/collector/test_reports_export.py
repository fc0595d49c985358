"""Periodic reports (PDF, XLSX, CSV) and the incident document, through the API and the CLI.

A realistic agency is seeded through the real API and ingest
(tests/reports/seed.py); the PDF's text is read back with ``pdftotext -layout``.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from collector import cli
from collector.reports.period import parse_period
from collector.settings import Settings
from tests.collector.conftest import ADMIN_HEADERS, Api
from tests.reports.seed import (
    AGENCY_NAME,
    BAD_HOST,
    GOOD_HOST,
    INCIDENT_TITLE,
    SILENT_HOST,
    WAIVER_JUSTIFICATION,
    Seeded,
    seed_agency,
)

pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="needs pdftotext (Debian: poppler-utils)"
)
AV_REMEDIATION = "Cài đặt phần mềm diệt virus do cơ quan lựa chọn"


def _year() -> str:
    from datetime import datetime

    from collector.reports.period import VN_TZ

    return str(datetime.now(VN_TZ).year)


def pdf_text(data: bytes, tmp_path: Path, name: str = "r.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    )
    return re.sub(r"[ \t]+", " ", out.stdout)


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed_agency(api)


def _get(api: Api, path: str, **params: str):
    return api.client.get(path, params=params, headers=ADMIN_HEADERS)


def test_agency_pdf_in_vietnamese(api: Api, seeded: Seeded, tmp_path: Path) -> None:
    r = _get(api, f"/api/v1/agencies/{seeded.agency_id}/report", period=_year(), format="pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    disposition = r.headers["content-disposition"]
    assert f'filename="bao-cao-attt-so-tnmt-{_year()}.pdf"' in disposition
    assert r.content.startswith(b"%PDF")
    text = pdf_text(r.content, tmp_path)
    one_line = " ".join(text.split())
    for expected in (
        "BÁO CÁO TÌNH HÌNH AN TOÀN, BẢO MẬT THÔNG TIN",
        "Sở Thông tin và Truyền thông tỉnh Bình Dương",
        AGENCY_NAME,
        f"Năm {_year()}",
        "Điều 14",
        "Điều 16",
        "Điều 17",
        "Điều 18",
        "Điều 19",
        "Điều 20",
        "Không đạt",
        "Đạt",
        "Chưa xác định",
        "Không áp dụng",
        "Được miễn trừ",
        "Danh sách tồn tại cần khắc phục",
        "Biện pháp khắc phục",
        "Sự cố gây mất an toàn, an ninh thông tin",
        "Thủ trưởng cơ quan",
    ):
        assert expected in one_line, expected
    assert AV_REMEDIATION in one_line
    # the gaps list names the failing machine, the silent list the silent one
    gaps = one_line.split("Danh sách tồn tại cần khắc phục", 1)[1]
    assert BAD_HOST in gaps.split("Máy không gửi báo cáo", 1)[0]
    silent = gaps.split("Máy không gửi báo cáo", 1)[1].split("Chứng thực", 1)[0]
    assert SILENT_HOST in silent and GOOD_HOST not in silent
    # attestation, waiver (with justification and expiry) and the incident of the period
    assert "Nguyễn Văn An, Trưởng phòng CNTT" in one_line
    # long cell texts wrap inside their column: look for their first words
    assert WAIVER_JUSTIFICATION[:22] in one_line
    assert INCIDENT_TITLE[:21] in one_line
    assert "Đang hiệu lực" in one_line


def test_agency_pdf_in_english(api: Api, seeded: Seeded, tmp_path: Path) -> None:
    r = _get(
        api,
        f"/api/v1/agencies/{seeded.agency_id}/report",
        period=f"{_year()}-Q4",
        format="pdf",
        lang="en",
    )
    assert r.status_code == 200, r.text
    assert f"bao-cao-attt-so-tnmt-{_year()}-Q4-en.pdf" in r.headers["content-disposition"]
    text = " ".join(pdf_text(r.content, tmp_path).split())
    assert "INFORMATION SECURITY POSTURE REPORT" in text
    assert "Article 19" in text and "Fail" in text and "Remediation" in text
    assert "Install the anti-virus product chosen by the agency" in text
    assert AGENCY_NAME in text  # names keep their diacritics


def test_agency_xlsx(api: Api, seeded: Seeded) -> None:
    r = _get(api, f"/api/v1/agencies/{seeded.agency_id}/report", period=_year(), format="xlsx")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == [
        "Tóm tắt",
        "Yêu cầu",
        "Lỗ hổng",
        "Máy",
        "Chứng thực",
        "Miễn trừ",
        "Sự cố",
    ]
    summary = list(wb["Tóm tắt"].iter_rows(values_only=True))
    header = summary[0]
    article = header.index("Điều")
    verdict = header.index("Kết quả")
    by_article = {row[article]: row for row in summary[1:]}
    assert set(by_article) == {14, 16, 17, 18, 19, 20}
    assert by_article[19][verdict] == "Không đạt"
    assert by_article[19][header.index("Số máy đã đăng ký")] == 3
    assert by_article[19][header.index("Không gửi báo cáo")] >= 1
    gaps = list(wb["Lỗ hổng"].iter_rows(values_only=True))
    gh = gaps[0]
    av = [row for row in gaps[1:] if row[gh.index("Kiểm tra")] == "av_installed"]
    assert len(av) == 1
    assert av[0][gh.index("Kết quả")] == "Không đạt"
    assert av[0][gh.index("Máy liên quan")] == BAD_HOST
    assert AV_REMEDIATION in av[0][gh.index("Biện pháp khắc phục")]
    machines = list(wb["Máy"].iter_rows(values_only=True))
    names = {row[machines[0].index("Tên máy")]: row for row in machines[1:]}
    assert set(names) == {GOOD_HOST, BAD_HOST, SILENT_HOST}
    assert names[SILENT_HOST][machines[0].index("Không gửi báo cáo")] == "Có"
    waivers = list(wb["Miễn trừ"].iter_rows(values_only=True))
    assert waivers[1][waivers[0].index("Lý do")] == WAIVER_JUSTIFICATION
    assert waivers[1][waivers[0].index("Phạm vi")] == BAD_HOST
    incidents = list(wb["Sự cố"].iter_rows(values_only=True))
    titles = {row[incidents[0].index("Tên sự cố")] for row in incidents[1:]}
    assert INCIDENT_TITLE in titles and len(titles) == 2
    assert len(list(wb["Chứng thực"].iter_rows())) == 2


def test_agency_csv_has_bom_and_gaps(api: Api, seeded: Seeded) -> None:
    r = _get(api, f"/api/v1/agencies/{seeded.agency_id}/report", period=_year(), format="csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    av = [row for row in rows if row["Kiểm tra"] == "av_installed"]
    assert av and av[0]["Kết quả"] == "Không đạt" and av[0]["Máy liên quan"] == BAD_HOST
    assert av[0]["Mã đơn vị"] == "so-tnmt"
    assert AV_REMEDIATION in av[0]["Biện pháp khắc phục"]
    # the waived check of the bad machine is not a gap
    assert not [row for row in rows if row["Kiểm tra"] == "av_signatures_fresh"]


def test_incidents_outside_the_period_are_left_out(api: Api, seeded: Seeded) -> None:
    r = _get(
        api,
        f"/api/v1/agencies/{seeded.agency_id}/report",
        period="2021-01-01..2021-06-30",
        format="xlsx",
    )
    assert r.status_code == 200, r.text
    wb = load_workbook(io.BytesIO(r.content))
    assert len(list(wb["Sự cố"].iter_rows())) == 1  # the header only
    assert len(list(wb["Miễn trừ"].iter_rows())) == 1
    assert "bao-cao-attt-so-tnmt-2021-01-01_2021-06-30.xlsx" in r.headers["content-disposition"]


def test_report_parameters_are_checked(api: Api, seeded: Seeded) -> None:
    base = f"/api/v1/agencies/{seeded.agency_id}/report"
    r = _get(api, base, period="2026-H3", format="pdf")
    assert r.status_code == 422 and "2026-H3" in r.json()["detail"]
    assert _get(api, base, period="2026", format="docx").status_code == 422
    assert _get(api, base, period="2026", format="pdf", lang="fr").status_code == 422
    assert _get(api, "/api/v1/agencies/9999/report", period="2026").status_code == 404


def test_another_agencys_admin_is_refused(api: Api, seeded: Seeded) -> None:
    r = api.client.post(
        "/api/v1/users",
        json={
            "username": "admin-ben-cat",
            "role": "agency_admin",
            "agency_id": seeded.other_agency_id,
            "password": "mật-khẩu-đủ-dài-2026",
        },
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    token = api.client.post(
        "/api/v1/auth/token",
        json={"username": "admin-ben-cat", "password": "mật-khẩu-đủ-dài-2026"},
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    own = api.client.get(
        f"/api/v1/agencies/{seeded.other_agency_id}/report",
        params={"period": _year(), "format": "csv"},
        headers=headers,
    )
    assert own.status_code == 200
    for path in (
        f"/api/v1/agencies/{seeded.agency_id}/report",
        f"/api/v1/incidents/{seeded.incident_id}/report.pdf",
        "/api/v1/province/report",
    ):
        r = api.client.get(path, params={"period": _year(), "format": "csv"}, headers=headers)
        assert r.status_code == 403, path


def test_province_report(api: Api, seeded: Seeded, tmp_path: Path) -> None:
    r = _get(api, "/api/v1/province/report", period=f"{_year()}-H2", format="pdf")
    assert r.status_code == 200, r.text
    assert f"bao-cao-attt-tinh-{_year()}-H2.pdf" in r.headers["content-disposition"]
    text = " ".join(pdf_text(r.content, tmp_path).split())
    for expected in (
        "BÁO CÁO TỔNG HỢP TÌNH HÌNH AN TOÀN, BẢO MẬT THÔNG TIN CỦA TỈNH",
        "Kết quả theo cơ quan, đơn vị và điều",
        "Các tồn tại phổ biến nhất trên địa bàn tỉnh",
        "Cơ quan, đơn vị có máy không gửi báo cáo",
        AGENCY_NAME,
        "UBND thị xã Bến Cát",
        "Điều 16",
        "Điều 19",
        AV_REMEDIATION,
    ):
        assert expected in text, expected
    r = _get(api, "/api/v1/province/report", period=_year(), format="xlsx")
    wb = load_workbook(io.BytesIO(r.content))
    codes = {row[0] for row in wb["Tóm tắt"].iter_rows(min_row=2, values_only=True)}
    assert codes == {"so-tnmt", "so-tnmt-khac"}


def test_incident_pdf(api: Api, seeded: Seeded, tmp_path: Path) -> None:
    r = api.client.get(f"/api/v1/incidents/{seeded.incident_id}/report.pdf", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert f"bao-cao-su-co-so-tnmt-{seeded.incident_id}.pdf" in r.headers["content-disposition"]
    text = " ".join(pdf_text(r.content, tmp_path).split())
    for expected in (
        "BÁO CÁO SỰ CỐ AN TOÀN THÔNG TIN",
        AGENCY_NAME,
        INCIDENT_TITLE,
        "Sự cố gây mất an toàn, an ninh thông tin",
        "Diện rộng, nghiêm trọng",
        "Đã xử lý xong",
        "Cách ly máy khỏi mạng",
        "Sở Thông tin và Truyền thông",
        "Người báo cáo",
        "Thủ trưởng cơ quan",
        "Trần Thị Bình",
        BAD_HOST,
    ):
        assert expected in text, expected
    assert (
        api.client.get("/api/v1/incidents/99999/report.pdf", headers=ADMIN_HEADERS).status_code
        == 404
    )


def test_cli_report(
    api: Api, seeded: Seeded, settings: Settings, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("POSTURE_DATABASE_URL", settings.database_url)
    out = tmp_path / "bao-cao.pdf"
    code = cli.main(
        [
            "report",
            "--agency",
            "so-tnmt",
            "--period",
            f"{_year()}-H2",
            "--format",
            "pdf",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = " ".join(pdf_text(out.read_bytes(), tmp_path).split())
    assert AGENCY_NAME in text and "Điều 19" in text and "Không đạt" in text
    assert str(out) in capsys.readouterr().out
    out_csv = tmp_path / "tinh.csv"
    code = cli.main(
        [
            "report",
            "--province",
            "--period",
            _year(),
            "--format",
            "csv",
            "--out",
            str(out_csv),
            "--lang",
            "en",
        ]
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out_csv.read_bytes().decode("utf-8-sig"))))
    assert {r["Agency code"] for r in rows} >= {"so-tnmt"}
    assert cli.main(["report", "--agency", "khong-co", "--period", "2026", "--out", str(out)]) == 1
    assert "khong-co" in capsys.readouterr().err
    assert (
        cli.main(["report", "--agency", "so-tnmt", "--period", "2026-13", "--out", str(out)]) == 2
    )
    assert "2026-13" in capsys.readouterr().err


def test_report_verdicts_equal_agency_articles(api: Api, seeded: Seeded) -> None:
    """The report computes the fleet rules once; its verdicts are those of the API."""
    from sqlmodel import Session

    from collector import compliance
    from collector.models import Agency, utcnow
    from collector.reports import data

    now = utcnow()
    with Session(api.engine) as session:
        agency = session.get(Agency, seeded.agency_id)
        assert agency is not None
        report = data.agency_report(session, agency, parse_period(_year()), now=now)
        expected = compliance.agency_articles(session, agency, now=now)
    assert [a.model_dump() for a in report.articles] == [a.model_dump() for a in expected]
    assert {a.article: a.status for a in report.articles}[19] == "fail"


def test_control_characters_in_names_do_not_break_the_workbook() -> None:
    from openpyxl import load_workbook

    from collector.reports.xlsx import _cell_value

    assert _cell_value("Sở\x00TT\x1b&TT") == "Sở\ufffdTT\ufffd&TT"
    assert _cell_value(3) == 3
    import io

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append([_cell_value("a\x07b")])  # type: ignore[union-attr]
    buffer = io.BytesIO()
    wb.save(buffer)
    assert load_workbook(io.BytesIO(buffer.getvalue())).active["A1"].value == "a\ufffdb"  # type: ignore[index]
