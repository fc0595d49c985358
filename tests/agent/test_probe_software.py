"""Tests of the software inventory probe (dpkg status database, rpm -qa)."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.probes.base import CommandTimeout, ProbeContext
from agent.probes.software import (
    RPM_QUERY_FORMAT,
    dpkg_list_mtimes,
    dpkg_packages,
    parse_dpkg_status,
    parse_rpm_qa,
    probe,
)
from agent.report import SoftwareSection
from tests.probekit import FakeRunner, result, set_mtime, write

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "software"
DPKG_STATUS = (FIXTURES / "dpkg_status").read_text()
RPM_QA = (FIXTURES / "rpm_qa.out").read_text()

DPKG_MTIME = datetime(2025, 5, 20, 0, 0, tzinfo=UTC)
LIBC_MTIME = datetime(2026, 5, 20, 16, 27, 23, tzinfo=UTC)


def rpm_runner(stdout: str = RPM_QA, returncode: int = 0, stderr: str = "") -> FakeRunner:
    return FakeRunner({"rpm": result(stdout, returncode, stderr)})


def dpkg_root(tmp_path: Path) -> Path:
    shutil.copy(FIXTURES / "dpkg_status", write(tmp_path, "/var/lib/dpkg/status"))
    for name, when in (("dpkg", DPKG_MTIME), ("libc6:amd64", LIBC_MTIME)):
        set_mtime(write(tmp_path, f"/var/lib/dpkg/info/{name}.list", "/.\n"), when)
    write(tmp_path, "/var/lib/dpkg/info/dpkg.md5sums")  # not a .list file: ignored
    return tmp_path


def rpm_root(tmp_path: Path, dbdir: str = "var/lib/rpm") -> Path:
    write(tmp_path, f"/{dbdir}/rpmdb.sqlite", b"")
    return tmp_path


# --- dpkg parser ------------------------------------------------------------


def test_parse_recorded_dpkg_status() -> None:
    records = parse_dpkg_status(DPKG_STATUS)
    assert len(records) == 38
    installed = {r.name: r for r in records if r.installed}
    assert len(installed) == 37
    assert "logrotate" not in installed  # deinstall ok config-files
    assert installed["git"].version == "1:2.39.5-0+deb12u3"
    assert installed["libc6"].version == "2.36-9+deb12u14"
    assert installed["tzdata"].arch == "all"
    assert installed["dpkg"].arch == "amd64"


def test_parse_dpkg_states_and_continuations() -> None:
    text = (
        "Package: held\nStatus: hold ok installed\nVersion: 1.0\nArchitecture: amd64\n"
        "Description: a package\n Package: fake-from-description\n .\n\n"
        "Package: trig\nStatus: install ok triggers-pending\nVersion: 2.0\nArchitecture: all\n\n"
        "Package: half\nStatus: install reinstreq half-configured\nVersion: 3.0\n\n"
        "Package: gone\nStatus: purge ok not-installed\n\n"
        "Package: last\nStatus: install ok installed\nVersion: 4.0"  # no trailing newline
    )
    records = {r.name: r for r in parse_dpkg_status(text)}
    assert set(records) == {"held", "trig", "half", "gone", "last"}
    assert records["held"].installed and records["held"].want == "hold"
    assert records["trig"].installed
    assert not records["half"].installed and records["half"].state == "half-configured"
    assert not records["gone"].installed
    assert records["last"].version == "4.0" and records["last"].arch is None


def test_dpkg_packages_install_time_from_list_files(tmp_path: Path) -> None:
    root = dpkg_root(tmp_path)
    mtimes = dpkg_list_mtimes(root / "var/lib/dpkg/info")
    assert set(mtimes) == {"dpkg", "libc6:amd64"}
    packages = {p.name: p for p in dpkg_packages(parse_dpkg_status(DPKG_STATUS), mtimes)}
    assert packages["dpkg"].installed_at == DPKG_MTIME
    assert packages["libc6"].installed_at == LIBC_MTIME  # Multi-Arch: same -> pkg:arch.list
    assert packages["bash"].installed_at is None


def test_dpkg_parse_handles_1500_packages() -> None:
    # Speed is measured in benchmarks/, not asserted here.
    copies = -(-1500 // 38)
    big = "\n".join(
        re.sub(r"^Package: ", f"Package: c{i}-", DPKG_STATUS, flags=re.M) for i in range(copies)
    )
    records = parse_dpkg_status(big)
    packages = dpkg_packages(records, {})
    assert len(records) == 38 * copies >= 1500
    assert len(packages) == 37 * copies


# --- rpm parser -------------------------------------------------------------


def test_parse_rpm_qa() -> None:
    packages = parse_rpm_qa(RPM_QA)
    names = [p.name for p in packages]
    assert "gpg-pubkey" not in names
    assert len(packages) == 8
    by_key = {(p.name, p.arch, p.version): p for p in packages}
    assert ("openssl-libs", "x86_64", "1:3.0.7-27.el9") in by_key  # epoch kept
    assert ("bash", "x86_64", "5.1.8-9.el9") in by_key  # zero epoch dropped
    assert ("glibc", "i686", "2.34-100.el9_4.2") in by_key
    assert names.count("kernel-core") == 2
    bash = by_key[("bash", "x86_64", "5.1.8-9.el9")]
    assert bash.installed_at == datetime.fromtimestamp(1714380000, UTC)


# --- the probe on fake roots ------------------------------------------------


def test_probe_dpkg_root(tmp_path: Path) -> None:
    runner = FakeRunner()
    section = probe(ProbeContext(root=dpkg_root(tmp_path), runner=runner, live=False))
    assert section.status == "ok"
    assert section.manager == "dpkg"
    assert len(section.packages) == 37
    names = [p.name for p in section.packages]
    assert names == sorted(names)
    assert "logrotate" not in names
    dpkg = next(p for p in section.packages if p.name == "dpkg")
    assert (dpkg.version, dpkg.arch, dpkg.installed_at) == ("1.21.22", "amd64", DPKG_MTIME)
    assert runner.calls == []  # no command needed for dpkg


def test_probe_dpkg_non_root(tmp_path: Path) -> None:
    section = probe(ProbeContext(root=dpkg_root(tmp_path), runner=FakeRunner(), is_root=False))
    assert section.status == "ok"
    assert len(section.packages) == 37


def test_probe_dpkg_partial_install_is_noted(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(
        DPKG_STATUS + "\nPackage: broken\nStatus: install reinstreq half-installed\nVersion: 1\n"
    )
    section = probe(ProbeContext(root=tmp_path, runner=FakeRunner(), live=False))
    assert len(section.packages) == 37
    assert any("1 dpkg packages half-installed" in n and "broken" in n for n in section.notes)
    assert any("install times unknown" in n for n in section.notes)


def test_probe_rpm_with_alternate_root(tmp_path: Path) -> None:
    runner = rpm_runner()
    section = probe(ProbeContext(root=rpm_root(tmp_path), runner=runner, live=False))
    assert section.status == "ok"
    assert section.manager == "rpm"
    assert len(section.packages) == 8
    assert runner.argvs == [
        (
            "rpm",
            "-qa",
            "--qf",
            RPM_QUERY_FORMAT,
            "--root",
            str(tmp_path),
            "--dbpath",
            "/var/lib/rpm",
        )
    ]


def test_probe_rpm_sysimage_dbpath(tmp_path: Path) -> None:
    runner = rpm_runner()
    section = probe(ProbeContext(root=rpm_root(tmp_path, "usr/lib/sysimage/rpm"), runner=runner))
    assert section.manager == "rpm"
    assert runner.argvs[0][-2:] == ("--dbpath", "/usr/lib/sysimage/rpm")


def test_probe_rpm_tool_missing(tmp_path: Path) -> None:
    section = probe(ProbeContext(root=rpm_root(tmp_path), runner=FakeRunner()))
    assert section.status == "unknown"
    assert section.reason is not None and "'rpm' is not installed" in section.reason


def test_probe_rpm_failure(tmp_path: Path) -> None:
    runner = rpm_runner("", 1, "error: cannot open Packages database in /var/lib/rpm\n")
    section = probe(ProbeContext(root=rpm_root(tmp_path), runner=runner))
    assert section.status == "unknown"
    assert section.reason == (
        "rpm -qa failed (exit 1): error: cannot open Packages database in /var/lib/rpm"
    )


def test_probe_rpm_timeout(tmp_path: Path) -> None:
    runner = FakeRunner({"rpm": CommandTimeout(["rpm", "-qa"], 25)})
    section = probe(ProbeContext(root=rpm_root(tmp_path), runner=runner))
    assert section.status == "unknown"
    assert section.reason is not None and "did not finish" in section.reason


def test_probe_both_databases_reports_the_larger(tmp_path: Path) -> None:
    root = rpm_root(dpkg_root(tmp_path))
    section = probe(ProbeContext(root=root, runner=rpm_runner()))
    assert section.manager == "dpkg"
    assert len(section.packages) == 37
    assert "rpm database also holds 8 packages" in section.notes


def test_probe_no_package_manager(tmp_path: Path) -> None:
    section = probe(ProbeContext(root=tmp_path, runner=FakeRunner()))
    assert section.status == "unknown"
    assert section.reason is not None and section.reason.startswith("no package database")
    assert section.packages == []


# --- this machine -----------------------------------------------------------


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").exists(), reason="not a dpkg system")
def test_probe_live_machine() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, SoftwareSection)
    assert section.status == "ok"
    assert section.manager == "dpkg"
    assert len(section.packages) > 50
    dpkg = next(p for p in section.packages if p.name == "dpkg")
    assert dpkg.version and dpkg.installed_at is not None
    assert dpkg.installed_at <= datetime.now(UTC)
