"""Several ``posture-collector serve`` processes on one PostgreSQL database.

Two real servers (uvicorn, separate processes) start at once on an empty
database (the migrations must not race), then receive the same report many
times concurrently and the reports of one host interleaved: each report is
stored once, no request fails, the latest report and the software inventory
end up consistent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from agent.report import Package, Report, SoftwareSection
from collector.db import create_db_engine
from collector.models import Host, HostInventory, HostPackage, StoredReport
from collector.settings import Settings
from tests.collector.conftest import ADMIN_HEADERS, ADMIN_TOKEN, make_report
from tests.pg import PostgresServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command() -> list[str]:
    script = shutil.which("posture-collector")
    return [script] if script else [sys.executable, "-m", "collector.cli"]


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()  # empty: the servers migrate it
    yield postgres_server.url_for(name)
    postgres_server.drop_database(name)


@pytest.fixture
def servers(pg_url: str, tmp_path: Path) -> Iterator[list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTURE_")}
    env.update(DATABASE_URL=pg_url, POSTURE_ADMIN_TOKEN=ADMIN_TOKEN)
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    for i in range(2):
        port = _free_port()
        log = (tmp_path / f"server-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [*_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        for url, proc in zip(urls, procs, strict=True):
            while True:
                assert proc.poll() is None, (tmp_path / "server-0.log").read_text() + (
                    tmp_path / "server-1.log"
                ).read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "collector did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for i in range(2):
            text = (tmp_path / f"server-{i}.log").read_text(errors="replace")
            assert "Traceback" not in text, text


def _report(collected_at: datetime, extra: int) -> Report:
    report = make_report(collected_at=collected_at)
    assert report.software is not None
    packages = [
        *report.software.packages,
        *(Package(name=f"tool-{n}", version=f"1.{extra}", arch="amd64") for n in range(extra)),
    ]
    software = SoftwareSection(manager="dpkg", packages=packages)
    return report.model_copy(update={"report_id": uuid.uuid4(), "software": software})


def test_two_collectors_one_database(servers: list[str], pg_url: str) -> None:
    a, b = servers
    agency = httpx.post(
        f"{a}/api/v1/agencies",
        json={"code": "so-tttt", "name": "Sở TTTT", "level": 3},
        headers=ADMIN_HEADERS,
    ).json()
    token = httpx.post(
        f"{b}/api/v1/agencies/{agency['id']}/enrollment-tokens", json={}, headers=ADMIN_HEADERS
    ).json()["token"]
    enrolled = httpx.post(
        f"{a}/api/v1/enroll",
        json={
            "token": token,
            "hostname": "pc-01",
            "machine_id": "machine-0001",
            "role": "workstation",
        },
    ).json()
    headers = {
        "Authorization": f"Bearer {enrolled['credential']}",
        "Content-Type": "application/json",
    }

    base = datetime.now(UTC) - timedelta(hours=1)
    reports = [_report(base + timedelta(minutes=i), extra=i) for i in range(12)]
    duplicated = reports[5]
    jobs: list[tuple[str, Report]] = []
    for round_ in range(12):
        jobs += [(a, duplicated), (b, duplicated)]
        other = reports[(round_ * 7) % 12]  # every report, out of collection order
        jobs.append(((a, b)[round_ % 2], other))
        jobs.append(((b, a)[round_ % 2], other))

    def post(job: tuple[str, Report]) -> tuple[uuid.UUID, int, str]:
        url, report = job
        r = httpx.post(
            f"{url}/api/v1/reports",
            content=report.model_dump_json(),
            headers=headers,
            timeout=60,
        )
        return report.report_id, r.status_code, r.text

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(post, jobs))

    bad = [(rid, code, text) for rid, code, text in results if code not in (200, 201)]
    assert not bad
    accepted = Counter(rid for rid, code, _ in results if code == 201)
    assert accepted == Counter({r.report_id: 1 for r in reports})

    engine = create_db_engine(Settings(database_url=pg_url))
    try:
        with Session(engine) as session:
            stored = Counter(session.exec(select(StoredReport.report_id)).all())
            assert stored == Counter({r.report_id: 1 for r in reports})
            host = session.get(Host, enrolled["host_id"])
            assert host is not None
            newest = max(reports, key=lambda r: r.collected_at)
            assert host.latest_report_id == newest.report_id

            state = session.get(HostInventory, host.id)
            assert state is not None
            applied = next(r for r in reports if r.report_id == state.report_id)
            assert applied.software is not None
            rows = session.exec(select(HostPackage).where(HostPackage.host_id == host.id)).all()
            have = sorted((p.name, p.arch, p.version) for p in rows)
            want = sorted((p.name, p.arch or "", p.version) for p in applied.software.packages)
            assert have == want
            assert state.package_count == len(want)
    finally:
        engine.dispose()


def test_two_collectors_many_hosts_at_once(servers: list[str], pg_url: str) -> None:
    """Thirty hosts, three reports each, posted 32 at a time to both processes:
    each process stores what arrives together as one batch (collector/ingest_queue.py),
    with hosts of the same agency in both processes' batches at once.  Every report is
    stored once, none is refused, and each host ends on its newest report."""
    a, b = servers
    agency = httpx.post(
        f"{a}/api/v1/agencies",
        json={"code": "so-many", "name": "Sở nhiều máy", "level": 3},
        headers=ADMIN_HEADERS,
    ).json()
    token = httpx.post(
        f"{a}/api/v1/agencies/{agency['id']}/enrollment-tokens", json={}, headers=ADMIN_HEADERS
    ).json()["token"]
    base = datetime.now(UTC) - timedelta(hours=1)
    hosts: list[tuple[int, str, list[Report]]] = []
    for i in range(30):
        machine = f"machine-{i:04d}"
        enrolled = httpx.post(
            f"{(a, b)[i % 2]}/api/v1/enroll",
            json={"token": token, "hostname": f"pc-{i:02d}", "machine_id": machine},
        ).json()
        reports = [
            make_report(
                hostname=f"pc-{i:02d}", machine_id=machine, collected_at=base + timedelta(minutes=m)
            )
            for m in range(3)
        ]
        hosts.append((enrolled["host_id"], enrolled["credential"], reports))
    jobs = [
        ((a, b)[(n + i) % 2], credential, report)
        for n in range(3)
        for i, (_, credential, reports) in enumerate(hosts)
        for report in [reports[(n + i) % 3]]  # each host's reports out of collection order
    ]

    def post(job: tuple[str, str, Report]) -> tuple[int, str]:
        url, credential, report = job
        r = httpx.post(
            f"{url}/api/v1/reports",
            content=report.model_dump_json(),
            headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
            timeout=60,
        )
        return r.status_code, r.text

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(post, jobs))

    assert [code for code, _ in results] == [201] * len(jobs), [t for c, t in results if c != 201]
    engine = create_db_engine(Settings(database_url=pg_url))
    try:
        with Session(engine) as session:
            stored = Counter(session.exec(select(StoredReport.report_id)).all())
            assert stored == Counter({r.report_id: 1 for _, _, rs in hosts for r in rs})
            for host_id, _, reports in hosts:
                host = session.get(Host, host_id)
                assert host is not None and host.latest_report_id == reports[-1].report_id
    finally:
        engine.dispose()
