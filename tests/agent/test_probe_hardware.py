"""Tests of the hardware probe (DMI, cpuinfo, virtualisation, psutil facts)."""

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from agent.probes.base import CommandTimeout, ProbeContext
from agent.probes.hardware import (
    detect_virtual,
    dmi_says_virtual,
    parse_chassis_type,
    parse_cpuinfo,
    probe,
    role_from_chassis,
    select_disks,
    temperature_readings,
)
from agent.report import HardwareSection
from tests.probekit import FakeRunner, make_root, result, write

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hardware"
DETECT_VIRT_RECORDED = (FIXTURES / "systemd-detect-virt.out").read_text()


def detect_virt(stdout: str, returncode: int = 0) -> FakeRunner:
    return FakeRunner({"systemd-detect-virt": result(stdout, returncode)})


def hardware_root(tmp_path: Path, dmi: str | None = None, cpuinfo: bool = True) -> Path:
    """A root with a recorded DMI directory (by fixture name) and the recorded cpuinfo."""
    root = make_root(tmp_path)
    if dmi is not None:
        shutil.copytree(FIXTURES / dmi, root / "sys/class/dmi/id")
    if cpuinfo:
        shutil.copy(FIXTURES / "cpuinfo", write(root, "/proc/cpuinfo"))
    return root


# --- pure parsers -----------------------------------------------------------


def test_parse_cpuinfo_recorded() -> None:
    cpu = parse_cpuinfo((FIXTURES / "cpuinfo").read_text())
    assert cpu.model == "AMD EPYC"
    assert cpu.flags is not None
    assert {"hypervisor", "avx2", "lm"} <= cpu.flags


def test_parse_cpuinfo_without_model_or_flags() -> None:
    # arm64 kernels print no model name and no x86 "flags" line.
    cpu = parse_cpuinfo("processor\t: 0\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd\n")
    assert cpu.model is None
    assert cpu.flags is None


@pytest.mark.parametrize(
    ("code", "role"),
    [
        (17, "server"),
        (23, "server"),
        (28, "server"),
        (3, "workstation"),
        (7, "workstation"),
        (9, "workstation"),
        (10, "workstation"),
        (14, "workstation"),
        (31, "workstation"),
        (1, "unknown"),
        (2, "unknown"),
        (None, "unknown"),
    ],
)
def test_role_from_chassis(code: int | None, role: str) -> None:
    assert role_from_chassis(code) == role


def test_parse_chassis_type() -> None:
    assert parse_chassis_type("23\n") == 23
    assert parse_chassis_type("") is None
    assert parse_chassis_type(None) is None
    assert parse_chassis_type("rack") is None


@pytest.mark.parametrize(
    ("vendor", "product", "expected"),
    [
        ("QEMU", "Standard PC (Q35 + ICH9, 2009)", True),
        ("VMware, Inc.", "VMware7,1", True),
        ("innotek GmbH", "VirtualBox", True),
        ("Xen", "HVM domU", True),
        ("Microsoft Corporation", "Virtual Machine", True),
        ("Microsoft Corporation", "Surface Laptop 5", False),
        ("Amazon EC2", "t3.micro", True),
        ("Amazon EC2", "m5.metal", False),
        ("Dell Inc.", "PowerEdge R740", False),
        (None, None, False),
    ],
)
def test_dmi_says_virtual(vendor: str | None, product: str | None, expected: bool) -> None:
    assert dmi_says_virtual(vendor, product) is expected


def test_detect_virtual_precedence() -> None:
    flags = frozenset({"fpu", "hypervisor"})
    assert detect_virtual("QEMU", "pc", None, "none", None) is True  # DMI wins
    assert detect_virtual(None, None, "xen", None, None) is True
    assert detect_virtual("Dell Inc.", "R740", None, "none", flags) is False
    assert detect_virtual(None, None, None, "docker", None) is True
    assert detect_virtual(None, None, None, None, flags) is True
    assert detect_virtual(None, None, None, None, frozenset({"fpu"})) is False
    assert detect_virtual("Dell Inc.", "R740", None, None, None) is False
    assert detect_virtual(None, None, None, None, None) is None


