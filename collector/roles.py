"""Who may do what: the roles of the collector and the permissions they carry.

* ``province_admin`` — Sở Thông tin và Truyền thông administrators: everything,
  including agencies, their Mức độ, users and province-wide thresholds.  The
  bootstrap admin token (``POSTURE_ADMIN_TOKEN``) acts with this role.
* ``province_reviewer`` — Sở reviewers: read every agency, change nothing.
* ``agency_admin`` — an agency's cán bộ chuyên trách CNTT: read and manage their
  own agency only (enrollment, hosts, waivers, attestations, software register,
  network zones, agentless targets).
* ``agent`` — an enrolled agent: posts its own reports and probe results only.

The matrix is enforced by the dependencies in ``collector.security`` and is
tested endpoint by endpoint (tests/collector/test_collector_roles.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from collector.credentials import AgentContext


class Role(StrEnum):
    PROVINCE_ADMIN = "province_admin"
    PROVINCE_REVIEWER = "province_reviewer"
    AGENCY_ADMIN = "agency_admin"
    AGENT = "agent"


USER_ROLES = (Role.PROVINCE_ADMIN, Role.PROVINCE_REVIEWER, Role.AGENCY_ADMIN)
PROVINCE_ROLES = (Role.PROVINCE_ADMIN, Role.PROVINCE_REVIEWER)

ROLE_LABELS: dict[Role, dict[str, str]] = {
    Role.PROVINCE_ADMIN: {"vi": "Quản trị cấp tỉnh (Sở TT&TT)", "en": "Province administrator"},
    Role.PROVINCE_REVIEWER: {"vi": "Cán bộ rà soát cấp tỉnh", "en": "Province reviewer"},
    Role.AGENCY_ADMIN: {"vi": "Cán bộ chuyên trách CNTT của đơn vị", "en": "Agency administrator"},
    Role.AGENT: {"vi": "Tác tử (agent)", "en": "Agent"},
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request (or of a CLI command)."""

    role: Role
    actor: str  # how the audit log names it: "user:alice", "admin-token", "cli:root", "agent:12"
    user_id: int | None = None
    agency_id: int | None = None  # agency roles and agents only
    agent: AgentContext | None = None
    source: str | None = None  # client address, or "cli"

    @property
    def is_province(self) -> bool:
        return self.role in PROVINCE_ROLES

    def can_read_agency(self, agency_id: int) -> bool:
        if self.is_province:
            return True
        return self.role == Role.AGENCY_ADMIN and self.agency_id == agency_id

    def can_manage_agency(self, agency_id: int) -> bool:
        if self.role == Role.PROVINCE_ADMIN:
            return True
        return self.role == Role.AGENCY_ADMIN and self.agency_id == agency_id


def cli_principal() -> Principal:
    """The operator running ``posture-collector`` on the collector host (full rights)."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        name = "unknown"
    return Principal(role=Role.PROVINCE_ADMIN, actor=f"cli:{name}", source="cli")
