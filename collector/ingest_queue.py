"""Group commit for the report API: the reports one collector process receives
together are stored in one transaction.

Each request decodes and validates its report, then awaits
:meth:`IngestQueue.submit` with the agent's credential.  One drain task per event loop takes what is
pending (at most ``POSTURE_INGEST_BATCH_MAX`` reports), stores it with
``ingest_store.store_batch`` in a worker thread, answers every request with
its own outcome and goes on while more is pending.  The credentials are
authenticated with the batch, in one query of its transaction: a request
takes no database connection of its own.  At low load a batch holds
one report and nothing waits; under load, batches grow while the previous one
is being stored, so the cost of each statement and commit is shared by many
reports.  A request is answered only after its report's transaction has
committed: an agent never drops a report the collector has not stored.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent.report import Report
from collector.ingest_outcome import IngestError, IngestResult, Outcome
from collector.ingest_store import Submission, store_batch
from collector.settings import Settings


@dataclass
class _Lane:
    """The pending reports of one event loop and the task storing them."""

    pending: list[tuple[Submission, asyncio.Future[Outcome]]] = field(default_factory=list)
    drainer: asyncio.Task[None] | None = None


class IngestQueue:
    """One per collector process (``app.state.ingest_queue``)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, token: str, report: Report) -> IngestResult:
        """Store ``report`` of the agent with credential ``token`` with whatever else
        is pending; raises ``IngestError`` (401 when the credential is refused)."""
        loop = asyncio.get_running_loop()
        lane = self._lanes.setdefault(loop, _Lane())
        future: asyncio.Future[Outcome] = loop.create_future()
        lane.pending.append((Submission(None, report, token=token), future))
        if lane.drainer is None or lane.drainer.done():
            lane.drainer = loop.create_task(self._drain(lane))
        outcome = await future
        if isinstance(outcome, IngestError):
            raise outcome
        return outcome

    async def _drain(self, lane: _Lane) -> None:
        while lane.pending:
            batch = lane.pending[: self.settings.ingest_batch_max]
            del lane.pending[: len(batch)]
            try:
                outcomes = await anyio.to_thread.run_sync(
                    self._store, [submission for submission, _ in batch]
                )
            except Exception as exc:  # e.g. the database is down: each request fails
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():  # the client may have gone away
                    future.set_result(outcome)

    def _store(self, items: list[Submission]) -> list[Outcome]:
        with Session(self.engine) as session:
            return store_batch(session, items, settings=self.settings)
