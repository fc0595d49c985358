"""In-memory token-bucket rate limiting, per client IP and per process.

Used on ``POST /api/v1/enroll``: the enrollment token is the only secret an
unauthenticated client can guess at, so one address gets at most
``POSTURE_ENROLL_RATE_PER_MINUTE`` attempts per minute (bursts up to that
number, refilled continuously).  The state lives in the worker process: with N
uvicorn workers an address gets up to N times the rate, which still bounds
guessing; a reverse proxy in front should pass the real client address
(``--proxy-headers`` / ``--forwarded-allow-ips``) or every agent shares one bucket.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from fastapi import HTTPException, Request, status

# Buckets idle this long are full again and can be forgotten.
_MAX_BUCKETS = 100_000


class TokenBucketLimiter:
    """``rate_per_minute`` requests per key and minute, bursting up to the same number."""

    def __init__(self, rate_per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(rate_per_minute)
        self.refill_per_second = float(rate_per_minute) / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.refill_per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                allowed = True
            else:
                self._buckets[key] = (tokens, now)
                allowed = False
            if len(self._buckets) > _MAX_BUCKETS:
                self._forget_full(now)
        if allowed:
            return 0.0
        return (1.0 - tokens) / self.refill_per_second

    def _forget_full(self, now: float) -> None:
        full_after = self.capacity / self.refill_per_second
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


def _limiter(request: Request, name: str, rate_per_minute: float) -> TokenBucketLimiter:
    state = request.app.state
    limiters: dict[str, TokenBucketLimiter] | None = getattr(state, "rate_limiters", None)
    if limiters is None:
        limiters = state.rate_limiters = {}
    limiter = limiters.get(name)
    if limiter is None:
        limiter = limiters[name] = TokenBucketLimiter(rate_per_minute)
    return limiter


def _limit(request: Request, name: str, rate_per_minute: float, what: str) -> None:
    client = request.client.host if request.client else "unknown"
    wait = _limiter(request, name, rate_per_minute).acquire(client)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many {what} from this address; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def enroll_rate_limit(request: Request) -> None:
    """FastAPI dependency: 429 with ``Retry-After`` past the per-IP enrollment rate."""
    _limit(
        request, "enroll", request.app.state.settings.enroll_rate_per_minute, "enrollment attempts"
    )


def login_rate_limit(request: Request) -> None:
    """FastAPI dependency: 429 with ``Retry-After`` past the per-IP login rate."""
    _limit(request, "login", request.app.state.settings.login_rate_per_minute, "login attempts")
