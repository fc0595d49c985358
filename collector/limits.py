"""Request body size limit as a pure ASGI middleware.

A declared ``Content-Length`` above the limit is refused before the body is
read.  Bodies without one (chunked transfer) are counted as they stream in;
once the count passes the limit the application's reading fails and the
client gets 413, whatever the application would have answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit."""


class BodySizeLimitMiddleware:
    """``max_body_bytes`` for every request, except paths matching an override.

    ``overrides`` pairs a path regex with its own limit (e.g. evidence file
    uploads, which may be larger than any report).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        overrides: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.overrides = [(re.compile(pattern), limit) for pattern, limit in overrides]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.overrides:
            if pattern.fullmatch(path):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        limit = self.limit_for(scope.get("path", ""))
        try:
            declared = _content_length(scope)
        except ValueError:
            await _send_error(send, 400, "invalid Content-Length header")
            return
        if declared is not None and declared > limit:
            await _send_too_large(send, limit)
            return

        received = 0
        exceeded = False
        response_started = False
        replied = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started, replied
            if exceeded and not response_started:
                # The application turned the failed read into some answer of
                # its own (e.g. 400); answer 413 instead, once.
                if not replied:
                    replied = True
                    await _send_too_large(send, limit)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not response_started and not replied:
                await _send_too_large(send, limit)
            elif response_started:
                raise


def _content_length(scope: Scope) -> int | None:
    """The declared body length; ValueError when the header is not a valid number."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            length = int(value)
            if length < 0:
                raise ValueError("negative Content-Length")
            return length
    return None


async def _send_too_large(send: Send, limit: int) -> None:
    await _send_error(send, 413, f"request body exceeds the limit of {limit} bytes")


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
