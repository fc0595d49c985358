"""What people add to the facts: attestations (a person confirms a requirement)
and waivers (an accepted exception to a check, with an expiry).

Both come from the collector's database; the engine only needs these plain
models, so the rules stay testable without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from policies.model import AttestationNote, Finding, Text, WaiverNote, verdict_label
from policies.texts import format_message

_WAIVED = Text(
    vi="Được miễn trừ bởi {author} đến {expires_at}: {justification} (kết quả gốc: {original})",
    en="Waived by {author} until {expires_at}: {justification} (original result: {original})",
)


class Waiver(BaseModel):
    """An exception for one check, on one host or (host_id None) the whole agency."""

    id: int | None = None
    check_id: str
    host_id: int | None = None
    justification: str = Field(min_length=1)
    author: str = Field(min_length=1)
    created_at: datetime
    expires_at: datetime

    def active(self, now: datetime) -> bool:
        return self.created_at <= now < self.expires_at

    def covers(self, check_id: str, host_id: int | None) -> bool:
        return self.check_id == check_id and (self.host_id is None or self.host_id == host_id)


class Attestation(BaseModel):
    """A person's statement that a requirement is met (or not), valid until it expires."""

    id: int | None = None
    requirement_id: str
    status: Literal["pass", "fail"] = "pass"
    statement: str = Field(min_length=1)
    attested_by: str = Field(min_length=1)
    attested_at: datetime
    expires_at: datetime
    evidence_files: list[str] = Field(default_factory=list)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def note(self, now: datetime) -> AttestationNote:
        return AttestationNote(
            attestation_id=self.id,
            attested_by=self.attested_by,
            attested_at=self.attested_at,
            expires_at=self.expires_at,
            statement=self.statement,
            evidence_files=self.evidence_files,
            expired=self.expired(now),
        )


def apply_waivers(
    findings: Iterable[Finding], waivers: Iterable[Waiver], now: datetime, host_id: int | None
) -> list[Finding]:
    """Turn failed or undetermined findings covered by an active waiver into ``waived``.

    A passing finding stays a pass; an expired waiver changes nothing.
    """
    active = [w for w in waivers if w.active(now)]
    out: list[Finding] = []
    for finding in findings:
        waiver = None
        if finding.status in ("fail", "unknown"):
            waiver = next((w for w in active if w.covers(finding.check_id, host_id)), None)
        if waiver is None:
            out.append(finding)
            continue
        note = WaiverNote(
            waiver_id=waiver.id,
            original_status=finding.status,
            author=waiver.author,
            justification=waiver.justification,
            expires_at=waiver.expires_at,
        )
        text = format_message(
            _WAIVED,
            {
                "author": waiver.author,
                "expires_at": waiver.expires_at,
                "justification": waiver.justification,
                "original": verdict_label(finding.status),
            },
        )
        out.append(
            finding.model_copy(
                update={
                    "status": "waived",
                    "waiver": note,
                    "evidence": Text(
                        vi=f"{finding.evidence.vi}. {text.vi}",
                        en=f"{finding.evidence.en}. {text.en}",
                    ),
                }
            )
        )
    return out


def latest_attestations(attestations: Iterable[Attestation]) -> Mapping[str, Attestation]:
    """The most recent attestation of each requirement (expired ones included)."""
    latest: dict[str, Attestation] = {}
    for a in sorted(attestations, key=lambda a: a.attested_at):
        latest[a.requirement_id] = a
    return latest
