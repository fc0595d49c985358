"""Hardware inventory: DMI/SMBIOS identity, CPU, memory and disks.

Sources, in the order they are read:

* ``/sys/class/dmi/id/{sys_vendor,product_name,chassis_type,product_serial}``
  (the kernel's view of the SMBIOS tables).  ``product_serial`` is mode 0400,
  so it is only read when running as root.  The directory is missing in
  containers and on platforms without SMBIOS (most ARM boards).
* ``/proc/cpuinfo`` for the CPU model and the x86 ``hypervisor`` flag.
* ``/sys/hypervisor/type`` and ``systemd-detect-virt`` for virtualisation.
* psutil (live hosts only) for core counts, memory and mounted disks, and
  ``psutil.sensors_temperatures()`` (hwmon/thermal zones) for temperatures;
  virtual machines usually expose no sensor at all, which is noted.

Everything is read through the probe context, so an alternate root works
for the file-based facts; on a non-live root ``/sys`` and ``/proc`` are
normally empty and psutil is not consulted at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.report import DiskInfo, HardwareSection, HostRole, TemperatureReading

DMI_DIR = "/sys/class/dmi/id"

# SMBIOS (DMTF DSP0134) chassis type codes.
SERVER_CHASSIS: frozenset[int] = frozenset(
    {
        17,  # Main Server Chassis
        23,  # Rack Mount Chassis
        25,  # Multi-system chassis
        27,  # Advanced TCA (carrier-grade server)
        28,  # Blade
        29,  # Blade Enclosure
    }
)
WORKSTATION_CHASSIS: frozenset[int] = frozenset(
    {
        3,  # Desktop
        4,  # Low Profile Desktop
        5,  # Pizza Box
        6,  # Mini Tower
        7,  # Tower
        8,  # Portable
        9,  # Laptop
        10,  # Notebook
        13,  # All in One
        14,  # Sub Notebook
        15,  # Space-saving
        16,  # Lunch Box
        30,  # Tablet
        31,  # Convertible
        32,  # Detachable
    }
)

# Substrings of "<sys_vendor> <product_name>" (lower-cased) that mean a VM.
VIRTUAL_MARKERS: tuple[str, ...] = (
    "qemu",
    "kvm",
    "vmware",
    "virtualbox",
    "innotek",
    "xen",
    "firecracker",
    "bochs",
    "parallels",
    "bhyve",
    "openstack",
    "google compute engine",
    "digitalocean",
    "cloud hypervisor",
    "apple virtualization",
    "alibaba cloud ecs",
)

# systemd-detect-virt identifiers that denote a container, not a VM.
CONTAINER_IDS: frozenset[str] = frozenset(
    {
        "openvz",
        "lxc",
        "lxc-libvirt",
        "systemd-nspawn",
        "docker",
        "podman",
        "rkt",
        "wsl",
        "proot",
        "pouch",
        "container-other",
    }
)

# Firmware placeholders that carry no information.
_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "",
        "none",
        "n/a",
        "na",
        "0",
        "not specified",
        "not applicable",
        "not available",
        "default string",
        "to be filled by o.e.m.",
        "to be filled by oem",
        "system manufacturer",
        "system product name",
        "system serial number",
        "0123456789",
    }
)

# Filesystems that are not disks (or are read-only images of packages).
PSEUDO_FSTYPES: frozenset[str] = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fuse.lxcfs",
        "fuse.portal",
        "fuse.snapfuse",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "overlay",
        "proc",
        "pstore",
        "ramfs",
        "securityfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
    }
)


@dataclass(frozen=True)
class CpuInfo:
    model: str | None = None
    flags: frozenset[str] | None = None  # None when the file has no x86 "flags" line


def clean_dmi_value(raw: str | None) -> str | None:
    """Strip a sysfs DMI value; firmware placeholders become None."""
    if raw is None:
        return None
    value = raw.strip()
    if value.lower() in _PLACEHOLDERS:
        return None
    return value


def parse_chassis_type(raw: str | None) -> int | None:
    value = (raw or "").strip()
    return int(value) if value.isdigit() else None


def role_from_chassis(chassis_type: int | None) -> HostRole:
    """Role suggested by the SMBIOS chassis code (1 Other / 2 Unknown stay unknown)."""
    if chassis_type in SERVER_CHASSIS:
        return "server"
    if chassis_type in WORKSTATION_CHASSIS:
        return "workstation"
    return "unknown"


def parse_cpuinfo(text: str) -> CpuInfo:
    """CPU model and x86 flags of the first processor block of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # end of the first processor block
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    model = None
    # x86 and newer ARM kernels use "model name"; older ARM kernels
    # "Processor"; MIPS "cpu model"; POWER "cpu".  arm64 has none of them.
    for key in ("model name", "processor", "cpu model", "cpu"):
        value = fields.get(key)
        if value and not value.isdigit():
            model = value
            break
    flags = frozenset(fields["flags"].split()) if "flags" in fields else None
    return CpuInfo(model=model, flags=flags)


