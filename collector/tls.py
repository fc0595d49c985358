"""The collector's own small PKI: a CA and a server certificate for agent TLS.

``posture-collector tls init --dir DIR --host NAME`` creates, in ``DIR``:

* ``ca.pem`` / ``ca-key.pem`` — a long-lived CA (ECDSA P-256).  Agents pin its
  SHA-256 fingerprint at enrollment and then trust nothing else.
* ``server.pem`` / ``server-key.pem`` — the certificate uvicorn presents,
  signed by that CA, with exactly the DNS names and IP addresses asked for.

Private keys are written with mode 0600.  Running ``init`` again keeps what
exists; ``renew`` re-issues the server certificate under the same CA (the
agents' pin does not change).

The CA published at ``GET /api/v1/tls/ca.pem`` and pinned in enrollment
tokens is ``settings.tls_ca_file`` when set (TLS terminated by a reverse proxy
with its own CA), otherwise ``<tls_dir>/ca.pem``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collector.settings import Settings

log = logging.getLogger(__name__)

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"

DEFAULT_CA_DAYS = 3650
DEFAULT_SERVER_DAYS = 365
# Tolerate agents whose clock is a little behind the collector's.
_BACKDATE = timedelta(hours=1)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TlsError(Exception):
    """The TLS directory is missing, incomplete or unreadable."""


@dataclass(frozen=True)
class TlsFiles:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / CA_CERT

    @property
    def ca_key(self) -> Path:
        return self.directory / CA_KEY

    @property
    def server_cert(self) -> Path:
        return self.directory / SERVER_CERT

    @property
    def server_key(self) -> Path:
        return self.directory / SERVER_KEY


@dataclass(frozen=True)
class InitResult:
    files: TlsFiles
    ca_created: bool
    server_issued: bool
    fingerprint: str
    dns_names: list[str]
    ip_addresses: list[str]
    server_not_after: datetime


# --- fingerprints ---------------------------------------------------------------------


def fingerprint(certificate: x509.Certificate) -> str:
    """``sha256:<hex>`` of the certificate's DER encoding (what agents pin)."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise TlsError(f"{path} is not a PEM certificate: {exc}") from exc


def file_fingerprint(path: Path) -> str:
    return fingerprint(load_certificate(path))


def published_ca_path(settings: Settings) -> Path | None:
    """The CA certificate agents should pin, or None when TLS is not configured."""
    if settings.tls_ca_file is not None:
        return settings.tls_ca_file
    if settings.tls_dir is not None:
        return TlsFiles(settings.tls_dir).ca_cert
    return None


def enrollment_fingerprint(settings: Settings) -> str | None:
    """Fingerprint of the published CA, for enrollment tokens; None without one.

    A configured but unreadable CA file is logged and treated as absent: the
    token is still issued, without a pin.
    """
    path = published_ca_path(settings)
    if path is None:
        return None
    try:
        return file_fingerprint(path)
    except TlsError as exc:
        log.warning("no CA fingerprint for enrollment tokens: %s", exc)
        return None


def enroll_command(token: str, ca_fingerprint: str | None, collector_url: str | None) -> str:
    """The command an agency admin runs on a host to enroll it with this token."""
    url = collector_url or "https://COLLECTOR"
    command = f"posture-agent enroll --collector {url} --token {token}"
    if ca_fingerprint:
        command += f" --ca-fingerprint {ca_fingerprint}"
    return command


# --- generation -------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically, mode 0600 from the start."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)  # an existing tmp file keeps its old mode through O_CREAT
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def default_hosts() -> list[str]:
    """This machine's fully qualified name (the default SAN)."""
    return [socket.getfqdn()]


