"""Antivirus on Windows: Microsoft Defender in depth, other products from Security Center.

* Defender: ``Get-MpComputerStatus`` (same data as WMI ``MSFT_MpComputerStatus``):
  ``AMServiceEnabled``/``AntivirusEnabled``/``AMRunningMode`` → running,
  ``RealTimeProtectionEnabled`` → realtime, ``AntivirusSignatureVersion`` and
  ``AntivirusSignatureLastUpdated`` → signatures, newest of ``QuickScanEndTime``
  / ``FullScanEndTime`` → last scan.  Error 0x800106BA means the Defender
  service is not running (switched off, or replaced by another product).
* Third-party products: ``root/SecurityCenter2`` ``AntiVirusProduct``; the
  ``productState`` bit field (``0xPPSSUU``, not documented by Microsoft but
  decoded the same way by every inventory tool) gives enabled
  (``state & 0xF000 == 0x1000``) and signatures up to date
  (``state & 0x00F0 == 0``); ``0x0100`` marks Microsoft's own entry.
* Windows Server has no Security Center ("Invalid namespace"): known
  antivirus services are looked up in the service table instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.windows.powershell import (
    Script,
    ScriptError,
    as_bool,
    as_int,
    as_list,
    as_str,
    parse_ps_datetime,
    run_script,
)
from agent.probes.windows.services import SERVICES, Service, matching, parse_services
from agent.report import AntivirusProduct, AntivirusSection

DEFENDER_NAME = "Microsoft Defender Antivirus"
DEFENDER_NOT_RUNNING = "800106ba"  # HRESULT: the Defender service is not running
NEVER_SCANNED_AGE = 4294967295  # QuickScanAge/FullScanAge when no scan ever ran
PASSIVE_MODES = ("passive", "edr block", "sxs passive")

DEFENDER = Script(
    "defender_status",
    "Get-MpComputerStatus | Select-Object AMServiceEnabled, AntivirusEnabled,"
    " RealTimeProtectionEnabled, OnAccessProtectionEnabled, BehaviorMonitorEnabled,"
    " AMRunningMode, AMProductVersion, AntivirusSignatureVersion,"
    " AntivirusSignatureLastUpdated, AntivirusSignatureAge, DefenderSignaturesOutOfDate,"
    " QuickScanEndTime, QuickScanAge, FullScanEndTime, FullScanAge, IsTamperProtected |"
    " ConvertTo-Json -Compress",
)
SECURITY_CENTER = Script(
    "wsc_antivirus",
    "$av = Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct |"
    " Select-Object displayName, instanceGuid, pathToSignedProductExe, productState, timestamp\n"
    "ConvertTo-Json -Compress -InputObject @($av)",
)

# Antivirus services, for Windows Server (no Security Center): product, service globs.
SERVICE_PRODUCTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ESET", ("ekrn",)),
    ("Kaspersky", ("avp", "avp.*", "kavfs*")),
    ("Bitdefender", ("epsecurityservice", "vsserv")),
    ("Symantec Endpoint Protection", ("sepmasterservice",)),
    ("Trellix / McAfee", ("mfemms", "mcshield")),
    ("Sophos", ("sophos file scanner service", "savservice", "sophos endpoint defense*")),
    ("Trend Micro", ("ntrtscan", "ds_agent")),
    ("CrowdStrike Falcon", ("csfalconservice",)),
    ("SentinelOne", ("sentinelagent",)),
    ("Bkav", ("bkav*",)),
    ("CMC Antivirus", ("cmc*antivirus*", "cmcav*")),
)


# --- pure parsers ---------------------------------------------------------------------


@dataclass(frozen=True)
class WscState:
    enabled: bool
    snoozed: bool
    expired: bool
    up_to_date: bool
    microsoft: bool


def decode_product_state(state: int) -> WscState:
    """Decode Security Center's ``productState`` (``0xPPSSUU``)."""
    scanner = state & 0xF000
    return WscState(
        enabled=scanner == 0x1000,
        snoozed=scanner == 0x2000,
        expired=scanner == 0x3000,
        up_to_date=(state & 0x00F0) == 0x00,
        microsoft=(state & 0x0F00) == 0x0100,
    )


