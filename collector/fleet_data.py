"""The facts agency-wide (fleet) rules judge, gathered from the collector's database.

:func:`fleet_context` builds a :class:`policies.fleet.FleetContext`
(a :class:`policies.fleet.FleetContext` with each host's backup history) for
one agency: its hosts with role, enrollment and last contact, their latest
findings (with the waivers in force), their latest report rebuilt from the
stored body with the full reconstructed software inventory, the software
installed/upgraded/removed within ``fleet.software_change_window_days``, and
the agency's register of approved software (``None`` when not declared).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from agent.report import Package, Report, SoftwareSection
from collector import crud
from collector.models import (
    Agency,
    ApprovedSoftwareRecord,
    Host,
    HostInventory,
    HostPackage,
    SoftwareRegisterDeclaration,
    StoredFinding,
    StoredReport,
    utcnow,
)
from collector.models import SoftwareChange as SoftwareChangeRow
from collector.parameters import InvalidParameters, effective_parameters
from collector.settings import Settings
from collector.waivers import active_waivers
from policies import engine
from policies import parameters as policy_parameters
from policies.exceptions import Waiver, apply_waivers
from policies.fleet import (
    ApprovedSoftware,
    BackupObservation,
    DiscoveredDevice,
    FleetContext,
    FleetHost,
    SoftwareChange,
)
from policies.model import Finding
from policies.network_model import NetworkFacts
from policies.parameters import Parameters

log = logging.getLogger(__name__)


# --- parameters -----------------------------------------------------------------


def agency_parameters(agency: Agency, settings: Settings | None = None) -> Parameters:
    """The thresholds the agency is evaluated with, as at ingest.

    Defaults ← province file ← agency overrides (``collector.parameters``);
    unusable overrides fall back on the policy defaults here (a read view must
    not break), where ingest refuses the report.
    """
    try:
        return effective_parameters(settings or Settings(), agency)
    except InvalidParameters:
        log.exception("parameters of agency %s unusable; using the defaults", agency.code)
        return policy_parameters.default_parameters()


# --- reports --------------------------------------------------------------------


def full_software(session: Session, host_id: int, section: SoftwareSection) -> SoftwareSection:
    """The full software inventory as evaluation sees it (see ``crud.apply_software``).

    A delta report's body holds only the differences; the host's reconstructed
    inventory (``HostPackage`` rows) is the full list.  A section that was not
    observed (status unknown) is returned as is.
    """
    if section.status != "ok":
        return section
    state = crud.get_inventory(session, host_id)
    if state is None:
        return section
    packages = [
        Package(name=r.name, version=r.version, arch=r.arch or None, installed_at=r.installed_at)
        for r in crud.host_packages(session, host_id)
    ]
    return section.model_copy(
        update={
            "mode": "full",
            "packages": packages,
            "added": [],
            "removed": [],
            "base_report_id": None,
            "inventory_hash": state.inventory_hash,
            "manager": state.manager or section.manager,
        }
    )


def rebuild_report(session: Session, stored: StoredReport) -> Report | None:
    """A stored report as a ``Report``, with the host's full software inventory."""
    try:
        report = Report.model_validate(stored.body)
    except ValidationError:
        log.exception("stored report %s no longer validates", stored.report_id)
        return None
    software = full_software(session, stored.host_id, report.software)
    return report.model_copy(update={"software": software})


# --- findings -------------------------------------------------------------------


def host_findings(
    session: Session, host: Host, now: datetime, waivers: Sequence[Waiver] | None
) -> dict[str, Finding]:
    findings = crud.latest_findings(session, host)
    if waivers:
        findings = apply_waivers(findings, waivers, now, host.id)
    return {f.check_id: f for f in findings}


def _role(host: Host, stored: StoredReport | None) -> str:
    for candidate in (host.role, stored.evaluated_role if stored else None):
        if candidate in ("server", "workstation"):
            return candidate
    return "unknown"


# --- software register ------------------------------------------------------------


