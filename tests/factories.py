"""Builders of realistic reports for tests of the policies and the collector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.report import (
    AntivirusProduct,
    AntivirusSection,
    FirewallBackend,
    FirewallSection,
    HardwareSection,
    HostIdentity,
    IdsProduct,
    IdsSection,
    NetworkSection,
    OsSection,
    Package,
    PatchesSection,
    PendingUpdate,
    Report,
    SoftwareSection,
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
    }


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
