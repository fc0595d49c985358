"""Network discovery results (admin): the latest scan of an agency, managed or not."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from collector.db import SessionDep
from collector.routes.deps import ADMIN_RESPONSES, AgencyDep
from collector.scanner import discovery
from collector.security import RequireUser

router = APIRouter(tags=["discovery"], dependencies=[RequireUser], responses=ADMIN_RESPONSES)


class OpenPort(BaseModel):
    protocol: str
    port: int
    service: str = ""


class DiscoveredHostOut(BaseModel):
    address: str
    mac: str | None = None
    hostname: str | None = None
    open_ports: list[OpenPort] = Field(default_factory=list)
    managed: bool = Field(description="An enrolled agent has this address or MAC.")
    host_id: int | None = None
    host_name: str | None = Field(default=None, description="Hostname of the enrolled agent.")


class DiscoveryOut(BaseModel):
    scan_id: int | None = None
    agency_id: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    source: str | None = None
    cidrs: list[str] = Field(default_factory=list)
    live_count: int = 0
    unmanaged_count: int = 0
    hosts: list[DiscoveredHostOut] = Field(default_factory=list)


@router.get("/agencies/{agency_id}/discovery", response_model=DiscoveryOut)
def agency_discovery(agency: AgencyDep, session: SessionDep) -> DiscoveryOut:
    """The agency's latest discovery scan: live hosts with their open ports, each flagged
    managed (an enrolled agent has its address or MAC) or unmanaged.  Without any scan
    the answer has no ``scan_id`` and no hosts."""
    assert agency.id is not None
    scan = discovery.latest_scan(session, agency.id)
    if scan is None or scan.id is None:
        return DiscoveryOut(agency_id=agency.id)
    index = discovery.host_index(session, agency.id)
    hosts = []
    for row in discovery.scan_hosts(session, scan.id):
        host_id = discovery.current_match(row, index)
        hosts.append(
            DiscoveredHostOut(
                address=row.address,
                mac=row.mac,
                hostname=row.hostname,
                open_ports=[
                    OpenPort(protocol=p, port=n, service=s)
                    for p, n, s in discovery.port_tuples(row)
                ],
                managed=host_id is not None,
                host_id=host_id,
                host_name=index.hostnames.get(host_id) if host_id is not None else None,
            )
        )
    return DiscoveryOut(
        scan_id=scan.id,
        agency_id=agency.id,
        started_at=scan.started_at,
        finished_at=scan.finished_at,
        source=scan.source,
        cidrs=list(scan.cidrs or []),
        live_count=len(hosts),
        unmanaged_count=sum(1 for h in hosts if not h.managed),
        hosts=hosts,
    )