def register_declaration(session: Session, agency_id: int) -> SoftwareRegisterDeclaration | None:
    return session.get(SoftwareRegisterDeclaration, agency_id)


def register_entries(session: Session, agency_id: int) -> Sequence[ApprovedSoftwareRecord]:
    return session.exec(
        select(ApprovedSoftwareRecord)
        .where(ApprovedSoftwareRecord.agency_id == agency_id)
        .order_by(col(ApprovedSoftwareRecord.name_pattern), col(ApprovedSoftwareRecord.id))
    ).all()


def approved_register(session: Session, agency_id: int) -> list[ApprovedSoftware] | None:
    """The agency's register for the rules; ``None`` when it never declared one."""
    if register_declaration(session, agency_id) is None:
        return None
    return [
        ApprovedSoftware(name=r.name_pattern, version=r.version_pattern)
        for r in register_entries(session, agency_id)
    ]


# --- history ----------------------------------------------------------------------


def _observation(collected_at: datetime, body: dict[str, Any]) -> BackupObservation:
    raw = body.get("backup")
    if not isinstance(raw, dict) or raw.get("status", "ok") != "ok":
        return BackupObservation(collected_at=collected_at, observed=False)
    newest = raw.get("newest_backup_at")
    newest_at = None
    if newest:
        try:
            newest_at = datetime.fromisoformat(str(newest).replace("Z", "+00:00"))
        except ValueError:
            newest_at = None
    return BackupObservation(collected_at=collected_at, observed=True, newest_backup_at=newest_at)


def backup_history(
    session: Session, changes: Iterable[SoftwareChange]
) -> dict[int, list[BackupObservation]]:
    """For each change, the backup facts of the host's latest report at or before it.

    That report is almost always the one that recorded the change (same host, same
    collection time): those are read together, their backup sections only, a few
    hundred changes per statement; any other change looks back on its own."""
    wanted = sorted({(c.host_id, c.collected_at) for c in changes if c.change != "removed"})
    history: dict[int, dict[datetime, BackupObservation]] = {}
    found: set[tuple[int, datetime]] = set()
    backup = col(StoredReport.body)["backup"]
    for chunk in _chunks(wanted):
        pairs = tuple_(col(StoredReport.host_id), col(StoredReport.collected_at))
        for host_id, collected_at, section in session.execute(
            select(StoredReport.host_id, StoredReport.collected_at, backup).where(
                pairs.in_(list(chunk))
            )
        ):
            obs = _observation(collected_at, {"backup": section})
            history.setdefault(host_id, {})[obs.collected_at] = obs
            found.add((host_id, obs.collected_at))
    for host_id, when in wanted:
        if (host_id, when) in found:
            continue
        stored = session.exec(
            select(StoredReport.collected_at, backup)
            .where(StoredReport.host_id == host_id, StoredReport.collected_at <= when)
            .order_by(col(StoredReport.collected_at).desc())
            .limit(1)
        ).first()
        if stored is not None:
            obs = _observation(stored[0], {"backup": stored[1]})
            history.setdefault(host_id, {})[obs.collected_at] = obs
    return {h: sorted(o.values(), key=lambda x: x.collected_at) for h, o in history.items()}


# --- the context ------------------------------------------------------------------


def _network_facts(session: Session, agency: Agency, now: datetime) -> NetworkFacts | None:
    """The declared network model and latest probe results (collector.network)."""
    from collector import network

    try:
        return network.network_facts(session, agency, now)
    except Exception:  # the network facts must never break the fleet view
        log.exception("could not gather the network facts of agency %s", agency.code)
        return None


def discovered_devices(session: Session, agency_id: int) -> list[DiscoveredDevice] | None:
    """Live hosts of the agency's latest discovery scan (None: never scanned)."""
    from collector.scanner.discovery import discovered_devices as from_scan

    return from_scan(session, agency_id)


