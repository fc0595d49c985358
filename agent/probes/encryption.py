"""Encryption at rest (dm-crypt/LUKS volumes) and plaintext network services.

Volumes, without root, from sysfs (the kernel's device-mapper attributes):

* ``/sys/block/dm-*/dm/uuid`` is ``CRYPT-<TYPE>-<uuid without dashes>-<name>`` for
  mappings made by cryptsetup/systemd-cryptsetup; ``TYPE`` ``LUKS1``, ``LUKS2`` and
  ``PLAIN`` are reported as such, ``LOOPAES``, ``TCRYPT`` (VeraCrypt), ``BITLK``
  (BitLocker) and ``FVAULT2`` as ``other``.  ``VERITY`` and ``INTEGRITY`` mappings
  protect integrity, not confidentiality, and ``SUBDEV``/``TEMP`` are cryptsetup's
  internal helpers: none of them counts.  ``dm/name`` is the ``/dev/mapper`` name.
* ``/sys/block/<dev>/slaves`` lists the devices a mapping sits on.  A filesystem
  is encrypted when a crypt mapping is somewhere below its device (LVM on LUKS:
  ``debian--vg-root`` -> ``sda5_crypt`` -> ``sda5``).
* Mounted filesystems come from psutil ``disk_partitions()``; their devices are
  resolved to sysfs names (``/dev/mapper/<name>``, ``/dev/dm-N``, ``/dev/sdXN``, or
  the device number through ``/sys/dev/block/MAJ:MIN``).  ``root_encrypted`` is
  about the filesystem mounted on ``/``; ``swap_encrypted`` about every active
  swap area of ``/proc/swaps`` (a swap *file* takes the encryption of the
  filesystem holding it).  A mapping that carries several filesystems (LVM on
  LUKS) is listed once per mountpoint; swap is shown as ``[SWAP]``.
* ``lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINT`` (``TYPE`` ``crypt``) adds crypt
  devices sysfs did not show and decides ``/`` when sysfs could not; its volumes
  have kind ``other`` (lsblk does not give the LUKS version).
* ``/etc/crypttab`` is extra evidence on a live host (entries not open are noted)
  and the only source on an alternate root: then ``/`` and swap count as
  encrypted only when ``/etc/fstab`` mounts them from ``/dev/mapper/<crypttab
  name>``; anything else is left undecided (None), never "not encrypted".

Plaintext services (live host only, never by connecting to anything): listening
TCP sockets (psutil, or ``/proc/net/tcp{,6}`` when psutil is denied) on a
non-loopback address whose port belongs to a protocol that carries credentials
or data without TLS (``PLAINTEXT_PORTS``).  SMTP (25) is left out on purpose:
whether it offers STARTTLS cannot be told without connecting.  Database ports
are listed with "(TLS not verified)": they may well require TLS, the agent
cannot see that from the socket table.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.probes.network import listening_from_connections, parse_proc_net, process_namer
from agent.report import EncryptedVolume, EncryptionSection, ListeningSocket, PlaintextService

VolumeKind = Literal["LUKS1", "LUKS2", "plain", "other"]

SYS_BLOCK = "/sys/block"
SYS_CLASS_BLOCK = "/sys/class/block"
SYS_DEV_BLOCK = "/sys/dev/block"
PROC_SWAPS = "/proc/swaps"
CRYPTTAB = "/etc/crypttab"
FSTAB = "/etc/fstab"
LSBLK_ARGV = ("lsblk", "-J", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINT")
LSBLK_TIMEOUT = 10.0
SWAP_MOUNTPOINT = "[SWAP]"
MAX_STACK_DEPTH = 16  # device-mapper stacks are a few levels deep; guards against loops

# cryptsetup's dm uuid subsystem -> reported kind.  Anything else is not encryption.
CRYPT_TYPES: dict[str, VolumeKind] = {
    "LUKS1": "LUKS1",
    "LUKS2": "LUKS2",
    "PLAIN": "plain",
    "LOOPAES": "other",
    "TCRYPT": "other",
    "BITLK": "other",
    "FVAULT2": "other",
}

# TCP port -> protocol without TLS (the name shown in reports).
PLAINTEXT_PORTS: dict[int, str] = {
    21: "ftp",
    23: "telnet",
    80: "http (plain HTTP listener)",
    8080: "http (plain HTTP listener)",
    110: "pop3",
    143: "imap",
    389: "ldap",
    512: "rexec",
    513: "rlogin",
    514: "rsh",
    **{5900 + display: "vnc" for display in range(10)},
    3306: "mysql (TLS not verified)",
    5432: "postgresql (TLS not verified)",
    6379: "redis (TLS not verified)",
    27017: "mongodb (TLS not verified)",
}

NOT_LIVE_SERVICES_NOTE = (
    "plaintext services need a live host (listening sockets): none were looked for"
)
OFFLINE_NOTE = (
    "alternate root: volumes come from /etc/crypttab only (nothing says they are open), "
    "and / or swap count as encrypted only when /etc/fstab mounts them from a crypttab mapping"
)


# --- sysfs -----------------------------------------------------------------------


@dataclass(frozen=True)
class BlockDevice:
    """One ``/sys/block`` entry: its device-mapper attributes and what it sits on."""

    name: str
    dm_name: str | None = None
    dm_uuid: str | None = None
    slaves: tuple[str, ...] = ()

    @property
    def crypt_kind(self) -> VolumeKind | None:
        return crypt_kind(self.dm_uuid)


def crypt_kind(dm_uuid: str | None) -> VolumeKind | None:
    """Kind of a dm-crypt mapping from its dm uuid, None if it is not one."""
    if not dm_uuid or not dm_uuid.startswith("CRYPT-"):
        return None
    subsystem = dm_uuid.split("-", 2)[1]
    return CRYPT_TYPES.get(subsystem.upper())


def _read_attr(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def read_block_devices(ctx: ProbeContext) -> dict[str, BlockDevice] | None:
    """Every ``/sys/block`` device under the root; None if the directory is unreadable."""
    base = ctx.path(SYS_BLOCK)
    try:
        entries = sorted(base.iterdir(), key=lambda p: p.name)
    except OSError:
        return None
    devices: dict[str, BlockDevice] = {}
    for entry in entries:
        try:
            slaves = tuple(sorted(p.name for p in (entry / "slaves").iterdir()))
        except OSError:
            slaves = ()
        devices[entry.name] = BlockDevice(
            name=entry.name,
            dm_name=_read_attr(entry / "dm" / "name"),
            dm_uuid=_read_attr(entry / "dm" / "uuid"),
            slaves=slaves,
        )
    return devices


def crypt_below(name: str, devices: dict[str, BlockDevice], depth: int = 0) -> list[str]:
    """Names of the crypt mappings at or below a device (empty: not encrypted)."""
    device = devices.get(name)
    if device is None or depth > MAX_STACK_DEPTH:
        return []  # a partition or a disk: nothing below it
    found = [name] if device.crypt_kind else []
    for slave in device.slaves:
        found += [n for n in crypt_below(slave, devices, depth + 1) if n not in found]
    return found


def resolve_device(
    ctx: ProbeContext, device: str, devices: dict[str, BlockDevice]
) -> str | None:
    """The sysfs name of a mounted device path, or None (overlay, tmpfs, zfs…)."""
    if not device.startswith("/dev/"):
        return None
    base = os.path.basename(device)
    if device.startswith("/dev/mapper/"):
        for dev in devices.values():
            if dev.dm_name == base:
                return dev.name
    if base in devices or ctx.exists(f"{SYS_CLASS_BLOCK}/{base}"):
        return base
    if not ctx.live:
        return None
    try:  # /dev/root, /dev/disk/by-uuid/… : follow the device number
        rdev = os.stat(ctx.path(device)).st_rdev
    except OSError:
        return None
    link = ctx.path(f"{SYS_DEV_BLOCK}/{os.major(rdev)}:{os.minor(rdev)}")
    try:
        return os.path.basename(os.path.realpath(link)) if link.exists() else None
    except OSError:
        return None


# --- mounts, swaps, crypttab, lsblk ----------------------------------------------------


def live_mounts() -> list[tuple[str, str]]:
    """(device, mountpoint) of the mounted block-device filesystems."""
    return [(p.device, p.mountpoint) for p in psutil.disk_partitions(all=False)]


def parse_proc_swaps(text: str) -> list[tuple[str, str]]:
    """(filename, type) of each active swap area in ``/proc/swaps``."""
    swaps: list[tuple[str, str]] = []
    for line in text.splitlines()[1:]:  # first line is the header
        fields = line.split()
        if len(fields) >= 2:
            swaps.append((fields[0].replace("\\040", " "), fields[1]))
    return swaps


@dataclass(frozen=True)
class CrypttabEntry:
    name: str
    device: str
    keyfile: str | None = None
    options: tuple[str, ...] = ()

    @property
    def kind(self) -> VolumeKind:
        """crypttab(5) gives no LUKS version: it can only tell plain mode apart."""
        if "plain" in self.options:
            return "plain"
        if any(o.split("=", 1)[0] in _NOT_PLAIN for o in self.options):
            return "other"
        # A random key (swap/tmp re-created at each boot) can only be plain dm-crypt.
        if self.keyfile in ("/dev/urandom", "/dev/random"):
            return "plain"
        return "other"


_NOT_PLAIN = frozenset({"luks", "tcrypt", "tcrypt-veracrypt", "bitlk", "fvault2"})


def parse_crypttab(text: str) -> list[CrypttabEntry]:
    entries: list[CrypttabEntry] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        fields = line.split()
        if len(fields) < 2:
            continue
        keyfile = fields[2] if len(fields) >= 3 and fields[2] not in ("none", "-") else None
        options = tuple(fields[3].split(",")) if len(fields) >= 4 else ()
        entries.append(
            CrypttabEntry(name=fields[0], device=fields[1], keyfile=keyfile, options=options)
        )
    return entries


def parse_fstab(text: str) -> list[tuple[str, str, str]]:
    """(device, mountpoint, fstype) of each ``/etc/fstab`` line."""
    entries: list[tuple[str, str, str]] = []
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) >= 3:
            entries.append((fields[0], fields[1].replace("\\040", " "), fields[2]))
    return entries


@dataclass
class LsblkNode:
    name: str
    type: str | None
    fstype: str | None
    mountpoint: str | None
    children: list[LsblkNode] = field(default_factory=list)


def parse_lsblk(json_text: str) -> list[LsblkNode]:
    """The device tree of ``lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINT``.  Raises ValueError."""
    data = json.loads(json_text)
    roots = data.get("blockdevices") if isinstance(data, dict) else None
    if not isinstance(roots, list):
        raise ValueError("not an 'lsblk -J' document")

    def build(raw: Any) -> LsblkNode | None:
        if not isinstance(raw, dict) or not raw.get("name"):
            return None
        mountpoint = raw.get("mountpoint")
        if mountpoint is None and isinstance(raw.get("mountpoints"), list):
            mountpoint = next((m for m in raw["mountpoints"] if m), None)
        kids = [k for k in (build(c) for c in raw.get("children") or []) if k is not None]
        return LsblkNode(
            name=str(raw["name"]),
            type=raw.get("type"),
            fstype=raw.get("fstype"),
            mountpoint=mountpoint,
            children=kids,
        )

    return [n for n in (build(r) for r in roots) if n is not None]


def lsblk_crypt_mounts(nodes: Sequence[LsblkNode]) -> list[tuple[str, str | None]]:
    """(crypt device name, mountpoint carried) pairs; mountpoint None if it carries none."""
    pairs: list[tuple[str, str | None]] = []

    def walk(node: LsblkNode, crypts: tuple[str, ...]) -> None:
        if node.type == "crypt":
            crypts = (*crypts, node.name)
            if not node.mountpoint and not _has_mount(node):
                pairs.append((node.name, None))
        if node.mountpoint:
            pairs.extend((c, node.mountpoint) for c in crypts)
        for child in node.children:
            walk(child, crypts)

    for node in nodes:
        walk(node, ())
    return list(dict.fromkeys(pairs))


def _has_mount(node: LsblkNode) -> bool:
    return any(c.mountpoint or _has_mount(c) for c in node.children)


def lsblk_mount_encrypted(nodes: Sequence[LsblkNode], mountpoint: str) -> bool | None:
    """Whether the device mounted on ``mountpoint`` has a crypt device below it."""
    seen: list[bool] = []

    def walk(node: LsblkNode, under_crypt: bool) -> None:
        under = under_crypt or node.type == "crypt"
        if node.mountpoint == mountpoint:
            seen.append(under)
        for child in node.children:
            walk(child, under)

    for node in nodes:
        walk(node, False)
    # LVM spanning several disks shows up under each; one crypt path is not enough.
    return all(seen) if seen else None


# --- plaintext services -----------------------------------------------------------


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def plaintext_services(sockets: Iterable[ListeningSocket]) -> list[PlaintextService]:
    """Listening TCP sockets on non-loopback addresses, on a port of a protocol without TLS."""
    found: list[PlaintextService] = []
    for s in sockets:
        if s.protocol != "tcp" or s.port not in PLAINTEXT_PORTS or is_loopback(s.address):
            continue
        found.append(
            PlaintextService(
                protocol="tcp",
                address=s.address,
                port=s.port,
                service=PLAINTEXT_PORTS[s.port],
                process=s.process,
            )
        )
    return sorted(found, key=lambda p: (p.port, p.address, p.process or ""))


def listening_tcp(ctx: ProbeContext, notes: list[str]) -> list[ListeningSocket] | None:
    """Listening TCP sockets of the live host, None if the socket table is unreadable."""
    try:
        return listening_from_connections(psutil.net_connections(kind="tcp"), process_namer())
    except (OSError, psutil.Error) as exc:
        found: list[ListeningSocket] = []
        tables = 0
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            text = ctx.read_text(path)
            if text is not None:
                tables += 1
                found += parse_proc_net(text, "tcp")
        if not tables:
            notes.append(f"listening sockets unreadable ({type(exc).__name__})")
            return None
        notes.append(
            f"psutil socket table denied ({type(exc).__name__}); read /proc/net instead, "
            "without process names"
        )
        return found


# --- the probe ------------------------------------------------------------------------


@dataclass
class _Volumes:
    volumes: list[EncryptedVolume] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, volume: EncryptedVolume) -> None:
        key = (volume.name, volume.mountpoint)
        if all((v.name, v.mountpoint) != key for v in self.volumes):
            self.volumes.append(volume)

    def names(self) -> set[str]:
        return {v.name for v in self.volumes}


def _mapper(name: str) -> str:
    return f"/dev/mapper/{name}"


def _from_sysfs(
    ctx: ProbeContext,
    devices: dict[str, BlockDevice],
    mounts: list[tuple[str, str]],
    swaps: list[tuple[str, str]],
    found: _Volumes,
) -> tuple[bool | None, bool | None]:
    """Volumes from sysfs; returns (root_encrypted, swap_encrypted)."""
    resolved = {device: resolve_device(ctx, device, devices) for device, _ in mounts}
    carried: dict[str, list[str]] = {}
    for device, mountpoint in mounts:
        if (name := resolved[device]) is not None:
            for crypt in crypt_below(name, devices):
                carried.setdefault(crypt, []).append(mountpoint)

    swap_states: list[bool | None] = []
    for filename, kind in swaps:
        if kind == "partition" or filename.startswith("/dev/"):
            name = resolve_device(ctx, filename, devices)
        else:  # a swap file: the filesystem holding it decides
            holder = max(
                (m for m in mounts if filename.startswith(m[1].rstrip("/") + "/")),
                key=lambda m: len(m[1]),
                default=None,
            )
            name = resolved.get(holder[0]) if holder else None
        if name is None:
            found.notes.append(f"swap {filename}: device not found in sysfs")
            swap_states.append(None)
            continue
        crypts = crypt_below(name, devices)
        swap_states.append(bool(crypts))
        for crypt in crypts:
            carried.setdefault(crypt, []).append(SWAP_MOUNTPOINT)

    for dev in devices.values():
        kind = dev.crypt_kind
        if kind is None:
            continue
        name = dev.dm_name or dev.name
        mountpoints = sorted(set(carried.get(dev.name, [])), key=lambda m: (m != "/", m))
        for mountpoint in mountpoints or [None]:
            found.add(
                EncryptedVolume(name=name, device=_mapper(name), kind=kind, mountpoint=mountpoint)
            )

    root_encrypted: bool | None = None
    root = next((d for d, m in mounts if m == "/"), None)
    if root is None:
        found.notes.append("no block device is mounted on / (container or overlay root)")
    elif resolved[root] is None:
        found.notes.append(f"the device behind / ({root}) was not found in sysfs")
    else:
        root_encrypted = bool(crypt_below(resolved[root], devices))

    swap_encrypted: bool | None
    if not swaps:
        swap_encrypted = None
        found.notes.append("no active swap")
    elif False in swap_states:
        swap_encrypted = False
    elif None in swap_states:
        swap_encrypted = None
    else:
        swap_encrypted = True
    return root_encrypted, swap_encrypted


def _from_lsblk(ctx: ProbeContext, found: _Volumes) -> list[LsblkNode] | None:
    try:
        result = ctx.runner.run(LSBLK_ARGV, timeout=LSBLK_TIMEOUT)
    except ToolMissing:
        return None
    except CommandTimeout as exc:
        found.notes.append(str(exc))
        return None
    if not result.ok:
        found.notes.append(f"lsblk failed (exit {result.returncode})")
        return None
    try:
        nodes = parse_lsblk(result.stdout)
    except ValueError as exc:
        found.notes.append(f"lsblk output not understood: {exc}")
        return None
    known = found.names()
    for name, mountpoint in lsblk_crypt_mounts(nodes):
        if name not in known:
            volume = EncryptedVolume(
                name=name, device=_mapper(name), kind="other", mountpoint=mountpoint
            )
            found.add(volume)
    return nodes


MountsReader = Callable[[], list[tuple[str, str]]]
SocketsReader = Callable[[ProbeContext, list[str]], list[ListeningSocket] | None]


def probe_live(
    ctx: ProbeContext,
    mounts_reader: MountsReader | None = None,
    sockets_reader: SocketsReader | None = None,
) -> EncryptionSection:
    """The live-host probe; the readers replace psutil's mounts and socket table (agentless)."""
    found = _Volumes()
    devices = read_block_devices(ctx)
    try:
        mounts = (mounts_reader or live_mounts)()
    except (OSError, psutil.Error) as exc:
        mounts = []
        found.notes.append(f"mounted filesystems unreadable: {type(exc).__name__}")
    swaps_text = ctx.read_text(PROC_SWAPS)
    swaps = parse_proc_swaps(swaps_text) if swaps_text is not None else []
    if swaps_text is None:
        found.notes.append(f"{PROC_SWAPS} unreadable")

    root_encrypted: bool | None = None
    swap_encrypted: bool | None = None
    if devices is not None:
        root_encrypted, swap_encrypted = _from_sysfs(ctx, devices, mounts, swaps, found)
        if swaps_text is None:
            swap_encrypted = None
    else:
        found.notes.append(f"{SYS_BLOCK} unreadable")

    nodes = _from_lsblk(ctx, found)
    if devices is None and nodes is None:
        return unknown(
            EncryptionSection, f"neither {SYS_BLOCK} nor lsblk could be read", notes=found.notes
        )
    if root_encrypted is None and nodes is not None:
        root_encrypted = lsblk_mount_encrypted(nodes, "/")
        if root_encrypted is not None:
            found.notes.append("/ decided from lsblk")

    crypttab_text = ctx.read_text(CRYPTTAB)
    if crypttab_text is not None:
        open_names = found.names()
        for entry in parse_crypttab(crypttab_text):
            if entry.name not in open_names:
                found.notes.append(f"{CRYPTTAB} lists '{entry.name}', which is not open")

    sockets = (sockets_reader or listening_tcp)(ctx, found.notes)
    services = plaintext_services(sockets) if sockets is not None else []
    if not ctx.is_root:
        found.notes.append("not root: owning process of other users' sockets is not visible")
    return EncryptionSection(
        volumes=found.volumes,
        root_encrypted=root_encrypted,
        swap_encrypted=swap_encrypted,
        plaintext_services=services,
        notes=found.notes,
    )