def _ip_or_none(value: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _split_names(hosts: Sequence[str], ips: Sequence[str]) -> tuple[list[str], list[IpAddress]]:
    """DNS names and IP addresses, deduplicated in order; a --host that is an IP counts as one."""
    names: list[str] = []
    addresses: list[IpAddress] = []
    for value in [*hosts, *ips]:
        value = value.strip()
        if not value:
            continue
        address = _ip_or_none(value)
        if address is not None:
            if address not in addresses:
                addresses.append(address)
            continue
        if value in ips:
            raise TlsError(f"--ip {value!r} is not an IP address")
        name = value.lower().rstrip(".")
        if not name or any(c.isspace() or c in "/:@" for c in name):
            raise TlsError(f"invalid host name {value!r}")
        if name not in names:
            names.append(name)
    if not names and not addresses:
        raise TlsError("the server certificate needs at least one --host or --ip")
    return names, addresses


def _create_ca(files: TlsFiles, days: int, now: datetime) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Posture collector"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Posture collector CA {now:%Y-%m-%d}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    files.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(files.ca_key, _key_pem(key))
    _write_public(files.ca_cert, certificate_pem(cert))
    return cert


def _load_ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = load_certificate(files.ca_cert)
    try:
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except OSError as exc:
        raise TlsError(f"cannot read the CA key {files.ca_key}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise TlsError(f"{files.ca_key} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{files.ca_key} is not an ECDSA key")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise TlsError(f"{files.ca_key} does not belong to {files.ca_cert}")
    return cert, key


def _issue_server(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: list[str],
    addresses: list[IpAddress],
    days: int,
    now: datetime,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = names[0] if names else str(addresses[0])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(a) for a in addresses]
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    # Key first, then the certificate: a crash in between leaves a mismatched pair
    # that `tls renew` repairs, never a certificate without its key.
    _write_private(files.server_key, _key_pem(key))
    _write_public(files.server_cert, certificate_pem(cert))
    return cert


def server_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses of a certificate's subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return (
        list(san.get_values_for_type(x509.DNSName)),
        [str(a) for a in san.get_values_for_type(x509.IPAddress)],
    )


def init(
    directory: Path,
    hosts: Sequence[str] = (),
    ips: Sequence[str] = (),
    *,
    days: int = DEFAULT_SERVER_DAYS,
    ca_days: int = DEFAULT_CA_DAYS,
    renew: bool = False,
    now: datetime | None = None,
) -> InitResult:
    """Create the CA if missing, and the server certificate if missing (or ``renew``).

    An existing CA is always kept.  ``renew`` without hosts/ips re-issues the
    server certificate for the names of the current one.
    """
    if days < 1 or ca_days < 1:
        raise TlsError("certificate lifetimes must be at least one day")
    now = now or datetime.now(UTC)
    files = TlsFiles(directory)
    ca_created = False
    if files.ca_cert.exists() or files.ca_key.exists():
        if not (files.ca_cert.exists() and files.ca_key.exists()):
            raise TlsError(
                f"{directory} holds only one of {CA_CERT} and {CA_KEY}; restore the other "
                "or remove both to create a new CA (agents pinned to the old one must then "
                "re-enroll)"
            )
        ca_cert, ca_key = _load_ca(files)
    else:
        ca_cert = _create_ca(files, ca_days, now)
        ca_key = _load_ca(files)[1]
        ca_created = True
    if ca_cert.not_valid_after_utc <= now:
        raise TlsError(f"the CA in {files.ca_cert} expired at {ca_cert.not_valid_after_utc}")

    existing = files.server_cert.exists() and files.server_key.exists()
    if existing and not renew:
        cert = load_certificate(files.server_cert)
        names, addresses = server_names(cert)
        return InitResult(
            files,
            ca_created,
            False,
            fingerprint(ca_cert),
            names,
            addresses,
            cert.not_valid_after_utc,
        )
    if renew and not hosts and not ips and files.server_cert.exists():
        names_now, ips_now = server_names(load_certificate(files.server_cert))
        hosts, ips = names_now, ips_now
    elif not hosts and not ips:
        hosts = default_hosts()
    names, addresses = _split_names(hosts, ips)
    cert = _issue_server(files, ca_cert, ca_key, names, addresses, days, now)
    return InitResult(
        files,
        ca_created,
        True,
        fingerprint(ca_cert),
        names,
        [str(a) for a in addresses],
        cert.not_valid_after_utc,
    )


def server_files(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) for uvicorn; a clear error when they are missing."""
    files = TlsFiles(directory)
    missing = [p for p in (files.server_cert, files.server_key) if not p.is_file()]
    if missing:
        raise TlsError(
            f"no server certificate in {directory} (missing {', '.join(p.name for p in missing)}); "
            f"create it with: posture-collector tls init --dir {directory} --host NAME"
        )
    return files.server_cert, files.server_key


def enrollment_hints(token: str, settings: Settings) -> dict[str, str | None]:
    """``ca_fingerprint`` and ``enroll_command`` of a new enrollment token's response."""
    pin = enrollment_fingerprint(settings)
    return {
        "ca_fingerprint": pin,
        "enroll_command": enroll_command(token, pin, settings.public_url),
    }
