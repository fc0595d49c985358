"""Talking to the collector: enrollment, delivery of spooled reports, credential rotation.

Trust: when the collector's CA was pinned at enrollment (its SHA-256
fingerprint given with the token), ``<state_dir>/collector-ca.pem`` is the
only trust anchor for every request, with full host name verification.
Without a pin, https is verified with ``ca_file`` or the system trust store;
plain http is allowed only to loopback unless ``allow_insecure_http`` is set.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import platform
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from agent.config import (
    AgentConfig,
    Enrollment,
    check_collector_url,
    pem_fingerprint,
    split_token,
    write_atomic,
)
from agent.netprobe.plan import ProbePlan, ProbeResults
from agent.report import HostIdentity
from agent.spool import Spool

API = "/api/v1"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CA_PATH = f"{API}/tls/ca.pem"
CA_MAX_BYTES = 64 * 1024

log = logging.getLogger(__name__)


class EnrollmentError(Exception):
    pass


class CredentialRejected(Exception):
    """The collector no longer accepts this agent's credential (revoked?)."""


class TransportError(Exception):
    """The collector cannot be talked to safely: bad URL, missing or altered pinned CA."""


class RotationError(Exception):
    """The credential could not be rotated; the current one stays in use."""


# --- trust ----------------------------------------------------------------------------


def _system_context() -> ssl.SSLContext:
    """The operating system's trust store (certifi's bundle when the OS has none)."""
    context = ssl.create_default_context()
    if not context.cert_store_stats().get("x509_ca"):
        with contextlib.suppress(ImportError):
            import certifi

            context.load_verify_locations(cafile=certifi.where())
    return context


def pinned_context(pem: str) -> ssl.SSLContext:
    """TLS that trusts only ``pem`` and checks the host name (the default context's rules)."""
    context = ssl.create_default_context(cadata=pem)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _read_pinned_ca(config: AgentConfig, pin: str) -> str:
    path = config.pinned_ca_path
    try:
        pem = path.read_text(encoding="ascii")
        actual = pem_fingerprint(pem)
    except (OSError, ValueError) as exc:
        raise TransportError(
            f"the collector CA pinned at enrollment cannot be read from {path}: {exc}; "
            "re-enroll with --ca-fingerprint to restore it"
        ) from exc
    if not hmac.compare_digest(actual, pin):
        raise TransportError(
            f"{path} no longer matches the fingerprint pinned at enrollment ({pin}, file has "
            f"{actual}); refusing to trust it. Re-enroll with the collector's fingerprint"
        )
    return pem


