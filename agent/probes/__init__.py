"""One module per fact family; each exposes ``probe(ctx) -> <Section>``."""

from __future__ import annotations

from typing import TypeVar

from agent.report import Section

S = TypeVar("S", bound=Section)


def unknown(section: type[S], reason: str, **fields: object) -> S:
    """A section the agent could not observe, with the reason why."""
    return section(status="unknown", reason=reason, **fields)
