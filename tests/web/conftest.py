"""Fixtures of the dashboard tests: the collector tests' app on SQLite and PostgreSQL,
and a seeded world of agencies, machines and users."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from agent.report import Package, SoftwareSection
from collector import incidents, users, waivers
from collector.models import Agency, utcnow
from tests.collector import conftest as collector_conftest
from tests.collector.conftest import Api, insecure_sections, make_report
from tests.pg import postgres_server_fixture

# The collector tests' fixtures: a fresh app per test on SQLite and on PostgreSQL.
postgres_server = postgres_server_fixture
pg_template = collector_conftest.pg_template
database_backend = collector_conftest.database_backend
db_path = collector_conftest.db_path
collector_database_url = collector_conftest.collector_database_url
settings = collector_conftest.settings
app = collector_conftest.app
client = collector_conftest.client
api = collector_conftest.api

PASSWORD = "mật khẩu thật dài 2026"


@dataclass
class World:
    agency_a: int
    agency_b: int
    hosts: dict[str, int] = field(default_factory=dict)
    waiver_id: int = 0


def seed_world(api: Api, app: FastAPI) -> World:
    """Agency A (Mức độ 3): a well-kept workstation and a badly kept server;
    agency B (Mức độ 2): one workstation with openssl.  Users of every role."""
    a = api.create_agency(code="SO-A", name="Sở Tài chính", level=3)
    b = api.create_agency(code="UB-B", name="Ủy ban nhân dân huyện Bàu Bàng", level=2)
    world = World(agency_a=a["id"], agency_b=b["id"])
    token_a = api.create_token(a["id"])
    good = api.enroll(token_a, "m-good", "pc-ketoan-01", role="workstation")
    bad = api.enroll(token_a, "m-bad", "srv-web-01", role="server")
    token_b = api.create_token(b["id"])
    other = api.enroll(token_b, "m-b", "pc-ubnd-01", role="workstation")
    assert api.post_report(good, make_report(hostname="pc-ketoan-01", machine_id="m-good"))
    r = api.post_report(
        bad,
        make_report(
            hostname="srv-web-01", machine_id="m-bad", role="server", **insecure_sections()
        ),
    )
    assert r.status_code in (200, 201, 202), r.text
    openssl = SoftwareSection(
        manager="dpkg",
        packages=[Package(name="openssl", version="3.0.15-1~deb12u1", arch="amd64")],
    )
    r = api.post_report(
        other, make_report(hostname="pc-ubnd-01", machine_id="m-b", software=openssl)
    )
    assert r.status_code in (200, 201, 202), r.text
    world.hosts = {"good": good.host_id, "bad": bad.host_id, "other": other.host_id}
    with Session(app.state.engine) as session:
        agency_a = session.get(Agency, a["id"])
        assert agency_a is not None
        users.create_user(session, username="sophia", role="province_admin", password=PASSWORD)
        users.create_user(session, username="rita", role="province_reviewer", password=PASSWORD)
        users.create_user(
            session, username="anna", role="agency_admin", agency_id=a["id"], password=PASSWORD
        )
        users.create_user(
            session, username="bob", role="agency_admin", agency_id=b["id"], password=PASSWORD
        )
        waiver = waivers.create_waiver(
            session,
            agency_a,
            check_id="av_installed",
            justification="Máy chủ web dùng giải pháp chống mã độc ở tường lửa",
            author="anna",
            expires_at=utcnow() + timedelta(days=30),
            host_id=bad.host_id,
        )
        incidents.create_incident(
            session,
            agency_a,
            category="information_security",
            scope="local",
            title="Phát hiện mã độc trên máy kế toán",
            occurred_at=utcnow() - timedelta(days=2),
            reported_by="anna",
        )
        session.commit()
        assert waiver.id is not None
        world.waiver_id = waiver.id
    return world


@pytest.fixture
def world(api: Api, app: FastAPI) -> World:
    return seed_world(api, app)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def browser(app: FastAPI, https: bool = False) -> TestClient:
    """A separate cookie jar (one per user); the app is already started by ``client``."""
    return TestClient(app, base_url="https://testserver" if https else "http://testserver")


def login(app: FastAPI, username: str, password: str = PASSWORD) -> TestClient:
    c = browser(app)
    page = c.get("/ui/login")
    r = c.post(
        "/ui/login",
        data={"csrf_token": csrf_of(page.text), "username": username, "password": password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return c
