"""Điều 19 khoản 2: platform software is patched regularly."""

from __future__ import annotations

from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined

_LISTED = 10  # how many pending packages the evidence names


@check("patch_security_pending")
def patch_security_pending(ctx: EvalContext) -> Outcome:
    facts = ctx.report.patches
    if facts.security_pending_count is None:
        return undetermined("no_count")
    max_list_age = ctx.param("patches", "max_package_list_age_days")
    if facts.last_refresh_at and ctx.age_days(facts.last_refresh_at) > max_list_age:
        return undetermined(
            "stale_lists", refreshed_at=facts.last_refresh_at, max_days=max_list_age
        )
    limit = ctx.param("patches", "max_security_pending")
    if facts.security_pending_count > limit:
        names = [u.name for u in facts.pending if u.security][:_LISTED]
        return failed("pending", count=facts.security_pending_count, packages=names)
    return passed("none_pending", count=facts.security_pending_count)


@check("patch_recent_update")
def patch_recent_update(ctx: EvalContext) -> Outcome:
    last = ctx.report.patches.last_update_at
    if last is None:
        return undetermined("no_history")
    limit = ctx.param("patches", "max_days_since_update")
    age = round(ctx.age_days(last), 1)
    if age > limit:
        return failed("old", updated_at=last, age_days=age, max_days=limit)
    return passed("recent", updated_at=last, age_days=age, max_days=limit)


@check("patch_reboot_pending")
def patch_reboot_pending(ctx: EvalContext) -> Outcome:
    required = ctx.report.patches.reboot_required
    if required is None:
        return undetermined("cannot_tell")
    return failed("required") if required else passed("not_required")
