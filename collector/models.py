"""Database tables (SQLModel); JSON columns use ``sqlalchemy.JSON`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, LargeBinary, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

MIN_LEVEL = 1
MAX_LEVEL = 4


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timezone support and hands back naive values; they are stored
    as UTC and read back with ``tzinfo=UTC`` so comparisons never mix naive and
    aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


class Agency(SQLModel, table=True):
    """A state agency (cơ quan); its Mức độ (level 1–4) selects the applicable rules."""

    __table_args__ = (
        CheckConstraint(f"level >= {MIN_LEVEL} AND level <= {MAX_LEVEL}", name="ck_agency_level"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=255)
    level: int
    created_at: datetime = _ts()
    # Per-agency overrides of the check thresholds ({family: {key: value}}),
    # validated against policies/parameters.yaml; see collector/parameters.py.
    parameters: dict[str, Any] | None = Field(default_factory=dict, sa_type=JSON, nullable=True)


class EnrollmentToken(SQLModel, table=True):
    """A per-agency secret an administrator hands to agents to enroll; only its hash is kept."""

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    label: str | None = Field(default=None, max_length=255)
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    uses: int = 0


class Host(SQLModel, table=True):
    """A machine of an agency, created at enrollment."""

    __table_args__ = (UniqueConstraint("agency_id", "machine_id", name="uq_host_agency_machine"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    hostname: str = Field(max_length=255)
    machine_id: str | None = Field(default=None, max_length=255)
    fqdn: str | None = Field(default=None, max_length=255)
    os_family: str | None = Field(default=None, max_length=32)
    role: str = Field(default="unknown", max_length=32)
    enrolled_at: datetime = _ts()
    last_seen_at: datetime | None = _ts(nullable=True)
    # No foreign key: StoredReport already points at Host, and a cycle would
    # complicate table creation and deletion order.
    latest_report_id: uuid.UUID | None = Field(default=None)
    # The report whose StoredFinding rows are the host's current findings: the
    # latest report, or an earlier one when every report since evaluated to the
    # very same findings (ingest then stores no new rows; see ingest_store).
    # ``findings_digest`` identifies those findings (ingest_store.findings_digest).
    findings_report_id: uuid.UUID | None = Field(default=None)
    findings_digest: str | None = Field(default=None, max_length=64)


class AgentCredential(SQLModel, table=True):
    """The secret an enrolled agent authenticates with; only its hash is kept."""

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)
    # Rotation: the new credential names the one it replaces; the old one stays
    # valid until the new one is first used or ``grace_until``, whichever is first.
    replaces_id: int | None = Field(default=None, foreign_key="agentcredential.id")
    grace_until: datetime | None = _ts(nullable=True)
    first_used_at: datetime | None = _ts(nullable=True)


class StoredReport(SQLModel, table=True):
    """A report as received (validated and normalised), with the role it was evaluated for."""

    report_id: uuid.UUID = Field(primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    received_at: datetime = _ts()
    collected_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    schema_version: str = Field(max_length=16)
    agent_version: str | None = Field(default=None, max_length=64)
    evaluated_role: str = Field(default="unknown", max_length=32)
    evaluated_level: int
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class StoredFinding(SQLModel, table=True):
    """One check result of one report; ``payload`` is the full ``Finding`` as JSON."""

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    report_id: uuid.UUID = Field(foreign_key="storedreport.report_id", index=True)
    check_id: str = Field(max_length=128)
    status: str = Field(max_length=32, index=True)
    severity: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class HostInventory(SQLModel, table=True):
    """Where a host's reconstructed software inventory stands (schema 1.2 deltas).

    ``report_id`` is the last report whose software section was applied: the
    only base a delta may refer to.  ``baseline_*`` is the first full
    inventory received, from which the change history starts.
    """

    host_id: int = Field(foreign_key="host.id", primary_key=True)
    report_id: uuid.UUID
    collected_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    inventory_hash: str = Field(max_length=64)
    manager: str | None = Field(default=None, max_length=16)
    package_count: int = 0
    baseline_report_id: uuid.UUID
    baseline_collected_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = _ts()
    # The inventory's package keys as the canonical JSON that ``inventory_hash``
    # hashes (PostgreSQL compresses it, migration 0009): a delta is checked and
    # hashed from this one value instead of reading ~1,500 package rows.  None
    # until first written.
    package_keys: bytes | None = Field(default=None, sa_type=LargeBinary, nullable=True)


class HostPackage(SQLModel, table=True):
    """One package currently installed on a host (``arch`` is "" when unknown)."""

    __table_args__ = (
        UniqueConstraint("host_id", "name", "arch", "version", name="uq_hostpackage_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    name: str = Field(max_length=255, index=True)
    arch: str = Field(default="", max_length=64)
    version: str = Field(max_length=255)
    installed_at: datetime | None = _ts(nullable=True)
    seen_since: datetime = Field(
        sa_type=UTCDateTime, nullable=False, description="Collection time of the report adding it."
    )
    report_id: uuid.UUID = Field(description="Report that added it (or the baseline).")


class SoftwareChange(SQLModel, table=True):
    """History of a host's software: installed, removed, upgraded (version changed)."""

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    report_id: uuid.UUID = Field(foreign_key="storedreport.report_id", index=True)
    collected_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    change: str = Field(max_length=16)  # installed | removed | upgraded
    name: str = Field(max_length=255)
    arch: str = Field(default="", max_length=64)
    old_version: str | None = Field(default=None, max_length=255)
    new_version: str | None = Field(default=None, max_length=255)


