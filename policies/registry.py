"""Checks: a small predicate in Python, its metadata and texts in a YAML file.

Each family has ``checks/<family>.py`` (the predicates, registered with
:func:`check`) and ``checks/<family>.yaml`` (id, severity, host roles, fact
section, Vietnamese/English title, remediation and evidence messages).  The
loader refuses a predicate without metadata and metadata without a
predicate, so the two halves cannot drift apart.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import yaml

from agent.report import Report
from policies.model import Severity, Text, Verdict
from policies.parameters import Parameters


@dataclass(frozen=True)
class Outcome:
    """What a predicate returns: a verdict and the key of its evidence message."""

    status: Verdict
    message: str
    params: dict[str, Any] = field(default_factory=dict)


def passed(message: str, **params: Any) -> Outcome:
    return Outcome("pass", message, params)


def failed(message: str, **params: Any) -> Outcome:
    return Outcome("fail", message, params)


def undetermined(message: str, **params: Any) -> Outcome:
    return Outcome("unknown", message, params)


@dataclass(frozen=True)
class EvalContext:
    report: Report
    level: int
    role: str
    params: Parameters
    now: datetime

    def param(self, family: str, key: str) -> Any:
        return self.params[family][key]

    def age_days(self, when: datetime) -> float:
        return (self.now - when).total_seconds() / 86400


CheckFn = Callable[[EvalContext], Outcome]

_PREDICATES: dict[str, CheckFn] = {}


def check(check_id: str) -> Callable[[CheckFn], CheckFn]:
    """Register a predicate under its check id."""

    def register(fn: CheckFn) -> CheckFn:
        if check_id in _PREDICATES:
            raise ValueError(f"check '{check_id}' registered twice")
        _PREDICATES[check_id] = fn
        return fn

    return register


@dataclass(frozen=True)
class CheckSpec:
    id: str
    section: str
    severity: Severity
    roles: tuple[str, ...]
    title: Text
    remediation: Text
    messages: dict[str, Text]
    predicate: CheckFn


def _text(raw: dict[str, str], where: str) -> Text:
    try:
        return Text(vi=raw["vi"], en=raw["en"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: needs both 'vi' and 'en' texts") from exc


@cache
def load_checks() -> dict[str, CheckSpec]:
    """Import every predicate module and pair it with its YAML metadata."""
    import policies.checks as package

    for mod in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"policies.checks.{mod.name}")

    specs: dict[str, CheckSpec] = {}
    folder = resources.files("policies.checks")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        for raw in yaml.safe_load(entry.read_text(encoding="utf-8")) or []:
            cid = raw["id"]
            where = f"{entry.name}:{cid}"
            if cid in specs:
                raise ValueError(f"{where}: duplicate check id")
            if cid not in _PREDICATES:
                raise ValueError(f"{where}: no predicate registered for this check")
            specs[cid] = CheckSpec(
                id=cid,
                section=raw["section"],
                severity=raw["severity"],
                roles=tuple(raw["roles"]),
                title=_text(raw["title"], where),
                remediation=_text(raw["remediation"], where),
                messages={k: _text(v, f"{where}.{k}") for k, v in raw["messages"].items()},
                predicate=_PREDICATES[cid],
            )
    missing = set(_PREDICATES) - set(specs)
    if missing:
        raise ValueError(f"predicates without metadata: {sorted(missing)}")
    return specs
