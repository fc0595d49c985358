"""Agent configuration (a TOML file) and enrollment state (a private JSON file)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import ssl
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.report import HostRole


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def windows_data_dir() -> Path | None:
    """``%ProgramData%\\posture-agent`` on Windows (config, state, spool); None elsewhere."""
    if os.name != "nt":
        return None
    return Path(os.environ.get("PROGRAMDATA") or r"C:\ProgramData") / "posture-agent"


def default_config_path() -> Path:
    if (windows := windows_data_dir()) is not None:
        return windows / "agent.toml"
    if _is_root():
        return Path("/etc/posture-agent/agent.toml")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "posture-agent" / "agent.toml"


def default_state_dir() -> Path:
    if (windows := windows_data_dir()) is not None:
        return windows / "state"
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
    verify_tls        verify the collector's certificate (default true); ignored once
                      the collector's CA is pinned at enrollment
    ca_file           CA bundle to verify the collector with (without a pin)
    allow_insecure_http  allow plain http:// to a collector that is not on loopback
                      (default false: the credential would cross the network in clear)
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
    allow_insecure_http: bool = False
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
        for key in ("verify_tls", "allow_insecure_http"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{origin}: {key} must be true or false")
        if self.collector_url is not None:
            check_collector_url(self.collector_url, self.allow_insecure_http, origin=origin)

    @property
    def pinned_ca_path(self) -> Path:
        """The collector's CA, saved at enrollment when its fingerprint was pinned."""
        return self.state_dir / PINNED_CA_FILE


# --- transport security -------------------------------------------------------------

PINNED_CA_FILE = "collector-ca.pem"
_FINGERPRINT = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: traffic that never leaves this machine."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_collector_url(url: str, allow_insecure_http: bool, origin: str = "collector") -> str:
    """The URL without a trailing slash; ValueError when it is unusable or unsafe.

    https is always fine; plain http only to loopback, unless the operator set
    ``allow_insecure_http = true`` (the credential and the reports would then
    cross the network unencrypted).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{origin}: the collector URL must be https://HOST[:PORT], got {url!r}")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"{origin}: refusing plain http:// to {parts.hostname}: the agent credential and "
            "the reports would cross the network unencrypted. Use https:// (see "
            "`posture-collector tls init`), or set allow_insecure_http = true in agent.toml "
            "for a lab test"
        )
    return url.strip().rstrip("/")


def normalise_fingerprint(value: str) -> str:
    """``sha256:<64 lowercase hex>``; accepts upper case and ':' separators."""
    text = value.strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:") :]
    text = text.replace(":", "")
    match = _FINGERPRINT.match(text)
    if match is None:
        raise ValueError(
            f"invalid CA fingerprint {value!r}: expected sha256:<64 hex digits> "
            "(printed by `posture-collector tls init` / `tls fingerprint`)"
        )
    return "sha256:" + match.group(1)


def split_token(token: str, ca_fingerprint: str | None = None) -> tuple[str, str | None]:
    """Split ``pe_…#sha256:…`` into the token and the pinned fingerprint.

    The combined form lets one variable (e.g. in Ansible) carry both; a
    fingerprint given separately as well must be the same one.
    """
    token = token.strip()
    pin = normalise_fingerprint(ca_fingerprint) if ca_fingerprint else None
    if "#" in token:
        token, _, embedded = token.partition("#")
        token = token.strip()
        embedded_pin = normalise_fingerprint(embedded)
        if pin is not None and pin != embedded_pin:
            raise ValueError(
                "the fingerprint appended to the token differs from --ca-fingerprint; "
                "use the values printed with the token"
            )
        pin = embedded_pin
    if not token:
        raise ValueError("empty enrollment token")
    return token, pin


_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s.+?-----END CERTIFICATE-----", re.S)


def pem_fingerprint(pem: str) -> str:
    """``sha256:<hex>`` of the DER form of a single PEM certificate; ValueError otherwise."""
    blocks = _PEM_CERT.findall(pem)
    if len(blocks) != 1:
        raise ValueError(f"expected exactly one PEM certificate, found {len(blocks)}")
    der = ssl.PEM_cert_to_DER_cert(blocks[0])
    return "sha256:" + hashlib.sha256(der).hexdigest()


def fingerprints_match(a: str, b: str) -> bool:
    return hmac.compare_digest(normalise_fingerprint(a), normalise_fingerprint(b))


@dataclass
class Enrollment:
    collector_url: str
    agent_id: str
    host_id: int
    credential: str
    agency: dict[str, Any]
    # sha256 fingerprint of the collector CA pinned at enrollment; its certificate
    # is <state_dir>/collector-ca.pem and is then the only trust anchor.
    ca_fingerprint: str | None = None

    @staticmethod
    def path(state_dir: Path) -> Path:
        return state_dir / "enrollment.json"

    def save(self, state_dir: Path) -> None:
        """Write atomically with owner-only permissions: it holds a secret.

        The new content is written and flushed to disk in a temporary file which
        then replaces the old one: a crash at any point leaves either the old or
        the new credential, never a truncated file.
        """
        write_atomic(self.path(state_dir), json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> Enrollment | None:
        try:
            data = json.loads(cls.path(state_dir).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(**data)


def write_atomic(target: Path, text: str, mode: int = 0o600) -> None:
    """Atomically replace ``target`` (fsync'd, created with ``mode`` from the start)."""
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


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
