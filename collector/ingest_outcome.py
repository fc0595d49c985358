"""What storing a report can answer: accepted or duplicate, or an ``IngestError``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from collector.credentials import AgentContext

RESYNC_REQUIRED = "resync_required"


class IngestError(Exception):
    """``code`` is a machine-readable reason the agent acts on (e.g. ``resync_required``)."""

    def __init__(self, status_code: int, detail: Any, code: str | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.code = code


def too_large(limit: int) -> IngestError:
    return IngestError(413, f"request body exceeds the limit of {limit} bytes")


@dataclass
class IngestResult:
    status: Literal["accepted", "duplicate"]
    report_id: uuid.UUID
    host_id: int
    summary: dict[str, int] = field(default_factory=dict)
    # The agent's credential as read when the report was stored (for the rotation hint).
    agent: AgentContext | None = None


Outcome = IngestResult | IngestError
