"""Talking to the collector: enrollment and delivery of spooled reports."""

from __future__ import annotations

import logging
import platform
import socket
from dataclasses import dataclass, field

import httpx

from agent.config import AgentConfig, Enrollment
from agent.netprobe.plan import ProbePlan, ProbeResults
from agent.report import HostIdentity
from agent.spool import Spool

API = "/api/v1"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class EnrollmentError(Exception):
    pass


class CredentialRejected(Exception):
    """The collector no longer accepts this agent's credential (revoked?)."""


def _verify(config: AgentConfig) -> bool | str:
    if config.ca_file:
        return config.ca_file
    return config.verify_tls


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return f"HTTP {response.status_code}: {detail or response.text[:300]}"


def enroll(
    collector_url: str, token: str, identity: HostIdentity, config: AgentConfig
) -> Enrollment:
    """Exchange an agency enrollment token for this host's own credential."""
    url = collector_url.rstrip("/")
    payload = {
        "token": token,
        "hostname": identity.hostname,
        "machine_id": identity.machine_id,
        "fqdn": identity.fqdn,
        "os_family": identity.os_family,
        "role": identity.role,
    }
    try:
        response = httpx.post(
            f"{url}{API}/enroll", json=payload, timeout=TIMEOUT, verify=_verify(config)
        )
    except httpx.HTTPError as exc:
        raise EnrollmentError(f"cannot reach the collector at {url}: {exc}") from exc
    if response.status_code not in (200, 201):
        raise EnrollmentError(f"enrollment refused: {_detail(response)}")
    data = response.json()
    enrollment = Enrollment(
        collector_url=url,
        agent_id=str(data["agent_id"]),
        host_id=int(data["host_id"]),
        credential=data["credential"],
        agency=data["agency"],
    )
    enrollment.save(config.state_dir)
    return enrollment


@dataclass
class FlushResult:
    delivered: int = 0
    duplicates: int = 0
    rejected: int = 0
    resynced: int = 0  # reports re-sent with a full inventory after 409 resync_required
    remaining: int = 0
    error: str | None = None
    delivered_ids: list[str] = field(default_factory=list)


RESYNC_REQUIRED = "resync_required"


def user_agent() -> str:
    from agent import __version__

    return f"posture-agent/{__version__} ({platform.system()}; {socket.gethostname()})"


def _code(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data.get("code") if isinstance(data, dict) else None


def flush(spool: Spool, enrollment: Enrollment, config: AgentConfig) -> FlushResult:
    """Send spooled reports oldest first; stop at the first transient failure.

    Stopping keeps the order: a newer report is never delivered before an
    older one that is still waiting.  Each body is prepared at send time
    (``Spool.prepare``): it carries ``delivery`` (spool depth, attempts, and
    reports evicted from the spool not yet reported), and a delta whose base
    the collector does not hold is sent as a full inventory.  A 409 with code
    ``resync_required`` makes the same report go again at once, in full;
    only a full inventory refused that way is given up (rejected table).
    """
    result = FlushResult()
    headers = {
        "Authorization": f"Bearer {enrollment.credential}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "User-Agent": user_agent(),
    }
    with httpx.Client(
        base_url=enrollment.collector_url, timeout=TIMEOUT, verify=_verify(config)
    ) as http:
        while (item := spool.next_pending()) is not None:
            outgoing = spool.prepare(item)
            try:
                response = http.post(f"{API}/reports", content=outgoing.body, headers=headers)
            except httpx.HTTPError as exc:
                result.error = f"collector unreachable: {exc}"
                spool.failed_attempt(item.report_id, result.error)
                result.remaining = spool.depth()
                return result
            code = response.status_code
            if code in (200, 201):
                spool.ack(item.report_id, outgoing)
                result.delivered_ids.append(item.report_id)
                if response.json().get("status") == "duplicate":
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


# --- segmentation probe plans ---------------------------------------------------------

log = logging.getLogger(__name__)


class ProbeExchangeError(Exception):
    """The collector could not be reached or refused a probe plan exchange."""


def _agent_headers(enrollment: Enrollment) -> dict[str, str]:
    return {"Authorization": f"Bearer {enrollment.credential}", "User-Agent": user_agent()}


def fetch_probe_plan(enrollment: Enrollment, config: AgentConfig) -> ProbePlan | None:
    """This agent's probe plan; None when the collector has none for it (404/409/204)."""
    url = f"{enrollment.collector_url}{API}/agent/probe-plan"
    try:
        response = httpx.get(
            url, headers=_agent_headers(enrollment), timeout=TIMEOUT, verify=_verify(config)
        )
    except httpx.HTTPError as exc:
        raise ProbeExchangeError(f"collector unreachable: {exc}") from exc
    if response.status_code == 401:
        raise CredentialRejected(_detail(response))
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
    url = f"{enrollment.collector_url}{API}/agent/probe-results"
    try:
        response = httpx.post(
            url,
            content=results.model_dump_json(),
            headers=_agent_headers(enrollment) | {"Content-Type": "application/json"},
            timeout=TIMEOUT,
            verify=_verify(config),
        )
    except httpx.HTTPError as exc:
        raise ProbeExchangeError(f"collector unreachable: {exc}") from exc
    if response.status_code == 401:
        raise CredentialRejected(_detail(response))
    if response.status_code not in (200, 201, 202, 204):
        raise ProbeExchangeError(f"probe results refused: {_detail(response)}")
