"""Every visible string of the dashboard, in Vietnamese (default) and English."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import VERDICT_LABELS

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"

CATALOGUE: dict[str, dict[str, str]] = {
    # chrome
    "app_title": {"vi": "Bảng điều khiển an toàn thông tin", "en": "Security posture dashboard"},
    "skip": {"vi": "Bỏ qua đến nội dung chính", "en": "Skip to main content"},
    "nav_main": {"vi": "Điều hướng chính", "en": "Main navigation"},
    "nav_province": {"vi": "Toàn tỉnh", "en": "Province"},
    "nav_search": {"vi": "Tìm kiếm máy", "en": "Search machines"},
    "nav_my_agency": {"vi": "Đơn vị của tôi", "en": "My agency"},
    "logout": {"vi": "Đăng xuất", "en": "Log out"},
    "signed_in_as": {"vi": "Đăng nhập với tài khoản", "en": "Signed in as"},
    "switch_lang": {"vi": "English", "en": "Tiếng Việt"},
    "switch_lang_label": {"vi": "Chuyển sang tiếng Anh", "en": "Switch to Vietnamese"},
    # login
    "login_title": {"vi": "Đăng nhập", "en": "Log in"},
    "username": {"vi": "Tên đăng nhập", "en": "Username"},
    "password": {"vi": "Mật khẩu", "en": "Password"},
    "login_button": {"vi": "Đăng nhập", "en": "Log in"},
    "login_failed": {
        "vi": "Sai tên đăng nhập hoặc mật khẩu.",
        "en": "Wrong username or password.",
    },
    "login_rate": {
        "vi": "Quá nhiều lần đăng nhập từ địa chỉ này; vui lòng thử lại sau.",
        "en": "Too many login attempts from this address; please retry later.",
    },
    "logged_out": {"vi": "Bạn đã đăng xuất.", "en": "You have logged out."},
    # errors
    "forbidden_title": {"vi": "Không có quyền truy cập", "en": "Access denied"},
    "forbidden_text": {
        "vi": "Tài khoản của bạn không được phép xem trang này.",
        "en": "Your account may not see this page.",
    },
    "not_found_title": {"vi": "Không tìm thấy", "en": "Not found"},
    "not_found_text": {
        "vi": "Trang hoặc đối tượng này không tồn tại.",
        "en": "This page or object does not exist.",
    },
    "csrf_title": {"vi": "Yêu cầu không hợp lệ", "en": "Invalid request"},
    "csrf_text": {
        "vi": "Mã chống giả mạo yêu cầu (CSRF) bị thiếu hoặc không khớp. Hãy tải lại trang.",
        "en": "The anti-forgery (CSRF) token is missing or wrong. Reload the page.",
    },
    "back_home": {"vi": "Về trang chính", "en": "Back to the start page"},
    # province overview
    "province_title": {"vi": "Tổng quan toàn tỉnh", "en": "Province overview"},
    "province_caption": {
        "vi": "Kết quả đánh giá theo đơn vị và theo Điều",
        "en": "Verdicts by agency and by article",
    },
    "agency": {"vi": "Đơn vị", "en": "Agency"},
    "level": {"vi": "Mức độ", "en": "Level"},
    "machines": {"vi": "Số máy", "en": "Machines"},
    "silent": {"vi": "Máy mất liên lạc", "en": "Machines silent"},
    "trend": {"vi": "Xu hướng", "en": "Trend"},
    "article": {"vi": "Điều", "en": "Article"},
    "as_of": {"vi": "Số liệu tính lúc", "en": "Figures as of"},
    "no_agencies": {"vi": "Chưa có đơn vị nào.", "en": "No agency yet."},
    "trend_up": {"vi": "Cải thiện", "en": "Improving"},
    "trend_down": {"vi": "Xấu đi", "en": "Worsening"},
    "trend_same": {"vi": "Không đổi", "en": "Unchanged"},
    "trend_none": {"vi": "Chưa đủ dữ liệu", "en": "Not enough data"},
    "legend": {"vi": "Chú giải", "en": "Legend"},
    # agency page
    "agency_title": {"vi": "Đơn vị", "en": "Agency"},
    "articles_title": {"vi": "Kết quả theo Điều", "en": "Verdicts by article"},
    "verdict": {"vi": "Kết quả", "en": "Verdict"},
    "requirements_count": {"vi": "Số yêu cầu theo kết quả", "en": "Requirements by verdict"},
    "hosts_title": {"vi": "Máy và các điểm chưa đạt", "en": "Machines and their gaps"},
    "hostname": {"vi": "Tên máy", "en": "Hostname"},
    "role": {"vi": "Vai trò", "en": "Role"},
    "os": {"vi": "Hệ điều hành", "en": "Operating system"},
    "last_seen": {"vi": "Lần cuối liên lạc", "en": "Last seen"},
    "never": {"vi": "Chưa bao giờ", "en": "Never"},
    "gaps": {"vi": "Kiểm tra không đạt", "en": "Failed checks"},
    "unknowns": {"vi": "Kiểm tra chưa xác định", "en": "Undetermined checks"},
    "worst_gaps": {"vi": "Điểm chưa đạt chính", "en": "Main gaps"},
    "sort_by": {"vi": "Sắp xếp theo", "en": "Sort by"},
    "sort_worst": {"vi": "Nhiều điểm chưa đạt nhất", "en": "Worst first"},
    "sort_name": {"vi": "Tên máy", "en": "Hostname"},
    "sort_seen": {"vi": "Lâu chưa liên lạc nhất", "en": "Longest silent first"},
    "apply": {"vi": "Áp dụng", "en": "Apply"},
    "page": {"vi": "Trang", "en": "Page"},
    "of": {"vi": "trên", "en": "of"},
    "previous": {"vi": "Trang trước", "en": "Previous page"},
    "next": {"vi": "Trang sau", "en": "Next page"},
    "pagination": {"vi": "Phân trang", "en": "Pagination"},
    "no_hosts": {"vi": "Chưa có máy nào.", "en": "No machine yet."},
    "zones_title": {"vi": "Vùng mạng và kết quả phân vùng", "en": "Zones and segmentation"},
    "zone": {"vi": "Vùng", "en": "Zone"},
    "zone_kind": {"vi": "Loại vùng", "en": "Kind"},
    "cidrs": {"vi": "Dải địa chỉ", "en": "Address ranges"},
    "no_zones": {"vi": "Đơn vị chưa khai báo vùng mạng.", "en": "No network zone declared."},
    "probes_title": {"vi": "Kết quả thăm dò giữa các vùng", "en": "Probe results between zones"},
    "from_zone": {"vi": "Từ vùng", "en": "From zone"},
    "to_zone": {"vi": "Đến vùng", "en": "To zone"},
    "address": {"vi": "Địa chỉ", "en": "Address"},
    "port": {"vi": "Cổng", "en": "Port"},
    "state": {"vi": "Trạng thái", "en": "State"},
    "allowed": {"vi": "Được phép", "en": "Allowed"},
    "yes": {"vi": "Có", "en": "Yes"},
    "no": {"vi": "Không", "en": "No"},
    "no_probes": {"vi": "Chưa có kết quả thăm dò.", "en": "No probe results yet."},
    "unexpected_open": {"vi": "Mở ngoài quy định", "en": "Open but not allowed"},
    "attestations_title": {"vi": "Xác nhận của cán bộ", "en": "Attestations"},
    "requirement": {"vi": "Yêu cầu", "en": "Requirement"},
    "attested_by": {"vi": "Người xác nhận", "en": "Attested by"},
    "expires": {"vi": "Hết hiệu lực", "en": "Expires"},
    "status": {"vi": "Tình trạng", "en": "Status"},
    "st_active": {"vi": "Còn hiệu lực", "en": "In force"},
    "st_expired": {"vi": "Đã hết hạn", "en": "Expired"},
    "st_revoked": {"vi": "Đã thu hồi", "en": "Revoked"},
    "st_pending": {"vi": "Chưa có hiệu lực", "en": "Not yet in force"},
    "no_attestations": {"vi": "Chưa có xác nhận nào.", "en": "No attestation yet."},
    "waivers_title": {"vi": "Miễn trừ", "en": "Waivers"},
    "check": {"vi": "Kiểm tra", "en": "Check"},
    "scope_host": {"vi": "Máy áp dụng", "en": "Machine"},
    "whole_agency": {"vi": "Toàn đơn vị", "en": "Whole agency"},
    "justification": {"vi": "Lý do", "en": "Justification"},
    "author": {"vi": "Người đề nghị", "en": "Author"},
    "actions": {"vi": "Thao tác", "en": "Actions"},
    "revoke": {"vi": "Thu hồi", "en": "Revoke"},
    "revoked_ok": {"vi": "Đã thu hồi miễn trừ.", "en": "The waiver was revoked."},
    "no_waivers": {"vi": "Chưa có miễn trừ nào.", "en": "No waiver yet."},
    "incidents_title": {"vi": "Sổ theo dõi sự cố", "en": "Incident register"},
    "occurred_at": {"vi": "Thời điểm xảy ra", "en": "Occurred at"},
    "category": {"vi": "Loại sự cố", "en": "Category"},
    "scope": {"vi": "Phạm vi", "en": "Scope"},
    "title": {"vi": "Tiêu đề", "en": "Title"},
    "escalated": {"vi": "Đã báo cáo Sở", "en": "Escalated to the Sở"},
    "no_incidents": {"vi": "Chưa ghi nhận sự cố nào.", "en": "No incident recorded."},
    "history_title": {"vi": "Điểm tuân thủ theo thời gian", "en": "Score over time"},
    "history_empty": {
        "vi": "Chưa có bản ghi lịch sử tuân thủ.",
        "en": "No compliance history yet.",
    },
    "score": {"vi": "Tỷ lệ yêu cầu đạt", "en": "Share of requirements passed"},
    "date": {"vi": "Thời điểm", "en": "Date"},
    "reports_title": {"vi": "Báo cáo định kỳ", "en": "Periodic report"},
    "period": {"vi": "Kỳ báo cáo", "en": "Period"},
    "export_pdf": {"vi": "Xuất báo cáo PDF", "en": "Export PDF report"},
    "export_xlsx": {"vi": "Xuất báo cáo XLSX", "en": "Export XLSX report"},
    "export_csv": {"vi": "Xuất báo cáo CSV", "en": "Export CSV report"},
    "period_half1": {"vi": "6 tháng đầu năm {year}", "en": "First half of {year}"},
    "period_half2": {"vi": "6 tháng cuối năm {year}", "en": "Second half of {year}"},
    "period_year": {"vi": "Cả năm {year}", "en": "Year {year}"},
    "reports_missing_title": {"vi": "Chưa thể xuất báo cáo", "en": "Reports unavailable"},
    "reports_missing": {
        "vi": "Mô-đun tạo báo cáo (collector.reports) chưa được cài đặt trên bộ thu thập "
        "này, hoặc chưa hỗ trợ định dạng đã chọn. Vui lòng liên hệ quản trị viên.",
        "en": "The report module (collector.reports) is not installed on this collector, "
        "or does not support the chosen format. Please contact the administrator.",
    },
    "report_bad_request": {
        "vi": "Kỳ báo cáo hoặc định dạng không hợp lệ.",
        "en": "Invalid period or format.",
    },
    # machine page
    "host_title": {"vi": "Máy", "en": "Machine"},
    "facts_title": {"vi": "Thông tin máy", "en": "Facts"},
    "fqdn": {"vi": "Tên miền đầy đủ", "en": "FQDN"},
    "hardware": {"vi": "Phần cứng", "en": "Hardware"},
    "cpu": {"vi": "Bộ xử lý", "en": "CPU"},
    "memory": {"vi": "Bộ nhớ", "en": "Memory"},
    "agent_version": {"vi": "Phiên bản tác tử", "en": "Agent version"},
    "enrolled_at": {"vi": "Ngày đăng ký", "en": "Enrolled"},
    "collected_at": {"vi": "Thời điểm thu thập", "en": "Collected at"},
    "no_report": {
        "vi": "Máy này chưa gửi báo cáo nào.",
        "en": "This machine has not sent any report yet.",
    },
    "findings_title": {"vi": "Kết quả kiểm tra", "en": "Findings"},
    "severity": {"vi": "Mức nghiêm trọng", "en": "Severity"},
    "evidence": {"vi": "Bằng chứng", "en": "Evidence"},
    "remediation": {"vi": "Biện pháp khắc phục", "en": "Remediation"},
    "requirements_title": {"vi": "Kết quả theo yêu cầu", "en": "Requirement verdicts"},
    "software_title": {"vi": "Lịch sử thay đổi phần mềm", "en": "Software changes"},
    "change": {"vi": "Thay đổi", "en": "Change"},
    "package": {"vi": "Gói phần mềm", "en": "Package"},
    "old_version": {"vi": "Phiên bản cũ", "en": "Old version"},
    "new_version": {"vi": "Phiên bản mới", "en": "New version"},
    "ch_installed": {"vi": "Cài mới", "en": "Installed"},
    "ch_removed": {"vi": "Gỡ bỏ", "en": "Removed"},
    "ch_upgraded": {"vi": "Đổi phiên bản", "en": "Version changed"},
    "no_software_changes": {
        "vi": "Chưa ghi nhận thay đổi phần mềm.",
        "en": "No software change recorded.",
    },
    "sev_critical": {"vi": "Nghiêm trọng", "en": "Critical"},
    "sev_high": {"vi": "Cao", "en": "High"},
    "sev_medium": {"vi": "Trung bình", "en": "Medium"},
    "sev_low": {"vi": "Thấp", "en": "Low"},
    "role_server": {"vi": "Máy chủ", "en": "Server"},
    "role_workstation": {"vi": "Máy trạm", "en": "Workstation"},
    "role_unknown": {"vi": "Chưa rõ", "en": "Unknown"},
    # search
    "search_title": {"vi": "Tìm kiếm và lọc máy", "en": "Search and filter machines"},
    "any": {"vi": "Tất cả", "en": "Any"},
    "software_name": {"vi": "Tên phần mềm (chính xác)", "en": "Software name (exact)"},
    "software_version": {"vi": "Phiên bản bắt đầu bằng", "en": "Version starting with"},
    "search_button": {"vi": "Tìm", "en": "Search"},
    "results": {"vi": "Kết quả tìm kiếm", "en": "Results"},
    "no_results": {"vi": "Không có máy nào phù hợp.", "en": "No machine matches."},
    "found": {"vi": "Số máy tìm thấy", "en": "Machines found"},
    "verdict_filter_help": {
        "vi": "Kết quả của máy theo Điều đã chọn (hoặc theo bất kỳ Điều nào).",
        "en": "The machine's verdict on the chosen article (or on any article).",
    },
}

VERDICT_ORDER = ("fail", "unknown", "waived", "pass", "not_applicable")


class Translator:
    """``t("key")`` in the request's language; verdict labels from policies.model."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT_LANG

    def __call__(self, key: str, **params: object) -> str:
        entry = CATALOGUE[key]
        text = entry.get(self.lang, entry[DEFAULT_LANG])
        return text.format(**params) if params else text

    def verdict(self, status: str) -> str:
        labels: Mapping[str, str] = VERDICT_LABELS[self.lang]
        return labels.get(status, status)

    def text(self, value: object) -> str:
        """A ``policies.model.Text`` (or a {vi, en} dict) in the current language."""
        if value is None:
            return ""
        if isinstance(value, dict):
            return str(value.get(self.lang) or value.get(DEFAULT_LANG) or "")
        getter = getattr(value, "get", None)
        return str(getter(self.lang)) if getter is not None else str(value)

    def role(self, role: str | None) -> str:
        key = f"role_{role}"
        return self(key) if key in CATALOGUE else (role or self("role_unknown"))

    def severity(self, severity: str) -> str:
        key = f"sev_{severity}"
        return self(key) if key in CATALOGUE else severity
