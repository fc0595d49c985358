"""Tests of the OS probe (os-release parsing, kernel and uptime)."""

from __future__ import annotations

import os
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path

from agent.probes.base import ProbeContext
from agent.probes.osinfo import os_fields, parse_os_release, probe
from agent.report import OsSection

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "osinfo"
RECORDED = FIXTURES / "os-release"

RHEL_LIKE = 'NAME="Rocky Linux"\nVERSION_ID="9.4"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'


def debian_root(tmp_path: Path) -> Path:
    """The Debian layout: /etc/os-release is a relative symlink into /usr/lib."""
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    shutil.copy(RECORDED, tmp_path / "usr/lib/os-release")
    (tmp_path / "etc/os-release").symlink_to("../usr/lib/os-release")
    return tmp_path


def test_parse_recorded_os_release() -> None:
    release = parse_os_release(RECORDED.read_text())
    assert release["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert release["VERSION"] == "12 (bookworm)"
    assert release["VERSION_CODENAME"] == "bookworm"
    assert os_fields(release) == {
        "name": "Debian GNU/Linux 12 (bookworm)",
        "id": "debian",
        "id_like": [],
        "version": "12",
    }


def test_parse_shell_quoting() -> None:
    text = "\n".join(
        [
            "# a comment line",
            "",
            'PRETTY_NAME="Acme \\"Secure\\" Linux \\$5 \\\\ edition"',
            "NAME='Acme Linux # not a comment'",
            "ID=acme",
            'ID_LIKE="rhel  fedora"',
            "VERSION_ID=9.4",
            'BROKEN="unterminated',
            "not a key=value",
            "=empty-key",
        ]
    )
    release = parse_os_release(text)
    assert release["PRETTY_NAME"] == 'Acme "Secure" Linux $5 \\ edition'
    assert release["NAME"] == "Acme Linux # not a comment"
    assert release["ID"] == "acme"
    assert release["VERSION_ID"] == "9.4"
    assert release["BROKEN"] == "unterminated"
    assert "not a key" not in release and "" not in release
    assert os_fields(release)["id_like"] == ["rhel", "fedora"]


def test_name_falls_back_to_name_key() -> None:
    fields = os_fields(parse_os_release(RHEL_LIKE))
    assert fields["name"] == "Rocky Linux"
    assert fields["id_like"] == ["rhel", "centos", "fedora"]
    assert fields["version"] == "9.4"


def test_probe_fake_root_not_live(tmp_path: Path) -> None:
    section = probe(ProbeContext(root=debian_root(tmp_path), live=False))
    assert section.status == "ok"
    assert section.name == "Debian GNU/Linux 12 (bookworm)"
    assert (section.id, section.version) == ("debian", "12")
    assert section.kernel is None and section.arch is None and section.boot_time is None
    assert any("not a live host" in n for n in section.notes)


def test_probe_absolute_symlink_stays_inside_root(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib/os-release").write_text(RHEL_LIKE)
    (tmp_path / "etc/os-release").symlink_to("/usr/lib/os-release")  # absolute target
    section = probe(ProbeContext(root=tmp_path, live=False))
    assert section.id == "rocky"  # not the host's own /usr/lib/os-release


def test_probe_falls_back_to_usr_lib(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text(RHEL_LIKE)
    section = probe(ProbeContext(root=tmp_path, live=False))
    assert section.status == "ok"
    assert section.id == "rocky"


def test_probe_missing_os_release_is_unknown_but_keeps_live_facts(tmp_path: Path) -> None:
    section = probe(ProbeContext(root=tmp_path, live=True))
    assert section.status == "unknown"
    assert section.reason is not None and "os-release" in section.reason
    assert section.kernel == platform.release()


def test_probe_missing_os_release_not_live(tmp_path: Path) -> None:
    section = probe(ProbeContext(root=tmp_path, live=False))
    assert section.status == "unknown"
    assert section.kernel is None


def test_probe_non_root_reads_world_readable_file(tmp_path: Path) -> None:
    section = probe(ProbeContext(root=debian_root(tmp_path), is_root=False, live=False))
    assert section.status == "ok"
    assert section.id == "debian"


def test_probe_live_machine() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, OsSection)
    assert section.status == "ok"
    etc = Path("/etc/os-release")
    source = etc if etc.exists() else Path("/usr/lib/os-release")
    expected = os_fields(parse_os_release(source.read_text()))
    assert section.id == expected["id"] and section.id
    assert section.name == expected["name"]
    assert section.kernel == os.uname().release
    assert section.arch == os.uname().machine
    assert section.boot_time is not None and section.boot_time < datetime.now(UTC)
    assert section.uptime_seconds is not None and section.uptime_seconds >= 0
    now = datetime.now(UTC).timestamp()
    assert abs(section.boot_time.timestamp() + section.uptime_seconds - now) < 60
