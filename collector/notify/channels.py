"""Delivery channels: a webhook (JSON POST, HMAC-signed) and e-mail over SMTP.

``send`` raises ``DeliveryError`` when the message was not accepted; the sender
then keeps the deliveries pending and retries them later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import httpx

from collector.models import NotificationEvent
from collector.notify.messages import Message
from collector.settings import Settings

SIGNATURE_HEADER = "X-Posture-Signature"
DELIVERY_HEADER = "X-Posture-Delivery"


class DeliveryError(Exception):
    """The channel did not accept the message."""


class Channel(Protocol):
    def send(
        self,
        recipient: str,
        message: Message,
        events: Sequence[NotificationEvent],
        delivery_key: str,
    ) -> None: ...


def sign(secret: str, body: bytes) -> str:
    """The value of the signature header: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(
    message: Message, events: Sequence[NotificationEvent], delivery_key: str, now: datetime
) -> dict[str, Any]:
    return {
        "source": "posture-collector",
        "delivery": delivery_key,
        "sent_at": now.isoformat(),
        "count": len(events),
        "subject": message.subject,
        "text": message.text_vi,
        "text_en": message.text_en,
        "events": [
            {
                "id": e.id,
                "kind": e.kind,
                "created_at": e.created_at.isoformat(),
                "agency_id": e.agency_id,
                **(e.payload or {}),
            }
            for e in events
        ],
    }


class WebhookChannel:
    """POST the events as JSON; retried ``retries`` times with 1 s, 2 s, 4 s… between."""

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        secret = settings.notify_webhook_secret
        self.secret = secret.get_secret_value() if secret is not None else None
        self.timeout = settings.notify_webhook_timeout_seconds
        self.retries = settings.notify_webhook_retries
        self.sleep = sleep
        self.clock = clock
        self.transport = transport

    def send(
        self,
        recipient: str,
        message: Message,
        events: Sequence[NotificationEvent],
        delivery_key: str,
    ) -> None:
        from collector.models import utcnow

        now = self.clock() if self.clock else utcnow()
        body = json.dumps(
            webhook_body(message, events, delivery_key, now), ensure_ascii=False
        ).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "posture-collector",
            DELIVERY_HEADER: delivery_key,
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        error = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(float(2 ** (attempt - 1)))
            try:
                with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                    response = client.post(recipient, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= response.status_code < 300:
                return
            error = f"HTTP {response.status_code}: {response.text[:200]}"
        raise DeliveryError(f"webhook {recipient}: {error}")


class EmailChannel:
    """One message per recipient over SMTP (STARTTLS or SMTPS, optional login)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.user = settings.smtp_user
        self.password = (
            settings.smtp_password.get_secret_value() if settings.smtp_password else None
        )
        self.starttls = settings.smtp_starttls
        self.ssl = settings.smtp_ssl
        self.timeout = settings.smtp_timeout_seconds
        self.sender = settings.notify_email_from

    def build(self, recipient: str, message: Message, delivery_key: str) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.sender
        mail["To"] = recipient
        mail["Date"] = formatdate(localtime=False)
        domain = self.sender.rpartition("@")[2] or "localhost"
        mail["Message-ID"] = make_msgid(idstring=delivery_key[:16], domain=domain)
        mail["X-Posture-Delivery"] = delivery_key
        mail.set_content(message.text, charset="utf-8")
        return mail

    def send(
        self,
        recipient: str,
        message: Message,
        events: Sequence[NotificationEvent],
        delivery_key: str,
    ) -> None:
        mail = self.build(recipient, message, delivery_key)
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if self.ssl:
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.starttls and not self.ssl:
                    smtp.starttls(context=context)
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(mail, from_addr=self.sender, to_addrs=[recipient])
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port} → {recipient}: {exc}") from exc