def trust(config: AgentConfig, enrollment: Enrollment | None = None) -> ssl.SSLContext | bool:
    """How the collector's certificate is verified (the ``verify`` of httpx)."""
    if enrollment is not None and enrollment.ca_fingerprint:
        return pinned_context(_read_pinned_ca(config, enrollment.ca_fingerprint))
    if config.ca_file:
        try:
            return ssl.create_default_context(cafile=config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot load ca_file {config.ca_file}: {exc}") from exc
    if not config.verify_tls:
        return False
    return _system_context()


def connection(enrollment: Enrollment, config: AgentConfig) -> tuple[str, ssl.SSLContext | bool]:
    """(base URL, verify) for requests of an enrolled agent; TransportError when unsafe."""
    try:
        url = check_collector_url(
            enrollment.collector_url, config.allow_insecure_http, origin="enrollment"
        )
    except ValueError as exc:
        raise TransportError(str(exc)) from exc
    if enrollment.ca_fingerprint and urlsplit(url).scheme != "https":
        raise TransportError(
            f"the collector CA is pinned but the collector URL {url} is not https://"
        )
    return url, trust(config, enrollment)


def _describe(exc: httpx.HTTPError) -> str:
    """An httpx error, with TLS verification failures spelt out."""
    text = str(exc)
    if isinstance(exc, httpx.ConnectError) and (
        "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text.lower()
    ):
        return (
            "TLS verification of the collector failed: its certificate is not signed by the "
            "trusted (pinned) CA or does not name the host in the collector URL; nothing was "
            f"sent ({text})"
        )
    return f"collector unreachable: {text}"


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return f"HTTP {response.status_code}: {detail or response.text[:300]}"


# --- enrollment -------------------------------------------------------------------------


def fetch_pinned_ca(url: str, pin: str) -> str:
    """Download the collector's CA without verification and accept it only if it matches ``pin``.

    Nothing is trusted yet at this point: the certificate is compared with the
    fingerprint the operator got out of band (with the enrollment token).
    """
    try:
        with httpx.stream(
            "GET", f"{url}{CA_PATH}", timeout=TIMEOUT, verify=False, follow_redirects=False
        ) as response:
            if response.status_code == 404:
                raise EnrollmentError(
                    f"the collector at {url} publishes no CA certificate ({CA_PATH}: "
                    f"{_detail_stream(response)}), but a CA fingerprint was given; check the "
                    "URL, or enroll without --ca-fingerprint if TLS is verified otherwise"
                )
            if response.status_code != 200:
                raise EnrollmentError(
                    f"cannot fetch the collector CA from {url}{CA_PATH}: HTTP "
                    f"{response.status_code}"
                )
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > CA_MAX_BYTES:
                    raise EnrollmentError(f"{url}{CA_PATH} is too large for a CA certificate")
    except httpx.HTTPError as exc:
        raise EnrollmentError(f"cannot reach the collector at {url}: {exc}") from exc
    try:
        pem = body.decode("ascii")
        actual = pem_fingerprint(pem)
    except ValueError as exc:
        raise EnrollmentError(f"{url}{CA_PATH} is not a PEM certificate: {exc}") from exc
    if not hmac.compare_digest(actual, pin):
        raise EnrollmentError(
            f"the collector's CA certificate does not match the pinned fingerprint: expected "
            f"{pin}, got {actual}. Possible interception (someone between this host and the "
            "collector), or a wrong fingerprint; nothing was sent and nothing saved"
        )
    return pem


def _detail_stream(response: httpx.Response) -> str:
    try:
        response.read()
    except httpx.HTTPError:
        return f"HTTP {response.status_code}"
    return _detail(response)


def enroll(
    collector_url: str,
    token: str,
    identity: HostIdentity,
    config: AgentConfig,
    ca_fingerprint: str | None = None,
) -> Enrollment:
    """Exchange an agency enrollment token for this host's own credential.

    ``token`` may carry the CA fingerprint (``pe_…#sha256:…``).  With a
    fingerprint, the collector's CA is fetched, checked against it and from
    then on is the only CA trusted for this collector.
    """
    try:
        token, pin = split_token(token, ca_fingerprint)
        url = check_collector_url(collector_url, config.allow_insecure_http, origin="--collector")
    except ValueError as exc:
        raise EnrollmentError(str(exc)) from exc
    ca_pem: str | None = None
    verify: ssl.SSLContext | bool
    if pin is not None:
        if urlsplit(url).scheme != "https":
            raise EnrollmentError(
                f"a CA fingerprint was given but the collector URL {url} is not https://"
            )
        ca_pem = fetch_pinned_ca(url, pin)
        verify = pinned_context(ca_pem)
    else:
        try:
            verify = trust(config)
        except TransportError as exc:
            raise EnrollmentError(str(exc)) from exc
    payload = {
        "token": token,
        "hostname": identity.hostname,
        "machine_id": identity.machine_id,
        "fqdn": identity.fqdn,
        "os_family": identity.os_family,
        "role": identity.role,
    }
    try:
        response = httpx.post(f"{url}{API}/enroll", json=payload, timeout=TIMEOUT, verify=verify)
    except httpx.HTTPError as exc:
        raise EnrollmentError(
            f"cannot enroll with the collector at {url}: {_describe(exc)}"
        ) from exc
    if response.status_code not in (200, 201):
        raise EnrollmentError(f"enrollment refused: {_detail(response)}")
    data = response.json()
    enrollment = Enrollment(
        collector_url=url,
        agent_id=str(data["agent_id"]),
        host_id=int(data["host_id"]),
        credential=data["credential"],
        agency=data["agency"],
        ca_fingerprint=pin,
    )
    # The CA first: an enrollment.json naming a pin is never left without its CA.
    if ca_pem is not None:
        write_atomic(config.pinned_ca_path, ca_pem, mode=0o644)
    else:
        config.pinned_ca_path.unlink(missing_ok=True)
    enrollment.save(config.state_dir)
    return enrollment


# --- reports ------------------------------------------------------------------------------


@dataclass
class FlushResult:
    delivered: int = 0
    duplicates: int = 0
    rejected: int = 0
    resynced: int = 0  # reports re-sent with a full inventory after 409 resync_required
    remaining: int = 0
    error: str | None = None
    delivered_ids: list[str] = field(default_factory=list)
    rotate_credential: bool = False  # the collector asked for a credential rotation


RESYNC_REQUIRED = "resync_required"


def user_agent() -> str:
    from agent import __version__

    return f"posture-agent/{__version__} ({platform.system()}; {socket.gethostname()})"


def _json(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _code(response: httpx.Response) -> str | None:
    return _json(response).get("code")


def flush(spool: Spool, enrollment: Enrollment, config: AgentConfig) -> FlushResult:
    """Send spooled reports oldest first; stop at the first transient failure.

    Stopping keeps the order: a newer report is never delivered before an
    older one that is still waiting.  Each body is prepared at send time
    (``Spool.prepare``): it carries ``delivery`` (spool depth, attempts, and
    reports evicted from the spool not yet reported), and a delta whose base
    the collector does not hold is sent as a full inventory.  A 409 with code
    ``resync_required`` makes the same report go again at once, in full;
    only a full inventory refused that way is given up (rejected table).

    Nothing is sent when the collector cannot be verified (TLS, pinned CA):
    the reports stay in the spool.
    """
    result = FlushResult()
    try:
        base_url, verify = connection(enrollment, config)
    except TransportError as exc:
        result.error = str(exc)
        result.remaining = spool.depth()
        return result
    headers = {
        "Authorization": f"Bearer {enrollment.credential}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "User-Agent": user_agent(),
    }
    with httpx.Client(base_url=base_url, timeout=TIMEOUT, verify=verify) as http:
        while (item := spool.next_pending()) is not None:
            outgoing = spool.prepare(item)
            try:
                response = http.post(f"{API}/reports", content=outgoing.body, headers=headers)
            except httpx.HTTPError as exc:
                result.error = _describe(exc)
                spool.failed_attempt(item.report_id, result.error)
                result.remaining = spool.depth()
                return result
            code = response.status_code
            if code in (200, 201):
                spool.ack(item.report_id, outgoing)
                result.delivered_ids.append(item.report_id)
                answer = _json(response)
                if answer.get("rotate_credential") is True:
                    result.rotate_credential = True
                if answer.get("status") == "duplicate":
                    result.duplicates += 1
                else:
                    result.delivered += 1
            elif code == 401:
                spool.failed_attempt(item.report_id, _detail(response))
                raise CredentialRejected(_detail(response))
            elif code == 409 and _code(response) == RESYNC_REQUIRED and not outgoing.full:
                # The collector cannot apply this delta: the same report, full inventory.
                spool.require_full(item.report_id)
                result.resynced += 1
            elif code in (400, 409, 413, 422):
                # Permanent refusal: resending the same bytes cannot succeed.
                spool.reject(item.report_id, code, _detail(response))
                result.rejected += 1
            else:
                result.error = _detail(response)
                spool.failed_attempt(item.report_id, result.error)
                result.remaining = spool.depth()
                return result
    result.remaining = spool.depth()
    return result


# --- credential rotation ------------------------------------------------------------------


@contextlib.contextmanager
def credential_lock(state_dir: Path) -> Iterator[None]:
    """Serialise rotations between the service and `posture-agent rotate-credential`."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: a single agent process
        yield
        return
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / ".credential.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True)
class Rotation:
    enrollment: Enrollment  # with the new credential, already saved
    old_valid_until: datetime | None  # when the previous credential stops working at the latest
    confirmed: bool  # the new credential was used once: the old one is revoked already
    rotated: bool = True  # False: another process had rotated it meanwhile


def _agent_headers(enrollment: Enrollment) -> dict[str, str]:
    return {"Authorization": f"Bearer {enrollment.credential}", "User-Agent": user_agent()}


def _agent_request(
    method: Literal["GET", "POST"],
    path: str,
    enrollment: Enrollment,
    target: tuple[str, ssl.SSLContext | bool],
    error: type[Exception],
    **kwargs: Any,
) -> httpx.Response:
    """One agent-authenticated call; a transport failure raises ``error``, 401
    raises ``CredentialRejected``, any other answer is returned."""
    base_url, verify = target
    headers = _agent_headers(enrollment) | kwargs.pop("headers", {})
    try:
        send = httpx.get if method == "GET" else httpx.post
        response = send(
            f"{base_url}{API}{path}",
            headers=headers,
            timeout=TIMEOUT,
            verify=verify,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        raise error(_describe(exc)) from exc
    if response.status_code == 401:
        raise CredentialRejected(_detail(response))
    return response


def confirm_credential(enrollment: Enrollment, config: AgentConfig) -> bool:
    """Use the credential once (GET /agent/credential); True when the collector accepted it.

    The first use of a rotated credential makes the collector revoke the old one.
    """
    target = connection(enrollment, config)
    try:
        response = _agent_request("GET", "/agent/credential", enrollment, target, TransportError)
    except TransportError as exc:
        log.warning("could not confirm the new credential: %s", exc)
        return False
    return response.status_code == 200


def rotate_credential(config: AgentConfig, used: Enrollment | None = None) -> Rotation:
    """Get a new credential from the collector and save it before anything uses it.

    ``used`` is the enrollment the caller has been using: if the file already
    holds another credential, another process rotated meanwhile and that one
    is returned.  A lost response is harmless: the old credential stays valid
    (grace period) and the next rotation replaces the unused one.
    """
    with credential_lock(config.state_dir):
        current = Enrollment.load(config.state_dir)
        if current is None:
            raise RotationError(
                f"this host is not enrolled (no {Enrollment.path(config.state_dir)})"
            )
        if used is not None and current.credential != used.credential:
            return Rotation(current, None, confirmed=False, rotated=False)
        try:
            target = connection(current, config)
        except TransportError as exc:
            raise RotationError(str(exc)) from exc
        response = _agent_request(
            "POST", "/agent/credential/rotate", current, target, RotationError
        )
        if response.status_code == 404:
            raise RotationError(
                f"the collector does not support credential rotation ({_detail(response)})"
            )
        if response.status_code != 201:
            raise RotationError(f"rotation refused: {_detail(response)}")
        data = _json(response)
        try:
            new = replace(
                current, credential=str(data["credential"]), agent_id=str(data["agent_id"])
            )
            valid_until = datetime.fromisoformat(str(data["old_valid_until"]))
        except (KeyError, ValueError) as exc:
            raise RotationError(f"invalid rotation answer from the collector: {exc}") from exc
        # Saved (atomically, fsync'd) before its first use: the collector revokes
        # the old credential as soon as the new one is used.
        new.save(config.state_dir)
    try:
        confirmed = confirm_credential(new, config)
    except (CredentialRejected, TransportError) as exc:
        log.warning("the new credential was not confirmed: %s", exc)
        confirmed = False
    return Rotation(new, valid_until, confirmed=confirmed)


# --- segmentation probe plans ---------------------------------------------------------


class ProbeExchangeError(Exception):
    """The collector could not be reached or refused a probe plan exchange."""


def _probe_connection(
    enrollment: Enrollment, config: AgentConfig
) -> tuple[str, ssl.SSLContext | bool]:
    try:
        return connection(enrollment, config)
    except TransportError as exc:
        raise ProbeExchangeError(str(exc)) from exc


def fetch_probe_plan(enrollment: Enrollment, config: AgentConfig) -> ProbePlan | None:
    """This agent's probe plan; None when the collector has none for it (404/409/204)."""
    target = _probe_connection(enrollment, config)
    response = _agent_request("GET", "/agent/probe-plan", enrollment, target, ProbeExchangeError)
    if response.status_code in (404, 409):
        log.info("no probe plan for this agent: %s", _detail(response))
        return None
    if response.status_code == 204:
        log.info("no probe plan for this agent (HTTP 204)")
        return None
    if response.status_code != 200:
        raise ProbeExchangeError(f"probe plan refused: {_detail(response)}")
    try:
        return ProbePlan.model_validate(response.json())
    except ValueError as exc:  # invalid JSON or pydantic ValidationError
        raise ProbeExchangeError(f"invalid probe plan from the collector: {exc}") from exc


def post_probe_results(enrollment: Enrollment, config: AgentConfig, results: ProbeResults) -> None:
    """Deliver the results of a probe plan."""
    response = _agent_request(
        "POST",
        "/agent/probe-results",
        enrollment,
        _probe_connection(enrollment, config),
        ProbeExchangeError,
        content=results.model_dump_json(),
        headers={"Content-Type": "application/json"},
    )
    if response.status_code not in (200, 201, 202, 204):
        raise ProbeExchangeError(f"probe results refused: {_detail(response)}")
