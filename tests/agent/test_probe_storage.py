"""Tests of the storage probe: NAS mounts, iSCSI, Fibre Channel and multipath from sysfs."""

from __future__ import annotations

from pathlib import Path

from agent.probes.base import ProbeContext
from agent.probes.storage import NOT_LIVE_NOTE, network_mounts, probe
from agent.report import RemoteMount, StorageSection
from tests.probekit import ctx_for, fixture_text, make_root, write


def fx(name: str) -> str:
    return fixture_text("storage", name)


NFS = RemoteMount(
    source="nas01.binhduong.gov.vn:/export/vanban", mountpoint="/srv/vanban", fstype="nfs4"
)
CIFS = RemoteMount(
    source="//nas01.binhduong.gov.vn/Luu tru", mountpoint="/mnt/luu tru", fstype="cifs"
)


def san_root(tmp_path: Path, mounts: str) -> Path:
    """A live-looking root: /proc/mounts and a sysfs tree (layout of the kernel's ABI docs)."""
    root = make_root(tmp_path, {"/proc/mounts": mounts})
    for session in ("session1", "session2"):
        (root / "sys/class/iscsi_session" / session).mkdir(parents=True)
    write(root, "/sys/class/fc_host/host3/port_state", "Online\n")
    write(root, "/sys/class/fc_host/host4/port_state", "Linkdown\n")
    write(root, "/sys/block/dm-0/dm/uuid", "mpath-3600a098038303053453f463045727a41\n")
    write(root, "/sys/block/dm-1/dm/uuid", "LVM-Xq2lQ0w9dI6B5cTvnJ8mYx4Hn1Rr7eKpBz3S\n")
    write(root, "/sys/block/sda/size", "209715200\n")
    return root


def test_network_mounts_from_proc_mounts() -> None:
    # sshfs and a 9p hypervisor share are not storage systems.
    assert network_mounts(fx("proc_mounts.nas")) == [NFS, CIFS]
    assert network_mounts(fx("proc_mounts.debian12-vm")) == []


def test_live_san_and_nas(tmp_path: Path) -> None:
    section = probe(ctx_for(san_root(tmp_path, fx("proc_mounts.nas"))))
    assert section.status == "ok"
    assert section.remote_mounts == [NFS, CIFS]
    assert (section.iscsi_sessions, section.fc_hosts, section.multipath_devices) == (2, 1, 1)
    assert any("host4: port_state Linkdown" in n for n in section.notes)


def test_live_local_disks_only(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/proc/mounts": fx("proc_mounts.debian12-vm")})
    (root / "sys/class/block").mkdir(parents=True)  # no iscsi_session, no fc_host
    write(root, "/sys/block/vda/size", "104857600\n")
    section = probe(ctx_for(root))
    assert section.status == "ok" and section.remote_mounts == []
    assert (section.iscsi_sessions, section.fc_hosts, section.multipath_devices) == (0, 0, 0)


def test_live_without_sysfs_counts_are_unknown(tmp_path: Path) -> None:
    section = probe(ctx_for(make_root(tmp_path, {"/proc/mounts": fx("proc_mounts.nas")})))
    assert section.status == "ok" and section.remote_mounts == [NFS, CIFS]
    assert section.iscsi_sessions is section.fc_hosts is section.multipath_devices is None
    assert any("sysfs not mounted" in n for n in section.notes)


def test_live_nothing_readable_is_unknown(tmp_path: Path) -> None:
    section = probe(ctx_for(make_root(tmp_path)))
    assert section.status == "unknown"


def test_not_live_reads_fstab(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/fstab": fx("fstab.nas")})
    section = probe(ctx_for(root, live=False))
    assert section.remote_mounts == [NFS.model_copy(update={"mounted": False})]
    assert section.iscsi_sessions is section.fc_hosts is section.multipath_devices is None
    assert NOT_LIVE_NOTE in section.notes


def test_not_live_local_fstab(tmp_path: Path) -> None:
    section = probe(ctx_for(make_root(tmp_path, {"/etc/fstab": fx("fstab.local")}), live=False))
    assert section.status == "ok" and section.remote_mounts == []


def test_not_live_without_etc_is_unknown(tmp_path: Path) -> None:
    assert probe(ctx_for(tmp_path, live=False)).status == "unknown"


def test_live_machine_returns_a_valid_section() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, StorageSection)
    StorageSection.model_validate(section.model_dump())
