"""The collector's own PKI (collector/tls.py), its CLI and GET /api/v1/tls/ca.pem."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from collector import cli, tls
from collector.settings import Settings
from tests.collector.conftest import ADMIN_HEADERS


def _der_fingerprint(path: Path) -> str:
    """Independent of collector.tls: the stdlib's PEM decoder and hashlib."""
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _verify(ca: Path, leaf: Path, name: x509.GeneralName) -> None:
    """Full path validation of the server certificate for ``name`` (raises on failure)."""
    store = Store([x509.load_pem_x509_certificate(ca.read_bytes())])
    builder = PolicyBuilder().store(store)
    builder.build_server_verifier(name).verify(
        x509.load_pem_x509_certificate(leaf.read_bytes()), []
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_a_p256_ca_and_a_server_certificate_with_exactly_the_sans(
    tmp_path: Path,
) -> None:
    result = tls.init(tmp_path / "pki", ["collector.sotttt.example.vn"], ["10.1.2.3"])
    files = result.files
    assert result.ca_created and result.server_issued

    ca = tls.load_certificate(files.ca_cert)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > timedelta(days=9 * 365)

    server = tls.load_certificate(files.server_cert)
    assert server.issuer == ca.subject
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["collector.sotttt.example.vn"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    # localhost / 127.0.0.1 are not added behind the operator's back
    assert "localhost" not in san.get_values_for_type(x509.DNSName)

    _verify(files.ca_cert, files.server_cert, x509.DNSName("collector.sotttt.example.vn"))
    _verify(files.ca_cert, files.server_cert, x509.IPAddress(ipaddress.ip_address("10.1.2.3")))
    with pytest.raises(VerificationError):
        _verify(files.ca_cert, files.server_cert, x509.DNSName("other.example.vn"))

    assert _mode(files.ca_key) == 0o600
    assert _mode(files.server_key) == 0o600
    assert result.fingerprint == _der_fingerprint(files.ca_cert)
    assert result.fingerprint == tls.file_fingerprint(files.ca_cert)


def test_default_host_is_the_machine_fqdn(tmp_path: Path) -> None:
    result = tls.init(tmp_path / "pki")
    assert result.dns_names == [socket.getfqdn().lower().rstrip(".")]
    assert result.ip_addresses == []


def test_init_is_idempotent_and_renew_keeps_the_ca(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    first = tls.init(directory, ["localhost"], ["127.0.0.1"])
    files = first.files
    ca_bytes = files.ca_cert.read_bytes()
    ca_key_bytes = files.ca_key.read_bytes()
    server_bytes = files.server_cert.read_bytes()

    again = tls.init(directory, ["other.example.vn"])
    assert not again.ca_created and not again.server_issued
    assert again.fingerprint == first.fingerprint
    assert files.server_cert.read_bytes() == server_bytes  # init never replaces it
    assert (again.dns_names, again.ip_addresses) == (["localhost"], ["127.0.0.1"])

    renewed = tls.init(directory, renew=True)
    assert not renewed.ca_created and renewed.server_issued
    assert renewed.fingerprint == first.fingerprint
    assert files.ca_cert.read_bytes() == ca_bytes
    assert files.ca_key.read_bytes() == ca_key_bytes
    assert files.server_cert.read_bytes() != server_bytes
    assert (renewed.dns_names, renewed.ip_addresses) == (["localhost"], ["127.0.0.1"])
    _verify(files.ca_cert, files.server_cert, x509.DNSName("localhost"))

    moved = tls.init(directory, ["new.example.vn"], renew=True, days=30)
    assert moved.fingerprint == first.fingerprint
    assert (moved.dns_names, moved.ip_addresses) == (["new.example.vn"], [])
    server = tls.load_certificate(files.server_cert)
    assert server.not_valid_after_utc - datetime.now(UTC) <= timedelta(days=30)
    _verify(files.ca_cert, files.server_cert, x509.DNSName("new.example.vn"))


def test_half_a_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    files = tls.init(directory, ["localhost"]).files
    files.ca_key.unlink()
    ca_bytes = files.ca_cert.read_bytes()
    with pytest.raises(tls.TlsError, match="only one of"):
        tls.init(directory, ["localhost"], renew=True)
    assert files.ca_cert.read_bytes() == ca_bytes


def test_invalid_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(tls.TlsError, match="not an IP address"):
        tls.init(tmp_path / "a", ["localhost"], ["not-an-ip"])
    with pytest.raises(tls.TlsError, match="invalid host name"):
        tls.init(tmp_path / "b", ["https://collector"])


def test_cli_init_renew_and_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    directory = tmp_path / "pki"
    args = ["tls", "init", "--dir", str(directory), "--host", "localhost", "--ip", "127.0.0.1"]
    assert cli.main(args) == 0
    out = capsys.readouterr()
    pin = out.out.strip()
    assert pin == _der_fingerprint(directory / "ca.pem")
    assert "created CA" in out.err

    assert cli.main(["tls", "renew", "--dir", str(directory)]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == pin and "kept the existing CA" in out.err

    assert cli.main(["tls", "fingerprint", "--ca-file", str(directory / "ca.pem")]) == 0
    assert capsys.readouterr().out.strip() == pin
    assert cli.main(["tls", "fingerprint", "--dir", str(tmp_path / "missing")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_serve_refuses_a_tls_dir_without_a_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["serve", "--tls-dir", str(empty)]) == 2
    assert "tls init" in capsys.readouterr().err


def test_enrollment_fingerprint_follows_the_settings(tmp_path: Path) -> None:
    assert tls.enrollment_fingerprint(Settings()) is None
    own = tls.init(tmp_path / "own", ["localhost"])
    other = tls.init(tmp_path / "proxy", ["localhost"])
    assert tls.enrollment_fingerprint(Settings(tls_dir=tmp_path / "own")) == own.fingerprint
    # a proxy's CA file wins over the directory
    proxied = Settings(tls_dir=tmp_path / "own", tls_ca_file=other.files.ca_cert)
    assert tls.enrollment_fingerprint(proxied) == other.fingerprint
    assert tls.enrollment_fingerprint(Settings(tls_dir=tmp_path / "nothing-here")) is None


def test_ca_pem_endpoint(tmp_path: Path, make_api) -> None:
    result = tls.init(tmp_path / "pki", ["localhost"])
    api = make_api(tls_dir=tmp_path / "pki")
    r = api.client.get("/api/v1/tls/ca.pem")  # public: no credential
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-pem-file")
    assert r.content == result.files.ca_cert.read_bytes()
    served = tmp_path / "served.pem"
    served.write_bytes(r.content)
    assert _der_fingerprint(served) == result.fingerprint

    bare = make_api()
    r = bare.client.get("/api/v1/tls/ca.pem")
    assert r.status_code == 404
    assert "no CA configured" in r.json()["detail"]


def test_enrollment_token_carries_the_pin_and_the_command(tmp_path: Path, make_api) -> None:
    result = tls.init(tmp_path / "pki", ["localhost"])
    api = make_api(tls_dir=tmp_path / "pki", public_url="https://posture.sotttt.example.vn")
    agency = api.create_agency()
    r = api.client.post(
        f"/api/v1/agencies/{agency['id']}/enrollment-tokens", json={}, headers=ADMIN_HEADERS
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["ca_fingerprint"] == result.fingerprint
    assert body["enroll_command"] == (
        "posture-agent enroll --collector https://posture.sotttt.example.vn "
        f"--token {body['token']} --ca-fingerprint {result.fingerprint}"
    )

    bare = make_api()
    agency = bare.create_agency()
    r = bare.client.post(
        f"/api/v1/agencies/{agency['id']}/enrollment-tokens", json={}, headers=ADMIN_HEADERS
    )
    assert r.json()["ca_fingerprint"] is None
    assert "--ca-fingerprint" not in r.json()["enroll_command"]


def test_token_create_prints_the_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = tls.init(tmp_path / "pki", ["localhost"])
    monkeypatch.setenv("POSTURE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("POSTURE_TLS_DIR", str(tmp_path / "pki"))
    assert cli.main(["agency", "create", "--code", "so-tttt", "--name", "Sở", "--level", "3"]) == 0
    capsys.readouterr()
    assert cli.main(["token", "create", "--agency", "so-tttt"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("pe_") and "\n" not in token  # stdout stays the bare token
    assert f"collector CA fingerprint: {result.fingerprint}" in out.err
    assert f"{token}#{result.fingerprint}" in out.err
    assert f"--token {token} --ca-fingerprint {result.fingerprint}" in out.err
