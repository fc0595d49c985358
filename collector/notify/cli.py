"""``posture-collector notify --once | --status``: send due notifications, show their state.

``--once`` is meant for a cron job or systemd timer when the collector's own
loop is not wanted (several runs at once are safe: deliveries are leased).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from collector.db import create_db_engine, init_db
from collector.notify.queue import is_configured
from collector.notify.sender import delivery_status, run_once
from collector.settings import Settings


def cmd_notify(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_db_engine(settings)
    try:
        init_db(engine)
        if args.status:
            return _status(engine, as_json=args.json)
        if not is_configured(settings):
            print(
                "notifications are not configured: set POSTURE_NOTIFY_WEBHOOK_URL or "
                "POSTURE_SMTP_HOST with POSTURE_NOTIFY_EMAIL_TO",
                file=sys.stderr,
            )
            return 1
        result = run_once(engine, settings)
        print(
            f"silent machines queued: {result.silent_queued}; messages sent: "
            f"{result.messages_sent} ({result.deliveries_sent} deliveries); "
            f"failed: {result.messages_failed}"
        )
        for error in result.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1 if result.messages_failed else 0
    finally:
        engine.dispose()


def _status(engine: Any, *, as_json: bool) -> int:
    rows = delivery_status(engine)
    failing = False
    for row in rows:
        failing |= row.failing
        if as_json:
            print(
                json.dumps(
                    {
                        "channel": row.channel,
                        "recipient": row.recipient,
                        "pending": row.pending,
                        "sent": row.sent,
                        "attempts": row.attempts,
                        "failing": row.failing,
                        "oldest_pending": row.oldest_pending.isoformat()
                        if row.oldest_pending
                        else None,
                        "last_sent": row.last_sent.isoformat() if row.last_sent else None,
                        "last_error": row.last_error,
                    },
                    ensure_ascii=False,
                )
            )
            continue
        state = "FAILING" if row.failing else ("pending" if row.pending else "ok")
        print(
            f"{row.channel}\t{row.recipient}\t{state}\tpending={row.pending}\tsent={row.sent}"
            f"\tattempts={row.attempts}\tlast_error={row.last_error or '-'}"
        )
    if not rows and not as_json:
        print("no notifications queued yet")
    return 2 if failing else 0


def register(sub: Any) -> None:
    """Add the ``notify`` subcommand to the main parser."""
    p = sub.add_parser(
        "notify", help="send due notifications (webhook, e-mail) or show their state"
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one run: scan, send what is due, exit")
    mode.add_argument(
        "--status", action="store_true", help="per destination: pending, sent, errors"
    )
    p.add_argument("--json", action="store_true", help="--status as one JSON object per line")
    p.set_defaults(func=cmd_notify)
