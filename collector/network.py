"""An agency's network model (Điều 18 khoản 2): zones, allowed flows, hosts' zones.

The agency declares its zones (kind ``outside``/``dmz``/``server``/``internal``
or ``custom``), their CIDRs and the flows it allows between them, as one
document replaced atomically (:func:`replace_model`).  Zones of one agency
must not overlap; whether their ranges are private is the agency's business.

A host stands in the zones its addresses fall in: the addresses of the
``network.interfaces`` of its latest report (loopback, link-local and
unspecified addresses ignored), each placed by longest-prefix match over the
agency's zones.  A host with addresses in two or more zones is a *boundary*
host (a firewall or gateway carrying an agent).

:func:`network_facts` gathers the model and the latest probe results of each
probing host for the ``net_*`` fleet rules.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agent.netprobe.plan import ProbeResults
from collector import crud
from collector.crud import CrudError
from collector.models import Agency, AllowedFlow, Host, ProbeRun, Zone, utcnow
from policies.network_model import (
    NetFlow,
    NetworkFacts,
    NetZone,
    ProbeObservation,
    ZoneKind,
    parse_address,
    usable_address,
    zone_of,
)

log = logging.getLogger(__name__)


class InvalidNetworkModel(CrudError):
    """The declared model is inconsistent (overlapping zones, unknown zone in a flow…)."""


class ModelConflict(CrudError):
    """The model was replaced concurrently."""


class NotInZone(CrudError):
    """The host has no address in any declared zone (or stands in several)."""


# --- the document -----------------------------------------------------------------


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid CIDR (e.g. 10.0.1.0/24)") from exc


def _address(value: str) -> str:
    ip = parse_address(value)
    if ip is None:
        raise ValueError(f"{value!r} is not a valid IP address")
    return str(ip)


class ZoneSpec(BaseModel):
    """One zone of the model."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, examples=["dmz"])
    kind: ZoneKind = Field(description="outside | dmz | server | internal | custom")
    cidrs: list[str] = Field(default_factory=list, examples=[["10.10.1.0/24"]])
    probe_addresses: list[str] = Field(
        default_factory=list,
        description="Addresses in the zone without an agent (firewall, appliance) to probe too.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("zone name must not be blank")
        return value

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(_network(v) for v in values))

    @field_validator("probe_addresses")
    @classmethod
    def _probe_addresses(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(_address(v) for v in values))


class FlowSpec(BaseModel):
    """A flow the agency allows: ``src_zone`` → ``dst_zone`` on ``protocol``/``port``."""

    model_config = ConfigDict(extra="forbid")

    src_zone: str = Field(min_length=1, max_length=64, examples=["outside"])
    dst_zone: str = Field(min_length=1, max_length=64, examples=["dmz"])
    protocol: Literal["tcp", "udp"] = "tcp"
    port: int = Field(ge=1, le=65535, examples=[443])
    note: str | None = Field(default=None, max_length=1000, examples=["Cổng thông tin điện tử"])


