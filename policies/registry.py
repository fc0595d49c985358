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
# Fleet rules take a policies.fleet.FleetContext; typed loosely to avoid an import cycle.
FleetFn = Callable[[Any], Outcome]

_PREDICATES: dict[str, CheckFn] = {}
_FLEET_PREDICATES: dict[str, FleetFn] = {}


def _register(table: dict[str, Any], rule_id: str, kind: str) -> Callable[[Any], Any]:
    def register(fn: Any) -> Any:
        if rule_id in table:
            raise ValueError(f"{kind} '{rule_id}' registered twice")
        table[rule_id] = fn
        return fn

    return register


def check(check_id: str) -> Callable[[CheckFn], CheckFn]:
    """Register a host check predicate under its check id."""
    return _register(_PREDICATES, check_id, "check")


def fleet_rule(rule_id: str) -> Callable[[FleetFn], FleetFn]:
    """Register an agency-wide (fleet) rule predicate under its id."""
    return _register(_FLEET_PREDICATES, rule_id, "fleet rule")


@dataclass(frozen=True)
class CheckSpec:
    """A host check (``section`` and ``roles`` set) or a fleet rule (``section`` None)."""

    id: str
    section: str | None
    severity: Severity
    roles: tuple[str, ...]
    title: Text
    remediation: Text
    messages: dict[str, Text]
    predicate: Callable[[Any], Outcome]


def _text(raw: dict[str, str], where: str) -> Text:
    try:
        return Text(vi=raw["vi"], en=raw["en"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: needs both 'vi' and 'en' texts") from exc


def _load(package_name: str, predicates: dict[str, Any], fleet: bool) -> dict[str, CheckSpec]:
    """Import every predicate module of a package and pair it with its YAML metadata."""
    package = importlib.import_module(package_name)
    for mod in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package_name}.{mod.name}")

    specs: dict[str, CheckSpec] = {}
    folder = resources.files(package_name)
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        for raw in yaml.safe_load(entry.read_text(encoding="utf-8")) or []:
            cid = raw["id"]
            where = f"{entry.name}:{cid}"
            if cid in specs:
                raise ValueError(f"{where}: duplicate id")
            if cid not in predicates:
                raise ValueError(f"{where}: no predicate registered for this id")
            specs[cid] = CheckSpec(
                id=cid,
                section=None if fleet else raw["section"],
                severity=raw["severity"],
                roles=() if fleet else tuple(raw["roles"]),
                title=_text(raw["title"], where),
                remediation=_text(raw["remediation"], where),
                messages={k: _text(v, f"{where}.{k}") for k, v in raw["messages"].items()},
                predicate=predicates[cid],
            )
    missing = set(predicates) - set(specs)
    if missing:
        raise ValueError(f"predicates without metadata: {sorted(missing)}")
    return specs


@cache
def load_checks() -> dict[str, CheckSpec]:
    """Host checks: ``policies/checks/<family>.py`` + ``<family>.yaml``."""
    return _load("policies.checks", _PREDICATES, fleet=False)


@cache
def load_fleet_rules() -> dict[str, CheckSpec]:
    """Agency-wide rules: ``policies/fleet_rules/<family>.py`` + ``<family>.yaml``."""
    return _load("policies.fleet_rules", _FLEET_PREDICATES, fleet=True)


@cache
def sections_read() -> frozenset[str]:
    """The report sections some host check reads (ingest skips rebuilding the others)."""
    return frozenset(spec.section for spec in load_checks().values() if spec.section)
