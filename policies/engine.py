"""Evaluation: facts of one host → findings → verdicts per requirement and article."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from agent.report import Report
from policies.exceptions import Attestation
from policies.fleet import FleetContext
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
from policies.registry import CheckSpec, EvalContext, Outcome, load_checks, load_fleet_rules
from policies.texts import PENDING_REASON, SHARED, format_message

log = logging.getLogger(__name__)

ROLES = ("server", "workstation")


def resolve_role(report: Report, configured: str | None = None) -> str:
    """Role from configuration/enrollment first, hardware hints second."""
    for candidate in (configured, report.host.role, report.hardware.role_hint):
        if candidate in ROLES:
            return candidate
    return "unknown"


def _finding(
    spec: CheckSpec, outcome: Outcome, messages: dict[str, Text], requirement_ids: list[str]
) -> Finding:
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
        requirement_ids=requirement_ids,
        data=_jsonable(outcome.params),
    )


def run_check(spec: CheckSpec, ctx: EvalContext, requirement_ids: Sequence[str] = ()) -> Finding:
    """Apply one check, honouring role applicability and unobserved sections; the
    finding names ``requirement_ids`` (the framework's requirements it proves)."""
    ids = list(requirement_ids)
    if ctx.role != "unknown" and ctx.role not in spec.roles:
        outcome = Outcome("not_applicable", "role", {"role": ctx.role})
        return _finding(spec, outcome, SHARED, ids)
    section = getattr(ctx.report, spec.section)
    if section is None:
        outcome = Outcome("unknown", "section_missing", {"section": spec.section})
        return _finding(spec, outcome, SHARED, ids)
    if section.status == "unknown":
        outcome = Outcome(
            "unknown", "section_unknown", {"section": spec.section, "reason": section.reason}
        )
        return _finding(spec, outcome, SHARED, ids)
    try:
        outcome = spec.predicate(ctx)
        return _finding(spec, outcome, spec.messages, ids)
    except Exception as exc:  # a broken check must not break ingest
        log.exception("check %s failed", spec.id)
        outcome = Outcome("unknown", "check_error", {"error": f"{type(exc).__name__}: {exc}"})
        return _finding(spec, outcome, SHARED, ids)


def evaluate_host(
    report: Report,
    level: int,
    role: str | None = None,
    params: Parameters | None = None,
    now: datetime | None = None,
    framework: str = DEFAULT_FRAMEWORK,
    *,
    requirements: bool = True,
) -> HostEvaluation:
    """Evaluate every check the framework uses on one host's report.

    ``requirements=False`` leaves the per-requirement verdicts out (empty): ingest
    stores only the findings, and verdicts are judged when they are read, with the
    waivers and attestations in force then."""
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
    requirement_ids = _requirements_by_check(framework)
    for check_id in fw.check_ids():
        findings.append(run_check(checks[check_id], ctx, requirement_ids[check_id]))
    return HostEvaluation(
        role=ctx.role,
        level=level,
        findings=findings,
        requirements=(
            requirement_verdicts(findings, level, ctx.role, framework, now=ctx.now)
            if requirements
            else []
        ),
    )


def preload(framework: str = DEFAULT_FRAMEWORK) -> None:
    """Read the checks, fleet rules, framework and default parameters now (they are
    cached): a collector does it at startup, so its first reports do not wait for
    the YAML files, and the garbage collector's freeze keeps them out of its scans."""
    load_checks()
    load_fleet_rules()
    _requirements_by_check(framework)
    default_parameters()


@cache
def _requirements_by_check(framework: str) -> dict[str, tuple[str, ...]]:
    fw = load_framework(framework)
    return {check_id: tuple(fw.requirements_of_check(check_id)) for check_id in fw.check_ids()}


def _base(req: Requirement) -> dict[str, Any]:
    return {
        "requirement_id": req.id,
        "article": req.article,
        "reference": req.reference,
        "title": req.title,
        "verification": req.verification,
        "check_ids": [*req.checks, *req.fleet_rules],
    }


def _level_reason(req: Requirement, level: int) -> Text:
    if req.max_level == 4:
        template = SHARED["level_from"]
    elif req.min_level == req.max_level:
        template = SHARED["level_only"]
    else:
        template = SHARED["level_range"]
    return format_message(template, {"min": req.min_level, "max": req.max_level, "level": level})


def _attestation_verdict(
    req: Requirement, attestation: Attestation | None, now: datetime
) -> RequirementVerdict:
    """A requirement only a person can confirm: the latest attestation decides."""
    if attestation is None:
        return RequirementVerdict(
            status="unknown", reason=PENDING_REASON["attestation"], **_base(req)
        )
    note = attestation.note(now)
    params = {
        "by": attestation.attested_by,
        "at": attestation.attested_at,
        "until": attestation.expires_at,
        "statement": attestation.statement,
    }
    if note.expired:
        return RequirementVerdict(
            status="unknown",
            reason=format_message(SHARED["attestation_expired"], params),
            attestation=note,
            **_base(req),
        )
    return RequirementVerdict(
        status=attestation.status,
        evidence=[format_message(SHARED["attested"], params)],
        attestation=note,
        **_base(req),
    )


def _from_findings(
    check_ids: list[str], findings: Mapping[str, Finding]
) -> tuple[list[Verdict], list[Text]]:
    statuses: list[Verdict] = []
    evidence: list[Text] = []
    for check_id in check_ids:
        finding = findings.get(check_id)
        if finding is None:
            statuses.append("unknown")
            evidence.append(format_message(SHARED["not_evaluated"], {"check": check_id}))
        else:
            statuses.append(finding.status)
            evidence.append(finding.evidence)
    return statuses, evidence


def _final(req: Requirement, statuses: list[Verdict]) -> Verdict:
    status = combine(statuses)
    # "có thể" (may) describes a permitted model: it can never fail.
    return "unknown" if req.modality == "may" and status == "fail" else status


def _judge(
    req: Requirement,
    level: int,
    findings: Mapping[str, Finding],
    attestations: Mapping[str, Attestation],
    now: datetime,
) -> RequirementVerdict:
    """One requirement for one host."""
    if not req.applies_to_level(level):
        return RequirementVerdict(
            status="not_applicable", reason=_level_reason(req, level), **_base(req)
        )
    if req.verification == "attestation":
        return _attestation_verdict(req, attestations.get(req.id), now)
    if req.checks:
        statuses, evidence = _from_findings(req.checks, findings)
        return RequirementVerdict(status=_final(req, statuses), evidence=evidence, **_base(req))
    reason = SHARED["agency_level"] if req.fleet_rules else PENDING_REASON[req.verification]
    return RequirementVerdict(status="unknown", reason=reason, **_base(req))


def requirement_verdicts(
    findings: list[Finding],
    level: int,
    role: str = "unknown",
    framework: str = DEFAULT_FRAMEWORK,
    attestations: Mapping[str, Attestation] | None = None,
    now: datetime | None = None,
) -> list[RequirementVerdict]:
    """Per-requirement verdicts of one host, from its findings (waivers already applied)."""
    fw = load_framework(framework)
    by_check = {f.check_id: f for f in findings}
    now = now or datetime.now(UTC)
    return [_judge(req, level, by_check, attestations or {}, now) for req in fw.requirements]


def evaluate_fleet(ctx: FleetContext, framework: str = DEFAULT_FRAMEWORK) -> list[Finding]:
    """Run every agency-wide rule the framework uses."""
    fw = load_framework(framework)
    rules = load_fleet_rules()
    findings = []
    for rule_id in fw.fleet_rule_ids():
        spec = rules[rule_id]
        ids = fw.requirements_of_check(rule_id)
        try:
            finding = _finding(spec, spec.predicate(ctx), spec.messages, ids)
        except Exception as exc:  # a broken rule must not break the agency view
            log.exception("fleet rule %s failed", rule_id)
            outcome = Outcome("unknown", "check_error", {"error": f"{type(exc).__name__}: {exc}"})
            finding = _finding(spec, outcome, SHARED, ids)
        findings.append(finding)
    return findings


def summarize_agency(
    evaluations: list[HostEvaluation],
    level: int,
    framework: str = DEFAULT_FRAMEWORK,
    fleet_findings: list[Finding] | None = None,
    attestations: Mapping[str, Attestation] | None = None,
    now: datetime | None = None,
) -> list[ArticleVerdict]:
    """An agency's verdict per article: every host's verdicts, fleet rules, attestations."""
    per_host = [{v.requirement_id: v.status for v in ev.requirements} for ev in evaluations]
    return summarize_agency_statuses(
        per_host, level, framework, fleet_findings, attestations=attestations, now=now
    )


def host_requirement_statuses(
    check_statuses: Mapping[str, Verdict], level: int, framework: str = DEFAULT_FRAMEWORK
) -> dict[str, Verdict]:
    """One host's verdict per check-verified requirement, from its check statuses alone.

    The same status :func:`requirement_verdicts` gives (waivers already applied
    to ``check_statuses``), for the requirements :func:`summarize_agency_statuses`
    reads from hosts: those that apply at ``level``, are not attested, and have checks.
    """
    fw = load_framework(framework)
    return {
        req.id: _final(req, [check_statuses.get(c, "unknown") for c in req.checks])
        for req in fw.requirements
        if req.checks and req.verification != "attestation" and req.applies_to_level(level)
    }


def summarize_agency_statuses(
    per_host: list[Mapping[str, Verdict]],
    level: int,
    framework: str = DEFAULT_FRAMEWORK,
    fleet_findings: list[Finding] | None = None,
    attestations: Mapping[str, Attestation] | None = None,
    now: datetime | None = None,
) -> list[ArticleVerdict]:
    """:func:`summarize_agency` from each host's status per requirement only."""
    fw = load_framework(framework)
    now = now or datetime.now(UTC)
    fleet = {f.check_id: f for f in fleet_findings or []}
    combined = [
        _agency_verdict(req, level, per_host, fleet, attestations or {}, now)
        for req in fw.requirements
    ]
    return _by_article(fw, combined)


def _agency_verdict(
    req: Requirement,
    level: int,
    per_host: list[Mapping[str, Verdict]],
    fleet: Mapping[str, Finding],
    attestations: Mapping[str, Attestation],
    now: datetime,
) -> RequirementVerdict:
    if not req.applies_to_level(level):
        return RequirementVerdict(
            status="not_applicable", reason=_level_reason(req, level), **_base(req)
        )
    if req.verification == "attestation":
        return _attestation_verdict(req, attestations.get(req.id), now)
    if not req.checks and not req.fleet_rules:
        return RequirementVerdict(
            status="unknown", reason=PENDING_REASON[req.verification], **_base(req)
        )
    statuses: list[Verdict] = []
    evidence: list[Text] = []
    reason: Text | None = None
    if req.checks:
        host_statuses = [h[req.id] for h in per_host if req.id in h]
        if host_statuses:
            counts = count_statuses(host_statuses)
            statuses.append(combine(host_statuses))
            evidence.append(
                format_message(SHARED["host_counts"], {**counts, "hosts": len(host_statuses)})
            )
        else:
            statuses.append("unknown")
            reason = SHARED["no_hosts"]
    if req.fleet_rules:
        fleet_statuses, fleet_evidence = _from_findings(req.fleet_rules, fleet)
        statuses += fleet_statuses
        evidence += fleet_evidence
    return RequirementVerdict(
        status=_final(req, statuses), evidence=evidence, reason=reason, **_base(req)
    )


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


def group_by_article(
    verdicts: list[RequirementVerdict], framework: str = DEFAULT_FRAMEWORK
) -> list[ArticleVerdict]:
    """Requirement verdicts (of a host or an agency) grouped under their articles."""
    return _by_article(load_framework(framework), verdicts)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out
