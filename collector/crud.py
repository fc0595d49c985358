"""Database operations.  Plain functions over a ``Session``; no HTTP here.

Functions that change data commit themselves unless documented otherwise, so
each call is one transaction.  Domain errors are raised as the exceptions
below and turned into HTTP answers by the routes (or messages by the CLI).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, func, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from agent.report import (
    DeliveryInfo,
    Package,
    PackageKey,
    SoftwareSection,
    canonical_inventory,
    package_key,
)
from collector.models import (
    MAX_LEVEL,
    MIN_LEVEL,
    Agency,
    AgentCredential,
    EnrollmentToken,
    Host,
    HostInventory,
    HostPackage,
    ReportLoss,
    SoftwareChange,
    StoredFinding,
    StoredReport,
    utcnow,
)
from collector.tokens import (
    format_agent_credential,
    hash_secret,
    new_agent_secret,
    new_enrollment_token,
    secrets_match,
)
from policies.model import Finding

log = logging.getLogger(__name__)


class CrudError(Exception):
    """Base class of domain errors; ``str(exc)`` is a user-facing message."""


class AlreadyExists(CrudError):
    pass


class NotFound(CrudError):
    pass


class EnrollmentRejected(CrudError):
    pass


class InventoryConflict(CrudError):
    """A software delta cannot be applied: the agent must send its full inventory."""


class InvalidInventory(CrudError):
    """A full inventory that contradicts its own hash (resending it cannot help)."""


# --- agencies ---------------------------------------------------------------


def create_agency(session: Session, *, code: str, name: str, level: int) -> Agency:
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"level must be between {MIN_LEVEL} and {MAX_LEVEL}, got {level}")
    if get_agency_by_code(session, code) is not None:
        raise AlreadyExists(f"an agency with code {code!r} already exists")
    agency = Agency(code=code, name=name, level=level)
    session.add(agency)
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent insert won the race
        session.rollback()
        raise AlreadyExists(f"an agency with code {code!r} already exists") from exc
    session.refresh(agency)
    return agency


def list_agencies(session: Session) -> Sequence[Agency]:
    return session.exec(select(Agency).order_by(col(Agency.code))).all()


def get_agency(session: Session, agency_id: int) -> Agency | None:
    return session.get(Agency, agency_id)


def get_agency_by_code(session: Session, code: str) -> Agency | None:
    return session.exec(select(Agency).where(Agency.code == code)).first()


# --- enrollment tokens ------------------------------------------------------


@dataclass(frozen=True)
class IssuedEnrollmentToken:
    row: EnrollmentToken
    token: str  # plaintext, returned once and never stored


def create_enrollment_token(
    session: Session,
    agency: Agency,
    *,
    label: str | None = None,
    expires_in_hours: float | None = None,
) -> IssuedEnrollmentToken:
    assert agency.id is not None
    token, token_hash = new_enrollment_token()
    now = utcnow()
    expires_at = now + timedelta(hours=expires_in_hours) if expires_in_hours else None
    row = EnrollmentToken(
        agency_id=agency.id,
        token_hash=token_hash,
        label=label,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return IssuedEnrollmentToken(row=row, token=token)


def revoke_enrollment_token(session: Session, token_id: int) -> EnrollmentToken:
    row = session.get(EnrollmentToken, token_id)
    if row is None:
        raise NotFound(f"enrollment token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
    return row


def _find_enrollment_token(session: Session, token: str) -> EnrollmentToken | None:
    row = session.exec(
        select(EnrollmentToken).where(EnrollmentToken.token_hash == hash_secret(token))
    ).first()
    # The lookup is by hash; compare again in constant time for good measure.
    if row is None or not secrets_match(token, row.token_hash):
        return None
    return row


# --- enrollment -------------------------------------------------------------


@dataclass(frozen=True)
class Enrollment:
    agency: Agency
    host: Host
    credential: AgentCredential
    plaintext: str  # the agent credential, returned once


def enroll(
    session: Session,
    *,
    token: str,
    hostname: str,
    machine_id: str | None = None,
    fqdn: str | None = None,
    os_family: str | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> Enrollment:
    """Enroll an agent with an enrollment token; one transaction.

    With a ``machine_id``, the agency's host of that machine is reused (an
    agent re-enrolling after a reinstall keeps its history) and its previous
    credentials are revoked.  Without one, a new host is created each time.
    """
    now = now or utcnow()
    row = _find_enrollment_token(session, token)
    if row is None:
        raise EnrollmentRejected("unknown enrollment token")
    if row.revoked_at is not None:
        raise EnrollmentRejected("enrollment token has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise EnrollmentRejected(f"enrollment token expired at {row.expires_at.isoformat()}")
    agency = session.get(Agency, row.agency_id)
    assert agency is not None and agency.id is not None

    host: Host | None = None
    if machine_id:
        host = session.exec(
            select(Host).where(Host.agency_id == agency.id, Host.machine_id == machine_id)
        ).first()
    if host is None:
        host = Host(
            agency_id=agency.id,
            hostname=hostname,
            machine_id=machine_id or None,
            enrolled_at=now,
        )
    host.hostname = hostname
    if fqdn is not None:
        host.fqdn = fqdn
    if os_family is not None:
        host.os_family = os_family
    if role is not None:
        host.role = role
    session.add(host)
    session.flush()
    assert host.id is not None

    for old in session.exec(
        select(AgentCredential).where(
            AgentCredential.host_id == host.id, col(AgentCredential.revoked_at).is_(None)
        )
    ).all():
        old.revoked_at = now
        session.add(old)

    secret, secret_hash = new_agent_secret()
    credential = AgentCredential(host_id=host.id, secret_hash=secret_hash, created_at=now)
    session.add(credential)
    row.uses += 1
    session.add(row)
    try:
        session.flush()
        assert credential.id is not None
        plaintext = format_agent_credential(credential.id, secret)
        session.commit()
    except Exception:
        session.rollback()
        raise
    for obj in (agency, host, credential):
        session.refresh(obj)
    return Enrollment(agency=agency, host=host, credential=credential, plaintext=plaintext)


def revoke_host_credentials(session: Session, host: Host, *, now: datetime | None = None) -> int:
    """Revoke every active credential of ``host``; returns how many were revoked."""
    now = now or utcnow()
    active = session.exec(
        select(AgentCredential).where(
            AgentCredential.host_id == host.id, col(AgentCredential.revoked_at).is_(None)
        )
    ).all()
    for credential in active:
        credential.revoked_at = now
        session.add(credential)
    session.commit()
    return len(active)


def revoke_credential(session: Session, credential_id: int) -> AgentCredential:
    credential = session.get(AgentCredential, credential_id)
    if credential is None:
        raise NotFound(f"agent credential {credential_id} not found")
    if credential.revoked_at is None:
        credential.revoked_at = utcnow()
        session.add(credential)
        session.commit()
        session.refresh(credential)
    return credential


# --- hosts ------------------------------------------------------------------


def get_host(session: Session, host_id: int) -> Host | None:
    return session.get(Host, host_id)


def list_hosts(session: Session, agency_id: int) -> Sequence[Host]:
    return session.exec(
        select(Host).where(Host.agency_id == agency_id).order_by(col(Host.hostname), col(Host.id))
    ).all()


# --- reports and findings ---------------------------------------------------


def get_report(session: Session, report_id: uuid.UUID) -> StoredReport | None:
    return session.get(StoredReport, report_id)


def add_report(
    session: Session,
    host: Host,
    *,
    report_id: uuid.UUID,
    collected_at: datetime,
    schema_version: str,
    agent_version: str | None,
    body: dict,
    role: str,
    level: int,
    findings: Sequence[Finding],
    hostname: str | None = None,
    fqdn: str | None = None,
    os_family: str | None = None,
    now: datetime | None = None,
) -> StoredReport:
    """Add a report, its findings and the host's new state to the session.

    Does not commit: the caller commits the whole ingest as one transaction.
    The host's latest report only moves forward in collection time, so a
    report delivered late from the agent's spool does not hide a newer one.
    """
    now = now or utcnow()
    assert host.id is not None
    stored = StoredReport(
        report_id=report_id,
        host_id=host.id,
        received_at=now,
        collected_at=collected_at,
        schema_version=schema_version,
        agent_version=agent_version,
        evaluated_role=role,
        evaluated_level=level,
        body=body,
    )
    session.add(stored)
    session.flush()  # the report row must exist before its findings (foreign key)
    if findings:  # one multi-row INSERT, not one ORM object per finding
        session.execute(
            insert(StoredFinding),
            [
                {
                    "host_id": host.id,
                    "report_id": report_id,
                    "check_id": finding.check_id,
                    "status": finding.status,
                    "severity": finding.severity,
                    "payload": finding.model_dump(mode="json"),
                }
                for finding in findings
            ],
        )

    # Only the collection time of the current latest report (not its body).
    current_at = (
        session.exec(
            select(StoredReport.collected_at).where(StoredReport.report_id == host.latest_report_id)
        ).first()
        if host.latest_report_id
        else None
    )
    if current_at is None or collected_at >= current_at:
        host.latest_report_id = report_id
        if hostname:
            host.hostname = hostname
        if fqdn is not None:
            host.fqdn = fqdn
        if os_family is not None:
            host.os_family = os_family
    host.last_seen_at = now
    session.add(host)
    session.flush()
    return stored


def latest_report(session: Session, host: Host) -> StoredReport | None:
    if host.latest_report_id is None:
        return None
    return session.get(StoredReport, host.latest_report_id)


def latest_findings(session: Session, host: Host, *, status: str | None = None) -> list[Finding]:
    """Findings of the host's latest report, optionally only those with ``status``."""
    if host.latest_report_id is None:
        return []
    query = select(StoredFinding).where(
        StoredFinding.host_id == host.id, StoredFinding.report_id == host.latest_report_id
    )
    if status is not None:
        query = query.where(StoredFinding.status == status)
    rows = session.exec(query.order_by(col(StoredFinding.id))).all()
    return [Finding.model_validate(row.payload) for row in rows]


