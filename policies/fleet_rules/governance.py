"""Agency-wide rules of Điều 14 khoản 4 (servers) and Điều 20 (security management)."""

from __future__ import annotations

from datetime import datetime

from policies.fleet import FleetContext, FleetHost
from policies.registry import Outcome, failed, fleet_rule, passed, undetermined

# Ports and processes of a directory / authentication service (Kerberos, LDAP,
# LDAPS, Global Catalog): evidence only, for "quản lý, xác thực người sử dụng".
_DIRECTORY_PORTS = frozenset({88, 389, 636, 3268, 3269})
_DIRECTORY_PROCESSES = ("slapd", "ns-slapd", "krb5kdc", "samba")


def _report_time(host: FleetHost) -> datetime | None:
    """When the host was last checked: its latest report, else its last contact."""
    if host.report is not None:
        return host.report.collected_at
    return host.last_seen_at


def _latest_check(ctx: FleetContext) -> tuple[datetime | None, int]:
    times = [t for t in (_report_time(h) for h in ctx.hosts) if t is not None]
    return (max(times) if times else None), len(times)


def _runs_directory(host: FleetHost) -> bool:
    network = host.report.network if host.report is not None else None
    if network is None:
        return False
    for sock in network.listening:
        process = (sock.process or "").lower()
        if sock.port in _DIRECTORY_PORTS or process.startswith(_DIRECTORY_PROCESSES):
            return True
    return False


@fleet_rule("fleet_servers_present")
def fleet_servers_present(ctx: FleetContext) -> Outcome:
    """Điều 14 khoản 4: at least one enrolled server-role host."""
    if not ctx.hosts:
        return undetermined("no_hosts")
    servers = sorted(h.hostname for h in ctx.hosts if h.role == "server")
    if servers:
        directory = sorted(
            h.hostname for h in ctx.hosts if h.role == "server" and _runs_directory(h)
        )
        return passed(
            "servers", hosts=servers, count=len(servers), total=len(ctx.hosts), directory=directory
        )
    unknown = sorted(h.hostname for h in ctx.hosts if h.role not in ("server", "workstation"))
    if unknown:
        return undetermined("roles_unknown", hosts=unknown, count=len(unknown))
    return failed("no_server", total=len(ctx.hosts))


@fleet_rule("fleet_assessment_recent")
def fleet_assessment_recent(ctx: FleetContext) -> Outcome:
    """Điều 20 khoản 3: checked at least once a year (the scanner's own check counts)."""
    limit = ctx.param("fleet", "assessment_max_age_days")
    latest, reported = _latest_check(ctx)
    if latest is None:
        return undetermined("no_assessment", max_days=limit)
    age = ctx.age_days(latest)
    if age > limit:
        return failed("stale", at=latest, days=int(age), max_days=limit)
    return passed("recent", at=latest, hosts=reported, max_days=limit)


@fleet_rule("fleet_security_report")
def fleet_security_report(ctx: FleetContext) -> Outcome:
    """Điều 20 khoản 6: the collector can produce the agency's report on demand."""
    latest, reported = _latest_check(ctx)
    if latest is None:
        return undetermined("no_reports", total=len(ctx.hosts))
    return passed("available", hosts=reported, total=len(ctx.hosts), at=latest)
