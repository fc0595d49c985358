"""Collector settings, read from the environment (prefix ``POSTURE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./posture-collector.db"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_EVIDENCE_BYTES = 20 * 1024 * 1024


class Settings(BaseSettings):
    """Runtime configuration of the collector.

    Every field is read from ``POSTURE_<NAME>``; the database URL is also read
    from plain ``DATABASE_URL`` (the name most hosting tools set).
    """

    model_config = SettingsConfigDict(
        env_prefix="POSTURE_",
        env_file=None,
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("POSTURE_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://…",
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        gt=0,
        description="Largest accepted request body, before and after decompression.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the admin/read API; the admin API is disabled when unset.",
    )
    # A host's silence threshold is the policy parameter fleet.max_silence_hours.
    snapshot_min_interval_minutes: float = Field(
        default=60,
        ge=0,
        description=(
            "Compliance history: after an ingest, an agency's verdicts per article are "
            "recorded at most once per this many minutes (0: after every report)."
        ),
    )
    max_evidence_bytes: int = Field(
        default=DEFAULT_MAX_EVIDENCE_BYTES,
        gt=0,
        description=(
            "Largest accepted attestation evidence file (413 above). An upload is also "
            "bounded by max_body_bytes, which applies to every request body."
        ),
    )
    max_waiver_days: int = Field(
        default=365,
        gt=0,
        description="Longest a waiver may run: its expires_at is at most this many days ahead.",
    )
    attestation_valid_days: int = Field(
        default=365,
        gt=0,
        description=(
            "Default validity of an attestation without expires_at/valid_days "
            "(annual review, Điều 20 khoản 3)."
        ),
    )

    enroll_rate_per_minute: int = Field(
        default=30,
        ge=0,
        description=(
            "POST /api/v1/enroll attempts allowed per client IP and minute, per process "
            "(token bucket; 429 with Retry-After above it; 0 disables the limit)."
        ),
    )

    parameters_file: Path | None = Field(
        default=None,
        description=(
            "Province-wide override of the check thresholds (YAML, same keys as "
            "policies/parameters.yaml); each agency may override further via the API."
        ),
    )

    @property
    def admin_token_value(self) -> str | None:
        if self.admin_token is None:
            return None
        value = self.admin_token.get_secret_value()
        return value or None
