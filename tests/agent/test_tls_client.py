"""Agent transport security: URL rules, CA pins, atomic credential writes, rotation order.

The TLS handshakes themselves are exercised against the real collector in
tests/e2e/test_tls.py; here the rules around them are checked.
"""

from __future__ import annotations

import json
import os
import ssl
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent import client
from agent.config import (
    AgentConfig,
    Enrollment,
    check_collector_url,
    normalise_fingerprint,
    pem_fingerprint,
    split_token,
)
from agent.report import HostIdentity
from agent.spool import Spool
from tests.factories import NOW, make_report

PIN = "sha256:" + "0123456789abcdef" * 4
TOKEN = "pe_AbC-dEf_123"


# --- configuration --------------------------------------------------------------------


def _write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8080",
        "http://posture.sotttt.example.vn",
        "http://127.0.0.1.example.vn",
        "http://[2001:db8::1]:8080",
    ],
)
def test_plain_http_off_loopback_is_refused_by_the_config(tmp_path: Path, url: str) -> None:
    path = _write_config(tmp_path, f'collector_url = "{url}"\n')
    with pytest.raises(ValueError, match="refusing plain http://") as refused:
        AgentConfig.load(path)
    assert "allow_insecure_http = true" in str(refused.value)

    allowed = _write_config(tmp_path, f'collector_url = "{url}"\nallow_insecure_http = true\n')
    assert AgentConfig.load(allowed).allow_insecure_http is True


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:8080/",
        "http://[::1]:8080",
        "https://10.0.0.5",
        "https://posture.sotttt.example.vn",
    ],
)
def test_https_and_loopback_http_are_accepted(tmp_path: Path, url: str) -> None:
    config = AgentConfig.load(_write_config(tmp_path, f'collector_url = "{url}"\n'))
    assert config.collector_url == url
    assert check_collector_url(url, False) == url.rstrip("/")


@pytest.mark.parametrize("url", ["ftp://collector", "collector.example.vn", "https://"])
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="must be https://"):
        check_collector_url(url, True)


def test_tls_switches_must_be_booleans(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allow_insecure_http must be true or false"):
        AgentConfig.load(_write_config(tmp_path, 'allow_insecure_http = "yes"\n'))


# --- tokens and fingerprints ----------------------------------------------------------------


def test_combined_token_carries_the_fingerprint() -> None:
    assert split_token(f"{TOKEN}#{PIN}") == (TOKEN, PIN)
    assert split_token(TOKEN, PIN) == (TOKEN, PIN)
    assert split_token(f"{TOKEN}#{PIN}", PIN) == (TOKEN, PIN)
    assert split_token(f" {TOKEN} ") == (TOKEN, None)
    # upper case and openssl-style colons name the same certificate
    colons = ":".join(PIN[7:][i : i + 2] for i in range(0, 64, 2)).upper()
    assert split_token(f"{TOKEN}#SHA256:{colons}") == (TOKEN, PIN)
    assert normalise_fingerprint(PIN[7:]) == PIN


def test_conflicting_or_malformed_fingerprints_are_refused() -> None:
    other = "sha256:" + "f" * 64
    with pytest.raises(ValueError, match="differs from --ca-fingerprint"):
        split_token(f"{TOKEN}#{PIN}", other)
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "g" * 64):
        with pytest.raises(ValueError, match="invalid CA fingerprint"):
            split_token(f"{TOKEN}#{bad}")
    with pytest.raises(ValueError, match="empty enrollment token"):
        split_token(f"#{PIN}")


def test_pem_fingerprint_needs_exactly_one_certificate(tmp_path: Path) -> None:
    from collector import tls  # the collector's generator, to get real certificates

    result = tls.init(tmp_path / "pki", ["localhost"])
    pem = result.files.ca_cert.read_text()
    assert pem_fingerprint(pem) == result.fingerprint
    with pytest.raises(ValueError, match="exactly one"):
        pem_fingerprint(pem + result.files.server_cert.read_text())
    with pytest.raises(ValueError, match="exactly one"):
        pem_fingerprint("not a certificate")


