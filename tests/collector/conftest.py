"""Fixtures of the collector tests: a fresh app and database per test (SQLite and
PostgreSQL), report builders."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from agent.report import (
    AntivirusSection,
    DiskInfo,
    FirewallBackend,
    FirewallSection,
    HardwareSection,
    IdsProduct,
    IdsSection,
    InterfaceAddress,
    ListeningSocket,
    NetworkInterface,
    NetworkSection,
    Package,
    Report,
    SoftwareSection,
)
from collector.app import create_app
from collector.db import create_db_engine, init_db
from collector.settings import Settings
from tests import factories
from tests.pg import PostgresServer, postgres_server_fixture  # noqa: F401  (fixture)

ADMIN_TOKEN = "test-admin-token"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def workstation_sections(now: datetime) -> dict[str, Any]:
    """The sections of a well-kept Debian workstation, derived from ``healthy_sections``.

    ClamAV running with signatures from yesterday, nftables active with a
    default drop policy, Suricata running, no pending security updates.  Only
    the eight sections of schema 1.0: the later families (logging, auth, …)
    are left out, as from an agent that does not collect them.
    """
    healthy = factories.healthy_sections(now)
    clamav = healthy["antivirus"].products[0]
    nftables = healthy["firewall"].backends[0]
    sections: dict[str, Any] = dict.fromkeys(healthy, None)
    sections.update(
        hardware=HardwareSection(
            vendor="Dell Inc.",
            model="OptiPlex 7090",
            serial="ABC1234",
            chassis_type=3,
            role_hint="workstation",
            virtual=False,
            cpu_model="Intel(R) Core(TM) i5-10500",
            cpu_cores_physical=6,
            cpu_cores_logical=12,
            memory_bytes=16 * 1024**3,
            disks=[
                DiskInfo(
                    device="/dev/nvme0n1p2",
                    mountpoint="/",
                    fstype="ext4",
                    total_bytes=512 * 1024**3,
                )
            ],
        ),
        os=healthy["os"].model_copy(
            update={
                "kernel": "6.1.0-18-amd64",
                "arch": "x86_64",
                "boot_time": now - timedelta(days=3),
                "uptime_seconds": 3 * 86400,
            }
        ),
        software=SoftwareSection(
            manager="dpkg",
            packages=[
                Package(name="clamav", version="1.0.5+dfsg-1~deb12u1", arch="amd64"),
                Package(name="nftables", version="1.0.6-2+deb12u2", arch="amd64"),
                Package(name="suricata", version="1:6.0.10-1", arch="amd64"),
            ],
        ),
        network=NetworkSection(
            interfaces=[
                NetworkInterface(
                    name="eth0",
                    mac="00:11:22:33:44:55",
                    is_up=True,
                    addresses=[InterfaceAddress(family="ipv4", address="10.1.2.3", prefixlen=24)],
                )
            ],
            listening=[ListeningSocket(protocol="tcp", address="0.0.0.0", port=22, process="sshd")],
        ),
        antivirus=AntivirusSection(
            products=[
                clamav.model_copy(
                    update={
                        "realtime": False,
                        "signature_version": "27200",
                        "last_scan_at": now - timedelta(days=2),
                        "evidence": ["clamav-daemon.service active"],
                    }
                )
            ]
        ),
        patches=healthy["patches"].model_copy(
            update={
                "pending": [],
                "last_update_at": now - timedelta(days=2),
                "last_refresh_at": now - timedelta(hours=6),
            }
        ),
        firewall=healthy["firewall"].model_copy(
            update={"backends": [nftables.model_copy(update={"rule_count": 12})]}
        ),
        ids=IdsSection(
            products=[IdsProduct(name="Suricata", kind="nids", installed=True, running=True)]
        ),
    )
    return sections


def make_report(
    *,
    hostname: str = "pc-01",
    machine_id: str | None = "machine-0001",
    role: str = "workstation",
    collected_at: datetime | None = None,
    **sections: Any,
) -> Report:
    """``tests.factories.make_report`` with the sections of ``workstation_sections``.

    Any section can be replaced by keyword (``antivirus=AntivirusSection(...)``).
    """
    now = collected_at or datetime.now(UTC)
    parts = {**workstation_sections(now), **sections}
    report = factories.make_report(now, hostname, machine_id, role, **parts)  # type: ignore[arg-type]
    host = report.host.model_copy(update={"fqdn": f"{hostname}.example.gov.vn"})
    return report.model_copy(
        update={"agent_version": "0.1.0", "collection_seconds": 1.5, "host": host}
    )


def insecure_sections() -> dict[str, Any]:
    """Sections of a badly kept machine: no anti-virus, firewall accepting everything."""
    return {
        "antivirus": AntivirusSection(products=[]),
        "firewall": FirewallSection(
            backends=[FirewallBackend(name="nftables", installed=True, active=False)],
            active=False,
        ),
    }


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def db_snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, to assert that a rejected request changed nothing."""
    snapshot: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            snapshot[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return snapshot


def row_counts(engine: Engine) -> dict[str, int]:
    return {name: len(rows) for name, rows in db_snapshot(engine).items()}


@dataclass
class Agent:
    agent_id: int
    host_id: int
    credential: str
    machine_id: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


class Api:
    """Thin helpers over the TestClient for the common setup steps."""

    def __init__(self, client: TestClient, engine: Engine) -> None:
        self.client = client
        self.engine = engine

    def create_agency(self, code: str = "so-tttt", level: int = 3, name: str = "Sở TTTT") -> dict:
        r = self.client.post(
            "/api/v1/agencies",
            json={"code": code, "name": name, "level": level},
            headers=ADMIN_HEADERS,
        )
        assert r.status_code == 201, r.text
        return r.json()

    def create_token(self, agency_id: int, **body: Any) -> str:
        r = self.client.post(
            f"/api/v1/agencies/{agency_id}/enrollment-tokens", json=body, headers=ADMIN_HEADERS
        )
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def enroll(
        self,
        token: str,
        machine_id: str | None = "machine-0001",
        hostname: str = "pc-01",
        role: str | None = "workstation",
    ) -> Agent:
        body: dict[str, Any] = {"token": token, "hostname": hostname, "machine_id": machine_id}
        if role is not None:
            body["role"] = role
        r = self.client.post("/api/v1/enroll", json=body)
        assert r.status_code == 201, r.text
        data = r.json()
        return Agent(data["agent_id"], data["host_id"], data["credential"], machine_id)

    def new_agent(
        self,
        agency_code: str = "so-tttt",
        level: int = 3,
        machine_id: str = "machine-0001",
        hostname: str = "pc-01",
    ) -> Agent:
        agency = self.create_agency(code=agency_code, level=level)
        return self.enroll(self.create_token(agency["id"]), machine_id, hostname)

    def post_report(
        self,
        agent: Agent,
        report: Report | bytes | str,
        headers: dict[str, str] | None = None,
    ):
        if isinstance(report, Report):
            content: bytes | str = report.model_dump_json()
        else:
            content = report
        return self.client.post(
            "/api/v1/reports",
            content=content,
            headers={"Content-Type": "application/json", **agent.headers, **(headers or {})},
        )

    def snapshot(self) -> dict[str, list[tuple]]:
        return db_snapshot(self.engine)

    def counts(self) -> dict[str, int]:
        return row_counts(self.engine)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "collector.db"


@pytest.fixture(scope="session")
def pg_template(postgres_server: PostgresServer) -> str:
    """A database migrated once (``alembic upgrade head``), copied for each test."""
    name = postgres_server.create_database(name="posture_template")
    engine = create_db_engine(Settings(database_url=postgres_server.url_for(name)))
    try:
        init_db(engine)
    finally:
        engine.dispose()
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def database_backend(request: pytest.FixtureRequest) -> str:
    """Every test of the collector app runs on SQLite and on a real PostgreSQL."""
    return str(request.param)


@pytest.fixture
def collector_database_url(
    database_backend: str, db_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh database per test: a SQLite file, or a copy of the migrated PG template."""
    if database_backend == "sqlite":
        yield f"sqlite:///{db_path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(template=request.getfixturevalue("pg_template"))
    yield server.url_for(name)
    server.drop_database(name)


@pytest.fixture
def settings(collector_database_url: str) -> Settings:
    return Settings(database_url=collector_database_url, admin_token=ADMIN_TOKEN)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, app: FastAPI) -> Api:
    return Api(client, app.state.engine)


@pytest.fixture
def agent(api: Api) -> Agent:
    return api.new_agent()


@pytest.fixture
def report_factory() -> Callable[..., Report]:
    return make_report


@pytest.fixture
def insecure() -> dict[str, Any]:
    return insecure_sections()


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Build extra apps with custom settings (body limit, no admin token…)."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> Api:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / f'custom-{len(clients)}.db'}",
            "admin_token": ADMIN_TOKEN,
        }
        values.update(overrides)
        app = create_app(Settings(**values))
        test_client = TestClient(app)
        test_client.__enter__()
        clients.append(test_client)
        return Api(test_client, app.state.engine)

    yield build
    for test_client in clients:
        test_client.__exit__(None, None, None)


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return dict(ADMIN_HEADERS)
