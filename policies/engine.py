"""Evaluation: facts of one host → findings → verdicts per requirement and article."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from agent.report import Report
from policies.framework import DEFAULT_FRAMEWORK, Framework, Requirement, load_framework
from policies.model import (
    ArticleVerdict,
    Finding,
    HostEvaluation,
    RequirementVerdict,
    Text,
    Verdict,
    combine,
    count_statuses,
)
from policies.parameters import Parameters, default_parameters
from policies.registry import CheckSpec, EvalContext, Outcome, load_checks
from policies.texts import PENDING_REASON, SHARED, format_message

log = logging.getLogger(__name__)

ROLES = ("server", "workstation")


def resolve_role(report: Report, configured: str | None = None) -> str:
    """Role from configuration/enrollment first, hardware hints second."""
    for candidate in (configured, report.host.role, report.hardware.role_hint):
        if candidate in ROLES:
            return candidate
    return "unknown"


def _finding(spec: CheckSpec, outcome: Outcome, messages: dict[str, Text]) -> Finding:
    text = messages.get(outcome.message)
    if text is None:
        raise KeyError(f"check {spec.id} has no message '{outcome.message}'")
    return Finding(
        check_id=spec.id,
        status=outcome.status,
        severity=spec.severity,
        title=spec.title,
        evidence=format_message(text, outcome.params),
        remediation=spec.remediation,
        data=_jsonable(outcome.params),
    )


def run_check(spec: CheckSpec, ctx: EvalContext) -> Finding:
    """Apply one check, honouring role applicability and unobserved sections."""
    if ctx.role != "unknown" and ctx.role not in spec.roles:
        outcome = Outcome("not_applicable", "role", {"role": ctx.role})
        return _finding(spec, outcome, SHARED)
    section = getattr(ctx.report, spec.section)
    if section is None:
        outcome = Outcome("unknown", "section_missing", {"section": spec.section})
        return _finding(spec, outcome, SHARED)
    if section.status == "unknown":
        outcome = Outcome(
            "unknown", "section_unknown", {"section": spec.section, "reason": section.reason}
        )
        return _finding(spec, outcome, SHARED)
    try:
        outcome = spec.predicate(ctx)
        return _finding(spec, outcome, spec.messages)
    except Exception as exc:  # a broken check must not break ingest
        log.exception("check %s failed", spec.id)
        outcome = Outcome("unknown", "check_error", {"error": f"{type(exc).__name__}: {exc}"})
        return _finding(spec, outcome, SHARED)


def evaluate_host(
    report: Report,
    level: int,
    role: str | None = None,
    params: Parameters | None = None,
    now: datetime | None = None,
    framework: str = DEFAULT_FRAMEWORK,
) -> HostEvaluation:
    """Evaluate every check the framework uses on one host's report."""
    fw = load_framework(framework)
    checks = load_checks()
    ctx = EvalContext(
        report=report,
        level=level,
        role=resolve_role(report, role),
        params=params or default_parameters(),
        now=now or report.collected_at,
    )
    findings = []
    for check_id in fw.check_ids():
        finding = run_check(checks[check_id], ctx)
        finding.requirement_ids = fw.requirements_of_check(check_id)
        findings.append(finding)
    return HostEvaluation(
        role=ctx.role,
        level=level,
        findings=findings,
        requirements=requirement_verdicts(findings, level, ctx.role, framework),
    )


def _judge(req: Requirement, level: int, findings: dict[str, Finding]) -> RequirementVerdict:
    base: dict[str, Any] = {
        "requirement_id": req.id,
        "article": req.article,
        "reference": req.reference,
        "title": req.title,
        "verification": req.verification,
        "check_ids": list(req.checks),
    }
    if not req.applies_to_level(level):
        if req.max_level == 4:
            template = SHARED["level_from"]
        elif req.min_level == req.max_level:
            template = SHARED["level_only"]
        else:
            template = SHARED["level_range"]
        reason = format_message(
            template, {"min": req.min_level, "max": req.max_level, "level": level}
        )
        return RequirementVerdict(status="not_applicable", reason=reason, **base)
    if not req.checks:
        return RequirementVerdict(
            status="unknown", reason=PENDING_REASON[req.verification], **base
        )
    statuses: list[Verdict] = []
    evidence: list[Text] = []
    for check_id in req.checks:
        finding = findings.get(check_id)
        if finding is None:
            statuses.append("unknown")
            evidence.append(format_message(SHARED["not_evaluated"], {"check": check_id}))
            continue
        statuses.append(finding.status)
        evidence.append(finding.evidence)
    status = combine(statuses)
    # "có thể" (may) describes a permitted model: it can never fail.
    if req.modality == "may" and status == "fail":
        status = "unknown"
    return RequirementVerdict(status=status, evidence=evidence, **base)


def requirement_verdicts(
    findings: list[Finding], level: int, role: str = "unknown", framework: str = DEFAULT_FRAMEWORK
) -> list[RequirementVerdict]:
    """Per-requirement verdicts of one host, from its findings."""
    fw = load_framework(framework)
    by_check = {f.check_id: f for f in findings}
    return [_judge(req, level, by_check) for req in fw.requirements]


def summarize_agency(
    evaluations: list[HostEvaluation], level: int, framework: str = DEFAULT_FRAMEWORK
) -> list[ArticleVerdict]:
    """An agency's verdict per article, combining every host's requirement verdicts."""
    fw = load_framework(framework)
    per_host = [{v.requirement_id: v for v in ev.requirements} for ev in evaluations]
    combined: list[RequirementVerdict] = []
    for req in fw.requirements:
        verdicts = [h[req.id] for h in per_host if req.id in h]
        combined.append(_combine_hosts(req, level, verdicts))
    return _by_article(fw, combined)


def _combine_hosts(
    req: Requirement, level: int, verdicts: list[RequirementVerdict]
) -> RequirementVerdict:
    if not req.applies_to_level(level) or not req.checks or not verdicts:
        verdict = _judge(req, level, {})
        if req.applies_to_level(level) and req.checks and not verdicts:
            verdict.reason = SHARED["no_hosts"]
            verdict.evidence = []
        return verdict
    statuses = [v.status for v in verdicts]
    status = combine(statuses)
    counts = count_statuses(statuses)
    summary = format_message(SHARED["host_counts"], {**counts, "hosts": len(verdicts)})
    first = verdicts[0]
    return first.model_copy(update={"status": status, "evidence": [summary], "reason": None})


def _by_article(fw: Framework, verdicts: list[RequirementVerdict]) -> list[ArticleVerdict]:
    articles = []
    for number, title in sorted(fw.articles.items()):
        reqs = [v for v in verdicts if v.article == number]
        statuses = [v.status for v in reqs]
        articles.append(
            ArticleVerdict(
                article=number,
                title=title,
                status=combine(statuses),
                counts=count_statuses(statuses),
                requirements=reqs,
            )
        )
    return articles


def host_articles(
    evaluation: HostEvaluation, framework: str = DEFAULT_FRAMEWORK
) -> list[ArticleVerdict]:
    """One host's verdicts grouped by article."""
    return _by_article(load_framework(framework), evaluation.requirements)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out
