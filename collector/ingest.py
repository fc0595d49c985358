"""The report ingest pipeline.

raw bytes → decompress (gzip, capped) → JSON → schema_version → ``Report``
→ store (``collector/ingest_store.py``): idempotency by ``report_id`` → host
identity check → software inventory (apply the full list or delta; 409
``resync_required`` when a delta does not apply) → evaluation of the
reconstructed report → the body as received, findings, software history,
reports the agent lost.

Everything that touches the database happens in one transaction: a failure at
any step leaves nothing behind.  Errors are raised as ``IngestError`` with the
HTTP status and message the API answers with.  The API stores the reports that
arrive together in one transaction (``collector/ingest_queue.py``).
"""

from __future__ import annotations

import json
import zlib

import orjson
from pydantic import ValidationError
from sqlmodel import Session

from agent.report import SUPPORTED_MAJOR, Report, schema_major
from collector.credentials import AgentContext
from collector.ingest_outcome import (
    RESYNC_REQUIRED,
    IngestError,
    IngestResult,
    Outcome,
    too_large,
)
from collector.ingest_store import Submission, evaluate_report, store_batch, stored_body
from collector.settings import Settings

__all__ = [
    "RESYNC_REQUIRED",
    "IngestError",
    "IngestResult",
    "Outcome",
    "decode_body",
    "decompress_gzip",
    "evaluate_report",
    "ingest",
    "parse_report",
    "read_report",
    "store_report",
    "stored_body",
]

_GZIP_WBITS = 16 + zlib.MAX_WBITS


# --- decoding ---------------------------------------------------------------


def decompress_gzip(data: bytes, max_bytes: int) -> bytes:
    """Inflate a gzip body, never producing more than ``max_bytes`` (gzip bombs → 413)."""
    out: list[bytes] = []
    total = 0
    remaining_input = data
    try:
        while True:  # one iteration per gzip member (concatenated members are valid gzip)
            inflater = zlib.decompressobj(_GZIP_WBITS)
            pending = remaining_input
            while True:
                chunk = inflater.decompress(pending, max_bytes + 1 - total)
                total += len(chunk)
                if total > max_bytes:
                    raise too_large(max_bytes)
                out.append(chunk)
                if inflater.eof:
                    break
                pending = inflater.unconsumed_tail
                if not pending and not chunk:
                    raise IngestError(400, "invalid gzip body: truncated stream")
            remaining_input = inflater.unused_data
            if not remaining_input.strip(b"\0"):
                break
    except zlib.error as exc:
        raise IngestError(400, f"invalid gzip body: {exc}") from exc
    return b"".join(out)


def decode_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return decompress_gzip(raw, max_bytes)
    raise IngestError(
        415, f"unsupported Content-Encoding {content_encoding!r}; send gzip or identity"
    )


def parse_report(data: bytes) -> Report:
    """JSON → schema version check → ``Report``."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        # What orjson refuses but JSON readers accept (NaN, integers beyond 64 bits)
        # is left to the standard library, which also words the error for the agent.
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IngestError(400, f"malformed JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise IngestError(422, "a report must be a JSON object")

    accepted = f"this collector accepts {SUPPORTED_MAJOR}.x"
    version = document.get("schema_version")
    if version is None:
        raise IngestError(422, f"missing schema_version; {accepted}")
    if not isinstance(version, str) or schema_major(version) != SUPPORTED_MAJOR:
        raise IngestError(422, f"unsupported schema_version {version!r}; {accepted}")

    try:
        return Report.model_validate(document)
    except ValidationError as exc:
        errors = json.loads(exc.json(include_url=False, include_input=False))
        raise IngestError(422, errors) from exc


def read_report(raw: bytes, content_encoding: str | None, max_bytes: int) -> Report:
    """A request body (possibly gzip) → ``Report``; ``IngestError`` when it is not one."""
    return parse_report(decode_body(raw, content_encoding, max_bytes))


# --- storing ----------------------------------------------------------------


def store_report(
    session: Session, agent: AgentContext, report: Report, *, settings: Settings | None = None
) -> IngestResult:
    """Evaluate and store ``report`` for the authenticated agent; one transaction.

    The checks use the agency's thresholds (defaults ← province file of
    ``settings`` ← agency overrides); without ``settings`` they come from the
    environment.
    """
    outcome = store_batch(session, [Submission(agent, report)], settings=settings)[0]
    if isinstance(outcome, IngestError):
        raise outcome
    return outcome


def ingest(
    session: Session,
    agent: AgentContext,
    raw: bytes,
    *,
    content_encoding: str | None,
    max_bytes: int,
    settings: Settings | None = None,
) -> IngestResult:
    """The whole pipeline, from the request body to the stored evaluation."""
    return store_report(
        session, agent, read_report(raw, content_encoding, max_bytes), settings=settings
    )
