"""Tests of the OS probe (os-release parsing, kernel and uptime)."""

from __future__ import annotations

import os
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.probes.base import ProbeContext
from agent.probes.osinfo import (
    compare_versions,
    installed_kernels,
    kernel_fields,
    kernel_flavour,
    os_fields,
    parse_os_release,
    probe,
    version_key,
)
from agent.report import OsSection
from tests.probekit import ctx_for, fixture_text, make_root, write

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


# --- installed vs running kernel ---------------------------------------------

KERNELS = FIXTURES / "kernels"


def root_from_listing(root: Path, listing: str) -> Path:
    """Build a fake root from a listing: one absolute path a line, '/' ending a directory."""
    for raw in listing.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("/"):
            (root / line.strip("/")).mkdir(parents=True, exist_ok=True)
        else:
            write(root, line)
    return root


def debian_kernel(release: str) -> str:
    """The recorded Debian package layout, renamed to another release."""
    recorded = fixture_text("osinfo", "kernels", "debian12-linux-image-cloud.list")
    return recorded.replace("6.1.0-50-cloud-amd64", release)


# Crafted: RHEL 9 /boot with a rescue image and a debug kernel; kernel-core
# also ships vmlinuz inside /lib/modules/<release>/.
RHEL9_LISTING = """
/boot/vmlinuz-0-rescue-5c1e2f3a4b5c6d7e8f90a1b2c3d4e5f6
/boot/vmlinuz-5.14.0-362.8.1.el9_3.x86_64
/boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64
/boot/vmlinuz-5.14.0-503.11.1.el9_5.x86_64+debug
/lib/modules/5.14.0-362.8.1.el9_3.x86_64/modules.order
/lib/modules/5.14.0-362.8.1.el9_3.x86_64/vmlinuz
/lib/modules/5.14.0-427.13.1.el9_4.x86_64/modules.order
/lib/modules/5.14.0-427.13.1.el9_4.x86_64/vmlinuz
/lib/modules/5.14.0-503.11.1.el9_5.x86_64+debug/modules.order
"""


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("6.1.0-9-amd64", "6.1.0-27-amd64"),  # numeric, not lexical
        ("6.1.0-27-amd64", "6.1.0-50-amd64"),
        ("5.10.0-32-amd64", "6.1.0-9-amd64"),
        ("6.8.0-45-generic", "6.8.0-101-generic"),
        ("5.14.0-362.8.1.el9_3.x86_64", "5.14.0-427.13.1.el9_4.x86_64"),
        ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.18.1.el9_4.x86_64"),
        ("6.9.12-200.fc40.x86_64", "6.10.3-200.fc40.x86_64"),
        ("6.1~rc1", "6.1"),  # '~' sorts before the end (dpkg)
        ("1.0", "1.0a"),
        ("1.0a", "1.0.1"),  # a letter sorts before any other character
    ],
)
def test_compare_versions_orders(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1
    assert compare_versions(newer, newer) == 0


def test_version_key_sorts_like_ls_v() -> None:
    names = ["6.1.0-27-amd64", "6.1.0-9-amd64", "6.1.0-10-amd64", "5.10.0-32-amd64"]
    assert sorted(names, key=version_key) == [
        "5.10.0-32-amd64",
        "6.1.0-9-amd64",
        "6.1.0-10-amd64",
        "6.1.0-27-amd64",
    ]


@pytest.mark.parametrize(
    ("release", "flavour"),
    [
        ("6.1.0-27-amd64", "amd64"),
        ("6.1.0-50-cloud-amd64", "cloud-amd64"),
        ("6.1.0-50-rt-amd64", "rt-amd64"),
        ("6.8.0-45-generic", "generic"),
        ("5.14.0-427.13.1.el9_4.x86_64", ""),
        ("5.14.0-503.11.1.el9_5.x86_64+debug", "+debug"),
        ("6.9.7-arch1-1", ""),
        ("6.18.44-fc-v595", "fc-v595"),
    ],
)
def test_kernel_flavour(release: str, flavour: str) -> None:
    assert kernel_flavour(release) == flavour


def test_recorded_listing_of_this_machine_has_no_kernel(tmp_path: Path) -> None:
    """This build machine is a microVM: its kernel is not installed in the guest."""
    listing = fixture_text("osinfo", "kernels", "this-machine.list")
    root = root_from_listing(make_root(tmp_path), listing)
    ctx = ctx_for(root, live=False)
    assert installed_kernels(ctx) == set()
    notes: list[str] = []
    assert kernel_fields(ctx, "6.18.44-fc-v595", notes) == {}
    assert any("no installed kernel found" in n for n in notes)


def test_recorded_debian_package_layout(tmp_path: Path) -> None:
    listing = fixture_text("osinfo", "kernels", "debian12-linux-image-cloud.list")
    root = root_from_listing(make_root(tmp_path), listing)
    assert installed_kernels(ctx_for(root, live=False)) == {"6.1.0-50-cloud-amd64"}


def test_debian_reboot_pending_orders_27_above_9(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    for release in ("6.1.0-9-amd64", "6.1.0-27-amd64", "6.1.0-10-amd64"):
        root_from_listing(root, debian_kernel(release))
    notes: list[str] = []
    fields = kernel_fields(ctx_for(root), "6.1.0-9-amd64", notes)
    assert fields == {"kernel_newest_installed": "6.1.0-27-amd64", "kernel_reboot_pending": True}
    assert notes == []
    fields = kernel_fields(ctx_for(root), "6.1.0-27-amd64", notes)
    assert fields["kernel_reboot_pending"] is False


def test_other_flavour_does_not_count_as_newer(tmp_path: Path) -> None:
    """A newer rt kernel installed next to the running generic one is no pending reboot."""
    root = make_root(tmp_path)
    for release in ("6.1.0-47-amd64", "6.1.0-50-rt-amd64", "6.1.0-50-cloud-amd64"):
        root_from_listing(root, debian_kernel(release))
    fields = kernel_fields(ctx_for(root), "6.1.0-47-amd64", [])
    assert fields == {"kernel_newest_installed": "6.1.0-47-amd64", "kernel_reboot_pending": False}
    fields = kernel_fields(ctx_for(root), "6.1.0-47-cloud-amd64", [])
    assert fields["kernel_newest_installed"] == "6.1.0-50-cloud-amd64"
    assert fields["kernel_reboot_pending"] is True


def test_running_flavour_not_installed_compares_with_all(tmp_path: Path) -> None:
    root = root_from_listing(make_root(tmp_path), debian_kernel("6.1.0-50-amd64"))
    notes: list[str] = []
    fields = kernel_fields(ctx_for(root), "6.1.0-47-cloud-amd64", notes)
    assert fields == {"kernel_newest_installed": "6.1.0-50-amd64", "kernel_reboot_pending": True}
    assert notes == ["running kernel 6.1.0-47-cloud-amd64 is no longer installed"]


def test_rhel_excludes_rescue_and_separates_debug(tmp_path: Path) -> None:
    root = root_from_listing(make_root(tmp_path), RHEL9_LISTING)
    ctx = ctx_for(root)
    assert installed_kernels(ctx) == {
        "5.14.0-362.8.1.el9_3.x86_64",
        "5.14.0-427.13.1.el9_4.x86_64",
        "5.14.0-503.11.1.el9_5.x86_64+debug",
    }
    fields = kernel_fields(ctx, "5.14.0-362.8.1.el9_3.x86_64", [])
    assert fields["kernel_newest_installed"] == "5.14.0-427.13.1.el9_4.x86_64"
    assert fields["kernel_reboot_pending"] is True


def test_leftover_module_dir_is_not_a_kernel(tmp_path: Path) -> None:
    """DKMS leaves /lib/modules/<old>/updates/dkms behind when a kernel is purged."""
    root = root_from_listing(make_root(tmp_path), debian_kernel("6.1.0-27-amd64"))
    write(root, "/lib/modules/6.1.0-30-amd64/updates/dkms/wireguard.ko")
    write(root, "/boot/vmlinuz.old")  # Debian's symlink name, no release in it
    write(root, "/boot/config-6.1.0-31-amd64")
    assert installed_kernels(ctx_for(root)) == {"6.1.0-27-amd64"}


def test_usr_lib_modules_only(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/usr/lib/modules/6.10.3-200.fc40.x86_64/modules.order": ""})
    assert installed_kernels(ctx_for(root)) == {"6.10.3-200.fc40.x86_64"}


def test_absolute_symlink_does_not_escape_root(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    outside = tmp_path / "outside"
    write(outside, "/6.1.0-99-amd64/modules.order")
    (root / "lib").mkdir()
    (root / "lib/modules").symlink_to(outside)
    assert installed_kernels(ctx_for(root, live=False)) == set()


def test_probe_not_live_reports_newest_installed_only(tmp_path: Path) -> None:
    root = debian_root(tmp_path)
    for release in ("6.1.0-9-amd64", "6.1.0-27-amd64"):
        root_from_listing(root, debian_kernel(release))
    section = probe(ProbeContext(root=root, live=False))
    assert section.kernel_newest_installed == "6.1.0-27-amd64"
    assert section.kernel_reboot_pending is None  # the running kernel is not observed


def test_probe_live_reboot_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "release", lambda: "6.1.0-9-amd64")
    root = debian_root(tmp_path)
    for release in ("6.1.0-9-amd64", "6.1.0-27-amd64"):
        root_from_listing(root, debian_kernel(release))
    section = probe(ctx_for(root))
    assert section.kernel == "6.1.0-9-amd64"
    assert section.kernel_newest_installed == "6.1.0-27-amd64"
    assert section.kernel_reboot_pending is True


def test_probe_live_machine_kernels() -> None:
    section = probe(ProbeContext())
    releases = installed_kernels(ProbeContext())
    if not releases:  # e.g. this microVM: the kernel comes from the hypervisor
        assert section.kernel_newest_installed is None
        assert section.kernel_reboot_pending is None
        assert any("no installed kernel found" in n for n in section.notes)
    else:
        assert section.kernel_newest_installed in releases
        assert section.kernel_reboot_pending is not None
