"""Database tables (SQLModel); JSON columns use ``sqlalchemy.JSON`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, UniqueConstraint
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


class AgentCredential(SQLModel, table=True):
    """The secret an enrolled agent authenticates with; only its hash is kept."""

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


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

    __table_args__ = (
        UniqueConstraint("host_id", "first_report_id", name="uq_reportloss_first"),
    )

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    first_report_id: uuid.UUID
    last_report_id: uuid.UUID | None = None
    count: int
    evicted_since: datetime | None = _ts(nullable=True)
    evicted_until: datetime | None = _ts(nullable=True)
    reported_in: uuid.UUID = Field(description="Report that carried the record.")
    received_at: datetime = _ts()