# --- software inventory (deltas) --------------------------------------------


@dataclass
class AppliedSoftware:
    """Result of applying a report's software section to the host's inventory.

    ``section`` is the full inventory for evaluation; for a delta it is read
    back from the database only when asked for (no check may need it, and an
    inventory holds ~1,500 packages), inside the ingest transaction.
    """

    received: SoftwareSection
    changes: list[SoftwareChange] = field(default_factory=list)  # not yet added
    baseline: bool = False
    full: SoftwareSection | None = None
    load_full: Callable[[], SoftwareSection] | None = None

    @property
    def section(self) -> SoftwareSection:
        if self.full is None:
            self.full = self.load_full() if self.load_full is not None else self.received
        return self.full


def get_inventory(session: Session, host_id: int) -> HostInventory | None:
    return session.get(HostInventory, host_id)


def host_packages(session: Session, host_id: int, name: str | None = None) -> list[HostPackage]:
    """Current packages of a host, sorted; ``name`` filters by case-insensitive substring."""
    query = select(HostPackage).where(HostPackage.host_id == host_id)
    if name:
        query = query.where(func.lower(HostPackage.name).contains(name.lower(), autoescape=True))
    rows = session.exec(query).all()
    return sorted(rows, key=lambda r: (r.name, r.arch, r.version))


