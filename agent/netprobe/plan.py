"""The contract of segmentation probing, shared by collector and agent.

The collector derives a :class:`ProbePlan` for an agent from the agency's
declared zones; the agent runs it and answers with :class:`ProbeResults`.
The agent refuses any target outside ``allowed_networks`` (the agency's
declared zone CIDRs): a plan can never make an agent scan arbitrary
addresses.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PLAN_SCHEMA_VERSION = "1.0"

PortState = Literal["open", "closed", "filtered"]
ProbeMethod = Literal["syn", "connect"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProbeTarget(_Model):
    address: str
    zone: str
    ports: list[int] = Field(default_factory=list)
    host_id: int | None = Field(default=None, description="Enrolled host at this address, if any.")


class ProbePlan(_Model):
    schema_version: str = PLAN_SCHEMA_VERSION
    plan_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    agency_id: int
    source_zone: str
    generated_at: datetime
    targets: list[ProbeTarget] = Field(default_factory=list)
    traceroute: bool = True
    max_hops: int = Field(default=8, ge=1, le=30)
    rate_per_second: float = Field(default=200.0, gt=0, description="Probe packets per second.")
    timeout_seconds: float = Field(default=1.0, gt=0, description="Wait for one answer.")
    allowed_networks: list[str] = Field(
        default_factory=list, description="CIDRs of the agency's zones; nothing else is probed."
    )

    def in_scope(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.allowed_networks)


class PortResult(_Model):
    port: int
    state: PortState
    rtt_ms: float | None = None


class TargetResult(_Model):
    address: str
    zone: str
    ports: list[PortResult] = Field(default_factory=list)
    path: list[str] | None = Field(
        default=None, description="Router addresses between source and target (traceroute)."
    )
    hops: int | None = Field(default=None, description="Routers crossed; None if not traced.")
    error: str | None = None


class ProbeResults(_Model):
    schema_version: str = PLAN_SCHEMA_VERSION
    plan_id: uuid.UUID
    source_address: str
    source_zone: str
    method: ProbeMethod
    started_at: datetime
    finished_at: datetime
    results: list[TargetResult] = Field(default_factory=list)
    refused: list[str] = Field(
        default_factory=list, description="Targets outside allowed_networks, not probed."
    )
    notes: list[str] = Field(default_factory=list)