def dmi_says_virtual(vendor: str | None, product: str | None) -> bool:
    vendor_l = (vendor or "").lower()
    product_l = (product or "").lower()
    text = f"{vendor_l} {product_l}"
    if any(marker in text for marker in VIRTUAL_MARKERS):
        return True
    # Hyper-V guests: "Microsoft Corporation" / "Virtual Machine" (Surface
    # laptops share the vendor, so the product name decides).
    if "microsoft" in vendor_l and "virtual machine" in product_l:
        return True
    # EC2 instances are VMs except the bare-metal "*.metal" instance types.
    return "amazon ec2" in vendor_l and not product_l.endswith(".metal")


def detect_virtual(
    vendor: str | None,
    product: str | None,
    hypervisor_type: str | None,
    detect_virt: str | None,
    cpu_flags: frozenset[str] | None,
) -> bool | None:
    """Combine the virtualisation evidence; None when nothing tells either way.

    ``detect_virt`` is the output of ``systemd-detect-virt`` ("none" on bare
    metal), or None when it could not be run.
    """
    if dmi_says_virtual(vendor, product):
        return True
    if hypervisor_type:
        return True
    if detect_virt is not None:
        return detect_virt != "none"
    if cpu_flags is not None:
        return "hypervisor" in cpu_flags
    if vendor is not None:
        return False
    return None


