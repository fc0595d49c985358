"""Body size limit: declared Content-Length, chunked bodies, decompressed size."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from collector.ingest import IngestError, decompress_gzip
from collector.limits import BodySizeLimitMiddleware

LIMIT = 8 * 1024


@pytest.fixture
def small(make_api, report_factory):
    """An app with an 8 KiB limit, one agent and one stored report."""
    api = make_api(max_body_bytes=LIMIT)
    agent = api.new_agent()
    assert api.post_report(agent, report_factory()).status_code == 201
    return api, agent


@pytest.fixture
def report_json(report_factory) -> bytes:
    return report_factory().model_dump_json().encode()


def _chunks(data: bytes, size: int = 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_content_length_over_limit(small) -> None:
    api, agent = small
    before = api.snapshot()
    body = b" " * (LIMIT + 1)
    r = api.post_report(agent, body)
    assert r.status_code == 413
    assert r.json()["detail"] == f"request body exceeds the limit of {LIMIT} bytes"
    assert api.snapshot() == before


def test_body_at_limit_passes_the_middleware(small) -> None:
    api, agent = small
    # Exactly at the limit: not refused for size (it is not JSON, so 400).
    r = api.post_report(agent, b"x" * LIMIT)
    assert r.status_code == 400


def test_chunked_body_over_limit(small, report_json) -> None:
    api, agent = small
    before = api.snapshot()
    big = report_json + b" " * LIMIT
    r = api.client.post(
        "/api/v1/reports",
        content=_chunks(big),
        headers={"Content-Type": "application/json", **agent.headers},
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413
    assert api.snapshot() == before


def test_chunked_body_under_limit_accepted(small, report_json) -> None:
    api, agent = small
    body = report_json
    r = api.client.post(
        "/api/v1/reports",
        content=_chunks(body, 512),
        headers={"Content-Type": "application/json", **agent.headers},
    )
    assert r.status_code == 201, r.text


def test_chunked_body_over_limit_on_a_json_route(small, admin_headers) -> None:
    # FastAPI turns body-read failures into 400 on routes with a pydantic body;
    # the middleware must still answer 413.
    api, _ = small
    before = api.snapshot()
    body = b'{"token": "' + b"a" * (2 * LIMIT) + b'", "hostname": "h"}'
    r = api.client.post(
        "/api/v1/enroll", content=_chunks(body), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    r = api.client.post(
        "/api/v1/agencies",
        content=_chunks(body),
        headers={"Content-Type": "application/json", **admin_headers},
    )
    assert r.status_code == 413
    assert api.snapshot() == before


def test_gzip_decompressed_over_limit(small, report_json) -> None:
    api, agent = small
    before = api.snapshot()
    body = report_json + b" " * LIMIT
    compressed = gzip.compress(body)
    assert len(compressed) < LIMIT
    r = api.post_report(agent, compressed, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert api.snapshot() == before


def test_decompress_gzip_cap_is_exact() -> None:
    data = b"a" * 1000
    assert decompress_gzip(gzip.compress(data), 1000) == data
    with pytest.raises(IngestError) as info:
        decompress_gzip(gzip.compress(data), 999)
    assert info.value.status_code == 413
    # Concatenated gzip members are one valid gzip stream.
    assert decompress_gzip(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"
    with pytest.raises(IngestError) as info:
        decompress_gzip(gzip.compress(b"ab") + gzip.compress(b"cd"), 3)
    assert info.value.status_code == 413


def test_decompression_never_inflates_past_the_cap(monkeypatch) -> None:
    # The cap must bound memory, not only be checked once everything is inflated.
    import zlib

    from collector import ingest

    largest: list[int] = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, *args) -> None:
            self._inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._inner.decompress(data, max_length)
            largest.append(len(out))
            return out

        def __getattr__(self, name: str):
            return getattr(self._inner, name)

    monkeypatch.setattr(ingest.zlib, "decompressobj", Spy)
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))
    with pytest.raises(IngestError) as info:
        decompress_gzip(bomb, 1000)
    assert info.value.status_code == 413
    assert max(largest) <= 1001
    assert sum(largest) <= 1001


def test_middleware_in_isolation() -> None:
    seen: list[bytes] = []

    async def echo(scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    client = TestClient(BodySizeLimitMiddleware(echo, max_body_bytes=10))
    assert client.post("/", content=b"0123456789").status_code == 200
    assert client.post("/", content=b"0123456789!").status_code == 413
    assert client.post("/", content=_chunks(b"0123456789", 3)).status_code == 200
    r = client.post("/", content=_chunks(b"0123456789!", 3))
    assert r.status_code == 413
    assert r.json() == {"detail": "request body exceeds the limit of 10 bytes"}
    assert seen == [b"0123456789", b"0123456789"]
    r = client.post("/", content=b"x", headers={"Content-Length": "nope"})
    assert r.status_code == 400
