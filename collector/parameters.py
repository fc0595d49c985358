"""The thresholds an agency is evaluated with: defaults ← province file ← agency overrides.

- defaults: ``policies/parameters.yaml`` (documented in docs/policies.md);
- province: the YAML file named by ``POSTURE_PARAMETERS_FILE`` (same keys);
- agency: ``Agency.parameters``, set with ``PUT /api/v1/agencies/{id}/parameters``.

An unknown family or key is refused at every layer (a typo must not silently
leave the default in force), and an agency override must keep the type of the
value it replaces.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from collector.models import Agency
from collector.settings import Settings
from policies.parameters import Parameters, default_parameters, load_parameters, merge

log = logging.getLogger(__name__)

_province_cache: dict[tuple[str, int], Parameters] = {}


class InvalidParameters(ValueError):
    """An override names an unknown parameter or gives a value of the wrong type."""


def province_parameters(settings: Settings) -> Parameters:
    """Defaults with the province file applied (re-read when the file changes)."""
    path = settings.parameters_file
    if path is None:
        return default_parameters()
    path = Path(path)
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError as exc:
        raise InvalidParameters(f"POSTURE_PARAMETERS_FILE {str(path)!r}: {exc}") from exc
    cached = _province_cache.get(key)
    if cached is None:
        try:
            cached = load_parameters(path)
        except ValueError as exc:
            raise InvalidParameters(f"POSTURE_PARAMETERS_FILE {str(path)!r}: {exc}") from exc
        _province_cache.clear()
        _province_cache[key] = cached
    return cached


def _same_kind(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


def validate_overrides(overrides: Any, base: Parameters | None = None) -> Parameters:
    """Check an agency's overrides against the known parameters; return them normalised."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise InvalidParameters("parameters must be an object {family: {key: value}}")
    base = base if base is not None else default_parameters()
    for family, values in overrides.items():
        if not isinstance(values, dict):
            raise InvalidParameters(f"parameter family '{family}' must be an object")
    try:
        merge(base, overrides)
    except ValueError as exc:
        raise InvalidParameters(str(exc)) from exc
    for family, values in overrides.items():
        for key, value in values.items():
            default = base[family][key]
            if not _same_kind(default, value):
                raise InvalidParameters(
                    f"parameter '{family}.{key}' must be of the same type as its default "
                    f"({type(default).__name__}), got {type(value).__name__}"
                )
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise InvalidParameters(f"parameter '{family}.{key}' must not be negative")
    return {family: dict(values) for family, values in overrides.items() if values}


def effective_parameters(settings: Settings, agency: Agency) -> Parameters:
    """Defaults ← province file ← the agency's overrides.

    Overrides were validated when they were set; one that no longer matches a
    known parameter (removed since) is skipped with a warning rather than
    stopping the agency's reports from being evaluated.
    """
    province = province_parameters(settings)
    overrides = agency.parameters or {}
    if not overrides:
        return province
    known: Parameters = {}
    for family, values in overrides.items():
        for key, value in (values or {}).items():
            if family in province and key in province[family]:
                known.setdefault(family, {})[key] = value
            else:
                log.warning(
                    "agency %s: ignoring unknown parameter '%s.%s'", agency.code, family, key
                )
    return merge(province, known)
