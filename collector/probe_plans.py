"""Segmentation probe plans for agents, and the results they send back.

:func:`plan_for` derives what an agent standing in one zone probes: every
enrolled host's address in each *other* zone, plus the zone's declared probe
addresses (hosts without an agent), each on the TCP ports of the flows
declared into that zone and the ``network.probe_ports`` set.  The plan's
``allowed_networks`` are the agency's zone CIDRs, so the agent never probes
anything else, at ``network.probe_rate_per_second``.

Every issued plan is kept as a :class:`ProbeRun` without results; posted
results must name a plan issued to the same host, and are kept once
(idempotent by ``plan_id``), restricted to the plan's targets and ports.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlmodel import Session, col, select

from agent.netprobe.plan import ProbePlan, ProbeResults, ProbeTarget, TargetResult
from collector import crud, network
from collector.crud import CrudError, NotFound
from collector.fleet_data import agency_parameters
from collector.models import Agency, Host, ProbeRun, utcnow
from collector.settings import Settings
from policies.network_model import parse_address
from policies.parameters import Parameters, default_parameters

# Issued plans never answered are dropped after this long (per host, at the next issue).
UNANSWERED_PLAN_DAYS = 7


class PlanForbidden(CrudError):
    """Results for a plan issued to another host."""


class InvalidResults(CrudError):
    """Results that contradict themselves (e.g. finished before they started)."""


def _param(params: Parameters, key: str) -> object:
    family = params.get("network") or default_parameters()["network"]
    return family.get(key, default_parameters()["network"][key])


def _ports(params: Parameters) -> set[int]:
    raw = _param(params, "probe_ports")
    ports = raw if isinstance(raw, list) else []
    return {int(p) for p in ports if isinstance(p, int) and 1 <= p <= 65535}


def _rate(params: Parameters) -> float:
    raw = _param(params, "probe_rate_per_second")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0:
        return float(raw)
    return float(default_parameters()["network"]["probe_rate_per_second"])


def plan_for(
    session: Session,
    agency: Agency,
    host: Host,
    now: datetime | None = None,
    *,
    params: Parameters | None = None,
    settings: Settings | None = None,
) -> ProbePlan:
    """The probe plan of ``host`` (not stored; see :func:`issue_plan`).

    Raises :class:`collector.network.NotInZone` when the host is in no
    declared zone (or on the boundary of several).
    """
    assert agency.id is not None and host.id is not None
    now = now or utcnow()
    params = params or agency_parameters(agency, settings)
    agency_zones = network.zones(session, agency.id)
    source_zone, _ = network.host_zone(session, host, agency_zones)
    default_ports = _ports(params)
    flow_ports: dict[str, set[int]] = {}
    for flow in network.flows(session, agency.id):
        if flow.protocol == "tcp":  # the probes are TCP (SYN or connect)
            flow_ports.setdefault(flow.dst_zone, set()).add(flow.port)

    placements = network.agency_placements(session, agency.id, agency_zones)
    by_zone: dict[str, dict[str, int | None]] = {}
    for placement in placements:
        if placement.host_id == host.id:
            continue
        for zone_name, addresses in placement.by_zone.items():
            for address in addresses:
                by_zone.setdefault(zone_name, {}).setdefault(address, placement.host_id)
    declared = {z.name: z for z in network.zone_rows(session, agency.id)}

    targets: list[ProbeTarget] = []
    for zone in agency_zones:
        if zone.name == source_zone:
            continue
        addresses = dict(by_zone.get(zone.name, {}))
        row = declared.get(zone.name)
        for address in (row.probe_addresses or []) if row else []:
            addresses.setdefault(address, None)
        ports = sorted(default_ports | flow_ports.get(zone.name, set()))
        for address, host_id in addresses.items():
            targets.append(
                ProbeTarget(address=address, zone=zone.name, ports=ports, host_id=host_id)
            )

    return ProbePlan(
        agency_id=agency.id,
        source_zone=source_zone,
        generated_at=now,
        targets=targets,
        traceroute=True,
        rate_per_second=_rate(params),
        allowed_networks=[cidr for zone in agency_zones for cidr in zone.cidrs],
    )


def issue_plan(
    session: Session,
    agency: Agency,
    host: Host,
    now: datetime | None = None,
    *,
    settings: Settings | None = None,
) -> ProbePlan:
    """Derive the host's plan and keep it (a :class:`ProbeRun` awaiting results)."""
    assert agency.id is not None and host.id is not None
    now = now or utcnow()
    plan = plan_for(session, agency, host, now, settings=settings)
    stale = session.exec(
        select(ProbeRun).where(
            ProbeRun.host_id == host.id,
            col(ProbeRun.results).is_(None),
            col(ProbeRun.issued_at) < now - timedelta(days=UNANSWERED_PLAN_DAYS),
        )
    ).all()
    for row in stale:
        session.delete(row)
    session.add(
        ProbeRun(
            agency_id=agency.id,
            plan_id=plan.plan_id,
            host_id=host.id,
            source_zone=plan.source_zone,
            issued_at=now,
            plan=plan.model_dump(mode="json"),
        )
    )
    session.commit()
    return plan


