"""Điều 19 khoản 1: anti-virus on every machine, used, with fresh signatures."""

from __future__ import annotations

from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined


def _installed(ctx: EvalContext) -> list:
    return [p for p in ctx.report.antivirus.products if p.installed]


@check("av_installed")
def av_installed(ctx: EvalContext) -> Outcome:
    products = _installed(ctx)
    if not products:
        return failed("none")
    return passed("installed", products=[p.name for p in products])


@check("av_active")
def av_active(ctx: EvalContext) -> Outcome:
    products = _installed(ctx)
    if not products:
        return failed("none")
    max_scan_age = ctx.param("antivirus", "max_scan_age_days")
    for p in products:
        if p.running or p.realtime:
            return passed("running", product=p.name)
        if p.last_scan_at and ctx.age_days(p.last_scan_at) <= max_scan_age:
            return passed("recent_scan", product=p.name, last_scan_at=p.last_scan_at)
    if any(p.running is None for p in products):
        return undetermined("cannot_tell", products=[p.name for p in products])
    return failed("idle", products=[p.name for p in products], max_days=max_scan_age)


@check("av_signatures_fresh")
def av_signatures_fresh(ctx: EvalContext) -> Outcome:
    products = _installed(ctx)
    if not products:
        return failed("none")
    dated = [p for p in products if p.signature_updated_at]
    # Products that only give their own verdict (Windows Security Center): no date.
    current = [p.name for p in products if p.signatures_up_to_date and not p.signature_updated_at]
    outdated = [p.name for p in products if p.signatures_up_to_date is False]
    if not dated:
        if current:
            return passed("vendor_up_to_date", products=current)
        if outdated:
            return failed("vendor_out_of_date", products=outdated)
        return undetermined("no_date", products=[p.name for p in products])
    newest = max(dated, key=lambda p: p.signature_updated_at)
    age = ctx.age_days(newest.signature_updated_at)
    limit = ctx.param("antivirus", "max_signature_age_days")
    params = {
        "product": newest.name,
        "updated_at": newest.signature_updated_at,
        "age_days": round(age, 1),
        "max_days": limit,
    }
    if age <= limit:
        return passed("fresh", **params)
    if current:
        return passed("vendor_up_to_date", products=current)
    return failed("stale", **params)
