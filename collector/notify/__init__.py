"""Notifications: new critical failures, machines gone silent, wide-scope incidents.

Detection queues durable events (``collector.notify.queue``); a sender
(``collector.notify.sender``), run in the collector process and by
``posture-collector notify --once``, delivers them to a webhook and by e-mail,
with a digest mode, retries and a lease so several workers never send twice.
Nothing is queued and no sender runs while no channel is configured.
"""

from __future__ import annotations

from collector.notify.queue import (
    NOTIFY_SEVERITIES,
    is_configured,
    queue_from_ingest,
    queue_incident,
    scan_silence,
)
from collector.notify.sender import (
    Notifier,
    RunResult,
    delivery_status,
    run_once,
    start_background,
)

__all__ = [
    "NOTIFY_SEVERITIES",
    "Notifier",
    "RunResult",
    "delivery_status",
    "is_configured",
    "queue_from_ingest",
    "queue_incident",
    "run_once",
    "scan_silence",
    "start_background",
]
