"""Frameworks: data files mapping regulation clauses to checks."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from policies.model import Text, Verification

DEFAULT_FRAMEWORK = "qc-02-2013-binhduong"


class Requirement(BaseModel):
    id: str
    article: int
    reference: Text
    title: Text
    quote: str
    min_level: int = Field(ge=1, le=4)
    max_level: int = Field(default=4, ge=1, le=4)
    modality: Literal["must", "needs", "may"]
    verification: Verification
    checks: list[str] = Field(default_factory=list, description="Host checks.")
    fleet_rules: list[str] = Field(default_factory=list, description="Agency-wide rules.")
    attestation_evidence: Text | None = Field(
        default=None,
        description="What a person uploads to attest the requirement (attestation rows).",
    )
    attestation_valid_days: int = Field(
        default=365,
        gt=0,
        description="How long an attestation stays valid when the attester sets no expiry.",
    )

    def applies_to_level(self, level: int) -> bool:
        return self.min_level <= level <= self.max_level


class Framework(BaseModel):
    id: str
    title: Text
    articles: dict[int, Text]
    requirements: list[Requirement]

    @model_validator(mode="after")
    def _consistent(self) -> Framework:
        ids = [r.id for r in self.requirements]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate requirement ids: {sorted(dupes)}")
        for r in self.requirements:
            if r.article not in self.articles:
                raise ValueError(f"{r.id}: article {r.article} has no title")
        return self

    def check_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.requirements:
            for c in r.checks:
                seen.setdefault(c)
        return list(seen)

    def fleet_rule_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.requirements:
            for c in r.fleet_rules:
                seen.setdefault(c)
        return list(seen)

    def requirements_of_check(self, check_id: str) -> list[str]:
        return [
            r.id for r in self.requirements if check_id in r.checks or check_id in r.fleet_rules
        ]


@cache
def load_framework(name: str = DEFAULT_FRAMEWORK) -> Framework:
    """Load a framework and make sure every check it names exists."""
    from policies.registry import load_checks, load_fleet_rules

    path = resources.files("policies.frameworks").joinpath(f"{name}.yaml")
    framework = Framework.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    known = load_checks()
    unknown = [c for c in framework.check_ids() if c not in known]
    unknown += [c for c in framework.fleet_rule_ids() if c not in load_fleet_rules()]
    if unknown:
        raise ValueError(f"framework {name} names unknown checks or fleet rules: {unknown}")
    return framework
