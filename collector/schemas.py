"""Request and response bodies of the API (separate from the tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.report import HostRole
from collector.models import MAX_LEVEL, MIN_LEVEL

OsFamily = Literal["linux", "windows", "darwin", "other"]


class ErrorDetail(BaseModel):
    detail: str | list[dict] = Field(description="What went wrong.")
    code: str | None = Field(
        default=None,
        description="Machine-readable reason, e.g. 'resync_required' (send the full inventory).",
    )


# --- agencies ---------------------------------------------------------------


class AgencyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=255)
    level: int = Field(ge=MIN_LEVEL, le=MAX_LEVEL, description="Mức độ (1–4).")


class AgencyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    level: int
    created_at: datetime


class AgencyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    level: int | None = Field(default=None, ge=MIN_LEVEL, le=MAX_LEVEL, description="Mức độ (1–4).")


class AgencyRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    level: int


class EnrollmentTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, max_length=255)
    expires_in_hours: float | None = Field(
        default=None, gt=0, description="Lifetime of the token; never expires when omitted."
    )


class EnrollmentTokenCreated(BaseModel):
    id: int
    agency_id: int
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    token: str = Field(description="The plaintext token; shown only once.")
    ca_fingerprint: str | None = Field(
        default=None,
        description="sha256:<hex> of the collector's CA (GET /api/v1/tls/ca.pem), for the agent "
        "to pin (--ca-fingerprint, or appended to the token as pe_…#sha256:…); null when "
        "the collector has no CA configured.",
    )
    enroll_command: str | None = Field(
        default=None, description="The command that enrolls a host with this token."
    )


class EnrollmentTokenPublic(BaseModel):
    id: int
    agency_id: int
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    uses: int
    state: str = Field(description="active | expired | revoked")

    @classmethod
    def from_row(cls, row: Any, now: datetime) -> EnrollmentTokenPublic:
        if row.revoked_at is not None:
            state = "revoked"
        elif row.expires_at is not None and row.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        return cls(
            id=row.id,
            agency_id=row.agency_id,
            label=row.label,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            uses=row.uses,
            state=state,
        )


# --- enrollment -------------------------------------------------------------


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, description="Enrollment token (pe_…).")
    hostname: str = Field(min_length=1, max_length=255)
    machine_id: str | None = Field(default=None, max_length=255)
    fqdn: str | None = Field(default=None, max_length=255)
    os_family: OsFamily | None = None
    role: HostRole | None = Field(
        default=None, description="Role set by the administrator; 'unknown' when omitted."
    )


class EnrollResponse(BaseModel):
    agent_id: int = Field(description="Id of the issued credential.")
    host_id: int
    credential: str = Field(description="Agent credential (pa_…); shown only once.")
    agency: AgencyRef


# --- hosts ------------------------------------------------------------------


class HostPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agency_id: int
    hostname: str
    machine_id: str | None
    fqdn: str | None
    os_family: str | None
    role: str
    enrolled_at: datetime
    last_seen_at: datetime | None
    latest_report_id: uuid.UUID | None
    reports_lost: int = Field(
        default=0,
        description="Reports the agent's spool evicted (full) before they could be delivered.",
    )


class InstalledPackage(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    arch: str | None
    version: str
    installed_at: datetime | None
    seen_since: datetime = Field(description="Collection time of the report that added it.")
    report_id: uuid.UUID


class HostSoftware(BaseModel):
    """A host's current software inventory, reconstructed from full lists and deltas."""

    host_id: int
    report_id: uuid.UUID | None = Field(description="Last report applied; null: none yet.")
    collected_at: datetime | None
    inventory_hash: str | None
    manager: str | None
    baseline_report_id: uuid.UUID | None = Field(
        description="First full inventory received; the change history starts there."
    )
    baseline_collected_at: datetime | None
    package_count: int = Field(description="Packages installed (before the name filter).")
    packages: list[InstalledPackage]


class SoftwareChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    report_id: uuid.UUID
    collected_at: datetime
    change: Literal["installed", "removed", "upgraded"]
    name: str
    arch: str | None
    old_version: str | None
    new_version: str | None


class HostSoftwareChanges(BaseModel):
    """Software installed, removed or upgraded (version changed) on a host, newest first."""

    host_id: int
    baseline_report_id: uuid.UUID | None
    baseline_collected_at: datetime | None
    changes: list[SoftwareChangePublic]


class RevokeResult(BaseModel):
    host_id: int
    revoked: int = Field(description="Number of credentials revoked by this call.")


# --- reports ----------------------------------------------------------------


class VerdictSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    pass_: int = Field(alias="pass", serialization_alias="pass")
    fail: int
    unknown: int
    not_applicable: int


_ROTATE_CREDENTIAL = (
    "True when the agent should rotate its credential now (POST "
    "/api/v1/agent/credential/rotate): it is older than credential_max_age_days, or it "
    "was already replaced by a rotation the agent did not complete."
)


class ReportAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    report_id: uuid.UUID
    host_id: int
    summary: VerdictSummary
    rotate_credential: bool = Field(default=False, description=_ROTATE_CREDENTIAL)


class ReportDuplicate(BaseModel):
    status: Literal["duplicate"] = "duplicate"
    report_id: uuid.UUID
    host_id: int
    rotate_credential: bool = Field(default=False, description=_ROTATE_CREDENTIAL)


# --- agent credentials --------------------------------------------------------


class AgentCredentialInfo(BaseModel):
    """The credential the agent authenticated with."""

    agent_id: int = Field(description="Id of the credential.")
    host_id: int
    created_at: datetime | None
    superseded_until: datetime | None = Field(
        description="Set when a rotation replaced this credential: it stops working then "
        "(or as soon as the new one is used)."
    )
    rotate_credential: bool = Field(description=_ROTATE_CREDENTIAL)


class CredentialRotated(BaseModel):
    agent_id: int = Field(description="Id of the new credential.")
    host_id: int
    credential: str = Field(
        description="The new agent credential (pa_…); shown only once. Store it before "
        "using it: the old one is revoked at its first use."
    )
    replaces_id: int = Field(description="Id of the credential it replaces.")
    old_valid_until: datetime = Field(
        description="The old credential keeps working until the new one is first used or "
        "until this time, whichever comes first."
    )


class Health(BaseModel):
    status: Literal["ok"] = "ok"
