"""Điều 19 khoản 1: anti-virus on *all* servers and workstations, signatures kept current.

Each host counts by the latest result of its own host check: a host that went
silent counts by its last findings, a host that never reported (or whose
check has no result) is unknown, a waived result stays waived — never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policies.fleet import FleetContext, FleetHost
from policies.model import Text
from policies.registry import Outcome, failed, fleet_rule, passed, undetermined

UNKNOWN_LABEL = Text(vi="chưa xác định", en="unknown")
WAIVED_LABEL = Text(vi="được miễn trừ", en="waived")


def listing(*parts: tuple[Text, list[str]]) -> Text:
    """``"; label: a, b"`` for each non-empty list, in each language ("" when all are empty)."""
    kept = [(label, names) for label, names in parts if names]
    return Text(
        vi="".join(f"; {label.vi}: {', '.join(names)}" for label, names in kept),
        en="".join(f"; {label.en}: {', '.join(names)}" for label, names in kept),
    )


@dataclass
class Coverage:
    """Hosts of the agency grouped by the latest status of one host check."""

    total: int = 0
    passing: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    waived: list[str] = field(default_factory=list)

    def params(self) -> dict[str, object]:
        return {
            "total": self.total,
            "ok": len(self.passing),
            "missing": self.failing,
            "unknown": self.unknown,
            "waived": self.waived,
            "share": round(100 * len(self.passing) / self.total) if self.total else 0,
            "others": listing((UNKNOWN_LABEL, self.unknown), (WAIVED_LABEL, self.waived)),
        }


def coverage(hosts: list[FleetHost], check_id: str) -> Coverage:
    """Group hosts by the status of ``check_id`` in their latest findings."""
    result = Coverage()
    for host in hosts:
        finding = host.findings.get(check_id)
        status = finding.status if finding is not None else "unknown"
        if status == "not_applicable":
            continue  # the check does not apply to this host's role
        result.total += 1
        {
            "pass": result.passing,
            "fail": result.failing,
            "waived": result.waived,
        }.get(status, result.unknown).append(host.hostname)
    return result


def _verdict(cov: Coverage) -> Outcome:
    params = cov.params()
    if cov.failing:
        return failed("missing", **params)
    if cov.unknown:
        return undetermined("incomplete", **params)
    if cov.waived:
        return Outcome("waived", "waived", params)
    return passed("all", **params)


@fleet_rule("fleet_av_coverage")
def fleet_av_coverage(ctx: FleetContext) -> Outcome:
    if not ctx.hosts:
        return undetermined("no_hosts")
    cov = coverage(ctx.managed(), "av_installed")
    if cov.total == 0:
        return undetermined("no_hosts")
    return _verdict(cov)


@fleet_rule("fleet_av_signatures")
def fleet_av_signatures(ctx: FleetContext) -> Outcome:
    if not ctx.hosts:
        return undetermined("no_hosts")
    cov = coverage(ctx.managed(), "av_signatures_fresh")
    if cov.total == 0:
        return undetermined("no_hosts")
    return _verdict(cov)