# --- enrollment refusals before any connection -----------------------------------------------


def _identity() -> HostIdentity:
    return HostIdentity(hostname="pc-01", machine_id="m-1", os_family="linux", role="workstation")


def _no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> httpx.Response:
        calls.append(str(args))
        raise AssertionError("no request may be made")

    for name in ("get", "post", "stream"):
        monkeypatch.setattr(client.httpx, name, refuse)
    return calls


def test_enroll_refuses_http_off_loopback_and_pins_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _no_network(monkeypatch)
    config = AgentConfig(state_dir=tmp_path / "state")
    with pytest.raises(client.EnrollmentError, match="refusing plain http://"):
        client.enroll("http://10.0.0.5", TOKEN, _identity(), config)
    with pytest.raises(client.EnrollmentError, match="not https://"):
        client.enroll("http://127.0.0.1:8080", f"{TOKEN}#{PIN}", _identity(), config)
    with pytest.raises(client.EnrollmentError, match="invalid CA fingerprint"):
        client.enroll("https://collector", TOKEN, _identity(), config, ca_fingerprint="x")
    assert calls == []
    assert not (tmp_path / "state").exists()


# --- the pinned CA on disk ----------------------------------------------------------------------


def _pinned(tmp_path: Path) -> tuple[AgentConfig, Enrollment, str]:
    from collector import tls

    result = tls.init(tmp_path / "pki", ["localhost"])
    config = AgentConfig(state_dir=tmp_path / "state")
    config.state_dir.mkdir()
    config.pinned_ca_path.write_bytes(result.files.ca_cert.read_bytes())
    enrollment = Enrollment(
        collector_url="https://localhost:8443",
        agent_id="1",
        host_id=1,
        credential="pa_1_secret",
        agency={},
        ca_fingerprint=result.fingerprint,
    )
    return config, enrollment, result.fingerprint


def test_the_pinned_ca_is_the_only_trust_anchor(tmp_path: Path) -> None:
    config, enrollment, _ = _pinned(tmp_path)
    config.ca_file = "/nonexistent/ca.pem"  # ignored once a CA is pinned
    config.verify_tls = False  # ignored too: the pin always verifies
    context = client.trust(config, enrollment)
    assert not isinstance(context, bool)
    assert context.check_hostname is True
    pinned_der = ssl.PEM_cert_to_DER_cert(config.pinned_ca_path.read_text())
    # exactly the pinned CA, no system CA next to it
    assert context.get_ca_certs(binary_form=True) == [pinned_der]


def test_a_tampered_pinned_ca_stops_delivery_and_keeps_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector import tls

    config, enrollment, pin = _pinned(tmp_path)
    impostor = tls.init(tmp_path / "impostor", ["localhost"])
    config.pinned_ca_path.write_bytes(impostor.files.ca_cert.read_bytes())
    calls = _no_network(monkeypatch)
    monkeypatch.setattr(client.httpx, "Client", lambda *a, **k: pytest.fail("no client"))

    spool = Spool(tmp_path / "spool.sqlite")
    spool.put(make_report(now=NOW))
    result = client.flush(spool, enrollment, config)
    assert result.error is not None and "no longer matches" in result.error
    assert pin in result.error
    assert result.remaining == 1 and spool.depth() == 1
    assert calls == []

    config.pinned_ca_path.unlink()
    result = client.flush(spool, enrollment, config)
    assert result.error is not None and "cannot be read" in result.error
    assert spool.depth() == 1


# --- credential writes and rotation ---------------------------------------------------------------


def _enrollment(tmp_path: Path, credential: str = "pa_1_old") -> tuple[AgentConfig, Enrollment]:
    config = AgentConfig(state_dir=tmp_path / "state")
    enrollment = Enrollment(
        collector_url="https://collector.test",
        agent_id="1",
        host_id=7,
        credential=credential,
        agency={"code": "T"},
    )
    enrollment.save(config.state_dir)
    return config, enrollment


