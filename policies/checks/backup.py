"""Điều 17 khoản 1: "Định kỳ thực hiện sao lưu dữ liệu (tối thiểu 01 lần/tuần)"."""

from __future__ import annotations

from agent.report import BackupEvidence, BackupSection
from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined

AGENT_CONFIG = "/etc/posture-agent/backup.toml"


def _section(ctx: EvalContext) -> BackupSection:
    section = ctx.report.backup
    assert section is not None  # the engine does not call a predicate without its section
    return section


def _label(e: BackupEvidence) -> str:
    return f"{e.tool} {e.location}" if e.location else e.tool


@check("backup_recent")
def backup_recent(ctx: EvalContext) -> Outcome:
    section = _section(ctx)
    limit = ctx.param("backup", "max_age_days")
    dated = [e for e in section.evidence if e.newest_at is not None]
    # newest_backup_at is the agent's summary; the evidence is the fallback.
    newest_at = section.newest_backup_at or max(
        (e.newest_at for e in dated if e.newest_at is not None), default=None
    )
    if newest_at is not None:
        source = next((e for e in dated if e.newest_at == newest_at), None)
        params = {
            "source": _label(source) if source else "?",
            "newest_at": newest_at,
            "age_days": round(ctx.age_days(newest_at), 1),
            "max_days": limit,
        }
        if params["age_days"] <= limit:
            return passed("recent", **params)
        return failed("stale", **params)
    details = [f"{_label(e)}: {e.detail}" for e in section.evidence if e.detail]
    scheduled = sorted({e.tool for e in section.evidence if e.scheduled})
    if scheduled:
        return undetermined(
            "scheduled_no_date", tools=scheduled, details=details, config=AGENT_CONFIG
        )
    found = sorted({*section.tools_installed, *(e.tool for e in section.evidence)})
    if found:
        return undetermined("no_date", tools=found, details=details, config=AGENT_CONFIG)
    return failed("none", config=AGENT_CONFIG, max_days=limit)