def _latest_reports(session: Session, hosts: Sequence[Host]) -> dict[uuid.UUID, StoredReport]:
    ids = [h.latest_report_id for h in hosts if h.latest_report_id is not None]
    reports: dict[uuid.UUID, StoredReport] = {}
    for chunk in _chunks(ids):
        for row in session.exec(
            select(StoredReport).where(col(StoredReport.report_id).in_(chunk))
        ).all():
            reports[row.report_id] = row
    return reports


def _chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _latest_findings(session: Session, hosts: Sequence[Host]) -> dict[int, list[Finding]]:
    """Each host's latest findings (``crud.latest_findings`` for many hosts at once)."""
    latest = {h.findings_report_id: h.id for h in hosts if h.findings_report_id is not None}
    out: dict[int, list[Finding]] = {}
    for chunk in _chunks(list(latest)):
        rows = session.exec(
            select(StoredFinding.host_id, StoredFinding.report_id, StoredFinding.payload)
            .where(col(StoredFinding.report_id).in_(chunk))
            .order_by(col(StoredFinding.id))
        ).all()
        for host_id, report_id, payload in rows:
            if latest.get(report_id) == host_id:
                out.setdefault(host_id, []).append(Finding.model_validate(payload))
    return out


class LazyPackages(list):
    """A host's full package list, read from ``HostPackage`` when first used.

    Only some fleet rules look at packages, and only of some hosts (e.g.
    servers sharing files): loading 1,500 packages of every host for every
    agency-wide evaluation would dominate its cost.  The list behaves as the
    loaded list (sorted like ``crud.host_packages``) for every read; it must be
    read while the session it was made with is open.
    """

    def __init__(self, session: Session, host_id: int) -> None:
        super().__init__()
        self._session: Session | None = session
        self._host_id = host_id

    def _load(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        rows = session.exec(
            select(
                HostPackage.name, HostPackage.arch, HostPackage.version, HostPackage.installed_at
            ).where(HostPackage.host_id == self._host_id)
        ).all()
        super().extend(
            Package.model_construct(name=n, version=v, arch=a or None, installed_at=i)
            for n, a, v, i in sorted(rows, key=lambda r: (r[0], r[1], r[2]))
        )

    def __iter__(self) -> Iterator[Package]:
        self._load()
        return super().__iter__()

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def __getitem__(self, index: Any) -> Any:
        self._load()
        return super().__getitem__(index)

    def __contains__(self, value: object) -> bool:
        self._load()
        return super().__contains__(value)

    def __reversed__(self) -> Iterator[Package]:
        self._load()
        return super().__reversed__()

    def __eq__(self, other: object) -> bool:
        self._load()
        if isinstance(other, LazyPackages):
            other._load()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._load()
        return super().__repr__()

    def copy(self) -> list[Package]:
        self._load()
        return list(super().__iter__())

    def index(self, *args: Any) -> int:
        self._load()
        return super().index(*args)

    def count(self, value: Any) -> int:
        self._load()
        return super().count(value)


def _inventories(session: Session, host_ids: Sequence[int]) -> dict[int, HostInventory]:
    """Inventory state per host (the packages are read lazily, see ``LazyPackages``)."""
    states: dict[int, HostInventory] = {}
    for chunk in _chunks(host_ids):
        for state in session.exec(
            select(HostInventory).where(col(HostInventory.host_id).in_(chunk))
        ).all():
            states[state.host_id] = state
    return states


def _rebuild(
    stored: StoredReport, state: HostInventory | None, packages: list[Package]
) -> Report | None:
    """``rebuild_report`` from preloaded inventory (the packages of the body are not
    validated when the reconstructed inventory replaces them)."""
    body = stored.body
    software = body.get("software") if isinstance(body, dict) else None
    replaced = (
        state is not None and isinstance(software, dict) and software.get("status", "ok") == "ok"
    )
    if replaced:
        assert isinstance(software, dict)
        body = {**body, "software": {**software, "packages": [], "added": [], "removed": []}}
    try:
        report = Report.model_validate(body)
    except ValidationError:
        log.exception("stored report %s no longer validates", stored.report_id)
        return None
    section = report.software
    if section.status != "ok" or state is None:
        return report
    full = section.model_copy(
        update={
            "mode": "full",
            "packages": packages,
            "added": [],
            "removed": [],
            "base_report_id": None,
            "inventory_hash": state.inventory_hash,
            "manager": state.manager or section.manager,
        }
    )
    return report.model_copy(update={"software": full})


def _recent_changes(
    session: Session, host_ids: Sequence[int], since: datetime, limit: int = 1000
) -> dict[int, list[SoftwareChangeRow]]:
    """``crud.software_changes(since=…, limit=…)`` for many hosts at once."""
    out: dict[int, list[SoftwareChangeRow]] = {}
    for chunk in _chunks(host_ids):
        rows = session.exec(
            select(SoftwareChangeRow)
            .where(
                col(SoftwareChangeRow.host_id).in_(chunk),
                SoftwareChangeRow.collected_at >= since,
            )
            .order_by(col(SoftwareChangeRow.collected_at).desc(), col(SoftwareChangeRow.id))
        ).all()
        for row in rows:
            bucket = out.setdefault(row.host_id, [])
            if len(bucket) < limit:
                bucket.append(row)
    return out


def fleet_context(
    session: Session,
    agency: Agency,
    now: datetime | None = None,
    params: Parameters | None = None,
    settings: Settings | None = None,
) -> FleetContext:
    """Everything the fleet rules need about ``agency`` at ``now``.

    Loaded with a handful of queries for the whole agency (not several per host).
    """
    assert agency.id is not None
    now = now or utcnow()
    params = params or agency_parameters(agency, settings)
    since = now - timedelta(days=params["fleet"]["software_change_window_days"])
    waivers = active_waivers(session, agency.id, now)

    host_rows = crud.list_hosts(session, agency.id)
    host_ids = [h.id for h in host_rows if h.id is not None]
    reports = _latest_reports(session, host_rows)
    findings = _latest_findings(session, host_rows)
    states = _inventories(session, host_ids)
    recent = _recent_changes(session, host_ids, since)

    hosts: list[FleetHost] = []
    changes: list[SoftwareChange] = []
    for host in host_rows:
        assert host.id is not None
        stored = reports.get(host.latest_report_id) if host.latest_report_id else None
        host_findings_: dict[str, Finding] = {}
        if stored is not None:
            latest = findings.get(host.id, [])
            if waivers:
                latest = apply_waivers(latest, waivers, now, host.id)
            host_findings_ = {f.check_id: f for f in latest}
        hosts.append(
            FleetHost(
                host_id=host.id,
                hostname=host.hostname,
                role=_role(host, stored),
                enrolled_at=host.enrolled_at,
                last_seen_at=host.last_seen_at,
                findings=host_findings_,
                report=(
                    _rebuild(stored, states.get(host.id), LazyPackages(session, host.id))
                    if stored
                    else None
                ),
            )
        )
        changes += [
            SoftwareChange(
                host_id=host.id,
                hostname=host.hostname,
                change=row.change,
                name=row.name,
                arch=row.arch or None,
                old_version=row.old_version,
                new_version=row.new_version,
                collected_at=row.collected_at,
            )
            for row in recent.get(host.id, [])
            if row.collected_at <= now
        ]
    return FleetContext(
        level=agency.level,
        now=now,
        params=params,
        hosts=hosts,
        software_changes=changes,
        approved_software=approved_register(session, agency.id),
        backups=backup_history(session, changes),
        network=_network_facts(session, agency, now),
        discovered=discovered_devices(session, agency.id),
    )


def fleet_findings(
    session: Session, agency: Agency, now: datetime | None = None, settings: Settings | None = None
) -> list[Finding]:
    """The agency's fleet rule results, with its agency-wide waivers applied."""
    assert agency.id is not None
    now = now or utcnow()
    findings = engine.evaluate_fleet(fleet_context(session, agency, now, settings=settings))
    return apply_waivers(findings, active_waivers(session, agency.id, now), now, None)