def select_disks(partitions: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Keep real block-device filesystems, one entry per device.

    ``partitions`` yields ``(device, mountpoint, fstype)``.  Pseudo and
    image filesystems and loop devices are skipped; a device mounted several
    times (bind mounts) is reported once, at its shortest mountpoint.
    """
    chosen: dict[str, tuple[str, str, str]] = {}
    for device, mountpoint, fstype in partitions:
        if fstype in PSEUDO_FSTYPES or device.startswith("/dev/loop") or not device:
            continue
        current = chosen.get(device)
        if current is None or len(mountpoint) < len(current[1]):
            chosen[device] = (device, mountpoint, fstype)
    return list(chosen.values())


def _celsius(value: Any) -> float | None:
    """A finite temperature in °C, or None (missing, NaN, or a non-number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 1) if math.isfinite(number) else None


def temperature_readings(sensors: Mapping[str, Iterable[Any]]) -> list[TemperatureReading]:
    """Flatten ``psutil.sensors_temperatures()`` into readings.

    Each entry is ``shwtemp(label, current, high, critical)``.  A reading
    without a current value is skipped; a threshold that is absent or not
    positive (drivers report 0 for "not set") becomes None.
    """
    readings: list[TemperatureReading] = []
    for sensor, entries in sensors.items():
        for entry in entries:
            current = _celsius(getattr(entry, "current", None))
            if current is None:
                continue
            high = _celsius(getattr(entry, "high", None))
            critical = _celsius(getattr(entry, "critical", None))
            readings.append(
                TemperatureReading(
                    sensor=sensor,
                    label=(getattr(entry, "label", "") or "").strip() or None,
                    celsius=current,
                    high=high if high is not None and high > 0 else None,
                    critical=critical if critical is not None and critical > 0 else None,
                )
            )
    return readings


def _temperatures(section: HardwareSection, notes: list[str]) -> None:
    """Fill temperatures from psutil (live hosts); a note when none are exposed."""
    import psutil

    read = getattr(psutil, "sensors_temperatures", None)
    if read is None:  # psutil has no temperature support on this platform
        notes.append("temperature sensors not supported by psutil on this platform")
        return
    try:
        sensors = read()
    except (OSError, RuntimeError, ValueError, psutil.Error) as exc:
        notes.append(f"temperature sensors unreadable: {exc}")
        return
    section.temperatures = temperature_readings(sensors or {})
    if not section.temperatures:
        notes.append("no temperature sensors exposed (usual in a virtual machine or container)")


def _run_detect_virt(ctx: ProbeContext, notes: list[str]) -> str | None:
    try:
        result = ctx.runner.run(["systemd-detect-virt"], timeout=5)
    except ToolMissing:
        return None
    except CommandTimeout as exc:
        notes.append(f"systemd-detect-virt: {exc}")
        return None
    value = result.stdout.strip().splitlines()[0].strip() if result.stdout.strip() else ""
    # Exit status 1 with "none" means bare metal; other failures tell nothing.
    if value and (result.ok or value == "none"):
        return value
    return None


def _psutil_facts(section: HardwareSection, notes: list[str]) -> bool:
    """Fill cores, memory and disks from psutil; True if anything was read."""
    import psutil

    found = False
    try:
        section.cpu_cores_logical = psutil.cpu_count(logical=True)
        section.cpu_cores_physical = psutil.cpu_count(logical=False)
        section.memory_bytes = int(psutil.virtual_memory().total)
        found = True
    except (OSError, RuntimeError, psutil.Error) as exc:
        notes.append(f"cpu/memory counters unreadable: {exc}")
    try:
        parts = psutil.disk_partitions(all=False)
    except (OSError, psutil.Error) as exc:
        notes.append(f"disk partitions unreadable: {exc}")
        return found
    for device, mountpoint, fstype in select_disks(
        (p.device, p.mountpoint, p.fstype) for p in parts
    ):
        total: int | None
        try:
            total = int(psutil.disk_usage(mountpoint).total)
        except (OSError, psutil.Error):
            total = None
        section.disks.append(
            DiskInfo(device=device, mountpoint=mountpoint, fstype=fstype, total_bytes=total)
        )
        found = True
    return found


def probe(ctx: ProbeContext) -> HardwareSection:
    notes: list[str] = []
    section = HardwareSection()

    has_dmi = ctx.exists(DMI_DIR)
    vendor = product = None
    if has_dmi:
        vendor = clean_dmi_value(ctx.read_text(f"{DMI_DIR}/sys_vendor"))
        product = clean_dmi_value(ctx.read_text(f"{DMI_DIR}/product_name"))
        section.vendor, section.model = vendor, product
        section.chassis_type = parse_chassis_type(ctx.read_text(f"{DMI_DIR}/chassis_type"))
        section.role_hint = role_from_chassis(section.chassis_type)
        # product_serial is 0400 root:root; reading it unprivileged would fail.
        serial_raw = ctx.read_text(f"{DMI_DIR}/product_serial") if ctx.is_root else None
        if serial_raw is None and (not ctx.is_root or ctx.exists(f"{DMI_DIR}/product_serial")):
            notes.append("serial needs root")
        section.serial = clean_dmi_value(serial_raw)
    else:
        notes.append(f"DMI not available ({DMI_DIR} absent: container or platform without SMBIOS)")

    cpuinfo_text = ctx.read_text("/proc/cpuinfo")
    cpu = parse_cpuinfo(cpuinfo_text) if cpuinfo_text else CpuInfo()
    section.cpu_model = cpu.model

    hypervisor_type = (ctx.read_text("/sys/hypervisor/type") or "").strip() or None
    detect_virt = _run_detect_virt(ctx, notes) if ctx.live else None
    section.virtual = detect_virtual(vendor, product, hypervisor_type, detect_virt, cpu.flags)
    if detect_virt in CONTAINER_IDS:
        notes.append(f"running in a container ({detect_virt}): CPU and memory are the host's")

    psutil_found = False
    if ctx.live:
        psutil_found = _psutil_facts(section, notes)
        _temperatures(section, notes)
    else:
        notes.append(
            "not a live host: /sys (DMI) and psutil facts unavailable; "
            "only files under the root were read"
        )

    section.notes = notes
    dmi_found = any(v is not None for v in (vendor, product, section.chassis_type, section.serial))
    if not (dmi_found or cpu.model or psutil_found):
        reason = (
            "hardware facts need a live host (no DMI or /proc/cpuinfo under the root)"
            if not ctx.live
            else "no hardware facts readable (no DMI, /proc/cpuinfo or psutil counters)"
        )
        return unknown(HardwareSection, reason, notes=notes)
    return section
