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
        collector_url="https://collector.test", agent_id="1", host_id=1,
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


# --- size cap and evictions -------------------------------------------------


def _timed_reports(n: int):
    from datetime import timedelta

    from tests.factories import NOW

    return [make_report(now=NOW + timedelta(hours=i)) for i in range(n)]


def test_count_cap_evicts_the_oldest_and_records_it(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite", max_reports=3)
    reports = _timed_reports(5)
    evicted = [spool.put(r).evicted for r in reports]
    assert evicted == [[], [], [], [str(reports[0].report_id)], [str(reports[1].report_id)]]
    assert [p.report_id for p in spool.pending()] == [str(r.report_id) for r in reports[2:]]
    # one record for the run of evictions, not yet reported to the collector
    [record] = spool.evictions()
    assert record.count == 2 and record.reported_at is None
    assert (record.first_report_id, record.last_report_id) == (
        str(reports[0].report_id), str(reports[1].report_id)
    )
    assert record.first_collected_at == reports[0].collected_at.isoformat()
    assert record.last_collected_at == reports[1].collected_at.isoformat()


def test_byte_cap_evicts_but_never_the_new_report(tmp_path):
    probe = Spool(tmp_path / "probe.sqlite")
    probe.put(make_report())
    one = probe.size_bytes()
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=int(one * 2.5))
    reports = _timed_reports(4)
    for r in reports:
        spool.put(r)
    assert spool.size_bytes() <= int(one * 2.5)
    assert spool.depth() == 2
    assert sum(e.count for e in spool.evictions()) == 2
    tiny = Spool(tmp_path / "tiny.sqlite", max_bytes=1)
    tiny.put(reports[0])
    tiny.put(reports[1])
    assert [p.report_id for p in tiny.pending()] == [str(reports[1].report_id)]


def test_eviction_travels_with_the_next_delivered_report(
    spool, enrollment, monkeypatch, tmp_path
):
    spool = Spool(tmp_path / "capped.sqlite", max_reports=2)
    reports = _timed_reports(4)
    for r in reports:
        spool.put(r)
    received: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(json.loads(gzip.decompress(request.content)))
        return httpx.Response(201, json={"status": "accepted"})

    _mock_transport(monkeypatch, handler)
    result = client.flush(spool, enrollment, AgentConfig(state_dir=tmp_path))
    assert result.delivered == 2
    first, second = received[0]["delivery"], received[1]["delivery"]
    assert first["evicted_count"] == 2
    assert first["evicted_first_report_id"] == str(reports[0].report_id)
    assert first["evicted_last_report_id"] == str(reports[1].report_id)
    assert first["evicted_since"].startswith(reports[0].collected_at.isoformat()[:19])
    assert first["evicted_until"].startswith(reports[1].collected_at.isoformat()[:19])
    assert first["spool_depth"] == 2 and first["attempts"] == 0
    assert second["evicted_count"] == 0 and second["spool_depth"] == 1  # told only once
    [record] = spool.evictions()
    assert record.reported_in == str(reports[2].report_id) and record.reported_at


def test_eviction_not_acknowledged_is_sent_again(spool, enrollment, monkeypatch, tmp_path):
    spool = Spool(tmp_path / "capped.sqlite", max_reports=1)
    first, second = _timed_reports(2)
    spool.put(first)
    spool.put(second)  # evicts the first
    answers = iter([httpx.Response(503), httpx.Response(201, json={"status": "accepted"})])
    carried: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        doc = json.loads(gzip.decompress(request.content))
        carried.append(doc["delivery"]["evicted_count"])
        return next(answers)

    _mock_transport(monkeypatch, handler)
    config = AgentConfig(state_dir=tmp_path)
    assert client.flush(spool, enrollment, config).error
    assert spool.pending_eviction() is not None  # not acknowledged: still pending
    assert client.flush(spool, enrollment, config).delivered == 1
    assert carried == [1, 1]
    assert spool.pending_eviction() is None


def test_old_spool_file_is_upgraded_in_place(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, report_id TEXT NOT NULL"
            " UNIQUE, created_at TEXT NOT NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL"
            " DEFAULT 0, last_error TEXT);"
        )
        old = make_report()
        db.execute(
            "INSERT INTO outbox (report_id, created_at, body) VALUES (?, ?, ?)",
            (str(old.report_id), "2026-01-01T00:00:00+00:00",
             gzip.compress(old.model_dump_json().encode())),
        )
    spool = Spool(path)
    spool.put(make_report())
    [first, _] = spool.pending()
    assert first.report_id == str(old.report_id) and first.mode is None
    sent = spool.prepare(first)  # an opaque old body is sent as is, plus delivery info
    assert json.loads(gzip.decompress(sent.body))["delivery"]["spool_depth"] == 2
