"""Check thresholds as data, with province/agency overrides."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

Parameters = dict[str, dict[str, Any]]


@cache
def default_parameters() -> Parameters:
    text = resources.files("policies").joinpath("parameters.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def merge(base: Parameters, override: Parameters) -> Parameters:
    """Override known keys only; an unknown key is a typo and is refused."""
    merged = {family: dict(values) for family, values in base.items()}
    for family, values in (override or {}).items():
        if family not in merged:
            raise ValueError(f"unknown parameter family '{family}'")
        for key, value in values.items():
            if key not in merged[family]:
                raise ValueError(f"unknown parameter '{family}.{key}'")
            merged[family][key] = value
    return merged


def load_parameters(*override_files: Path) -> Parameters:
    params = default_parameters()
    for path in override_files:
        params = merge(params, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    return params
