"""Agentless targets: register, trust the host key (admin), collect, schedule.

A collection opens one pinned, key-authenticated SSH connection, runs the
agent's probes over it (``context.collect_remote``) and hands the resulting
``Report`` to the normal ingest path (``ingest.store_report``): the same
checks, findings, software history and snapshots as for an agent's report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from agent.collect import DEFAULT_PROBE_TIMEOUT
from agent.probes.base import DEFAULT_COMMAND_TIMEOUT
from agent.report import Report
from collector.agentless import ssh
from collector.agentless.context import collect_remote
from collector.credentials import AgentContext
from collector.ingest import IngestError, IngestResult, store_report
from collector.models import Agency, AgentlessTarget, Host
from collector.settings import Settings

VALID_ROLES = ("server", "workstation", "unknown")


class AgentlessError(Exception):
    """A target that cannot be registered, trusted or collected (message for the admin)."""


class NotTrusted(AgentlessError):
    pass


class FingerprintMismatch(AgentlessError):
    pass


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_target(
    session: Session,
    *,
    agency_id: int,
    address: str,
    username: str,
    key_path: str,
    port: int = 22,
    role: str = "unknown",
    interval_minutes: int = 1440,
) -> AgentlessTarget:
    if session.get(Agency, agency_id) is None:
        raise AgentlessError(f"agency {agency_id} does not exist")
    if role not in VALID_ROLES:
        raise AgentlessError(f"role must be one of {', '.join(VALID_ROLES)}")
    if not 0 < port < 65536 or interval_minutes < 1:
        raise AgentlessError("port must be 1-65535 and interval_minutes at least 1")
    target = AgentlessTarget(
        agency_id=agency_id,
        address=address,
        port=port,
        username=username,
        key_path=key_path,
        role=role,
        interval_minutes=interval_minutes,
    )
    session.add(target)
    session.commit()
    session.refresh(target)
    return target


def get_target(session: Session, target_id: int) -> AgentlessTarget:
    target = session.get(AgentlessTarget, target_id)
    if target is None:
        raise AgentlessError(f"agentless target {target_id} does not exist")
    return target


def pinned_key(target: AgentlessTarget) -> ssh.PinnedKey | None:
    if target.host_key_type and target.host_key_b64:
        return ssh.PinnedKey(target.host_key_type, target.host_key_b64)
    return None


def ssh_target(target: AgentlessTarget) -> ssh.SshTarget:
    return ssh.SshTarget(
        host=target.address,
        port=target.port,
        username=target.username,
        key_path=target.key_path,
        known_host_key=pinned_key(target),
    )


def presented_host_key(target: AgentlessTarget) -> ssh.PinnedKey:
    """The key the server presents now (key exchange only, no login): shown to the admin."""
    return ssh.fetch_host_key(target.address, target.port)


def trust_host_key(
    session: Session, target: AgentlessTarget, *, fingerprint: str, trusted_by: str
) -> ssh.PinnedKey:
    """Pin the server's current key, only if it is the one the admin saw (``fingerprint``)."""
    presented = presented_host_key(target)
    if presented.sha256 != fingerprint.strip():
        raise FingerprintMismatch(
            f"{target.address}:{target.port} presents {presented.key_type} {presented.sha256}, "
            f"not the confirmed fingerprint {fingerprint.strip()}; nothing was trusted"
        )
    target.host_key_type = presented.key_type
    target.host_key_b64 = presented.b64
    target.host_key_sha256 = presented.sha256
    target.trusted_at = _utcnow()
    target.trusted_by = trusted_by
    target.last_error = None
    session.add(target)
    session.commit()
    session.refresh(target)
    return presented


def _host_for(session: Session, target: AgentlessTarget, report: Report) -> Host:
    if target.host_id is not None:
        host = session.get(Host, target.host_id)
        if host is not None:
            return host
    host = None
    if report.host.machine_id:
        host = session.exec(
            select(Host).where(
                Host.agency_id == target.agency_id, Host.machine_id == report.host.machine_id
            )
        ).first()
    if host is None:
        host = Host(
            agency_id=target.agency_id,
            hostname=report.host.hostname,
            machine_id=report.host.machine_id,
            os_family=report.host.os_family,
            role=target.role,
        )
        session.add(host)
        session.flush()
    target.host_id = host.id
    session.add(target)
    return host


def fetch_report(
    target: AgentlessTarget,
    *,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
) -> Report:
    """Connect (pinned key, key auth) and collect; raises ``SshError`` subclasses."""
    if pinned_key(target) is None:
        raise NotTrusted(
            f"the host key of {target.address}:{target.port} has not been trusted; "
            "an administrator must trust it first (posture-collector agentless trust)"
        )
    client = ssh.connect(ssh_target(target))
    try:
        role: Any = target.role if target.role in VALID_ROLES else "unknown"
        return collect_remote(client, role=role, timeout=timeout, command_timeout=command_timeout)
    finally:
        client.close()


def collect_target(
    session: Session,
    target: AgentlessTarget,
    *,
    settings: Settings | None = None,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
) -> IngestResult:
    """Collect ``target`` over SSH and ingest the report like an agent's."""
    target_id = target.id
    try:
        report = fetch_report(target, timeout=timeout, command_timeout=command_timeout)
        host = _host_for(session, target, report)
        assert host.id is not None
        agent = AgentContext(credential_id=0, host_id=host.id, agency_id=target.agency_id)
        result = store_report(session, agent, report, settings=settings)
    except (ssh.SshError, AgentlessError, IngestError) as exc:
        session.rollback()
        _record(session, target_id, error=str(getattr(exc, "detail", exc)))
        raise
    _record(session, target_id, error=None)
    return result


def _record(session: Session, target_id: int | None, *, error: str | None) -> None:
    target = session.get(AgentlessTarget, target_id)
    if target is None:
        return
    target.last_run_at = _utcnow()
    target.last_error = error
    session.add(target)
    session.commit()


@dataclass
class RunOutcome:
    target_id: int
    result: IngestResult | None = None
    error: str | None = None


def due_targets(session: Session, now: datetime) -> list[AgentlessTarget]:
    due = []
    for target in session.exec(select(AgentlessTarget).order_by(AgentlessTarget.id)).all():
        if pinned_key(target) is None:
            continue  # never connect to an untrusted server
        last = target.last_run_at
        if last is None or last + timedelta(minutes=target.interval_minutes) <= now:
            due.append(target)
    return due


def run_due(
    session: Session, now: datetime | None = None, *, settings: Settings | None = None
) -> list[RunOutcome]:
    """Collect every trusted target whose interval has elapsed; errors are recorded, not raised."""
    outcomes: list[RunOutcome] = []
    for target in due_targets(session, now or _utcnow()):
        assert target.id is not None
        try:
            outcomes.append(
                RunOutcome(target.id, result=collect_target(session, target, settings=settings))
            )
        except (ssh.SshError, AgentlessError, IngestError) as exc:
            outcomes.append(RunOutcome(target.id, error=str(getattr(exc, "detail", exc))))
    return outcomes
