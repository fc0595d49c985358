"""Coverage: how each requirement of a framework is verified, and what is still unmapped.

A requirement is *mapped* when the software has a way to reach a verdict on it:

- it has host checks, or fleet (agency-wide) rules;
- or it is verified by ``attestation`` and says what evidence a person uploads;
- or it is verified by ``network``: until the network probes exist such a
  requirement is reported ``unknown`` with the reason "no network probe yet".

A ``host`` or ``fleet`` requirement without checks or rules, or an attestation
without an evidence hint, is *unmapped*: ``posture-collector coverage`` lists
it and exits non-zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from policies.framework import Framework, Requirement
from policies.model import Text, Verification
from policies.texts import PENDING_REASON

if TYPE_CHECKING:
    from rich.table import Table

VERIFICATION_LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "host": "Trên máy",
        "fleet": "Toàn đơn vị",
        "network": "Thăm dò mạng",
        "attestation": "Xác nhận",
    },
    "en": {
        "host": "Host",
        "fleet": "Fleet",
        "network": "Network",
        "attestation": "Attestation",
    },
}

_WHY: dict[str, Text] = {
    "host_checks": Text(vi="Kiểm tra trên máy: {checks}", en="Host checks: {checks}"),
    "fleet_rules": Text(vi="Quy tắc toàn đơn vị: {rules}", en="Fleet rules: {rules}"),
    "attestation": Text(
        vi="Cán bộ xác nhận, bằng chứng: {evidence}",
        en="Attested by a person, evidence: {evidence}",
    ),
    "attestation_no_evidence": Text(
        vi="Cần cán bộ xác nhận nhưng chưa nêu bằng chứng cần tải lên",
        en="Attestation without an evidence hint (what to upload)",
    ),
    "network": Text(
        vi="Thăm dò mạng giữa các vùng; đến khi có, kết quả là "
        f"'Chưa xác định' ({PENDING_REASON['network'].vi})",
        en="Probes between network zones; until they exist the verdict is "
        f"'unknown' ({PENDING_REASON['network'].en})",
    ),
    "no_host_check": Text(
        vi="Chưa có phép kiểm tra trên máy nào", en="No host check is mapped yet"
    ),
    "no_fleet_rule": Text(vi="Chưa có quy tắc toàn đơn vị nào", en="No fleet rule is mapped yet"),
}


class CoverageRow(BaseModel):
    """How one requirement is verified, and whether it is mapped."""

    id: str
    article: int
    reference: Text
    title: Text
    verification: Verification
    checks: list[str]
    fleet_rules: list[str]
    mapped: bool
    why: Text


def _fill(key: str, **params: str) -> Text:
    text = _WHY[key]
    return Text(vi=text.vi.format(**params), en=text.en.format(**params))


def _why(req: Requirement) -> tuple[bool, Text]:
    if req.checks or req.fleet_rules:
        parts: list[Text] = []
        if req.checks:
            parts.append(_fill("host_checks", checks=", ".join(req.checks)))
        if req.fleet_rules:
            parts.append(_fill("fleet_rules", rules=", ".join(req.fleet_rules)))
        return True, Text(vi="; ".join(p.vi for p in parts), en="; ".join(p.en for p in parts))
    if req.verification == "attestation":
        evidence = req.attestation_evidence
        if evidence is None or not evidence.vi.strip() or not evidence.en.strip():
            return False, _WHY["attestation_no_evidence"]
        text = _WHY["attestation"]
        return True, Text(
            vi=text.vi.format(evidence=evidence.vi), en=text.en.format(evidence=evidence.en)
        )
    if req.verification == "network":
        return True, _WHY["network"]
    if req.verification == "fleet":
        return False, _WHY["no_fleet_rule"]
    return False, _WHY["no_host_check"]


def coverage(framework: Framework) -> list[CoverageRow]:
    """One row per requirement, in article order (file order within an article)."""
    rows = []
    for req in sorted(framework.requirements, key=lambda r: r.article):
        mapped, why = _why(req)
        rows.append(
            CoverageRow(
                id=req.id,
                article=req.article,
                reference=req.reference,
                title=req.title,
                verification=req.verification,
                checks=list(req.checks),
                fleet_rules=list(req.fleet_rules),
                mapped=mapped,
                why=why,
            )
        )
    return rows


def unmapped(rows: list[CoverageRow]) -> list[CoverageRow]:
    return [row for row in rows if not row.mapped]


_HEAD = {
    "vi": {
        "title": "Độ phủ của {framework}: {mapped}/{total} yêu cầu đã có cách kiểm tra",
        "id": "Yêu cầu",
        "reference": "Điều khoản",
        "verification": "Cách kiểm tra",
        "by": "Kiểm tra / quy tắc",
        "mapped": "Đã ánh xạ",
        "yes": "Có",
        "no": "Chưa",
    },
    "en": {
        "title": "Coverage of {framework}: {mapped} of {total} requirements are mapped",
        "id": "Requirement",
        "reference": "Reference",
        "verification": "Verified by",
        "by": "Checks / rules",
        "mapped": "Mapped",
        "yes": "Yes",
        "no": "No",
    },
}


def coverage_table(rows: list[CoverageRow], framework_id: str, lang: str = "vi") -> Table:
    """A terminal table of the coverage (rich is a collector dependency, imported lazily)."""
    from rich.table import Table
    from rich.text import Text as RichText

    h = _HEAD["en" if lang == "en" else "vi"]
    labels = VERIFICATION_LABELS["en" if lang == "en" else "vi"]
    mapped = sum(row.mapped for row in rows)
    table = Table(
        title=h["title"].format(framework=framework_id, mapped=mapped, total=len(rows)),
        show_lines=False,
        expand=True,
    )
    table.add_column(h["id"], no_wrap=True)
    table.add_column(h["reference"], ratio=2, min_width=12)
    table.add_column(h["verification"], no_wrap=True)
    table.add_column(h["mapped"], no_wrap=True)
    table.add_column(h["by"], ratio=4, min_width=16)
    yes = RichText(h["yes"], style="green")
    no = RichText(h["no"], style="bold red")
    for row in rows:
        table.add_row(
            row.id,
            row.reference.get(lang),
            labels[row.verification],
            yes if row.mapped else no,
            row.why.get(lang),
        )
    return table