def test_select_disks_skips_pseudo_and_dedupes() -> None:
    parts = [
        ("/dev/vda", "/run/netns", "ext4"),
        ("/dev/vda", "/", "ext4"),
        ("/dev/loop3", "/snap/core/1", "squashfs"),
        ("overlay", "/var/lib/docker/overlay2/x/merged", "overlay"),
        ("tmpfs", "/run", "tmpfs"),
        ("/dev/nvme0n1p1", "/boot/efi", "vfat"),
    ]
    assert select_disks(parts) == [
        ("/dev/vda", "/", "ext4"),
        ("/dev/nvme0n1p1", "/boot/efi", "vfat"),
    ]


# --- the probe on fake roots ------------------------------------------------


def test_probe_physical_server(tmp_path: Path) -> None:
    runner = detect_virt("none\n", returncode=1)
    ctx = ProbeContext(root=hardware_root(tmp_path, "dmi_dell_server"), runner=runner, is_root=True)
    section = probe(ctx)
    assert section.status == "ok"
    assert (section.vendor, section.model, section.serial) == (
        "Dell Inc.",
        "PowerEdge R740",
        "GX7K2M3",
    )
    assert section.chassis_type == 23
    assert section.role_hint == "server"
    assert section.virtual is False
    assert section.cpu_model == "AMD EPYC"
    assert runner.argvs == [("systemd-detect-virt",)]
    # live: psutil facts are read from this machine
    assert section.cpu_cores_logical == os.cpu_count()
    assert section.memory_bytes and section.memory_bytes > 0
    assert "serial needs root" not in section.notes


def test_probe_laptop_is_workstation(tmp_path: Path) -> None:
    ctx = ProbeContext(
        root=hardware_root(tmp_path, "dmi_lenovo_laptop"), runner=FakeRunner(), live=False
    )
    section = probe(ctx)
    assert section.role_hint == "workstation"
    assert section.chassis_type == 10
    assert section.vendor == "LENOVO"


def test_probe_qemu_guest_without_detect_virt(tmp_path: Path) -> None:
    ctx = ProbeContext(
        root=hardware_root(tmp_path, "dmi_qemu_vm", cpuinfo=False),
        runner=FakeRunner(),
        is_root=True,
    )
    section = probe(ctx)
    assert section.status == "ok"
    assert section.virtual is True
    assert section.role_hint == "unknown"  # chassis 1 = Other
    assert section.serial is None  # empty value in sysfs
    assert section.cpu_model is None


def test_probe_non_root_has_no_serial(tmp_path: Path) -> None:
    ctx = ProbeContext(
        root=hardware_root(tmp_path, "dmi_dell_server"),
        runner=detect_virt("none\n", 1),
        is_root=False,
    )
    section = probe(ctx)
    assert section.status == "ok"
    assert section.serial is None
    assert "serial needs root" in section.notes
    assert section.vendor == "Dell Inc."


def test_probe_without_dmi_in_container(tmp_path: Path) -> None:
    ctx = ProbeContext(root=hardware_root(tmp_path), runner=detect_virt(DETECT_VIRT_RECORDED))
    section = probe(ctx)
    assert section.status == "ok"
    assert section.vendor is None and section.chassis_type is None
    assert section.virtual is True
    assert any("DMI not available" in n for n in section.notes)
    assert any("container (docker)" in n for n in section.notes)
    assert section.cpu_cores_logical == os.cpu_count()


def test_probe_detect_virt_missing_falls_back_to_cpu_flag(tmp_path: Path) -> None:
    ctx = ProbeContext(root=hardware_root(tmp_path), runner=FakeRunner())
    assert probe(ctx).virtual is True  # recorded cpuinfo carries the hypervisor flag


def test_probe_detect_virt_timeout_is_noted(tmp_path: Path) -> None:
    runner = FakeRunner({"systemd-detect-virt": CommandTimeout(["systemd-detect-virt"], 5)})
    section = probe(ProbeContext(root=hardware_root(tmp_path), runner=runner))
    assert section.status == "ok"
    assert any("systemd-detect-virt" in n and "did not finish" in n for n in section.notes)


def test_probe_not_live_reads_only_files_under_root(tmp_path: Path) -> None:
    runner = FakeRunner()
    ctx = ProbeContext(root=hardware_root(tmp_path, "dmi_dell_server"), runner=runner, live=False)
    section = probe(ctx)
    assert section.status == "ok"
    assert section.vendor == "Dell Inc."
    assert section.cpu_cores_logical is None and section.memory_bytes is None
    assert section.disks == []
    assert runner.calls == []  # no command on a non-live root
    assert any("not a live host" in n for n in section.notes)


