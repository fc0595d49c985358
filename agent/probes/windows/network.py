"""Interfaces and listening sockets: the psutil-based Linux probe works on Windows as is."""

from __future__ import annotations

from agent.probes import network as portable
from agent.probes.base import ProbeContext
from agent.report import NetworkSection


def probe(ctx: ProbeContext) -> NetworkSection:
    section = portable.probe(ctx)
    # The service runs as LocalSystem: the Linux "not root" caveat does not apply.
    section.notes = [n for n in section.notes if not n.startswith("not root")]
    return section
