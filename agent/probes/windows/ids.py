"""Intrusion detection on Windows: HIDS/NIDS agents found in the service table."""

from __future__ import annotations

from typing import Literal

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.windows.powershell import ScriptError, run_script
from agent.probes.windows.services import SERVICES, Service, matching, parse_services
from agent.report import IdsProduct, IdsSection

# product, kind, service-name globs (Wazuh: src/win32/wazuh-installer.wxs; Sysmon: the
# service is named after the binary, Sysmon or Sysmon64).
IDS_SERVICES: tuple[tuple[str, Literal["nids", "hids", "ips"], tuple[str, ...]], ...] = (
    ("Wazuh agent", "hids", ("wazuhsvc",)),
    ("OSSEC HIDS", "hids", ("ossecsvc",)),
    ("Sysmon", "hids", ("sysmon", "sysmon64")),
    ("osquery", "hids", ("osqueryd",)),
    ("Microsoft Defender for Endpoint", "hids", ("sense",)),
    ("Suricata", "nids", ("suricata*",)),
    ("Snort", "nids", ("snort*",)),
)


def products_from_services(services: dict[str, Service]) -> list[IdsProduct]:
    products = []
    for name, kind, patterns in IDS_SERVICES:
        found = matching(services, patterns)
        if found:
            products.append(
                IdsProduct(
                    name=name,
                    kind=kind,
                    installed=True,
                    running=any(s.running for s in found),
                    evidence=[s.describe() for s in found],
                )
            )
    return products


def probe(ctx: ProbeContext) -> IdsSection:
    try:
        services = parse_services(run_script(ctx, SERVICES))
    except ScriptError as exc:
        return unknown(IdsSection, f"service table unreadable: {exc}")
    return IdsSection(products=products_from_services(services))
