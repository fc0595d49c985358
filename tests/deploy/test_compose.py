"""deploy/compose.yaml: structure only (no Docker in CI; the stack is not started here)."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_structure() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"collector", "db", "caddy"}
    for name, service in services.items():
        assert "healthcheck" in service and service["healthcheck"]["test"], name
        assert service.get("restart") == "unless-stopped", name
    assert services["db"]["image"] == "postgres:16"
    assert services["caddy"]["image"].startswith("caddy:")
    assert services["collector"]["build"]["dockerfile"] == "deploy/Dockerfile"
    env = services["collector"]["environment"]
    assert env["POSTURE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "POSTURE_ADMIN_TOKEN" in env
    assert services["collector"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "ports" not in services["collector"] and "ports" not in services["db"]
    assert "443:443" in services["caddy"]["ports"]
    declared = set(compose["volumes"])
    used = {
        v.split(":")[0]
        for s in services.values()
        for v in s.get("volumes", [])
        if not v.startswith(".")
    }
    assert used == declared == {"collector-data", "pg-data", "caddy-data", "caddy-config"}
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]


def test_dockerfile_and_caddyfile() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert 'pip install ".[collector,postgres]"' in dockerfile
    assert "USER posture" in dockerfile
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    assert "reverse_proxy collector:8080" in caddyfile
