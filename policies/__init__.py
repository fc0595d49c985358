"""The rules: checks over collected facts, mapped to regulation clauses by data files."""

from policies.engine import evaluate_fleet, evaluate_host, requirement_verdicts, summarize_agency
from policies.model import (
    ArticleVerdict,
    Finding,
    HostEvaluation,
    RequirementVerdict,
    Text,
    Verdict,
)

__all__ = [
    "ArticleVerdict",
    "Finding",
    "HostEvaluation",
    "RequirementVerdict",
    "Text",
    "Verdict",
    "evaluate_fleet",
    "evaluate_host",
    "requirement_verdicts",
    "summarize_agency",
]
