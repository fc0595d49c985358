"""Điều 18 khoản 1, gạch đầu dòng 3: network-system activity is logged."""

from __future__ import annotations

from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined


@check("log_persistent")
def log_persistent(ctx: EvalContext) -> Outcome:
    facts = ctx.report.logging
    assert facts is not None  # the engine only calls predicates on observed sections
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


@check("log_audit")
def log_audit(ctx: EvalContext) -> Outcome:
    facts = ctx.report.logging
    assert facts is not None
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
    if facts.syslog_running is None and facts.auditd_running is None:
        # running processes were not observed: a shipper may still be forwarding
        return undetermined("cannot_tell")
    return failed("local_only", daemon=facts.syslog_daemon)
