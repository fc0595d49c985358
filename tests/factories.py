"""Builders of realistic reports for tests of the policies and the collector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.report import (
    AntivirusProduct,
    AntivirusSection,
    AuthSection,
    BackupEvidence,
    BackupSection,
    DatabaseSection,
    DatabaseServer,
    EncryptedVolume,
    EncryptionSection,
    FirewallBackend,
    FirewallSection,
    HardwareSection,
    HostIdentity,
    IdsProduct,
    IdsSection,
    LoggingSection,
    NetworkSection,
    OsSection,
    Package,
    PatchesSection,
    PendingUpdate,
    RemoteMount,
    Report,
    SoftwareSection,
    StorageSection,
)

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def healthy_sections(now: datetime = NOW) -> dict[str, Any]:
    """Sections of a well-kept Debian server: every check passes."""
    return {
        "hardware": HardwareSection(
            vendor="Dell Inc.", model="PowerEdge R740", chassis_type=23, role_hint="server"
        ),
        "os": OsSection(name="Debian GNU/Linux 12 (bookworm)", id="debian", version="12"),
        "software": SoftwareSection(
            manager="dpkg",
            packages=[Package(name="clamav", version="1.0.7+dfsg-1~deb12u1", arch="amd64")],
        ),
        "network": NetworkSection(),
        "antivirus": AntivirusSection(
            products=[
                AntivirusProduct(
                    name="ClamAV",
                    installed=True,
                    running=True,
                    updater_running=True,
                    signature_version="27450",
                    signature_updated_at=now - timedelta(days=1),
                )
            ]
        ),
        "patches": PatchesSection(
            manager="apt",
            pending_count=0,
            security_pending_count=0,
            last_update_at=now - timedelta(days=3),
            last_refresh_at=now - timedelta(hours=5),
            auto_updates=True,
            reboot_required=False,
        ),
        "firewall": FirewallSection(
            backends=[
                FirewallBackend(
                    name="nftables", installed=True, active=True, default_inbound="drop",
                    rule_count=6,
                )
            ],
            active=True,
            default_inbound="drop",
        ),
        "ids": IdsSection(
            products=[IdsProduct(name="Wazuh agent", kind="hids", installed=True, running=True)]
        ),
        "logging": healthy_logging(),
        "auth": healthy_auth(),
        "encryption": EncryptionSection(
            volumes=[
                EncryptedVolume(
                    name="sda5_crypt", device="/dev/mapper/sda5_crypt", kind="LUKS2",
                    mountpoint="/",
                )
            ],
            root_encrypted=True,
            swap_encrypted=True,
        ),
        "backup": BackupSection(
            tools_installed=["restic"],
            evidence=[
                BackupEvidence(
                    tool="restic", location="/srv/restic", newest_at=now - timedelta(days=1),
                    scheduled=True, encrypted=True,
                )
            ],
            newest_backup_at=now - timedelta(days=1),
        ),
        "databases": DatabaseSection(
            servers=[
                DatabaseServer(
                    engine="postgresql", version="15", running=True,
                    listen_addresses=["127.0.0.1", "::1"], network_exposed=False,
                    config_files=[
                        "/etc/postgresql/15/main/postgresql.conf",
                        "/etc/postgresql/15/main/pg_hba.conf",
                    ],
                )
            ]
        ),
        "storage": StorageSection(
            remote_mounts=[
                RemoteMount(source="nas01.binhduong.gov.vn:/export/data", mountpoint="/srv/data",
                            fstype="nfs4")
            ],
            iscsi_sessions=2,
            multipath_devices=1,
            fc_hosts=0,
        ),
    }


def healthy_logging(**changes: Any) -> LoggingSection:
    base = LoggingSection(
        journald_storage="persistent",
        journald_persistent=True,
        syslog_daemon="rsyslog",
        syslog_running=True,
        remote_targets=["loghost.binhduong.gov.vn:514"],
        auditd_installed=True,
        auditd_running=True,
        audit_rule_count=12,
    )
    return base.model_copy(update=changes)


def healthy_auth(**changes: Any) -> AuthSection:
    base = AuthSection(
        sshd_installed=True,
        sshd_running=True,
        sshd_config_source="sshd -T",
        permit_root_login="no",
        password_authentication=False,
        permit_empty_passwords=False,
        pass_max_days=90,
        pass_min_days=1,
        pass_min_len=12,
        password_quality_module="pam_pwquality",
        pam_password_stack="/etc/pam.d/common-password",
        uid0_accounts=["root"],
        empty_password_accounts=[],
        admin_group_members={"sudo": []},
        login_accounts=["root", "nguyenvana"],
    )
    return base.model_copy(update=changes)


def make_report(
    now: datetime = NOW,
    hostname: str = "srv-01",
    machine_id: str = "0123456789abcdef0123456789abcdef",
    role: str = "unknown",
    **sections: Any,
) -> Report:
    """A complete report; pass sections (models or dicts) to override the healthy ones."""
    parts = healthy_sections(now)
    parts.update(sections)
    return Report(
        agent_version="test",
        collected_at=now,
        host=HostIdentity(hostname=hostname, machine_id=machine_id, role=role),
        **parts,
    )


def stale_patches(now: datetime = NOW) -> PatchesSection:
    return PatchesSection(
        manager="apt",
        pending_count=2,
        security_pending_count=1,
        pending=[
            PendingUpdate(name="openssl", new_version="3.0.15-1~deb12u1", security=True),
            PendingUpdate(name="tzdata", new_version="2026a-0+deb12u1"),
        ],
        last_update_at=now - timedelta(days=90),
        last_refresh_at=now - timedelta(hours=2),
        reboot_required=True,
    )
