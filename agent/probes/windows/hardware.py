"""Hardware on Windows, from CIM: Win32_ComputerSystem, Win32_BIOS, Win32_SystemEnclosure,
Win32_Processor, Win32_LogicalDisk (local fixed disks) and Win32_OperatingSystem
(``ProductType``: 1 workstation, 2 domain controller, 3 server)."""

from __future__ import annotations

from typing import Any

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.probes.hardware import clean_dmi_value, dmi_says_virtual, role_from_chassis
from agent.probes.windows.powershell import (
    Script,
    ScriptError,
    as_int,
    as_list,
    as_str,
    run_script,
)
from agent.report import DiskInfo, HardwareSection, HostRole

HARDWARE = Script(
    "hardware",
    """$cs = Get-CimInstance -ClassName Win32_ComputerSystem
$bios = Get-CimInstance -ClassName Win32_BIOS
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$enc = @(Get-CimInstance -ClassName Win32_SystemEnclosure)
$cpu = @(Get-CimInstance -ClassName Win32_Processor |
  Select-Object Name, NumberOfCores, NumberOfLogicalProcessors)
$disks = @(Get-CimInstance -ClassName Win32_LogicalDisk -Filter 'DriveType=3' |
  Select-Object DeviceID, FileSystem, Size)
[pscustomobject]@{
  Manufacturer = $cs.Manufacturer; Model = $cs.Model; PCSystemType = $cs.PCSystemType
  TotalPhysicalMemory = $cs.TotalPhysicalMemory
  NumberOfLogicalProcessors = $cs.NumberOfLogicalProcessors
  SerialNumber = $bios.SerialNumber; ChassisTypes = @($enc | ForEach-Object { $_.ChassisTypes })
  ProductType = $os.ProductType; Processors = $cpu; Disks = $disks
} | ConvertTo-Json -Compress -Depth 4""",
)

SERVER_PC_SYSTEM_TYPES = {4, 5, 7}  # Enterprise Server, SOHO Server, Performance Server
WORKSTATION_PC_SYSTEM_TYPES = {1, 2, 3, 8}  # Desktop, Mobile, Workstation, Slate


def role_hint(product_type: int | None, chassis: int | None, pc_type: int | None) -> HostRole:
    if product_type in (2, 3):
        return "server"
    by_chassis = role_from_chassis(chassis)
    if by_chassis != "unknown":
        return by_chassis
    if pc_type in SERVER_PC_SYSTEM_TYPES:
        return "server"
    if pc_type in WORKSTATION_PC_SYSTEM_TYPES or product_type == 1:
        return "workstation"
    return "unknown"


def parse_hardware(data: Any) -> HardwareSection:
    [cs] = as_list(data) or [{}]
    vendor = clean_dmi_value(as_str(cs.get("Manufacturer")))
    model = clean_dmi_value(as_str(cs.get("Model")))
    chassis_types = [c for c in (as_int(v) for v in cs.get("ChassisTypes") or []) if c]
    chassis = next((c for c in chassis_types if c not in (1, 2)), None) or (
        chassis_types[0] if chassis_types else None
    )
    cpus = as_list(cs.get("Processors"))
    cores = [as_int(c.get("NumberOfCores")) for c in cpus]
    disks = [
        DiskInfo(
            device=str(d["DeviceID"]),
            mountpoint=f"{d['DeviceID']}\\",
            fstype=as_str(d.get("FileSystem")) or "unknown",
            total_bytes=as_int(d.get("Size")),
        )
        for d in as_list(cs.get("Disks"))
        if as_str(d.get("DeviceID"))
    ]
    return HardwareSection(
        vendor=vendor,
        model=model,
        serial=clean_dmi_value(as_str(cs.get("SerialNumber"))),
        chassis_type=chassis,
        role_hint=role_hint(as_int(cs.get("ProductType")), chassis, as_int(cs.get("PCSystemType"))),
        virtual=dmi_says_virtual(vendor, model) if vendor or model else None,
        cpu_model=as_str(cpus[0].get("Name")) if cpus else None,
        cpu_cores_physical=sum(c for c in cores if c) or None,
        cpu_cores_logical=as_int(cs.get("NumberOfLogicalProcessors")),
        memory_bytes=as_int(cs.get("TotalPhysicalMemory")),
        disks=disks,
        notes=["temperatures are not read on Windows"],
    )


def probe(ctx: ProbeContext) -> HardwareSection:
    try:
        return parse_hardware(run_script(ctx, HARDWARE))
    except ScriptError as exc:
        return unknown(HardwareSection, f"hardware unreadable: {exc}")
