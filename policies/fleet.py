"""The facts fleet rules judge: an agency's hosts, their latest results, history."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.report import Report
from policies.model import Finding
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

    def param(self, family: str, key: str) -> Any:
        return self.params[family][key]

    def age_days(self, when: datetime) -> float:
        return (self.now - when).total_seconds() / 86400

    def managed(self) -> list[FleetHost]:
        """Servers and workstations (hosts whose role is unknown count as both)."""
        return list(self.hosts)