def get_run(session: Session, plan_id: uuid.UUID) -> ProbeRun | None:
    return session.exec(select(ProbeRun).where(ProbeRun.plan_id == plan_id)).first()


def list_runs(session: Session, agency_id: int, limit: int = 100) -> Sequence[ProbeRun]:
    return session.exec(
        select(ProbeRun)
        .where(ProbeRun.agency_id == agency_id)
        .order_by(col(ProbeRun.issued_at).desc(), col(ProbeRun.id).desc())
        .limit(limit)
    ).all()


@dataclass
class RecordedResults:
    run: ProbeRun
    status: Literal["accepted", "duplicate"]
    ignored: list[str] = field(default_factory=list)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _scoped(plan: ProbePlan, results: ProbeResults) -> tuple[list[TargetResult], list[str]]:
    """Keep the results of the plan's targets and ports; say what was ignored."""
    planned = {t.address: t for t in plan.targets}
    kept: list[TargetResult] = []
    ignored: list[str] = []
    for result in results.results:
        address = str(parse_address(result.address) or result.address)
        target = planned.get(address)
        if target is None or not plan.in_scope(address):
            ignored.append(f"{result.address}: not a target of plan {plan.plan_id}")
            continue
        allowed = set(target.ports)
        extra = sorted({p.port for p in result.ports if p.port not in allowed})
        if extra:
            ignored.append(f"{address}: ports {extra} are not in the plan")
        kept.append(
            result.model_copy(
                update={
                    "address": address,
                    "zone": target.zone,
                    "ports": [p for p in result.ports if p.port in allowed],
                }
            )
        )
    return kept, ignored


def record_results(
    session: Session, host_id: int, results: ProbeResults, now: datetime | None = None
) -> RecordedResults:
    """Keep an agent's results for a plan issued to its host (once per plan)."""
    now = now or utcnow()
    run = get_run(session, results.plan_id)
    if run is None:
        raise NotFound(f"probe plan {results.plan_id} was not issued by this collector")
    if run.host_id != host_id:
        raise PlanForbidden(f"probe plan {results.plan_id} was issued to another host")
    if run.results is not None:
        return RecordedResults(run=run, status="duplicate")
    started, finished = _aware(results.started_at), _aware(results.finished_at)
    if finished < started:
        raise InvalidResults("finished_at is earlier than started_at")

    plan = ProbePlan.model_validate(run.plan)
    kept, ignored = _scoped(plan, results)
    notes = list(results.notes)
    if results.source_zone != plan.source_zone:
        notes.append(
            f"collector: source_zone {results.source_zone!r} replaced by the plan's "
            f"{plan.source_zone!r}"
        )
    if results.source_address and not plan.in_scope(results.source_address):
        notes.append(
            f"collector: source address {results.source_address} is outside the agency's zones"
        )
    notes += [f"collector: ignored {item}" for item in ignored]
    stored = results.model_copy(
        update={
            "source_zone": plan.source_zone,
            "started_at": started,
            "finished_at": finished,
            "results": kept,
            "notes": notes,
        }
    )
    run.source_address = results.source_address
    run.method = results.method
    run.started_at = started
    run.finished_at = finished
    run.received_at = now
    run.results = stored.model_dump(mode="json")
    session.add(run)
    session.commit()
    session.refresh(run)
    return RecordedResults(run=run, status="accepted", ignored=ignored)


def agency_of(session: Session, host_id: int) -> tuple[Agency, Host]:
    host = crud.get_host(session, host_id)
    if host is None:  # pragma: no cover - the credential points at an existing host
        raise NotFound(f"host {host_id} not found")
    agency = crud.get_agency(session, host.agency_id)
    if agency is None:  # pragma: no cover - foreign key
        raise NotFound(f"agency {host.agency_id} not found")
    return agency, host
