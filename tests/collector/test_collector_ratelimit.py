"""Rate limit of POST /api/v1/enroll (token bucket per client IP)."""

from __future__ import annotations

from collector.ratelimit import TokenBucketLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_then_refills() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(6, clock=clock)  # one token every 10 s
    assert all(limiter.acquire("10.0.0.1") == 0.0 for _ in range(6))
    wait = limiter.acquire("10.0.0.1")
    assert 9.9 < wait <= 10.0
    assert limiter.acquire("10.0.0.2") == 0.0  # other addresses have their own bucket
    clock.now += 10
    assert limiter.acquire("10.0.0.1") == 0.0
    assert limiter.acquire("10.0.0.1") > 0


def test_zero_rate_disables_the_limit() -> None:
    limiter = TokenBucketLimiter(0)
    assert all(limiter.acquire("x") == 0.0 for _ in range(1000))


def test_enroll_returns_429_with_retry_after(make_api) -> None:
    api = make_api(enroll_rate_per_minute=3)
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    for i in range(3):
        r = api.client.post("/api/v1/enroll", json={"token": token, "hostname": f"pc-{i}",
                                                    "machine_id": f"m-{i}"})
        assert r.status_code == 201, r.text
    r = api.client.post("/api/v1/enroll", json={"token": token, "hostname": "pc-9",
                                                "machine_id": "m-9"})
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 20
    assert "too many" in r.json()["detail"]
    # bad tokens count too: guessing is what the limit is for
    api2 = make_api(enroll_rate_per_minute=2)
    codes = [
        api2.client.post("/api/v1/enroll", json={"token": "pe_guess", "hostname": "h"}).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]


def test_default_rate_is_30_per_minute(api) -> None:
    agency = api.create_agency()
    token = api.create_token(agency["id"])
    codes = [
        api.client.post("/api/v1/enroll", json={"token": token, "hostname": f"h{i}",
                                                "machine_id": f"m{i}"}).status_code
        for i in range(31)
    ]
    assert codes[:30] == [201] * 30
    assert codes[30] == 429


def test_password_logins_are_rate_limited_separately(make_api) -> None:
    api = make_api(login_rate_per_minute=2, enroll_rate_per_minute=100)
    body = {"username": "nobody", "password": "wrong password"}
    codes = [api.client.post("/api/v1/auth/token", json=body).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    r = api.client.post("/api/v1/auth/token", json=body)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # enrollment has its own bucket: not affected by the refused logins
    agency = api.create_agency()
    r = api.client.post(
        "/api/v1/enroll", json={"token": api.create_token(agency["id"]), "hostname": "pc"}
    )
    assert r.status_code == 201