class NetworkModel(BaseModel):
    """An agency's whole network model: zones and allowed flows, validated together."""

    model_config = ConfigDict(extra="forbid")

    zones: list[ZoneSpec] = Field(default_factory=list)
    flows: list[FlowSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> NetworkModel:
        names = [z.name for z in self.zones]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate zone names: {dupes}")
        seen: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
        for zone in self.zones:
            nets = [ipaddress.ip_network(c) for c in zone.cidrs]
            for net in nets:
                for other_name, other in seen:
                    if (
                        other_name != zone.name
                        and net.version == other.version
                        and (net.overlaps(other))
                    ):
                        raise ValueError(
                            f"zones {other_name!r} ({other}) and {zone.name!r} ({net}) overlap; "
                            "zones of one agency must not share addresses"
                        )
            seen += [(zone.name, net) for net in nets]
            for address in zone.probe_addresses:
                ip = ipaddress.ip_address(address)
                if not any(ip.version == n.version and ip in n for n in nets):
                    raise ValueError(
                        f"probe address {address} is not inside the CIDRs of zone {zone.name!r}"
                    )
        known = set(names)
        unique: dict[tuple[str, str, str, int], FlowSpec] = {}
        for flow in self.flows:
            for end in (flow.src_zone, flow.dst_zone):
                if end not in known:
                    raise ValueError(f"flow {_flow_text(flow)} names unknown zone {end!r}")
            if flow.src_zone == flow.dst_zone:
                raise ValueError(f"flow {_flow_text(flow)} stays inside one zone")
            unique.setdefault((flow.src_zone, flow.dst_zone, flow.protocol, flow.port), flow)
        self.flows = list(unique.values())
        return self


def _flow_text(flow: FlowSpec) -> str:
    return f"{flow.src_zone} → {flow.dst_zone} {flow.protocol}/{flow.port}"


def validate_model(data: Any) -> NetworkModel:
    """Parse and check a model document (for callers outside the HTTP API)."""
    try:
        return NetworkModel.model_validate(data)
    except ValidationError as exc:
        raise InvalidNetworkModel(str(exc)) from exc


# --- CRUD -------------------------------------------------------------------------


def zone_rows(session: Session, agency_id: int) -> Sequence[Zone]:
    return session.exec(
        select(Zone).where(Zone.agency_id == agency_id).order_by(col(Zone.id))
    ).all()


def flow_rows(session: Session, agency_id: int) -> Sequence[AllowedFlow]:
    return session.exec(
        select(AllowedFlow).where(AllowedFlow.agency_id == agency_id).order_by(col(AllowedFlow.id))
    ).all()


def get_model(session: Session, agency_id: int) -> NetworkModel:
    return NetworkModel.model_construct(
        zones=[
            ZoneSpec(
                name=z.name,
                kind=z.kind,  # type: ignore[arg-type]
                cidrs=list(z.cidrs or []),
                probe_addresses=list(z.probe_addresses or []),
            )
            for z in zone_rows(session, agency_id)
        ],
        flows=[
            FlowSpec(
                src_zone=f.src_zone,
                dst_zone=f.dst_zone,
                protocol=f.protocol,  # type: ignore[arg-type]
                port=f.port,
                note=f.note,
            )
            for f in flow_rows(session, agency_id)
        ],
    )


def replace_model(session: Session, agency_id: int, model: NetworkModel) -> NetworkModel:
    """Replace the agency's zones and flows by ``model`` in one transaction."""
    model = validate_model(model.model_dump())
    now = utcnow()
    try:
        session.execute(delete(AllowedFlow).where(col(AllowedFlow.agency_id) == agency_id))
        session.execute(delete(Zone).where(col(Zone.agency_id) == agency_id))
        session.flush()
        for zone in model.zones:
            session.add(
                Zone(
                    agency_id=agency_id,
                    name=zone.name,
                    kind=zone.kind,
                    cidrs=list(zone.cidrs),
                    probe_addresses=list(zone.probe_addresses),
                    created_at=now,
                )
            )
        for flow in model.flows:
            session.add(
                AllowedFlow(
                    agency_id=agency_id,
                    src_zone=flow.src_zone,
                    dst_zone=flow.dst_zone,
                    protocol=flow.protocol,
                    port=flow.port,
                    note=flow.note,
                )
            )
        session.commit()
    except IntegrityError as exc:  # a concurrent replacement won the race
        session.rollback()
        raise ModelConflict(
            "the network model was changed concurrently; read it again and retry"
        ) from exc
    return get_model(session, agency_id)


def zones(session: Session, agency_id: int) -> list[NetZone]:
    """The agency's zones as the policies see them."""
    return [
        NetZone(name=z.name, kind=z.kind, cidrs=tuple(z.cidrs or []))  # type: ignore[arg-type]
        for z in zone_rows(session, agency_id)
    ]


def flows(session: Session, agency_id: int) -> list[NetFlow]:
    return [
        NetFlow(src_zone=f.src_zone, dst_zone=f.dst_zone, protocol=f.protocol, port=f.port)  # type: ignore[arg-type]
        for f in flow_rows(session, agency_id)
    ]


# --- where hosts stand -------------------------------------------------------------


def address_zone(session: Session, agency_id: int, address: str) -> NetZone | None:
    """The agency's zone of ``address`` (longest-prefix match), None outside every zone."""
    return zone_of(zones(session, agency_id), address)


def report_addresses(body: dict[str, Any] | None) -> list[str]:
    """The interface addresses of a stored report body (network section observed)."""
    network = (body or {}).get("network")
    if not isinstance(network, dict) or network.get("status", "ok") != "ok":
        return []
    out: dict[str, None] = {}
    for interface in network.get("interfaces") or []:
        if not isinstance(interface, dict):
            continue
        for entry in interface.get("addresses") or []:
            if isinstance(entry, dict) and isinstance(entry.get("address"), str):
                usable = usable_address(entry["address"])
                if usable:
                    out.setdefault(usable)
    return list(out)


def host_addresses(session: Session, host: Host) -> list[str]:
    stored = crud.latest_report(session, host)
    return report_addresses(stored.body) if stored is not None else []


@dataclass(frozen=True)
class HostPlacement:
    """Where a host stands: its addresses by zone name (zones in declaration order)."""

    host_id: int
    hostname: str
    by_zone: dict[str, list[str]] = field(default_factory=dict)

    @property
    def boundary(self) -> bool:
        return len(self.by_zone) >= 2


def place(host: Host, addresses: Iterable[str], agency_zones: Sequence[NetZone]) -> HostPlacement:
    by_zone: dict[str, list[str]] = {}
    for address in addresses:
        zone = zone_of(agency_zones, address)
        if zone is not None:
            by_zone.setdefault(zone.name, []).append(address)
    order = {z.name: i for i, z in enumerate(agency_zones)}
    assert host.id is not None
    return HostPlacement(
        host_id=host.id,
        hostname=host.hostname,
        by_zone={name: by_zone[name] for name in sorted(by_zone, key=order.__getitem__)},
    )


def host_placement(
    session: Session, host: Host, agency_zones: Sequence[NetZone] | None = None
) -> HostPlacement:
    if agency_zones is None:
        agency_zones = zones(session, host.agency_id)
    return place(host, host_addresses(session, host), agency_zones)


def agency_placements(
    session: Session, agency_id: int, agency_zones: Sequence[NetZone] | None = None
) -> list[HostPlacement]:
    if agency_zones is None:
        agency_zones = zones(session, agency_id)
    return [host_placement(session, h, agency_zones) for h in crud.list_hosts(session, agency_id)]


def host_zone(
    session: Session, host: Host, agency_zones: Sequence[NetZone] | None = None
) -> tuple[str, list[str]]:
    """The one zone a host probes from, with its addresses there.

    Raises :class:`NotInZone` when none of its addresses is in a declared
    zone, or when it stands in several (a boundary host: probes from it would
    say nothing about filtering between the zones it bridges).
    """
    placement = host_placement(session, host, agency_zones)
    if not placement.by_zone:
        raise NotInZone("host is not in any declared zone")
    if placement.boundary:
        raise NotInZone(
            "host is on the boundary of zones "
            + ", ".join(placement.by_zone)
            + " (addresses in several zones); probes are run from hosts inside one zone"
        )
    name, addresses = next(iter(placement.by_zone.items()))
    return name, addresses


# --- facts for the rules -----------------------------------------------------------


def _latest_runs(session: Session, agency_id: int, now: datetime) -> list[ProbeRun]:
    """The latest run with results of each probing host, received by ``now``."""
    rows = session.exec(
        select(ProbeRun).where(
            ProbeRun.agency_id == agency_id,
            col(ProbeRun.received_at).is_not(None),
            col(ProbeRun.received_at) <= now,
        )
    ).all()
    latest: dict[int, ProbeRun] = {}
    for run in rows:
        if run.results is None:
            continue
        key = run.finished_at or run.received_at
        current = latest.get(run.host_id)
        if current is None or key > (current.finished_at or current.received_at):  # type: ignore[operator]
            latest[run.host_id] = run
    return list(latest.values())


def observations(
    run: ProbeRun, agency_zones: Sequence[NetZone], hostname: str
) -> list[ProbeObservation]:
    """A run's port results, placed in the *current* zones by address."""
    try:
        results = ProbeResults.model_validate(run.results)
    except ValidationError:
        log.exception("stored results of probe plan %s no longer validate", run.plan_id)
        return []
    names = {z.name for z in agency_zones}
    src = zone_of(agency_zones, results.source_address) if results.source_address else None
    src_zone = src.name if src is not None else run.source_zone
    if src_zone not in names:
        return []
    observed_at = run.finished_at or results.finished_at
    out: list[ProbeObservation] = []
    for target in results.results:
        dst = zone_of(agency_zones, target.address)
        if dst is None or dst.name == src_zone:
            continue
        path = tuple(target.path) if target.path is not None else None
        for port in target.ports:
            out.append(
                ProbeObservation(
                    src_zone=src_zone,
                    src_address=results.source_address,
                    dst_zone=dst.name,
                    dst_address=target.address,
                    port=port.port,
                    state=port.state,
                    observed_at=observed_at,
                    source_host=hostname,
                    source_host_id=run.host_id,
                    hops=target.hops,
                    path=path,
                )
            )
    return out


def network_facts(
    session: Session, agency: Agency, now: datetime | None = None
) -> NetworkFacts | None:
    """The agency's model and latest probe observations; None without a declared model."""
    assert agency.id is not None
    now = now or utcnow()
    agency_zones = zones(session, agency.id)
    if not agency_zones:
        return None
    runs = _latest_runs(session, agency.id, now)
    hostnames = {h.id: h.hostname for h in crud.list_hosts(session, agency.id) if h.id is not None}
    latest: dict[tuple[str, str, int], ProbeObservation] = {}
    for run in runs:
        for obs in observations(run, agency_zones, hostnames.get(run.host_id, str(run.host_id))):
            key = (obs.src_zone, obs.dst_address, obs.port)
            current = latest.get(key)
            if current is None or obs.observed_at > current.observed_at:
                latest[key] = obs
    return NetworkFacts(
        zones=agency_zones,
        flows=flows(session, agency.id),
        observations=sorted(
            latest.values(), key=lambda o: (o.src_zone, o.dst_zone, o.dst_address, o.port)
        ),
        runs=len(runs),
    )
