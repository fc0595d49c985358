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
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description=(
            "POSTURE_DATABASE_POOL_SIZE: PostgreSQL connections each collector process keeps "
            "open (10 more are opened, then closed, at peaks). Every request waiting for its "
            "batch has authenticated on one; a pool too small makes PostgreSQL start a "
            "process per request."
        ),
    )
    ingest_batch_max: int = Field(
        default=64,
        ge=1,
        le=1000,
        description=(
            "POSTURE_INGEST_BATCH_MAX: most reports one collector process stores in one "
            "transaction. Reports that arrive while a batch is being stored wait for the next "
            "one; 1 stores every report on its own."
        ),
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

    login_rate_per_minute: int = Field(
        default=10,
        ge=0,
        description=(
            "POST /api/v1/auth/token (password logins) allowed per client IP and minute, "
            "per process (429 with Retry-After above it; 0 disables the limit)."
        ),
    )
    api_token_hours: float = Field(
        default=12,
        gt=0,
        description="Lifetime of a user API token obtained by password login.",
    )

    parameters_file: Path | None = Field(
        default=None,
        description=(
            "Province-wide override of the check thresholds (YAML, same keys as "
            "policies/parameters.yaml); each agency may override further via the API."
        ),
    )

    # --- agent transport security (collector/tls.py, collector/credentials.py) ---
    tls_dir: Path | None = Field(
        default=None,
        description=(
            "POSTURE_TLS_DIR: directory made by `posture-collector tls init` (ca.pem, "
            "server.pem, server-key.pem). When set, `serve` speaks HTTPS with server.pem, "
            "GET /api/v1/tls/ca.pem publishes ca.pem and enrollment tokens carry its "
            "fingerprint for the agents to pin."
        ),
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description=(
            "POSTURE_TLS_CA_FILE: CA certificate (PEM) to publish and pin instead of "
            "<tls_dir>/ca.pem, when TLS is terminated by a reverse proxy (e.g. the root of "
            "Caddy's `tls internal`, or the agency's own CA)."
        ),
    )
    public_url: str | None = Field(
        default=None,
        description=(
            "POSTURE_PUBLIC_URL: the URL agents reach the collector at, e.g. "
            "https://posture.sotttt.example.vn; used in the enroll command shown with "
            "enrollment tokens."
        ),
    )
    credential_max_age_days: float = Field(
        default=90,
        ge=0,
        description=(
            "POSTURE_CREDENTIAL_MAX_AGE_DAYS: an agent whose credential is older than this "
            "is asked to rotate it (rotate_credential in the report response; 0: never)."
        ),
    )
    credential_grace_hours: float = Field(
        default=24,
        gt=0,
        description=(
            "POSTURE_CREDENTIAL_GRACE_HOURS: after a rotation the old credential keeps "
            "working until the new one is first used or this many hours have passed, so "
            "a lost rotation response never locks the agent out."
        ),
    )

    # --- notifications (collector/notify): new critical failures, silent machines ---
    notify_webhook_url: str | None = Field(
        default=None,
        description=(
            "POSTURE_NOTIFY_WEBHOOK_URL: notifications are POSTed there as JSON (every "
            "event of every agency)."
        ),
    )
    notify_webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "POSTURE_NOTIFY_WEBHOOK_SECRET: when set, each webhook request carries "
            "X-Posture-Signature: sha256=<HMAC-SHA256 of the body with this secret>."
        ),
    )
    notify_webhook_timeout_seconds: float = Field(default=10, gt=0)
    notify_webhook_retries: int = Field(
        default=2, ge=0, description="Immediate retries of a failed webhook call (1 s, 2 s…)."
    )
    smtp_host: str | None = Field(
        default=None, description="POSTURE_SMTP_HOST: SMTP server for e-mail notifications."
    )
    smtp_port: int = Field(default=587, gt=0, lt=65536, description="POSTURE_SMTP_PORT")
    smtp_user: str | None = Field(default=None, description="POSTURE_SMTP_USER (auth is optional)")
    smtp_password: SecretStr | None = Field(default=None, description="POSTURE_SMTP_PASSWORD")
    smtp_starttls: bool = Field(
        default=True, description="POSTURE_SMTP_STARTTLS: upgrade the connection with STARTTLS."
    )
    smtp_ssl: bool = Field(
        default=False, description="POSTURE_SMTP_SSL: implicit TLS (SMTPS, usually port 465)."
    )
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    notify_email_from: str = Field(
        default="posture-collector@localhost", description="POSTURE_NOTIFY_EMAIL_FROM"
    )
    notify_email_to: str = Field(
        default="",
        description=(
            "POSTURE_NOTIFY_EMAIL_TO: comma-separated addresses that receive the events of "
            "every agency (the Sở TT&TT)."
        ),
    )
    notify_agency_emails: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            'POSTURE_NOTIFY_AGENCY_EMAILS: JSON {"<agency code>": ["it@agency.gov.vn"]}; '
            "these addresses receive the events of that agency only."
        ),
    )
    notify_digest_minutes: float = Field(
        default=0,
        ge=0,
        description=(
            "POSTURE_NOTIFY_DIGEST_MINUTES: 0 sends at the next run; otherwise each "
            "recipient gets at most one message per this many minutes, listing every event."
        ),
    )
    notify_interval_seconds: float = Field(
        default=60, gt=0, description="How often the collector's sender loop runs."
    )
    notify_english: bool = Field(
        default=False, description="Add an English version below the Vietnamese text."
    )
    notify_incidents: bool = Field(
        default=True, description="Also notify new wide-scope or escalated incidents."
    )
    notify_lease_seconds: float = Field(
        default=300,
        gt=0,
        description="A sender's claim on deliveries expires after this (crashed process).",
    )

    @property
    def admin_token_value(self) -> str | None:
        if self.admin_token is None:
            return None
        value = self.admin_token.get_secret_value()
        return value or None
