"""The agent's main loop: collect, spool, deliver; back off while the collector is away."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.client import (
    CredentialRejected,
    RotationError,
    TransportError,
    flush,
    rotate_credential,
)
from agent.collect import collect
from agent.config import AgentConfig, Enrollment, update_status
from agent.probes.base import ProbeContext
from agent.spool import Spool

log = logging.getLogger(__name__)

BACKOFF_BASE = 15.0


def spool_for(config: AgentConfig) -> Spool:
    return Spool(
        config.state_dir / "spool.sqlite",
        max_reports=config.spool_max_reports,
        max_bytes=config.spool_max_bytes,
        resync_hours=config.resync_hours,
    )


def collect_once(config: AgentConfig, spool: Spool) -> str:
    """Collect a report and write it to the spool before anything is sent."""
    ctx = ProbeContext(cache_dir=config.cache_dir)
    report = collect(ctx, role=config.role, timeout=config.probe_timeout)
    put = spool.put(report)
    if put.evicted:
        log.warning(
            "spool full (%d reports / %d bytes max): %d oldest report(s) evicted; "
            "the collector will be told with the next delivery",
            config.spool_max_reports,
            config.spool_max_bytes,
            len(put.evicted),
        )
    update_status(
        config.state_dir,
        last_collection_at=report.collected_at.isoformat(),
        last_collection_seconds=report.collection_seconds,
        last_report_id=str(report.report_id),
        last_software_mode=put.mode,
    )
    return str(report.report_id)


def deliver(config: AgentConfig, spool: Spool, enrollment: Enrollment) -> bool:
    """Flush the spool; True when it is empty afterwards."""
    result = flush(spool, enrollment, config)
    now = datetime.now(UTC).isoformat()
    if result.delivered or result.duplicates:
        update_status(config.state_dir, last_delivery_at=now)
    update_status(
        config.state_dir,
        last_attempt_at=now,
        last_error=result.error,
        spool_depth=result.remaining,
    )
    if result.resynced:
        log.info(
            "%d report(s) re-sent with the full software inventory at the collector's request",
            result.resynced,
        )
    if result.rejected:
        log.error(
            "%d report(s) refused by the collector; see `posture-agent status`", result.rejected
        )
    if result.error:
        log.warning("delivery postponed: %s (%d report(s) queued)", result.error, result.remaining)
    if result.rotate_credential:
        rotate_when_asked(config, enrollment)
    return result.remaining == 0


def rotate_when_asked(config: AgentConfig, enrollment: Enrollment) -> bool:
    """Rotate the credential at the collector's request; a failure is retried next time.

    The collector keeps asking (``rotate_credential``) until the agent uses a
    new credential, and the old one stays valid meanwhile.
    """
    try:
        rotation = rotate_credential(config, enrollment)
    except (RotationError, TransportError, CredentialRejected) as exc:
        log.warning("credential rotation requested by the collector failed: %s", exc)
        update_status(config.state_dir, last_rotation_error=str(exc))
        return False
    if rotation.rotated:
        log.info(
            "agent credential rotated at the collector's request (new credential id %s)",
            rotation.enrollment.agent_id,
        )
        update_status(
            config.state_dir,
            last_rotation_at=datetime.now(UTC).isoformat(),
            last_rotation_error=None,
        )
    return True


def backoff_delay(failures: int, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(failures-1))].

    ``failures`` counts consecutive failed deliveries (1 for the first).  Full
    jitter spreads 300 agents that lost the collector at the same moment over
    the whole window instead of having them retry in lock-step.
    """
    exponent = min(max(failures, 1) - 1, 16)
    return rng.uniform(0, min(cap, BACKOFF_BASE * 2**exponent))


@dataclass
class ServiceLoop:
    """The scheduling of ``run``: when to collect, when to retry delivery.

    Clock, wait and randomness are injected so the schedule can be tested
    without waiting: ``wait(seconds)`` returns True when the service must stop.
    """

    interval: float
    jitter: float
    collect: Callable[[], object]
    deliver: Callable[[], bool]
    clock: Callable[[], float] = time.monotonic
    wait: Callable[[float], bool] = time.sleep  # type: ignore[assignment]
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    next_collection: float = 0.0

    def step(self) -> tuple[bool, float]:
        """One round: collect if due, deliver; returns (drained, seconds to wait)."""
        if self.clock() >= self.next_collection:
            try:
                self.collect()
            except Exception:  # keep the service alive; the next round retries
                log.exception("collection failed")
            self.next_collection = self.clock() + self.interval + self.rng.uniform(0, self.jitter)
        try:
            drained = self.deliver()
        except CredentialRejected:
            drained = False
        if drained:
            self.failures = 0
            return True, max(0.0, self.next_collection - self.clock())
        self.failures += 1
        until_collection = max(1.0, self.next_collection - self.clock())
        return False, min(backoff_delay(self.failures, self.interval, self.rng), until_collection)

    def run(self, once: bool = False) -> int:
        while True:
            drained, delay = self.step()
            if once:
                return 0 if drained else 1
            if self.wait(delay):
                return 0


def run_forever(config: AgentConfig, enrollment: Enrollment, once: bool = False) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    spool = spool_for(config)

    def deliver_now() -> bool:
        # Read the enrollment each round: a rotation (by this service or by
        # `posture-agent rotate-credential`) replaces the credential on disk.
        current = Enrollment.load(config.state_dir) or enrollment
        try:
            return deliver(config, spool, current)
        except CredentialRejected as exc:
            log.error("the collector refused this agent's credential: %s; re-enroll", exc)
            update_status(config.state_dir, last_error=f"credential refused: {exc}")
            return False

    loop = ServiceLoop(
        interval=config.interval_seconds,
        jitter=config.jitter_seconds,
        collect=lambda: collect_once(config, spool),
        deliver=deliver_now,
        wait=stop.wait,
    )
    if stop.is_set():  # pragma: no cover - signalled before the first round
        return 0
    return loop.run(once=once)
