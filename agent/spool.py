"""A durable outbox: reports are written here before sending, removed only on ack.

The spool is a SQLite file, so a report survives a crash, a reboot or a
collector outage.  Reports leave it in the order they were collected.  A
report the collector refuses for good (bad schema, too large) moves to the
``rejected`` table, where ``posture-agent status`` shows it: nothing
disappears silently.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.report import Report

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS rejected (
    report_id TEXT PRIMARY KEY,
    rejected_at TEXT NOT NULL,
    status_code INTEGER,
    error TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class SpooledReport:
    seq: int
    report_id: str
    body: bytes  # gzip-compressed JSON, sent as is
    attempts: int


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction
                yield db

    def put(self, report: Report) -> None:
        body = gzip.compress(report.model_dump_json().encode("utf-8"), compresslevel=6)
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO outbox (report_id, created_at, body) VALUES (?, ?, ?)",
                (str(report.report_id), datetime.now(UTC).isoformat(), body),
            )

    def pending(self, limit: int = 100) -> list[SpooledReport]:
        with self._db() as db:
            rows = db.execute(
                "SELECT seq, report_id, body, attempts FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [SpooledReport(*row) for row in rows]

    def ack(self, report_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM outbox WHERE report_id = ?", (report_id,))

    def failed_attempt(self, report_id: str, error: str) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE report_id = ?",
                (error[:500], report_id),
            )

    def reject(self, report_id: str, status_code: int | None, error: str) -> None:
        """The collector refused this report for good: keep a record, stop resending."""
        with self._db() as db:
            db.execute("DELETE FROM outbox WHERE report_id = ?", (report_id,))
            db.execute(
                "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?)",
                (report_id, datetime.now(UTC).isoformat(), status_code, error[:2000]),
            )

    def depth(self) -> int:
        with self._db() as db:
            return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def rejected(self) -> list[tuple[str, str, int | None, str]]:
        with self._db() as db:
            return db.execute("SELECT * FROM rejected ORDER BY rejected_at").fetchall()