def test_credential_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, enrollment = _enrollment(tmp_path)
    path = Enrollment.path(config.state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    original = path.read_bytes()

    def crash(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        Enrollment(**{**enrollment.__dict__, "credential": "pa_2_new"}).save(config.state_dir)
    monkeypatch.undo()
    # the old credential is intact and no temporary file is left behind
    assert path.read_bytes() == original
    assert sorted(p.name for p in config.state_dir.iterdir()) == ["enrollment.json"]

    Enrollment(**{**enrollment.__dict__, "credential": "pa_2_new"}).save(config.state_dir)
    loaded = Enrollment.load(config.state_dir)
    assert loaded is not None and loaded.credential == "pa_2_new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _collector_stub(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, answer: httpx.Response
) -> list[tuple[str, str, str | None]]:
    """Record (method, path, credential on disk at that moment) for each request."""
    seen: list[tuple[str, str, str | None]] = []

    def on_disk() -> str | None:
        loaded = Enrollment.load(state_dir)
        return loaded.credential if loaded else None

    def post(url: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        seen.append(("POST", httpx.URL(url).path, on_disk()))
        assert headers["Authorization"] == "Bearer pa_1_old"
        return answer

    def get(url: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        seen.append(("GET", httpx.URL(url).path, on_disk()))
        assert headers["Authorization"] == "Bearer pa_9_new"
        return httpx.Response(200, json={"agent_id": 9})

    monkeypatch.setattr(client.httpx, "post", post)
    monkeypatch.setattr(client.httpx, "get", get)
    return seen


def test_rotation_saves_the_new_credential_before_using_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, enrollment = _enrollment(tmp_path)
    answer = httpx.Response(
        201,
        json={
            "agent_id": 9,
            "host_id": 7,
            "credential": "pa_9_new",
            "replaces_id": 1,
            "old_valid_until": "2026-01-02T03:04:05+00:00",
        },
    )
    seen = _collector_stub(monkeypatch, config.state_dir, answer)
    rotation = client.rotate_credential(config, enrollment)
    assert seen == [
        ("POST", "/api/v1/agent/credential/rotate", "pa_1_old"),
        # first use of the new credential: it is already on disk
        ("GET", "/api/v1/agent/credential", "pa_9_new"),
    ]
    assert rotation.confirmed and rotation.rotated
    assert rotation.enrollment.credential == "pa_9_new" and rotation.enrollment.agent_id == "9"
    saved = json.loads(Enrollment.path(config.state_dir).read_text())
    assert saved["credential"] == "pa_9_new" and saved["host_id"] == 7


def test_a_failed_rotation_keeps_the_current_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, enrollment = _enrollment(tmp_path)
    _collector_stub(monkeypatch, config.state_dir, httpx.Response(503, text="busy"))
    with pytest.raises(client.RotationError, match="HTTP 503"):
        client.rotate_credential(config, enrollment)
    loaded = Enrollment.load(config.state_dir)
    assert loaded is not None and loaded.credential == "pa_1_old"


def test_rotation_by_another_process_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, enrollment = _enrollment(tmp_path)
    _enrollment(tmp_path, credential="pa_5_rotated_elsewhere")
    calls = _no_network(monkeypatch)
    rotation = client.rotate_credential(config, enrollment)
    assert not rotation.rotated and rotation.enrollment.credential == "pa_5_rotated_elsewhere"
    assert calls == []


def test_flush_reports_the_collectors_rotation_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, enrollment = _enrollment(tmp_path)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(201, json={"status": "accepted", "rotate_credential": True})
    )
    real = httpx.Client
    monkeypatch.setattr(client.httpx, "Client", lambda *a, **k: real(*a, transport=transport, **k))
    spool = Spool(tmp_path / "spool.sqlite")
    spool.put(make_report(now=NOW))
    result = client.flush(spool, enrollment, config)
    assert result.delivered == 1 and result.rotate_credential is True
