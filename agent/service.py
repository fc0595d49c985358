"""The agent's main loop: collect, spool, deliver; back off while the collector is away."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from datetime import UTC, datetime

from agent.client import CredentialRejected, flush
from agent.collect import collect
from agent.config import AgentConfig, Enrollment, update_status
from agent.probes.base import ProbeContext
from agent.spool import Spool

log = logging.getLogger(__name__)

BACKOFF_BASE = 15.0


def spool_for(config: AgentConfig) -> Spool:
    return Spool(config.state_dir / "spool.sqlite")


def collect_once(config: AgentConfig, spool: Spool) -> str:
    """Collect a report and write it to the spool before anything is sent."""
    report = collect(ProbeContext(), role=config.role, timeout=config.probe_timeout)
    spool.put(report)
    update_status(
        config.state_dir,
        last_collection_at=report.collected_at.isoformat(),
        last_collection_seconds=report.collection_seconds,
        last_report_id=str(report.report_id),
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
    if result.rejected:
        log.error("%d report(s) refused by the collector; see `posture-agent status`",
                  result.rejected)
    if result.error:
        log.warning("delivery postponed: %s (%d report(s) queued)", result.error, result.remaining)
    return result.remaining == 0


def backoff_delay(failures: int, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter, capped at the collection interval."""
    return rng.uniform(0, min(cap, BACKOFF_BASE * 2 ** min(failures, 16)))


def run_forever(config: AgentConfig, enrollment: Enrollment, once: bool = False) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    spool = spool_for(config)
    rng = random.Random()
    failures = 0
    next_collection = 0.0

    while not stop.is_set():
        if time.monotonic() >= next_collection:
            try:
                collect_once(config, spool)
            except Exception:  # keep the service alive; the next round retries
                log.exception("collection failed")
            next_collection = time.monotonic() + config.interval_seconds + rng.uniform(
                0, config.jitter_seconds
            )
        try:
            drained = deliver(config, spool, enrollment)
        except CredentialRejected as exc:
            log.error("the collector refused this agent's credential: %s; re-enroll", exc)
            update_status(config.state_dir, last_error=f"credential refused: {exc}")
            drained = False
        if once:
            return 0 if drained else 1
        if drained:
            failures = 0
            wait = max(0.0, next_collection - time.monotonic())
        else:
            failures += 1
            until_collection = max(1.0, next_collection - time.monotonic())
            wait = min(backoff_delay(failures, config.interval_seconds, rng), until_collection)
        stop.wait(wait)
    return 0
