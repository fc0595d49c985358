"""Families the Windows agent does not collect yet: reported as unknown, with the reason."""

from __future__ import annotations

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.report import DatabaseSection, StorageSection

REASON = "not collected by the Windows agent yet"


def probe_databases(ctx: ProbeContext) -> DatabaseSection:
    return unknown(DatabaseSection, f"database servers: {REASON}")


def probe_storage(ctx: ProbeContext) -> StorageSection:
    return unknown(StorageSection, f"network storage: {REASON}")
