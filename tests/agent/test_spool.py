"""The durable outbox: written before sending, removed only on acknowledgement."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from agent import client
from agent.config import AgentConfig, Enrollment
from agent.spool import Spool
from tests.factories import make_report


@pytest.fixture
def spool(tmp_path):
    return Spool(tmp_path / "spool.sqlite")


@pytest.fixture
def enrollment():
    return Enrollment(
        collector_url="http://collector.test", agent_id="1", host_id=1,
        credential="pa_1_secret", agency={"code": "T", "name": "T", "level": 2},
    )


def test_spool_keeps_reports_in_order_across_reopen(tmp_path):
    reports = [make_report() for _ in range(3)]
    first = Spool(tmp_path / "spool.sqlite")
    for r in reports:
        first.put(r)
    first.put(reports[0])  # the same report twice is stored once
    reopened = Spool(tmp_path / "spool.sqlite")
    pending = reopened.pending()
    assert [p.report_id for p in pending] == [str(r.report_id) for r in reports]
    body = json.loads(gzip.decompress(pending[0].body))
    assert body["report_id"] == str(reports[0].report_id)


def _mock_transport(monkeypatch, handler):
    transport = httpx.MockTransport(handler)
    real_client = httpx.Client

    def patched(*args, **kwargs):
        kwargs["transport"] = transport
        return real_client(*args, **kwargs)

    monkeypatch.setattr(client.httpx, "Client", patched)


def test_flush_acks_only_on_success_and_stops_at_first_outage(
    spool, enrollment, monkeypatch, tmp_path
):
    reports = [make_report() for _ in range(3)]
    for r in reports:
        spool.put(r)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(gzip.decompress(request.content))
        assert request.headers["authorization"] == "Bearer pa_1_secret"
        seen.append(body["report_id"])
        if len(seen) == 2:
            return httpx.Response(503, json={"detail": "maintenance"})
        return httpx.Response(201, json={"status": "accepted"})

    _mock_transport(monkeypatch, handler)
    result = client.flush(spool, enrollment, AgentConfig(state_dir=tmp_path))
    assert result.delivered == 1
    assert result.remaining == 2
    assert "503" in result.error
    # the failed report and the one after it wait, in order
    assert [p.report_id for p in spool.pending()] == [str(r.report_id) for r in reports[1:]]


def test_permanent_refusal_is_recorded_not_silently_dropped(
    spool, enrollment, monkeypatch, tmp_path
):
    report = make_report()
    spool.put(report)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "unsupported schema_version '9.0'"})

    _mock_transport(monkeypatch, handler)
    result = client.flush(spool, enrollment, AgentConfig(state_dir=tmp_path))
    assert result.rejected == 1 and spool.depth() == 0
    [(report_id, _, code, error)] = spool.rejected()
    assert report_id == str(report.report_id) and code == 422 and "schema_version" in error


def test_revoked_credential_keeps_the_report(spool, enrollment, monkeypatch, tmp_path):
    spool.put(make_report())

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "credential revoked"})

    _mock_transport(monkeypatch, handler)
    with pytest.raises(client.CredentialRejected, match="revoked"):
        client.flush(spool, enrollment, AgentConfig(state_dir=tmp_path))
    assert spool.depth() == 1


def test_unreachable_collector_keeps_everything(spool, enrollment, tmp_path):
    spool.put(make_report())
    enrollment.collector_url = "http://127.0.0.1:9"  # discard port: nothing listens
    result = client.flush(spool, enrollment, AgentConfig(state_dir=tmp_path))
    assert result.error and "unreachable" in result.error
    assert spool.depth() == 1
