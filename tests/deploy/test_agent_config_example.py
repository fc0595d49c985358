"""deploy/agent.toml.example documents every AgentConfig key and parses."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

from agent.config import AgentConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agent.toml.example"
ASSIGNMENT = re.compile(r"^(#\s*)?([a-z_]+)\s*=", flags=re.MULTILINE)


def documented_keys() -> dict[str, bool]:
    """Key -> True when set, False when only shown commented out."""
    keys: dict[str, bool] = {}
    for match in ASSIGNMENT.finditer(EXAMPLE.read_text(encoding="utf-8")):
        keys[match.group(2)] = keys.get(match.group(2), False) or match.group(1) is None
    return keys


def test_every_config_field_is_documented() -> None:
    names = {f.name for f in fields(AgentConfig)}
    documented = set(documented_keys())
    assert names - documented == set(), "AgentConfig fields missing from agent.toml.example"
    assert documented - names == set(), "agent.toml.example documents keys AgentConfig lacks"


def test_every_key_has_a_comment_above_it() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        match = ASSIGNMENT.match(line)
        if match and match.group(1) is None:
            assert i > 0 and lines[i - 1].startswith("#"), f"{match.group(2)} is undocumented"


def test_example_parses_with_defaults() -> None:
    config = AgentConfig.load(EXAMPLE)
    default = AgentConfig()
    for name, active in documented_keys().items():
        if active and name != "state_dir":  # state_dir's default depends on the user
            assert getattr(config, name) == getattr(default, name), name
    assert config.state_dir == Path("/var/lib/posture-agent")


def test_commented_examples_parse_too(tmp_path: Path) -> None:
    """Uncommenting the example values must give a valid file as well."""
    text = re.sub(r"^#\s*([a-z_]+\s*=)", r"\1", EXAMPLE.read_text(encoding="utf-8"), flags=re.M)
    tomllib.loads(text)  # valid TOML
    target = tmp_path / "agent.toml"
    target.write_text(text, encoding="utf-8")
    config = AgentConfig.load(target)
    assert config.collector_url and config.collector_url.startswith("https://")
    assert config.ca_file == "/etc/posture-agent/collector-ca.pem"
