"""Professional storage: SAN block sessions (iSCSI, Fibre Channel, multipath) and NAS mounts.

Read without root and without running anything:

* Network filesystems from ``/proc/mounts`` (live host) whose type is in
  ``NETWORK_FSTYPES`` (NFS, SMB/CIFS, GlusterFS, CephFS, Lustre…); on an
  alternate root, the same types in ``/etc/fstab`` (configured, not known to be
  mounted: ``mounted`` False, with a note).  ``9p``/virtiofs (a hypervisor's
  shared folder) and FUSE sshfs/rclone are not storage systems and are left out.
* iSCSI sessions: the entries of ``/sys/class/iscsi_session`` (``session<N>``).
* Fibre Channel: ``/sys/class/fc_host/host<N>`` whose ``port_state`` is
  ``Online`` (an HBA with its link down is noted, not counted).
* Multipath: ``/sys/block/dm-*/dm/uuid`` starting with ``mpath-`` (dm-multipath
  maps; a LUN reached over several paths is a SAN LUN).

A missing ``/sys/class/iscsi_session`` or ``fc_host`` directory means the
driver is not loaded: zero sessions.  sysfs is live state, so on an alternate
root the three counts are unknown (None).
"""

from __future__ import annotations

from pathlib import Path

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.report import RemoteMount, StorageSection

PROC_MOUNTS = "/proc/mounts"
FSTAB = "/etc/fstab"
SYS_CLASS = "/sys/class"
ISCSI_SESSIONS = "/sys/class/iscsi_session"
FC_HOSTS = "/sys/class/fc_host"
SYS_BLOCK = "/sys/block"

NETWORK_FSTYPES: frozenset[str] = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "glusterfs",
        "fuse.glusterfs",
        "ceph",
        "cephfs",
        "fuse.ceph",
        "fuse.ceph-fuse",
        "lustre",
        "gpfs",
        "beegfs",
        "afs",
    }
)

NOT_LIVE_NOTE = (
    "alternate root: iSCSI, Fibre Channel and multipath need a live host (sysfs); "
    "network filesystems come from /etc/fstab (configured, not known to be mounted)"
)


def _unescape(field: str) -> str:
    """Octal escapes of /proc/mounts and fstab (``\\040`` is a space)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def network_mounts(text: str, mounted: bool = True) -> list[RemoteMount]:
    """Network filesystems of a ``/proc/mounts`` or ``/etc/fstab`` text."""
    found: list[RemoteMount] = []
    for raw in text.splitlines():
        fields = raw.split()
        if len(fields) < 3 or fields[0].startswith("#") or fields[2].lower() not in NETWORK_FSTYPES:
            continue
        mount = RemoteMount(
            source=_unescape(fields[0]),
            mountpoint=_unescape(fields[1]),
            fstype=fields[2].lower(),
            mounted=mounted,
        )
        if all((m.source, m.mountpoint) != (mount.source, mount.mountpoint) for m in found):
            found.append(mount)
    return found


def _entries(path: Path) -> list[Path] | None:
    """Entries of a sysfs directory; [] if absent (driver not loaded), None if unreadable."""
    try:
        return sorted(path.iterdir(), key=lambda p: p.name)
    except FileNotFoundError:
        return []
    except OSError:
        return None


def _attr(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def count_iscsi(ctx: ProbeContext) -> int | None:
    entries = _entries(ctx.path(ISCSI_SESSIONS))
    return None if entries is None else sum(e.name.startswith("session") for e in entries)


def count_fc(ctx: ProbeContext, notes: list[str]) -> int | None:
    entries = _entries(ctx.path(FC_HOSTS))
    if entries is None:
        return None
    online = 0
    for entry in entries:
        state = _attr(entry / "port_state")
        if state is None or state.lower() == "online":
            online += 1
        else:
            notes.append(f"Fibre Channel {entry.name}: port_state {state} (not counted)")
    return online


def count_multipath(ctx: ProbeContext) -> int | None:
    entries = _entries(ctx.path(SYS_BLOCK))
    if entries is None:
        return None
    return sum(
        (_attr(e / "dm" / "uuid") or "").startswith("mpath-")
        for e in entries
        if e.name.startswith("dm-")
    )


def _probe_offline(ctx: ProbeContext) -> StorageSection:
    if not ctx.path("/etc").is_dir():
        return unknown(StorageSection, "the alternate root has no /etc to read")
    notes = [NOT_LIVE_NOTE]
    fstab = ctx.read_text(FSTAB)
    if fstab is None:
        notes.append(f"no {FSTAB}")
    return StorageSection(remote_mounts=network_mounts(fstab or "", mounted=False), notes=notes)


def _probe_live(ctx: ProbeContext) -> StorageSection:
    notes: list[str] = []
    mounts_text = ctx.read_text(PROC_MOUNTS)
    if mounts_text is None:
        notes.append(f"{PROC_MOUNTS} unreadable")
    remote = network_mounts(mounts_text or "")
    if not ctx.exists(SYS_CLASS):
        notes.append(f"{SYS_CLASS} absent (sysfs not mounted): block sessions not seen")
        iscsi = fc = multipath = None
    else:
        iscsi = count_iscsi(ctx)
        fc = count_fc(ctx, notes)
        multipath = count_multipath(ctx)
        for name, value in (("iSCSI", iscsi), ("Fibre Channel", fc), ("multipath", multipath)):
            if value is None:
                notes.append(f"{name}: sysfs entries unreadable")
    if mounts_text is None and iscsi is None and fc is None and multipath is None:
        return unknown(StorageSection, "neither /proc/mounts nor sysfs could be read", notes=notes)
    return StorageSection(
        remote_mounts=remote,
        iscsi_sessions=iscsi,
        multipath_devices=multipath,
        fc_hosts=fc,
        notes=notes,
    )


def probe(ctx: ProbeContext) -> StorageSection:
    if not ctx.live:
        return _probe_offline(ctx)
    return _probe_live(ctx)
