"""The wire contract: versioning and the exported JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.report import SCHEMA_VERSION, SECTION_NAMES, Report, json_schema, schema_major
from tests.factories import make_report

DOCS = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"


def test_exported_schema_is_current():
    """docs/report.schema.json must be regenerated when the contract changes:
    `posture-agent schema > docs/report.schema.json`."""
    assert json.loads(DOCS.read_text(encoding="utf-8")) == json_schema()


def test_every_section_carries_status_and_reason():
    schema = json_schema()
    for name in SECTION_NAMES:
        prop = schema["properties"][name]
        options = prop.get("anyOf", [prop])  # optional sections are anyOf [ref, null]
        [ref] = [o["$ref"] for o in options if "$ref" in o]
        definition = schema["$defs"][ref.rsplit("/", 1)[1]]
        assert {"status", "reason", "notes"} <= set(definition["properties"])


def test_schema_version_parsing():
    assert schema_major(SCHEMA_VERSION) == 1
    assert schema_major("2.7") == 2
    assert schema_major("x") is None


def test_fields_of_a_newer_minor_version_are_ignored():
    data = json.loads(make_report().model_dump_json())
    data["schema_version"] = "1.9"
    data["antivirus"]["quarantine_count"] = 3
    data["backup"] = {"status": "ok"}
    report = Report.model_validate(data)
    assert report.antivirus.products[0].name == "ClamAV"
    assert "quarantine_count" not in report.antivirus.model_dump()


def test_unknown_status_requires_valid_value():
    data = json.loads(make_report().model_dump_json())
    data["firewall"]["status"] = "maybe"
    with pytest.raises(ValidationError):
        Report.model_validate(data)
