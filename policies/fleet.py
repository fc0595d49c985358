"""The facts fleet rules judge: an agency's hosts, their latest results, history."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.report import Report
from policies.model import Finding
from policies.network_model import NetworkFacts
from policies.parameters import Parameters


@dataclass(frozen=True)
class FleetHost:
    host_id: int
    hostname: str
    role: str  # server | workstation | unknown
    enrolled_at: datetime
    last_seen_at: datetime | None
    findings: Mapping[str, Finding] = field(default_factory=dict)  # latest, by check id
    report: Report | None = None  # latest facts, for rules that need them


@dataclass(frozen=True)
class SoftwareChange:
    host_id: int
    hostname: str
    change: str  # installed | removed | upgraded
    name: str
    arch: str | None
    old_version: str | None
    new_version: str | None
    collected_at: datetime


@dataclass(frozen=True)
class ApprovedSoftware:
    """An entry of the agency's register of approved software (Điều 19 khoản 3)."""

    name: str  # exact name or glob, e.g. "libreoffice*"
    version: str | None = None  # glob; None = any version

    def matches(self, name: str, version: str | None) -> bool:
        if not fnmatch.fnmatchcase(name, self.name):
            return False
        return self.version is None or fnmatch.fnmatchcase(version or "", self.version)


@dataclass(frozen=True)
class BackupObservation:
    """What one report of a host said about its backups."""

    collected_at: datetime
    observed: bool  # the report had a backup section with status ok
    newest_backup_at: datetime | None = None


@dataclass(frozen=True)
class DiscoveredDevice:
    """A live address of the agency's latest discovery scan (nmap)."""

    address: str
    mac: str | None = None
    hostname: str | None = None
    open_ports: tuple[tuple[str, int, str], ...] = ()  # (proto, port, service)
    host_id: int | None = None  # the enrolled agent at this address/MAC; None: unmanaged
    scanned_at: datetime | None = None


@dataclass(frozen=True)
class FleetContext:
    level: int
    now: datetime
    params: Parameters
    hosts: Sequence[FleetHost]
    software_changes: Sequence[SoftwareChange] = ()
    # None: the agency has not declared a register (rules say unknown, not pass)
    approved_software: Sequence[ApprovedSoftware] | None = None
    # each host's backup facts over its reports, oldest first (host id → observations)
    backups: Mapping[int, Sequence[BackupObservation]] = field(default_factory=dict)
    # live hosts of the latest discovery scan; None: the agency was never scanned
    discovered: Sequence[DiscoveredDevice] | None = None
    # the declared network model and the latest probe results (None: no model declared)
    network: NetworkFacts | None = None

    def param(self, family: str, key: str) -> Any:
        return self.params[family][key]

    def age_days(self, when: datetime) -> float:
        return (self.now - when).total_seconds() / 86400

    def managed(self) -> list[FleetHost]:
        """Servers and workstations (hosts whose role is unknown count as both)."""
        return list(self.hosts)
