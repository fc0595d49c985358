"""Agent configuration (a TOML file) and enrollment state (a private JSON file)."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.report import HostRole


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def default_config_path() -> Path:
    if _is_root():
        return Path("/etc/posture-agent/agent.toml")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "posture-agent" / "agent.toml"


def default_state_dir() -> Path:
    if _is_root():
        return Path("/var/lib/posture-agent")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "posture-agent"


@dataclass
class AgentConfig:
    """Keys of agent.toml (all optional).

    collector_url     URL of the collector, e.g. https://posture.sotttt.example.vn
    state_dir         where enrollment, spool and status live
    role              "server" | "workstation" (overrides hardware hints)
    interval_seconds  time between two collections (default 3600)
    jitter_seconds    random extra delay so 300 agents do not report at once
    probe_timeout     time budget of one full collection, in seconds
    verify_tls        verify the collector's certificate (default true)
    ca_file           CA bundle to verify the collector with
    spool_max_reports at most this many reports queued (default 500); the oldest
                      are evicted past it, and the collector is told how many
    spool_max_bytes   at most this many bytes queued (default 100 MiB), same rule
    resync_hours      send the full software inventory at least this often
                      (default 24); deltas otherwise
    """

    collector_url: str | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    role: HostRole = "unknown"
    interval_seconds: float = 3600.0
    jitter_seconds: float = 300.0
    probe_timeout: float = 30.0
    verify_tls: bool = True
    ca_file: str | None = None
    spool_max_reports: int = 500
    spool_max_bytes: int = 100 * 1024 * 1024
    resync_hours: float = 24.0

    @property
    def cache_dir(self) -> Path:
        """Reusable results of expensive commands (e.g. the apt upgrade simulation)."""
        return self.state_dir / "cache"

    @classmethod
    def load(cls, path: Path | None = None) -> AgentConfig:
        """Read the config file if it exists; unknown keys are an error."""
        path = path or default_config_path()
        if not path.exists():
            return cls()
        with open(path, "rb") as fh:
            raw: dict[str, Any] = tomllib.load(fh)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}")
        if "state_dir" in raw:
            raw["state_dir"] = Path(raw["state_dir"])
        if raw.get("role", "unknown") not in ("server", "workstation", "unknown"):
            raise ValueError(f"{path}: role must be 'server' or 'workstation'")
        config = cls(**raw)
        config.validate(str(path))
        return config

    def validate(self, origin: str = "configuration") -> None:
        for key in ("spool_max_reports", "spool_max_bytes"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{origin}: {key} must be a positive integer")
        if not isinstance(self.resync_hours, int | float) or self.resync_hours <= 0:
            raise ValueError(f"{origin}: resync_hours must be a positive number")


@dataclass
class Enrollment:
    collector_url: str
    agent_id: str
    host_id: int
    credential: str
    agency: dict[str, Any]

    @staticmethod
    def path(state_dir: Path) -> Path:
        return state_dir / "enrollment.json"

    def save(self, state_dir: Path) -> None:
        """Write atomically with owner-only permissions: it holds a secret."""
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.path(state_dir)
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, indent=2)
        os.replace(tmp, target)

    @classmethod
    def load(cls, state_dir: Path) -> Enrollment | None:
        try:
            data = json.loads(cls.path(state_dir).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(**data)


def read_status(state_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((state_dir / "status.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def update_status(state_dir: Path, **values: Any) -> None:
    status = read_status(state_dir) | values
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = state_dir / "status.json.tmp"
    tmp.write_text(json.dumps(status, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, state_dir / "status.json")