def classify_changes(
    added: Iterable[Package], removed: Iterable[Package]
) -> list[tuple[str, str, str, str | None, str | None]]:
    """``(change, name, arch, old_version, new_version)`` rows of a delta.

    Per name+arch, removed and added versions are paired as ``upgraded``
    (sorted, so a single version change is one row); what is left over is
    ``installed`` or ``removed``.  "upgraded" means "version changed": a
    downgrade is recorded the same way, with both versions.
    """
    adds: dict[tuple[str, str], list[str]] = defaultdict(list)
    rems: dict[tuple[str, str], list[str]] = defaultdict(list)
    for p in added:
        adds[(p.name, p.arch or "")].append(p.version)
    for p in removed:
        rems[(p.name, p.arch or "")].append(p.version)
    rows: list[tuple[str, str, str, str | None, str | None]] = []
    for name, arch in sorted(adds.keys() | rems.keys()):
        new, old = sorted(adds[(name, arch)]), sorted(rems[(name, arch)])
        rows += [("upgraded", name, arch, o, n) for o, n in zip(old, new, strict=False)]
        rows += [("installed", name, arch, None, n) for n in new[len(old) :]]
        rows += [("removed", name, arch, o, None) for o in old[len(new) :]]
    return rows


def apply_software(
    session: Session,
    host: Host,
    *,
    report_id: uuid.UUID,
    collected_at: datetime,
    software: SoftwareSection,
) -> AppliedSoftware:
    """Apply a report's software section to the host's stored inventory (no commit).

    - ``status`` not ok: nothing changes; the section is evaluated as is.
    - ``full``: the first one is the baseline (no history rows); later ones
      are diffed against the stored inventory, and the differences recorded.
    - ``delta``: only on top of the inventory of ``base_report_id``, strictly
      (removed packages present, added ones absent), and the result must
      match ``inventory_hash``; otherwise ``InventoryConflict`` (→ 409
      resync_required) and the caller rolls everything back.

    The stored inventory is read as ``(name, arch, version)`` keys only.  The
    change rows are returned, to be added once the report row exists.
    """
    assert host.id is not None
    if software.status != "ok":
        return AppliedSoftware(received=software)
    state = session.exec(
        select(HostInventory).where(HostInventory.host_id == host.id).with_for_update()
    ).first()

    full: SoftwareSection | None = None
    if software.mode == "delta":
        if state is None or software.base_report_id != state.report_id:
            have = f"report {state.report_id}" if state else "no inventory yet"
            raise InventoryConflict(
                f"software delta is relative to report {software.base_report_id}, but the "
                f"collector holds {have}; send the full inventory"
            )
        keys = _stored_keys(session, state)
        for package in software.removed:
            key = package_key(package)
            if key not in keys:
                raise InventoryConflict(
                    f"software delta does not apply: removed package {key} is not installed"
                )
            keys.remove(key)
        for package in software.added:
            key = package_key(package)
            if key in keys:
                raise InventoryConflict(
                    f"software delta does not apply: added package {key} is already installed"
                )
            keys.add(key)
        added, removed = list(software.added), list(software.removed)
        canonical = canonical_inventory(keys)
        new_hash = hashlib.sha256(canonical).hexdigest()
        if software.inventory_hash != new_hash:
            raise InventoryConflict(
                f"inventory hash mismatch after applying the delta (agent "
                f"{software.inventory_hash}, collector {new_hash}); send the full inventory"
            )
        package_count = len(keys)
        removed_ids = _row_ids(session, host.id, [package_key(p) for p in removed])
    else:
        unique = {(p.name, p.arch or "", p.version): p for p in software.packages}
        canonical = canonical_inventory(unique)
        new_hash = hashlib.sha256(canonical).hexdigest()
        if software.inventory_hash is not None and software.inventory_hash != new_hash:
            raise InvalidInventory(
                f"inventory_hash {software.inventory_hash} does not match the packages "
                f"of the report ({new_hash})"
            )
        current = _stored_keys(session, state) if state is not None else set()
        added = [unique[k] for k in sorted(unique.keys() - current)]
        removed_keys = sorted(current - unique.keys())
        try:
            removed_ids = _row_ids(session, host.id, removed_keys)
        except InventoryConflict:
            # The stored keys and rows disagree: the full inventory repairs both.
            log.warning("host %s: stored package keys out of step; reconciling", host.id)
            rows = _rows_by_key(session, host.id)
            added = [unique[k] for k in sorted(unique.keys() - rows.keys())]
            removed_keys = sorted(rows.keys() - unique.keys())
            removed_ids = [rows[k] for k in removed_keys]
        removed = [
            Package.model_construct(name=name, arch=arch or None, version=version)
            for name, arch, version in removed_keys
        ]
        package_count = len(unique)
        full = _full_section(software, [unique[k] for k in sorted(unique)], new_hash)

    baseline = state is None
    for start in range(0, len(removed_ids), 1000):
        session.execute(
            delete(HostPackage).where(col(HostPackage.id).in_(removed_ids[start : start + 1000]))
        )
    if added:
        session.execute(
            insert(HostPackage),
            [
                {
                    "host_id": host.id,
                    "name": package.name,
                    "arch": package.arch or "",
                    "version": package.version,
                    "installed_at": package.installed_at,
                    "seen_since": collected_at,
                    "report_id": report_id,
                }
                for package in added
            ],
        )
    if state is None:
        state = HostInventory(
            host_id=host.id,
            report_id=report_id,
            collected_at=collected_at,
            inventory_hash=new_hash,
            baseline_report_id=report_id,
            baseline_collected_at=collected_at,
        )
    state.report_id = report_id
    state.collected_at = collected_at
    state.inventory_hash = new_hash
    state.package_keys = zlib.compress(canonical, 1)
    state.manager = software.manager
    state.package_count = package_count
    state.updated_at = utcnow()
    session.add(state)

    changes = (
        []
        if baseline
        else [
            SoftwareChange(
                host_id=host.id,
                report_id=report_id,
                collected_at=collected_at,
                change=change,
                name=name,
                arch=arch,
                old_version=old,
                new_version=new,
            )
            for change, name, arch, old, new in classify_changes(added, removed)
        ]
    )

    def load_full() -> SoftwareSection:
        packages = [
            Package.model_construct(
                name=name, version=version, arch=arch or None, installed_at=installed_at
            )
            for name, arch, version, installed_at in session.execute(
                select(
                    HostPackage.name,
                    HostPackage.arch,
                    HostPackage.version,
                    HostPackage.installed_at,
                ).where(HostPackage.host_id == host.id)
            ).tuples()
        ]
        packages.sort(key=package_key)  # Python's order, as the agent sorts (not the DB's)
        return _full_section(software, packages, new_hash)

    return AppliedSoftware(
        received=software, changes=changes, baseline=baseline, full=full, load_full=load_full
    )


