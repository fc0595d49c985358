"""The words of the reports, in Vietnamese (default) and English, and date formats."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.reports.period import VN_TZ
from policies.model import VERDICT_LABELS, Verdict

LANGS = ("vi", "en")

WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "BÁO CÁO TÌNH HÌNH AN TOÀN, BẢO MẬT THÔNG TIN",
        "province_title": "BÁO CÁO TỔNG HỢP TÌNH HÌNH AN TOÀN, BẢO MẬT THÔNG TIN CỦA TỈNH",
        "to": "Kính gửi",
        "framework": "Căn cứ",
        "agency": "Cơ quan, đơn vị",
        "code": "Mã đơn vị",
        "level": "Mức độ",
        "period": "Kỳ báo cáo",
        "generated": "Ngày lập báo cáo",
        "due": "Hạn gửi báo cáo năm về Sở Thông tin và Truyền thông: trước ngày 01/11/{year}",
        "as_of_note": "Kết quả đánh giá là kết quả tại thời điểm lập báo cáo, tính trên báo cáo "
        "mới nhất của từng máy; lịch sử, sự cố, miễn trừ và chứng thực là của kỳ báo cáo.",
        "summary": "Tóm tắt",
        "machines": "Số máy đã đăng ký",
        "silent": "Số máy không gửi báo cáo quá {hours} giờ",
        "gaps_count": "Số tồn tại cần khắc phục",
        "incidents_count": "Số sự cố trong kỳ",
        "article": "Điều",
        "article_col": "Điều khoản",
        "verdict": "Kết quả",
        "by_article": "Kết quả theo điều và yêu cầu",
        "requirement": "Yêu cầu",
        "reference": "Căn cứ",
        "content": "Nội dung",
        "evidence": "Bằng chứng",
        "gaps": "Danh sách tồn tại cần khắc phục",
        "no_gaps": "Không có tồn tại nào.",
        "check": "Kiểm tra",
        "severity": "Mức nghiêm trọng",
        "hosts": "Máy liên quan",
        "remediation": "Biện pháp khắc phục",
        "and_more": "… và {n} máy khác",
        "silent_list": "Máy không gửi báo cáo",
        "no_silent": "Mọi máy đều gửi báo cáo đúng hạn.",
        "hostname": "Tên máy",
        "role": "Vai trò",
        "os": "Hệ điều hành",
        "last_seen": "Báo cáo gần nhất",
        "never": "Chưa bao giờ",
        "failed_checks": "Số kiểm tra không đạt",
        "unknown_checks": "Số kiểm tra chưa xác định",
        "silent_col": "Không gửi báo cáo",
        "yes": "Có",
        "no": "Không",
        "attestations": "Chứng thực",
        "no_attestations": "Không có chứng thực nào có hiệu lực trong kỳ.",
        "statement": "Nội dung xác nhận",
        "attested_by": "Người xác nhận",
        "attested_at": "Ngày xác nhận",
        "expires": "Hiệu lực đến",
        "state": "Tình trạng",
        "waivers": "Miễn trừ",
        "no_waivers": "Không có miễn trừ nào có hiệu lực trong kỳ.",
        "justification": "Lý do",
        "author": "Người phê duyệt",
        "scope_hosts": "Phạm vi",
        "created": "Ngày lập",
        "incidents": "Sự cố trong kỳ",
        "no_incidents": "Không ghi nhận sự cố nào trong kỳ.",
        "category": "Loại sự cố",
        "scope": "Mức độ ảnh hưởng",
        "status": "Trạng thái",
        "occurred": "Thời điểm xảy ra",
        "escalated": "Báo cáo Sở TT&TT",
        "not_escalated": "Chưa báo cáo",
        "trends": "Xu hướng tuân thủ trong kỳ",
        "trend_axis": "Tỷ lệ yêu cầu đạt (%)",
        "no_history": "Chưa có dữ liệu lịch sử tuân thủ trong kỳ.",
        "page": "Trang {n}",
        "agencies": "Số cơ quan, đơn vị",
        "matrix": "Kết quả theo cơ quan, đơn vị và điều",
        "worst_gaps": "Các tồn tại phổ biến nhất trên địa bàn tỉnh",
        "agencies_concerned": "Đơn vị liên quan",
        "machines_concerned": "Số máy",
        "silent_agencies": "Cơ quan, đơn vị có máy không gửi báo cáo",
        "no_silent_agencies": "Không có đơn vị nào có máy không gửi báo cáo.",
        "per_agency": "Chi tiết theo cơ quan, đơn vị",
        "top_gaps": "Tồn tại chính",
        "more_gaps": "… và {n} tồn tại khác (xem bản XLSX)",
        "signature_left": "Người lập báo cáo",
        "signature_right": "Thủ trưởng cơ quan",
        "signature_hint": "(Ký, ghi rõ họ tên)",
        "signature_hint_seal": "(Ký tên, đóng dấu)",
        "agency_wide": "Toàn đơn vị",
        "time_note": "Thời gian theo giờ Việt Nam (UTC+7).",
        "n": "STT",
        # incident document
        "incident_title": "BÁO CÁO SỰ CỐ AN TOÀN THÔNG TIN",
        "incident_no": "Số hiệu sự cố",
        "incident_name": "Tên sự cố",
        "machine": "Máy bị ảnh hưởng",
        "detected": "Thời điểm phát hiện",
        "reported_by": "Người báo cáo",
        "leadership": "Đã báo cáo lãnh đạo cơ quan",
        "escalated_at": "Thời điểm báo cáo Sở TT&TT",
        "escalated_to": "Nơi nhận báo cáo vượt cấp",
        "resolved": "Thời điểm xử lý xong",
        "description": "Mô tả sự cố",
        "handling": "Các biện pháp đã xử lý",
        "escalation": "Báo cáo, đề nghị hỗ trợ",
        "none": "Không có",
        "incident_basis": "Theo Điều 20 khoản 5 Quy chế ban hành kèm theo Quyết định "
        "số 02/2013/QĐ-UBND của UBND tỉnh Bình Dương.",
        "place_date": "Bình Dương, ngày {d} tháng {m} năm {y}",
    },
    "en": {
        "title": "INFORMATION SECURITY POSTURE REPORT",
        "province_title": "PROVINCE-WIDE INFORMATION SECURITY POSTURE REPORT",
        "to": "To",
        "framework": "Framework",
        "agency": "Agency",
        "code": "Agency code",
        "level": "Mức độ (level)",
        "period": "Reporting period",
        "generated": "Report date",
        "due": "Annual reports are due at the Sở TT&TT before 01/11/{year}",
        "as_of_note": "Verdicts are those at the report date, from each machine's latest "
        "report; history, incidents, waivers and attestations are those of the period.",
        "summary": "Summary",
        "machines": "Enrolled machines",
        "silent": "Machines silent for more than {hours} hours",
        "gaps_count": "Gaps to fix",
        "incidents_count": "Incidents in the period",
        "article": "Article",
        "article_col": "Article",
        "verdict": "Verdict",
        "by_article": "Verdicts by article and requirement",
        "requirement": "Requirement",
        "reference": "Reference",
        "content": "Content",
        "evidence": "Evidence",
        "gaps": "Gaps to fix",
        "no_gaps": "No gaps.",
        "check": "Check",
        "severity": "Severity",
        "hosts": "Machines concerned",
        "remediation": "Remediation",
        "and_more": "… and {n} more machines",
        "silent_list": "Silent machines",
        "no_silent": "Every machine reports on time.",
        "hostname": "Hostname",
        "role": "Role",
        "os": "OS",
        "last_seen": "Last report",
        "never": "Never",
        "failed_checks": "Failed checks",
        "unknown_checks": "Undetermined checks",
        "silent_col": "Silent",
        "yes": "Yes",
        "no": "No",
        "attestations": "Attestations",
        "no_attestations": "No attestation in force during the period.",
        "statement": "Statement",
        "attested_by": "Attested by",
        "attested_at": "Attested on",
        "expires": "Valid until",
        "state": "State",
        "waivers": "Waivers",
        "no_waivers": "No waiver in force during the period.",
        "justification": "Justification",
        "author": "Approved by",
        "scope_hosts": "Scope",
        "created": "Created",
        "incidents": "Incidents of the period",
        "no_incidents": "No incident recorded during the period.",
        "category": "Category",
        "scope": "Scope",
        "status": "Status",
        "occurred": "Occurred",
        "escalated": "Reported to the Sở TT&TT",
        "not_escalated": "Not reported",
        "trends": "Compliance trend over the period",
        "trend_axis": "Share of requirements passed (%)",
        "no_history": "No compliance history in the period.",
        "page": "Page {n}",
        "agencies": "Agencies",
        "matrix": "Verdicts by agency and article",
        "worst_gaps": "Most widespread gaps in the province",
        "agencies_concerned": "Agencies concerned",
        "machines_concerned": "Machines",
        "silent_agencies": "Agencies with silent machines",
        "no_silent_agencies": "No agency has silent machines.",
        "per_agency": "Details by agency",
        "top_gaps": "Main gaps",
        "more_gaps": "… and {n} more gaps (see the XLSX)",
        "signature_left": "Prepared by",
        "signature_right": "Head of the agency",
        "signature_hint": "(Signature, full name)",
        "signature_hint_seal": "(Signature and seal)",
        "agency_wide": "Agency-wide",
        "time_note": "Times in Vietnam time (UTC+7).",
        "n": "No.",
        "incident_title": "INFORMATION SECURITY INCIDENT REPORT",
        "incident_no": "Incident number",
        "incident_name": "Incident",
        "machine": "Machine affected",
        "detected": "Detected",
        "reported_by": "Reported by",
        "leadership": "Agency leadership informed",
        "escalated_at": "Reported to the Sở TT&TT",
        "escalated_to": "Escalated to",
        "resolved": "Resolved",
        "description": "Description",
        "handling": "Handling",
        "escalation": "Escalation and requests for support",
        "none": "None",
        "incident_basis": "Under Article 20 clause 5 of the Rules issued with Decision "
        "02/2013/QĐ-UBND of the People's Committee of Bình Dương province.",
        "place_date": "Bình Dương, {y}-{m}-{d}",
    },
}


def word(lang: str, key: str, **params: object) -> str:
    text = WORDS.get(lang, WORDS["vi"])[key]
    return text.format(**params) if params else text


def verdict(lang: str, status: str) -> str:
    labels = VERDICT_LABELS.get(lang, VERDICT_LABELS["vi"])
    return labels.get(status, status)  # type: ignore[call-overload]


VERDICT_ORDER: tuple[Verdict, ...] = ("pass", "fail", "unknown", "not_applicable", "waived")


def local(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(VN_TZ)


def fmt_date(value: datetime | None, lang: str) -> str:
    if value is None:
        return "—"
    return local(value).strftime("%d/%m/%Y" if lang != "en" else "%Y-%m-%d")


def fmt_datetime(value: datetime | None, lang: str) -> str:
    if value is None:
        return "—"
    return local(value).strftime("%H:%M %d/%m/%Y" if lang != "en" else "%Y-%m-%d %H:%M")


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; one of: {', '.join(LANGS)}")
    return lang