class ReportLoss(SQLModel, table=True):
    """Reports an agent's spool evicted before delivery, as the agent reported them.

    One row per eviction record of the agent, identified by its first evicted
    report id; a resent record (the agent's acknowledgement got lost) only
    updates the row, so counts are never doubled.
    """

    __table_args__ = (UniqueConstraint("host_id", "first_report_id", name="uq_reportloss_first"),)

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    first_report_id: uuid.UUID
    last_report_id: uuid.UUID | None = None
    count: int
    evicted_since: datetime | None = _ts(nullable=True)
    evicted_until: datetime | None = _ts(nullable=True)
    reported_in: uuid.UUID = Field(description="Report that carried the record.")
    received_at: datetime = _ts()


# --- attestations and waivers --------------------------------------------------


class AttestationRecord(SQLModel, table=True):
    """A person's statement about a requirement only a person can confirm (Điều 16–19).

    Revoking keeps the row (``revoked_at``); the latest non-revoked one per
    requirement decides, and an expired one makes the requirement ``unknown``.
    """

    __table_args__ = (CheckConstraint("status IN ('pass', 'fail')", name="ck_attestation_status"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    requirement_id: str = Field(max_length=64, index=True)
    status: str = Field(default="pass", max_length=8)
    statement: str = Field(sa_type=Text)
    attested_by: str = Field(max_length=255)
    attested_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


class EvidenceFile(SQLModel, table=True):
    """A file supporting an attestation, kept in the database (shared by every worker)."""

    id: int | None = Field(default=None, primary_key=True)
    attestation_id: int = Field(foreign_key="attestationrecord.id", index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int
    sha256: str = Field(max_length=64)
    created_at: datetime = _ts()
    data: bytes = Field(sa_type=LargeBinary, nullable=False)


class WaiverRecord(SQLModel, table=True):
    """An accepted exception to one check, on one host or (``host_id`` None) the whole agency."""

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    host_id: int | None = Field(default=None, foreign_key="host.id", index=True)
    check_id: str = Field(max_length=128)
    justification: str = Field(sa_type=Text)
    author: str = Field(max_length=255)
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = _ts(nullable=True)


# --- approved software register ----------------------------------------------


class ApprovedSoftwareRecord(SQLModel, table=True):
    """An entry of an agency's register of approved software (Điều 19 khoản 3).

    ``name_pattern`` and ``version_pattern`` are exact names or shell globs
    ("libreoffice*"); no version pattern means any version.
    """

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    name_pattern: str = Field(max_length=255)
    version_pattern: str | None = Field(default=None, max_length=255)
    note: str | None = Field(default=None, max_length=1000)
    added_by: str = Field(max_length=255)
    created_at: datetime = _ts()


class SoftwareRegisterDeclaration(SQLModel, table=True):
    """The agency has declared its register of approved software (possibly empty).

    Without this row the agency has no register and fleet rules say
    ``unknown``; with it, an empty register approves nothing.  Created by the
    first entry added or explicitly (``POST …/approved-software/declare``).
    """

    agency_id: int = Field(foreign_key="agency.id", primary_key=True)
    declared_at: datetime = _ts()
    declared_by: str = Field(max_length=255)


# --- compliance history ---------------------------------------------------------


class ComplianceSnapshot(SQLModel, table=True):
    """An agency's verdict on one article at one time (after ingest or re-evaluation)."""

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    taken_at: datetime = _ts(index=True)
    article: int
    status: str = Field(max_length=32)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    framework_id: str = Field(max_length=64)
    framework_hash: str = Field(max_length=64, description="Hash of the policies in force.")
    trigger: str = Field(default="ingest", max_length=32)  # ingest | reevaluate | manual


# --- discovery ------------------------------------------------------------------


class DiscoveryScan(SQLModel, table=True):
    """One discovery sweep (nmap ping sweep + top ports) of some of an agency's networks."""

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True, index=True)
    cidrs: list[str] = Field(default_factory=list, sa_type=JSON)
    live_count: int = 0
    source: str = Field(default="collector", max_length=64)  # collector | agent:<host_id>


class DiscoveredHost(SQLModel, table=True):
    """A live address found by a discovery scan; ``matched_host_id`` is its enrolled agent."""

    id: int | None = Field(default=None, primary_key=True)
    scan_id: int = Field(foreign_key="discoveryscan.id", index=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    address: str = Field(max_length=64)
    mac: str | None = Field(default=None, max_length=32)
    hostname: str | None = Field(default=None, max_length=255)
    # [[proto, port, service], …]
    open_ports: list[list[Any]] = Field(default_factory=list, sa_type=JSON)
    matched_host_id: int | None = Field(default=None, foreign_key="host.id", index=True)


# --- network model ----------------------------------------------------------------


class Zone(SQLModel, table=True):
    """A network zone an agency declares (Điều 18 khoản 2): its kind and address ranges.

    ``probe_addresses`` are addresses inside the zone without an agent (a
    firewall, an appliance) that probes from other zones should try too.
    """

    __table_args__ = (
        UniqueConstraint("agency_id", "name", name="uq_zone_agency_name"),
        CheckConstraint(
            "kind IN ('outside', 'dmz', 'server', 'internal', 'custom')", name="ck_zone_kind"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    name: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    cidrs: list[str] = Field(default_factory=list, sa_type=JSON)
    probe_addresses: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = _ts()


class AllowedFlow(SQLModel, table=True):
    """A flow the agency allows between two of its zones (by zone name)."""

    __table_args__ = (
        CheckConstraint("protocol IN ('tcp', 'udp')", name="ck_allowedflow_protocol"),
        CheckConstraint("port >= 1 AND port <= 65535", name="ck_allowedflow_port"),
    )

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    src_zone: str = Field(max_length=64)
    dst_zone: str = Field(max_length=64)
    protocol: str = Field(default="tcp", max_length=8)
    port: int
    note: str | None = Field(default=None, max_length=1000)


class ProbeRun(SQLModel, table=True):
    """A probe plan issued to an agent and, once posted, its results.

    ``plan`` is the issued ``ProbePlan`` (its targets bound what results are
    kept); ``results`` is the ``ProbeResults`` as kept, None until posted.
    """

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    plan_id: uuid.UUID = Field(unique=True, index=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    source_zone: str = Field(max_length=64)
    source_address: str | None = Field(default=None, max_length=64)
    method: str | None = Field(default=None, max_length=16)
    issued_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    received_at: datetime | None = _ts(nullable=True, index=True)
    plan: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    results: dict[str, Any] | None = Field(default=None, sa_type=JSON, nullable=True)


class AgentlessTarget(SQLModel, table=True):
    """A server collected over SSH (no agent installed); its host key is pinned.

    ``host_key_*`` is the key an administrator trusted (None until trusted: the
    target is then never connected to).  ``host_id`` is created on the first
    collection.
    """

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    host_id: int | None = Field(default=None, foreign_key="host.id", index=True)
    address: str = Field(max_length=255)
    port: int = 22
    username: str = Field(max_length=64)
    key_path: str = Field(max_length=1000)
    role: str = Field(default="unknown", max_length=32)
    host_key_type: str | None = Field(default=None, max_length=64)
    host_key_b64: str | None = Field(default=None, sa_type=Text, nullable=True)
    host_key_sha256: str | None = Field(default=None, max_length=128)
    trusted_at: datetime | None = _ts(nullable=True)
    trusted_by: str | None = Field(default=None, max_length=255)
    interval_minutes: int = 1440
    last_run_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, sa_type=Text, nullable=True)


class User(SQLModel, table=True):
    """A person using the API or the dashboard.

    ``role`` is one of ``collector.roles.Role``; ``agency_id`` is set for agency
    roles and None for province roles.  The password is stored as an scrypt hash.
    """

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    display_name: str | None = Field(default=None, max_length=255)
    role: str = Field(max_length=32)
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = _ts()
    disabled_at: datetime | None = _ts(nullable=True)


class UserToken(SQLModel, table=True):
    """An API token or a dashboard session of a user; only its hash is kept."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    kind: str = Field(default="api", max_length=16)  # api | session
    token_hash: str = Field(max_length=64)
    label: str | None = Field(default=None, max_length=255)
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    last_used_at: datetime | None = _ts(nullable=True)


class AuditEvent(SQLModel, table=True):
    """One administrative action: who did what to which object, and when.

    Written in the same transaction as the change it records, so the log and
    the data can never disagree.
    """

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(index=True)
    actor: str = Field(max_length=255)  # "user:alice", "admin-token", "cli:root", "agent:12"
    actor_role: str = Field(max_length=32)
    user_id: int | None = Field(default=None, index=True)
    agency_id: int | None = Field(default=None, index=True)
    action: str = Field(max_length=64, index=True)  # e.g. "waiver.create"
    target: str | None = Field(default=None, max_length=255)  # e.g. "waiver:7"
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    source: str | None = Field(default=None, max_length=255)  # client IP or "cli"


class AgencyComplianceSummary(SQLModel, table=True):
    """An agency's verdict per article, materialized for the province view (collector/province.py).

    ``articles`` is what ``compliance.agency_articles`` returned at ``computed_at``
    (status and counts per article).  ``ingests`` and ``changes`` count the
    reports and the other changes (waivers, attestations, register, network…)
    committed since: a refresh subtracts what it has seen, so nothing committed
    during a refresh is forgotten.  ``valid_until`` is the next instant the
    verdicts may change by time alone (an expiry, a host falling silent).
    """

    agency_id: int = Field(foreign_key="agency.id", primary_key=True)
    computed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    valid_until: datetime = Field(sa_type=UTCDateTime, nullable=False)
    level: int = 0
    policy_hash: str = Field(default="", max_length=64)
    hosts: int = 0
    hosts_silent: int = 0
    articles: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    ingests: int = 0
    changes: int = 0
    refreshing_until: datetime | None = _ts(nullable=True)
    snapshot_at: datetime | None = _ts(nullable=True)


class IncidentRecord(SQLModel, table=True):
    """An IT incident in the agency's register (Điều 20 khoản 5; Bắc Giang Điều 7 khoản 2).

    ``category`` is one of ``collector.incidents.CATEGORIES``; ``scope`` is
    ``local`` (handled by the IT officer, reported to leadership) or ``wide``
    (serious: contained, reported, escalated to the Sở TT&TT when needed).
    """

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    host_id: int | None = Field(default=None, foreign_key="host.id", index=True)
    category: str = Field(max_length=32, index=True)
    scope: str = Field(default="local", max_length=8)
    status: str = Field(default="open", max_length=16, index=True)  # open | handling | resolved
    title: str = Field(max_length=255)
    description: str = Field(default="", sa_type=Text)
    handling: str = Field(default="", sa_type=Text)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    detected_at: datetime | None = _ts(nullable=True)
    reported_by: str = Field(max_length=255)
    leadership_informed_at: datetime | None = _ts(nullable=True)
    escalated_at: datetime | None = _ts(nullable=True)  # reported to the Sở TT&TT
    escalated_to: str | None = Field(default=None, max_length=255)
    resolved_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class NotificationEvent(SQLModel, table=True):
    """Something to tell people about (collector/notify): a new critical failure on a
    machine, a machine gone silent, a wide-scope incident.

    ``dedupe_key`` makes queueing idempotent across collector processes (the same
    silence or failure is queued once); ``payload`` holds what the message shows, so
    a message never needs the rows it was made from.
    """

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # new_failure | silent | incident
    dedupe_key: str = Field(max_length=255, unique=True)
    agency_id: int | None = Field(default=None, index=True)
    host_id: int | None = Field(default=None)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = _ts()


class NotificationDelivery(SQLModel, table=True):
    """One event to one destination (a webhook URL or an e-mail address).

    A sender claims pending rows by setting ``claim_token``/``claimed_until`` in one
    UPDATE that only matches unclaimed (or lease-expired) rows, so two collector
    processes never send the same row; ``next_attempt_at`` holds the digest window
    and the retry backoff.
    """

    __table_args__ = (
        UniqueConstraint("event_id", "channel", "recipient", name="uq_notificationdelivery"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="notificationevent.id", index=True)
    channel: str = Field(max_length=16)  # webhook | email
    recipient: str = Field(max_length=512)
    status: str = Field(default="pending", max_length=16, index=True)  # pending | sent
    attempts: int = 0
    next_attempt_at: datetime = _ts(index=True)
    claim_token: str | None = Field(default=None, max_length=36, index=True)
    claimed_until: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, sa_type=Text)
    sent_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
