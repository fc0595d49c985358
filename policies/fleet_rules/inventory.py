"""Điều 16 khoản 1: equipment is monitored while in use — every machine keeps reporting."""

from __future__ import annotations

from policies.fleet import FleetContext
from policies.registry import Outcome, failed, fleet_rule, passed, undetermined


@fleet_rule("fleet_hosts_reporting")
def fleet_hosts_reporting(ctx: FleetContext) -> Outcome:
    if not ctx.hosts:
        return undetermined("no_hosts")
    limit_h = ctx.param("fleet", "max_silence_hours")
    silent = [
        host.hostname
        for host in ctx.hosts
        if host.last_seen_at is None
        or (ctx.now - host.last_seen_at).total_seconds() > limit_h * 3600
    ]
    if silent:
        return failed(
            "silent", hosts=silent, count=len(silent), total=len(ctx.hosts), max_hours=limit_h
        )
    return passed("all_reporting", total=len(ctx.hosts), max_hours=limit_h)