def _stored_keys(session: Session, state: HostInventory) -> set[PackageKey]:
    """The inventory's keys: from the compressed canonical list, else from the rows."""
    if state.package_keys is not None:
        try:
            return {
                (name, arch, version)
                for name, arch, version in json.loads(zlib.decompress(state.package_keys))
            }
        except (zlib.error, ValueError, TypeError):
            log.warning("host %s: unreadable package_keys; reading the rows", state.host_id)
    query = select(HostPackage.name, HostPackage.arch, HostPackage.version).where(
        HostPackage.host_id == state.host_id
    )
    return {(name, arch, version) for name, arch, version in session.execute(query).tuples()}


def _rows_by_key(session: Session, host_id: int) -> dict[PackageKey, int]:
    query = select(HostPackage.id, HostPackage.name, HostPackage.arch, HostPackage.version).where(
        HostPackage.host_id == host_id
    )
    return {(name, arch, version): row_id for row_id, name, arch, version in session.execute(query)}


def _row_ids(session: Session, host_id: int, keys: list[PackageKey]) -> list[int]:
    """Row ids of the packages ``keys`` (all must exist: else the inventory is out of step)."""
    if not keys:
        return []
    found: dict[PackageKey, int] = {}
    names = sorted({name for name, _, _ in keys})
    for start in range(0, len(names), 1000):
        for row_id, name, arch, version in session.execute(
            select(HostPackage.id, HostPackage.name, HostPackage.arch, HostPackage.version).where(
                HostPackage.host_id == host_id,
                col(HostPackage.name).in_(names[start : start + 1000]),
            )
        ).tuples():
            found[(name, arch, version)] = row_id
    missing = [k for k in keys if k not in found]
    if missing:
        raise InventoryConflict(
            f"the stored inventory is out of step ({missing[0]} is not stored); "
            "send the full inventory"
        )
    return [found[k] for k in keys]


