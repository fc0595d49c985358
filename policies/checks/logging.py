"""Điều 18 khoản 1, gạch đầu dòng 3: network-system activity is logged."""

from __future__ import annotations

from agent.report import AuditSetting, LoggingSection
from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined


@check("log_persistent")
def log_persistent(ctx: EvalContext) -> Outcome:
    facts = ctx.report.logging
    assert facts is not None  # the engine only calls predicates on observed sections
    if facts.event_log_running is not None:  # Windows: the event log is always on disk
        return _windows_event_log(facts)
    journal, syslog = facts.journald_persistent, facts.syslog_running
    storage = facts.journald_storage
    if journal and syslog:
        return passed("both", storage=storage, daemon=facts.syslog_daemon)
    if journal:
        return passed("journal", storage=storage)
    if syslog:
        return passed("syslog", daemon=facts.syslog_daemon)
    if journal is False and syslog is False:
        return failed("volatile", storage=storage, daemon=facts.syslog_daemon)
    return undetermined("cannot_tell", storage=storage, daemon=facts.syslog_daemon)


def _windows_event_log(facts: LoggingSection) -> Outcome:
    size = facts.security_log_max_bytes
    params = {
        "size_mb": round(size / 1048576, 1) if size else None,
        "retention": facts.security_log_retention,
    }
    if not facts.event_log_running:
        return failed("eventlog_stopped")
    if facts.security_log_enabled is False:
        return failed("security_log_disabled")
    if facts.security_log_enabled is None:
        return undetermined("security_log_unknown")
    return passed("eventlog", **params)


# Windows audit subcategories that must be audited (by GUID: names are localized).
WINDOWS_KEY_AUDIT = {
    "0CCE9215-69AE-11D9-BED3-505054503030": "Logon",
    "0CCE923F-69AE-11D9-BED3-505054503030": "Credential Validation",
    "0CCE9235-69AE-11D9-BED3-505054503030": "User Account Management",
    "0CCE9237-69AE-11D9-BED3-505054503030": "Security Group Management",
    "0CCE922F-69AE-11D9-BED3-505054503030": "Audit Policy Change",
}


def _windows_audit(settings: list[AuditSetting]) -> Outcome:
    by_guid = {(s.guid or "").upper(): s for s in settings}
    required = list(WINDOWS_KEY_AUDIT.values())
    missing, unread = [], []
    for guid, name in WINDOWS_KEY_AUDIT.items():
        setting = by_guid.get(guid)
        if setting is None or (setting.success is False and setting.failure is False):
            missing.append(name)
        elif setting.success is None:
            unread.append(name)
    if missing:
        return failed("windows_missing", missing=missing, required=required)
    if unread:
        return undetermined("windows_unread", subcategories=unread)
    audited = sum(bool(s.success or s.failure) for s in settings)
    return passed("windows_active", rules=audited, required=required)


@check("log_audit")
def log_audit(ctx: EvalContext) -> Outcome:
    facts = ctx.report.logging
    assert facts is not None
    if facts.audit_policy is not None:
        return _windows_audit(facts.audit_policy)
    rules = facts.audit_rule_count
    if facts.auditd_installed is False:
        return failed("not_installed")
    if facts.auditd_running is False:
        return failed("stopped", rules=rules)
    if facts.auditd_running is None:
        return undetermined("cannot_tell", rules=rules)
    if rules is None:
        return undetermined("rules_unknown")
    if rules < 1:
        return failed("no_rules")
    return passed("active", rules=rules)


@check("log_remote")
def log_remote(ctx: EvalContext) -> Outcome:
    facts = ctx.report.logging
    assert facts is not None
    if facts.remote_targets or facts.log_shippers:
        return passed("forwarded", targets=facts.remote_targets, shippers=facts.log_shippers)
    if (
        facts.syslog_running is None
        and facts.auditd_running is None
        and facts.event_log_running is None
    ):
        # running processes were not observed: a shipper may still be forwarding
        return undetermined("cannot_tell")
    return failed("local_only", daemon=facts.syslog_daemon)
