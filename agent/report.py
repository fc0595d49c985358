"""The wire contract between agent and collector.

A report is a set of *facts*, never verdicts: the collector evaluates them.
Every fact family is one section, and every section says whether the agent
could observe it (``status: ok``) or not (``status: unknown`` with a
``reason``).  A section that could not be observed is never silently treated
as compliant by the collector.

Versioning: ``schema_version`` is ``MAJOR.MINOR``.  A collector accepts every
minor version of the majors it knows; new optional sections or fields bump
the minor version, anything else bumps the major version.  Unknown fields are
therefore ignored, not refused: a collector that is older than its agents
still evaluates what it understands (and keeps the raw report).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.4"
SUPPORTED_MAJOR = 1

SectionStatus = Literal["ok", "unknown"]
HostRole = Literal["server", "workstation", "unknown"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Section(_Model):
    """Common header of every fact family."""

    status: SectionStatus = "ok"
    reason: str | None = Field(
        default=None, description="Why the section could not be observed (status unknown)."
    )
    notes: list[str] = Field(
        default_factory=list,
        description="Partial gaps inside an observed section (e.g. one backend not readable).",
    )


# --- identity ---------------------------------------------------------------


class HostIdentity(_Model):
    hostname: str
    fqdn: str | None = None
    machine_id: str | None = Field(
        default=None, description="Stable machine identifier (/etc/machine-id)."
    )
    os_family: Literal["linux", "windows", "darwin", "other"] = "linux"
    role: HostRole = Field(
        default="unknown",
        description="Role configured by the administrator at enrollment; 'unknown' if not set.",
    )


# --- hardware and OS --------------------------------------------------------


class DiskInfo(_Model):
    device: str
    mountpoint: str
    fstype: str
    total_bytes: int | None = None


class TemperatureReading(_Model):
    sensor: str = Field(description="Sensor chip, e.g. coretemp, k10temp, acpitz, nvme.")
    label: str | None = Field(default=None, description="Reading label, e.g. 'Package id 0'.")
    celsius: float
    high: float | None = Field(default=None, description="High threshold (°C), if reported.")
    critical: float | None = Field(default=None, description="Critical threshold (°C).")


class HardwareSection(Section):
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    chassis_type: int | None = Field(default=None, description="SMBIOS chassis type code.")
    role_hint: HostRole = Field(
        default="unknown", description="Role inferred from the chassis type."
    )
    virtual: bool | None = None
    cpu_model: str | None = None
    cpu_cores_physical: int | None = None
    cpu_cores_logical: int | None = None
    memory_bytes: int | None = None
    disks: list[DiskInfo] = Field(default_factory=list)
    temperatures: list[TemperatureReading] = Field(
        default_factory=list, description="Temperature sensors (live hosts; often none in a VM)."
    )


class OsSection(Section):
    name: str | None = None
    id: str | None = Field(default=None, description="os-release ID, e.g. debian, rhel.")
    id_like: list[str] = Field(default_factory=list)
    version: str | None = None
    kernel: str | None = None
    arch: str | None = None
    boot_time: datetime | None = None
    uptime_seconds: int | None = None
    kernel_newest_installed: str | None = Field(
        default=None,
        description="Newest installed kernel release (/boot/vmlinuz-*, /lib/modules/*), "
        "of the running kernel's flavour when one of that flavour is installed.",
    )
    kernel_reboot_pending: bool | None = Field(
        default=None,
        description="The running kernel is older than the newest installed one; "
        "None when either is unknown.",
    )


# --- software ---------------------------------------------------------------


class Package(_Model):
    name: str
    version: str
    arch: str | None = None
    installed_at: datetime | None = None


PackageKey = tuple[str, str, str]


def package_key(package: Package) -> PackageKey:
    """Identity of one installed package: ``(name, arch, version)``; no arch is ``""``.

    Name and arch identify *a package*; the version is part of the key because
    rpm may hold several versions of one name+arch at once (installonly kernels).
    A version change is therefore ``removed`` old + ``added`` new in a delta.
    """
    return (package.name, package.arch or "", package.version)


def inventory_hash(packages: Iterable[Package]) -> str:
    """Stable SHA-256 of a full inventory: sorted, de-duplicated ``package_key`` triples.

    Only name, arch and version count (``installed_at`` does not), as canonical
    compact JSON, so agent and collector compute the same value.
    """
    return inventory_hash_of_keys(package_key(p) for p in packages)


def canonical_inventory(keys: Iterable[PackageKey]) -> bytes:
    """The bytes ``inventory_hash`` hashes: sorted, de-duplicated keys as compact JSON."""
    return json.dumps(sorted(set(keys)), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def inventory_hash_of_keys(keys: Iterable[PackageKey]) -> str:
    """``inventory_hash`` from the ``package_key`` triples themselves (no ``Package`` needed)."""
    return hashlib.sha256(canonical_inventory(keys)).hexdigest()


def diff_packages(
    old: Iterable[Package], new: Iterable[Package]
) -> tuple[list[Package], list[Package]]:
    """``(added, removed)`` turning inventory ``old`` into ``new``, each sorted by key."""
    before = {package_key(p): p for p in old}
    after = {package_key(p): p for p in new}
    added = [after[k] for k in sorted(after.keys() - before.keys())]
    removed = [before[k] for k in sorted(before.keys() - after.keys())]
    return added, removed


class DeltaConflict(ValueError):
    """A delta does not apply to the inventory it claims to be relative to."""


def apply_delta(
    current: Iterable[Package], added: Iterable[Package], removed: Iterable[Package]
) -> list[Package]:
    """Apply a delta strictly: removed packages must be present, added ones absent."""
    state = {package_key(p): p for p in current}
    for package in removed:
        if state.pop(package_key(package), None) is None:
            raise DeltaConflict(f"removed package {package_key(package)} is not installed")
    for package in added:
        key = package_key(package)
        if key in state:
            raise DeltaConflict(f"added package {key} is already installed")
        state[key] = package
    return [state[k] for k in sorted(state)]


class SoftwareSection(Section):
    """Installed packages, as a full list or as a delta (schema 1.2).

    ``mode: full``: ``packages`` is the whole inventory.  ``mode: delta``:
    ``packages`` is empty; ``added``/``removed`` turn the inventory of report
    ``base_report_id`` into this one (a version change is removed old + added
    new).  ``inventory_hash`` is ``inventory_hash()`` of the full inventory
    after the change, in both modes; the collector refuses a delta whose base
    it does not hold or whose result does not match (HTTP 409, code
    ``resync_required``), and the agent then re-sends that report in full.
    """

    manager: Literal["dpkg", "rpm", "other"] | None = None
    packages: list[Package] = Field(default_factory=list)
    mode: Literal["full", "delta"] = "full"
    added: list[Package] = Field(default_factory=list)
    removed: list[Package] = Field(default_factory=list)
    base_report_id: uuid.UUID | None = Field(
        default=None, description="Report whose inventory a delta is relative to."
    )
    inventory_hash: str | None = Field(
        default=None, description="SHA-256 of the full sorted inventory (see inventory_hash())."
    )


# --- network ----------------------------------------------------------------


class InterfaceAddress(_Model):
    family: Literal["ipv4", "ipv6"]
    address: str
    prefixlen: int | None = None


class NetworkInterface(_Model):
    name: str
    mac: str | None = None
    is_up: bool | None = None
    addresses: list[InterfaceAddress] = Field(default_factory=list)


class ListeningSocket(_Model):
    protocol: Literal["tcp", "udp"]
    address: str
    port: int
    process: str | None = None


class NetworkSection(Section):
    interfaces: list[NetworkInterface] = Field(default_factory=list)
    listening: list[ListeningSocket] = Field(default_factory=list)


# --- antivirus --------------------------------------------------------------


class AntivirusProduct(_Model):
    name: str = Field(description="Product name, e.g. 'ClamAV'.")
    installed: bool
    running: bool | None = Field(default=None, description="Scanning daemon/service running.")
    updater_running: bool | None = Field(
        default=None, description="Signature updater (e.g. freshclam) running."
    )
    realtime: bool | None = Field(default=None, description="On-access / real-time protection.")
    signature_version: str | None = None
    signature_updated_at: datetime | None = None
    last_scan_at: datetime | None = None
    evidence: list[str] = Field(default_factory=list, description="What the detection saw.")
    # schema 1.4
    signatures_up_to_date: bool | None = Field(
        default=None,
        description="The product's own verdict on its signatures (e.g. Windows Security "
        "Center productState); None when the product does not say.",
    )


class AntivirusSection(Section):
    products: list[AntivirusProduct] = Field(default_factory=list)


# --- patches ----------------------------------------------------------------


class PendingUpdate(_Model):
    name: str
    current_version: str | None = None
    new_version: str | None = None
    security: bool = False
    origin: str | None = None


class InstalledUpdate(_Model):
    """One installed update that is not a package, e.g. a Windows hotfix (KB)."""

    id: str = Field(description="Update identifier, e.g. KB5034441.")
    description: str | None = Field(default=None, description="e.g. Security Update.")
    installed_at: datetime | None = None


class PatchesSection(Section):
    manager: Literal["apt", "dnf", "yum", "zypper", "other"] | None = None
    pending_count: int | None = None
    security_pending_count: int | None = None
    pending: list[PendingUpdate] = Field(default_factory=list)
    last_update_at: datetime | None = Field(
        default=None, description="Time of the last successful package upgrade/install run."
    )
    last_refresh_at: datetime | None = Field(
        default=None, description="Time the package lists were last refreshed."
    )
    auto_updates: bool | None = None
    reboot_required: bool | None = None
    # schema 1.4
    installed_updates: list[InstalledUpdate] = Field(
        default_factory=list,
        description="Updates installed outside the package manager (Windows hotfixes).",
    )


# --- firewall ---------------------------------------------------------------

InboundPolicy = Literal["drop", "reject", "accept"]


class FirewallProfile(_Model):
    """One profile of a firewall with several (Windows: Domain, Private, Public)."""

    name: str
    enabled: bool | None = None
    default_inbound: InboundPolicy | None = None


class FirewallBackend(_Model):
    name: Literal["nftables", "iptables", "ufw", "firewalld", "windows"]
    installed: bool
    active: bool | None = None
    default_inbound: InboundPolicy | None = None
    rule_count: int | None = None
    evidence: list[str] = Field(default_factory=list)
    # schema 1.4
    profiles: list[FirewallProfile] = Field(
        default_factory=list,
        description="Per-profile state; the backend is active only if every profile is.",
    )


class FirewallSection(Section):
    backends: list[FirewallBackend] = Field(default_factory=list)
    active: bool | None = Field(default=None, description="Some backend filters inbound traffic.")
    default_inbound: InboundPolicy | None = Field(
        default=None, description="Effective default policy for inbound traffic."
    )


# --- IDS / IPS --------------------------------------------------------------


class IdsProduct(_Model):
    name: str
    kind: Literal["nids", "hids", "ips"]
    installed: bool
    running: bool | None = None
    evidence: list[str] = Field(default_factory=list)


class IdsSection(Section):
    products: list[IdsProduct] = Field(default_factory=list)


# --- logging (schema 1.1) ---------------------------------------------------


class AuditSetting(_Model):
    """One subcategory of the Windows advanced audit policy."""

    subcategory: str
    guid: str | None = Field(default=None, description="Subcategory GUID (locale-independent).")
    success: bool | None = None
    failure: bool | None = None
    setting: str | None = Field(default=None, description="Inclusion setting as printed.")


class LoggingSection(Section):
    journald_storage: str | None = Field(
        default=None, description="Effective journald Storage= (persistent/volatile/auto/none)."
    )
    journald_persistent: bool | None = None
    syslog_daemon: Literal["rsyslog", "syslog-ng", "other"] | None = None
    syslog_running: bool | None = None
    remote_targets: list[str] = Field(
        default_factory=list, description="Hosts logs are forwarded to (syslog, journal-upload)."
    )
    log_shippers: list[str] = Field(
        default_factory=list, description="Log forwarding agents running (filebeat, wazuh…)."
    )
    auditd_installed: bool | None = None
    auditd_running: bool | None = None
    audit_rule_count: int | None = Field(
        default=None,
        description="auditd rules; on Windows, audit policy subcategories that are audited.",
    )
    # schema 1.4 (Windows)
    event_log_running: bool | None = Field(
        default=None, description="Windows Event Log service (EventLog) running."
    )
    security_log_enabled: bool | None = None
    security_log_max_bytes: int | None = None
    security_log_retention: Literal["overwrite", "archive", "keep"] | None = Field(
        default=None,
        description="When the Security log is full: overwrite old events (Circular), archive "
        "the log (AutoBackup) or keep them and stop logging (Retain).",
    )
    audit_policy: list[AuditSetting] | None = Field(
        default=None,
        description="Windows advanced audit policy (auditpol /r); None if not read.",
    )


# --- authentication and access (schema 1.1) ---------------------------------


class AuthSection(Section):
    sshd_installed: bool | None = None
    sshd_running: bool | None = None
    sshd_config_source: Literal["sshd -T", "config files"] | None = None
    permit_root_login: str | None = Field(
        default=None, description="yes / no / prohibit-password / forced-commands-only"
    )
    password_authentication: bool | None = None
    permit_empty_passwords: bool | None = None
    pass_max_days: int | None = Field(default=None, description="/etc/login.defs PASS_MAX_DAYS")
    pass_min_days: int | None = None
    pass_min_len: int | None = Field(
        default=None, description="Minimum password length enforced by PAM (pwquality/passwdqc)."
    )
    password_quality_module: str | None = Field(
        default=None, description="pam_pwquality / pam_passwdqc / pam_cracklib if configured."
    )
    pam_password_stack: str | None = Field(
        default=None,
        description="PAM file holding the password stack that was read; None if none found.",
    )
    uid0_accounts: list[str] = Field(default_factory=list)
    empty_password_accounts: list[str] | None = Field(
        default=None, description="Accounts with an empty password hash; None if unreadable."
    )
    admin_group_members: dict[str, list[str]] | None = Field(
        default=None, description="Members of sudo/wheel/admin groups; None if unreadable."
    )
    login_accounts: list[str] = Field(
        default_factory=list, description="Accounts with a login shell."
    )
    # schema 1.4 (Windows facts; Linux may fill the neutral ones later)
    password_policy_source: str | None = Field(
        default=None, description="Where the Windows password policy was read: secedit, net."
    )
    password_complexity: bool | None = Field(
        default=None, description="Windows 'Password must meet complexity requirements'."
    )
    lockout_threshold: int | None = Field(
        default=None, description="Failed logons before an account locks; 0 = never."
    )
    lockout_duration_minutes: int | None = None
    remote_desktop_enabled: bool | None = Field(
        default=None, description="Remote Desktop accepts connections (fDenyTSConnections=0)."
    )
    remote_desktop_nla: bool | None = Field(
        default=None, description="Remote Desktop requires Network Level Authentication."
    )


# --- encryption (schema 1.1) -------------------------------------------------


class EncryptedVolume(_Model):
    name: str
    device: str | None = None
    kind: Literal["LUKS1", "LUKS2", "plain", "other"]
    mountpoint: str | None = None
    # schema 1.4
    method: str | None = Field(
        default=None, description="Scheme and cipher when not LUKS, e.g. 'BitLocker XtsAes256'."
    )


class PlaintextService(_Model):
    protocol: Literal["tcp", "udp"] = "tcp"
    address: str
    port: int
    service: str = Field(description="Protocol without TLS, e.g. telnet, ftp, http.")
    process: str | None = None


class EncryptionSection(Section):
    volumes: list[EncryptedVolume] = Field(default_factory=list)
    root_encrypted: bool | None = None
    swap_encrypted: bool | None = None
    plaintext_services: list[PlaintextService] = Field(
        default_factory=list,
        description="Listening on non-loopback addresses with a protocol that has no TLS.",
    )


# --- backup (schema 1.1) -----------------------------------------------------


class BackupEvidence(_Model):
    tool: str = Field(description="restic, borg, rsnapshot, path, duplicity…")
    location: str | None = None
    newest_at: datetime | None = None
    scheduled: bool | None = None
    encrypted: bool | None = None
    detail: str | None = None


class BackupSection(Section):
    tools_installed: list[str] = Field(default_factory=list)
    evidence: list[BackupEvidence] = Field(default_factory=list)
    newest_backup_at: datetime | None = None


# --- delivery (schema 1.2) ---------------------------------------------------


class DeliveryInfo(_Model):
    """Filled in by the agent's spool when the report is sent, not when collected.

    ``evicted_*`` describe reports the agent's spool dropped (oldest first)
    because it was full and that the collector has not been told about yet;
    the record is identified by ``evicted_first_report_id`` and only grows
    while unacknowledged, so the collector can store it idempotently.
    """

    evicted_count: int = Field(default=0, description="Reports lost to the spool size cap.")
    evicted_since: datetime | None = Field(
        default=None, description="Collection time of the first lost report."
    )
    evicted_until: datetime | None = Field(
        default=None, description="Collection time of the last lost report."
    )
    evicted_first_report_id: uuid.UUID | None = None
    evicted_last_report_id: uuid.UUID | None = None
    spool_depth: int | None = Field(
        default=None, description="Reports waiting in the spool, this one included."
    )
    attempts: int | None = Field(default=None, description="Failed delivery attempts before.")


# --- databases (schema 1.3) -------------------------------------------------

DatabaseEngine = Literal["postgresql", "mysql", "mariadb", "redis", "mongodb"]


class DatabaseServer(_Model):
    """One database server installed on the host, from its configuration files.

    The agent never connects to a database (or to any socket): everything comes
    from configuration files, the process table and the socket table.
    """

    engine: DatabaseEngine
    version: str | None = None
    running: bool | None = Field(
        default=None, description="A server process is running; None when not a live host."
    )
    listen_addresses: list[str] = Field(
        default_factory=list,
        description="Addresses it listens on: the live sockets when seen, else the "
        "configuration (0.0.0.0/:: for all interfaces); empty means local socket only.",
    )
    network_exposed: bool | None = Field(
        default=None, description="Listens on an address beyond loopback; None if unknown."
    )
    auth_issues: list[str] = Field(
        default_factory=list,
        description="Machine-readable weak-access findings, e.g. pg_trust_remote, "
        "pg_trust_local, mysql_skip_grant_tables, redis_no_password, "
        "redis_protected_mode_off, mongodb_authorization_disabled.",
    )
    config_files: list[str] = Field(default_factory=list, description="Files that were read.")
    unreadable_files: list[str] = Field(
        default_factory=list,
        description="Files deciding access that exist but could not be read (not root): "
        "auth_issues is then incomplete.",
    )


class DatabaseSection(Section):
    servers: list[DatabaseServer] = Field(default_factory=list)


# --- storage (schema 1.3) ----------------------------------------------------


class RemoteMount(_Model):
    source: str = Field(description="server:/export, //server/share, mon1:6789:/ …")
    mountpoint: str
    fstype: str = Field(description="nfs, nfs4, cifs, smb3, glusterfs, ceph…")
    mounted: bool | None = Field(
        default=True, description="False: only configured in /etc/fstab (alternate root)."
    )


class StorageSection(Section):
    remote_mounts: list[RemoteMount] = Field(
        default_factory=list, description="Network filesystems (NAS: NFS, SMB, cluster FS)."
    )
    iscsi_sessions: int | None = Field(
        default=None, description="iSCSI sessions (/sys/class/iscsi_session); None if unseen."
    )
    multipath_devices: int | None = Field(
        default=None, description="dm-multipath devices (dm uuid 'mpath-…'); None if unseen."
    )
    fc_hosts: int | None = Field(
        default=None,
        description="Fibre Channel HBA ports whose link is online (/sys/class/fc_host).",
    )


# --- the report -------------------------------------------------------------


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    report_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    agent_version: str
    collected_at: datetime = Field(default_factory=utcnow)
    collection_seconds: float | None = None
    host: HostIdentity
    hardware: HardwareSection
    os: OsSection
    software: SoftwareSection
    network: NetworkSection
    antivirus: AntivirusSection
    patches: PatchesSection
    firewall: FirewallSection
    ids: IdsSection
    # schema 1.1; None means the agent does not collect the family yet
    logging: LoggingSection | None = None
    auth: AuthSection | None = None
    encryption: EncryptionSection | None = None
    backup: BackupSection | None = None
    # schema 1.2; set at send time by the spool
    delivery: DeliveryInfo | None = None
    # schema 1.3
    databases: DatabaseSection | None = None
    storage: StorageSection | None = None


SECTION_MODELS: dict[str, type[Section]] = {
    "hardware": HardwareSection,
    "os": OsSection,
    "software": SoftwareSection,
    "network": NetworkSection,
    "antivirus": AntivirusSection,
    "patches": PatchesSection,
    "firewall": FirewallSection,
    "ids": IdsSection,
    "logging": LoggingSection,
    "auth": AuthSection,
    "encryption": EncryptionSection,
    "backup": BackupSection,
    "databases": DatabaseSection,
    "storage": StorageSection,
}
SECTION_NAMES: tuple[str, ...] = tuple(SECTION_MODELS)


def schema_major(version: str) -> int | None:
    """Return the major number of a ``MAJOR.MINOR`` version string, or None."""
    head = str(version).split(".", 1)[0]
    return int(head) if head.isdigit() else None


def json_schema() -> dict:
    return Report.model_json_schema()
