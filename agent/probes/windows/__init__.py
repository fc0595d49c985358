"""Windows probes: the same report sections as on Linux, from PowerShell/CIM and the registry.

Each module holds one fact family: its PowerShell scripts (``Script``), pure
parsers of their JSON output, and ``probe(ctx)``.  ``agent.collect`` uses
``probes()`` instead of the Linux modules when the agent runs on Windows.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from agent.probes.base import ProbeContext
from agent.report import Section

# section -> (module under agent.probes.windows, function)
PROBES: dict[str, tuple[str, str]] = {
    "hardware": ("hardware", "probe"),
    "os": ("osinfo", "probe"),
    "software": ("software", "probe"),
    "network": ("network", "probe"),
    "antivirus": ("antivirus", "probe"),
    "patches": ("patches", "probe"),
    "firewall": ("firewall", "probe"),
    "ids": ("ids", "probe"),
    "logging": ("eventlog", "probe"),
    "auth": ("auth", "probe"),
    "encryption": ("bitlocker", "probe"),
    "backup": ("backup", "probe"),
    "databases": ("unsupported", "probe_databases"),
    "storage": ("unsupported", "probe_storage"),
}


def probes() -> dict[str, Callable[[ProbeContext], Section]]:
    """Every Windows probe, by section name."""
    found: dict[str, Callable[[ProbeContext], Section]] = {}
    for section, (module, function) in PROBES.items():
        found[section] = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    return found
