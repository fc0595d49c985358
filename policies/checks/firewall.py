"""Điều 18 khoản 1, gạch đầu dòng 1: a firewall filters inbound traffic."""

from __future__ import annotations

from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined


def _active_backends(ctx: EvalContext) -> list[str]:
    return [b.name for b in ctx.report.firewall.backends if b.active]


@check("fw_active")
def fw_active(ctx: EvalContext) -> Outcome:
    facts = ctx.report.firewall
    if facts.active is None:
        return undetermined("cannot_tell")
    if facts.active:
        return passed("active", backends=_active_backends(ctx) or ["?"])
    off = [f"{b.name} {p.name}" for b in facts.backends for p in b.profiles if p.enabled is False]
    if off:  # Windows: every profile must be on, the network decides which one applies
        return failed("profiles_off", profiles=off)
    installed = [b.name for b in facts.backends if b.installed]
    return failed("inactive", installed=installed or ["—"])


@check("fw_default_deny")
def fw_default_deny(ctx: EvalContext) -> Outcome:
    facts = ctx.report.firewall
    if facts.active is False:
        return failed("no_firewall")
    if facts.default_inbound in ("drop", "reject"):
        return passed("deny", policy=facts.default_inbound)
    if facts.default_inbound == "accept":
        return failed("accept")
    return undetermined("cannot_tell")
