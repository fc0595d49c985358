"""Result types of evaluation: findings per check, verdicts per requirement and article."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["pass", "fail", "unknown", "not_applicable", "waived"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "unknown", "not_applicable", "waived")
Severity = Literal["critical", "high", "medium", "low"]
Verification = Literal["host", "fleet", "network", "attestation"]

# Vietnamese labels of verdicts (REGULATION.md §5).
VERDICT_LABELS: dict[str, dict[Verdict, str]] = {
    "vi": {
        "pass": "Đạt",
        "fail": "Không đạt",
        "unknown": "Chưa xác định",
        "not_applicable": "Không áp dụng",
        "waived": "Được miễn trừ",
    },
    "en": {
        "pass": "Pass",
        "fail": "Fail",
        "unknown": "Unknown",
        "not_applicable": "Not applicable",
        "waived": "Waived",
    },
}


class Text(BaseModel):
    """A user-facing text in Vietnamese (default) and English (immutable: a rendered
    text is shared by the findings that read the same, policies/texts.py)."""

    model_config = ConfigDict(frozen=True)

    vi: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi


class Finding(BaseModel):
    """The result of one check on one host."""

    check_id: str
    status: Verdict
    severity: Severity
    title: Text
    evidence: Text
    remediation: Text
    requirement_ids: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict, description="Machine-readable evidence.")
    waiver: WaiverNote | None = Field(
        default=None, description="Set when an active waiver turned this result into 'waived'."
    )


class WaiverNote(BaseModel):
    """Why a finding shows as waived: never a pass, always with who, why and until when."""

    waiver_id: int | None = None
    original_status: Verdict
    author: str
    justification: str
    expires_at: datetime


class AttestationNote(BaseModel):
    """A person's confirmation of a requirement only a person can check."""

    attestation_id: int | None = None
    attested_by: str
    attested_at: datetime
    expires_at: datetime
    statement: str
    evidence_files: list[str] = Field(default_factory=list)
    expired: bool = False


class RequirementVerdict(BaseModel):
    """A requirement of the framework judged for one host or one agency."""

    requirement_id: str
    article: int
    reference: Text
    title: Text
    verification: Verification
    status: Verdict
    reason: Text | None = None
    check_ids: list[str] = Field(default_factory=list)
    evidence: list[Text] = Field(default_factory=list)
    attestation: AttestationNote | None = None


class ArticleVerdict(BaseModel):
    article: int
    title: Text
    status: Verdict
    counts: dict[str, int]
    requirements: list[RequirementVerdict]


class HostEvaluation(BaseModel):
    role: Literal["server", "workstation", "unknown"]
    level: int
    findings: list[Finding]
    requirements: list[RequirementVerdict]


# Combining several results: one failure fails, then unknown, then pass.
# A waiver is never a pass: it ranks between unknown and pass.
_RANK: dict[Verdict, int] = {"fail": 4, "unknown": 3, "waived": 2, "pass": 1, "not_applicable": 0}


def combine(statuses: list[Verdict]) -> Verdict:
    """Worst-of combination; an empty list is not applicable."""
    if not statuses:
        return "not_applicable"
    return max(statuses, key=_RANK.__getitem__)


def count_statuses(statuses: list[Verdict]) -> dict[str, int]:
    return {s: statuses.count(s) for s in VERDICTS}


def verdict_label(status: Verdict) -> Text:
    return Text(vi=VERDICT_LABELS["vi"][status], en=VERDICT_LABELS["en"][status])