def _full_section(
    software: SoftwareSection, packages: list[Package], digest: str
) -> SoftwareSection:
    return software.model_copy(
        update={
            "mode": "full",
            "packages": packages,
            "added": [],
            "removed": [],
            "base_report_id": None,
            "inventory_hash": digest,
        }
    )


def software_changes(
    session: Session, host_id: int, *, since: datetime | None = None, limit: int = 1000
) -> Sequence[SoftwareChange]:
    """A host's software history, newest report first (by name within a report)."""
    query = select(SoftwareChange).where(SoftwareChange.host_id == host_id)
    if since is not None:
        query = query.where(SoftwareChange.collected_at >= since)
    query = query.order_by(col(SoftwareChange.collected_at).desc(), col(SoftwareChange.id)).limit(
        limit
    )
    return session.exec(query).all()


# --- reports lost by agents ---------------------------------------------------


def record_report_loss(
    session: Session, host_id: int, report_id: uuid.UUID, delivery: DeliveryInfo | None
) -> ReportLoss | None:
    """Store the eviction record a report carries, idempotently (no commit)."""
    if delivery is None or delivery.evicted_count <= 0:
        return None
    first = delivery.evicted_first_report_id or report_id
    row = session.exec(
        select(ReportLoss).where(ReportLoss.host_id == host_id, ReportLoss.first_report_id == first)
    ).first()
    if row is None:
        row = ReportLoss(host_id=host_id, first_report_id=first, count=0, reported_in=report_id)
    elif delivery.evicted_count <= row.count:
        return row  # already known (a resend)
    row.count = delivery.evicted_count
    row.last_report_id = delivery.evicted_last_report_id
    row.evicted_since = delivery.evicted_since
    row.evicted_until = delivery.evicted_until
    row.reported_in = report_id
    row.received_at = utcnow()
    session.add(row)
    return row


def reports_lost(session: Session, host_ids: Iterable[int]) -> dict[int, int]:
    """Total reports each host's agent evicted before delivery (0 when none)."""
    ids = list(host_ids)
    totals = dict.fromkeys(ids, 0)
    if ids:
        query = (
            select(ReportLoss.host_id, func.sum(ReportLoss.count))
            .where(col(ReportLoss.host_id).in_(ids))
            .group_by(ReportLoss.host_id)
        )
        for host_id, total in session.exec(query).all():
            totals[host_id] = int(total or 0)
    return totals


RevocableT = TypeVar("RevocableT", bound=SQLModel)


def revoke_row(
    session: Session, model: type[RevocableT], row_id: int, label: str, now: datetime | None
) -> RevocableT:
    """Set ``revoked_at`` once (idempotent); the row is kept for the record."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"{label} {row_id} not found")
    if row.revoked_at is None:  # type: ignore[attr-defined]
        row.revoked_at = now or utcnow()  # type: ignore[attr-defined]
        session.add(row)
        session.commit()
        session.refresh(row)
    return row
