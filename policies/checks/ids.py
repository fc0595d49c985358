"""Điều 18 khoản 1, gạch đầu dòng 1: intrusion detection/prevention is in place."""

from __future__ import annotations

from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined


@check("ids_running")
def ids_running(ctx: EvalContext) -> Outcome:
    installed = [p for p in ctx.report.ids.products if p.installed]
    running = [p.name for p in installed if p.running]
    if running:
        return passed("running", products=running)
    if not installed:
        return failed("none")
    if any(p.running is None for p in installed):
        return undetermined("cannot_tell", products=[p.name for p in installed])
    return failed("stopped", products=[p.name for p in installed])
