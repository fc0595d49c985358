"""A durable outbox: reports are written here before sending, removed only on ack.

The spool is a SQLite file, so a report survives a crash, a reboot or a
collector outage.  Reports leave it in the order they were collected.  A
report the collector refuses for good (bad schema, too large) moves to the
``rejected`` table, where ``posture-agent status`` shows it: nothing
disappears silently.

Size cap
    At most ``max_reports`` reports and ``max_bytes`` bytes (bodies plus the
    kept inventories) are queued.  Past that, the *oldest* reports are
    evicted, and every eviction is counted in the ``evictions`` table: one row
    per run of evictions the collector has not been told about yet (count,
    first/last report ids and collection times).  The next report sent
    carries that row in ``Report.delivery``; the row is marked reported once
    that report is acknowledged.  The row keeps its first report id while it
    grows, so a resend after a lost acknowledgement is stored idempotently by
    the collector.  The report just written is never evicted.

Software deltas (the chain)
    The delta of the software inventory is computed when a report is
    *spooled*, against the inventory of the previously spooled report (the
    chain), because several reports may be queued before any is
    acknowledged.  A full inventory is spooled instead on first contact and
    every ``resync_hours``.  Each queued report also keeps its own full
    inventory locally (``outbox.inventory``).  That makes the chain robust
    without ever discarding facts: when a report is about to be sent, its
    delta is usable only if its base is the report whose inventory the
    collector acknowledged last; otherwise (the base was evicted or
    rejected) the body is rebuilt with the full inventory.  When the
    collector itself cannot apply a delta (it lost or never had the base, or
    the hash does not match) it answers 409 ``resync_required``; the report
    is then marked ``force_full`` and re-sent at once with its full
    inventory, and later deltas chain on from it.

Reports are immutable once spooled: the stored body (gzip JSON) keeps its
facts and ``report_id``.  What is decided at send time (``delivery``, and
delta → full when needed) is merged into a re-encoded copy (``prepare``).
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.report import (
    DeliveryInfo,
    Package,
    Report,
    diff_packages,
    inventory_hash,
    package_key,
)

DEFAULT_MAX_REPORTS = 500
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_RESYNC_HOURS = 24.0

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
CREATE TABLE IF NOT EXISTS evictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_report_id TEXT NOT NULL,
    last_report_id TEXT NOT NULL,
    first_collected_at TEXT,
    last_collected_at TEXT,
    reported_in TEXT,
    reported_at TEXT
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value BLOB
);
"""

# Columns added to ``outbox`` after the first release (spools are upgraded in place).
_OUTBOX_COLUMNS: dict[str, str] = {
    "collected_at": "TEXT",
    "size": "INTEGER NOT NULL DEFAULT 0",
    "mode": "TEXT",  # software mode as spooled: full | delta | NULL (no inventory)
    "base_report_id": "TEXT",
    "inventory": "BLOB",  # gzip JSON of the full package list of this report
    "inventory_hash": "TEXT",
    "force_full": "INTEGER NOT NULL DEFAULT 0",
}

# keys of the ``state`` table
SPOOLED_ID = "spooled_inventory_report_id"
SPOOLED_INVENTORY = "spooled_inventory"
SPOOLED_FULL_AT = "spooled_full_at"
ACKED_ID = "acked_inventory_report_id"
ACKED_INVENTORY = "acked_inventory"
ACKED_HASH = "acked_inventory_hash"
ACKED_AT = "acked_inventory_at"


@dataclass(frozen=True)
class SpooledReport:
    seq: int
    report_id: str
    body: bytes  # gzip-compressed JSON as spooled (see ``Spool.prepare`` for what is sent)
    attempts: int
    collected_at: str | None = None
    mode: str | None = None
    base_report_id: str | None = None
    force_full: bool = False


@dataclass(frozen=True)
class Eviction:
    id: int
    recorded_at: str
    count: int
    first_report_id: str
    last_report_id: str
    first_collected_at: str | None
    last_collected_at: str | None
    reported_in: str | None
    reported_at: str | None


@dataclass
class PutResult:
    stored: bool
    mode: str | None = None  # software mode spooled (None: no inventory)
    evicted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outgoing:
    """The bytes to send for one spooled report, and what they carry."""

    report_id: str
    body: bytes
    full: bool  # the software section is a full inventory (or there is none)
    rebuilt: bool  # a spooled delta was turned into a full inventory
    eviction_id: int | None = None
    eviction_count: int = 0


def _gz_json(value: Any) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode("utf-8"), compresslevel=6)


def _ungz_json(blob: bytes) -> Any:
    return json.loads(gzip.decompress(blob))


def _packages_blob(packages: list[Package]) -> bytes:
    return _gz_json([p.model_dump(mode="json") for p in packages])


def _packages(blob: bytes) -> list[Package]:
    return [Package.model_validate(p) for p in _ungz_json(blob)]


