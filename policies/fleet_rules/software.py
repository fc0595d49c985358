"""Điều 19 khoản 3: control over new software.

- ``fleet_software_approved`` (đoạn 2): software installed or upgraded recently
  must match the agency's register of approved software.
- ``fleet_backup_before_install`` (gạch đầu dòng 1): before new software is
  installed, the machine's data must have been backed up.

A change's time is the collection time of the report that first showed it
(the agent does not always know the exact install time).  The backup evidence
of a change is the ``backup.newest_backup_at`` of the host's latest report
collected at or before that time (``FleetContext.backups``; without that
history, each host's latest report).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from policies.fleet import BackupObservation, FleetContext, SoftwareChange
from policies.model import Text
from policies.registry import Outcome, failed, fleet_rule, passed, undetermined

MAX_LISTED = 20  # changes named in an evidence message; the count says how many in all
REGISTER_HOWTO = "POST /api/v1/agencies/{id}/approved-software[/declare]"


def recent_installs(ctx: FleetContext) -> list[SoftwareChange]:
    """Software installed or upgraded within ``fleet.software_change_window_days``."""
    since = ctx.now - timedelta(days=ctx.param("fleet", "software_change_window_days"))
    changes = [
        c
        for c in ctx.software_changes
        if c.change in ("installed", "upgraded") and since <= c.collected_at <= ctx.now
    ]
    return sorted(changes, key=lambda c: (c.collected_at, c.hostname, c.name))


def describe(change: SoftwareChange) -> Text:
    """``host: package version (date)``, the date in each language's usage."""
    head = f"{change.hostname}: {change.name} {change.new_version or ''}".rstrip()
    when = change.collected_at
    return Text(vi=f"{head} ({when:%d/%m/%Y})", en=f"{head} ({when:%Y-%m-%d})")


def _listed(changes: Sequence[SoftwareChange]) -> list[Text]:
    items = [describe(c) for c in changes[:MAX_LISTED]]
    if len(changes) > MAX_LISTED:
        more = len(changes) - MAX_LISTED
        items.append(Text(vi=f"… và {more} thay đổi khác", en=f"… and {more} more"))
    return items


@fleet_rule("fleet_software_approved")
def fleet_software_approved(ctx: FleetContext) -> Outcome:
    if not ctx.hosts:
        return undetermined("no_hosts")
    days = ctx.param("fleet", "software_change_window_days")
    if ctx.approved_software is None:
        return undetermined("no_register", howto=REGISTER_HOWTO, days=days)
    changes = recent_installs(ctx)
    if not changes:
        return passed("no_changes", days=days)
    register = list(ctx.approved_software)
    unapproved = [c for c in changes if not any(e.matches(c.name, c.new_version) for e in register)]
    params = {
        "days": days,
        "total": len(changes),
        "count": len(unapproved),
        "entries": len(register),
    }
    if unapproved:
        return failed("unapproved", changes=_listed(unapproved), **params)
    return passed("all_approved", **params)


def _observations(ctx: FleetContext, host_id: int) -> Sequence[BackupObservation]:
    if host_id in ctx.backups:
        return ctx.backups[host_id]
    host = next((h for h in ctx.hosts if h.host_id == host_id), None)
    if host is None or host.report is None:
        return ()
    backup = host.report.backup
    observed = backup is not None and backup.status == "ok"
    return (
        BackupObservation(
            collected_at=host.report.collected_at,
            observed=observed,
            newest_backup_at=backup.newest_backup_at if backup is not None else None,
        ),
    )


def backup_before(
    ctx: FleetContext, change: SoftwareChange, max_days: float
) -> tuple[bool | None, datetime | None]:
    """Was there a backup at most ``max_days`` old before the change?  None: no facts."""
    observations = _observations(ctx, change.host_id)
    before = [o for o in observations if o.collected_at <= change.collected_at]
    if not before:
        return None, None
    latest = max(before, key=lambda o: o.collected_at)
    if not latest.observed or latest.newest_backup_at is None:
        return None, None
    newest = latest.newest_backup_at
    ok = change.collected_at - timedelta(days=max_days) <= newest <= change.collected_at
    return ok, newest


@fleet_rule("fleet_backup_before_install")
def fleet_backup_before_install(ctx: FleetContext) -> Outcome:
    if not ctx.hosts:
        return undetermined("no_hosts")
    window = ctx.param("fleet", "software_change_window_days")
    max_days = ctx.param("fleet", "backup_before_install_days")
    changes = recent_installs(ctx)
    if not changes:
        return passed("no_changes", days=window)
    without: list[SoftwareChange] = []
    no_facts: set[str] = set()
    for change in changes:
        ok, _newest = backup_before(ctx, change, max_days)
        if ok is None:
            no_facts.add(change.hostname)
        elif not ok:
            without.append(change)
    params = {
        "days": window,
        "max_days": max_days,
        "total": len(changes),
        "count": len(without),
        "unknown_hosts": sorted(no_facts),
    }
    if without:
        return failed("no_backup", changes=_listed(without), **params)
    if no_facts:
        return undetermined("no_facts", **params)
    return passed("backed_up", **params)