def defender_from_status(data: Any) -> AntivirusProduct:
    """The Defender product from ``Get-MpComputerStatus | ConvertTo-Json``."""
    [status] = as_list(data) or [{}]
    service = as_bool(status.get("AMServiceEnabled"))
    engine = as_bool(status.get("AntivirusEnabled"))
    mode = as_str(status.get("AMRunningMode"))
    passive = bool(mode and mode.lower().startswith(PASSIVE_MODES))
    running: bool | None = None
    if service is not None and engine is not None:
        running = service and engine and not passive
    realtime = as_bool(status.get("RealTimeProtectionEnabled"))
    if realtime and running is False:
        realtime = False  # the setting is on but nothing enforces it
    evidence = [
        f"AMServiceEnabled={service}, AntivirusEnabled={engine}, "
        f"RealTimeProtectionEnabled={as_bool(status.get('RealTimeProtectionEnabled'))}",
    ]
    if mode:
        evidence.append(f"AMRunningMode={mode}")
    scans: list[Any] = []
    for kind in ("Quick", "Full"):
        when = parse_ps_datetime(status.get(f"{kind}ScanEndTime"))
        age = as_int(status.get(f"{kind}ScanAge"))
        if when is not None:
            scans.append(when)
            evidence.append(f"last {kind.lower()} scan {when.isoformat()}")
        elif age == NEVER_SCANNED_AGE:
            evidence.append(f"no {kind.lower()} scan ever ran")
    out_of_date = as_bool(status.get("DefenderSignaturesOutOfDate"))
    age_days = as_int(status.get("AntivirusSignatureAge"))
    if age_days is not None:
        evidence.append(f"AntivirusSignatureAge={age_days} day(s)")
    return AntivirusProduct(
        name=DEFENDER_NAME,
        installed=True,
        running=running,
        realtime=realtime,
        signature_version=as_str(status.get("AntivirusSignatureVersion")),
        signature_updated_at=parse_ps_datetime(status.get("AntivirusSignatureLastUpdated")),
        last_scan_at=max(scans) if scans else None,
        signatures_up_to_date=None if out_of_date is None else not out_of_date,
        evidence=evidence,
    )


def defender_not_running(message: str) -> AntivirusProduct:
    return AntivirusProduct(
        name=DEFENDER_NAME,
        installed=True,
        running=False,
        realtime=False,
        evidence=[f"Get-MpComputerStatus: {message}"],
    )


def products_from_security_center(data: Any) -> list[AntivirusProduct]:
    """Products registered in ``root/SecurityCenter2`` ``AntiVirusProduct``."""
    products: list[AntivirusProduct] = []
    for row in as_list(data):
        name = as_str(row.get("displayName"))
        state = as_int(row.get("productState"))
        if not name or state is None:
            continue
        decoded = decode_product_state(state)
        condition = (
            "on"
            if decoded.enabled
            else "snoozed"
            if decoded.snoozed
            else "expired"
            if decoded.expired
            else "off"
        )
        signatures = "up to date" if decoded.up_to_date else "out of date"
        evidence = [f"Security Center: productState=0x{state:06X} ({condition}, {signatures})"]
        if path := as_str(row.get("pathToSignedProductExe")):
            evidence.append(path)
        products.append(
            AntivirusProduct(
                name=name,
                installed=True,
                running=decoded.enabled,
                realtime=decoded.enabled,
                signatures_up_to_date=decoded.up_to_date,
                evidence=evidence,
            )
        )
    return products


def products_from_services(services: dict[str, Service]) -> list[AntivirusProduct]:
    products = []
    for name, patterns in SERVICE_PRODUCTS:
        found = matching(services, patterns)
        if found:
            products.append(
                AntivirusProduct(
                    name=name,
                    installed=True,
                    running=any(s.running for s in found),
                    evidence=[s.describe() for s in found],
                )
            )
    return products


def merge(
    defender: AntivirusProduct | None, registered: list[AntivirusProduct]
) -> list[AntivirusProduct]:
    """Defender's own status wins over its Security Center entry; others are kept."""
    products = [defender] if defender else []
    for product in registered:
        is_defender = "defender" in product.name.lower()
        if is_defender and defender is not None:
            update: dict[str, Any] = {"evidence": defender.evidence + product.evidence}
            if defender.signatures_up_to_date is None:
                update["signatures_up_to_date"] = product.signatures_up_to_date
            products[0] = defender = defender.model_copy(update=update)
        else:
            products.append(product)
    return products


# --- the probe ------------------------------------------------------------------------


@dataclass
class _Found:
    notes: list[str] = field(default_factory=list)
    answered: int = 0  # third-party sources that answered (even "none")


def _defender(ctx: ProbeContext, found: _Found) -> AntivirusProduct | None:
    try:
        data = run_script(ctx, DEFENDER)
    except ScriptError as exc:
        if DEFENDER_NOT_RUNNING in exc.message.lower():
            return defender_not_running(exc.message)
        if exc.kind == "missing" and "PowerShell" not in exc.message:
            found.notes.append("Microsoft Defender is not installed (no Get-MpComputerStatus)")
        else:
            found.notes.append(f"Defender status unreadable: {exc}")
        return None
    return defender_from_status(data)


def _registered(ctx: ProbeContext, found: _Found) -> list[AntivirusProduct]:
    try:
        data = run_script(ctx, SECURITY_CENTER)
    except ScriptError as exc:
        if exc.kind != "missing" or "PowerShell" in exc.message:
            found.notes.append(f"Security Center unreadable: {exc}")
            return []
        found.notes.append("no Windows Security Center (Windows Server): antivirus services read")
    else:
        found.answered += 1
        return products_from_security_center(data)
    try:
        services = parse_services(run_script(ctx, SERVICES))
    except ScriptError as exc:
        found.notes.append(f"service table unreadable: {exc}")
        return []
    found.answered += 1
    return products_from_services(services)


def probe(ctx: ProbeContext) -> AntivirusSection:
    found = _Found()
    defender = _defender(ctx, found)
    registered = _registered(ctx, found)
    products = merge(defender, registered)
    if not products and found.answered == 0:
        return unknown(AntivirusSection, "; ".join(found.notes), notes=found.notes)
    return AntivirusSection(products=products, notes=found.notes)
