"""SSH connections with pinned host keys and key-only authentication.

A target's host key is *pinned*: the collector stores the key (type, base64
and SHA256 fingerprint) an administrator trusted.  A server presenting no
pinned key is refused (``UnknownHostKey``), one presenting another key is
refused naming both fingerprints (``HostKeyChanged``).  Trusting a key is a
separate admin action (``fetch_host_key`` shows what the server presents,
without authenticating).
"""

from __future__ import annotations

import base64
import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

CONNECT_TIMEOUT = 10.0


class SshError(Exception):
    """Any failure to reach, verify or log in to an agentless target."""


class UnknownHostKey(SshError):
    def __init__(self, address: str, presented: PinnedKey) -> None:
        super().__init__(
            f"host key of {address} is not trusted ({presented.key_type} "
            f"{presented.sha256}); an administrator must trust it explicitly"
        )
        self.presented = presented


class HostKeyChanged(SshError):
    def __init__(self, address: str, pinned: PinnedKey, presented: PinnedKey) -> None:
        super().__init__(
            f"HOST KEY CHANGED for {address}: pinned {pinned.key_type} {pinned.sha256}, "
            f"server presented {presented.key_type} {presented.sha256}; refusing to connect "
            "(possible man-in-the-middle, or the server was reinstalled: re-trust only "
            "after verifying the new fingerprint out of band)"
        )
        self.pinned = pinned
        self.presented = presented


class AuthenticationFailed(SshError):
    pass


@dataclass(frozen=True)
class PinnedKey:
    key_type: str  # e.g. ssh-ed25519
    b64: str

    @property
    def sha256(self) -> str:
        return fingerprint(base64.b64decode(self.b64))

    @classmethod
    def from_pkey(cls, key: paramiko.PKey) -> PinnedKey:
        return cls(key.get_name(), key.get_base64())

    def to_pkey(self) -> paramiko.PKey:
        return paramiko.PKey.from_type_string(self.key_type, base64.b64decode(self.b64))


def fingerprint(blob: bytes) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a public key blob."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    username: str
    key_path: str
    known_host_key: PinnedKey | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def hostkey_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Never accept a key that is not pinned (paramiko's AutoAddPolicy is never used)."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        presented = PinnedKey.from_pkey(key)
        if self.target.known_host_key is not None:
            raise HostKeyChanged(self.target.address, self.target.known_host_key, presented)
        raise UnknownHostKey(self.target.address, presented)


def _load_private_key(path: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(Path(path))
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise SshError(f"cannot load the private key {path}: {exc}") from exc


def connect(target: SshTarget, timeout: float = CONNECT_TIMEOUT) -> paramiko.SSHClient:
    """Open one verified, key-authenticated connection to ``target``."""
    pkey = _load_private_key(target.key_path)
    client = paramiko.SSHClient()
    # Only the pinned key is known: no ~/.ssh/known_hosts, no system host keys.
    if target.known_host_key is not None:
        client.get_host_keys().add(
            target.hostkey_name, target.known_host_key.key_type, target.known_host_key.to_pkey()
        )
    client.set_missing_host_key_policy(_RefuseUnknown(target))
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.username,
            pkey=pkey,
            allow_agent=False,
            look_for_keys=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
    except SshError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        pinned = target.known_host_key
        presented = PinnedKey.from_pkey(exc.key)
        raise HostKeyChanged(target.address, pinned or presented, presented) from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        raise AuthenticationFailed(
            f"authentication as {target.username!r} on {target.address} with the key "
            f"{target.key_path} was refused ({exc}); check that its public key is in the "
            "user's authorized_keys"
        ) from exc
    except (OSError, paramiko.SSHException, EOFError) as exc:
        client.close()
        raise SshError(f"cannot connect to {target.address}: {exc}") from exc
    return client


def fetch_host_key(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> PinnedKey:
    """The host key a server presents, read during key exchange; nothing is authenticated."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise SshError(f"cannot connect to {host}:{port}: {exc}") from exc
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        return PinnedKey.from_pkey(transport.get_remote_server_key())
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise SshError(f"SSH key exchange with {host}:{port} failed: {exc}") from exc
    finally:
        transport.close()
