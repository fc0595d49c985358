"""Điều 17 khoản 1: central storage of digital documents; parallel servers (Mức độ 3+)."""

from __future__ import annotations

from policies.fleet import FleetContext, FleetHost
from policies.registry import Outcome, failed, fleet_rule, passed, undetermined

_LOOPBACK = ("127.", "::1")


def _reporting(ctx: FleetContext, host: FleetHost) -> bool:
    limit_h = ctx.param("fleet", "max_silence_hours")
    return host.last_seen_at is not None and (
        (ctx.now - host.last_seen_at).total_seconds() <= limit_h * 3600
    )


def file_sharing_evidence(ctx: FleetContext, host: FleetHost) -> list[str]:
    """What in the host's latest report shows it serves files (packages, listening ports)."""
    report = host.report
    if report is None:
        return []
    packages = set(ctx.param("fleet", "file_sharing_packages"))
    ports = set(ctx.param("fleet", "file_sharing_ports"))
    found: list[str] = []
    if report.software.status == "ok":
        found += sorted({p.name for p in report.software.packages if p.name in packages})
    if report.network.status == "ok":
        found += sorted(
            {
                f"tcp/{s.port}"
                for s in report.network.listening
                if s.protocol == "tcp" and s.port in ports and not s.address.startswith(_LOOPBACK)
            }
        )
    return found


@fleet_rule("fleet_central_storage")
def fleet_central_storage(ctx: FleetContext) -> Outcome:
    if not ctx.hosts:
        return undetermined("no_hosts")
    # Workstations sharing a folder are not central storage; unknown roles may be servers.
    candidates = [h for h in ctx.hosts if h.role != "workstation"]
    servers = {}
    for host in candidates:
        evidence = file_sharing_evidence(ctx, host)
        if evidence:
            servers[host.hostname] = evidence
    if servers:
        listed = [f"{name} ({', '.join(ev)})" for name, ev in sorted(servers.items())]
        return passed("file_server", servers=listed, count=len(servers))
    # Never a failure: a NAS appliance runs no agent and must be attested by a person.
    return undetermined("none_seen", candidates=len(candidates))


@fleet_rule("fleet_parallel_servers")
def fleet_parallel_servers(ctx: FleetContext) -> Outcome:
    if not ctx.hosts:
        return undetermined("no_hosts")
    minimum = ctx.param("fleet", "min_parallel_servers")
    servers = [h for h in ctx.hosts if h.role == "server"]
    reporting = [h.hostname for h in servers if _reporting(ctx, h)]
    params = {
        "reporting": len(reporting),
        "servers": len(servers),
        "hosts": reporting,
        "minimum": minimum,
    }
    if len(reporting) >= minimum:
        return passed("enough", **params)
    return failed("too_few", **params)