class Spool:
    def __init__(
        self,
        path: Path,
        *,
        max_reports: int = DEFAULT_MAX_REPORTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        resync_hours: float = DEFAULT_RESYNC_HOURS,
    ) -> None:
        if max_reports < 1 or max_bytes < 1:
            raise ValueError("spool limits must be positive")
        self.path = path
        self.max_reports = max_reports
        self.max_bytes = max_bytes
        self.resync = timedelta(hours=resync_hours)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._db() as db:
            db.executescript(_SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
            for column, decl in _OUTBOX_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE outbox ADD COLUMN {column} {decl}")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction
                yield db

    # --- state ----------------------------------------------------------------

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> Any:
        row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _set(db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))

    def state(self, key: str) -> Any:
        with self._db() as db:
            return self._get(db, key)

    def acked_inventory(self) -> tuple[str | None, list[Package] | None]:
        """The report id and full inventory the collector acknowledged last."""
        with self._db() as db:
            report_id = self._get(db, ACKED_ID)
            blob = self._get(db, ACKED_INVENTORY)
        return report_id, (_packages(blob) if blob is not None else None)

    # --- writing --------------------------------------------------------------

    def put(self, report: Report) -> PutResult:
        """Spool ``report`` (full software inventory as collected); evict past the cap.

        The software section is stored as a delta against the previously
        spooled inventory unless a full inventory is due (first contact, or
        ``resync_hours`` since the last full one).  A section the agent could
        not observe (``status: unknown``) is kept as is and leaves the chain
        untouched.
        """
        report_id = str(report.report_id)
        collected_at = report.collected_at
        with self._db() as db:
            if db.execute("SELECT 1 FROM outbox WHERE report_id = ?", (report_id,)).fetchone():
                return PutResult(stored=False)
            mode: str | None = None
            base: str | None = None
            full_hash: str | None = None
            inventory: bytes | None = None
            software = report.software
            if software.status == "ok" and software.mode == "full":
                packages = sorted(software.packages, key=package_key)
                full_hash = inventory_hash(packages)
                inventory = _packages_blob(packages)
                previous_id = self._get(db, SPOOLED_ID)
                previous_blob = self._get(db, SPOOLED_INVENTORY)
                last_full = self._get(db, SPOOLED_FULL_AT)
                due = (
                    previous_id is None
                    or previous_blob is None
                    or last_full is None
                    or collected_at - datetime.fromisoformat(last_full) >= self.resync
                    or collected_at < datetime.fromisoformat(last_full)  # clock went back
                )
                if due:
                    mode = "full"
                    section = software.model_copy(
                        update={"packages": packages, "mode": "full", "added": [],
                                "removed": [], "base_report_id": None,
                                "inventory_hash": full_hash}
                    )
                    self._set(db, SPOOLED_FULL_AT, collected_at.isoformat())
                else:
                    mode = "delta"
                    base = previous_id
                    added, removed = diff_packages(_packages(previous_blob), packages)
                    section = software.model_copy(
                        update={"packages": [], "mode": "delta", "added": added,
                                "removed": removed, "base_report_id": uuid.UUID(previous_id),
                                "inventory_hash": full_hash}
                    )
                report = report.model_copy(update={"software": section})
                self._set(db, SPOOLED_ID, report_id)
                self._set(db, SPOOLED_INVENTORY, inventory)
            body = gzip.compress(report.model_dump_json().encode("utf-8"), compresslevel=6)
            size = len(body) + (len(inventory) if inventory else 0)
            db.execute(
                "INSERT INTO outbox (report_id, created_at, body, collected_at, size, mode,"
                " base_report_id, inventory, inventory_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (report_id, datetime.now(UTC).isoformat(), body, collected_at.isoformat(),
                 size, mode, base, inventory, full_hash),
            )
            evicted = self._enforce_cap(db, keep=report_id)
        return PutResult(stored=True, mode=mode, evicted=evicted)

    def _enforce_cap(self, db: sqlite3.Connection, keep: str) -> list[str]:
        """Evict the oldest reports while over a limit; record each eviction."""
        evicted: list[str] = []
        while True:
            count, total = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
            ).fetchone()
            if count <= self.max_reports and total <= self.max_bytes:
                return evicted
            oldest = db.execute(
                "SELECT seq, report_id, collected_at FROM outbox WHERE report_id != ?"
                " ORDER BY seq LIMIT 1",
                (keep,),
            ).fetchone()
            if oldest is None:  # only the new report is left, however large it is
                return evicted
            seq, report_id, collected_at = oldest
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            self._record_eviction(db, report_id, collected_at)
            evicted.append(report_id)

    @staticmethod
    def _record_eviction(db: sqlite3.Connection, report_id: str, collected_at: str | None) -> None:
        now = datetime.now(UTC).isoformat()
        pending = db.execute(
            "SELECT id FROM evictions WHERE reported_at IS NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if pending is None:
            db.execute(
                "INSERT INTO evictions (recorded_at, count, first_report_id, last_report_id,"
                " first_collected_at, last_collected_at) VALUES (?, 1, ?, ?, ?, ?)",
                (now, report_id, report_id, collected_at, collected_at),
            )
        else:
            db.execute(
                "UPDATE evictions SET count = count + 1, last_report_id = ?,"
                " last_collected_at = COALESCE(?, last_collected_at), recorded_at = ?"
                " WHERE id = ?",
                (report_id, collected_at, now, pending[0]),
            )

    # --- sending --------------------------------------------------------------

    def pending(self, limit: int = 100) -> list[SpooledReport]:
        with self._db() as db:
            rows = db.execute(
                "SELECT seq, report_id, body, attempts, collected_at, mode, base_report_id,"
                " force_full FROM outbox ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpooledReport(*row[:7], force_full=bool(row[7])) for row in rows]

    def next_pending(self) -> SpooledReport | None:
        batch = self.pending(limit=1)
        return batch[0] if batch else None

    def pending_eviction(self) -> Eviction | None:
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM evictions WHERE reported_at IS NULL ORDER BY id LIMIT 1"
            ).fetchone()
        return Eviction(*row) if row else None

    def prepare(self, item: SpooledReport) -> Outgoing:
        """The body to send for ``item``: delivery info merged, a stale delta made full."""
        with self._db() as db:
            row = db.execute(
                "SELECT inventory, inventory_hash FROM outbox WHERE report_id = ?",
                (item.report_id,),
            ).fetchone()
            inventory, full_hash = row if row else (None, None)
            acked_id = self._get(db, ACKED_ID)
            depth = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        eviction = self.pending_eviction()
        document = _ungz_json(item.body)
        rebuilt = False
        if item.mode == "delta" and inventory is not None and (
            item.force_full or item.base_report_id != acked_id
        ):
            software = document["software"]
            software.update(
                mode="full", packages=_ungz_json(inventory), added=[], removed=[],
                base_report_id=None, inventory_hash=full_hash,
            )
            rebuilt = True
        values: dict[str, Any] = {"spool_depth": depth, "attempts": item.attempts}
        if eviction is not None:
            values.update(
                evicted_count=eviction.count,
                evicted_since=eviction.first_collected_at,
                evicted_until=eviction.last_collected_at,
                evicted_first_report_id=eviction.first_report_id,
                evicted_last_report_id=eviction.last_report_id,
            )
        document["delivery"] = DeliveryInfo.model_validate(values).model_dump(mode="json")
        return Outgoing(
            report_id=item.report_id,
            body=_gz_json(document),
            full=item.mode != "delta" or rebuilt,
            rebuilt=rebuilt,
            eviction_id=eviction.id if eviction else None,
            eviction_count=eviction.count if eviction else 0,
        )

    def ack(self, report_id: str, sent: Outgoing | None = None) -> None:
        """The collector stored ``report_id``: drop it, advance the acknowledged inventory."""
        now = datetime.now(UTC).isoformat()
        with self._db() as db:
            row = db.execute(
                "SELECT inventory, inventory_hash FROM outbox WHERE report_id = ?", (report_id,)
            ).fetchone()
            if row is not None and row[0] is not None:
                self._set(db, ACKED_ID, report_id)
                self._set(db, ACKED_INVENTORY, row[0])
                self._set(db, ACKED_HASH, row[1])
                self._set(db, ACKED_AT, now)
            db.execute("DELETE FROM outbox WHERE report_id = ?", (report_id,))
            if sent is not None and sent.eviction_id is not None:
                # Only what was actually sent counts as reported; a row that grew
                # meanwhile stays pending and is sent again (same first id).
                db.execute(
                    "UPDATE evictions SET reported_in = ?, reported_at = ?"
                    " WHERE id = ? AND count = ? AND reported_at IS NULL",
                    (report_id, now, sent.eviction_id, sent.eviction_count),
                )

    def require_full(self, report_id: str) -> None:
        """The collector cannot apply this report's delta: send its full inventory."""
        with self._db() as db:
            db.execute("UPDATE outbox SET force_full = 1 WHERE report_id = ?", (report_id,))

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

    # --- status ---------------------------------------------------------------

    def depth(self) -> int:
        with self._db() as db:
            return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def size_bytes(self) -> int:
        with self._db() as db:
            return db.execute("SELECT COALESCE(SUM(size), 0) FROM outbox").fetchone()[0]

    def evictions(self) -> list[Eviction]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM evictions ORDER BY id").fetchall()
        return [Eviction(*row) for row in rows]

    def rejected(self) -> list[tuple[str, str, int | None, str]]:
        with self._db() as db:
            return db.execute("SELECT * FROM rejected ORDER BY rejected_at").fetchall()