def test_probe_not_live_empty_root_is_unknown(tmp_path: Path) -> None:
    section = probe(ProbeContext(root=tmp_path, runner=FakeRunner(), live=False))
    assert section.status == "unknown"
    assert section.reason is not None and "live host" in section.reason


# --- this machine -----------------------------------------------------------


def test_probe_live_machine() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, HardwareSection)
    assert section.status == "ok"
    expected_model = parse_cpuinfo(Path("/proc/cpuinfo").read_text()).model
    assert section.cpu_model == expected_model and expected_model
    assert section.cpu_cores_logical == os.cpu_count()
    assert section.memory_bytes and section.memory_bytes > 100 * 2**20
    root_disk = [d for d in section.disks if d.mountpoint == "/"]
    assert root_disk and root_disk[0].total_bytes and root_disk[0].total_bytes > 0
    assert section.virtual is not None


# --- temperatures -----------------------------------------------------------

Shwtemp = namedtuple("Shwtemp", "label current high critical")  # psutil's shape

# Crafted in the shape psutil returns on a physical Intel/NVMe machine.
PHYSICAL_SENSORS: dict[str, list[Shwtemp]] = {
    "coretemp": [
        Shwtemp("Package id 0", 47.0, 80.0, 100.0),
        Shwtemp("Core 0", 45.0, 80.0, 100.0),
    ],
    "acpitz": [Shwtemp("", 27.8, None, None)],
    "nvme": [Shwtemp("Composite", 38.85, 84.85, 0.0)],  # 0 = threshold not set
    "iwlwifi_1": [Shwtemp("", float("nan"), None, None)],  # sensor asleep
}


def test_temperature_readings_flatten_and_clean() -> None:
    readings = temperature_readings(PHYSICAL_SENSORS)
    assert [(r.sensor, r.label, r.celsius, r.high, r.critical) for r in readings] == [
        ("coretemp", "Package id 0", 47.0, 80.0, 100.0),
        ("coretemp", "Core 0", 45.0, 80.0, 100.0),
        ("acpitz", None, 27.8, None, None),
        ("nvme", "Composite", 38.9, 84.8, None),
    ]
    assert temperature_readings({}) == []


def test_probe_live_reads_temperatures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: PHYSICAL_SENSORS, raising=False)
    section = probe(ProbeContext(root=hardware_root(tmp_path), runner=FakeRunner()))
    assert [r.sensor for r in section.temperatures] == ["coretemp", "coretemp", "acpitz", "nvme"]
    assert not any("temperature" in n for n in section.notes)


def test_probe_vm_without_sensors_is_noted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {}, raising=False)
    section = probe(ProbeContext(root=hardware_root(tmp_path), runner=FakeRunner()))
    assert section.status == "ok"
    assert section.temperatures == []
    assert any("no temperature sensors exposed" in n for n in section.notes)


def test_probe_temperature_error_is_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, list[Shwtemp]]:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(psutil, "sensors_temperatures", broken, raising=False)
    section = probe(ProbeContext(root=hardware_root(tmp_path), runner=FakeRunner()))
    assert section.status == "ok"
    assert any(n.startswith("temperature sensors unreadable") for n in section.notes)


def test_probe_without_psutil_temperature_support(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(psutil, "sensors_temperatures", raising=False)  # e.g. Windows
    section = probe(ProbeContext(root=hardware_root(tmp_path), runner=FakeRunner()))
    assert any("not supported by psutil" in n for n in section.notes)


def test_probe_not_live_reads_no_temperatures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden() -> dict[str, list[Shwtemp]]:
        raise AssertionError("psutil must not be consulted for a non-live root")

    monkeypatch.setattr(psutil, "sensors_temperatures", forbidden, raising=False)
    section = probe(ProbeContext(root=hardware_root(tmp_path, "dmi_dell_server"), live=False))
    assert section.temperatures == []


def test_probe_live_machine_temperatures() -> None:
    section = probe(ProbeContext())
    expected = temperature_readings(psutil.sensors_temperatures())
    assert [(r.sensor, r.label) for r in section.temperatures] == [
        (r.sensor, r.label) for r in expected
    ]
    if not expected:  # this build machine is a microVM: no hwmon at all
        assert any("no temperature sensors exposed" in n for n in section.notes)
