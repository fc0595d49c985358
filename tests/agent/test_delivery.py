"""Delivery: backoff with full jitter, the service schedule, order after an outage."""

from __future__ import annotations

import gzip
import json
import random
from datetime import timedelta

import httpx
import pytest

from agent import client
from agent.config import AgentConfig, Enrollment
from agent.service import BACKOFF_BASE, ServiceLoop, backoff_delay
from agent.spool import Spool
from tests.factories import NOW, make_report


class FakeClock:
    """Monotonic time that only moves when the loop waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


def test_backoff_bounds_double_up_to_the_cap():
    rng = random.Random(7)
    cap = 3600.0
    for failures in range(1, 20):
        bound = min(cap, BACKOFF_BASE * 2 ** (failures - 1))
        samples = [backoff_delay(failures, cap, rng) for _ in range(200)]
        assert all(0 <= s <= bound for s in samples)
        assert max(samples) > bound * 0.8  # full jitter uses the whole window
        assert min(samples) < bound * 0.2


def test_backoff_sequence_is_reproducible_with_a_seed():
    rng = random.Random(42)
    delays = [backoff_delay(n, 600.0, rng) for n in range(1, 9)]
    twin = random.Random(42)
    windows = (15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 600.0, 600.0)  # doubling, then capped
    assert delays == [twin.uniform(0, w) for w in windows]
    assert delays == [backoff_delay(n, 600.0, r) for r in [random.Random(42)] for n in range(1, 9)]


def test_service_loop_backs_off_then_resets_after_success():
    clock = FakeClock()
    outcomes = iter([False, False, False, True, False, True])
    collections: list[float] = []
    loop = ServiceLoop(
        interval=3600.0,
        jitter=0.0,
        collect=lambda: collections.append(clock.now),
        deliver=lambda: next(outcomes),
        clock=clock,
        wait=clock.wait,
        rng=random.Random(3),
    )
    for _ in range(6):
        _, delay = loop.step()
        clock.wait(delay)

    twin = random.Random(3)
    twin.uniform(0, 0.0)  # the collection jitter drawn first
    expected = [twin.uniform(0, b) for b in (15.0, 30.0, 60.0)]
    assert clock.waits[:3] == pytest.approx(expected)
    # success: sleep until the next collection, failures reset to the first window
    assert clock.waits[3] == pytest.approx(3600.0 - sum(expected))
    assert 0 <= clock.waits[4] <= 15.0
    assert collections == [1000.0, 4600.0]  # one per interval, retries do not collect


def test_backoff_never_waits_past_the_next_collection():
    clock = FakeClock()
    loop = ServiceLoop(
        interval=100.0, jitter=0.0, collect=lambda: None, deliver=lambda: False,
        clock=clock, wait=clock.wait, rng=random.Random(0),
    )
    for _ in range(12):
        _, delay = loop.step()
        clock.wait(delay)
    assert all(w <= 100.0 for w in clock.waits)
    assert loop.failures == 12


def test_run_once_exit_code_follows_delivery():
    ok = ServiceLoop(interval=1, jitter=0, collect=lambda: None, deliver=lambda: True)
    down = ServiceLoop(interval=1, jitter=0, collect=lambda: None, deliver=lambda: False)
    assert ok.run(once=True) == 0 and down.run(once=True) == 1


def test_run_stops_when_wait_is_interrupted():
    rounds: list[int] = []
    loop = ServiceLoop(
        interval=60, jitter=0, collect=lambda: rounds.append(1), deliver=lambda: True,
        wait=lambda seconds: len(rounds) >= 3,
    )
    clock = iter(range(0, 10_000, 61))
    loop.clock = lambda: float(next(clock))
    assert loop.run() == 0 and len(rounds) == 3


# --- order after an outage --------------------------------------------------


@pytest.fixture
def enrollment():
    return Enrollment(
        collector_url="https://collector.test", agent_id="1", host_id=1,
        credential="pa_1_secret", agency={"code": "T", "name": "T", "level": 2},
    )


def test_reports_arrive_once_and_in_collected_order_after_an_outage(
    tmp_path, enrollment, monkeypatch
):
    spool = Spool(tmp_path / "spool.sqlite")
    reports = [make_report(now=NOW + timedelta(minutes=i)) for i in range(6)]
    up = {"value": False}
    stored: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if not up["value"]:
            raise httpx.ConnectError("connection refused")
        doc = json.loads(gzip.decompress(request.content))
        if doc["report_id"] in stored:
            return httpx.Response(200, json={"status": "duplicate"})
        stored.append(doc["report_id"])
        if len(stored) == 3:
            # stored, but the answer is lost: the agent must resend, the collector dedups
            raise httpx.ReadTimeout("answer lost")
        return httpx.Response(201, json={"status": "accepted"})

    transport = httpx.MockTransport(handler)
    real = httpx.Client
    monkeypatch.setattr(client.httpx, "Client", lambda *a, **k: real(*a, transport=transport, **k))
    config = AgentConfig(state_dir=tmp_path)

    for r in reports[:5]:  # the collector is down: every flush stops at the first report
        spool.put(r)
        result = client.flush(spool, enrollment, config)
        assert result.error and result.delivered == 0
    assert spool.depth() == 5
    assert [p.attempts for p in spool.pending()] == [5, 0, 0, 0, 0]

    up["value"] = True
    spool.put(reports[5])
    first = client.flush(spool, enrollment, config)
    assert first.delivered == 2 and first.remaining == 4 and "answer lost" in first.error
    second = client.flush(spool, enrollment, config)
    assert second.duplicates == 1 and second.delivered == 3 and second.remaining == 0

    assert stored == [str(r.report_id) for r in reports]  # each once, in collected order