def _probe_offline(ctx: ProbeContext) -> EncryptionSection:
    if not ctx.path("/etc").is_dir():
        return unknown(EncryptionSection, "the alternate root has no /etc to read")
    found = _Volumes(notes=[OFFLINE_NOTE, NOT_LIVE_SERVICES_NOTE])
    crypttab_text = ctx.read_text(CRYPTTAB)
    entries = parse_crypttab(crypttab_text) if crypttab_text is not None else []
    if crypttab_text is None:
        found.notes.append(f"no {CRYPTTAB}")
    by_device = {_mapper(e.name): e for e in entries}
    carried: dict[str, list[str]] = {}
    root_encrypted: bool | None = None
    swap_states: list[bool] = []
    for device, mountpoint, fstype in parse_fstab(ctx.read_text(FSTAB) or ""):
        entry = by_device.get(device)
        if fstype == "swap":
            mountpoint = SWAP_MOUNTPOINT
            swap_states.append(entry is not None)
        elif mountpoint == "/" and entry is not None:
            root_encrypted = True
        if entry is not None:
            carried.setdefault(entry.name, []).append(mountpoint)
    for entry in entries:
        mountpoints = sorted(set(carried.get(entry.name, [])), key=lambda m: (m != "/", m))
        for mountpoint in mountpoints or [None]:
            found.add(
                EncryptedVolume(
                    name=entry.name, device=entry.device, kind=entry.kind, mountpoint=mountpoint
                )
            )
    # Anything not mounted from a crypttab mapping may still be LVM on LUKS: undecided.
    swap_encrypted = True if swap_states and all(swap_states) else None
    return EncryptionSection(
        volumes=found.volumes,
        root_encrypted=root_encrypted,
        swap_encrypted=swap_encrypted,
        notes=found.notes,
    )


def probe(ctx: ProbeContext) -> EncryptionSection:
    if not ctx.live:
        return _probe_offline(ctx)
    return probe_live(ctx)

