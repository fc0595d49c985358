"""Sending queued notifications: claim with a lease, send, record; safe with many workers.

One run (``run_once``):

1. scans for silent machines (``queue.scan_silence``);
2. finds the destinations with a due delivery (digest window over, or retry time
   reached) that nobody holds;
3. per destination, claims every pending, unheld delivery in ONE UPDATE that only
   matches rows whose lease is free (``claimed_until`` NULL or past) and commits:
   on PostgreSQL a concurrent UPDATE waits for that commit and then no longer
   matches; SQLite serialises writers.  So two processes never hold the same row;
4. sends one message listing the claimed events (a digest) and marks them sent,
   or, when the channel fails, keeps them pending with the error and a backoff.

A process that dies between sending and recording leaves its lease to expire
(``POSTURE_NOTIFY_LEASE_SECONDS``), after which the message is sent again: at
most one duplicate, never a loss.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, update
from sqlmodel import Session, col, select

from collector.models import NotificationDelivery, NotificationEvent, utcnow
from collector.notify.channels import Channel, DeliveryError, EmailChannel, WebhookChannel
from collector.notify.messages import render
from collector.notify.queue import EMAIL, WEBHOOK, is_configured, scan_silence
from collector.settings import Settings

log = logging.getLogger(__name__)

# After this many failed attempts a destination is reported as failing (still retried).
FAILING_AFTER = 5
RETRY_BASE = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)

Clock = Callable[[], datetime]
D = NotificationDelivery


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failures: 1, 2, 4 … 60 minutes."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


def default_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if settings.notify_webhook_url:
        channels[WEBHOOK] = WebhookChannel(settings)
    if settings.smtp_host:
        channels[EMAIL] = EmailChannel(settings)
    return channels


@dataclass
class RunResult:
    silent_queued: int = 0
    messages_sent: int = 0
    deliveries_sent: int = 0
    messages_failed: int = 0
    errors: list[str] = field(default_factory=list)


def _unheld(now: datetime) -> Any:
    return or_(col(D.claimed_until).is_(None), col(D.claimed_until) < now)


def due_destinations(engine: Engine, now: datetime) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(D.channel, D.recipient)
            .where(D.status == "pending", D.next_attempt_at <= now, _unheld(now))
            .distinct()
        ).all()
    return sorted((str(c), str(r)) for c, r in rows)


def claim(
    engine: Engine, channel: str, recipient: str, now: datetime, lease: timedelta
) -> tuple[str, list[NotificationDelivery]]:
    """Hold every pending, unheld delivery of the destination; [] when none is due."""
    token = str(uuid.uuid4())
    with Session(engine, expire_on_commit=False) as session:
        # The UPDATE comes first, so that on SQLite the transaction starts as a writer.
        session.execute(
            update(D)
            .where(
                col(D.channel) == channel,
                col(D.recipient) == recipient,
                col(D.status) == "pending",
                _unheld(now),
            )
            .values(claim_token=token, claimed_until=now + lease)
        )
        rows = list(session.exec(select(D).where(D.claim_token == token)).all())
        if not any(r.next_attempt_at <= now for r in rows):
            # Only deliveries still inside their digest window: leave them be.
            session.execute(
                update(D)
                .where(col(D.claim_token) == token)
                .values(claim_token=None, claimed_until=None)
            )
            session.commit()
            return token, []
        session.commit()
    return token, rows


def _finish(
    engine: Engine,
    token: str,
    *,
    now: datetime,
    error: str | None,
    attempts: int,
) -> None:
    values: dict[str, Any] = {
        "claim_token": None,
        "claimed_until": None,
        "attempts": D.attempts + 1,
    }
    if error is None:
        values.update(status="sent", sent_at=now, last_error=None)
    else:
        values.update(last_error=error[:2000], next_attempt_at=now + backoff(attempts))
    with Session(engine) as session:
        session.execute(update(D).where(col(D.claim_token) == token).values(**values))
        session.commit()


def delivery_key(rows: Sequence[NotificationDelivery]) -> str:
    """Stable for the same set of deliveries (a receiver may drop a repeated key)."""
    ids = ",".join(str(r.id) for r in sorted(rows, key=lambda r: r.id or 0))
    return hashlib.sha256(ids.encode()).hexdigest()[:32]


def send_destination(
    engine: Engine,
    settings: Settings,
    channels: Mapping[str, Channel],
    channel: str,
    recipient: str,
    *,
    clock: Clock,
    result: RunResult,
) -> None:
    now = clock()
    token, rows = claim(
        engine, channel, recipient, now, timedelta(seconds=settings.notify_lease_seconds)
    )
    if not rows:
        return
    attempts = max(r.attempts for r in rows) + 1
    with Session(engine) as session:
        events = list(
            session.exec(
                select(NotificationEvent).where(
                    col(NotificationEvent.id).in_({r.event_id for r in rows})
                )
            ).all()
        )
    error: str | None = None
    sender = channels.get(channel)
    if sender is None:
        error = f"channel {channel!r} is not configured (any more)"
    else:
        message = render(events, english=settings.notify_english)
        try:
            sender.send(recipient, message, events, delivery_key(rows))
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # a bug in a channel must not stop the others
            log.exception("notification channel %s crashed", channel)
            error = f"{type(exc).__name__}: {exc}"
    _finish(engine, token, now=clock(), error=error, attempts=attempts)
    if error is None:
        result.messages_sent += 1
        result.deliveries_sent += len(rows)
        log.info("notified %s %s: %d event(s)", channel, recipient, len(rows))
        return
    result.messages_failed += 1
    result.errors.append(error)
    if attempts >= FAILING_AFTER:
        log.error(
            "notifications to %s %s keep failing (%d attempts, %d pending): %s",
            channel,
            recipient,
            attempts,
            len(rows),
            error,
        )
    else:
        log.warning(
            "notification to %s %s failed (attempt %d): %s", channel, recipient, attempts, error
        )


def run_once(
    engine: Engine,
    settings: Settings,
    *,
    channels: Mapping[str, Channel] | None = None,
    clock: Clock = utcnow,
    scan: bool = True,
) -> RunResult:
    """Queue silent machines, then send what is due; returns what was done."""
    result = RunResult()
    if scan:
        result.silent_queued = scan_silence(engine, settings, now=clock())
    channels = default_channels(settings) if channels is None else channels
    for channel, recipient in due_destinations(engine, clock()):
        send_destination(engine, settings, channels, channel, recipient, clock=clock, result=result)
    return result


# --- status -----------------------------------------------------------------------


@dataclass
class DestinationStatus:
    channel: str
    recipient: str
    pending: int = 0
    sent: int = 0
    attempts: int = 0  # most failed attempts of a pending delivery
    oldest_pending: datetime | None = None
    last_sent: datetime | None = None
    last_error: str | None = None

    @property
    def failing(self) -> bool:
        return self.pending > 0 and self.attempts >= FAILING_AFTER


def delivery_status(engine: Engine) -> list[DestinationStatus]:
    """Per destination: pending and sent counts, attempts, the last error."""
    out: dict[tuple[str, str], DestinationStatus] = {}
    with Session(engine) as session:
        rows = session.exec(
            select(
                D.channel,
                D.recipient,
                D.status,
                func.count(),
                func.max(D.attempts),
                func.min(D.created_at),
                func.max(D.sent_at),
            ).group_by(D.channel, D.recipient, D.status)
        ).all()
        for channel, recipient, state, count, attempts, oldest, last_sent in rows:
            entry = out.setdefault((channel, recipient), DestinationStatus(channel, recipient))
            if state == "pending":
                entry.pending = int(count)
                entry.attempts = int(attempts or 0)
                entry.oldest_pending = _aware(oldest)
            else:
                entry.sent += int(count)
                entry.last_sent = _aware(last_sent)
        errors = session.exec(
            select(D.channel, D.recipient, D.last_error)
            .where(D.status == "pending", col(D.last_error).is_not(None))
            .order_by(col(D.id))
        ).all()
        for channel, recipient, error in errors:
            out[(channel, recipient)].last_error = error
    return [out[k] for k in sorted(out)]


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- the collector's background loop ----------------------------------------------


class Notifier:
    """Runs ``run_once`` every POSTURE_NOTIFY_INTERVAL_SECONDS in a daemon thread."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notifier", daemon=True)

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.notify_interval_seconds):
            try:
                run_once(self.engine, self.settings)
            except Exception:  # the loop must survive a database hiccup
                log.exception("notification run failed")


def start_background(engine: Engine, settings: Settings) -> Notifier | None:
    """Start the sender loop when a channel is configured; None otherwise."""
    if not is_configured(settings):
        return None
    return Notifier(engine, settings).start()
