"""Windows hardware, operating system and installed programs."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.probes.windows import hardware, osinfo, software
from agent.probes.windows.osinfo import parse_os
from tests.agent.windows.winkit import access_denied, fixture, not_installed, ok, windows_ctx


def test_hardware() -> None:
    section = hardware.probe(windows_ctx())
    assert section.status == "ok"
    assert (section.vendor, section.model, section.serial) == (
        "Dell Inc.",
        "OptiPlex 7090",
        "7XK2QH3",
    )
    assert section.chassis_type == 3 and section.role_hint == "workstation"
    assert section.virtual is False
    assert section.cpu_cores_physical == 6 and section.cpu_cores_logical == 12
    assert [(d.device, d.mountpoint) for d in section.disks] == [("C:", "C:\\"), ("D:", "D:\\")]


def test_hardware_server_and_vm() -> None:
    vm = (
        '{"Manufacturer":"Microsoft Corporation","Model":"Virtual Machine","PCSystemType":4,'
        '"ChassisTypes":[1],"ProductType":3,"Processors":[],"Disks":[]}'
    )
    section = hardware.probe(windows_ctx({"hardware": ok(vm)}))
    assert section.role_hint == "server" and section.virtual is True


def test_hardware_unreadable() -> None:
    assert hardware.probe(windows_ctx({"hardware": access_denied()})).status == "unknown"


def test_os() -> None:
    section = parse_os(
        __import__("json").loads(fixture("os_info.json")),
        now=datetime(2026, 11, 20, 0, 42, 17, 500000, tzinfo=UTC),
    )
    assert section.id == "windows" and section.name == "Microsoft Windows 11 Pro"
    assert section.version == "23H2" and section.kernel == "10.0.22631.4460"
    assert section.arch == "AMD64" and section.uptime_seconds == 2 * 86400
    assert (
        osinfo.probe(windows_ctx({"os_info": not_installed("Get-CimInstance")})).status == "unknown"
    )


def test_installed_programs() -> None:
    section = software.probe(windows_ctx())
    assert section.status == "ok" and section.manager == "other"
    names = {(p.name, p.arch) for p in section.packages}
    assert ("Microsoft Office Professional Plus 2016", "x86") in names
    assert ("Zalo", None) in names  # per-user install
    assert not any("Update Health" in n or "KB4484103" in n for n, _ in names)  # skipped entries
    [acrobat] = [p for p in section.packages if p.name.startswith("Adobe")]
    assert acrobat.installed_at == datetime(2026, 11, 5, tzinfo=UTC)
    seven = next(p for p in section.packages if p.name.startswith("7-Zip"))
    assert seven.installed_at is None


def test_installed_programs_unreadable() -> None:
    section = software.probe(windows_ctx({"installed_software": access_denied()}))
    assert section.status == "unknown"
