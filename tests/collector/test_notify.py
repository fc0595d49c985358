"""Notifications end to end: real reports through the API, a real SMTP server (aiosmtpd)
and a real HTTP receiver on 127.0.0.1, on SQLite and PostgreSQL.

Time is injected (``run_once(clock=…)``): digest windows, retry backoff and silence
are stepped over by moving the clock, never by waiting.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from collector import cli
from collector.app import create_app
from collector.models import NotificationDelivery, NotificationEvent, utcnow
from collector.notify import run_once, scan_silence
from collector.notify.channels import SIGNATURE_HEADER, WebhookChannel
from collector.notify.sender import FAILING_AFTER, delivery_status
from collector.settings import Settings
from policies.registry import load_checks
from tests.collector.conftest import ADMIN_HEADERS, ADMIN_TOKEN, Api, insecure_sections, make_report

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

SECRET = "bí-mật-chung-2026"
PROVINCE = "attt@sotttt.example.gov.vn"
AGENCY_IT = "cntt@so-tttt.example.gov.vn"
# the five critical/high checks an insecure machine fails (no anti-virus, no firewall)
INSECURE_CHECKS = {
    "fw_active",
    "fw_default_deny",
    "av_installed",
    "av_active",
    "av_signatures_fresh",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a real SMTP server -------------------------------------------------------------


class MailHandler:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.received if address in rcpt]


@dataclass
class SmtpServer:
    port: int
    handler: MailHandler = field(default_factory=MailHandler)
    controller: Any = None

    def start(self) -> None:
        self.controller = aiosmtpd_controller.Controller(
            self.handler, hostname="127.0.0.1", port=self.port
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """A port where nothing listens yet; ``start()`` brings the server up."""
    server = SmtpServer(free_port())
    yield server
    server.stop()


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


LINE = re.compile(r"trên máy (\S+) \(.*?\(kiểm tra (\w+);")


def listed(message: EmailMessage) -> list[tuple[str, str]]:
    """(hostname, check_id) of the new failures a mail lists."""
    return LINE.findall(body_of(message))


# --- a real webhook receiver --------------------------------------------------------


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/posture"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]

    def event_ids(self) -> list[int]:
        return [e["id"] for p in self.payloads() for e in p["events"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# --- the collector ------------------------------------------------------------------


@pytest.fixture
def build(collector_database_url: str) -> Iterator[Callable[..., tuple[Api, Settings]]]:
    clients: list[TestClient] = []

    def make(**notify: Any) -> tuple[Api, Settings]:
        settings = Settings(
            database_url=collector_database_url,
            admin_token=ADMIN_TOKEN,
            notify_interval_seconds=3600,  # the app's own loop never runs in a test
            smtp_starttls=False,
            **notify,
        )
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return Api(client, client.app.state.engine), settings  # type: ignore[attr-defined]

    yield make
    for client in clients:
        client.__exit__(None, None, None)


class Clock:
    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or utcnow()

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> Clock:
        self.at += timedelta(**delta)
        return self


def count(api: Api, model: type) -> int:
    with Session(api.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def insecure(hostname: str = "pc-01", machine_id: str = "machine-0001") -> Any:
    return make_report(hostname=hostname, machine_id=machine_id, **insecure_sections())


# --- tests --------------------------------------------------------------------------


def test_new_critical_failures_reach_mail_and_webhook(
    build: Callable[..., tuple[Api, Settings]], smtp: SmtpServer, receiver: Receiver
) -> None:
    api, settings = build(
        notify_webhook_url=receiver.url,
        notify_webhook_secret=SECRET,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        notify_email_to=PROVINCE,
        notify_agency_emails={"so-tttt": [AGENCY_IT]},
        notify_english=True,
    )
    agent = api.new_agent()  # agency so-tttt, host pc-01
    assert api.post_report(agent, insecure()).status_code == 201

    result = run_once(api.engine, settings)
    assert (result.messages_sent, result.messages_failed) == (3, 0)  # webhook + 2 addresses

    title = load_checks()["av_installed"].title.vi
    for address in (PROVINCE, AGENCY_IT):
        (mail,) = smtp.handler.to(address)
        assert "[Giám sát ATTT]" in mail["Subject"]
        body = body_of(mail)
        assert "Hệ thống giám sát an toàn thông tin ghi nhận 5 cảnh báo mới" in body
        assert "Lỗi mới, mức độ nghiêm trọng, trên máy pc-01 (Sở TTTT)" in body
        assert title in body
        assert "New critical failure on pc-01" in body  # notify_english
        assert {check for _, check in listed(mail)} == INSECURE_CHECKS

    ((headers, raw),) = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    payload = json.loads(raw)
    assert payload["count"] == 5
    assert {e["check_id"] for e in payload["events"]} == INSECURE_CHECKS
    assert {e["hostname"] for e in payload["events"]} == {"pc-01"}
    assert title in payload["text"] and "pc-01" in payload["text"]

    # The same failures in the next report are not new: nothing more is sent.
    assert api.post_report(agent, insecure()).status_code == 201
    assert run_once(api.engine, settings).messages_sent == 0
    assert len(smtp.handler.received) == 2 and len(receiver.requests) == 1

    # Fixed, then failing again: new once more.
    assert api.post_report(agent, make_report()).status_code == 201
    assert api.post_report(agent, insecure()).status_code == 201
    assert run_once(api.engine, settings).messages_sent == 3
    assert len(smtp.handler.to(PROVINCE)) == 2
    assert count(api, NotificationEvent) == 10


def test_digest_sends_one_mail_per_window(
    build: Callable[..., tuple[Api, Settings]], smtp: SmtpServer
) -> None:
    api, settings = build(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        notify_email_to=PROVINCE,
        notify_digest_minutes=30,
    )
    agent = api.new_agent()
    clock = Clock()
    assert api.post_report(agent, insecure()).status_code == 201
    assert count(api, NotificationEvent) == 5

    assert run_once(api.engine, settings, clock=clock).messages_sent == 0  # window open
    assert smtp.handler.received == []

    assert run_once(api.engine, settings, clock=clock.advance(minutes=31)).messages_sent == 1
    (mail,) = smtp.handler.to(PROVINCE)
    assert sorted(listed(mail)) == sorted(("pc-01", c) for c in INSECURE_CHECKS)
    assert mail["Subject"] == "[Giám sát ATTT] 5 cảnh báo mới"

    assert run_once(api.engine, settings, clock=clock.advance(hours=2)).messages_sent == 0
    assert len(smtp.handler.received) == 1


def test_concurrent_senders_send_each_notification_once(
    build: Callable[..., tuple[Api, Settings]], smtp: SmtpServer, receiver: Receiver
) -> None:
    addresses = [PROVINCE, "lanh-dao@sotttt.example.gov.vn", "truc@sotttt.example.gov.vn"]
    api, settings = build(
        notify_webhook_url=receiver.url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        notify_email_to=",".join(addresses),
    )
    agency = api.create_agency()["id"]
    token = api.create_token(agency)
    hosts = [f"pc-{i:02d}" for i in range(3)]
    for i, hostname in enumerate(hosts):
        agent = api.enroll(token, machine_id=f"m-{i}", hostname=hostname)
        assert api.post_report(agent, insecure(hostname, f"m-{i}")).status_code == 201
    events = count(api, NotificationEvent)
    assert events == 15
    assert count(api, NotificationDelivery) == 15 * 4

    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait()
            for _ in range(3):
                run_once(api.engine, settings, scan=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    ids = receiver.event_ids()
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 15
    expected = {(h, c) for h in hosts for c in INSECURE_CHECKS}
    for address in addresses:
        seen = Counter(pair for mail in smtp.handler.to(address) for pair in listed(mail))
        assert set(seen) == expected and set(seen.values()) == {1}, address
    with Session(api.engine) as session:
        states = session.exec(select(NotificationDelivery.status)).all()
    assert Counter(states) == {"sent": 60}


def test_smtp_down_is_retried_and_delivered_once_when_up(
    build: Callable[..., tuple[Api, Settings]],
    smtp_down: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, settings = build(smtp_host="127.0.0.1", smtp_port=smtp_down.port, notify_email_to=PROVINCE)
    agent = api.new_agent()
    assert api.post_report(agent, insecure()).status_code == 201
    clock = Clock()

    result = run_once(api.engine, settings, clock=clock)
    assert (result.messages_sent, result.messages_failed) == (0, 1)
    (status,) = delivery_status(api.engine)
    assert (status.pending, status.sent, status.attempts) == (5, 0, 1)
    assert status.last_error and "smtp 127.0.0.1" in status.last_error
    assert not status.failing
    # inside the backoff: not tried again
    assert run_once(api.engine, settings, clock=clock).messages_failed == 0

    for _ in range(FAILING_AFTER - 1):  # backoff 1, 2, 4, 8 minutes
        result = run_once(api.engine, settings, clock=clock.advance(hours=1))
        assert result.messages_failed == 1
    (status,) = delivery_status(api.engine)
    assert status.failing and status.attempts == FAILING_AFTER

    monkeypatch.setenv("POSTURE_DATABASE_URL", settings.database_url)
    assert cli.main(["notify", "--status"]) == 2
    out = capsys.readouterr().out
    assert f"email\t{PROVINCE}\tFAILING\tpending=5\tsent=0\tattempts={FAILING_AFTER}" in out

    smtp_down.start()
    result = run_once(api.engine, settings, clock=clock.advance(hours=2))
    assert (result.messages_sent, result.deliveries_sent) == (1, 5)
    assert run_once(api.engine, settings, clock=clock.advance(hours=2)).messages_sent == 0
    (mail,) = smtp_down.handler.to(PROVINCE)
    assert len(listed(mail)) == 5
    (status,) = delivery_status(api.engine)
    assert (status.pending, status.sent, status.failing) == (0, 5, False)
    assert cli.main(["notify", "--status"]) == 0


def test_silent_machine_is_notified_once_per_silence(
    build: Callable[..., tuple[Api, Settings]], receiver: Receiver
) -> None:
    api, settings = build(notify_webhook_url=receiver.url)
    agent = api.new_agent()
    assert api.post_report(agent, make_report()).status_code == 201  # healthy: nothing new
    clock = Clock()

    assert run_once(api.engine, settings, clock=clock.advance(hours=47)).silent_queued == 0
    assert receiver.requests == []
    result = run_once(api.engine, settings, clock=clock.advance(hours=2))  # > 48 h
    assert (result.silent_queued, result.messages_sent) == (1, 1)
    (payload,) = receiver.payloads()
    (event,) = payload["events"]
    assert (event["kind"], event["hostname"], event["max_silence_hours"]) == ("silent", "pc-01", 48)
    assert "Máy pc-01 (Sở TTTT) không gửi báo cáo từ" in payload["text"]
    assert "quá 48 giờ" in payload["text"]

    # later scans, concurrent or not, do not queue the same silence again
    assert scan_silence(api.engine, settings, now=clock.advance(hours=5)()) == 0
    assert run_once(api.engine, settings, clock=clock.advance(hours=5)).messages_sent == 0
    assert len(receiver.requests) == 1

    # back, then silent again: a new silence
    assert api.post_report(agent, make_report()).status_code == 201
    assert run_once(api.engine, settings, clock=Clock().advance(hours=49)).silent_queued == 1
    assert len(receiver.requests) == 2


def test_webhook_retries_with_backoff_and_signs_every_attempt(
    build: Callable[..., tuple[Api, Settings]],
) -> None:
    flaky = Receiver(fail_first=2)
    try:
        api, settings = build(notify_webhook_url=flaky.url, notify_webhook_secret=SECRET)
        agent = api.new_agent()
        assert api.post_report(agent, insecure()).status_code == 201
        sleeps: list[float] = []
        channel = WebhookChannel(settings, sleep=sleeps.append)
        result = run_once(api.engine, settings, channels={"webhook": channel})
        assert (result.messages_sent, result.messages_failed) == (1, 0)
        assert sleeps == [1.0, 2.0]
        assert len(flaky.requests) == 3
        for headers, raw in flaky.requests:
            expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            assert headers[SIGNATURE_HEADER] == expected
        assert len({h["X-Posture-Delivery"] for h, _ in flaky.requests}) == 1
    finally:
        flaky.close()


def test_wide_incident_is_notified(
    build: Callable[..., tuple[Api, Settings]], receiver: Receiver
) -> None:
    api, settings = build(notify_webhook_url=receiver.url)
    agency = api.create_agency()["id"]
    body = {
        "category": "information_security",
        "title": "Mã độc mã hoá dữ liệu trên máy chủ tệp",
        "occurred_at": utcnow().isoformat(),
        "reported_by": "Trần Thị B",
    }
    r = api.client.post(f"/api/v1/agencies/{agency}/incidents", json=body, headers=ADMIN_HEADERS)
    assert r.status_code == 201
    assert count(api, NotificationEvent) == 0  # local: the agency's own business
    incident = r.json()["id"]
    r = api.client.patch(
        f"/api/v1/incidents/{incident}", json={"scope": "wide"}, headers=ADMIN_HEADERS
    )
    assert r.status_code == 200
    api.client.patch(
        f"/api/v1/incidents/{incident}",
        json={"escalated_at": utcnow().isoformat(), "escalated_to": "Sở TT&TT"},
        headers=ADMIN_HEADERS,
    )
    assert count(api, NotificationEvent) == 1  # once per incident
    assert run_once(api.engine, settings).messages_sent == 1
    (payload,) = receiver.payloads()
    assert "Sự cố tại Sở TTTT: Mã độc mã hoá dữ liệu trên máy chủ tệp" in payload["text"]
    assert "Sự cố gây mất an toàn, an ninh thông tin" in payload["text"]
    assert "Diện rộng, nghiêm trọng" in payload["text"]


def test_nothing_is_queued_without_a_channel(
    api: Api,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = api.new_agent()
    assert api.post_report(agent, insecure()).status_code == 201
    assert count(api, NotificationEvent) == 0
    assert count(api, NotificationDelivery) == 0
    monkeypatch.setenv("POSTURE_DATABASE_URL", settings.database_url)
    assert cli.main(["notify", "--once"]) == 1
    assert "not configured" in capsys.readouterr().err


def test_notify_once_cli_sends(
    build: Callable[..., tuple[Api, Settings]],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, settings = build(notify_webhook_url=receiver.url)
    agent = api.new_agent()
    assert api.post_report(agent, insecure()).status_code == 201
    monkeypatch.setenv("POSTURE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("POSTURE_NOTIFY_WEBHOOK_URL", receiver.url)
    assert cli.main(["notify", "--once"]) == 0
    assert "messages sent: 1 (5 deliveries)" in capsys.readouterr().out
    assert len(receiver.event_ids()) == 5
    assert cli.main(["notify", "--once"]) == 0
    assert len(receiver.requests) == 1
