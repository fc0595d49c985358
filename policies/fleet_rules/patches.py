"""Điều 19 khoản 2: "phải thường xuyên kiểm tra để phát hiện lỗi và tổ chức khắc phục".

The scanner's own regular runs are the evidence of regular checks for flaws:
every host must have reported within the silence window, and its latest
report must have let the pending-security-update check reach a verdict.
"""

from __future__ import annotations

from policies.fleet import FleetContext
from policies.fleet_rules.antivirus import listing
from policies.model import Text
from policies.registry import Outcome, failed, fleet_rule, passed, undetermined

CHECK_ID = "patch_security_pending"
SILENT = Text(vi="không gửi báo cáo quá {hours} giờ", en="silent for over {hours} hours")
UNCHECKED = Text(vi="chưa xác định được bản vá đang chờ", en="pending patches undetermined")


@fleet_rule("fleet_patch_coverage")
def fleet_patch_coverage(ctx: FleetContext) -> Outcome:
    if not ctx.hosts:
        return undetermined("no_hosts")
    limit_h = ctx.param("fleet", "max_silence_hours")
    silent: list[str] = []
    unchecked: list[str] = []
    for host in ctx.managed():
        if host.last_seen_at is None or (
            (ctx.now - host.last_seen_at).total_seconds() > limit_h * 3600
        ):
            silent.append(host.hostname)
            continue
        finding = host.findings.get(CHECK_ID)
        if finding is None or finding.status == "unknown":
            unchecked.append(host.hostname)
    total = len(ctx.hosts)
    params = {
        "total": total,
        "checked": total - len(silent) - len(unchecked),
        "silent": silent,
        "unchecked": unchecked,
        "max_hours": limit_h,
        "gaps": listing(
            (Text(vi=SILENT.vi.format(hours=limit_h), en=SILENT.en.format(hours=limit_h)), silent),
            (UNCHECKED, unchecked),
        ),
    }
    if silent or unchecked:
        return failed("gaps", **params)
    return passed("all_checked", **params)
